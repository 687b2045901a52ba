"""PostgreSQL (R/pg/, run as the `postgres` user when we are root, with a `berth_test` database)
and Redis (R/redis/, no persistence): one process, one port, one directory each."""
from __future__ import annotations

import dataclasses
import os
import pwd
import re
import socket
import subprocess
import time
from pathlib import Path

from .common import INSTALL_HINT, LOCALHOST, TestBedError, log_tail
from .processes import Proc, child_env, start_process, wait_until
from .programs import postgres_bindir

POSTGRES_DB = "berth_test"


@dataclasses.dataclass
class Service:
    """PostgreSQL or Redis: one process, one port, one directory."""

    name: str
    dir: Path
    port: int
    proc: Proc | None = None

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
                   proc=Proc.adopt(entry.get("pid"), entry.get("pid_start")))


# -- PostgreSQL --------------------------------------------------------------------------------

def postgres_url(pg: Service, database: str = POSTGRES_DB) -> str:
    return f"postgresql+psycopg://postgres@{LOCALHOST}:{pg.port}/{database}"


def postgres_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as the Debian `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise TestBedError("no `postgres` system user (created by the Debian package "
                           f"postgresql); {INSTALL_HINT}") from None


def _server_env(pg: Service) -> dict[str, str]:
    return child_env(drop_prefixes=("PG",)) | {"HOME": str(pg.dir), "LC_ALL": "C"}


def _client_args(pg: Service) -> list[str]:
    return ["-h", LOCALHOST, "-p", str(pg.port), "-U", "postgres"]


def spawn_initdb(pg: Service, programs: dict[str, str]) -> Service:
    """Start initdb (the slowest step of the bed) and return it as a component to wait for."""
    user = postgres_user()
    (pg.dir / "sock").mkdir(parents=True)
    if user is not None:
        for path in (pg.dir, pg.dir / "sock"):
            os.chown(path, user.pw_uid, user.pw_gid)
    argv = [programs["initdb"], "-D", str(pg.dir / "data"), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--locale=C",
            "--no-sync"]  # test data needn't survive a power cut; saves seconds
    initdb = Service("initdb", pg.dir, port=0)
    start_process(initdb, argv, initdb.log_path, env=_server_env(pg), cwd=pg.dir, user=user)
    return initdb


def finish_initdb(initdb: Service, deadline: float, timeout: float) -> None:
    if not initdb.proc.wait(deadline - time.monotonic()):
        raise TestBedError(f"initdb did not finish within {timeout:.0f}s" + log_tail(initdb.log_path))
    if initdb.proc.popen.returncode != 0:
        raise TestBedError(f"initdb failed ({initdb.proc.describe_exit()})"
                           + log_tail(initdb.log_path))


def spawn_postgres(pg: Service, programs: dict[str, str]) -> None:
    argv = [programs["postgres"], "-D", str(pg.dir / "data"),
            "-h", LOCALHOST, "-p", str(pg.port), "-k", str(pg.dir / "sock"),
            # Durability is pointless for throwaway test data and costs time.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    start_process(pg, argv, pg.log_path, env=_server_env(pg), cwd=pg.dir, user=postgres_user())


def wait_postgres(pg: Service, programs: dict[str, str], deadline: float, timeout: float) -> None:
    env = child_env(drop_prefixes=("PG",))

    def accepting() -> bool:
        return subprocess.run([programs["pg_isready"], *_client_args(pg), "-d", "postgres", "-t", "2"],
                              env=env, capture_output=True).returncode == 0

    wait_until("postgres", accepting, deadline, pg.proc, pg.log_path)
    create_database(pg, POSTGRES_DB, timeout)


def create_database(pg: Service, name: str, timeout: float) -> str:
    """CREATE DATABASE `name` (an identifier: letters, digits, _) and return its URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a plain database name (lower-case letters, digits, _)")
    createdb = str(postgres_bindir() / "createdb")
    created = subprocess.run([createdb, *_client_args(pg), name], env=child_env(drop_prefixes=("PG",)),
                             capture_output=True, text=True, timeout=timeout)
    if created.returncode != 0:
        raise TestBedError(f"createdb {name} failed: {created.stderr.strip()}" + log_tail(pg.log_path))
    return postgres_url(pg, name)


# -- Redis -------------------------------------------------------------------------------------

def spawn_redis(redis: Service, program: str) -> None:
    redis.dir.mkdir()
    argv = [program, "--port", str(redis.port), "--bind", LOCALHOST,
            "--save", "", "--appendonly", "no", "--dir", str(redis.dir),
            "--daemonize", "no", "--logfile", "",
            # Keep the command line (with --dir under our root) so that a sweep can find it.
            "--set-proc-title", "no"]
    start_process(redis, argv, redis.log_path, env=child_env(), cwd=redis.dir)


def redis_pong(port: int, timeout: float = 2.0) -> bool:
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def wait_redis(redis: Service, deadline: float) -> None:
    wait_until("redis", lambda: redis_pong(redis.port), deadline, redis.proc, redis.log_path)
