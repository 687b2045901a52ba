"""The application editor: a Compose file checked before anything is saved (start order,
placements, or the field Berth refuses), then deployed; an existing application edited."""
import pytest

from berth import accounts, db
from berth.models import Application, Service
from berth.projects import services as projects
from berth.workloads import releases
from berth.workloads import services as workloads
from tests.support import csrf_token_of, login

IMAGE = "127.0.0.1:5000/team-a/web:1"
TEXT = f"""
name: shop
services:
  db:
    image: {IMAGE}
    healthcheck: {{test: ["CMD", "true"], interval: 1s}}
  api:
    image: {IMAGE}
    depends_on: {{db: {{condition: service_healthy}}}}
    deploy: {{replicas: 2}}
"""


@pytest.fixture(autouse=True)
def no_tasks(monkeypatch):
    monkeypatch.setattr(workloads, "enqueue", lambda *args: None)
    monkeypatch.setattr(releases, "enqueue", lambda *args: None)
    monkeypatch.setattr(workloads, "check_images_exist", lambda *args: None)
    monkeypatch.setattr(releases, "_check_image", lambda *args: None)


@pytest.fixture
def developer(app, admin, client):
    with app.app_context(), db.unit_of_work():
        boss = accounts.find_user("admin")
        accounts.create_user("dev", "dev-password")
        accounts.create_user("guest", "guest-password")
        team = projects.create_project("team-a", public=False, actor=boss)
        projects.add_member(team, "dev", "developer", actor=boss)
        projects.add_member(team, "guest", "guest", actor=boss)
    return login(client, "dev", "dev-password")


def _post(client, path, text, action, project="team-a"):
    token = csrf_token_of(client.get(path).text)
    return client.post(path, data={"compose": text, "project": project, "action": action,
                                   "csrf_token": token}, follow_redirects=True)


def test_check_shows_the_start_order_and_saves_nothing(app, client, developer):
    page = _post(client, "/applications/new", TEXT, "check")
    assert page.status_code == 200
    order = page.text[page.text.index('id="start-order"'):page.text.index("</ol>")]
    assert order.index("db") < order.index("api")
    assert 'id="plan"' in page.text and "0 → 2" in page.text
    with app.app_context():
        assert db.session.query(Application).count() == 0


def test_save_deploys_it_in_the_developer_s_project(app, client, developer):
    page = _post(client, "/applications/new", TEXT, "save")
    assert "Application shop defined in project team-a" in page.text
    with app.app_context():
        shop = db.session.query(Application).filter_by(name="shop").one()
        assert shop.project.name == "team-a" and sorted(s.name for s in shop.services) == ["api", "db"]


def test_a_field_berth_cannot_honour_is_named_and_nothing_is_saved(app, client, developer):
    page = _post(client, "/applications/new", TEXT.replace("deploy: {replicas: 2}",
                                                          "privileged: true"), "save")
    assert page.status_code == 400 and "services.api.privileged" in page.text
    with app.app_context():
        assert db.session.query(Application).count() == 0


def test_editing_shows_the_application_as_compose_and_applies_a_change(app, client, developer):
    _post(client, "/applications/new", TEXT, "save")
    page = client.get("/applications/shop/edit")
    assert page.status_code == 200 and "condition: service_healthy" in page.text
    text = TEXT.replace("replicas: 2", "replicas: 4")
    checked = _post(client, "/applications/shop/edit", text, "check")
    assert "2 → 4" in checked.text
    with app.app_context():
        assert db.session.query(Service).filter_by(name="api").one().replicas == 2
    applied = _post(client, "/applications/shop/edit", text, "save")
    assert "Applied to shop: api changed." in applied.text
    with app.app_context():
        assert db.session.query(Service).filter_by(name="api").one().replicas == 4


def test_a_guest_cannot_edit(app, client, developer):
    _post(client, "/applications/new", TEXT, "save")
    client.get("/logout")
    login(client, "guest", "guest-password")
    assert client.get("/applications/shop/edit").status_code == 403
    assert 'id="no-project"' in client.get("/applications/new").text
