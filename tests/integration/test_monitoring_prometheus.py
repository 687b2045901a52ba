"""A real Prometheus, configured by Berth, finds a service's instance through Berth's
discovery endpoint and scrapes its histogram; Berth's series API reads QPS, average time and
P999 back from Prometheus, matching what the test computes from the counters it wrote."""
from __future__ import annotations

import io
import tarfile
import threading
import time
import uuid

import pytest

from tests.integration.apps import all_healthy, containers, http_service, tear_down
from tests.support import wait_for

pytestmark = pytest.mark.berth_environments("embedded")

HISTOGRAM = "http_request_duration_seconds"
# Requests per second landing in each bucket (not cumulative), per status code; and the
# seconds they take per second (the _sum's rate).
BUCKET_RATES = {"200": {"0.01": 10.0, "0.05": 9.0, "0.1": 1.0},
                "500": {"0.25": 4.0, "1": 1.0}}
SUM_RATES = {"200": 0.6, "500": 1.4}
LES = ["0.01", "0.05", "0.1", "0.25", "0.5", "1", "+Inf"]

CGI = """#!/bin/sh
echo "Content-Type: text/plain; version=0.0.4"
echo ""
echo "# TYPE http_request_duration_seconds histogram"
while read code kind le value; do
  case "$kind" in
    bucket) echo "http_request_duration_seconds_bucket{code=\\"$code\\",le=\\"$le\\"} $value" ;;
    sum) echo "http_request_duration_seconds_sum{code=\\"$code\\"} $value" ;;
    count) echo "http_request_duration_seconds_count{code=\\"$code\\"} $value" ;;
  esac
done < /www/counts
"""


def counts_text(elapsed: float) -> str:
    """The counters `elapsed` seconds in, at the rates above (cumulative buckets)."""
    lines = []
    for code, rates in BUCKET_RATES.items():
        cumulative = 0.0
        for le in LES:
            cumulative += rates.get(le, 0.0)
            lines.append(f"{code} bucket {le} {cumulative * elapsed:.3f}")
        lines.append(f"{code} sum - {SUM_RATES[code] * elapsed:.4f}")
        lines.append(f"{code} count - {cumulative * elapsed:.3f}")
    return "\n".join(lines) + "\n"


def expected() -> dict:
    """What PromQL computes at steady rates: QPS, average time, and histogram_quantile's
    P999 (linear interpolation within the bucket the 99.9th percentile's rank falls in)."""
    total = sum(sum(r.values()) for r in BUCKET_RATES.values())
    rank = 0.999 * total
    cumulative, lower = 0.0, 0.0
    p999 = None
    for le in LES:
        in_bucket = sum(r.get(le, 0.0) for r in BUCKET_RATES.values())
        if cumulative + in_bucket >= rank and in_bucket > 0:
            upper = float(le)
            p999 = lower + (upper - lower) * (rank - cumulative) / in_bucket
            break
        cumulative += in_bucket
        lower = float(le) if le != "+Inf" else lower
    return {"qps": total, "avg_s": sum(SUM_RATES.values()) / total, "p999_s": p999,
            "error_ratio": sum(BUCKET_RATES["500"].values()) / total}


def _put(container, path: str, text: str, mode: int = 0o644) -> None:
    """Write a file into the container, atomically (a tar of one file, then mv)."""
    folder, name = path.rsplit("/", 1)
    data = text.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(f".{name}.new")
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    assert container.put_archive(folder, archive.getvalue())
    code, output = container.exec_run(["mv", f"{folder}/.{name}.new", path])
    assert code == 0, output


