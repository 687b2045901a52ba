"""Releases carried out by reconcile rounds on fake engines: the layout each round asks
for, discovery along the way, the service's revision at the end, and the operator's
actions. Real engines prove it in tests/integration/test_releases.py."""
import pytest

from sqlalchemy import func, select

from berth import audit, db
from berth.errors import Conflict, InvalidInput
from berth.models import Host, Release, Service
from berth.workloads import definitions, releases
from berth.workloads import services as workloads
from berth.workloads.round import reconcile_application
from tests.unit.berth.workloads.fake_fleet import IMAGE

NEW = "127.0.0.1:5000/library/busybox:2"


@pytest.fixture(autouse=True)
def kicks(monkeypatch):
    """Operator actions enqueue a deploy task; these tests run the rounds themselves."""
    sent = []
    monkeypatch.setattr(releases, "enqueue", lambda task, *args: sent.append(args))
    monkeypatch.setattr(workloads, "enqueue", lambda task, *args: sent.append(args))
    return sent


def _app(replicas=3, port=True):
    # Loopback addresses of their own, so that endpoints name their host (no traffic is sent).
    for n, host in enumerate(db.session.scalars(select(Host).order_by(Host.id)), start=2):
        host.address = f"127.0.0.{n}"
    app = definitions.create_application({"name": "shop", "services": [
        {"name": "api", "image": IMAGE, "replicas": replicas, "port": port}]}, actor="admin")
    db.session.commit()
    return app


def _pass(app, config, connect):
    result = reconcile_application(app.id, config, connect=connect)
    db.session.commit()
    return result


def _service():
    db.session.expire_all()
    return db.session.scalar(select(Service).where(Service.name == "api"))


def _revisions(engines):
    return sorted((c.labels["io.berth.revision"], c.labels["io.berth.slot"])
                  for e in engines.values() for c in e.containers.values() if c.status == "running")


def test_a_rolling_release_moves_every_slot_keeps_discovery_full_and_records_the_revision(fleet, config):
    engines, connect = fleet
    app = _app()
    _pass(app, config, connect)
    release = releases.start(_service(), {"changes": {"image": NEW}}, actor="admin")
    db.session.commit()
    release_id, seen = release.id, []
    for _ in range(20):
        _pass(app, config, connect)
        service = _service()
        seen.append(len(service.endpoints))
        if db.session.get(Release, release_id).status == "succeeded":
            break
    service = _service()
    assert db.session.get(Release, release_id).status == "succeeded"
    assert service.revision == 2 and service.image == NEW
    assert _revisions(engines) == [("2", "0"), ("2", "1"), ("2", "2")]
    assert min(seen) >= 3  # max unavailable of 25% of 3 rounds down to 0
    kinds = [e.kind for e in audit.query(kind="release.batch")]
    assert len(kinds) == 6  # three batches of one, each started and ready
    assert [r.number for r in service.revisions] == [1, 2]


def test_bad_input_is_refused_and_starts_nothing(fleet, config):
    engines, connect = fleet
    app = _app()
    _pass(app, config, connect)
    service = _service()
    for body, message in [
        ({"changes": {"image": NEW}, "batch": 0}, "at least 1"),
        ({"changes": {"image": NEW}, "stages": [{"pools": ["nope"]}]}, "unknown pool nope"),
        ({"changes": {"image": NEW}, "stages": [{"idc": "mars"}]}, "no host is in IDC mars"),
        ({"changes": {"image": "Bad Image"}}, "image"),
        ({"changes": {"replicas": 4}}, "cannot be released"),
        ({"changes": {"image": IMAGE}}, "nothing to release"),
        ({"revision": 7}, "no revision 7"),
        ({"changes": {"image": NEW}, "strategy": "yolo"}, "strategy"),
        ({"changes": {"image": NEW}, "max_surge": 0, "max_unavailable": 0}, "cannot both be 0"),
    ]:
        with pytest.raises((InvalidInput, releases.NotFound), match=message):
            releases.start(service, body, actor="admin")
        db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Release)) == 0
    assert [r.number for r in _service().revisions] == [1]
    releases.start(_service(), {"changes": {"image": NEW}}, actor="admin")
    db.session.commit()
    with pytest.raises(Conflict, match="already has release"):
        releases.start(_service(), {"changes": {"image": NEW, "cpus": 0.2}}, actor="admin")
    with pytest.raises(Conflict, match="being released"):
        workloads.scale(_service(), 5, actor="admin")


def test_blue_green_switches_discovery_at_once_and_switch_back_starts_nothing(fleet, config):
    engines, connect = fleet
    app = _app(replicas=2)
    _pass(app, config, connect)
    _pass(app, config, connect)  # the second lists what the first started
    blue = set(_service().endpoints)
    assert len(blue) == 2
    release = releases.start(_service(), {"changes": {"image": NEW}, "strategy": "blue_green"},
                             actor="admin")
    db.session.commit()
    release_id = release.id
    for _ in range(5):
        _pass(app, config, connect)
        listed = set(_service().endpoints)
        assert listed == blue or (len(listed) == 2 and not listed & blue)  # one set at a time
        if db.session.get(Release, release_id).status == "waiting":
            break
    green = set(_service().endpoints)
    assert green and not green & blue and len(_revisions(engines)) == 4
    created = sum(1 for e in engines.values() for kind, _ in e.calls if kind == "create")
    releases.act(_service(), db.session.get(Release, release_id), "rollback", actor="admin")
    db.session.commit()
    _pass(app, config, connect)
    assert set(_service().endpoints) == blue
    assert db.session.get(Release, release_id).status == "rolled_back"
    assert sum(1 for e in engines.values() for kind, _ in e.calls if kind == "create") == created
    assert _service().revision == 1 and _revisions(engines) == [("1", "0"), ("1", "1")]
    retried = releases.act(_service(), db.session.get(Release, release_id), "retry", actor="admin")
    assert retried.to_revision == 2 and retried.strategy == "blue_green"


def test_the_autoscaler_holds_while_a_release_runs(fleet, config):
    from berth.workloads import autoscaling

    engines, connect = fleet
    app = _app(replicas=2)
    _pass(app, config, connect)
    autoscaling.set_policy(_service(), {"min_replicas": 1, "max_replicas": 2}, actor="admin")
    releases.start(_service(), {"changes": {"image": NEW}}, actor="admin")
    db.session.commit()
    assert autoscaling.autoscale_all() == {"shop/api": "holding: a release is under way"}
