"""Security issue 12 on the real parts: the containers Berth starts are hardened as the engine
and the kernel see them; an engine's TLS key is nowhere in the database, the API, the pages
or the logs in the clear; the instance folder is private; a deactivated user is refused by
the API and the registry at once, and reactivation gives both back."""
from __future__ import annotations

import os
import stat
import uuid

import pytest
import requests
from sqlalchemy import Text, delete, make_url, select, type_coerce

from berth import accounts, db
from berth.models import Host
from testbed import EngineTLS, TestBed
from tests.integration.apps import all_healthy, containers, http_service, tear_down
from tests.integration.test_engine_tls import _pki
from tests.integration.test_registry_permissions import DockerCli
from tests.support import csrf_token_of, wait_for

APPLICATION = "hardening"
PASSWORD = "integration-pass"
NET_BIND_SERVICE = 1 << 10  # its bit in /proc/<pid>/status Cap* (linux/capability.h)
# For what does not depend on the kind of database or broker. The TLS key at rest and the
# instance folder are checked in both environments (each keeps other things there).
embedded_only = pytest.mark.berth_environments("embedded")


# -- 1. containers --------------------------------------------------------------------------

def _locked_service(image: str) -> dict:
    """httpd with a read-only root: its page goes to /dev/shm (a tmpfs the engine mounts
    writable), which is what a read-only service does with its scratch files."""
    return http_service(
        "locked", image, 1, capabilities=["NET_BIND_SERVICE"], read_only=True, pids_limit=64,
        command=["sh", "-c", "mkdir -p /dev/shm/www && echo locked > /dev/shm/www/index.html"
                             " && exec httpd -f -p 127.0.0.1:$PORT -h /dev/shm/www"])


@pytest.fixture(scope="module")
def hardened(berth_app, bed, fleet):
    """One service with the defaults, one declaring a capability, a pids limit and a
    read-only root; both healthy."""
    spec = {"name": APPLICATION, "services": [http_service("plain", bed.image, 1),
                                              _locked_service(bed.image)]}
    response = berth_app.api("POST", "/api/v1/applications", json=spec)
    assert response.status_code == 201, response.text
    try:
        wait_for(lambda: all_healthy(berth_app, APPLICATION, {"plain": 1, "locked": 1}), 180,
                 "plain and locked to be healthy")
        yield {service: containers(bed, APPLICATION, service)[0][1]
               for service in ("plain", "locked")}
    finally:
        tear_down(berth_app, APPLICATION)


def _caps(names) -> list[str]:
    # The engine may spell them CAP_X (newer API versions normalise to that) or X.
    return sorted(name.upper().removeprefix("CAP_") for name in names or ())


def _run(container, *argv: str) -> tuple[int, str]:
    result = container.exec_run(list(argv))
    return result.exit_code, result.output.decode(errors="replace")


def _status_fields(container) -> dict[str, str]:
    """/proc/1/status of the container's main process: what the kernel enforces."""
    code, text = _run(container, "cat", "/proc/1/status")
    assert code == 0, text
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _pids_max(container) -> str:
    # cgroup v2 (one hierarchy) or v1 (a pids hierarchy), as the container sees its own.
    code, text = _run(container, "sh", "-c", "cat /sys/fs/cgroup/pids.max 2>/dev/null || "
                                             "cat /sys/fs/cgroup/pids/pids.max")
    assert code == 0, text
    return text.strip()


def check_engine_hardening(container, cap_add: list[str], pids_limit: int, read_only: bool):
    host_config = container.attrs["HostConfig"]
    assert any(opt in ("no-new-privileges", "no-new-privileges:true")
               for opt in host_config["SecurityOpt"] or ()), host_config["SecurityOpt"]
    assert _caps(host_config["CapDrop"]) == ["ALL"]
    assert _caps(host_config["CapAdd"]) == cap_add
    assert host_config["PidsLimit"] == pids_limit
    assert host_config["ReadonlyRootfs"] is read_only


