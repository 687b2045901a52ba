"""Berth's /metrics: the fleet as berth_* series, read from the database at scrape time."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from berth import db
from berth.models import (Application, AutoscalingPolicy, Cluster, ContainerInstance, Event,
                          Host, Pool, Project, Release, Service)
from berth.monitoring.exporter import BerthCollector


def _fleet(session):
    cluster = Cluster(name="c1")
    pool = Pool(name="p1", cluster=cluster)
    h1 = Host(name="h1", pool=pool, endpoint="tcp://127.0.0.1:1", idc="tucheng", cpus=4.0,
              memory=8 * 2**30, liveness="up")
    h2 = Host(name="h2", pool=pool, endpoint="tcp://127.0.0.1:2", idc="tucheng", cpus=2.0,
              memory=4 * 2**30, liveness="down")
    project = Project(name="shop-team", quota_replicas=3)
    app = Application(name="shop", project=project)
    web = Service(application=app, name="web", image="i:1", replicas=3, status="healthy",
                  cpus=0.5, memory=2**26, revision=2)
    session.add_all([h1, h2, web])
    session.flush()
    session.add_all([
        ContainerInstance(service_id=web.id, host_id=h1.id, slot=0, revision=2, name="shop-web-0",
                          state="running", health="healthy", cpu_percent=150.0,
                          memory_bytes=100, error_lines=4),
        ContainerInstance(service_id=web.id, host_id=h1.id, slot=1, revision=2, name="shop-web-1",
                          state="running", health="starting", cpu_percent=50.0,
                          memory_bytes=50, error_lines=1),
        ContainerInstance(service_id=web.id, host_id=h2.id, slot=2, revision=2, name="shop-web-2",
                          state="exited", cpu_percent=99.0, memory_bytes=999),
        AutoscalingPolicy(service_id=web.id, enabled=True, min_replicas=1, max_replicas=3),
        Release(service_id=web.id, from_revision=1, to_revision=2, strategy="rolling",
                status="succeeded"),
        Release(service_id=web.id, from_revision=2, to_revision=3, strategy="rolling",
                status="rolled_back"),
        Release(service_id=web.id, from_revision=2, to_revision=3, strategy="rolling",
                status="running"),
        Event(kind="service.scale", subject="shop/web", actor="autoscaler",
              data={"replicas": 3, "previous": 1}),
        Event(kind="service.scale", subject="shop/web", actor="autoscaler",
              data={"replicas": 1, "previous": 3}),
        Event(kind="service.scale", subject="shop/web", actor="autoscaler",
              data={"replicas": 3, "previous": 1}),
        Event(kind="service.scale", subject="shop/web", actor="alice",
              data={"replicas": 5, "previous": 3}),
    ])
    session.commit()


def _samples(collector) -> dict:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _get(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def test_the_fleet_as_berth_series(database):
    _fleet(database)
    samples = _samples(BerthCollector(lambda: db.session))
    host1 = dict(host="h1", pool="p1", cluster="c1", idc="tucheng")
    host2 = dict(host="h2", pool="p1", cluster="c1", idc="tucheng")
    assert _get(samples, "berth_host_up", **host1) == 1
    assert _get(samples, "berth_host_up", **host2) == 0
    assert _get(samples, "berth_host_cpus", **host1) == 4
    assert _get(samples, "berth_host_memory_bytes", **host2) == 4 * 2**30
    # Only running containers count: 150% + 50% of a core on h1; the exited one not at all.
    assert _get(samples, "berth_host_cpu_used_cores", **host1) == 2.0
    assert _get(samples, "berth_host_memory_used_bytes", **host1) == 150
    assert _get(samples, "berth_host_cpu_used_cores", **host2) == 0
    service = dict(application="shop", service="web", project="shop-team")
    assert _get(samples, "berth_service_replicas", **service, state="desired") == 3
    assert _get(samples, "berth_service_replicas", **service, state="running") == 2
    assert _get(samples, "berth_service_replicas", **service, state="healthy") == 1
    assert _get(samples, "berth_service_status", application="shop", service="web",
                status="healthy") == 1
    assert _get(samples, "berth_service_error_lines_total", application="shop",
                service="web") == 5
    assert _get(samples, "berth_container_cpu_percent", application="shop", service="web",
                revision="2", instance="shop-web-0", host="h1") == 150
    assert _get(samples, "berth_container_memory_bytes", application="shop", service="web",
                revision="2", instance="shop-web-1", host="h1") == 50
    assert not any(k[0] == "berth_container_cpu_percent" and ("instance", "shop-web-2") in k[1]
                   for k in samples)
    assert _get(samples, "berth_autoscaler_at_max", application="shop", service="web") == 1
    assert _get(samples, "berth_autoscaler_decisions_total", application="shop", service="web",
                direction="up") == 2
    assert _get(samples, "berth_autoscaler_decisions_total", application="shop", service="web",
                direction="down") == 1
    assert _get(samples, "berth_project_quota_reached", project="shop-team",
                resource="replicas") == 1
    assert ("berth_project_quota_reached", (("project", "shop-team"), ("resource", "cpus"))) \
        not in samples  # no quota set: nothing to reach
    assert _get(samples, "berth_releases_total", application="shop", service="web",
                outcome="succeeded") == 1
    assert _get(samples, "berth_releases_total", application="shop", service="web",
                outcome="rolled_back") == 1


def test_a_scrape_is_a_few_queries_however_many_instances(database):
    """Aggregates, not a query per row: the statement count does not grow with the fleet."""
    from sqlalchemy import event

    _fleet(database)
    counted = []
    engine = db.session.get_bind()
    listener = lambda *args: counted.append(1)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        _samples(BerthCollector(lambda: db.session))
        few = len(counted)
        service = db.session.query(Service).one()
        db.session.add_all([ContainerInstance(service_id=service.id, host_id=None, slot=10 + n,
                                              revision=2, name=f"more-{n}", state="running",
                                              cpu_percent=1.0) for n in range(50)])
        db.session.commit()
        counted.clear()
        _samples(BerthCollector(lambda: db.session))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(counted) == few
    assert few <= 12


def test_metrics_endpoint_serves_the_fleet(client, database):
    _fleet(database)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'berth_host_up{cluster="c1",host="h1",idc="tucheng",pool="p1"} 1.0' in text
    assert "berth_http_requests_total" in text or "berth_http_request_duration_seconds" in text


def test_metrics_with_several_workers_serve_the_fleet_too(client, database, tmp_path, monkeypatch):
    """The multiprocess registry (gunicorn workers, PROMETHEUS_MULTIPROC_DIR) has it too."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    _fleet(database)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'berth_service_replicas{application="shop",project="shop-team",service="web",' \
           'state="desired"} 3.0' in text
