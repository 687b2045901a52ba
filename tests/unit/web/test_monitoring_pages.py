"""The monitoring parts of the pages: the dashboard's fleet figures and top services, the
service page's figures, charts hook and live logs, the host page, and the application's
dependency graph. berth.monitoring.series is monkeypatched: the pages are under test."""
from __future__ import annotations

import re
import types

import pytest
from sqlalchemy import select

from berth import accounts, db
from berth.clock import utcnow
from berth.engine import EngineError
from berth.hosts import services as host_services
from berth.models import Application, ContainerInstance, Host, Project, Service
from berth.workloads import definitions
from tests.support import login
from web import pages

IMAGE = "127.0.0.1:5000/library/busybox:1"


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def shop(app, admin):
    """Application `shop`: web -> api -> db; api runs two instances on host h1 (sampled), and
    one of its services fails; `site` (from the fixture) is another project's."""
    with app.app_context(), db.unit_of_work():
        definitions.create_application({"name": "shop", "services": [
            {"name": "db", "image": IMAGE},
            {"name": "api", "image": IMAGE, "replicas": 2, "depends_on": {"db": "healthy"}},
            {"name": "web", "image": IMAGE, "depends_on": {"api": "started"}}]}, actor="admin")
        db.session.flush()
        host = Host(name="h1", endpoint="tcp://h1:2376", cpus=8.0, memory=16 * 2**30,
                    pool=host_services.get_or_create_pool("c1", "p1"), liveness="up",
                    last_heartbeat_at=utcnow())
        db.session.add(host)
        db.session.flush()
        by_name = {s.name: s for s in db.session.scalars(select(Service))}
        by_name["api"].status = "healthy"
        by_name["web"].status = "failing"
        for slot, (cpu, memory, lines, errors) in enumerate(
                ((40.0, 100 * 2**20, 90, 9), (20.0, 50 * 2**20, 10, 1)), start=1):
            db.session.add(ContainerInstance(
                service=by_name["api"], host_id=host.id, slot=slot, revision=1,
                name=f"shop-api-1-{slot}", container_id=f"c{slot}", state="running",
                health="healthy", cpu_percent=cpu, memory_bytes=memory, log_lines=lines,
                error_lines=errors))
    with app.app_context():
        return db.session.scalar(select(Host.id).where(Host.name == "h1"))


def fake_series(calls: list):
    def top_services(service_ids, by, limit):
        calls.append((None if service_ids is None else sorted(service_ids), by, limit))
        services = [{"application": "shop", "service": "api", "value": 0.25}] if by != "qps" else []
        return {"source": "prometheus", "by": by, "services": services}
    return types.SimpleNamespace(top_services=top_services)


def test_the_dashboard_shows_fleet_figures_and_top_services(client, shop, monkeypatch):
    calls: list = []
    login(client, "admin", "admin-password")
    monkeypatch.setattr(pages, "_series_module", lambda: fake_series(calls))
    page = client.get("/overview").text
    assert re.search(r'id="hosts-up">1<', page)
    assert re.search(r'id="services-healthy">1<', page)
    assert re.search(r'id="services-failing">1<', page)
    assert re.search(r'id="services-degraded">1<', page)  # db: pending
    assert re.search(r'id="instances-running">2<', page)
    assert [by for _, by, _ in calls] == ["qps", "p999_s", "error_ratio", "cpu_percent"]
    assert all(ids is None for ids, _, _ in calls)  # an admin sees every service
    top = text(page.split('id="top-error_ratio"')[1].split("</table>")[0])
    assert "shop / api 25.00 %" in top
    assert "shop / api 250.0 ms" in text(page.split('id="top-p999_s"')[1].split("</table>")[0])
    assert "None." in text(page.split('id="top-qps"')[1].split("</table>")[0])
    # The dashboard itself carries the same body, refreshed by htmx every 10 s.
    dashboard = client.get("/").text
    assert 'hx-get="/overview" hx-trigger="every 10s"' in dashboard and 'id="top-services"' in dashboard


def test_top_services_are_asked_over_the_services_a_member_may_see(app, client, site, shop,
                                                                   monkeypatch):
    calls: list = []
    with app.app_context(), db.unit_of_work():
        definitions.create_application({"name": "vault", "services": [
            {"name": "keys", "image": IMAGE}]}, actor="admin", project=Project(name="secret"))
    login(client, "viewer", "viewer-password")
    monkeypatch.setattr(pages, "_series_module", lambda: fake_series(calls))
    assert client.get("/overview").status_code == 200
    with app.app_context():
        seen = sorted(db.session.scalars(select(Service.id).where(
            Service.application.has(Application.project.has(name="default")))))
        hidden = db.session.scalar(select(Service.id).where(Service.name == "keys"))
    assert seen and hidden not in seen
    assert len(calls) == 4 and all(ids == seen for ids, _, _ in calls)


def test_the_dashboard_stands_when_monitoring_fails(client, shop, monkeypatch):
    login(client, "admin", "admin-password")

    def broken(*_args):
        raise RuntimeError("prometheus fell over")
    monkeypatch.setattr(pages, "_series_module", lambda: types.SimpleNamespace(top_services=broken))
    page = client.get("/overview").text
    assert page.count("Not available right now.") == 4 and 'id="instances-running">2<' in page