def check_kernel_hardening(container, effective: int, pids_max: str):
    """What the engine was told is what the process gets: exactly the allowed capabilities
    (effective and bounding), no new privileges, the pids limit in its cgroup."""
    status = _status_fields(container)
    assert int(status["CapEff"], 16) == effective
    assert int(status["CapBnd"], 16) == effective
    assert status["NoNewPrivs"].strip() == "1"
    assert _pids_max(container) == pids_max


@embedded_only
def test_hardened_services_turn_healthy(berth_app, hardened):
    """Hardening that broke the services would be no hardening anyone keeps."""
    services = all_healthy(berth_app, APPLICATION, {"plain": 1, "locked": 1})
    assert services and {i["health"] for s in services.values() for i in s["instances"]} == {"healthy"}


@embedded_only
@pytest.mark.parametrize("service, cap_add, pids_limit, read_only", [
    ("plain", [], 512, False),
    ("locked", ["NET_BIND_SERVICE"], 64, True),
])
def test_engine_runs_the_container_hardened(hardened, service, cap_add, pids_limit, read_only):
    check_engine_hardening(hardened[service], cap_add, pids_limit, read_only)


@embedded_only
@pytest.mark.parametrize("service, effective, pids_max", [
    ("plain", 0, "512"),
    ("locked", NET_BIND_SERVICE, "64"),
])
def test_kernel_enforces_the_hardening(hardened, service, effective, pids_max):
    check_kernel_hardening(hardened[service], effective, pids_max)


@embedded_only
def test_read_only_root_refuses_writes_and_the_default_allows_them(hardened):
    code, text = _run(hardened["locked"], "touch", "/written-by-test")
    assert code != 0 and "Read-only file system" in text, (code, text)
    code, text = _run(hardened["plain"], "touch", "/written-by-test")
    assert code == 0, text


# -- 2. engine TLS keys at rest -------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_engine(integration_root, tmp_path_factory):
    """A dockerd of its own that speaks TCP with mutual TLS only, and its PEM texts."""
    pem, paths = _pki(tmp_path_factory.mktemp("hardening-pki"))
    tls_bed = TestBed(engines=["tls1"], registries=(), postgres=False, redis=False, image=False,
                      engine_tls={"tls1": EngineTLS(**paths)}, port_range_size=10)
    tls_bed.start()
    try:
        yield tls_bed.engine("tls1"), pem
    finally:
        tls_bed.stop()


def _pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.strip().splitlines() if line and not line.startswith("-----")]


@pytest.fixture
def tls_host(berth_app, tls_engine, database):
    """The TLS engine added through the API, kept out of placement, removed afterwards."""
    engine, pem = tls_engine
    name = f"tls-{uuid.uuid4().hex[:8]}"
    start, end = engine["port_range"]
    response = berth_app.api("POST", "/api/v1/hosts", json={
        "name": name, "endpoint": engine["url"], "cluster": "tls-at-rest", "pool": "p1",
        "port_range_start": start, "port_range_end": end,
        "tls": {"ca": pem["ca"], "cert": pem["cert"], "key": pem["key"]}})
    assert response.status_code == 201, response.text
    host = response.json()
    # Nothing of the other tests goes to it (its engine has no images and stops at module end).
    assert berth_app.api("PATCH", f"/api/v1/hosts/{host['id']}",
                         json={"admin_state": "maintenance"}).status_code == 200
    try:
        yield host, pem
    finally:
        with db.unit_of_work() as session:
            session.execute(delete(Host).where(Host.id == host["id"]))


def test_tls_key_is_encrypted_in_the_database(berth_app, tls_host, database):
    host, pem = tls_host
    stored_key, stored_cert = database.execute(
        select(type_coerce(Host.tls_key, Text()), Host.tls_cert).where(Host.id == host["id"])).one()
    assert stored_key.startswith("fernet:")
    assert "PRIVATE KEY" not in stored_key
    assert not [line for line in _pem_body_lines(pem["key"]) if line in stored_key]
    assert stored_cert.strip() == pem["cert"].strip()  # the row read is the one just added
    # Berth itself still has the key: its model decrypts it.
    assert database.get(Host, host["id"]).tls_key.strip() == pem["key"].strip()


