"""The autoscaling policy through the API: defaults, partial changes, 400s that say what to
fix, who may change it, and the policy shown with its service."""
from __future__ import annotations

from tests.support import basic_auth

PATH = "/api/v1/applications/site/services/web/autoscaling"


def test_a_policy_starts_from_defaults_and_changes_field_by_field(client, site, admin):
    assert client.get(PATH, headers=admin).status_code == 404
    created = client.put(PATH, json={"max_replicas": 6}, headers=admin)
    assert created.status_code == 200
    assert {k: created.json[k] for k in ("enabled", "min_replicas", "max_replicas",
                                         "target_cpu_percent", "cpu_basis")} == {
        "enabled": True, "min_replicas": 1, "max_replicas": 6, "target_cpu_percent": 50.0,
        "cpu_basis": "limit"}
    changed = client.put(PATH, json={"target_cpu_percent": 70}, headers=admin).json
    assert changed["target_cpu_percent"] == 70 and changed["max_replicas"] == 6
    service = client.get("/api/v1/applications/site", headers=admin).json["services"][0]
    assert service["autoscaling"]["target_cpu_percent"] == 70
    assert client.delete(PATH, headers=admin).status_code == 204
    assert client.get(PATH, headers=admin).status_code == 404


def test_bad_policies_are_400s_that_say_what_to_fix(client, site, admin):
    wrong = client.put(PATH, json={"min_replicas": 4, "max_replicas": 2}, headers=admin)
    assert wrong.status_code == 400 and "min_replicas <= max_replicas" in wrong.json["error"]
    unknown = client.put(PATH, json={"speed": 3}, headers=admin)
    assert unknown.status_code == 400 and "speed" in str(unknown.json)
    assert client.get(PATH, headers=admin).status_code == 404  # nothing half-stored


def test_only_operators_change_a_policy(client, site, admin):
    viewer = basic_auth("viewer", "viewer-password")
    assert client.put(PATH, json={}, headers=viewer).status_code == 403
    client.put(PATH, json={}, headers=admin)
    assert client.get(PATH, headers=viewer).status_code == 200
    assert client.delete(PATH, headers=viewer).status_code == 403
