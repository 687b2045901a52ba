"""Compose files in the API, and apply: created when missing, scaled and released where the
definition changed, nothing done when it did not, nothing at all on a dry run (which says
where new containers would go); what cannot change in place is a 409."""
import textwrap

import pytest
from sqlalchemy import func, select

from berth import db
from berth.clock import utcnow
from berth.engine.fake import FakeEngine
from berth.hosts import services as hosts
from berth.models import Application, Event, Release
from berth.workloads import releases
from berth.workloads import services as workloads

IMAGE = "127.0.0.1:5000/library/busybox:1"
YAML = {"Content-Type": "application/yaml"}
FILE = textwrap.dedent(f"""\
    name: shop
    services:
      db:
        image: {IMAGE}
        ports: ["80"]
        healthcheck: {{test: [CMD, wget, -q, "http://127.0.0.1:$$PORT/"], interval: 500ms}}
      api:
        image: {IMAGE}
        depends_on: {{db: {{condition: service_healthy}}}}
        deploy:
          replicas: 2
          resources: {{limits: {{cpus: "0.25", memory: 64M}}}}
          update_config: {{parallelism: 2, order: start-first}}
      web:
        image: {IMAGE}
        depends_on: [api]
    """)


@pytest.fixture
def sent(monkeypatch):
    tasks = []
    monkeypatch.setattr(releases, "enqueue", lambda task, *args: tasks.append(task.name))
    monkeypatch.setattr(workloads, "enqueue", lambda task, *args: tasks.append(task.name))
    monkeypatch.setattr(workloads, "check_images_exist", lambda *args: None)  # no registry here
    monkeypatch.setattr(releases, "_check_image", lambda *args: None)
    return tasks


@pytest.fixture
def two_hosts(app):
    engine = FakeEngine(cpus=4, memory=8 * 2**30)
    with app.app_context(), db.unit_of_work():
        for number, disk in ((1, "ssd"), (2, "hdd")):
            host = hosts.add_host(f"h{number}", f"tcp://127.0.0.1:{2390 + number}", cluster="c",
                                  pool="p", disk_type=disk, connect=lambda endpoint: engine)
            host.cpus, host.memory = 4, 8 * 2**30
            host.liveness, host.last_heartbeat_at = "up", utcnow()


def put(client, headers, text, query=""):
    return client.put(f"/api/v1/applications/shop{query}", headers={**headers, **YAML}, data=text)


def counts(app):
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Application)),
                db.session.scalar(select(func.count()).select_from(Release)),
                db.session.scalar(select(func.count()).select_from(Event)))


def test_a_compose_file_creates_an_application_in_dependency_order(client, admin, sent):
    answer = client.post("/api/v1/applications/compose", headers={**admin, **YAML}, data=FILE)
    assert answer.status_code == 201, answer.get_json()
    services = {s["name"]: s for s in answer.get_json()["services"]}
    assert (services["api"]["replicas"], services["db"]["host_network"]) == (2, True)
    assert sent == ["berth.workloads.tasks.deploy_application"]
    again = client.post("/api/v1/applications/compose", headers=admin,
                        json={"compose": FILE, "name": "shop2"})
    assert again.status_code == 201 and again.get_json()["name"] == "shop2"


def test_what_berth_cannot_honour_is_a_400_naming_the_field_and_nothing_is_stored(
        client, admin, sent, app):
    bad = FILE.replace("  web:\n", "  web:\n    privileged: true\n")
    before = counts(app)
    for answer in (client.post("/api/v1/applications/compose", headers={**admin, **YAML}, data=bad),
                   put(client, admin, bad), put(client, admin, bad, "?dry_run=1")):
        assert answer.status_code == 400
        assert answer.get_json()["error"] == ("services.web.privileged: Berth cannot honour "
                                              "privileged (containers run with every capability "
                                              "dropped but an allowlist)")
    assert counts(app) == before and sent == []


def test_check_converts_and_orders_without_storing(client, admin, app):
    answer = client.post("/api/v1/applications/compose/check", headers={**admin, **YAML},
                         data=FILE)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["levels"] == [["db"], ["api"], ["web"]]
    assert body["definition"]["update_config"] == {"api": {"parallelism": 2, "order": "start-first"}}
    assert counts(app)[0] == 0