def test_the_service_page_shows_figures_as_text_and_hooks_the_charts(client, shop):
    login(client, "admin", "admin-password")
    page = client.get("/services/shop/api").text
    assert 'data-series-url="/api/v1/applications/shop/services/api/metrics"' in page
    assert "berth-charts.js" in page and "uPlot-1.6.32.iife.min.js" in page
    figures = text(page.split('id="current-figures"')[1].split("</table>")[0])
    assert "desired 2 · running 2 · healthy 2" in figures
    assert "CPU (all instances) 60.0 %" in figures
    assert "memory (all instances) 150.0 MiB" in figures
    assert "error log lines 10 of 100 (10.00 %)" in figures
    per_instance = text(page.split('id="instance-figures"')[1].split("</table>")[0])
    assert "shop-api-1-1 1 40.0 % 100.0 MiB 9 / 90" in per_instance
    assert page.count('class="me-2 logs-link"') == 2


def test_pages_without_charts_do_not_load_the_chart_code(client, shop):
    login(client, "admin", "admin-password")
    assert "berth-charts.js" not in client.get("/").text
    assert "berth-charts.js" not in client.get("/services/").text


class LogEngine:
    def __init__(self, lines=None, error=None):
        self.lines, self.error, self.asked = lines, error, []

    def logs_since(self, container_id, since, until):
        self.asked.append((container_id, since, until))
        if self.error:
            raise EngineError(self.error)
        return self.lines

    def close(self):
        pass


def instance_id(app, name):
    with app.app_context():
        return db.session.scalar(select(ContainerInstance.id).where(ContainerInstance.name == name))


def test_an_instance_log_tail_polls_itself(app, client, shop):
    engine = LogEngine([f"line {n}" for n in range(250)])
    app.config["BERTH_ENGINE_CONNECT"] = lambda endpoint: engine
    login(client, "admin", "admin-password")
    row = instance_id(app, "shop-api-1-1")
    url = f"/services/shop/api/instances/{row}/logs"
    page = client.get(url).text
    assert f'hx-get="{url}"' in page and 'hx-trigger="every 2s"' in page
    body = page.split('id="logs-lines">')[1].split("</pre>")[0].splitlines()
    assert body[0] == "line 50" and body[-1] == "line 249" and len(body) == 200
    (container, since, until), = engine.asked
    assert container == "c1" and until - since == pytest.approx(3600)
    client.get(url + f"?since={until - 5}")
    assert engine.asked[-1][1] == pytest.approx(until - 5)


def test_a_log_read_that_fails_says_why(app, client, shop):
    app.config["BERTH_ENGINE_CONNECT"] = lambda endpoint: LogEngine(error="connection refused")
    login(client, "admin", "admin-password")
    page = client.get(f"/services/shop/api/instances/{instance_id(app, 'shop-api-1-2')}/logs").text
    assert "The engine did not answer: connection refused" in page
    app.config["BERTH_ENGINE_CONNECT"] = lambda endpoint: LogEngine(lines=None)
    page = client.get(f"/services/shop/api/instances/{instance_id(app, 'shop-api-1-2')}/logs").text
    assert "The container is gone." in page


def test_logs_are_for_those_who_see_the_service_and_of_its_own_instances(app, client, site, shop):
    app.config["BERTH_ENGINE_CONNECT"] = lambda endpoint: LogEngine([])
    row = instance_id(app, "shop-api-1-1")
    with app.app_context(), db.unit_of_work():
        accounts.create_user("outsider", "outsider-password")
    login(client, "outsider", "outsider-password")
    assert client.get(f"/services/shop/api/instances/{row}/logs").status_code in (403, 404)
    login(client, "admin", "admin-password")
    assert client.get(f"/services/shop/web/instances/{row}/logs").status_code == 404
    assert client.get("/services/shop/api/instances/999999/logs").status_code == 404


def test_the_host_page_shows_facts_allocation_and_use_against_capacity(client, shop):
    login(client, "admin", "admin-password")
    page = client.get(f"/hosts/{shop}").text
    assert "Host h1" in page and f'data-series-url="/api/v1/hosts/{shop}/metrics"' in page
    capacity = text(page.split('id="host-capacity"')[1].split("</table>")[0])
    assert "CPU 8 cores 0.2 cores (2 %) 0.6 cores (8 %)" in capacity
    assert "memory 16.0 GiB 0.1 GiB (1 %) 0.1 GiB (1 %)" in capacity
    allocation = text(page.split('id="host-instances"')[1].split("</table>")[0])
    assert "shop-api-1-1 shop / api running" in allocation
    assert client.get("/hosts/999999").status_code == 404
    assert f'href="/hosts/{shop}"' in client.get("/hosts/").text


def test_the_application_list_draws_the_dependency_graph_by_health(client, shop):
    login(client, "admin", "admin-password")
    page = client.get("/services/").text
    svg = page.split('id="topology-shop"')[1].split("</svg>")[0]
    nodes = dict(re.findall(r'data-service="(\w+)" data-status="\w+" data-layer="(\d)"', svg))
    assert nodes == {"db": "0", "api": "1", "web": "2"}
    assert 'data-service="web" data-status="failing"' in svg and 'fill="#dc3545"' in svg
    assert 'data-from="api" data-to="db"' in svg and 'data-from="web" data-to="api"' in svg
    assert "style=" not in svg  # the Content-Security-Policy refuses style attributes
