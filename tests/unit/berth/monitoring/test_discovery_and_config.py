"""Prometheus' view through Berth: the http_sd targets (healthy instances of services with
metrics, labelled), the endpoint serving them to system admins, and the rendered
prometheus.yml with its token file (`berth monitoring config`)."""
from __future__ import annotations

import base64
import os
import stat

import yaml
from click.testing import CliRunner

from berth import accounts, cli, db
from berth.models import Application, Cluster, ContainerInstance, Host, Pool, Project, Service
from berth.monitoring import config as monitoring_config
from berth.monitoring import discovery
from tests.support import basic_auth


def _instances(session):
    pool = Pool(name="p1", cluster=Cluster(name="c1"))
    host = Host(name="h1", pool=pool, endpoint="tcp://127.0.0.1:1", address="127.0.0.9",
                idc="tucheng")
    app = Application(name="shop", project=Project(name="team"))
    web = Service(application=app, name="web", image="i:1", ports=[0],
                  metrics={"port": 0, "path": "/stats"})
    plain = Service(application=app, name="plain", image="i:1", ports=[0])
    session.add_all([host, web, plain])
    session.flush()
    rows = [("shop-web-0", web, "running", "healthy", 20001),
            ("shop-web-1", web, "running", None, 20002),       # no healthcheck: ready
            ("shop-web-2", web, "running", "starting", 20003),  # not yet healthy
            ("shop-web-3", web, "exited", "healthy", 20004),
            ("shop-plain-0", plain, "running", "healthy", 20005)]  # declares no metrics
    for slot, (name, service, state, health, port) in enumerate(rows):
        session.add(ContainerInstance(service_id=service.id, host_id=host.id, slot=slot,
                                      revision=3, name=name, state=state, health=health,
                                      host_port=port))
    session.commit()


def test_targets_are_the_healthy_instances_of_services_with_metrics(database):
    _instances(database)
    assert discovery.targets(discovery.rows(database)) == [
        {"targets": [f"127.0.0.9:{port}"], "labels": {
            "application": "shop", "service": "web", "revision": "3", "host": "h1",
            "pool": "p1", "cluster": "c1", "idc": "tucheng", "instance_name": name,
            "__metrics_path__": "/stats"}}
        for name, port in (("shop-web-0", 20001), ("shop-web-1", 20002))]


def test_the_targets_endpoint_is_for_system_admins(app, client, admin):
    with app.app_context(), db.unit_of_work() as session:
        _instances(session)
        accounts.create_user("dev", "dev-password")
    answer = client.get("/api/v1/monitoring/targets", headers=admin)
    assert answer.status_code == 200 and len(answer.json) == 2
    assert client.get("/api/v1/monitoring/targets").status_code == 401
    refused = client.get("/api/v1/monitoring/targets", headers=basic_auth("dev", "dev-password"))
    assert refused.status_code == 403 and refused.json["error"]


def test_the_series_routes_answer_without_prometheus(app, client, admin):
    with app.app_context(), db.unit_of_work() as session:
        _instances(session)
    answer = client.get("/api/v1/applications/shop/services/web/metrics?window=600", headers=admin)
    assert answer.status_code == 200, answer.json
    assert (answer.json["source"], answer.json["step_s"]) == ("berth", 10)
    assert client.get("/api/v1/applications/shop/services/web/metrics?window=5",
                      headers=admin).status_code == 400
    assert client.get("/api/v1/hosts/1/metrics", headers=admin).json["capacity"] == {
        "cpus": 0.0, "memory": 0.0}
    assert client.get("/api/v1/hosts/99/metrics", headers=admin).status_code == 404
    top = client.get("/api/v1/monitoring/top?by=cpu_percent", headers=admin)
    assert top.status_code == 200 and top.json["by"] == "cpu_percent"
    assert client.get("/api/v1/monitoring/top?by=colour", headers=admin).status_code == 400


def test_prometheus_yml_scrapes_berth_and_discovers_through_it():
    built = monitoring_config.build_prometheus(
        berth_url="http://127.0.0.1:8000", token_file="/etc/berth/token", scrape_interval_s=1,
        evaluation_interval_s=2, alertmanager="http://127.0.0.1:9093")
    assert built["global"]["scrape_interval"] == "1s"
    assert built["global"]["evaluation_interval"] == "2s"
    assert built["rule_files"] == ["rules.yml"]
    berth, services = built["scrape_configs"]
    assert berth["static_configs"] == [{"targets": ["127.0.0.1:8000"]}] and berth["honor_labels"]
    assert services["http_sd_configs"] == [{
        "url": "http://127.0.0.1:8000/api/v1/monitoring/targets", "refresh_interval": "1s",
        "authorization": {"type": "Basic", "credentials_file": "/etc/berth/token"}}]
    assert built["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["127.0.0.1:9093"]}]


def test_berth_monitoring_config_writes_the_files_and_a_working_token(app, config, client,
                                                                      tmp_path):
    out = tmp_path / "monitoring"
    env = {"BERTH_INSTANCE": str(config.instance_dir), "DATABASE_URL": config.database_url,
           "BERTH_PROMETHEUS_SCRAPE_INTERVAL_S": "1"}
    result = CliRunner().invoke(cli.main, ["monitoring", "config", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    names = {"prometheus.yml", "rules.yml", "alertmanager.yml", monitoring_config.TOKEN_FILE}
    assert names <= set(os.listdir(out))
    for name in names:
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o600
    credentials = (out / monitoring_config.TOKEN_FILE).read_text()
    assert credentials not in result.output
    username, token = base64.b64decode(credentials).decode().split(":", 1)
    assert username == monitoring_config.SYSTEM_USER and token not in result.output
    prometheus = yaml.safe_load((out / "prometheus.yml").read_text())
    assert prometheus["global"]["scrape_interval"] == "1s"
    assert prometheus["scrape_configs"][1]["http_sd_configs"][0]["authorization"][
        "credentials_file"] == str((out / monitoring_config.TOKEN_FILE).resolve())
    # What Prometheus sends (Authorization: Basic <the file>) opens the targets endpoint.
    header = {"Authorization": f"Basic {credentials}"}
    assert client.get("/api/v1/monitoring/targets", headers=header).status_code == 200
    # Rendering again mints a new token and revokes the old one.
    again = CliRunner().invoke(cli.main, ["monitoring", "config", "--out", str(out)], env=env)
    assert again.exit_code == 0, again.output
    assert client.get("/api/v1/monitoring/targets", headers=header).status_code == 401
    fresh = {"Authorization": f"Basic {(out / monitoring_config.TOKEN_FILE).read_text()}"}
    assert client.get("/api/v1/monitoring/targets", headers=fresh).status_code == 200
