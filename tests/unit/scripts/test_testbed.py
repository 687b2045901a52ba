"""The test bed package (scripts/testbed/) without starting anything: it runs as a program
from its directory, imports only the standard library, and its pure helpers behave."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPOSITORY, wait_for

sys.path.insert(0, str(REPOSITORY / "scripts"))
from testbed import deep_merge, split_image_ref  # noqa: E402
from testbed import ports  # noqa: E402

STDLIB_ONLY = """
import sys
sys.path.insert(0, "scripts")
import testbed, testbed.cli, testbed.berth
foreign = sorted({name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names)
                 - {"testbed", "__main__"})
print(" ".join(foreign))
"""


def test_runs_as_a_directory_and_finds_its_own_package():
    done = subprocess.run([sys.executable, "scripts/testbed", "--help"], cwd=REPOSITORY,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "{up,down,status}" in done.stdout


def test_down_without_a_state_file_says_what_is_missing(tmp_path):
    state = tmp_path / "none.json"
    done = subprocess.run([sys.executable, "scripts/testbed", "down", "--state", str(state)],
                          cwd=REPOSITORY, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"no state file {state}" in done.stderr


def test_imports_only_the_standard_library():
    # -I -S: no PYTHONPATH, no site-packages at all, so nothing but the standard library.
    done = subprocess.run([sys.executable, "-I", "-S", "-c", STDLIB_ONLY], cwd=REPOSITORY,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


@pytest.mark.parametrize(("base", "extra", "merged"), [
    ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ({"log": {"level": "info", "fields": {"x": 1}}}, {"log": {"level": "warn"}},
     {"log": {"level": "warn", "fields": {"x": 1}}}),
    ({"auth": {"token": {}}, "http": {}}, {"auth": None}, {"http": {}}),
    ({"a": {"b": 1}}, {"a": 2}, {"a": 2}),
])
def test_deep_merge(base, extra, merged):
    assert deep_merge(base, extra) == merged


@pytest.mark.parametrize(("ref", "split"), [
    ("127.0.0.1:5000/library/busybox:1", ("127.0.0.1:5000/library/busybox", "1")),
    ("127.0.0.1:5000/library/busybox", ("127.0.0.1:5000/library/busybox", "latest")),
    ("busybox:musl", ("busybox", "musl")),
])
def test_split_image_ref(ref, split):
    assert split_image_ref(ref) == split


def test_port_blocks_are_disjoint_and_stale_claims_are_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(ports, "PORT_CLAIMS_DIR", tmp_path / "claims")
    mine, other, gone = (tmp_path / name for name in ("mine", "other", "gone"))
    mine.mkdir()
    other.mkdir()
    theirs = ports.claim_port_ranges(1, 10, str(other))
    (tmp_path / "claims" / "9").write_text(f"{gone}\n")  # a bed whose root is gone
    claimed = ports.claim_port_ranges(2, 10, str(mine))
    assert len(claimed) == 2 and theirs[0] not in claimed
    assert all(last - first == 9 for first, last in claimed)
    ports.release_port_ranges(claimed + theirs, str(mine))  # releases only its own
    assert sorted(p.name for p in (tmp_path / "claims").iterdir()) == sorted(
        [str(theirs[0][0]), "9"])


FAKE_CELERY = """#!/bin/sh
# Like a prefork worker: a child in the same process group.
sleep 600 &
exec sleep 600
"""
FAKE_GUNICORN = """#!{python}
import http.server, sys
host, port = sys.argv[sys.argv.index("--bind") + 1].split(":")
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
http.server.HTTPServer((host, int(port)), Health).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _group(pgid: int) -> list[int]:
    import os

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid and _alive(int(entry)):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_the_berth_harness_starts_kills_and_stops_whole_process_groups(tmp_path):
    from testbed.berth import Berth

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("celery", FAKE_CELERY), ("gunicorn", FAKE_GUNICORN.format(python=sys.executable))):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    berth = Berth(tmp_path / "instance", tmp_path / "logs", admin_password="x", venv_bin=bin_dir)
    try:
        berth.start(workers=2)  # returns once the fake web answers /healthz
        assert sorted(berth.processes) == ["beat", "web", "worker", "worker-2"]
        pgids = {name: popen.pid for name, popen in berth.processes.items()}
        assert all(len(_group(pgids[name])) == 2 for name in ("worker", "worker-2"))

        assert berth.kill_workers() == ["worker", "worker-2"]
        assert sorted(berth.processes) == ["beat", "web"]
        # Their children too (a killed group's members may take a moment to be gone).
        wait_for(lambda: _group(pgids["worker"]) == _group(pgids["worker-2"]) == [], 10,
                 "the workers' children to die with them")

        berth.start_workers(["worker", "worker-2"])
        assert sorted(berth.processes) == ["beat", "web", "worker", "worker-2"]
        pgids = {name: popen.pid for name, popen in berth.processes.items()}
    finally:
        berth.stop_all()
    assert berth.processes == {}
    wait_for(lambda: all(_group(pgid) == [] for pgid in pgids.values()), 10,
             "every process group to be gone")