def test_apply_creates_then_changes_nothing_then_what_changed(client, admin, sent, app):
    created = put(client, admin, FILE)
    assert created.status_code == 200, created.get_json()
    body = created.get_json()
    assert body["created"] and [c["service"] for c in body["changed"]] == ["db", "api", "web"]
    assert body["levels"] == [["db"], ["api"], ["web"]]
    before = counts(app)
    again = put(client, admin, FILE).get_json()
    assert (again["created"], again["changed"], again["unchanged"]) == (
        False, [], ["api", "db", "web"])
    assert counts(app) == before and len(sent) == 1  # no event, no task, no release

    changed = FILE.replace("replicas: 2", "replicas: 3").replace(
        'image: {0}\n    depends_on: [api]'.format(IMAGE),
        'image: 127.0.0.1:5000/library/busybox:2\n    depends_on: [api]')
    body = put(client, admin, changed).get_json()
    by_service = {c["service"]: c for c in body["changed"]}
    assert by_service["api"]["replicas"] == {"from": 2, "to": 3} and by_service["api"]["release"] is None
    assert by_service["web"]["changes"] == {"image": {"from": IMAGE, "to": "127.0.0.1:5000/library/busybox:2"}}
    assert by_service["web"]["release"] is not None and body["unchanged"] == ["db"]
    with app.app_context():
        events = [e.kind for e in db.session.scalars(select(Event).order_by(Event.id))]
    assert events[-2:] == ["service.scale", "release.start"]
    # The release under way counts as done: applying the same file again starts nothing.
    assert put(client, admin, changed).get_json()["changed"] == []


def test_a_release_from_apply_uses_the_services_update_config(client, admin, sent, app):
    put(client, admin, FILE)
    body = put(client, admin, FILE.replace('cpus: "0.25"', 'cpus: "0.5"')).get_json()
    [change] = body["changed"]
    assert change["changes"] == {"cpus": {"from": 0.25, "to": 0.5}}
    with app.app_context():
        release = db.session.get(Release, change["release"])
        assert (release.settings["plan"]["batch"], release.settings["plan"]["max_surge"]) == (2, 2)


def test_a_dry_run_acts_on_nothing_and_says_where_new_containers_go(
        client, admin, sent, app, two_hosts):
    ssd = FILE.replace("  web:\n", "  web:\n    deploy: {placement: {constraints: "
                                   "[node.labels.disk==ssd]}}\n")
    before = counts(app)
    body = put(client, admin, ssd, "?dry_run=1").get_json()
    assert body["created"] and body["dry_run"] and counts(app) == before and sent == []
    placements = {c["service"]: c["placements"] for c in body["changed"]}
    assert [p["host"] for p in placements["web"]] == ["h1"]
    assert placements["web"][0]["explanation"].startswith("placed on h1")
    assert len(placements["api"]) == 2 and all(p["host"] for p in placements["api"])

    put(client, admin, ssd)
    more = ssd.replace("replicas: 2", "replicas: 4")
    before = counts(app)
    body = put(client, admin, more, "?dry_run=1").get_json()
    [change] = body["changed"]
    assert change["replicas"] == {"from": 2, "to": 4} and len(change["placements"]) == 2
    assert counts(app) == before and len(sent) == 1
    assert put(client, admin, ssd).get_json()["changed"] == []  # the dry run changed nothing


def test_a_dry_run_says_when_nothing_fits(client, admin, sent, app, two_hosts):
    gpu = FILE.replace("  web:\n", "  web:\n    deploy: {placement: {constraints: "
                                   "[node.labels.gpu==a100]}}\n")
    body = put(client, admin, gpu, "?dry_run=1").get_json()
    [web] = [c for c in body["changed"] if c["service"] == "web"]
    assert web["placements"] == [{"host": None, "explanation": web["placements"][0]["explanation"]}]
    assert web["placements"][0]["explanation"].startswith("0 of 2 hosts fit")


