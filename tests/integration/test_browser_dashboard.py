"""The monitoring pages in a real browser: the dashboard's figures follow a scale by
themselves (htmx, no reload), and the service page draws its charts from the series
endpoint (berth-charts.js with the vendored uPlot, under the Content-Security-Policy)."""
from __future__ import annotations

import time

import pytest

from tests.integration.conftest import ADMIN_PASSWORD
from tests.integration.test_browser_scale import _running, browser, sleeper  # noqa: F401
from tests.support import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.berth_environments("embedded")]


def _log_in(driver, url):
    from selenium.webdriver.common.by import By

    driver.get(url + "/login")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: driver.title.startswith("Overview"), 15, "the dashboard after logging in")


def _figure(driver, element_id: str) -> int:
    return int(driver.execute_script(
        f"return document.getElementById('{element_id}').textContent.trim()"))


def test_the_dashboard_follows_a_scale_without_a_reload(berth_app, sleeper, browser):  # noqa: F811
    app_name, service_name = sleeper
    _log_in(browser, berth_app.url)
    before = _figure(browser, "instances-running")
    assert before >= 1
    browser.execute_script("window.berthNoReload = true;")

    response = berth_app.api("PATCH", f"/api/v1/applications/{app_name}/services/{service_name}",
                             json={"replicas": 2})
    assert response.status_code == 200, response.text
    wait_for(lambda: _running(berth_app, app_name, service_name) == 2, 60,
             f"{app_name}/{service_name} to run two instances", interval_s=0.5)
    running_at = time.monotonic()
    # htmx asks for the body every 10 s: the new count shows within one period (and a margin).
    wait_for(lambda: _figure(browser, "instances-running") == before + 1, 12,
             "the dashboard's running instances to go up by one", interval_s=0.25)
    print(f"\nthe dashboard showed it {time.monotonic() - running_at:.1f} s after the API did")
    assert browser.execute_script("return window.berthNoReload === true"), "the page reloaded"


def test_the_service_page_draws_its_charts(berth_app, sleeper, browser):  # noqa: F811
    app_name, service_name = sleeper
    _log_in(browser, berth_app.url)
    browser.get(f"{berth_app.url}/services/{app_name}/{service_name}")
    wait_for(lambda: browser.execute_script(
        "return Number(document.getElementById('monitoring').dataset.drawn || 0) > 0"), 15,
        "the charts drawn from the series endpoint", interval_s=0.25)
    state = browser.execute_script("""
        const box = document.getElementById('monitoring');
        return {error: box.dataset.error || '', source: box.dataset.source,
                kinds: Array.from(box.querySelectorAll('.berth-chart')).map(c => c.dataset.kind),
                canvases: box.querySelectorAll('.berth-chart canvas').length,
                replicas: box.querySelectorAll('.berth-chart[data-kind=replicas] canvas').length};""")
    assert state["error"] == "", state
    assert state["source"] in ("berth", "prometheus"), state
    assert {"qps", "p999_s", "error_ratio", "cpu_percent", "memory_bytes", "replicas"} <= set(state["kinds"])
    assert state["replicas"] == 1 and state["canvases"] >= 1, state
    if state["source"] == "berth":
        note = browser.execute_script(
            "const n = document.querySelector('#monitoring .berth-charts-note');"
            "return n.hidden ? '' : n.textContent;")
        assert "Prometheus" in note, note
