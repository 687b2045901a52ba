"""The series Berth's pages draw (see the shape in the monitoring API): from Prometheus when
it is configured and answers, else one point (now) from Berth's own last samples.

QPS, average time, P999 and error ratio come only from Prometheus (the service's own
histogram, through berth.monitoring.promql); CPU, memory and replicas from the berth_*
series Prometheus scrapes off Berth's /metrics, or from the database.
"""
from __future__ import annotations

import time

from sqlalchemy import func, select

from berth import db
from berth.models import Application, ContainerInstance, Event, Host, Service
from berth.monitoring import promql
from berth.monitoring.prom import Prometheus, number

NOT_CONFIGURED = "Prometheus is not configured: showing Berth's own last samples"
UNREACHABLE = "Prometheus does not answer: showing Berth's own last samples"
REQUEST_SERIES = ("qps", "avg_s", "p999_s", "error_ratio")
TOP_BY = ("qps", "p999_s", "error_ratio", "cpu_percent")
MIN_STEP_S = 10


def default_step(window_s: int) -> int:
    return max(MIN_STEP_S, int(round(window_s / 120)))


def _config():
    try:
        from flask import current_app

        return current_app.config["BERTH"]
    except (RuntimeError, KeyError):
        from berth.config import Config

        return Config.from_env()


def _client() -> Prometheus:
    config = _config()
    prom = Prometheus(config.prometheus_url)
    prom.scrape_interval_s = config.prometheus_scrape_interval_s
    return prom


def rate_range(prom: Prometheus, step_s: int) -> str:
    """rate()'s range: four scrapes at least (Prometheus' advice), and no point's range
    shorter than the step between points."""
    scrape = getattr(prom, "scrape_interval_s", 15.0)
    return f"{int(max(4 * scrape, step_s))}s"


def _range(prom: Prometheus, query: str, start: float, end: float, step: int,
           keep: tuple[str, ...]) -> list | None:
    result = prom.query_range(query, start, end, step)
    if result is None:
        return None
    out = []
    for item in result:
        points = [[float(ts), value] for ts, raw in item.get("values", [])
                  if (value := number(raw)) is not None]
        labels = {k: str(v) for k, v in (item.get("metric") or {}).items() if k in keep}
        out.append({"labels": labels, "points": points})
    return sorted(out, key=lambda s: sorted(s["labels"].items()))


def _current(series: list) -> float | None:
    """The latest points of each series, summed (one revision or several)."""
    last = [s["points"][-1][1] for s in series if s["points"]]
    return sum(last) if last else None


def _markers(service: Service, since: float) -> list[dict]:
    subject = f"{service.application.name}/{service.name}"
    rows = db.session.execute(
        select(Event.at, Event.kind, Event.actor, Event.message, Event.data)
        .where(Event.subject == subject, Event.kind.in_(("service.scale", "release.start")),
               Event.at >= _naive(since))
        .order_by(Event.at)).all()
    out = []
    for row in rows:
        kind = "release" if row.kind.startswith("release") else "autoscale"
        if kind == "autoscale" and row.actor != "autoscaler":
            continue
        out.append({"ts": _unix(row.at), "kind": kind, "text": row.message})
    return out


