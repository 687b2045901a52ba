#!/usr/bin/env python3
"""The Berth test bed: real Docker engines, registries, PostgreSQL and Redis on 127.0.0.1.

This module owns every process of the integration-test environment and their files, which all
live under one root directory (default: a fresh /tmp/berth-XXXXXXXX):

    R/eN/        one dockerd per engine (data, exec, docker.sock, dockerd.log), TCP API on a free port
    R/reg-NAME/  one Debian `docker-registry` (v2.8) per registry: config.yml, data/, registry.log
    R/pg/        a PostgreSQL cluster (run as the `postgres` user when we are root) with `berth_test`
    R/redis/     a Redis without persistence

plus a busybox test image, built FROM scratch on the first engine and pushed to the `primary`
registry (the other engines pull it: TestBed.load_image).

Everything listens on 127.0.0.1 only, on ports picked at runtime. Each engine also gets a disjoint
block of host ports for the services it runs (`port_range`), claimed under /tmp/berth-testbed-ports
so that two test beds on one machine don't hand out the same block.

Use it from Python (pytest's conftest puts scripts/ on sys.path):

    from testbed import TestBed
    with TestBed(engines=3) as bed:          # start() on enter, stop() on exit
        bed.state["engines"][0]["url"]        # tcp://127.0.0.1:PORT

or by hand:

    python scripts/testbed.py up [--detach] [--state FILE]   # prints the state JSON on stdout
    python scripts/testbed.py status [--state FILE]
    python scripts/testbed.py down [--state FILE]

Only the standard library is used, so it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import concurrent.futures
import contextlib
import copy
import dataclasses
import glob
import http.client
import io
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger("testbed")

LOCALHOST = "127.0.0.1"
DEFAULT_TIMEOUT = 60.0
POLL_INTERVAL = 0.05
DEFAULT_STATE_PATH = "/tmp/berth-testbed.json"
DEFAULT_REGISTRIES = ("primary", "mirror")
PORT_CLAIMS_DIR = Path("/tmp/berth-testbed-ports")
PORT_RANGE_START = 20000
MARKER_FILE = ".berth-testbed"  # only directories holding it are ever deleted by stop()
IMAGE_REPOSITORY = "library/busybox"
IMAGE_TAG = "1"
POSTGRES_DB = "berth_test"
# unix socket paths must stay under 108 bytes; the longest one is containerd's under R/eN/exec.
MAX_ROOT_LENGTH = 60
INSTALL_HINT = "run scripts/install-system-deps.sh as root to install it"
# Programs a sweep may kill when their command line mentions our root (never anything else).
SWEEPABLE_PROGRAMS = ("dockerd", "containerd", "docker-proxy", "runc", "docker-registry",
                      "redis-server", "postgres", "initdb")


class TestBedError(RuntimeError):
    """A program is missing or a component did not come up; the message says which and why."""

    __test__ = False  # not a pytest test class, despite the name


# --------------------------------------------------------------------------------------------
# Processes


@dataclasses.dataclass(frozen=True)
class _Stat:
    state: str
    ppid: int
    start_time: int


def _read_stat(pid: int) -> _Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    return _Stat(state=fields[0], ppid=int(fields[1]), start_time=int(fields[19]))


class _Proc:
    """A long-running process: one we spawned (has a Popen) or one adopted from a state file.

    Adopted processes are identified by pid *and* start time, so a recycled pid is never
    mistaken for ours (redis and postgres rewrite their command lines, so those can't be used).
    """

    def __init__(self, pid: int, start_time: int | None, popen: subprocess.Popen | None = None):
        self.pid = pid
        self.start_time = start_time
        self.popen = popen

    @classmethod
    def spawn(cls, argv: list[str], log_path: Path, *, env: dict | None = None,
              cwd: Path | None = None, user: pwd.struct_passwd | None = None) -> "_Proc":
        as_user = {}
        if user is not None:
            as_user = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        with open(log_path, "ab") as out:
            # A session of its own: a Ctrl-C in the terminal reaches only us, and we stop the
            # children in order instead of having them die in random order.
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True, **as_user)
        stat = _read_stat(popen.pid)
        return cls(popen.pid, stat.start_time if stat else None, popen)

    @classmethod
    def adopt(cls, pid: int | None, start_time: int | None) -> "_Proc | None":
        return cls(pid, start_time) if pid else None

    @property
    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        stat = _read_stat(self.pid)
        return stat is not None and stat.state != "Z" and stat.start_time == self.start_time

    def send(self, sig: int, *, group: bool = False) -> None:
        """Signal the process, or with group=True its whole process group (it leads one, having
        been started in a session of its own): what it forked dies with it."""
        if self.alive:
            try:
                os.killpg(self.pid, sig) if group else os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the process to exit; True if it did."""
        if self.popen is not None:
            try:
                self.popen.wait(timeout=max(timeout, 0))
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while self.alive:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)
        return True

    def describe_exit(self) -> str:
        code = self.popen.poll() if self.popen is not None else None
        if code is None:
            return "exited"
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT, SIGTERM and SIGHUP back while a child is started and recorded.

    An exception raised in between (KeyboardInterrupt, or `up`'s handler) would leave a process
    that stop() doesn't know about. Masking the signals instead would be inherited by the child,
    which would then ignore our SIGTERM. Caught signals go to the real handlers afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread runs Python signal handlers
        return
    caught: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not None:  # None: a handler not set from Python; leave it
            previous[sig] = signal.signal(sig, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


def _start_process(component, argv: list[str], log_path: Path, **kwargs) -> None:
    """Start a component's process and record it on the component, as one uninterruptible step."""
    with _signals_held():
        component.proc = _Proc.spawn(argv, log_path, **kwargs)


def _terminate(procs: Iterable[tuple[str, _Proc, int]], timeout: float) -> None:
    """Signal every (name, process, signal) at once, then wait; SIGKILL what outlives the deadline."""
    procs = [(name, proc, sig) for name, proc, sig in procs if proc is not None]
    for _, proc, sig in procs:
        proc.send(sig)
    deadline = time.monotonic() + timeout
    for name, proc, _ in procs:
        if not proc.wait(deadline - time.monotonic()):
            log.warning("%s (pid %d) did not stop within %.0fs; killing it", name, proc.pid, timeout)
            proc.send(signal.SIGKILL, group=True)
            proc.wait(10)


def _process_table() -> dict[int, _Stat]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _read_stat(int(entry))) is not None:
            table[int(entry)] = stat
    return table


def _own_lineage(table: dict[int, _Stat]) -> set[int]:
    """Our pid and our ancestors': their command lines may mention the root, never kill them."""
    lineage, pid = set(), os.getpid()
    while pid > 1 and pid not in lineage:
        lineage.add(pid)
        pid = table[pid].ppid if pid in table else 0
    return lineage


def _kill_strays(marker: str, *, expected: bool = False) -> int:
    """SIGKILL our programs whose command line mentions `marker` (a directory), with their children.

    What an orderly shutdown leaves behind lands here: containerd-shims (and the container
    processes under them) of a dockerd that was killed, a containerd that outlived its dockerd.
    """
    table = _process_table()
    spared = _own_lineage(table)
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)

    victims: set[int] = set()
    for pid in table:
        if pid in spared or not _is_sweepable(pid, marker):
            continue
        todo = [pid]
        while todo:
            current = todo.pop()
            if current not in victims and current not in spared:
                victims.add(current)
                todo.extend(children.get(current, []))
    for pid in victims:
        log.log(logging.INFO if expected else logging.WARNING,
                "killing leftover process %d: %s", pid, _cmdline(pid)[:200])
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stray_procs = [_Proc(pid, table[pid].start_time) for pid in victims]
    for proc in stray_procs:
        proc.wait(10)
    return len(victims)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_sweepable(pid: int, marker: str) -> bool:
    try:
        program = os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)")
    except OSError:
        return False  # kernel thread, or already gone
    return program.startswith(SWEEPABLE_PROGRAMS) and marker + "/" in _cmdline(pid)


