// Berth's charts: every element with data-series-url gets one chart per series kind of the
// JSON that URL answers (see the series endpoints in web/api_v1), redrawn every 10 s.
// Markers (autoscaler decisions, releases) are vertical lines; the note is shown when the
// figures are Berth's own samples (no Prometheus). Drawn with the vendored uPlot; no inline
// script, as the Content-Security-Policy wants.
"use strict";

(() => {
  const REFRESH_MS = 10000;
  const COLOURS = ["#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997",
                   "#d63384", "#6c757d", "#0dcaf0", "#ffc107"];
  const MARKER_COLOURS = {autoscale: "#fd7e14", release: "#6f42c1"};
  const TITLES = {
    qps: "Requests per second", avg_s: "Average time (s)", p999_s: "P999 time (s)",
    error_ratio: "Error ratio", cpu_percent: "CPU % (100% = one core)",
    memory_bytes: "Memory (MiB)", replicas: "Replicas", cpu_used: "CPU in use (cores)",
    memory_used: "Memory in use (GiB)", error_lines_per_min: "Error log lines per minute",
  };
  const SCALE = {memory_bytes: 1 / 1048576, memory_used: 1 / 1073741824};
  const CAPACITY = {cpu_used: "cpus", memory_used: "memory"};

  function labelOf(labels) {
    const parts = Object.entries(labels || {}).map(([key, value]) => `${key} ${value}`);
    return parts.length ? parts.join(", ") : "value";
  }

  // The series of one kind as uPlot's aligned data: one x axis (every timestamp seen), one
  // y array per series, null where a series has no point at that time.
  function aligned(kind, series, capacity) {
    const scale = SCALE[kind] || 1;
    const stamps = new Set();
    series.forEach((s) => s.points.forEach(([ts]) => stamps.add(ts)));
    const xs = Array.from(stamps).sort((a, b) => a - b);
    const index = new Map(xs.map((ts, i) => [ts, i]));
    const ys = series.map((s) => {
      const column = new Array(xs.length).fill(null);
      s.points.forEach(([ts, value]) => {
        column[index.get(ts)] = value === null ? null : Number(value) * scale;
      });
      return column;
    });
    const labels = series.map((s) => labelOf(s.labels));
    if (capacity && CAPACITY[kind] && capacity[CAPACITY[kind]] != null && xs.length) {
      ys.push(xs.map(() => Number(capacity[CAPACITY[kind]]) * scale));
      labels.push("capacity");
    }
    return {data: [xs, ...ys], labels};
  }

  function markerPlugin(markers) {
    return {
      hooks: {
        draw: [(u) => {
          const ctx = u.ctx;
          const [lo, hi] = [u.scales.x.min, u.scales.x.max];
          ctx.save();
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          markers.forEach((marker) => {
            if (marker.ts < lo || marker.ts > hi) return;
            const x = Math.round(u.valToPos(marker.ts, "x", true));
            ctx.strokeStyle = MARKER_COLOURS[marker.kind] || "#6c757d";
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          });
          ctx.restore();
        }],
      },
    };
  }

  function drawOne(box, kind, series, payload) {
    const {data, labels} = aligned(kind, series, payload.capacity);
    const wrap = document.createElement("div");
    wrap.className = "berth-chart col-lg-6 mb-3";
    wrap.dataset.kind = kind;
    const title = document.createElement("h3");
    title.className = "h6";
    title.textContent = TITLES[kind] || kind;
    wrap.appendChild(title);
    box.appendChild(wrap);
    if (data[0].length === 0) {
      const empty = document.createElement("p");
      empty.className = "text-muted small berth-chart-empty";
      empty.textContent = "No data.";
      wrap.appendChild(empty);
      return;
    }
    const markers = kind === "replicas" ? (payload.markers || []) : [];
    const width = Math.max(300, (wrap.clientWidth || box.clientWidth / 2 || 500) - 10);
    const options = {
      width, height: 200,
      series: [{}, ...labels.map((label, i) => ({
        label, stroke: label === "capacity" ? "#adb5bd" : COLOURS[i % COLOURS.length],
        dash: label === "capacity" ? [6, 4] : undefined, width: 1.5, spanGaps: true,
        points: {show: data[0].length < 3},
      }))],
      axes: [{}, {size: 60}],
      scales: {x: {time: true}},
      plugins: [markerPlugin(markers)],
    };
    new uPlot(options, data, wrap);
    if (markers.length) {
      const list = document.createElement("ul");
      list.className = "small text-muted berth-chart-markers mb-0";
      markers.slice(-5).forEach((marker) => {
        const item = document.createElement("li");
        item.textContent = `${new Date(marker.ts * 1000).toLocaleTimeString()} ${marker.kind}: ${marker.text}`;
        list.appendChild(item);
      });
      wrap.appendChild(list);
    }
  }

  function format(name, value) {
    if (value === null || value === undefined) return "—";
    if (name === "memory_bytes") return `${(value / 1048576).toFixed(1)} MiB`;
    if (name === "error_ratio") return `${(value * 100).toFixed(2)} %`;
    if (name === "cpu_percent") return `${value.toFixed(1)} %`;
    if (name.endsWith("_s")) return `${(value * 1000).toFixed(1)} ms`;
    return value.toFixed(2);
  }

  function render(box, payload) {
    const charts = box.querySelector(".berth-charts") || box;
    charts.replaceChildren();
    const note = box.querySelector(".berth-charts-note");
    if (note) {
      note.hidden = !(payload.source === "berth" && payload.note);
      note.textContent = payload.note || "";
    }
    Object.entries(payload.series || {}).forEach(([kind, series]) => {
      drawOne(charts, kind, series || [], payload);
    });
    // Current values the server could not know (they come from Prometheus).
    Object.entries(payload.current || {}).forEach(([name, value]) => {
      box.querySelectorAll(`[data-current="${name}"]`).forEach((cell) => {
        if (value !== null && value !== undefined) cell.textContent = format(name, value);
      });
    });
    box.dataset.drawn = String(Number(box.dataset.drawn || 0) + 1);
    box.dataset.source = payload.source || "";
  }

  async function refresh(box) {
    try {
      const response = await fetch(box.dataset.seriesUrl, {
        credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      render(box, await response.json());
      box.dataset.error = "";
    } catch (error) {
      box.dataset.error = String(error);
      const note = box.querySelector(".berth-charts-note");
      if (note) {
        note.hidden = false;
        note.textContent = `Charts unavailable: ${error}`;
      }
    }
  }

  function start(box) {
    if (box.dataset.chartsStarted) return;
    box.dataset.chartsStarted = "1";
    refresh(box);
    box.berthTimer = window.setInterval(() => {
      if (!document.body.contains(box)) {
        window.clearInterval(box.berthTimer);
        return;
      }
      if (!document.hidden) refresh(box);
    }, REFRESH_MS);
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-series-url]").forEach(start);
  }

  window.berthCharts = {aligned, labelOf, scan};
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => scan(document));
  } else {
    scan(document);
  }
})();
