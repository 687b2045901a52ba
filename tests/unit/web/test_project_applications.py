"""Applications belong to projects: its admins and developers operate them, its guests see
them, nobody else does (404); project quotas hold deploys and scales, with the figures."""
import pytest

from berth import accounts, db
from berth.models import Application
from berth.projects import services as projects
from berth.workloads import services as workloads
from tests.support import basic_auth, login

IMAGE = "127.0.0.1:5000/library/busybox:1"
DEV_A, GUEST_A, DEV_B = (basic_auth(n, f"{n}-password") for n in ("dev-a", "guest-a", "dev-b"))


@pytest.fixture(autouse=True)
def no_tasks(monkeypatch):
    monkeypatch.setattr(workloads, "enqueue", lambda *args: None)
    monkeypatch.setattr(workloads, "check_images_exist", lambda *args: None)


@pytest.fixture
def teams(app, admin):
    with app.app_context(), db.unit_of_work():
        boss = accounts.find_user("admin")
        for name in ("dev-a", "guest-a", "dev-b"):
            accounts.create_user(name, f"{name}-password")
        a = projects.create_project("team-a", public=False, actor=boss)
        b = projects.create_project("team-b", public=True, actor=boss)
        projects.add_member(a, "dev-a", "developer", actor=boss)
        projects.add_member(a, "guest-a", "guest", actor=boss)
        projects.add_member(b, "dev-b", "developer", actor=boss)
    return admin


def _app(name, project=None, replicas=1, cpus=0.5):
    body = {"name": name, "services": [{"name": "web", "image": IMAGE, "replicas": replicas,
                                        "cpus": cpus, "memory": 64 * 2**20}]}
    return body | ({"project": project} if project else {})


def test_a_developer_operates_their_project_s_application_and_not_another(client, teams):
    assert client.post("/api/v1/applications", json=_app("shop"), headers=DEV_A).status_code == 201
    assert client.post("/api/v1/applications", json=_app("blog", "team-b"),
                       headers=DEV_B).status_code == 201
    shop = client.get("/api/v1/applications/shop", headers=DEV_A)
    assert shop.status_code == 200 and shop.json["project"] == "team-a"  # their only project
    assert client.patch("/api/v1/applications/shop/services/web", json={"replicas": 3},
                        headers=DEV_A).status_code == 200
    assert [a["name"] for a in client.get("/api/v1/applications", headers=DEV_A).json] == ["shop"]
    # B's application does not exist for A's developer, though team-b's images are public.
    for method, path, body in (("GET", "/api/v1/applications/blog", None),
                               ("PATCH", "/api/v1/applications/blog/services/web", {"replicas": 2}),
                               ("DELETE", "/api/v1/applications/blog", None),
                               ("GET", "/api/v1/applications/blog/services/web/endpoints", None)):
        answer = client.open(path, method=method, json=body, headers=DEV_A)
        assert answer.status_code == 404 and "blog" in answer.json["error"], (method, path)
    refused = client.post("/api/v1/applications", json=_app("sneak", "team-b"), headers=DEV_A)
    assert refused.status_code == 404 and "team-b" in refused.json["error"]


def test_a_guest_sees_the_application_and_cannot_change_it(client, teams):
    client.post("/api/v1/applications", json=_app("shop", "team-a"), headers=DEV_A)
    assert client.get("/api/v1/applications/shop", headers=GUEST_A).status_code == 200
    scale = client.patch("/api/v1/applications/shop/services/web", json={"replicas": 3},
                         headers=GUEST_A)
    assert scale.status_code == 403 and "guest of project team-a" in scale.json["error"]
    assert client.delete("/api/v1/applications/shop", headers=GUEST_A).status_code == 403
    assert client.post("/api/v1/applications", json=_app("mine", "team-a"),
                       headers=GUEST_A).status_code == 403


def test_the_pages_follow_the_same_rule(app, client, teams):
    client.post("/api/v1/applications", json=_app("shop", "team-a"), headers=DEV_A)
    login(client, "guest-a", "guest-a-password")
    assert "shop" in client.get("/services/").text and "Tear down" not in client.get("/services/").text
    page = client.get("/services/shop/web")
    assert page.status_code == 200 and 'name="replicas"' not in page.text
    client.get("/logout")
    login(client, "dev-b", "dev-b-password")
    assert "shop" not in client.get("/services/").text
    assert client.get("/services/shop/web").status_code == 404


def test_deploy_and_scale_over_the_quota_are_refused_with_the_figures(app, client, teams):
    quota = client.patch("/api/v1/projects/team-a", json={"quota": {"cpus": 2, "replicas": 5}},
                         headers=teams)
    assert quota.status_code == 200 and quota.json["quota"] == {"cpus": 2.0, "memory": None,
                                                                "replicas": 5}
    assert client.patch("/api/v1/projects/team-a", json={"quota": {"cpus": 9}},
                        headers=DEV_A).status_code == 403  # system admins set quotas
    assert client.post("/api/v1/applications", json=_app("shop", replicas=3),
                       headers=DEV_A).status_code == 201  # 1.5 of 2 cores
    over = client.post("/api/v1/applications", json=_app("more", replicas=2), headers=DEV_A)
    assert over.status_code == 409 and "CPU 2.5 of 2 cores (now 1.5)" in over.json["error"]
    with app.app_context():
        assert db.session.query(Application).filter_by(name="more").count() == 0
    scale = client.patch("/api/v1/applications/shop/services/web", json={"replicas": 6},
                         headers=DEV_A)
    assert scale.status_code == 409, scale.json
    assert "CPU 3 of 2 cores (now 1.5); replicas 6 of 5 (now 3)" in scale.json["error"]
    project = client.get("/api/v1/projects/team-a", headers=DEV_A).json
    assert project["usage"] == {"cpus": 1.5, "memory": 3 * 64 * 2**20, "replicas": 3}
    assert client.patch("/api/v1/applications/shop/services/web", json={"replicas": 1},
                        headers=DEV_A).status_code == 200  # down is always allowed
    login(client, "dev-a", "dev-a-password")
    page = client.get("/projects/team-a").text
    assert 'id="quota"' in page and "<td>0.5</td><td>2</td>" in page


def test_a_project_with_applications_cannot_be_deleted(app, client, teams):
    from berth.errors import Conflict

    client.post("/api/v1/applications", json=_app("shop", "team-a"), headers=DEV_A)
    with app.app_context():
        with pytest.raises(Conflict, match="still has applications \\(shop\\)"):
            projects.delete_project(projects.find_project("team-a"), actor=accounts.find_user("admin"))


def test_an_application_uses_its_own_project_s_images_and_public_ones(app, client, teams, monkeypatch):
    from berth.errors import InvalidInput
    from berth.projects import registry_ops
    from berth.workloads import services

    class Registry:
        def manifest(self, repository, reference):
            asked.append((repository, reference))
            return {"digest": "sha256:0"}

    asked = []
    monkeypatch.setattr(registry_ops, "client", lambda config: Registry())

    config = app.config["BERTH"]
    client.post("/api/v1/applications", json=_app("blog", "team-b"), headers=DEV_B)
    with app.app_context():
        blog = db.session.query(Application).filter_by(name="blog").one()
        private = f"{config.registry_host}/team-a/secret:1"
        with pytest.raises(InvalidInput, match="private project team-a; application blog"):
            services.check_image_exists("web", private, config, blog)
        # Its own project's and public projects' images go on to the registry's own check.
        services.check_image_exists("web", f"{config.registry_host}/team-b/site:1", config, blog)
        assert asked == [("team-b/site", "1")]