# --------------------------------------------------------------------------------------------
# Files, ports, programs


def _log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last {len(text)} lines of {path} ---\n" + "\n".join(text)


def _write_json_atomically(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def deep_merge(base: dict, extra: dict) -> dict:
    """`base` updated recursively with `extra`; a None value in `extra` deletes that key."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_ports_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, from the kernel's ephemeral range."""
    while True:
        with socket.socket() as sock:
            sock.bind((LOCALHOST, 0))
            port = sock.getsockname()[1]
        if port not in _ports_handed_out:  # the kernel may hand the same one out twice
            _ports_handed_out.add(port)
            return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # Servers set SO_REUSEADDR, so a port only held by TIME_WAIT connections counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
            return True
        except OSError:
            return False


def _ephemeral_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _claim_port_ranges(count: int, size: int, owner: str) -> list[tuple[int, int]]:
    """Claim `count` blocks of `size` free ports for the engines' services.

    Blocks come from outside the kernel's ephemeral range, so free_port() never lands in one.
    A claim is a file PORT_CLAIMS_DIR/<first port> naming its test bed's root; it is stale once
    that root is gone.
    """
    low, high = _ephemeral_port_range()
    candidates = [*range(PORT_RANGE_START, low - size + 1, size),
                  *range((high // size + 1) * size, 65536 - size + 1, size)]
    PORT_CLAIMS_DIR.mkdir(mode=0o755, exist_ok=True)
    claimed: list[tuple[int, int]] = []
    for first in candidates:
        if len(claimed) == count:
            break
        if not _claim_file(first, owner):
            continue
        if all(_port_is_free(port) for port in range(first, first + size)):
            claimed.append((first, first + size - 1))
        else:
            _release_port_ranges([(first, first + size - 1)], owner)
    if len(claimed) < count:
        _release_port_ranges(claimed, owner)
        raise TestBedError(f"could not find {count} free blocks of {size} ports "
                           f"(claims are in {PORT_CLAIMS_DIR})")
    return claimed


def _claim_file(first: int, owner: str) -> bool:
    path = PORT_CLAIMS_DIR / str(first)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = path.read_text().strip()
            except OSError:
                holder = ""
            if holder and os.path.isdir(holder):
                return False
            path.unlink(missing_ok=True)  # stale: its test bed is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(owner + "\n")
        return True
    return False


def _release_port_ranges(ranges: Iterable[Iterable[int]], owner: str) -> None:
    for first, _ in ranges:
        path = PORT_CLAIMS_DIR / str(first)
        try:
            if path.read_text().strip() == owner:
                path.unlink()
        except OSError:
            pass


def _find_program(name: str, package: str) -> str:
    # Non-root PATHs usually lack the sbin directories, where dockerd lives.
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise TestBedError(f"`{name}` not found (Debian package {package}); {INSTALL_HINT}")
    return found


def _postgres_bindir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin, or $BERTH_PG_BINDIR."""
    if override := os.environ.get("BERTH_PG_BINDIR"):
        return Path(override)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()])
    if not found:
        raise TestBedError(f"no PostgreSQL server in /usr/lib/postgresql/*/bin "
                           f"(Debian package postgresql); {INSTALL_HINT}")
    return Path(found[-1]).parent


def _needs_dynamic_loader(path: str) -> bool:
    """True if the ELF file has a PT_INTERP header: it cannot run in a FROM scratch image."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF":
            return True
        is64, endian = header[4] == 2, "<" if header[5] == 1 else ">"
        if is64:
            phoff, = struct.unpack_from(endian + "Q", header, 0x20)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x36)
        else:
            phoff, = struct.unpack_from(endian + "I", header, 0x1C)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x2A)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    PT_INTERP = 3
    return any(struct.unpack_from(endian + "I", table, i * phentsize)[0] == PT_INTERP
               for i in range(phnum))


def _child_env(drop_prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """Our environment minus proxy settings: nothing we start may send traffic off 127.0.0.1."""
    env = {key: value for key, value in os.environ.items()
           if not key.lower().endswith("_proxy") and not key.startswith(drop_prefixes)}
    env["PATH"] = os.pathsep.join([env.get("PATH", "/usr/bin:/bin"), "/usr/sbin", "/sbin"])
    return env


def _http_status(port: int, path: str, timeout: float = 2.0) -> int:
    # http.client rather than urllib: urllib would honour *_proxy variables.
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _redis_pong(port: int, timeout: float = 2.0) -> bool:
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _wait_until(what: str, ready: Callable[[], bool], deadline: float,
                proc: _Proc | None = None, log_path: Path | None = None) -> None:
    """Poll `ready` until it returns True; fail early if `proc` dies, or at the deadline."""
    started, last_error = time.monotonic(), None
    while True:
        try:
            if ready():
                return
        except (OSError, http.client.HTTPException, subprocess.SubprocessError, TestBedError) as exc:
            last_error = exc
        if proc is not None and not proc.alive:
            raise TestBedError(f"{what} exited while starting ({proc.describe_exit()})"
                               + _log_tail(log_path))
        if time.monotonic() >= deadline:
            raise TestBedError(f"{what} not ready after {time.monotonic() - started:.0f}s"
                               + (f" (last error: {last_error})" if last_error else "")
                               + _log_tail(log_path))
        time.sleep(POLL_INTERVAL)


def split_image_ref(ref: str) -> tuple[str, str]:
    """'127.0.0.1:5000/library/busybox:1' -> ('127.0.0.1:5000/library/busybox', '1')."""
    repository, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repository, tag


# --------------------------------------------------------------------------------------------
# Components


@dataclasses.dataclass
class EngineTLS:
    """TLS material of an engine: the server side for dockerd, the client side for its callers.

    Nothing generates these yet; a caller that has them passes them per engine."""

    ca: str
    cert: str  # client certificate
    key: str  # client key
    server_cert: str
    server_key: str


@dataclasses.dataclass
class Engine:
    name: str
    dir: Path
    port: int
    port_range: tuple[int, int]
    tls: EngineTLS | None = None
    proc: _Proc | None = None

    data_root = property(lambda self: self.dir / "data")
    exec_root = property(lambda self: self.dir / "exec")
    socket_path = property(lambda self: self.dir / "docker.sock")
    pidfile = property(lambda self: self.dir / "pid")
    log_path = property(lambda self: self.dir / "dockerd.log")
    daemon_json = property(lambda self: self.dir / "daemon.json")
    url = property(lambda self: f"tcp://{LOCALHOST}:{self.port}")

    def argv(self, dockerd: str, extra_args: Iterable[str]) -> list[str]:
        argv = [
            dockerd,
            "--config-file", str(self.daemon_json),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "-H", f"unix://{self.socket_path}",
            "-H", f"tcp://{LOCALHOST}:{self.port}",
            # No docker0 bridge, no iptables/NAT, no ip_forward sysctl: the host stays untouched.
            "--bridge", "none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
            # Published ports default to 127.0.0.1 rather than 0.0.0.0.
            "--ip", LOCALHOST,
            "--containerd-namespace", f"berth-{self.name}",
            "--containerd-plugins-namespace", f"berth-{self.name}-plugins",
        ]
        if self.tls is not None:
            argv += ["--tlsverify", "--tlscacert", self.tls.ca,
                     "--tlscert", self.tls.server_cert, "--tlskey", self.tls.server_key]
        return argv + list(extra_args)

    def to_state(self) -> dict:
        return {
            "name": self.name,
            "url": self.url,
            "host": f"{LOCALHOST}:{self.port}",
            "port": self.port,
            "socket": f"unix://{self.socket_path}",
            "pid": self.proc.pid if self.proc else None,
            "pid_start": self.proc.start_time if self.proc else None,
            "port_range": list(self.port_range),
            "data_root": str(self.data_root),
            "exec_root": str(self.exec_root),
            "dir": str(self.dir),
            "log": str(self.log_path),
            "tls": dataclasses.asdict(self.tls) if self.tls else None,
        }

    @classmethod
    def from_state(cls, entry: dict) -> "Engine":
        return cls(name=entry["name"], dir=Path(entry["dir"]), port=entry["port"],
                   port_range=tuple(entry["port_range"]),
                   tls=EngineTLS(**entry["tls"]) if entry.get("tls") else None,
                   proc=_Proc.adopt(entry.get("pid"), entry.get("pid_start")))


@dataclasses.dataclass
class Registry:
    name: str
    dir: Path
    port: int
    extra_config: dict = dataclasses.field(default_factory=dict)
    proc: _Proc | None = None

    config_path = property(lambda self: self.dir / "config.yml")
    data_dir = property(lambda self: self.dir / "data")
    log_path = property(lambda self: self.dir / "registry.log")
    host = property(lambda self: f"{LOCALHOST}:{self.port}")
    url = property(lambda self: f"http://{LOCALHOST}:{self.port}")

    def config(self) -> dict:
        base = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text",
                    "fields": {"service": f"registry-{self.name}"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {
                "addr": self.host,
                # Fixed per registry so upload state survives restart_registry().
                "secret": f"berth-testbed-{self.name}-{self.port}",
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "health": {"storagedriver": {"enabled": False}},
        }
        return deep_merge(base, self.extra_config)

    def write_config(self) -> None:
        # JSON is valid YAML, so no YAML library is needed.
        self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n")

    def to_state(self) -> dict:
        return {
            "name": self.name,
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "pid": self.proc.pid if self.proc else None,
            "pid_start": self.proc.start_time if self.proc else None,
            "config_path": str(self.config_path),
            "data_dir": str(self.data_dir),
            "dir": str(self.dir),
            "log": str(self.log_path),
            "extra_config": self.extra_config,
        }

    @classmethod
    def from_state(cls, entry: dict) -> "Registry":
        return cls(name=entry["name"], dir=Path(entry["dir"]), port=entry["port"],
                   extra_config=entry.get("extra_config") or {},
                   proc=_Proc.adopt(entry.get("pid"), entry.get("pid_start")))


@dataclasses.dataclass
class Service:
    """PostgreSQL or Redis: one process, one port, one directory."""

    name: str
    dir: Path
    port: int
    proc: _Proc | None = None

    log_path = property(lambda self: self.dir / f"{self.name}.log")

    def to_state(self) -> dict:
        return {"port": self.port, "dir": str(self.dir), "log": str(self.log_path),
                "pid": self.proc.pid if self.proc else None,
                "pid_start": self.proc.start_time if self.proc else None}

    @classmethod
    def from_state(cls, name: str, entry: dict | None) -> "Service | None":
        if not entry:
            return None
        return cls(name=name, dir=Path(entry["dir"]), port=entry["port"],
                   proc=_Proc.adopt(entry.get("pid"), entry.get("pid_start")))


class _DockerAPI:
    """Just enough of the Engine API, over http.client, for the test bed's own chores."""

    def __init__(self, engine: Engine, timeout: float = 60.0):
        self.engine = engine
        self.timeout = timeout

    def _connection(self) -> http.client.HTTPConnection:
        if self.engine.tls is None:
            return http.client.HTTPConnection(LOCALHOST, self.engine.port, timeout=self.timeout)
        context = ssl.create_default_context(cafile=self.engine.tls.ca)
        context.load_cert_chain(self.engine.tls.cert, self.engine.tls.key)
        return http.client.HTTPSConnection(LOCALHOST, self.engine.port, timeout=self.timeout,
                                           context=context)

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None) -> bytes:
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status >= 300:
            raise TestBedError(f"{self.engine.name}: {method} {path} -> HTTP {response.status}: "
                               f"{data[:500].decode(errors='replace')}")
        return data

    def progress(self, method: str, path: str, body: bytes | None = None,
                 headers: dict | None = None) -> list[dict]:
        """Build, push and pull answer 200 and report failures inside a stream of JSON messages."""
        text = self.call(method, path, body, headers).decode()
        decoder, messages, index = json.JSONDecoder(), [], 0
        while index < len(text):
            if text[index].isspace():
                index += 1
                continue
            message, index = decoder.raw_decode(text, index)
            messages.append(message)
            if "error" in message or "errorDetail" in message:
                detail = message.get("errorDetail", {}).get("message") or message.get("error")
                endpoint = path.split("?")[0]
                raise TestBedError(f"{self.engine.name}: {method} {endpoint} failed: {detail}")
        return messages

    def ping(self) -> bool:
        return self.call("GET", "/_ping") == b"OK"

    def remove_all_containers(self) -> int:
        containers = json.loads(self.call("GET", "/containers/json?all=1"))
        for container in containers:
            self.call("DELETE", f"/containers/{container['Id']}?force=1&v=1")
        return len(containers)

    @staticmethod
    def _auth_header(auth: dict | None) -> dict:
        # The API wants this header on push even without credentials.
        return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(auth or {}).encode()).decode()}

    def build(self, context_tar: bytes, tag: str) -> None:
        # The classic builder; networkmode=none because the engines have no bridge network.
        query = urllib.parse.urlencode({"t": tag, "rm": 1, "forcerm": 1, "networkmode": "none"})
        self.progress("POST", f"/build?{query}", context_tar, {"Content-Type": "application/x-tar"})

    def push(self, ref: str, auth: dict | None = None) -> None:
        repository, tag = split_image_ref(ref)
        self.progress("POST", f"/images/{repository}/push?tag={tag}", b"", self._auth_header(auth))

    def pull(self, ref: str, auth: dict | None = None) -> None:
        repository, tag = split_image_ref(ref)
        query = urllib.parse.urlencode({"fromImage": repository, "tag": tag})
        self.progress("POST", f"/images/create?{query}", b"", self._auth_header(auth))


# --------------------------------------------------------------------------------------------
# The test bed


class TestBed:
    """Start, describe and stop the test bed. See the module docstring.

    Arguments:
        root:            base directory; created, must be empty if it exists (default: mkdtemp).
        engines:         number of dockerd engines (named e1..eN), or a list of names.
        registries:      names of the registries to run; the image is pushed to "primary".
        postgres, redis: whether to run them.
        image:           build the busybox test image on the first engine and push it to
                         "primary"; None (default): if there are both.
        registry_config: {registry name: dict merged into its generated config}; None values delete.
        engine_tls:      {engine name: EngineTLS} for engines that should require mutual TLS.
        engine_args:     extra dockerd arguments for every engine.
        image_push_auth: X-Registry-Auth credentials for the push, if the primary has auth at start.
        state_path:      where start() writes the state JSON (and stop() removes it).
        keep:            leave the root directory (logs, data) in place after stop().
        timeout:         deadline in seconds for each wait (startup, shutdown).
        port_range_size: host ports reserved per engine for the services it runs.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, root: str | os.PathLike | None = None, *,
                 engines: int | Iterable[str] = 3,
                 registries: Iterable[str] = DEFAULT_REGISTRIES,
                 postgres: bool = True,
                 redis: bool = True,
                 image: bool | None = None,
                 registry_config: dict[str, dict] | None = None,
                 engine_tls: dict[str, EngineTLS] | None = None,
                 engine_args: Iterable[str] = (),
                 image_push_auth: dict | None = None,
                 state_path: str | os.PathLike | None = None,
                 keep: bool = False,
                 timeout: float = DEFAULT_TIMEOUT,
                 port_range_size: int = 1000):
        if isinstance(engines, int):
            engine_names = [f"e{i}" for i in range(1, engines + 1)]
        else:
            engine_names = list(engines)
        registries = list(registries)
        can_build = bool(engine_names) and "primary" in registries
        if image is None:
            image = can_build
        elif image and not can_build:
            raise ValueError("the test image needs at least one engine and the 'primary' registry")
        unknown = set(registry_config or {}) - set(registries)
        if unknown:
            raise ValueError(f"registry_config for registries that are not started: {sorted(unknown)}")

        self.root = Path(os.path.realpath(root)) if root else None
        self.keep = keep
        self.timeout = timeout
        self.state_path = Path(state_path) if state_path else None
        self.engine_args = list(engine_args)
        self.image_push_auth = image_push_auth
        self.port_range_size = port_range_size
        self._wanted = dict(engines=engine_names, registries=registries, postgres=postgres,
                            redis=redis, image=image, registry_config=registry_config or {},
                            engine_tls=engine_tls or {})

        self.engines: dict[str, Engine] = {}
        self.registries: dict[str, Registry] = {}
        self.postgres: Service | None = None
        self.redis: Service | None = None
        self.image: str | None = None
        self.ready = False
        self._started = self._stopped = self._detached = False
        self._owns_root = False  # set once the root is ours to sweep and delete
        self._initdb: Service | None = None  # runs while the rest boots
        self._programs: dict[str, str] = {}

    # -- public API -----------------------------------------------------------------------

    def __enter__(self) -> "TestBed":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> dict:
        """Start every component, wait until all answer, return (and write) the state."""
        if self._started:
            raise RuntimeError("a TestBed starts once; make a new one")
        self._started = True
        atexit.register(self._stop_at_exit)
        began = time.monotonic()
        try:
            self._find_programs()
            self._make_root()
            self._plan()
            self._spawn_all()
            self.write_state()
            deadline = time.monotonic() + self.timeout
            if self._wanted["image"]:
                # The build needs only the first engine and the primary registry; initdb, the
                # slowest step, goes on meanwhile.
                self._wait_engine(next(iter(self.engines.values())), deadline)
                self._wait_registry(self.registries["primary"], deadline)
                self._build_test_image(time.monotonic() + self.timeout)
            self._wait_all(deadline)
            self.ready = True
            self.write_state()
        except BaseException:
            log.error("test bed failed to start; stopping what was started")
            self.stop()
            raise
        log.info("test bed up in %.1fs (root %s)", time.monotonic() - began, self.root)
        return self.state

    def stop(self) -> None:
        """Stop everything and delete the root (unless keep). Safe to call more than once."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        atexit.unregister(self._stop_at_exit)
        began = time.monotonic()
        self._stop_engines(list(self.engines.values()), remove_containers=True)
        if self._initdb is not None:
            # Interrupted while it ran: kill it along with its `postgres --single` child.
            self._initdb.proc.send(signal.SIGKILL, group=True)
            self._initdb.proc.wait(self.timeout)
        _terminate([(f"registry {r.name}", r.proc, signal.SIGTERM) for r in self.registries.values()]
                   + [("redis", self.redis and self.redis.proc, signal.SIGTERM),
                      # SIGINT is PostgreSQL's "fast" shutdown, what `pg_ctl stop -m fast` sends;
                      # pg_ctl itself refuses to run as root.
                      ("postgres", self.postgres and self.postgres.proc, signal.SIGINT)],
                   self.timeout)
        if self._owns_root:
            _kill_strays(str(self.root))
            self._unmount_all()
            _release_port_ranges([e.port_range for e in self.engines.values()], str(self.root))
            self._remove_root()
        self._remove_state_file()
        log.info("test bed down in %.1fs", time.monotonic() - began)

    def detach(self) -> None:
        """Leave the processes running when this Python process exits (`up --detach`)."""
        self._detached = True
        atexit.unregister(self._stop_at_exit)

    @classmethod
    def from_state(cls, state: dict | str | os.PathLike) -> "TestBed":
        """A TestBed for processes started elsewhere (e.g. by `up --detach`): to stop or inspect."""
        state_path = None
        if not isinstance(state, dict):
            state_path = Path(state)
            state = json.loads(state_path.read_text())
        bed = cls(state["root"], engines=[], registries=[], postgres=False, redis=False,
                  image=False, state_path=state_path, keep=state.get("keep", False))
        bed.engines = {e["name"]: Engine.from_state(e) for e in state["engines"]}
        bed.registries = {name: Registry.from_state(r) for name, r in state["registries"].items()}
        bed.postgres = Service.from_state("postgres", state.get("postgres"))
        bed.redis = Service.from_state("redis", state.get("redis"))
        bed.image = state.get("image")
        bed.ready = state.get("ready", False)
        bed._owns_root = True
        bed._started = True  # adopted: nothing is stopped at exit unless stop() is called
        atexit.unregister(bed._stop_at_exit)
        return bed

    @property
    def state(self) -> dict:
        postgres = redis = None
        if self.postgres:
            postgres = self.postgres.to_state() | {
                "url": self.postgres_url, "host": LOCALHOST, "database": POSTGRES_DB,
                "user": "postgres", "socket_dir": str(self.postgres.dir / "sock"),
                "data_dir": str(self.postgres.dir / "data")}
        if self.redis:
            redis = self.redis.to_state() | {"url": self.redis_url}
        procs = [c.proc for c in [*self.engines.values(), *self.registries.values(),
                                  self.postgres, self.redis] if c is not None and c.proc]
        return {
            "root": str(self.root),
            "ready": self.ready,
            "keep": self.keep,
            "engines": [e.to_state() for e in self.engines.values()],
            "registries": {name: r.to_state() for name, r in self.registries.items()},
            "postgres": postgres,
            "postgres_url": self.postgres_url,
            "redis": redis,
            "redis_url": self.redis_url,
            "image": self.image,
            "pids": [p.pid for p in procs],
        }

    @property
    def postgres_url(self) -> str | None:
        if self.postgres is None:
            return None
        return f"postgresql+psycopg://postgres@{LOCALHOST}:{self.postgres.port}/{POSTGRES_DB}"

    @property
    def redis_url(self) -> str | None:
        return f"redis://{LOCALHOST}:{self.redis.port}/0" if self.redis else None

    def write_state(self, path: str | os.PathLike | None = None) -> None:
        target = Path(path) if path else self.state_path
        if target is not None:
            _write_json_atomically(target, self.state)

    def engine(self, name: str) -> dict:
        return self._engine(name).to_state()

    def stop_engine(self, name: str, *, kill: bool = False) -> None:
        """Take one engine down, as if its host went down; start_engine() brings it back.

        By default dockerd gets SIGTERM and stops its containers first, each within its own
        stop timeout (10 s unless the container was created with another: a busybox `sh` or
        `sleep` as PID 1 ignores SIGTERM, so it takes the full 10 s). With kill=True it is a
        crash instead: SIGKILL for dockerd, its containerd, the shims and the containers, at
        once. Either way the containers stay in its data root, as exited, for the restart."""
        engine = self._engine(name)
        if kill:
            if engine.proc is not None:
                engine.proc.send(signal.SIGKILL)
                engine.proc.wait(self.timeout)
            self._sweep_engine(engine, expected=True)
        else:
            self._stop_engines([engine], remove_containers=False)
        self.write_state()

    def start_engine(self, name: str) -> dict:
        """Start a stopped engine again, on the same port, socket and directories."""
        engine = self._engine(name)
        if engine.proc is not None and engine.proc.alive:
            raise TestBedError(f"engine {name} is already running (pid {engine.proc.pid})")
        self._find_programs()
        self._spawn_engine(engine)
        self.write_state()
        self._wait_engine(engine, time.monotonic() + self.timeout)
        return engine.to_state()

    def restart_registry(self, name: str, extra_config: dict | None = None) -> dict:
        """Restart a registry on the same port and storage; with `extra_config`, that dict
        replaces the one merged into its generated config (e.g. to add `auth.token`)."""
        registry = self.registries[name]
        if extra_config is not None:
            registry.extra_config = copy.deepcopy(extra_config)
        _terminate([(f"registry {name}", registry.proc, signal.SIGTERM)], self.timeout)
        self._find_programs()
        self._spawn_registry(registry)
        self.write_state()
        self._wait_registry(registry, time.monotonic() + self.timeout)
        return registry.to_state()

    def load_image(self, engine_name: str, ref: str | None = None, auth: dict | None = None) -> str:
        """Pull `ref` (default: the test image) from its registry into an engine.

        Only the first engine has the test image after start(); the others pull it like this.
        127.0.0.0/8 registries are insecure (plain HTTP) by default in dockerd, so no flag needed."""
        ref = ref or self.image
        if ref is None:
            raise TestBedError("no image given and the test bed built none")
        _DockerAPI(self._engine(engine_name), self.timeout).pull(ref, auth)
        return ref

    def docker_client(self, engine_name: str):
        """A docker SDK client for an engine (imports `docker`, so needs the virtualenv)."""
        import docker  # noqa: PLC0415 - optional dependency, the rest is stdlib only

        engine = self._engine(engine_name)
        tls = None
        if engine.tls is not None:
            tls = docker.tls.TLSConfig(client_cert=(engine.tls.cert, engine.tls.key),
                                       ca_cert=engine.tls.ca, verify=True)
        # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override the engine's CA (and
        # *_proxy variables route traffic elsewhere), so the client must ignore the environment.
        # The SDK asks for the API version as it is constructed, before that can be switched
        # off: ask for it ourselves.
        version = json.loads(_DockerAPI(engine, 10).call("GET", "/version"))["ApiVersion"]
        client = docker.DockerClient(base_url=engine.url, tls=tls, version=version,
                                     timeout=int(self.timeout))
        client.api.trust_env = False
        return client

    def status(self) -> dict[str, bool]:
        """Whether each component answers right now."""
        def answers(check: Callable[[], bool]) -> bool:
            try:
                return check()
            except (OSError, http.client.HTTPException, TestBedError):
                return False

        status = {f"engine {e.name}": answers(_DockerAPI(e, 5).ping) for e in self.engines.values()}
        for r in self.registries.values():
            status[f"registry {r.name}"] = answers(
                lambda r=r: _http_status(r.port, "/v2/") in (200, 401))
        if self.postgres:
            status["postgres"] = _tcp_open(self.postgres.port)
        if self.redis:
            status["redis"] = answers(lambda: _redis_pong(self.redis.port))
        return status

    # -- starting -------------------------------------------------------------------------

    def _find_programs(self) -> None:
        if self._programs:
            return
        wanted = self._wanted
        if self.engines or wanted["engines"]:
            if os.geteuid() != 0:
                raise TestBedError("Docker engines need root (dockerd runs rootful here)")
            self._programs["dockerd"] = _find_program("dockerd", "docker.io")
            _find_program("containerd", "docker.io")
            _find_program("runc", "docker.io")
        if self.registries or wanted["registries"]:
            self._programs["registry"] = _find_program("docker-registry", "docker-registry")
        if self.redis or wanted["redis"]:
            self._programs["redis"] = _find_program("redis-server", "redis-server")
        if self.postgres or wanted["postgres"]:
            bindir = _postgres_bindir()
            for program in ("initdb", "postgres", "pg_isready", "createdb"):
                if not (bindir / program).exists():
                    raise TestBedError(f"{bindir / program} is missing (Debian package postgresql); "
                                       f"{INSTALL_HINT}")
                self._programs[program] = str(bindir / program)
        if wanted["image"]:
            busybox = _find_program("busybox", "busybox-static")
            if _needs_dynamic_loader(busybox):
                raise TestBedError(f"{busybox} is dynamically linked and can't run in a FROM scratch "
                                   f"image; install the Debian package busybox-static "
                                   f"({INSTALL_HINT})")
            self._programs["busybox"] = os.path.realpath(busybox)

    def _make_root(self) -> None:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="berth-", dir="/tmp"))
        elif self.root.exists() and any(self.root.iterdir()):
            raise TestBedError(f"root {self.root} is not empty (stop() deletes it, so it must be "
                               f"empty or absent)")
        self.root.mkdir(parents=True, exist_ok=True)
        if len(str(self.root)) > MAX_ROOT_LENGTH:
            raise TestBedError(f"root {self.root} is too long: unix socket paths under it would "
                               f"exceed 108 bytes; use at most {MAX_ROOT_LENGTH} characters")
        # mkdtemp makes it 0700; the postgres user must be able to reach R/pg.
        self.root.chmod(0o755)
        (self.root / MARKER_FILE).write_text("created by scripts/testbed.py\n")
        self._owns_root = True

    def _plan(self) -> None:
        """Pick ports and directories for every component."""
        wanted, root = self._wanted, str(self.root)
        ranges = _claim_port_ranges(len(wanted["engines"]), self.port_range_size, root)
        for name, port_range in zip(wanted["engines"], ranges):
            self.engines[name] = Engine(name=name, dir=self.root / name, port=free_port(),
                                        port_range=port_range, tls=wanted["engine_tls"].get(name))
        for name in wanted["registries"]:
            extra_config = copy.deepcopy(wanted["registry_config"].get(name, {}))
            self.registries[name] = Registry(name=name, dir=self.root / f"reg-{name}",
                                             port=free_port(), extra_config=extra_config)
        if wanted["postgres"]:
            self.postgres = Service("postgres", self.root / "pg", free_port())
        if wanted["redis"]:
            self.redis = Service("redis", self.root / "redis", free_port())

    def _spawn_all(self) -> None:
        """Start every process without waiting for any: they all boot in parallel."""
        for engine in self.engines.values():
            self._spawn_engine(engine)
        for registry in self.registries.values():
            self._spawn_registry(registry)
        if self.redis:
            self._spawn_redis()
        if self.postgres:
            self._spawn_initdb()  # PostgreSQL itself starts once initdb is done (_wait_all)

    def _wait_all(self, deadline: float) -> None:
        for engine in self.engines.values():
            self._wait_engine(engine, deadline)
        for registry in self.registries.values():
            self._wait_registry(registry, deadline)
        if self.redis:
            _wait_until("redis", lambda: _redis_pong(self.redis.port), deadline,
                        self.redis.proc, self.redis.log_path)
        if self.postgres:
            self._finish_initdb(deadline)
            self._spawn_postgres()
            self.write_state()
            self._wait_postgres(deadline)

    def _spawn_engine(self, engine: Engine) -> None:
        for path in (engine.dir, engine.data_root, engine.exec_root, engine.dir / "tmp"):
            path.mkdir(mode=0o711, parents=True, exist_ok=True)
        # Its own key file: without it every engine shares /etc/docker/key.json and so reports
        # the same engine ID in /info. (20.10 has no command-line flag for the key path.)
        engine.daemon_json.write_text(json.dumps({"deprecated-key-path": str(engine.dir / "key.json")}))
        engine.pidfile.unlink(missing_ok=True)
        # A busy machine makes dockerd give up on a slow containerd and restart it, after asking
        # it for a goroutine dump, which containerd writes to $TMPDIR: keep that in our root.
        env = _child_env(drop_prefixes=("DOCKER_",)) | {"TMPDIR": str(engine.dir / "tmp")}
        _start_process(engine, engine.argv(self._programs["dockerd"], self.engine_args),
                       engine.log_path, env=env)

    def _wait_engine(self, engine: Engine, deadline: float) -> None:
        _wait_until(f"engine {engine.name} (dockerd)", _DockerAPI(engine, 2).ping, deadline,
                    engine.proc, engine.log_path)

    def _spawn_registry(self, registry: Registry) -> None:
        registry.data_dir.mkdir(parents=True, exist_ok=True)
        registry.write_config()
        # REGISTRY_* variables would override the config file.
        _start_process(registry, [self._programs["registry"], "serve", str(registry.config_path)],
                       registry.log_path, env=_child_env(drop_prefixes=("REGISTRY_",)),
                       cwd=registry.dir)

    def _wait_registry(self, registry: Registry, deadline: float) -> None:
        # 401 counts: the registry is up, it just wants a token.
        _wait_until(f"registry {registry.name}",
                    lambda: _http_status(registry.port, "/v2/") in (200, 401),
                    deadline, registry.proc, registry.log_path)

    def _spawn_redis(self) -> None:
        self.redis.dir.mkdir()
        argv = [self._programs["redis"], "--port", str(self.redis.port), "--bind", LOCALHOST,
                "--save", "", "--appendonly", "no", "--dir", str(self.redis.dir),
                "--daemonize", "no", "--logfile", "",
                # Keep the command line (with --dir under our root) so that a sweep can find it.
                "--set-proc-title", "no"]
        _start_process(self.redis, argv, self.redis.log_path, env=_child_env(), cwd=self.redis.dir)

    def _postgres_user(self) -> pwd.struct_passwd | None:
        """PostgreSQL refuses to run as root: as root, run it as the Debian `postgres` user."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise TestBedError("no `postgres` system user (created by the Debian package "
                               f"postgresql); {INSTALL_HINT}") from None

    def _spawn_initdb(self) -> None:
        pg, user = self.postgres, self._postgres_user()
        (pg.dir / "sock").mkdir(parents=True)
        if user is not None:
            for path in (pg.dir, pg.dir / "sock"):
                os.chown(path, user.pw_uid, user.pw_gid)
        argv = [self._programs["initdb"], "-D", str(pg.dir / "data"), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--locale=C",
                "--no-sync"]  # test data needn't survive a power cut; saves seconds
        self._initdb = Service("initdb", pg.dir, port=0)
        _start_process(self._initdb, argv, self._initdb.log_path, env=self._postgres_env(),
                       cwd=pg.dir, user=user)

    def _finish_initdb(self, deadline: float) -> None:
        initdb = self._initdb
        if not initdb.proc.wait(deadline - time.monotonic()):
            raise TestBedError(f"initdb did not finish within {self.timeout:.0f}s"
                               + _log_tail(initdb.log_path))
        if initdb.proc.popen.returncode != 0:
            raise TestBedError(f"initdb failed ({initdb.proc.describe_exit()})"
                               + _log_tail(initdb.log_path))

    def _postgres_env(self) -> dict[str, str]:
        return _child_env(drop_prefixes=("PG",)) | {"HOME": str(self.postgres.dir), "LC_ALL": "C"}

    def _spawn_postgres(self) -> None:
        pg = self.postgres
        argv = [self._programs["postgres"], "-D", str(pg.dir / "data"),
                "-h", LOCALHOST, "-p", str(pg.port), "-k", str(pg.dir / "sock"),
                # Durability is pointless for throwaway test data and costs time.
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        _start_process(pg, argv, pg.log_path, env=self._postgres_env(), cwd=pg.dir,
                       user=self._postgres_user())

    def _wait_postgres(self, deadline: float) -> None:
        pg = self.postgres
        client = ["-h", LOCALHOST, "-p", str(pg.port), "-U", "postgres"]
        env = _child_env(drop_prefixes=("PG",))

        def accepting() -> bool:
            return subprocess.run([self._programs["pg_isready"], *client, "-d", "postgres", "-t", "2"],
                                  env=env, capture_output=True).returncode == 0

        _wait_until("postgres", accepting, deadline, pg.proc, pg.log_path)
        created = subprocess.run([self._programs["createdb"], *client, POSTGRES_DB],
                                 env=env, capture_output=True, text=True, timeout=self.timeout)
        if created.returncode != 0:
            raise TestBedError(f"createdb {POSTGRES_DB} failed: {created.stderr.strip()}"
                               + _log_tail(pg.log_path))

    def _build_test_image(self, deadline: float) -> None:
        """Build busybox FROM scratch on the first engine and push it to the primary registry."""
        engine = next(iter(self.engines.values()))
        ref = f"{self.registries['primary'].host}/{IMAGE_REPOSITORY}:{IMAGE_TAG}"
        api = _DockerAPI(engine, max(deadline - time.monotonic(), 1))
        began = time.monotonic()
        api.build(self._image_context(), ref)
        api.push(ref, self.image_push_auth)
        self.image = ref
        log.info("built and pushed %s in %.1fs", ref, time.monotonic() - began)

    def _image_context(self) -> bytes:
        dockerfile = "\n".join([
            "FROM scratch",
            "COPY busybox /bin/busybox",
            'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin'
            ' && /bin/busybox mkdir -p -m 1777 /tmp"]',
            'CMD ["sh"]',
            "",
        ]).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size, info.mode = len(dockerfile), 0o644
            tar.addfile(info, io.BytesIO(dockerfile))
            tar.add(self._programs["busybox"], arcname="busybox", filter=_root_owned)
        return buffer.getvalue()

    # -- stopping -------------------------------------------------------------------------

    def _engine(self, name: str) -> Engine:
        try:
            return self.engines[name]
        except KeyError:
            raise TestBedError(f"no engine {name!r}; engines: {', '.join(self.engines)}") from None

    def _stop_engines(self, engines: list[Engine], *, remove_containers: bool) -> None:
        running = [e for e in engines if e.proc is not None and e.proc.alive]
        if remove_containers and running:
            # Removing containers through the API first leaves no containerd-shim behind.
            with concurrent.futures.ThreadPoolExecutor(len(running)) as pool:
                list(pool.map(self._remove_containers, running))
        _terminate([(f"engine {e.name} (dockerd)", e.proc, signal.SIGTERM) for e in running],
                   self.timeout)
        for engine in engines:
            self._sweep_engine(engine)

    @staticmethod
    def _remove_containers(engine: Engine) -> None:
        try:
            removed = _DockerAPI(engine, 30).remove_all_containers()
            if removed:
                log.info("removed %d container(s) from %s", removed, engine.name)
        except ConnectionRefusedError:
            pass  # still booting (or stuck): it has no API, so it has run no containers
        except (OSError, http.client.HTTPException, TestBedError) as exc:
            log.warning("could not remove the containers of %s: %s", engine.name, exc)

    @staticmethod
    def _sweep_engine(engine: Engine, expected: bool = False) -> None:
        # A dockerd that had to be killed leaves its containerd and shims running.
        _kill_strays(str(engine.exec_root), expected=expected)
        # A restarted dockerd trusts this pid file if that pid exists, even as a zombie or as
        # some other process that got the number, and then waits for a containerd that never
        # answers ("timeout waiting for containerd to start").
        (engine.exec_root / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def _unmount_all(self) -> None:
        """Unmount what dockerd left mounted under the root (overlays, netns), deepest first."""
        prefix = str(self.root) + "/"
        with open("/proc/self/mountinfo") as f:
            # Field 5 is the mount point, with spaces and the like escaped as octal (\040).
            points = [line.split()[4].encode().decode("unicode_escape") for line in f]
        for point in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)

    def _remove_root(self) -> None:
        if self.keep:
            log.info("kept %s", self.root)
            return
        if not (self.root / MARKER_FILE).exists():
            if self.root.exists():
                log.warning("not deleting %s: it has no %s marker", self.root, MARKER_FILE)
            return
        shutil.rmtree(self.root, onerror=lambda _f, path, exc: log.warning(
            "could not delete %s: %s", path, exc[1]))

    def _remove_state_file(self) -> None:
        """Remove the state file, if it still describes this test bed."""
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            if json.loads(self.state_path.read_text()).get("root") == str(self.root):
                self.state_path.unlink()
        except (OSError, ValueError):
            pass

    def _stop_at_exit(self) -> None:
        if not self._detached:
            self.stop()


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755
    return info


# --------------------------------------------------------------------------------------------
# Command line


class _Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP in `up`: unwinds like KeyboardInterrupt, so stop() runs."""


