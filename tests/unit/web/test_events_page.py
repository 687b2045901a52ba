"""The events page: filters, bad dates, paging, and who sees which events."""
from __future__ import annotations

import html
import re
from datetime import datetime

import pytest

from berth import accounts, audit, db
from berth.projects import services as projects
from tests.support import csrf_token_of as token_of, login


def messages(page: str) -> list[str]:
    """The message column of the events table, top to bottom."""
    body = page.split('id="events"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]  # skip the header
    return [html.unescape(re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[-1]) for row in rows
            if "colspan" not in row]


def event(kind, message, *, at, subject_type=None, subject=None, actor=None):
    record = audit.record(kind, message, subject_type=subject_type, subject=subject, actor=actor,
                          source_addr="10.0.0.7")
    record.at = at
    return record


@pytest.fixture
def history(app, admin):
    """shop is private (alice admin), pub is public; olga is in no project."""
    with app.app_context(), db.unit_of_work():
        system = accounts.find_user("admin")
        alice = accounts.create_user("alice", "alice-password")
        accounts.create_user("olga", "olga-password")
        db.session.flush()
        projects.create_project("shop", public=False, actor=system, admin=alice)
        projects.create_project("pub", public=True, actor=system)
        db.session.flush()
        db.session.query(audit.Event).delete()  # only the events below
        event("member.add", "m1 bob joined shop", at=datetime(2020, 11, 20, 10), actor="alice",
              subject_type="project", subject="shop")
        event("image.push", "p1 pushed shop/web:v1", at=datetime(2020, 11, 21, 10),
              actor="alice", subject_type="repository", subject="shop/web")
        event("image.push", "p2 pushed pub/tool:v1", at=datetime(2020, 11, 22, 10),
              actor="carol", subject_type="repository", subject="pub/tool")
        event("member.add", "m2 dan joined pub", at=datetime(2020, 11, 23, 12),
              actor="admin", subject_type="project", subject="pub")
        event("image.pull", "p3 pulled shop-x/app", at=datetime(2020, 11, 23, 13),
              actor="carol", subject_type="repository", subject="shopx/app")
        event("user.create", "u1 created user olga", at=datetime(2020, 11, 24, 9),
              actor="admin", subject_type="user", subject="olga")


def test_admin_sees_everything_newest_first(client, history):
    login(client, "admin", "admin-password")
    page = client.get("/events/")
    assert page.status_code == 200
    assert messages(page.text) == [
        "admin logged in", "u1 created user olga", "p3 pulled shop-x/app", "m2 dan joined pub",
        "p2 pushed pub/tool:v1", "p1 pushed shop/web:v1", "m1 bob joined shop"]
    assert "10.0.0.7" in page.text and "2020-11-24 09:00:00" in page.text


def test_filter_by_kind_prefix_and_actor(client, history):
    login(client, "admin", "admin-password")
    assert messages(client.get("/events/?kind=member.").text) == [
        "m2 dan joined pub", "m1 bob joined shop"]
    assert messages(client.get("/events/?kind=image.").text) == [
        "p3 pulled shop-x/app", "p2 pushed pub/tool:v1", "p1 pushed shop/web:v1"]
    assert messages(client.get("/events/?kind=image.&actor=carol").text) == [
        "p3 pulled shop-x/app", "p2 pushed pub/tool:v1"]
    assert messages(client.get("/events/?subject=shop").text) == ["m1 bob joined shop"]
    # a prefix not in the select still works, and is shown as selected
    page = client.get("/events/?kind=image.pu").text
    assert len(messages(page)) == 3 and '<option selected value="image.pu">' in page


def test_filter_by_dates(client, history):
    login(client, "admin", "admin-password")
    # a bare `until` date includes its whole day
    assert messages(client.get("/events/?since=2020-11-22&until=2020-11-23").text) == [
        "p3 pulled shop-x/app", "m2 dan joined pub", "p2 pushed pub/tool:v1"]
    assert messages(client.get("/events/?since=2020-11-23T12:30").text) == [
        "admin logged in", "u1 created user olga", "p3 pulled shop-x/app"]
    assert messages(client.get("/events/?until=2020-11-21T10:00").text) == ["m1 bob joined shop"]


@pytest.mark.parametrize("query", ["since=yesterday", "until=2026-13-01", "since=23.11.2026",
                                   "since=2020-11-23T25:00"])
def test_a_bad_date_is_a_400_naming_the_format(client, history, query):
    login(client, "admin", "admin-password")
    response = client.get(f"/events/?{query}")
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.text and "2026-11-23T12:00" in response.text
    assert messages(response.text) == []


def test_an_outsider_sees_only_events_about_projects_they_can_see(client, history):
    login(client, "olga", "olga-password")
    seen = messages(client.get("/events/").text)
    assert seen == ["m2 dan joined pub", "p2 pushed pub/tool:v1"]
    # filtering does not widen what they may see
    assert messages(client.get("/events/?subject=shop").text) == []
    assert messages(client.get("/events/?kind=image.&actor=alice").text) == []


@pytest.mark.parametrize("page", ["/", "/overview"])
def test_the_dashboard_shows_an_outsider_no_other_projects_events(client, history, page):
    login(client, "olga", "olga-password")
    text = client.get(page).text
    assert "m2 dan joined pub" in text and "p2 pushed pub/tool:v1" in text
    for hidden in ("m1 bob joined shop", "p1 pushed shop/web:v1", "u1 created user olga"):
        assert hidden not in text


def test_the_dashboard_shows_a_member_their_private_project(client, history):
    login(client, "alice", "alice-password")
    assert "p1 pushed shop/web:v1" in client.get("/overview").text


def test_a_member_sees_their_private_project(client, history):
    login(client, "alice", "alice-password")
    assert messages(client.get("/events/").text) == [
        "m2 dan joined pub", "p2 pushed pub/tool:v1", "p1 pushed shop/web:v1",
        "m1 bob joined shop"]


def test_older_pages_keep_the_filters(client, app, admin):
    with app.app_context(), db.unit_of_work():
        for n in range(55):
            event("host.up", f"h{n:02d}", at=datetime(2020, 11, 1), subject_type="host",
                  subject="h")
        event("user.create", "not a host event", at=datetime(2020, 11, 2))
    login(client, "admin", "admin-password")
    first = client.get("/events/?kind=host.").text
    assert messages(first)[0] == "h54" and messages(first)[-1] == "h05"
    older = html.unescape(re.search(r'href="([^"]+)">Older<', first).group(1))
    assert "kind=host." in older and "before=" in older
    second = client.get(older).text
    assert messages(second) == ["h04", "h03", "h02", "h01", "h00"]
    assert ">Older<" not in second and ">Newest<" in second
