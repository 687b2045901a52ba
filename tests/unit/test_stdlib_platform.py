"""platform/ holds Berth's core but must never shadow the standard library's `platform`.

Each process type is started for real from the repository root (where the folder would
shadow the module if it were a package) and reports which `platform` it imported.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import requests

from tests.support import REPOSITORY

STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
VENV_BIN = Path(sys.executable).parent


def _is_stdlib(path: str) -> bool:
    return Path(path).resolve().parent == STDLIB


def test_pytest_process_imports_the_stdlib_platform():
    import platform

    assert _is_stdlib(platform.__file__)
    assert platform.python_version()  # the real module's API, which celery and docker use


def test_platform_folder_is_not_a_package():
    assert not (REPOSITORY / "platform" / "__init__.py").exists()


def test_berth_cli_imports_the_stdlib_platform(tmp_path):
    env = dict(os.environ, BERTH_INSTANCE=str(tmp_path))
    out = subprocess.run([str(VENV_BIN / "berth"), "diagnose"], cwd=REPOSITORY, env=env,
                         capture_output=True, text=True, check=True, timeout=60)
    facts = json.loads(out.stdout)
    assert facts["platform_is_stdlib"] and _is_stdlib(facts["platform_module"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_log(proc: subprocess.Popen, log: Path, pattern: str, deadline_s: float) -> re.Match:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text())
        if match:
            return match
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"{pattern!r} never appeared; log:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("kind", ["web", "worker", "beat"])
def test_process_imports_the_stdlib_platform(kind, tmp_path):
    """Start the Procfile's command for `kind` from the repository root."""
    env = dict(os.environ, BERTH_INSTANCE=str(tmp_path), PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    subprocess.run([str(VENV_BIN / "berth"), "db", "upgrade"], cwd=REPOSITORY, env=env,
                   check=True, capture_output=True, timeout=120)
    port = _free_port()
    commands = {
        "web": ["gunicorn", "--config", "python:web.gunicorn_conf", "--bind",
                f"127.0.0.1:{port}", "--workers", "1", "web.wsgi:app"],
        "worker": ["celery", "-A", "berth.worker", "worker", "--loglevel", "INFO",
                   "--concurrency", "1"],
        "beat": ["celery", "-A", "berth.worker", "beat", "--loglevel", "INFO",
                 "--schedule", str(tmp_path / "beat-schedule")],
    }
    log = tmp_path / f"{kind}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(commands[kind], cwd=REPOSITORY, env=env, stdout=sink,
                                stderr=subprocess.STDOUT)
    try:
        match = _wait_for_log(proc, log, r"berth runtime: (\{.*\})", 60)
        facts = json.loads(match.group(1))
        assert facts["platform_is_stdlib"] is True
        assert _is_stdlib(facts["platform_module"])
        if kind == "web":
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).ok
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