def _install_signal_handlers() -> None:
    fired = []

    def handler(signum, _frame):
        if fired:  # already shutting down: let the orderly stop finish
            log.warning("%s: already stopping, please wait", signal.Signals(signum).name)
            return
        fired.append(signum)
        raise _Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _summary(state: dict) -> str:
    lines = [f"root      {state['root']}"]
    for e in state["engines"]:
        lines.append(f"engine    {e['name']}  {e['url']}  {e['socket']}  services on ports "
                     f"{e['port_range'][0]}-{e['port_range'][1]}  (pid {e['pid']})")
    for name, r in state["registries"].items():
        lines.append(f"registry  {name}  {r['url']}  (pid {r['pid']})")
    if state["postgres_url"]:
        lines.append(f"postgres  {state['postgres_url']}  (pid {state['postgres']['pid']})")
    if state["redis_url"]:
        lines.append(f"redis     {state['redis_url']}  (pid {state['redis']['pid']})")
    if state["image"]:
        lines.append(f"image     {state['image']}")
    return "\n".join(lines)


def _watch(bed: TestBed) -> None:
    """Block until a signal arrives, saying so once if a component dies in the meantime."""
    reported: set[str] = set()
    while True:
        components = {**{f"engine {n}": e.proc for n, e in bed.engines.items()},
                      **{f"registry {n}": r.proc for n, r in bed.registries.items()},
                      "postgres": bed.postgres and bed.postgres.proc,
                      "redis": bed.redis and bed.redis.proc}
        for name, proc in components.items():
            if proc is not None and not proc.alive and name not in reported:
                log.warning("%s exited unexpectedly (%s)", name, proc.describe_exit())
                reported.add(name)
        time.sleep(1)


