"""A Compose file deployed with the real `berth apply` CLI (a subprocess, over HTTP with an
API token) on the test bed's engines: in dependency order, idempotent, a dry run that acts
on nothing and names the hosts, and a field Berth cannot honour refused by name."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.integration.apps import all_healthy, app_state, containers, tear_down
from tests.support import REPOSITORY, wait_for

pytestmark = pytest.mark.berth_environments("embedded")

APP = "composed"
BERTH = str(REPOSITORY / ".venv" / "bin" / "berth")


def http(name: str, replicas: int, depends_on: str | None, image: str) -> str:
    """busybox httpd on the port Berth allocates (host network, 127.0.0.1), as Compose."""
    lines = [
        f"{name}:",
        f"  image: {image}",
        f'  command: ["sh", "-c", "mkdir -p /www && echo {name} > /www/index.html'
        f' && exec httpd -f -p 127.0.0.1:$$PORT -h /www"]',
        '  ports: ["80"]',
        '  healthcheck:',
        '    test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:$$PORT/"]',
        '    interval: 500ms',
        '    retries: 2',
        '  deploy:',
        f'    replicas: {replicas}',
        '    resources: {limits: {cpus: "0.1", memory: 32M}}',
    ]
    if depends_on:
        lines += ["  depends_on:", f"    {depends_on}: {{condition: service_healthy}}"]
    return "".join(f"  {line}\n" for line in lines)


def compose_file(image: str, web_replicas: int = 2, extra: str = "") -> str:
    return (f"name: {APP}\nservices:\n" + http("db", 1, None, image)
            + http("api", 2, "db", image) + http("web", web_replicas, "api", image) + extra)


@pytest.fixture(scope="module")
def cli_env(berth_app, tmp_path_factory):
    """The CLI's environment: the server and a personal token made through the API."""
    made = berth_app.api("POST", "/api/v1/tokens", json={"name": "compose-apply-test"})
    assert made.status_code == 201, made.text
    home = tmp_path_factory.mktemp("cli-home")
    return {**os.environ, "BERTH_URL": berth_app.url, "BERTH_USER": "admin",
            "BERTH_TOKEN": made.json()["token"], "XDG_CONFIG_HOME": str(home)}


def berth(env, *args, text: str, tmp_path, name="compose.yml") -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(text)
    return subprocess.run([BERTH, *args, "-f", str(path)], env=env, capture_output=True,
                          text=True, timeout=120)


def events(berth_app) -> list[dict]:
    return list(reversed(berth_app.api("GET", "/api/v1/audit", params={"limit": 1000}).json()))


def container_ids(bed) -> set[str]:
    return {c.id for _, c in containers(bed, APP, status=None)}


@pytest.fixture(scope="module")
def composed(berth_app, bed, fleet, cli_env, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("compose")
    applied = berth(cli_env, "apply", text=compose_file(bed.image), tmp_path=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stdout.splitlines()[0] == (
        f"{APP}: created (services start in this order: db, then api, then web)")
    wait_for(lambda: all_healthy(berth_app, APP, {"db": 1, "api": 2, "web": 2}), 180,
             "db, api and web to be healthy")
    yield tmp_path
    tear_down(berth_app, APP)


def test_a_compose_file_deploys_through_berth_apply_in_dependency_order(
        berth_app, bed, cli_env, composed):
    first = {}
    for event in events(berth_app):
        first.setdefault((event["kind"], event["subject"]), event["id"])
    assert first[("service.healthy", f"{APP}/db")] < first[("instance.create", f"{APP}/api")]
    assert first[("service.healthy", f"{APP}/api")] < first[("instance.create", f"{APP}/web")]
    assert len(containers(bed, APP)) == 5
    status = subprocess.run([BERTH, "status", APP], capture_output=True, text=True, timeout=60,
                            env=cli_env)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in status.stdout.splitlines()[1:4]}
    assert rows == {"db": ["healthy", "1/1"], "api": ["healthy", "2/2"], "web": ["healthy", "2/2"]}


def test_applying_the_same_file_again_changes_nothing(berth_app, bed, cli_env, composed):
    before_events, before_ids = len(events(berth_app)), container_ids(bed)
    again = berth(cli_env, "apply", "--json", text=compose_file(bed.image), tmp_path=composed)
    assert again.returncode == 0, again.stderr
    answer = json.loads(again.stdout)
    assert (answer["created"], answer["changed"], answer["unchanged"]) == (
        False, [], ["api", "db", "web"])
    assert container_ids(bed) == before_ids
    assert not [e for e in events(berth_app)[before_events:]
                if e["kind"].startswith(("service.scale", "release.", "instance.create",
                                         "application."))]


def test_a_dry_run_of_a_changed_file_changes_nothing_and_names_the_hosts(
        berth_app, bed, cli_env, composed, fleet):
    changed = compose_file(bed.image, web_replicas=4).replace(
        "echo api >", "echo api-2 >")
    before_ids = container_ids(bed)
    dry = berth(cli_env, "apply", "--dry-run", text=changed, tmp_path=composed, name="changed.yml")
    assert dry.returncode == 0, dry.stderr
    assert f"{APP}: would change 2 service(s)" in dry.stdout
    assert "web: replicas 2 -> 4" in dry.stdout and "api: release of command" in dry.stdout
    hosts = {f"bed-{engine}" for engine in fleet}
    placed = [line for line in dry.stdout.splitlines() if "new container -> " in line]
    assert len(placed) == 2, dry.stdout
    assert all(line.split("new container -> ")[1].split(":")[0] in hosts for line in placed)
    assert all("placed on bed-" in line for line in placed)
    state = app_state(berth_app, APP)
    assert (state["web"]["replicas"], state["api"]["revision"]) == (2, 1)
    assert container_ids(bed) == before_ids


def test_a_field_berth_cannot_honour_is_refused_by_name(berth_app, bed, cli_env, composed):
    privileged = compose_file(bed.image).replace(
        "  web:\n", "  web:\n    privileged: true\n")
    before_ids = container_ids(bed)
    for args in (("apply",), ("apply", "--dry-run")):
        refused = berth(cli_env, *args, text=privileged, tmp_path=composed, name="bad.yml")
        assert refused.returncode == 1
        assert "400: services.web.privileged: Berth cannot honour privileged" in refused.stderr
    assert container_ids(bed) == before_ids
