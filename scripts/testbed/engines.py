"""Docker engines: one dockerd per engine under R/eN/, and just enough of the Engine API
(over http.client) for the bed's own chores."""
from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import http.client
import json
import signal
import ssl
import urllib.parse
from pathlib import Path
from typing import Iterable

from .common import LOCALHOST, TestBedError, log
from .processes import Proc, child_env, kill_strays, start_process, terminate, wait_until


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
    proc: Proc | None = None

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
                   proc=Proc.adopt(entry.get("pid"), entry.get("pid_start")))


def spawn_engine(engine: Engine, dockerd: str, extra_args: Iterable[str]) -> None:
    for path in (engine.dir, engine.data_root, engine.exec_root, engine.dir / "tmp"):
        path.mkdir(mode=0o711, parents=True, exist_ok=True)
    # Its own key file: without it every engine shares /etc/docker/key.json and so reports
    # the same engine ID in /info. (20.10 has no command-line flag for the key path.)
    engine.daemon_json.write_text(json.dumps({"deprecated-key-path": str(engine.dir / "key.json")}))
    engine.pidfile.unlink(missing_ok=True)
    # A busy machine makes dockerd give up on a slow containerd and restart it, after asking
    # it for a goroutine dump, which containerd writes to $TMPDIR: keep that in our root.
    env = child_env(drop_prefixes=("DOCKER_",)) | {"TMPDIR": str(engine.dir / "tmp")}
    start_process(engine, engine.argv(dockerd, extra_args), engine.log_path, env=env)


def wait_engine(engine: Engine, deadline: float) -> None:
    wait_until(f"engine {engine.name} (dockerd)", DockerAPI(engine, 2).ping, deadline,
               engine.proc, engine.log_path)


def stop_engines(engines: list[Engine], *, remove_containers: bool, timeout: float) -> None:
    running = [e for e in engines if e.proc is not None and e.proc.alive]
    if remove_containers and running:
        # Removing containers through the API first leaves no containerd-shim behind.
        with concurrent.futures.ThreadPoolExecutor(len(running)) as pool:
            list(pool.map(remove_containers_of, running))
    terminate([(f"engine {e.name} (dockerd)", e.proc, signal.SIGTERM) for e in running], timeout)
    for engine in engines:
        sweep_engine(engine)


def remove_containers_of(engine: Engine, label: str | None = None) -> int:
    """Remove an engine's containers (those with `label`, if given); 0 if it is not running."""
    try:
        removed = DockerAPI(engine, 30).remove_containers(label)
        if removed:
            log.info("removed %d container(s) from %s", removed, engine.name)
        return removed
    except ConnectionRefusedError:
        return 0  # still booting (or stuck): it has no API, so it has run no containers
    except (OSError, http.client.HTTPException, TestBedError) as exc:
        log.warning("could not remove the containers of %s: %s", engine.name, exc)
        return 0


def sweep_engine(engine: Engine, expected: bool = False) -> None:
    # A dockerd that had to be killed leaves its containerd and shims running.
    kill_strays(str(engine.exec_root), expected=expected)
    # A restarted dockerd trusts this pid file if that pid exists, even as a zombie or as
    # some other process that got the number, and then waits for a containerd that never
    # answers ("timeout waiting for containerd to start").
    (engine.exec_root / "containerd" / "containerd.pid").unlink(missing_ok=True)


def split_image_ref(ref: str) -> tuple[str, str]:
    """'127.0.0.1:5000/library/busybox:1' -> ('127.0.0.1:5000/library/busybox', '1')."""
    repository, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repository, tag


class DockerAPI:
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

    def remove_containers(self, label: str | None = None) -> int:
        """Remove every container (with `label`, "key" or "key=value", if given)."""
        query = "all=1"
        if label:
            query += "&" + urllib.parse.urlencode({"filters": json.dumps({"label": [label]})})
        containers = json.loads(self.call("GET", f"/containers/json?{query}"))
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