def check_not_in_sqlite_files(database_url: str, stored: str, pem_key: str) -> None:
    """The database file and its write-ahead log and journal, byte for byte (the row may
    not have left the WAL yet): `stored` (the column as written) is there, the key is not."""
    path = make_url(database_url).database
    files = [p for p in (path, path + "-wal", path + "-journal") if os.path.exists(p)]
    data = b"".join(open(p, "rb").read() for p in files)
    assert stored.encode() in data, f"the stored value is not in {files}: wrong files?"
    armour = b"PRIVATE KEY" in data
    assert not armour, f"a PEM private key in {files}"
    # Without its armour too, e.g. stored as the base64 body (a line is in the joined body).
    leaked = [line for line in _pem_body_lines(pem_key) if line.encode() in data]
    assert not leaked, f"{len(leaked)} lines of the key's base64 in {files}"


@embedded_only
def test_tls_key_is_not_in_the_sqlite_files(berth_app, tls_host, database):
    host, pem = tls_host
    stored_key = database.scalar(select(type_coerce(Host.tls_key, Text())).where(
        Host.id == host["id"]))
    check_not_in_sqlite_files(berth_app.config.database_url, stored_key, pem["key"])


def test_tls_key_is_never_shown(berth_app, tls_host):
    """Not by the API, the host pages, the audit log, or in the logs of Berth's processes."""
    host, pem = tls_host
    body = _pem_body_lines(pem["key"])
    answers = {path: berth_app.api("GET", path) for path in (
        "/api/v1/hosts", f"/api/v1/hosts/{host['id']}", "/api/v1/clusters", "/hosts/",
        "/hosts/table", "/hosts/clusters")}
    answers["/api/v1/audit"] = berth_app.api("GET", "/api/v1/audit", params={"subject": host["name"]})
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.status_code)
        assert "PRIVATE KEY" not in answer.text, path
        assert not [line for line in body if line in answer.text], path
    for path in ("/api/v1/hosts", f"/api/v1/hosts/{host['id']}", "/hosts/", "/api/v1/audit"):
        assert host["name"] in answers[path].text, f"{path} does not list the host at all"
    assert answers[f"/api/v1/hosts/{host['id']}"].json()["uses_tls"] is True
    for process in ("web", "worker", "beat"):
        log = berth_app.log_path(process)
        assert log.exists(), log
        text = log.read_text(errors="replace")
        assert "PRIVATE KEY" not in text and not [line for line in body if line in text], process


def test_tls_key_is_not_sent_back_by_the_add_host_form(berth_app, tls_host, tls_engine):
    """The one page that holds a key: the add-host form, refused (here: the name is taken)
    and shown again as typed, but for the key."""
    host, pem = tls_host
    engine, _ = tls_engine
    browser = requests.Session()
    token = csrf_token_of(browser.get(berth_app.url + "/login", timeout=10).text)
    logged_in = browser.post(berth_app.url + "/login", allow_redirects=False, timeout=10, data={
        "username": "admin", "password": berth_app.admin_password, "csrf_token": token})
    assert logged_in.status_code == 302, logged_in.text
    token = csrf_token_of(browser.get(berth_app.url + "/hosts/new", timeout=10).text)
    start, end = engine["port_range"]
    answer = browser.post(berth_app.url + "/hosts/new", timeout=30, data={
        "csrf_token": token, "name": host["name"], "endpoint": engine["url"],
        "cluster": "tls-at-rest", "pool": "p1", "idc": "default", "port_range_start": start,
        "port_range_end": end, "disk_type": "", "disk_gb": "", "labels": "",
        "tls_ca": pem["ca"], "tls_cert": pem["cert"], "tls_key": pem["key"]})
    assert answer.status_code == 400 and "already exists" in answer.text, answer.text[-2000:]
    assert _pem_body_lines(pem["cert"])[0] in answer.text  # the form did come back as typed
    assert "END PRIVATE KEY" not in answer.text  # (its placeholder shows a BEGIN line)
    assert not [line for line in _pem_body_lines(pem["key"]) if line in answer.text]


# -- 3. the instance folder -----------------------------------------------------------------

