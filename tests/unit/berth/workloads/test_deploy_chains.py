"""The deploy task's re-check chains: an action's chain goes on until the application settles;
a chain a later action superseded ends at its next run, so a burst of actions leaves one."""
from datetime import timedelta

import pytest

from berth import db
from berth.workloads import definitions, tasks
from berth.workloads.record import PassResult


@pytest.fixture
def app_id(database, config, monkeypatch):
    app = definitions.create_application(
        {"name": "shop", "services": [{"name": "web", "image": "registry.test/shop/web:1"}]},
        actor="t")
    db.session.commit()
    monkeypatch.setattr(tasks, "settings", lambda: config)
    return app.id


@pytest.fixture
def passes(monkeypatch):
    ran = []
    monkeypatch.setattr(tasks, "reconcile_application",
                        lambda app_id, config: ran.append(app_id) or PassResult(converged=False))
    return ran


@pytest.fixture
def rechecks(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.deploy_application, "apply_async",
                        lambda args, countdown: sent.append(args))
    return sent


def _act(app_id):
    from berth.clock import utcnow
    from berth.models import Application

    db.session.get(Application, app_id).deploy_started_at = utcnow() + timedelta(seconds=1)
    db.session.commit()


def test_a_chain_rechecks_under_its_action_s_name(app_id, passes, rechecks):
    _act(app_id)
    tasks.deploy_application.run(app_id)
    db.session.commit()
    assert passes == [app_id] and len(rechecks) == 1
    (again, name), = rechecks
    assert again == app_id and name
    tasks.deploy_application.run(app_id, name)  # the same action's chain: goes on
    db.session.commit()
    assert passes == [app_id] * 2 and rechecks[-1] == (app_id, name)


def test_a_superseded_chain_ends_without_a_pass(app_id, passes, rechecks):
    _act(app_id)
    tasks.deploy_application.run(app_id)
    db.session.commit()
    old = rechecks[-1][1]
    _act(app_id)  # a later scale or release action starts a chain of its own
    assert tasks.deploy_application.run(app_id, old) == {"application": app_id, "superseded": True}
    db.session.commit()
    assert passes == [app_id] and len(rechecks) == 1
