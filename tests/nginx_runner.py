"""Real nginx for discovery tests: check a configuration, or run one in the foreground on
127.0.0.1 with every path inside a scratch directory. Stopped when the block ends."""
from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support import require_parts, system_program, wait_for

_SKELETON = """\
pid {root}/nginx.pid;
error_log {root}/error.log;
daemon off;
master_process off;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
{http}
}}
"""


def nginx() -> str:
    path = system_program("nginx")
    require_parts([] if path else ["nginx"], "scripts/install-system-deps.sh installs it")
    return path


def write_config(root: Path, http_block: str) -> Path:
    config = root / "nginx.conf"
    config.write_text(_SKELETON.format(root=root, http=http_block))
    return config


def check(root: Path, http_block: str) -> subprocess.CompletedProcess:
    """`nginx -t` of the block inside an http context: exit 0 when nginx accepts it."""
    config = write_config(root, http_block)
    return subprocess.run([nginx(), "-t", "-q", "-e", str(root / "error.log"), "-p", str(root),
                           "-c", str(config)], capture_output=True, text=True, timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(root: Path, http_block: str, port: int) -> Iterator[str]:
    """nginx serving `http_block` (which listens on 127.0.0.1:port); yields its base URL."""
    config = write_config(root, http_block)
    process = subprocess.Popen([nginx(), "-e", str(root / "error.log"), "-p", str(root),
                                "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"nginx exited: {process.stderr.read().decode()}")
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0
        wait_for(listening, 15, "nginx to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
