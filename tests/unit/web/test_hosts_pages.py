"""Host pages: the table and its htmx partial, adding hosts, admin states, permissions."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from berth import accounts, db
from berth.clock import utcnow
from berth.engine.fake import FakeEngine
from berth.hosts import services
from berth.models import Application, Cluster, ContainerInstance, Event, Host, Service
from tests import support
from tests.support import csrf_token_of as token_of, login

LIVE = "tcp://10.0.0.5:2376"
DEAD = "tcp://10.0.0.9:2376"


def make_tls() -> dict[str, str]:
    """The form's field names for the shared TLS material."""
    return {f"tls_{name}": pem for name, pem in support.make_tls().items()}


def key_body(pem: str) -> str:
    """The secret part of a PEM key: what must never come back."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


@pytest.fixture
def engines(app):
    """Engines by endpoint URL; any other URL is an engine that does not answer."""
    found = {LIVE: FakeEngine(cpus=32, memory=64 * 2**30)}
    seen = []

    def connect(endpoint):
        seen.append(endpoint)
        return found.get(endpoint.url) or FakeEngine(alive=False)

    app.config["BERTH_ENGINE_CONNECT"] = connect
    found["seen"] = seen
    return found


@pytest.fixture
def admin_client(client, admin, engines):
    client.token = login(client, "admin", "admin-password")
    return client


@pytest.fixture
def olga(app, client, engines):
    """Logged in, not a system admin."""
    with app.app_context(), db.unit_of_work():
        accounts.create_user("olga", "olga-password")
    client.token = login(client, "olga", "olga-password")
    return client


FORM = {"name": "web-01", "endpoint": LIVE, "cluster": "web", "pool": "p1", "idc": "bj",
        "labels": "disk=ssd\nzone=a, rack=r1", "port_range_start": "20000",
        "port_range_end": "29999", "disk_type": "ssd", "disk_gb": "500"}


def add(client, **changes):
    return client.post("/hosts/new", data={"csrf_token": client.token, **FORM, **changes})


def counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Host)),
                db.session.scalar(select(func.count()).select_from(Cluster)),
                db.session.scalar(select(func.count()).select_from(Event).where(
                    Event.kind == "host.add")))


def test_admin_adds_a_host_and_sees_what_the_engine_said(admin_client, app):
    form = admin_client.get("/hosts/new")
    assert form.status_code == 200 and "Checking the engine…" in form.text
    response = add(admin_client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/hosts/")
    page = admin_client.get("/hosts/").text
    assert "Host web-01 added" in page
    assert "0 / 32 CPUs" in page and "0.0 / 64.0 GiB" in page  # read from the engine
    for badge in ("disk=ssd", "rack=r1", "zone=a"):
        assert badge in page
    assert "TLS: no" in page and "kernel fake" in page
    with app.app_context():
        host = db.session.scalar(select(Host))
        assert (host.labels, host.idc, host.disk_gb, host.pool.cluster.name) == (
            {"disk": "ssd", "zone": "a", "rack": "r1"}, "bj", 500, "web")


@pytest.mark.parametrize("changes, status, message", [
    ({"endpoint": DEAD}, 400, f"the engine at {DEAD} did not answer"),
    ({"labels": "disk=ssd\nssd"}, 400, "label line 2 &#39;ssd&#39; must be key=value"),
    ({"labels": "disk=ssd, =x"}, 400, "label line 1 &#39;=x&#39; must be key=value"),
    ({"labels": "disk=ssd\ndisk=hdd"}, 400, "label line 2: &#39;disk&#39; is given twice"),
    ({"labels": "disk=s s"}, 400, "label line 1: label disk: value"),
    ({"endpoint": "http://x:2375"}, 400, "must start with unix:// or tcp://"),
    ({"port_range_start": "30000", "port_range_end": "20000"}, 400, "must not be below"),
    ({"disk_type": "tape"}, 400, "Not a valid choice"),
    ({"name": ""}, 400, "This field is required"),
    ({"tls_ca": make_tls()["tls_ca"]}, 400, "TLS needs all three"),
    ({"tls_ca": "x", "tls_cert": "y", "tls_key": "z"}, 400, "the CA certificate must be PEM"),
])
def test_refusals_rerender_the_form_and_save_nothing(admin_client, app, engines, changes,
                                                     status, message):
    response = add(admin_client, **changes)
    assert response.status_code == status
    assert message in response.text
    assert 'value="bj"' in response.text  # what was typed comes back
    assert counts(app) == (0, 0, 0)
    # The engine is asked only once the input is sound.
    assert [e.url for e in engines["seen"]] == ([DEAD] if changes.get("endpoint") == DEAD else [])


def test_duplicate_name_is_refused(admin_client, app):
    assert add(admin_client).status_code == 302
    response = add(admin_client, idc="sh")
    assert response.status_code == 400 and "host &#39;web-01&#39; already exists" in response.text
    assert counts(app) == (1, 1, 1)


def test_tls_key_is_never_sent_back(admin_client, app, engines):
    tls = make_tls()
    secret = key_body(tls["tls_key"])
    # Refused (engine silent): the certificates come back as typed, the key does not.
    refused = add(admin_client, endpoint=DEAD, **tls)
    assert refused.status_code == 400 and secret not in refused.text
    assert key_body(tls["tls_cert"])[:40] in refused.text
    # A key that is not the certificate's: the message says so without quoting it.
    other = make_tls()
    mismatched = add(admin_client, **{**tls, "tls_key": other["tls_key"]})
    assert mismatched.status_code == 400
    assert "does not belong to the client certificate" in mismatched.text
    assert key_body(other["tls_key"]) not in mismatched.text

    assert add(admin_client, **tls).status_code == 302
    assert engines["seen"][-1].tls.key == tls["tls_key"].strip() + "\n"  # the engine got it
    for url in ("/hosts/", "/hosts/table", "/hosts/clusters", "/hosts/new",
                "/api/v1/hosts", "/api/v1/hosts/1", "/api/v1/clusters"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert secret not in response.text, url
        assert "PRIVATE KEY-----\n" not in response.text, url
    assert "TLS: yes" in admin_client.get("/hosts/").text


def test_others_see_the_hosts_but_no_admin_actions(admin_client, app, olga):
    with app.app_context(), db.unit_of_work():
        services.add_host("web-01", LIVE, cluster="web", pool="p1",
                          connect=app.config["BERTH_ENGINE_CONNECT"])
    page = olga.get("/hosts/")
    assert page.status_code == 200 and "web-01" in page.text
    assert "Add host" not in page.text and "/state" not in page.text
    assert olga.get("/hosts/new").status_code == 403
    assert add(olga, name="web-02").status_code == 403
    response = olga.post("/hosts/1/state", data={"csrf_token": olga.token, "state": "draining"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Host, 1).admin_state == "active"
        assert counts(app)[0] == 1


def test_admin_changes_the_admin_state_with_an_event(admin_client, app):
    assert add(admin_client).status_code == 302
    page = admin_client.get("/hosts/").text
    assert 'data-confirm="Drain web-01? Drain moves its containers elsewhere' in page
    assert "onsubmit" not in page  # berth.js asks (the CSP forbids inline handlers)
    response = admin_client.post("/hosts/1/state",
                                 data={"csrf_token": admin_client.token, "state": "draining"})
    assert response.status_code == 302
    assert "web-01 is now draining" in admin_client.get("/hosts/").text
    bad = admin_client.post("/hosts/1/state", data={"csrf_token": admin_client.token,
                                                   "state": "gone"})
    assert bad.status_code == 302
    assert admin_client.post("/hosts/99/state", data={"csrf_token": admin_client.token,
                                                      "state": "paused"}).status_code == 404
    with app.app_context():
        assert db.session.get(Host, 1).admin_state == "draining"
        [event] = db.session.scalars(select(Event).where(Event.kind == "host.admin_state"))
        assert (event.actor, event.subject, event.message) == (
            "admin", "web-01", "web-01: active -> draining")


def test_state_change_needs_the_csrf_token(admin_client, app):
    assert add(admin_client).status_code == 302
    assert admin_client.post("/hosts/1/state", data={"state": "paused"}).status_code == 400


@pytest.fixture
def fleet(app, engines):
    """web/p1: a (up, 1.5 CPUs and 2 GiB placed of 12 and 16), b (up but stale);
    batch/p1: c (down, with an error)."""
    with app.app_context(), db.unit_of_work():
        now = utcnow()
        for name, cluster, liveness, heartbeat in (
                ("a", "web", "up", now), ("b", "web", "up", now - timedelta(minutes=5)),
                ("c", "batch", "down", None)):
            db.session.add(Host(
                name=name, endpoint=f"tcp://{name}:2376", cpus=12.0, memory=16 * 2**30,
                pool=services.get_or_create_pool(cluster, "p1"), liveness=liveness,
                last_heartbeat_at=heartbeat, labels={"disk": "ssd"},
                last_error="connection refused " * 5 if name == "c" else None))
        from berth.workloads.access import project_for_new_by_default

        application = Application(name="shop", project=project_for_new_by_default())
        service = Service(application=application, name="api", image="shop/api:1", cpus=0.75,
                          memory=2**30)
        db.session.add_all([application, service])
        db.session.flush()
        host_a = db.session.scalar(select(Host).where(Host.name == "a"))
        for slot in (1, 2):
            db.session.add(ContainerInstance(service_id=service.id, host_id=host_a.id,
                                             slot=slot, revision=1, name=f"api-{slot}",
                                             state="running"))


def row_of(html: str, name: str) -> str:
    return re.search(rf'<tr id="host-\d+">\s*<td>\s*<strong>{name}</strong>.*?</tr>', html,
                     re.S).group(0)


def test_table_shows_usage_liveness_and_errors(olga, fleet):
    page = olga.get("/hosts/").text
    a, b, c = (row_of(page, name) for name in "abc")
    assert "1.5 / 12 CPUs" in a and "2.0 / 16.0 GiB" in a and 'data-width="12"' in a
    assert ">up</span>" in a and "s ago" in a
    assert ">stale</span>" in b and "5 min ago" in b
    assert ">down</span>" in c and "never" in c
    assert 'title="connection refused connection refused' in c  # the whole error, on hover
    assert "disk=ssd" in a


@pytest.mark.parametrize("query, shown", [
    ("", "cab"),  # by cluster (batch, web), then pool and name
    ("?cluster=web", "ab"),
    ("?cluster=batch", "c"),
    ("?state=up", "a"),
    ("?state=stale", "b"),
    ("?state=down", "c"),
    ("?state=active", "cab"),
    ("?state=paused", ""),
    ("?cluster=web&pool=p1", "ab"),
    ("?state=bogus", "cab"),  # ignored
])
def test_filters(olga, fleet, query, shown):
    for url in ("/hosts/" + query, "/hosts/table" + query):
        html = olga.get(url).text
        assert "".join(re.findall(r"<strong>(\w)</strong>", html)) == shown, url


def test_the_partial_is_the_table_alone_and_keeps_polling(olga, fleet):
    page = olga.get("/hosts/?cluster=web").text
    assert 'hx-get="/hosts/table?cluster=web" hx-trigger="every 10s" hx-swap="outerHTML"' in page
    partial = olga.get("/hosts/table?cluster=web", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    text = partial.text.strip()
    assert text.startswith('<div id="hosts-table"')
    assert text.endswith("</div>")
    assert "<html" not in text and "navbar" not in text and "<form method=\"get\"" not in text
    assert 'hx-get="/hosts/table?cluster=web"' in text  # the swapped-in copy polls on


def test_clusters_page_counts_and_links(olga, fleet):
    page = olga.get("/hosts/clusters").text
    assert 'href="/hosts/?cluster=web"' in page and 'href="/hosts/?cluster=web&amp;pool=p1"' in page
    web = re.search(r'cluster=web">web</a>.*?</tr>', page, re.S).group(0)
    assert re.findall(r">(\d+)</th>", web) == ["1", "0", "2"]  # up, down, total (b is stale)


def test_pages_need_a_login(client):
    for url in ("/hosts/", "/hosts/table", "/hosts/new", "/hosts/clusters"):
        assert client.get(url).status_code == 302, url
