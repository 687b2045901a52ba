"""The operator's CLI against a real Berth web app served on 127.0.0.1: login stores a token
0600, apply is idempotent and a dry run changes nothing, status and scale, and a refusal
prints the server's error with a non-zero exit code."""
import json
import os
import stat
import textwrap
import threading

import pytest
import requests
from click.testing import CliRunner
from werkzeug.serving import make_server

from berth import db
from berth.cli import main
from berth.workloads import releases
from berth.workloads import services as workloads

IMAGE = "127.0.0.1:5000/library/busybox:1"
FILE = textwrap.dedent(f"""\
    name: shop
    services:
      db:
        image: {IMAGE}
        ports: ["80"]
        healthcheck: {{test: [CMD, wget, -q, "http://127.0.0.1:$$PORT/"], interval: 1s}}
      web:
        image: {IMAGE}
        depends_on: {{db: {{condition: service_healthy}}}}
        deploy: {{replicas: 2}}
    """)


@pytest.fixture
def server(app, admin, monkeypatch):
    """The app on a loopback port; tasks recorded, never sent; no registry to ask."""
    monkeypatch.setattr(releases, "enqueue", lambda *args: None)
    monkeypatch.setattr(workloads, "enqueue", lambda *args: None)
    monkeypatch.setattr(workloads, "check_images_exist", lambda *args: None)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)
    db.session.remove()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("BERTH_URL", "BERTH_TOKEN", "BERTH_USER"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def berth(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def logged_in(server, home):
    result = berth("login", server, "--username", "admin", input="admin-password\n")
    assert result.exit_code == 0, result.output
    return server


def test_login_makes_a_token_and_stores_it_0600(server, home):
    result = berth("login", server + "/", "--username", "admin", input="admin-password\n")
    assert result.exit_code == 0, result.output
    path = home / "config" / "berth" / "credentials.json"
    assert f"logged in to {server} as admin" in result.output and str(path) in result.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["url"] == server and stored["username"] == "admin"
    assert stored["token"].startswith("berth_") and "admin-password" not in path.read_text()
    # Logging in again revokes the token stored before: one live token per machine.
    assert berth("login", server, "--username", "admin", input="admin-password\n").exit_code == 0
    tokens = requests.get(server + "/api/v1/tokens", auth=("admin", "admin-password")).json()
    assert [t["state"] for t in tokens] == ["active", "revoked"]


def test_a_wrong_password_prints_the_servers_error(server, home):
    result = berth("login", server, "--username", "admin", input="wrong\n")
    assert result.exit_code == 1 and "401: authentication required" in result.output
    assert not (home / "config" / "berth" / "credentials.json").exists()


def test_apply_creates_then_changes_nothing_and_a_dry_run_acts_on_nothing(logged_in, tmp_path):
    compose = tmp_path / "compose.yml"
    compose.write_text(FILE)
    first = berth("apply", "-f", str(compose))
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[0] == (
        "shop: created (services start in this order: db, then web)")
    again = berth("apply", "-f", str(compose))
    assert again.exit_code == 0 and again.output.strip() == "shop: unchanged"

    compose.write_text(FILE.replace("replicas: 2", "replicas: 3"))
    dry = berth("apply", "-f", str(compose), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "shop: would change 1 service(s)" in dry.output
    assert "web: replicas 2 -> 3" in dry.output and "new container -> nowhere" in dry.output
    status = berth("status", "shop", "--json")
    assert {s["name"]: s["replicas"] for s in json.loads(status.output)["services"]} == {
        "db": 1, "web": 2}
    applied = berth("apply", "-f", str(compose), "--json")
    assert json.loads(applied.output)["changed"][0]["replicas"] == {"from": 2, "to": 3}


def test_status_and_scale(logged_in, tmp_path):
    compose = tmp_path / "compose.yml"
    compose.write_text(FILE)
    berth("apply", "-f", str(compose))
    listing = berth("status")
    assert listing.exit_code == 0
    assert listing.output.splitlines()[0].split() == ["APPLICATION", "SERVICES", "STATUS"]
    assert listing.output.splitlines()[1].split() == ["shop", "2", "pending"]
    scaled = berth("scale", "shop", "web", "4")
    assert scaled.exit_code == 0 and "shop/web: 4 replica(s) wanted" in scaled.output
    one = berth("status", "shop")
    assert one.exit_code == 0
    rows = {line.split()[0]: line.split() for line in one.output.splitlines()[1:3]}
    assert rows["web"][:3] == ["web", "pending", "0/4"]


def test_refusals_print_the_error_and_exit_non_zero(logged_in, tmp_path):
    compose = tmp_path / "compose.yml"
    compose.write_text(FILE.replace("  web:\n", "  web:\n    privileged: true\n"))
    refused = berth("apply", "-f", str(compose))
    assert refused.exit_code == 1
    assert "400: services.web.privileged: Berth cannot honour privileged" in refused.output
    missing = berth("scale", "nothing", "web", "2")
    assert missing.exit_code == 1 and "404: no application" in missing.output
    nameless = tmp_path / "nameless.yml"
    nameless.write_text(f"services: {{web: {{image: {IMAGE}}}}}\n")
    assert berth("apply", "-f", str(nameless)).exit_code == 2  # give --name
    named = berth("apply", "-f", str(nameless), "--name", "other")
    assert named.exit_code == 0 and named.output.startswith("other: created")


def test_the_environment_overrides_the_stored_login(server, home, monkeypatch):
    assert berth("status").exit_code == 3  # nobody logged in
    monkeypatch.setenv("BERTH_URL", server)
    monkeypatch.setenv("BERTH_TOKEN", "admin:admin-password")  # user:secret works too
    assert berth("status").output.strip() == "no applications"
    monkeypatch.setenv("BERTH_URL", "http://127.0.0.1:9")  # nothing listens on discard
    unreachable = berth("status")
    assert unreachable.exit_code == 3 and "cannot reach http://127.0.0.1:9" in unreachable.output
