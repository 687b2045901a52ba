"""Lists that grow with the fleet come a page at a time: the hosts table (and its htmx
refresh, which keeps the page) and the services list (by application); a bad page is a 400
that says what to fix."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from berth import db
from berth.clock import utcnow
from berth.hosts import services
from berth.models import Host
from berth.workloads import definitions
from tests.support import count_queries, login
from web.hosts import HOSTS_PER_PAGE
from web.services import APPLICATIONS_PER_PAGE

HOSTS = HOSTS_PER_PAGE * 2 + 7        # three pages, the last one short
APPLICATIONS = APPLICATIONS_PER_PAGE + 3


@pytest.fixture
def admin_client(client, admin):
    client.token = login(client, "admin", "admin-password")
    return client


@pytest.fixture
def many_hosts(app, admin):
    """h000, h001, ... in one pool; every third one down, the rest up."""
    with app.app_context(), db.unit_of_work():
        pool = services.get_or_create_pool("c1", "p1")
        now = utcnow()
        for n in range(HOSTS):
            down = n % 3 == 0
            db.session.add(Host(name=f"h{n:03d}", endpoint=f"tcp://h{n:03d}:2376", cpus=4.0,
                                memory=2**30, pool=pool, liveness="down" if down else "up",
                                last_heartbeat_at=None if down else now - timedelta(seconds=1)))


def hosts_in(html: str) -> list[str]:
    return re.findall(r"<strong>(h\d{3})</strong>", html)


def test_the_hosts_table_comes_a_page_at_a_time(admin_client, many_hosts):
    first = admin_client.get("/hosts/").text
    second = admin_client.get("/hosts/?page=2").text
    assert hosts_in(first) == [f"h{n:03d}" for n in range(HOSTS_PER_PAGE)]
    assert hosts_in(second) == [f"h{n:03d}" for n in range(HOSTS_PER_PAGE, 2 * HOSTS_PER_PAGE)]
    assert f"Page 2 of 3 · {HOSTS_PER_PAGE + 1}–{2 * HOSTS_PER_PAGE} of {HOSTS} hosts" in second
    assert 'href="/hosts/?page=1"' in second and 'href="/hosts/?page=3"' in second
    last = admin_client.get("/hosts/?page=3").text
    assert len(hosts_in(last)) == 7 and 'rel="next"' not in last


def test_the_refresh_keeps_the_page_and_the_filter(admin_client, many_hosts):
    up = [f"h{n:03d}" for n in range(HOSTS) if n % 3]
    assert HOSTS_PER_PAGE < len(up) <= 2 * HOSTS_PER_PAGE
    page = admin_client.get("/hosts/?state=up&page=2").text
    assert 'hx-get="/hosts/table?state=up&amp;page=2"' in page
    partial = admin_client.get("/hosts/table?state=up&page=2").text
    assert hosts_in(partial) == up[HOSTS_PER_PAGE:]  # the filter applies before the paging
    assert f"of {len(up)} hosts" in partial
    assert 'href="/hosts/?state=up&amp;page=1"' in partial


def test_a_page_past_the_end_shows_the_last_one(admin_client, many_hosts):
    assert hosts_in(admin_client.get("/hosts/?page=99").text) == \
        [f"h{n:03d}" for n in range(2 * HOSTS_PER_PAGE, HOSTS)]


@pytest.mark.parametrize("url", ["/hosts/?page=abc", "/hosts/table?page=0",
                                 "/services/?page=-1", "/services/?page=1.5",
                                 "/hosts/?page=%C2%B2"])  # a superscript 2: a digit, not an int
def test_a_bad_page_is_a_400_that_names_it(admin_client, many_hosts, url):
    response = admin_client.get(url)
    assert response.status_code == 400
    assert "page must be a whole number from 1" in response.text
    api_style = admin_client.get(url, headers={"Accept": "application/json"})
    assert api_style.status_code == 400 and "page" in api_style.json["error"]


@pytest.fixture
def many_applications(app, admin):
    with app.app_context(), db.unit_of_work():
        for n in range(APPLICATIONS):
            definitions.create_application({"name": f"app{n:02d}", "services": [
                {"name": "web", "image": "127.0.0.1:5000/library/busybox:1"},
                {"name": "db", "image": "127.0.0.1:5000/library/busybox:1"}]}, actor="admin")


def applications_in(html: str) -> list[str]:
    return re.findall(r'<h2 class="h5 mb-0">(app\d{2})</h2>', html)


def test_the_services_list_comes_an_application_page_at_a_time(admin_client, many_applications):
    first = admin_client.get("/services/").text
    assert applications_in(first) == [f"app{n:02d}" for n in range(APPLICATIONS_PER_PAGE)]
    assert first.count('href="/services/app00/') == 2  # its services are listed with it
    second = admin_client.get("/services/?page=2").text
    assert applications_in(second) == [f"app{n:02d}" for n in range(APPLICATIONS_PER_PAGE,
                                                                    APPLICATIONS)]
    assert f"Page 2 of 2 · {APPLICATIONS_PER_PAGE + 1}–{APPLICATIONS} of {APPLICATIONS} " \
           "applications" in second


def test_the_services_list_loads_a_page_in_a_few_queries(app, admin_client, many_applications):
    with app.app_context():
        queries = count_queries(lambda: admin_client.get("/services/"))
    # Not one or two per application: a page of 20 would be 40 more.
    assert queries < APPLICATIONS_PER_PAGE, queries