def _naive(ts: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _unix(moment) -> float:
    from datetime import UTC

    return moment.replace(tzinfo=UTC).timestamp()


def _envelope(window_s: int, step_s: int, source: str, note: str | None) -> dict:
    return {"source": source, "note": note, "window_s": window_s, "step_s": step_s,
            "series": {}, "markers": [], "current": {}}


def service_series(service: Service, window_s: int, step_s: int,
                   prom: Prometheus | None = None) -> dict:
    prom = prom or _client()
    now = time.time()
    start = now - window_s
    app_name = service.application.name
    out = None
    if prom.configured:
        out = _service_from_prometheus(prom, service, app_name, start, now, window_s, step_s)
    if out is None:
        out = _envelope(window_s, step_s, "berth",
                        UNREACHABLE if prom.configured else NOT_CONFIGURED)
        out["series"] = {name: [] for name in REQUEST_SERIES}
        out["series"].update(_service_from_berth(service, now))
        out["series"]["error_lines_per_min"] = []  # a rate needs Prometheus' history
        out["current"] = {name: None for name in REQUEST_SERIES}
        out["current"]["cpu_percent"] = _current(out["series"]["cpu_percent"])
        out["current"]["memory_bytes"] = _current(out["series"]["memory_bytes"])
    out["markers"] = _markers(service, start)
    return out


def _service_from_prometheus(prom, service, app_name, start, end, window_s, step_s):
    sel = promql.selector(app_name, service.name)
    series: dict = {}
    spec = promql.MetricsSpec.from_json(service.metrics)
    rng = rate_range(prom, step_s)
    if spec is not None:
        for name, build in (("qps", promql.qps), ("avg_s", promql.avg_seconds),
                            ("p999_s", promql.p999_seconds), ("error_ratio", promql.error_ratio)):
            found = _range(prom, build(spec, sel, rng, by=("revision",)), start, end, step_s,
                           ("revision",))
            if found is None:
                return None
            series[name] = found
    else:
        series.update({name: [] for name in REQUEST_SERIES})
    for name, metric in (("cpu_percent", "berth_container_cpu_percent"),
                         ("memory_bytes", "berth_container_memory_bytes")):
        found = _range(prom, f"max by (instance, revision)({metric}{sel})", start, end, step_s,
                       ("instance", "revision"))
        if found is None:
            return None
        series[name] = found
    replicas = _range(prom, f"max by (state)(berth_service_replicas{sel})", start, end, step_s,
                      ("state",))
    if replicas is None:
        return None
    series["replicas"] = replicas
    # The error-line rate canary analysis judges by, from the counter Berth exports.
    error_lines = _range(prom, f"sum(rate(berth_service_error_lines_total{sel}[{rng}])) * 60",
                         start, end, step_s, ())
    if error_lines is None:
        return None
    series["error_lines_per_min"] = error_lines
    out = _envelope(window_s, step_s, "prometheus", None)
    out["series"] = series
    current = {}
    for name in REQUEST_SERIES:
        found = series[name]
        if name == "qps" or name == "cpu_percent":
            current[name] = _current(found)
        else:  # a ratio or a time: not summed over revisions; the busiest one's (the last)
            last = [s["points"][-1][1] for s in found if s["points"]]
            current[name] = max(last) if last else None
    cpu = [s["points"][-1][1] for s in series["cpu_percent"] if s["points"]]
    current["cpu_percent"] = sum(cpu) / len(cpu) if cpu else None
    current["memory_bytes"] = _current(series["memory_bytes"])
    out["current"] = current
    return out


def _service_from_berth(service: Service, now: float) -> dict:
    rows = db.session.execute(
        select(ContainerInstance.name, ContainerInstance.revision, ContainerInstance.state,
               ContainerInstance.health, ContainerInstance.cpu_percent,
               ContainerInstance.memory_bytes)
        .where(ContainerInstance.service_id == service.id)).all()
    running = [r for r in rows if r.state == "running"]
    cpu = [{"labels": {"instance": r.name, "revision": str(r.revision)},
            "points": [[now, float(r.cpu_percent)]]} for r in running if r.cpu_percent is not None]
    memory = [{"labels": {"instance": r.name, "revision": str(r.revision)},
               "points": [[now, float(r.memory_bytes)]]} for r in running
              if r.memory_bytes is not None]
    healthy = sum(1 for r in running if r.health in ("healthy", None))
    replicas = [{"labels": {"state": state}, "points": [[now, float(value)]]}
                for state, value in (("desired", service.replicas), ("running", len(running)),
                                     ("healthy", healthy))]
    return {"cpu_percent": cpu, "memory_bytes": memory, "replicas": replicas}


def host_series(host: Host, window_s: int, step_s: int, prom: Prometheus | None = None) -> dict:
    prom = prom or _client()
    now = time.time()
    capacity = {"cpus": float(host.cpus or 0), "memory": int(host.memory or 0)}
    if prom.configured:
        sel = "{" + f"host={promql._quote(host.name)}" + "}"
        cpu = _range(prom, f"max(berth_host_cpu_used_cores{sel})", now - window_s, now, step_s, ())
        memory = _range(prom, f"max(berth_host_memory_used_bytes{sel})", now - window_s, now,
                        step_s, ())
        if cpu is not None and memory is not None:
            out = _envelope(window_s, step_s, "prometheus", None)
            out["series"] = {"cpu_used": cpu, "memory_used": memory}
            out["current"] = {"cpu_used": _current(cpu), "memory_used": _current(memory)}
            out["capacity"] = capacity
            return out
    out = _envelope(window_s, step_s, "berth", UNREACHABLE if prom.configured else NOT_CONFIGURED)
    cpu, memory = db.session.execute(
        select(func.coalesce(func.sum(ContainerInstance.cpu_percent), 0.0),
               func.coalesce(func.sum(ContainerInstance.memory_bytes), 0))
        .where(ContainerInstance.host_id == host.id, ContainerInstance.state == "running")).one()
    out["series"] = {"cpu_used": [{"labels": {}, "points": [[now, float(cpu) / 100.0]]}],
                     "memory_used": [{"labels": {}, "points": [[now, float(memory)]]}]}
    out["current"] = {"cpu_used": float(cpu) / 100.0, "memory_used": float(memory)}
    out["capacity"] = capacity
    return out


def top_services(service_ids: list[int] | None, by: str, limit: int,
                 prom: Prometheus | None = None) -> dict:
    """The `limit` services (of `service_ids`, None: all) with the highest `by`, those with
    no figure left out. The dashboard asks four times every 10 s: each is one query."""
    if by not in TOP_BY:
        raise ValueError(f"by must be one of {', '.join(TOP_BY)}")
    if by == "cpu_percent":
        return {"source": "berth", "by": by, "services": _top_cpu(service_ids, limit)}
    prom = prom or _client()
    if not prom.configured:
        return {"source": "berth", "by": by, "services": []}  # request figures need it
    query = (select(Service.name, Service.metrics, Application.name.label("application"))
             .join(Application, Service.application_id == Application.id))
    if service_ids is not None:
        query = query.where(Service.id.in_(service_ids))
    by_spec: dict[promql.MetricsSpec, set] = {}
    for s in db.session.execute(query):
        spec = promql.MetricsSpec.from_json(s.metrics)
        if spec is not None:
            by_spec.setdefault(spec, set()).add((s.application, s.name))
    build = {"qps": promql.qps, "p999_s": promql.p999_seconds,
             "error_ratio": promql.error_ratio}[by]
    values: dict[tuple[str, str], float] = {}
    for spec, wanted in by_spec.items():
        result = prom.query(build(spec, "{}", by=("application", "service")))
        if result is None:
            return {"source": "berth", "by": by, "services": []}
        for item in result:
            labels = item.get("metric") or {}
            key = (labels.get("application"), labels.get("service"))
            value = number((item.get("value") or [None, None])[1])
            if key in wanted and value is not None:
                values[key] = value
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"source": "prometheus", "by": by, "services": [
        {"application": a, "service": s, "value": v} for (a, s), v in ranked[:limit]]}


def _top_cpu(service_ids: list[int] | None, limit: int) -> list[dict]:
    """The services whose running instances use the most CPU on average (their last samples),
    ranked in the database."""
    average = func.avg(ContainerInstance.cpu_percent)
    query = (select(Application.name, Service.name, average)
             .join(Service, ContainerInstance.service_id == Service.id)
             .join(Application, Service.application_id == Application.id)
             .where(ContainerInstance.state == "running",
                    ContainerInstance.cpu_percent.is_not(None))
             .group_by(Application.name, Service.name)
             .order_by(average.desc(), Application.name, Service.name).limit(limit))
    if service_ids is not None:
        query = query.where(ContainerInstance.service_id.in_(service_ids))
    return [{"application": a, "service": s, "value": float(v)}
            for a, s, v in db.session.execute(query)]