def _running_bed_root(state_path: str) -> str | None:
    """The root of the test bed a state file describes, if that one still exists."""
    try:
        root = json.loads(Path(state_path).read_text()).get("root")
    except (OSError, ValueError):
        return None
    return root if root and Path(root, MARKER_FILE).exists() else None


def _cmd_up(args) -> int:
    _install_signal_handlers()
    if root := _running_bed_root(args.state):
        # Overwriting its state file would lose the only handle on its processes.
        log.error("%s describes a test bed that is still there (%s): run `down --state %s` "
                  "first, or pass another --state", args.state, root, args.state)
        return 1
    registries = [name for name in args.registries.split(",") if name]
    bed = TestBed(args.root, engines=args.engines, registries=registries,
                  postgres=not args.no_postgres, redis=not args.no_redis,
                  image=False if args.no_image else None,
                  state_path=args.state, keep=args.keep, timeout=args.timeout)
    began = time.monotonic()
    try:
        state = bed.start()
    except TestBedError as exc:
        log.error("%s", exc)
        return 1
    except _Interrupted as exc:
        log.error("interrupted (%s) while starting; stopped", exc)
        return 130
    print(json.dumps(state, indent=2), flush=True)
    print(f"\nBerth test bed up in {time.monotonic() - began:.1f}s; state in {args.state}\n"
          + _summary(state), file=sys.stderr)
    if args.detach:
        bed.detach()
        print(f"\ndetached; stop it with: {sys.argv[0]} down --state {args.state}", file=sys.stderr)
        return 0
    print("\nrunning; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        _watch(bed)
    except _Interrupted as exc:
        log.info("%s: stopping", exc)
    finally:
        began = time.monotonic()
        bed.stop()
        print(f"Berth test bed down in {time.monotonic() - began:.1f}s", file=sys.stderr)
    return 0


def _load(args) -> TestBed | None:
    if not Path(args.state).exists():
        log.error("no state file %s (is a test bed up? `up --state FILE` writes it)", args.state)
        return None
    return TestBed.from_state(args.state)


def _cmd_down(args) -> int:
    bed = _load(args)
    if bed is None:
        return 1
    if args.keep:
        bed.keep = True
    began = time.monotonic()
    bed.stop()
    print(f"Berth test bed down in {time.monotonic() - began:.1f}s", file=sys.stderr)
    return 0


def _cmd_status(args) -> int:
    bed = _load(args)
    if bed is None:
        return 1
    status = bed.status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(_summary(bed.state))
        for name, up in status.items():
            print(f"{'up  ' if up else 'DOWN'}  {name}")
    return 0 if all(status.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the test bed; Ctrl-C stops it (`down` if --detach)")
    up.add_argument("--root", help="base directory (default: a new /tmp/berth-XXXXXXXX)")
    up.add_argument("--engines", type=int, default=3, help="number of Docker engines (default 3)")
    up.add_argument("--registries", default=",".join(DEFAULT_REGISTRIES),
                    help="comma-separated registry names (default: primary,mirror)")
    up.add_argument("--no-postgres", action="store_true")
    up.add_argument("--no-redis", action="store_true")
    up.add_argument("--no-image", action="store_true", help="don't build and push the test image")
    up.add_argument("--detach", action="store_true", help="leave it running and exit")
    up.add_argument("--keep", action="store_true", help="keep the root directory after stopping")
    up.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per wait")
    up.set_defaults(run=_cmd_up)

    down = commands.add_parser("down", help="stop a test bed described by a state file")
    down.add_argument("--keep", action="store_true", help="keep the root directory")
    down.set_defaults(run=_cmd_down)

    status = commands.add_parser("status", help="check that each component answers")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_cmd_status)

    for command in (up, down, status):
        default_state = os.environ.get("BERTH_TESTBED_STATE", DEFAULT_STATE_PATH)
        command.add_argument("--state", default=default_state,
                             help=f"state file (default: $BERTH_TESTBED_STATE or {DEFAULT_STATE_PATH})")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s testbed: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