@pytest.mark.parametrize("change, message", [
    (lambda f: f + f"  cache:\n    image: {IMAGE}\n", "adds cache: Berth cannot add or remove services"),
    (lambda f: f.split("  web:")[0], "removes web"),
    (lambda f: f.replace("depends_on: [api]", "depends_on: [db]"), "service web: depends_on"),
    (lambda f: f.replace('    ports: ["80"]\n', ""), "service db: port True -> False"),
])
def test_what_cannot_change_in_place_is_a_409_saying_to_recreate(
        client, admin, sent, app, change, message):
    put(client, admin, FILE)
    before = counts(app)
    answer = put(client, admin, change(FILE))
    assert answer.status_code == 409 and message in answer.get_json()["error"], answer.get_json()
    assert "tear the application down" in answer.get_json()["error"]
    assert counts(app) == before


def test_apply_takes_json_definitions_too_and_the_names_must_agree(client, admin, sent):
    definition = {"name": "shop", "services": [{"name": "web", "image": IMAGE, "replicas": 1}]}
    assert client.put("/api/v1/applications/shop", headers=admin, json=definition).status_code == 200
    definition["services"][0]["replicas"] = 2
    body = client.put("/api/v1/applications/shop", headers=admin, json=definition).get_json()
    assert body["changed"][0]["replicas"] == {"from": 1, "to": 2}
    wrong = client.put("/api/v1/applications/other", headers=admin, json=definition)
    assert wrong.status_code == 400 and "names 'shop', the URL 'other'" in wrong.get_json()["error"]
    garbage = client.put("/api/v1/applications/shop", headers=admin, data="[1",
                         content_type="application/json")
    assert garbage.status_code == 400


def test_autoscaled_replicas_are_left_to_the_autoscaler(client, admin, sent):
    put(client, admin, FILE)
    client.put("/api/v1/applications/shop/services/api/autoscaling", headers=admin,
               json={"min_replicas": 1, "max_replicas": 5})
    body = put(client, admin, FILE.replace("replicas: 2", "replicas: 4")).get_json()
    assert body["changed"] == [] and "autoscaler owns them" in body["notes"][0]


def test_anonymous_callers_are_refused(client, sent):
    assert put(client, {}, FILE).status_code == 401


def test_a_projects_developers_apply_its_applications_and_nobody_else_does(client, admin, sent, app):
    from berth import accounts
    from berth.projects import services as projects
    from tests.support import basic_auth

    with app.app_context(), db.unit_of_work():
        system = accounts.find_user("admin")
        for name in ("dana", "gus", "olga"):
            accounts.create_user(name, f"{name}-password")
        db.session.flush()
        team = projects.create_project("team", public=False, actor=system)
        db.session.flush()
        projects.add_member(team, "dana", "developer", actor=system)
        projects.add_member(team, "gus", "guest", actor=system)
    dana, gus, olga = (basic_auth(n, f"{n}-password") for n in ("dana", "gus", "olga"))
    created = put(client, dana, FILE, "?project=team")
    assert created.status_code == 200 and created.get_json()["created"], created.get_json()
    assert put(client, dana, FILE.replace("replicas: 2", "replicas: 3")).status_code == 200
    assert put(client, gus, FILE).status_code == 403
    assert put(client, olga, FILE).status_code == 404
    moved = put(client, admin, FILE, "?project=default")
    assert moved.status_code == 409 and "does not move applications" in moved.get_json()["error"]


def test_the_files_name_must_be_the_urls(client, admin, sent):
    answer = client.put("/api/v1/applications/other", headers={**admin, **YAML}, data=FILE)
    assert answer.status_code == 400 and "names 'shop', the URL 'other'" in answer.get_json()["error"]
    nameless = FILE.replace("name: shop\n", "")
    assert client.put("/api/v1/applications/other", headers={**admin, **YAML},
                      data=nameless).get_json()["application"] == "other"


def test_a_dry_run_over_the_projects_quota_is_refused_as_the_real_thing(client, admin, sent, app):
    from berth import accounts
    from berth.projects import services as projects

    with app.app_context(), db.unit_of_work():
        team = projects.create_project("team", public=False, actor=accounts.find_user("admin"))
        team.quota_replicas = 3
    for query in ("?project=team&dry_run=1", "?project=team"):
        answer = put(client, admin, FILE, query)
        assert answer.status_code == 409 and "replicas 4 of 3" in answer.get_json()["error"]
    assert counts(app)[0] == 0
