"""Project pages: list and create, members, robots, repositories and tags, permissions."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import select

from berth import accounts, db
from berth.errors import Conflict
from berth.models import Membership, Project, Repository, RobotAccount, Tag, User
from berth.projects import registry_ops, services as projects
from tests.support import csrf_token_of as token_of, login

DIGEST = "sha256:" + "ab12cd34ef56" + "0" * 52


def post(client, url: str, token: str, **data):
    return client.post(url, data={"csrf_token": token, **data})


@pytest.fixture
def people(app, admin):
    """admin (system admin); in project shop (private): alice admin, dave developer,
    gus guest; olga is in no project. A public project `pub` too. shop/web has two tags."""
    with app.app_context(), db.unit_of_work():
        system = accounts.find_user("admin")
        users = {name: accounts.create_user(name, f"{name}-password")
                 for name in ("alice", "dave", "gus", "olga", "zed")}
        db.session.flush()
        shop = projects.create_project("shop", public=False, actor=system, admin=users["alice"])
        projects.create_project("pub", public=True, actor=system)
        db.session.flush()
        projects.add_member(shop, "dave", "developer", actor=system)
        projects.add_member(shop, "gus", "guest", actor=system)
        repository = Repository(project=shop, name="shop/web")
        db.session.add(repository)
        db.session.flush()
        db.session.add_all([
            Tag(repository_id=repository.id, name="v1", digest=DIGEST, size=3 * 2**20 + 2**19,
                pushed_by="dave", pushed_at=datetime(2026, 11, 20, 8, 30, 0)),
            Tag(repository_id=repository.id, name="latest", digest=DIGEST, size=None,
                pushed_by="dave", pushed_at=datetime(2026, 11, 21, 9, 0, 0)),
        ])


def role_in(app, project: str, username: str) -> str | None:
    with app.app_context():
        return db.session.scalar(select(Membership.role).join(User).join(Project).where(
            Project.name == project, User.username == username))


def test_admin_creates_a_project_through_the_form(client, app, admin):
    token = login(client, "admin", "admin-password")
    page = client.get("/projects/")
    assert page.status_code == 200 and "New project" in page.text
    response = post(client, "/projects/", token, name="billing", public="y")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/projects/billing")
    shown = client.get("/projects/billing")
    assert shown.status_code == 200 and "Project billing created." in shown.text
    assert "public" in shown.text
    listing = client.get("/projects/").text
    assert 'href="/projects/billing"' in listing
    with app.app_context():
        project = projects.find_project("billing")
        assert project is not None and project.public is True
        assert [m.user.username for m in projects.members(project)] == ["admin"]


def test_bad_project_name_is_a_400_with_the_rule_and_the_entered_value(client, app, admin):
    token = login(client, "admin", "admin-password")
    response = post(client, "/projects/", token, name="Bad_Name!")
    assert response.status_code == 400
    assert "project name must be lowercase letters and digits" in response.text
    assert 'value="Bad_Name!"' in response.text
    with app.app_context():
        assert projects.find_project("Bad_Name!") is None


def test_non_admins_see_no_new_project_form_and_cannot_post_it(client, app, people):
    token = login(client, "alice", "alice-password")
    page = client.get("/projects/").text
    assert "New project" not in page
    assert post(client, "/projects/", token, name="mine").status_code == 403
    with app.app_context():
        assert projects.find_project("mine") is None


def test_the_list_shows_visibility_role_and_repository_count(client, people):
    login(client, "dave", "dave-password")
    rows = re.findall(r"<tr>(.*?)</tr>", client.get("/projects/").text, re.S)
    shop = next(row for row in rows if 'href="/projects/shop"' in row)
    pub = next(row for row in rows if 'href="/projects/pub"' in row)
    assert "private" in shop and "developer" in shop and re.search(r">\s*1\s*</td>", shop)
    assert "public" in pub and re.search(r">\s*0\s*</td>", pub)


def test_outsider_gets_404_on_a_private_project_but_sees_a_public_one(client, people):
    login(client, "olga", "olga-password")
    assert client.get("/projects/shop").status_code == 404
    assert 'href="/projects/shop"' not in client.get("/projects/").text
    page = client.get("/projects/pub")
    assert page.status_code == 200 and "pub" in page.text
    assert "Add member" not in page.text and "Robot accounts" not in page.text


def test_tags_are_listed_with_short_digest_size_and_pull_hint(client, app, people):
    login(client, "gus", "gus-password")
    page = client.get("/projects/shop").text
    assert "sha256:ab12cd34ef56<" in page and DIGEST not in page.replace(f'title="{DIGEST}"', "")
    assert "3.5 MiB" in page and "—" in page
    assert "2026-11-20 08:30:00" in page
    host = app.config["BERTH"].registry_host
    assert f"docker pull {host}/shop/web:v1" in page


def test_a_developer_sees_delete_buttons_and_a_guest_does_not(client, people):
    login(client, "dave", "dave-password")
    page = client.get("/projects/shop").text
    assert 'action="/projects/shop/repositories/web/tags/v1/delete"' in page
    assert 'action="/projects/shop/repositories/web/tags/latest/delete"' in page
    assert "every tag pointing at the same digest" in page
    client.post("/logout", data={"csrf_token": token_of(page)})

    login(client, "gus", "gus-password")
    page = client.get("/projects/shop").text
    assert "v1" in page and "/delete" not in page and ">Delete<" not in page


def test_deleting_a_tag_calls_registry_ops(client, people, monkeypatch):
    calls = []

    def fake_delete_tag(project, repository_name, tag, *, actor):
        calls.append((project.name, repository_name, tag, actor.username))

    monkeypatch.setattr(registry_ops, "delete_tag", fake_delete_tag)
    token = login(client, "dave", "dave-password")
    response = post(client, "/projects/shop/repositories/web/tags/v1/delete", token)
    assert response.status_code == 302 and response.headers["Location"].endswith("/projects/shop")
    assert calls == [("shop", "shop/web", "v1", "dave")]
    assert "Deleted shop/web:v1" in client.get("/projects/shop").text


def test_a_registry_refusal_is_shown_as_an_error(client, people, monkeypatch):
    def refuse(project, repository_name, tag, *, actor):
        raise Conflict("the registry does not allow deletes")

    monkeypatch.setattr(registry_ops, "delete_tag", refuse)
    token = login(client, "dave", "dave-password")
    response = post(client, "/projects/shop/repositories/web/tags/v1/delete", token)
    assert response.status_code == 302
    page = client.get("/projects/shop").text
    assert 'alert-danger' in page and "the registry does not allow deletes" in page


def test_a_guest_may_not_delete_a_tag_and_an_outsider_gets_404(client, people, monkeypatch):
    calls = []
    monkeypatch.setattr(registry_ops, "delete_tag", lambda *a, **k: calls.append(a))
    token = login(client, "gus", "gus-password")
    assert post(client, "/projects/shop/repositories/web/tags/v1/delete", token).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    token = login(client, "olga", "olga-password")
    assert post(client, "/projects/shop/repositories/web/tags/v1/delete", token).status_code == 404
    assert calls == []


def test_project_admin_adds_changes_and_removes_a_member(client, app, people):
    token = login(client, "alice", "alice-password")
    page = client.get("/projects/shop").text
    assert "Add member" in page and 'action="/projects/shop/members/dave/role"' in page

    response = post(client, "/projects/shop/members", token, username="zed", role="guest")
    assert response.status_code == 302
    assert role_in(app, "shop", "zed") == "guest"
    assert "zed joined shop as guest" in client.get("/projects/shop").text

    response = post(client, "/projects/shop/members/zed/role", token, role="developer")
    assert response.status_code == 302
    assert role_in(app, "shop", "zed") == "developer"

    assert post(client, "/projects/shop/members/zed/remove", token).status_code == 302
    assert role_in(app, "shop", "zed") is None
    assert "zed was removed from shop" in client.get("/projects/shop").text


def test_adding_an_unknown_user_keeps_the_form_and_says_why(client, app, people):
    token = login(client, "alice", "alice-password")
    response = post(client, "/projects/shop/members", token, username="nobody", role="guest")
    assert response.status_code == 400
    assert "unknown user" in response.text and 'value="nobody"' in response.text


def test_the_last_admin_can_be_neither_removed_nor_demoted(client, app, people):
    token = login(client, "alice", "alice-password")
    response = post(client, "/projects/shop/members/alice/remove", token)
    assert response.status_code == 302
    page = client.get("/projects/shop").text
    assert "alert-danger" in page and "last admin of shop" in page
    assert role_in(app, "shop", "alice") == "admin"

    post(client, "/projects/shop/members/alice/role", token, role="guest")
    assert "last admin of shop" in client.get("/projects/shop").text
    assert role_in(app, "shop", "alice") == "admin"


def test_members_are_read_only_for_non_managers(client, app, people):
    token = login(client, "dave", "dave-password")
    page = client.get("/projects/shop").text
    assert "alice" in page and "Add member" not in page and "/role" not in page
    assert "/remove" not in page and "Robot accounts" not in page
    assert post(client, "/projects/shop/members/gus/remove", token).status_code == 403
    assert post(client, "/projects/shop/members", token, username="zed",
                role="guest").status_code == 403
    assert role_in(app, "shop", "gus") == "guest" and role_in(app, "shop", "zed") is None


def test_robot_secret_is_shown_once(client, app, people):
    token = login(client, "alice", "alice-password")
    response = post(client, "/projects/shop/robots", token, name="ci", can_push="y")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    secret = re.search(r"-p ([A-Za-z0-9_-]{40,})<", response.text).group(1)
    host = app.config["BERTH"].registry_host
    assert f"docker login {host} -u 'robot$shop+ci' -p {secret}" in response.text
    with app.app_context():
        robot = projects.authenticate_robot("robot$shop+ci", secret)
        assert robot is not None and robot.can_push is True

    again = client.get("/projects/shop")
    assert again.status_code == 200
    assert "robot$shop+ci" in again.text and "push+pull" in again.text
    assert secret not in again.text


def test_revoking_a_robot(client, app, people):
    token = login(client, "alice", "alice-password")
    post(client, "/projects/shop/robots", token, name="deploy")
    assert post(client, "/projects/shop/robots/deploy/revoke", token).status_code == 302
    with app.app_context():
        robot = db.session.scalar(select(RobotAccount).where(RobotAccount.name == "deploy"))
        assert robot.revoked_at is not None


def test_a_bad_robot_name_is_refused_next_to_the_form(client, app, people):
    token = login(client, "alice", "alice-password")
    response = post(client, "/projects/shop/robots", token, name="Bad Robot")
    assert response.status_code == 400 and "invalid robot name" in response.text
    assert "shown this once" not in response.text


def test_managers_toggle_visibility(client, app, people):
    token = login(client, "alice", "alice-password")
    assert post(client, "/projects/shop/visibility", token, visibility="public").status_code == 302
    with app.app_context():
        assert projects.find_project("shop").public is True
    assert "shop is now public" in client.get("/projects/shop").text


def test_posts_without_csrf_token_are_refused(client, app, people):
    login(client, "alice", "alice-password")
    assert client.post("/projects/shop/members", data={"username": "zed",
                                                       "role": "guest"}).status_code == 400
    assert client.post("/projects/shop/members/dave/remove").status_code == 400
    assert role_in(app, "shop", "zed") is None and role_in(app, "shop", "dave") == "developer"
