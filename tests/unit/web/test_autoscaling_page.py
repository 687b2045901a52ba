"""Autoscaling from the service page: the form, what it stores, and what it refuses."""
from __future__ import annotations

from berth.workloads import services as workloads
from tests.support import csrf_token_of, login

PAGE = "/services/site/web"


def policy(app):
    with app.app_context():
        return workloads.get_service("site", "web").autoscaling


def post(client, **fields):
    token = csrf_token_of(client.get(PAGE).text)
    return client.post(PAGE + "/autoscaling", data={"csrf_token": token, **fields},
                       follow_redirects=True)


def test_an_admin_turns_autoscaling_on_and_the_page_shows_it(app, client, site):
    login(client, "admin", "admin-password")
    page = post(client, enabled="y", min_replicas="2", max_replicas="5", target_cpu_percent="60")
    assert "the autoscaler now sets the replicas" in page.text
    stored = policy(app)
    assert (stored.enabled, stored.min_replicas, stored.max_replicas,
            stored.target_cpu_percent) == (True, 2, 5, 60.0)
    live = " ".join(client.get(PAGE + "/instances").text.split())
    assert "Autoscaler: 2–5 replicas at 60% CPU of the limit" in live


def test_an_impossible_policy_is_refused_with_the_reason(app, client, site):
    login(client, "admin", "admin-password")
    page = post(client, enabled="y", min_replicas="5", max_replicas="2", target_cpu_percent="50")
    assert "Autoscaling not changed" in page.text and "min_replicas" in page.text
    assert policy(app) is None


def test_a_viewer_sees_no_form_and_cannot_post(app, client, site):
    token = login(client, "viewer", "viewer-password")
    assert "autoscaling-form" not in client.get(PAGE).text
    response = client.post(PAGE + "/autoscaling", data={"csrf_token": token, "min_replicas": "1",
                                                        "max_replicas": "2", "target_cpu_percent": "5"})
    assert response.status_code == 403 and policy(app) is None


def test_the_page_says_who_owns_the_replica_count(client, site):
    login(client, "admin", "admin-password")
    page = " ".join(client.get(PAGE).text.split())
    assert "While autoscaling is on, the autoscaler owns the replica count" in page
    assert "turn autoscaling off or set minimum = maximum" in page
