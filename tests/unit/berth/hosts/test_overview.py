"""Read-side inventory views: placed resources, liveness as shown, the cluster tree."""
from dataclasses import fields
from datetime import datetime, timedelta

import pytest

from berth import db
from berth.hosts import overview, services
from berth.models import Application, ContainerInstance, Host, Service
from tests.support import count_queries

NOW = datetime(2026, 11, 23, 12, 0, 0)
STALE = overview.stale_after(10.0)  # 30 s


def add_host(name: str, cluster: str = "web", pool: str = "p1", **facts) -> Host:
    host = Host(name=name, endpoint=f"tcp://{name}:2376",
                pool=services.get_or_create_pool(cluster, pool), **facts)
    db.session.add(host)
    db.session.flush()
    return host


def add_service(name: str, cpus: float, memory: int) -> Service:
    application = db.session.query(Application).filter_by(name="shop").one_or_none()
    if application is None:
        from berth.workloads.access import project_for_new_by_default

        application = Application(name="shop", project=project_for_new_by_default())
        db.session.add(application)
    service = Service(application=application, name=name, image="shop/web:1", cpus=cpus,
                      memory=memory)
    db.session.add(service)
    db.session.flush()
    return service


def place(service: Service, host: Host | None, state: str, slot: int) -> None:
    db.session.add(ContainerInstance(service_id=service.id, host_id=host.id if host else None,
                                     slot=slot, revision=1, name=f"{service.name}-{slot}",
                                     state=state))


def test_placed_sums_count_live_instances_only(database):
    h1, h2, h3 = (add_host(name, cpus=12.0, memory=16 * 2**30) for name in ("h1", "h2", "h3"))
    web = add_service("web", cpus=0.5, memory=512 * 2**20)
    db_service = add_service("db", cpus=1.0, memory=2**30)
    place(web, h1, "running", 1)
    place(web, h1, "pending", 2)
    place(web, h1, "exited", 3)  # stopped: holds nothing
    place(db_service, h1, "running", 1)
    place(db_service, h1, "removed", 2)
    place(db_service, h2, "running", 3)
    place(web, None, "pending", 4)  # not placed yet
    db.session.commit()

    rows = {row.name: row for row in overview.host_rows(NOW, STALE)}
    assert (rows["h1"].placed_cpus, rows["h1"].placed_memory) == (2.0, 2 * 2**30)
    assert (rows["h2"].placed_cpus, rows["h2"].placed_memory) == (1.0, 2**30)
    assert (rows["h3"].placed_cpus, rows["h3"].placed_memory) == (0.0, 0)
    assert (rows["h1"].cpus, rows["h1"].memory) == (12.0, 16 * 2**30)


def test_host_rows_costs_the_same_queries_for_many_hosts(database):
    service = add_service("web", cpus=0.5, memory=2**20)

    def grow(count: int) -> int:
        for index in range(count):
            host = add_host(f"n{count}-{index}")
            place(service, host, "running", count * 100 + index)
        db.session.commit()
        return count_queries(lambda: overview.host_rows(NOW, STALE))

    assert grow(2) == grow(10) == 2  # hosts, then one grouped sum: no query per host


@pytest.mark.parametrize("liveness, age_s, alive, status", [
    ("up", 5, True, "up"),
    ("up", 30, True, "up"),
    ("up", 31, False, "stale"),  # probes stopped: up is no longer known
    ("up", None, False, "stale"),
    ("down", 1, False, "down"),
    ("unknown", None, False, "unknown"),
])
def test_liveness_as_shown(database, liveness, age_s, alive, status):
    heartbeat = None if age_s is None else NOW - timedelta(seconds=age_s)
    add_host("h1", liveness=liveness, last_heartbeat_at=heartbeat)
    db.session.commit()
    [row] = overview.host_rows(NOW, STALE)
    assert (row.alive, row.status, row.heartbeat_age_s) == (alive, status, age_s)


def test_filters_and_tls_flag(database):
    add_host("a", cluster="web", pool="p1", liveness="up", tls_ca="CA", tls_cert="CERT",
             tls_key="KEY")
    add_host("b", cluster="web", pool="p2", liveness="down")
    add_host("c", cluster="batch", pool="p1")
    db.session.commit()

    def names(**filters):
        return [row.name for row in overview.host_rows(NOW, STALE, **filters)]

    assert names() == ["c", "a", "b"]  # by cluster, pool, name
    assert names(cluster="web") == ["a", "b"]
    assert names(cluster="web", pool="p2") == ["b"]
    assert names(liveness="up") == ["a"]
    rows = {row.name: row for row in overview.host_rows(NOW, STALE)}
    assert rows["a"].uses_tls and not rows["b"].uses_tls
    # The rows carry no TLS material at all, so nothing built from them can leak it.
    assert not [f.name for f in fields(overview.HostRow) if f.name.startswith("tls")]
    assert "KEY" not in repr(rows["a"])


def test_cluster_tree_counts_hosts_per_pool(database):
    fresh, old = NOW - timedelta(seconds=3), NOW - timedelta(minutes=5)
    add_host("a", cluster="web", pool="p1", liveness="up", last_heartbeat_at=fresh)
    add_host("b", cluster="web", pool="p1", liveness="up", last_heartbeat_at=old)  # stale
    add_host("c", cluster="web", pool="p2", liveness="down")
    add_host("d", cluster="batch", pool="p1")
    services.get_or_create_pool("web", "empty")
    db.session.commit()

    tree = {c.name: c for c in overview.cluster_tree(NOW, STALE)}
    assert list(tree) == ["batch", "web"]
    web = tree["web"]
    assert [(p.name, p.up, p.down, p.total) for p in web.pools] == [
        ("empty", 0, 0, 0), ("p1", 1, 0, 2), ("p2", 0, 1, 1)]
    assert (web.up, web.down, web.total) == (1, 1, 3)
    assert (tree["batch"].up, tree["batch"].down, tree["batch"].total) == (0, 0, 1)
