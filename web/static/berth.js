// Berth's page behaviour. It lives here, not in the HTML, because the Content-Security-Policy
// allows scripts from this site only: no inline scripts, handlers or style attributes.
"use strict";

// <form data-confirm="question">: ask first. <form data-busy>: one press, and say it is working.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  if (form.hasAttribute("data-busy")) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.querySelector(".idle").hidden = true;
    button.querySelector(".busy").hidden = false;
  }
});

// <div data-width="42">: a progress bar's width in percent, also in content htmx swaps in.
htmx.onLoad((root) => {
  root.querySelectorAll("[data-width]").forEach((bar) => {
    bar.style.width = `${bar.dataset.width}%`;
  });
});
