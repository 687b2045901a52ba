"""Reconcile leases: owned, renewed while the pass runs, released only by their owner."""
from datetime import timedelta

from sqlalchemy import select

from berth import db
from berth.clock import utcnow
from berth.models import Application
from berth.workloads import definitions, leases
from berth.workloads.round import reconcile_application
from tests.support import wait_for
from tests.unit.berth.workloads.fake_fleet import IMAGE, deploy, running


def apps(n):
    made = [definitions.create_application({"name": f"a{i}", "services": [
        {"name": "s", "image": IMAGE}]}, actor="admin") for i in range(n)]
    db.session.commit()
    return [a.id for a in made]


def lease_of(app_id):
    db.session.expire_all()
    app = db.session.get(Application, app_id)
    return app.reconcile_lease_owner, app.reconcile_lease_until


def test_a_lease_is_taken_once_and_a_lapsed_one_again(database):
    first, second = apps(2)
    now = utcnow()
    assert leases.acquire([first, second], "me", now, 60) == [first, second]
    assert leases.acquire([first, second], "you", now, 60) == []
    assert leases.acquire(None, "you", now + timedelta(seconds=61), 60) == [first, second]
    assert lease_of(first)[0] == "you"


def test_only_the_owner_releases_or_renews(database):
    [app_id] = apps(1)
    leases.acquire([app_id], "me", utcnow(), 60)
    leases.release("a-slow-pass-that-lost-it")
    assert lease_of(app_id)[0] == "me"
    assert leases.renew(db.session(), "someone-else", 60) == 0
    assert leases.renew(db.session(), "me", 600) == 1
    assert lease_of(app_id)[1] > utcnow() + timedelta(seconds=500)
    leases.release("me")
    assert lease_of(app_id) == (None, None)


def test_a_running_pass_keeps_renewing_its_lease(database):
    [app_id] = apps(1)
    leases.acquire([app_id], "me", utcnow(), 0.4)
    _, until = lease_of(app_id)
    with leases.Renewal("me", lease_s=0.4, limit_s=60) as renewal:
        wait_for(lambda: lease_of(app_id)[1] > until, 5, "the lease to be renewed")
        assert not renewal.expired


def test_a_pass_past_its_limit_stops_renewing_and_acting(database):
    [app_id] = apps(1)
    leases.acquire([app_id], "me", utcnow(), 0.4)
    with leases.Renewal("me", lease_s=0.4, limit_s=0) as renewal:
        assert renewal.expired


def test_a_taken_over_lease_is_noticed(database):
    [app_id] = apps(1)
    leases.acquire([app_id], "me", utcnow(), 0.4)
    db.session.execute(Application.__table__.update().values(reconcile_lease_owner="next-pass"))
    db.session.commit()
    with leases.Renewal("me", lease_s=0.4, limit_s=60) as renewal:
        wait_for(lambda: renewal.lost, 5, "the renewal to find its lease gone")
    assert lease_of(app_id)[0] == "next-pass"


def test_a_pass_releases_its_lease_and_leaves_others_alone(fleet, config):
    engines, connect = fleet
    app, _ = deploy({"name": "solo", "services": [{"name": "s", "image": IMAGE}]}, config, connect)
    assert lease_of(app.id) == (None, None)
    assert running(engines) == ["solo_s_1_0"]
    other = apps(1)[0]
    leases.acquire([other], "another-pass", utcnow(), 60)
    reconcile_application(app.id, config, connect=connect)
    assert lease_of(other)[0] == "another-pass"
    assert db.session.scalar(select(Application.reconcile_lease_owner)
                             .where(Application.id == app.id)) is None
