"""The release page: start a release from the form, see it under way, act on it, and the history."""
import re

import pytest

from berth.workloads import releases
from berth.workloads import services as workloads

PAGE = "/services/site/web/releases"


@pytest.fixture(autouse=True)
def no_tasks(monkeypatch):
    monkeypatch.setattr(releases, "enqueue", lambda *args: None)
    monkeypatch.setattr(workloads, "enqueue", lambda *args: None)
    monkeypatch.setattr(releases, "_check_image", lambda *args: None)


def _login(client, user, password):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": user, "password": password, "csrf_token": token})


def _csrf(page):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_an_operator_releases_from_the_page_and_rolls_back(client, admin, site):
    _login(client, "admin", "admin-password")
    page = client.get(PAGE).get_data(as_text=True)
    assert "No release yet." in page and 'id="release-form"' in page
    answer = client.post(PAGE, data={"image": "127.0.0.1:5000/library/busybox:2", "strategy": "canary",
                                     "batch": "25%", "csrf_token": _csrf(page)}, follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "Release 1 started: revision 1 to 2." in page and 'id="active-release"' in page
    assert "waiting for the first reconcile round" in page
    page = client.post(PAGE + "/1/rollback", data={"csrf_token": _csrf(page)},
                       follow_redirects=True).get_data(as_text=True)
    assert "rollback asked of release 1." in page and "rolled_back" in page
    assert 'id="release-form"' in page  # nothing under way: a new release may start


def test_bad_input_on_the_page_says_what_to_fix(client, admin, site):
    _login(client, "admin", "admin-password")
    page = client.get(PAGE).get_data(as_text=True)
    page = client.post(PAGE, data={"image": "127.0.0.1:5000/library/busybox:2", "strategy": "rolling",
                                   "batch": "0", "csrf_token": _csrf(page)},
                       follow_redirects=True).get_data(as_text=True)
    assert "batch must be at least 1" in page and "No release yet." in page


def test_viewers_see_the_history_but_no_form(client, site):
    _login(client, "viewer", "viewer-password")
    page = client.get(PAGE).get_data(as_text=True)
    assert "History" in page and 'id="release-form"' not in page


def test_the_plan_the_stages_and_the_revisions_with_their_diff(client, admin, site, database):
    from berth.hosts import services as hosts
    from berth.models import Service

    hosts.get_or_create_pool("c", "core")
    database.commit()
    _login(client, "admin", "admin-password")
    page = client.get(PAGE).get_data(as_text=True)
    page = client.post(PAGE, data={
        "image": "127.0.0.1:5000/library/busybox:2", "strategy": "rolling", "batch": "1",
        "max_surge": "1", "max_unavailable": "0", "stages": '[{"pools": ["core"]}]',
        "observe_s": "30", "csrf_token": _csrf(page)}, follow_redirects=True).get_data(as_text=True)
    assert "Release 1 started: revision 1 to 2." in page, page
    plan = page[page.index('id="release-plan"'):page.index('id="revisions"')]
    assert "batches of 1, max surge 1, max unavailable 0" in plan
    assert "core" in plan and "observed 30.0 s between stages" in plan
    assert 'hx-trigger="every 2s"' in page  # the release under way refreshes itself
    revisions = page[page.index('id="revisions"'):page.index('id="release-history"')]
    assert "busybox:2" in revisions and "<strong>image</strong>" in revisions
    # Once over, an earlier revision can be released again from its row.
    client.post(PAGE + "/1/rollback", data={"csrf_token": _csrf(page)})
    service = database.query(Service).filter_by(name="web").one()
    database.refresh(service)
    page = client.get(PAGE).get_data(as_text=True)
    assert "release this revision" in page
    page = client.post(PAGE, data={"revision": "2", "strategy": "rolling", "csrf_token": _csrf(page)},
                       follow_redirects=True).get_data(as_text=True)
    assert "Release 2 started: revision 1 to 2." in page, page


def test_stages_that_are_not_json_say_so(client, admin, site):
    _login(client, "admin", "admin-password")
    page = client.get(PAGE).get_data(as_text=True)
    page = client.post(PAGE, data={"image": "127.0.0.1:5000/library/busybox:2", "strategy": "rolling",
                                   "stages": "[{pools: core}", "csrf_token": _csrf(page)},
                       follow_redirects=True).get_data(as_text=True)
    assert "stages must be JSON" in page and "No release yet." in page
