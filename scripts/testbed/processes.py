"""The bed's processes: spawning them in sessions of their own, adopting them from a state file,
stopping them in order, and sweeping strays that mention the bed's root."""
from __future__ import annotations

import contextlib
import dataclasses
import http.client
import logging
import os
import pwd
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from .common import POLL_INTERVAL, TestBedError, log, log_tail

# Programs a sweep may kill when their command line mentions our root (never anything else).
SWEEPABLE_PROGRAMS = ("dockerd", "containerd", "docker-proxy", "runc", "docker-registry",
                      "redis-server", "postgres", "initdb")


@dataclasses.dataclass(frozen=True)
class Stat:
    state: str
    ppid: int
    start_time: int


def read_stat(pid: int) -> Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    return Stat(state=fields[0], ppid=int(fields[1]), start_time=int(fields[19]))


class Proc:
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
              cwd: Path | None = None, user: pwd.struct_passwd | None = None) -> "Proc":
        as_user = {}
        if user is not None:
            as_user = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        with open(log_path, "ab") as out:
            # A session of its own: a Ctrl-C in the terminal reaches only us, and we stop the
            # children in order instead of having them die in random order.
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True, **as_user)
        stat = read_stat(popen.pid)
        return cls(popen.pid, stat.start_time if stat else None, popen)

    @classmethod
    def adopt(cls, pid: int | None, start_time: int | None) -> "Proc | None":
        return cls(pid, start_time) if pid else None

    @property
    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        stat = read_stat(self.pid)
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
def signals_held():
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


def start_process(component, argv: list[str], log_path: Path, **kwargs) -> None:
    """Start a component's process and record it on the component, as one uninterruptible step."""
    with signals_held():
        component.proc = Proc.spawn(argv, log_path, **kwargs)


def terminate(procs: Iterable[tuple[str, Proc | None, int]], timeout: float) -> None:
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


def wait_until(what: str, ready: Callable[[], bool], deadline: float,
               proc: Proc | None = None, log_path: Path | None = None) -> None:
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
                               + log_tail(log_path))
        if time.monotonic() >= deadline:
            raise TestBedError(f"{what} not ready after {time.monotonic() - started:.0f}s"
                               + (f" (last error: {last_error})" if last_error else "")
                               + log_tail(log_path))
        time.sleep(POLL_INTERVAL)


def child_env(drop_prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """Our environment minus proxy settings: nothing we start may send traffic off 127.0.0.1."""
    env = {key: value for key, value in os.environ.items()
           if not key.lower().endswith("_proxy") and not key.startswith(drop_prefixes)}
    env["PATH"] = os.pathsep.join([env.get("PATH", "/usr/bin:/bin"), "/usr/sbin", "/sbin"])
    return env


# -- sweeping strays ---------------------------------------------------------------------------

def process_table() -> dict[int, Stat]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := read_stat(int(entry))) is not None:
            table[int(entry)] = stat
    return table


def own_lineage(table: dict[int, Stat]) -> set[int]:
    """Our pid and our ancestors': their command lines may mention the root, never kill them."""
    lineage, pid = set(), os.getpid()
    while pid > 1 and pid not in lineage:
        lineage.add(pid)
        pid = table[pid].ppid if pid in table else 0
    return lineage


def kill_strays(marker: str, *, expected: bool = False) -> int:
    """SIGKILL our programs whose command line mentions `marker` (a directory), with their children.

    What an orderly shutdown leaves behind lands here: containerd-shims (and the container
    processes under them) of a dockerd that was killed, a containerd that outlived its dockerd.
    """
    table = process_table()
    spared = own_lineage(table)
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(stat.ppid, []).append(pid)

    victims: set[int] = set()
    for pid in table:
        if pid in spared or not is_sweepable(pid, marker):
            continue
        todo = [pid]
        while todo:
            current = todo.pop()
            if current not in victims and current not in spared:
                victims.add(current)
                todo.extend(children.get(current, []))
    for pid in victims:
        log.log(logging.INFO if expected else logging.WARNING,
                "killing leftover process %d: %s", pid, cmdline(pid)[:200])
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for proc in [Proc(pid, table[pid].start_time) for pid in victims]:
        proc.wait(10)
    return len(victims)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_sweepable(pid: int, marker: str) -> bool:
    try:
        program = os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)")
    except OSError:
        return False  # kernel thread, or already gone
    return program.startswith(SWEEPABLE_PROGRAMS) and marker + "/" in cmdline(pid)