def test_prometheus_discovers_through_berth_and_berth_reads_it_back(berth_app, bed, fleet,
                                                                    monitoring):
    name = f"prom-{uuid.uuid4().hex[:8]}"
    service = http_service("api", bed.image, 1, metrics={"path": "/cgi-bin/metrics"})
    service["command"] = ["sh", "-c", "mkdir -p /www/cgi-bin && echo api > /www/index.html"
                          " && exec httpd -f -p 127.0.0.1:$PORT -h /www"]
    response = berth_app.api("POST", "/api/v1/applications",
                             json={"name": name, "services": [service]})
    assert response.status_code == 201, response.text
    stop = threading.Event()
    writer = None
    try:
        state = wait_for(lambda: all_healthy(berth_app, name, {"api": 1}), 120,
                         f"{name}/api to be healthy", interval_s=0.5)
        assert state["api"]["metrics"]["path"] == "/cgi-bin/metrics"
        instance = state["api"]["instances"][0]
        [(_engine, container)] = containers(bed, name, "api")
        _put(container, "/www/counts", counts_text(0.0))
        _put(container, "/www/cgi-bin/metrics", CGI, 0o755)

        # The counters advance at the rates above, written five times a second.
        started = time.monotonic()

        def advance():
            while not stop.wait(0.2):
                _put(container, "/www/counts", counts_text(time.monotonic() - started))
        writer = threading.Thread(target=advance, daemon=True)
        writer.start()

        # Berth's discovery endpoint lists it, with Berth's labels...
        response = berth_app.api("GET", "/api/v1/monitoring/targets")
        assert response.status_code == 200, response.text
        [target] = [t for t in response.json() if t["labels"]["application"] == name]
        assert target["labels"]["service"] == "api"
        assert target["labels"]["instance_name"] == instance["name"]
        assert target["targets"][0].endswith(f":{instance['host_port']}")
        # ...and a guest of nothing may not read it.
        assert berth_app.api("GET", "/api/v1/monitoring/targets", auth=None).status_code == 401

        # ...and Prometheus, reading Berth's endpoint with the rendered token, scrapes it up.
        def target_up():
            active = monitoring.api("/api/v1/targets")["data"]["activeTargets"]
            ours = [t for t in active if t["labels"].get("application") == name]
            return ours and ours[0]["health"] == "up" and ours[0]
        found = wait_for(target_up, 60, "Prometheus to scrape the service's target", 0.5)
        labels = found["labels"]
        assert (labels["service"], labels["revision"], labels["instance_name"]) == (
            "api", str(instance["revision"]), instance["name"])
        assert labels["host"].startswith("bed-") and labels["pool"] == "p1"
        assert found["scrapeUrl"].endswith(f":{instance['host_port']}/cgi-bin/metrics")

        # Berth's series API: from Prometheus, at the rates written.
        want = expected()
        path = f"/api/v1/applications/{name}/services/api/metrics?window=120&step=10"

        def settled():
            answer = berth_app.api("GET", path).json()
            qps = answer["current"].get("qps")
            return (answer["source"] == "prometheus" and qps is not None
                    and abs(qps - want["qps"]) <= 0.05 * want["qps"]
                    and answer["series"]["replicas"] and answer)
        answer = wait_for(settled, 90, f"Berth's QPS to reach {want['qps']}", 1.0)
        current = answer["current"]
        print(f"expected {want}; Berth shows qps={current['qps']}, avg_s={current['avg_s']}, "
              f"p999_s={current['p999_s']}, error_ratio={current['error_ratio']}")
        # rate() over a 10 s range of 1 s scrapes of counters written every 0.2 s: a few
        # percent at most.
        assert current["avg_s"] == pytest.approx(want["avg_s"], rel=0.05)
        assert current["p999_s"] == pytest.approx(want["p999_s"], rel=0.05)
        assert current["error_ratio"] == pytest.approx(want["error_ratio"], rel=0.05)
        [qps] = answer["series"]["qps"]
        assert qps["labels"] == {"revision": str(instance["revision"])}
        assert qps["points"] and qps["points"][-1][1] == current["qps"]
        # Berth's own /metrics, scraped by the same Prometheus: the replicas it exports.
        replicas = {r["labels"]["state"]: r["points"][-1][1] for r in answer["series"]["replicas"]}
        assert replicas.get("desired") == 1, replicas
    finally:
        stop.set()
        if writer is not None:  # its last write ends before the container goes
            writer.join(timeout=30)
        tear_down(berth_app, name)