def test_instance_folder_is_private(berth_app):
    """Once web, workers and beat have run (and written their databases, locks, beat
    schedule and signing key), no folder or file in the instance is open to others."""
    assert berth_app.processes and all(p.poll() is None for p in berth_app.processes.values())
    root = berth_app.instance
    # What the processes write themselves, not only what the test process prepared.
    wait_for(lambda: [p for p in root.iterdir() if p.name.startswith("celerybeat-schedule")],
             30, "beat to write its schedule")
    if berth_app.config.database_url.startswith("sqlite"):  # else the locks are in PostgreSQL
        wait_for(lambda: (root / "locks").is_dir() and any((root / "locks").iterdir()), 30,
                 "a round to take its file lock")
    modes = {".": stat.S_IMODE(root.stat().st_mode)}
    for folder, subfolders, files in os.walk(root):
        for name in subfolders + files:
            path = os.path.join(folder, name)
            modes[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    expected = {name: 0o700 if os.path.isdir(root / name) else 0o600 for name in modes}
    assert "secret_key" in modes and "token-signing" in modes, sorted(modes)
    assert {n: oct(m) for n, m in modes.items()} == {n: oct(m) for n, m in expected.items()}


# -- 4. deactivation ------------------------------------------------------------------------

def _set_active(username: str, active: bool) -> None:
    """What a system administrator's deactivation does (berth.accounts.set_active), on the
    running Berth's database."""
    with db.unit_of_work():
        accounts.set_active(accounts.find_user(username), active, actor="admin")


@embedded_only
def test_deactivated_user_is_refused_at_once_and_reactivation_restores(
        berth_app, bed, registry_host, database, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    username, project = f"leaving-{suffix}", f"private-{suffix}"
    assert berth_app.api("POST", "/api/v1/users",
                         json={"username": username, "password": PASSWORD}).status_code == 201
    assert berth_app.api("POST", "/api/v1/projects", json={"name": project}).status_code == 201
    response = berth_app.api("POST", f"/api/v1/projects/{project}/members",
                             json={"username": username, "role": "guest"})
    assert response.status_code == 201, response.text
    ref = f"{registry_host}/{project}/app:1"
    admin = DockerCli(bed.engine("e1")["url"], tmp_path / "admin")
    assert admin.login(registry_host, "admin", berth_app.admin_password).returncode == 0
    admin("tag", bed.image, ref)
    admin("push", ref)

    member = DockerCli(bed.engine("e2")["url"], tmp_path / "member")
    as_member = (username, PASSWORD)

    def registry_token_status() -> int:
        return requests.get(berth_app.url + "/service/token", auth=as_member, timeout=10, params={
            "service": berth_app.config.registry_service,
            "scope": f"repository:{project}/app:pull"}).status_code

    def refused_everywhere() -> None:
        assert berth_app.api("GET", "/api/v1/me", auth=as_member).status_code in (401, 403)
        assert registry_token_status() == 401
        assert berth_app.api("GET", f"/api/v1/projects/{project}",
                             auth=as_member).status_code in (401, 403)
        login = member.login(registry_host, username, PASSWORD)
        assert login.returncode != 0, login.stdout
        # The credentials stored by the first login are still in the CLI's config: the
        # registry asks Berth for a token with them, and Berth must say no.
        member("rmi", ref, check=False)
        pulled = member("pull", ref, check=False)
        assert pulled.returncode != 0, pulled.stdout
        assert member("image", "inspect", ref, check=False).returncode != 0

    def allowed_everywhere() -> None:
        me = berth_app.api("GET", "/api/v1/me", auth=as_member)
        assert me.status_code == 200 and me.json()["username"] == username
        assert berth_app.api("GET", f"/api/v1/projects/{project}", auth=as_member).status_code == 200
        assert registry_token_status() == 200
        login = member.login(registry_host, username, PASSWORD)
        assert login.returncode == 0, login.stderr
        member("rmi", ref, check=False)
        pulled = member("pull", ref, check=False)
        assert pulled.returncode == 0, pulled.stderr

    try:
        allowed_everywhere()
        _set_active(username, False)
        try:
            refused_everywhere()
        finally:
            _set_active(username, True)
        allowed_everywhere()
    finally:  # the engines are shared: leave them the images they had
        member("rmi", ref, check=False)
        admin("rmi", ref, check=False)
