"""The projects API contract: users, projects, members, roles, robots, with 4xx that say why."""
import pytest

from tests.support import basic_auth

ALICE = basic_auth("alice", "alice-password")  # project admin
BOB = basic_auth("bob", "bob-password")  # developer, then guest
EVE = basic_auth("eve", "eve-password")  # outsider


@pytest.fixture
def team(client, admin):
    for name in ("alice", "bob", "eve"):
        assert client.post("/api/v1/users", json={"username": name, "password": f"{name}-password"},
                           headers=admin).status_code == 201
    response = client.post("/api/v1/projects", json={"name": "shop", "public": False, "admin": "alice"},
                           headers=admin)
    assert response.status_code == 201, response.json
    return client


def test_only_system_admins_create_projects(team):
    response = team.post("/api/v1/projects", json={"name": "mine"}, headers=ALICE)
    assert response.status_code == 403


@pytest.mark.parametrize("name", ["Shop", "a", "-x", "has/slash", "x" * 65])
def test_bad_project_names_state_the_rule(team, admin, name):
    response = team.post("/api/v1/projects", json={"name": name}, headers=admin)
    assert response.status_code == 400 and "project name must be" in response.json["error"]


def test_project_admin_manages_members(team):
    assert team.post("/api/v1/projects/shop/members", json={"username": "bob", "role": "developer"},
                     headers=ALICE).status_code == 201
    assert team.patch("/api/v1/projects/shop/members/bob", json={"role": "guest"},
                      headers=ALICE).json == {"username": "bob", "role": "guest"}
    members = team.get("/api/v1/projects/shop/members", headers=BOB).json
    assert {"username": "bob", "role": "guest"} in members
    assert team.delete("/api/v1/projects/shop/members/bob", headers=ALICE).status_code == 204
    assert team.get("/api/v1/projects/shop", headers=BOB).status_code == 404


def test_developers_cannot_manage_members(team):
    team.post("/api/v1/projects/shop/members", json={"username": "bob", "role": "developer"},
              headers=ALICE)
    response = team.post("/api/v1/projects/shop/members", json={"username": "eve", "role": "guest"},
                         headers=BOB)
    assert response.status_code == 403


@pytest.mark.parametrize("body, fragment", [
    ({"username": "nobody", "role": "guest"}, "unknown user"),
    ({"username": "bob", "role": "owner"}, "role"),
    ({"username": "bob"}, "role"),
])
def test_bad_member_input_is_a_400(team, body, fragment):
    response = team.post("/api/v1/projects/shop/members", json=body, headers=ALICE)
    assert response.status_code == 400 and fragment in response.json["error"]


def test_last_admin_cannot_leave_or_be_demoted(team):
    assert team.delete("/api/v1/projects/shop/members/alice", headers=ALICE).status_code == 409
    response = team.patch("/api/v1/projects/shop/members/alice", json={"role": "guest"}, headers=ALICE)
    assert response.status_code == 409 and "last admin" in response.json["error"]
    team.post("/api/v1/projects/shop/members", json={"username": "bob", "role": "admin"}, headers=ALICE)
    assert team.patch("/api/v1/projects/shop/members/alice", json={"role": "guest"},
                      headers=ALICE).status_code == 200


def test_outsiders_get_404_for_private_projects(team, admin):
    assert team.get("/api/v1/projects/shop", headers=EVE).status_code == 404
    assert team.post("/api/v1/projects/shop/members", json={"username": "eve", "role": "admin"},
                     headers=EVE).status_code == 404
    assert team.patch("/api/v1/projects/shop", json={"public": True}, headers=ALICE).status_code == 200
    assert team.get("/api/v1/projects/shop", headers=EVE).status_code == 200
    assert [p["name"] for p in team.get("/api/v1/projects", headers=EVE).json] == ["shop"]


def test_robot_secret_is_shown_once(team):
    created = team.post("/api/v1/projects/shop/robots", json={"name": "ci", "can_push": True},
                        headers=ALICE).json
    assert created["username"] == "robot$shop+ci" and len(created["secret"]) > 30
    listed = team.get("/api/v1/projects/shop/robots", headers=ALICE).json
    assert listed[0]["name"] == "ci" and "secret" not in listed[0]
    assert team.delete("/api/v1/projects/shop/robots/ci", headers=ALICE).status_code == 204
    assert team.get("/api/v1/projects/shop/robots", headers=ALICE).json[0]["revoked_at"]


def test_permission_changes_are_audited(team, admin):
    team.post("/api/v1/projects/shop/members", json={"username": "bob", "role": "developer"},
              headers=ALICE)
    events = team.get("/api/v1/audit?kind=member.", headers=admin).json
    assert events[0]["kind"] == "member.add" and events[0]["actor"] == "alice"
    assert team.get("/api/v1/audit", headers=ALICE).status_code == 403
