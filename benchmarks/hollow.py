"""Hollow engines: a small fake of the Docker Engine HTTP API (v1.41) that Berth's docker SDK
client and its stats client call, for benchmarks at fleet size only (like kubemark's hollow
nodes). Correctness is proven on real dockerd; this stands in for hundreds of hosts.

One asyncio loop serves every engine, each on its own 127.0.0.1 port; state is in memory;
each call answers after a delay taken from real dockerd (see LATENCY below). Run it inside
a benchmark (`HollowFleet(...).start()` runs the loop on a thread) or, so that its CPU is
not counted as Berth's, as its own process:

    .venv/bin/python benchmarks/hollow.py --engines 500 [--max-seconds 3600]

which prints one JSON line {"urls": [...], "control": "http://127.0.0.1:PORT"} and serves
until stdin closes, SIGTERM/SIGINT, or --max-seconds. `GET /hollow/calls` on the control port
(or on any engine) returns the calls answered so far, per route, fleet-wide;
`POST /hollow/reset` zeroes them; `POST /hollow/seed` makes running containers at once
(see HollowFleet.seed).

Routes (the ones docker SDK 7.2 and berth.engine use): GET /_ping, /version, /info,
/containers/json, /containers/{id}/json, /containers/{id}/stats, /images/{name}/json;
POST /containers/create, /containers/{id}/start, /containers/{id}/stop, /images/create;
DELETE /containers/{id}. Paths may carry a /v1.xx prefix.
"""
from __future__ import annotations

import os
import sys

# Run as a script, Python puts this folder first on sys.path, and benchmarks/token.py would
# shadow the standard module `token` (which asyncio imports). Drop it before anything else.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from urllib.parse import parse_qs, unquote, urlsplit  # noqa: E402

LOCALHOST = "127.0.0.1"
_NS = 1_000_000_000


@dataclass(frozen=True)
class Latency:
    """Seconds each call takes before it answers. Figures of real dockerd on this 2-core test
    bed (shared/DESIGN.md, "Facts checked"): `docker run -d` 0.24 s (create + start), stats
    one-shot ~1 s, stats stream=false ~2 s (two 1 s sampling cycles); list and inspect a few
    ms. Removal of a running container (force) and a pull of a present image are a few tens
    of ms on the same engines. `scale` multiplies all of them (0 for functional tests)."""

    ping: float = 0.001
    version: float = 0.001
    info: float = 0.005
    list_base: float = 0.003
    list_per_container: float = 0.00005
    inspect: float = 0.002
    create: float = 0.040
    start: float = 0.200
    stop: float = 0.100
    remove: float = 0.060
    pull_present: float = 0.020
    pull_absent: float = 0.500
    image_inspect: float = 0.002
    stats_one_shot: float = 1.0
    stats: float = 2.0
    scale: float = 1.0

    def of(self, name: str) -> float:
        return getattr(self, name) * self.scale


@dataclass
class Container:
    id: str
    name: str
    image: str
    labels: dict
    created: float
    nano_cpus: int = 0
    healthcheck: dict | None = None
    status: str = "created"
    started: float | None = None
    cpu_base_ns: int = 0  # CPU used before the current run
    exit_code: int = 0


@dataclass
class HollowEngine:
    number: int
    cpus: int
    memory: int
    images: set = field(default_factory=set)
    containers: dict = field(default_factory=dict)  # id -> Container
    names: dict = field(default_factory=dict)  # name -> id
    port: int = 0


def _now_iso(at: float | None = None) -> str:
    return datetime.fromtimestamp(at or time.time(), timezone.utc).isoformat().replace("+00:00", "Z")


def _bool(params: dict, key: str) -> bool:
    """Docker's httputils.BoolValue: anything but "", 0, no, false, none is true."""
    value = (params.get(key) or [""])[0].strip().lower()
    return value not in ("", "0", "no", "false", "none")


class HollowFleet:
    """`engines` hollow engines on one asyncio loop (see the module docstring)."""

    def __init__(self, engines: int, *, latency: Latency = Latency(), cpus: int = 4,
                 memory: int = 16 * 2**30, images: set[str] | None = None,
                 cpu_busy: float = 0.05, healthy_after_s: float = 1.0):
        self.latency = latency
        self.cpu_busy = cpu_busy  # cores a running container uses (capped at its limit)
        self.healthy_after_s = healthy_after_s
        self.engines = [HollowEngine(n, cpus, memory, set(images or ())) for n in range(engines)]
        self.calls: Counter = Counter()
        self.connections = 0
        self._ids = itertools.count(1)
        self._boot = time.monotonic() - 3600.0  # the host's "uptime", for system CPU
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._writers: set = set()
        self.control_port = 0

    # -- life ------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [f"tcp://{LOCALHOST}:{e.port}" for e in self.engines]

    async def open(self) -> None:
        """Listen on every engine's port (and a control port) on the running loop."""
        for engine in self.engines:
            server = await asyncio.start_server(
                lambda r, w, e=engine: self._serve(e, r, w), LOCALHOST, 0, backlog=512)
            engine.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
        control = await asyncio.start_server(
            lambda r, w: self._serve(None, r, w), LOCALHOST, 0, backlog=64)
        self.control_port = control.sockets[0].getsockname()[1]
        self._servers.append(control)

    async def aclose(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    def start(self) -> "HollowFleet":
        """Serve on a daemon thread of this process; returns once every port listens."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.open())
            except BaseException as error:  # noqa: BLE001 - reported to start()
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.aclose())
            loop.close()

        self._thread = threading.Thread(target=run, name="hollow-engines", daemon=True)
        self._thread.start()
        ready.wait(60)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> "HollowFleet":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def call_counts(self) -> dict[str, int]:
        return dict(self.calls)

    def container_counts(self) -> dict[str, int]:
        counts: Counter = Counter()
        for engine in self.engines:
            counts.update(c.status for c in engine.containers.values())
        return dict(counts)

    def seed(self, containers: list) -> list[str]:
        """Running containers made at once, not counted as calls: [engine index, name,
        image, labels, nano_cpus] each; returns their ids. For benchmarks that need a full
        fleet without converging one (e.g. only the CPU sample round)."""
        ids = []
        now = time.monotonic()
        for index, name, image, labels, nano_cpus in containers:
            engine = self.engines[index]
            container_id = hashlib.sha256(f"{engine.number}-{next(self._ids)}".encode()).hexdigest()
            engine.containers[container_id] = Container(
                container_id, name, image, dict(labels), time.time(), nano_cpus=int(nano_cpus),
                status="running", started=now)
            engine.names[name] = container_id
            engine.images.add(image)
            ids.append(container_id)
        return ids

    def reset_counts(self) -> None:
        self.calls.clear()

    # -- HTTP ------------------------------------------------------------------------------

    async def _serve(self, engine: HollowEngine | None, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, target, _version = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    raw = await reader.readline()
                    if raw in (b"\r\n", b"\n", b""):
                        break
                    key, _, value = raw.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = b""
                if headers.get("content-length"):
                    body = await reader.readexactly(int(headers["content-length"]))
                elif headers.get("transfer-encoding", "").lower() == "chunked":
                    body = await self._read_chunked(reader)
                keep = await self._respond(engine, method, target, body, writer)
                await writer.drain()
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            # Shutting down with the client's keep-alive connections open. Python 3.11's
            # streams callback would log a cancelled handler as an error: end quietly.
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readline()

    @staticmethod
    def _send(writer, status: int, payload=None, content_type="application/json") -> None:
        if payload is None:
            data = b""
        elif isinstance(payload, bytes):
            data = payload
        else:
            data = json.dumps(payload).encode()
        reason = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
                  400: "Bad Request", 404: "Not Found", 409: "Conflict",
                  500: "Internal Server Error"}.get(status, "OK")
        head = (f"HTTP/1.1 {status} {reason}\r\nApi-Version: 1.41\r\nServer: hollow\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n")
        writer.write(head.encode("latin-1") + data)

    async def _respond(self, engine, method: str, target: str, body: bytes, writer) -> bool:
        parts = urlsplit(target)
        path = unquote(parts.path)
        if path.startswith("/v1."):
            path = "/" + path.split("/", 2)[2]
        params = parse_qs(parts.query)
        if path.startswith("/hollow/"):
            if method == "POST" and path == "/hollow/reset":
                self.reset_counts()
                self._send(writer, 204)
            elif method == "POST" and path == "/hollow/seed":
                self._send(writer, 200, {"ids": self.seed(json.loads(body)["containers"])})
            else:
                self._send(writer, 200, {"calls": self.call_counts(),
                                         "connections": self.connections,
                                         "containers": self.container_counts()})
            return True
        if engine is None:
            self._send(writer, 404, {"message": "the control port only serves /hollow/"})
            return True
        route, handler = self._route(method, path)
        self.calls[route] += 1
        if handler is None:
            self._send(writer, 404, {"message": f"page not found: {method} {path}"})
            return True
        return await handler(engine, path, params, body, writer) is not False

    def _route(self, method: str, path: str):
        segments = path.strip("/").split("/")
        if method == "GET":
            if path == "/_ping":
                return "ping", self._ping
            if path == "/version":
                return "version", self._version
            if path == "/info":
                return "info", self._info
            if path == "/containers/json":
                return "list", self._list
            if segments[0] == "containers" and len(segments) == 3 and segments[2] == "json":
                return "inspect", self._inspect
            if segments[0] == "containers" and len(segments) == 3 and segments[2] == "stats":
                return "stats", self._stats
            if segments[0] == "images" and segments[-1] == "json" and len(segments) >= 3:
                return "image_inspect", self._image_inspect
        if method == "POST":
            if path == "/containers/create":
                return "create", self._create
            if path == "/images/create":
                return "pull", self._pull
            if segments[0] == "containers" and len(segments) == 3 and segments[2] == "start":
                return "start", self._start
            if segments[0] == "containers" and len(segments) == 3 and segments[2] == "stop":
                return "stop", self._stop
        if method == "DELETE" and segments[0] == "containers" and len(segments) == 2:
            return "remove", self._remove
        return f"unknown {method} {path}", None

    # -- the engine ------------------------------------------------------------------------

    async def _wait(self, name: str, extra: float = 0.0) -> None:
        delay = self.latency.of(name) + extra * self.latency.scale
        if delay > 0:
            await asyncio.sleep(delay)

    @staticmethod
    def _find(engine: HollowEngine, ref: str) -> Container | None:
        if ref in engine.containers:
            return engine.containers[ref]
        if ref.lstrip("/") in engine.names:
            return engine.containers[engine.names[ref.lstrip("/")]]
        if len(ref) >= 6:
            for container_id, container in engine.containers.items():
                if container_id.startswith(ref):
                    return container
        return None

    def _health(self, container: Container) -> str | None:
        if not container.healthcheck or (container.healthcheck.get("Test") or ["NONE"])[0] == "NONE":
            return None
        if container.status != "running":
            return "unhealthy" if container.started else "starting"
        if time.monotonic() - container.started >= self.healthy_after_s:
            return "healthy"
        return "starting"

    def _cpu_ns(self, container: Container, at: float) -> int:
        used = container.cpu_base_ns
        if container.status == "running" and container.started is not None:
            busy = self.cpu_busy
            if container.nano_cpus:
                busy = min(busy, container.nano_cpus / _NS)
            used += int((at - container.started) * busy * _NS)
        return used

    def _system_ns(self, engine: HollowEngine, at: float) -> int:
        return int((at - self._boot) * engine.cpus * _NS)

    async def _ping(self, engine, path, params, body, writer):
        await self._wait("ping")
        self._send(writer, 200, b"OK", "text/plain; charset=utf-8")

    async def _version(self, engine, path, params, body, writer):
        await self._wait("version")
        self._send(writer, 200, {"Version": "20.10.24+hollow", "ApiVersion": "1.41",
                                 "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64",
                                 "KernelVersion": "hollow"})

    async def _info(self, engine, path, params, body, writer):
        await self._wait("info")
        running = sum(c.status == "running" for c in engine.containers.values())
        self._send(writer, 200, {
            "ID": f"hollow-{engine.number}", "Name": f"hollow-{engine.number}",
            "NCPU": engine.cpus, "MemTotal": engine.memory, "KernelVersion": "hollow",
            "ServerVersion": "20.10.24+hollow", "OperatingSystem": "Hollow Linux",
            "Containers": len(engine.containers), "ContainersRunning": running,
            "Images": len(engine.images)})

    def _short(self, container: Container) -> dict:
        return {"Id": container.id, "Names": ["/" + container.name], "Image": container.image,
                "ImageID": "sha256:" + hashlib.sha256(container.image.encode()).hexdigest(),
                "Command": "", "Created": int(container.created), "Labels": container.labels,
                "State": container.status, "Status": self._status_text(container), "Ports": [],
                "HostConfig": {"NetworkMode": "none"}, "Mounts": []}

    def _status_text(self, container: Container) -> str:
        """The list form's Status, as dockerd words it: "Up 3 seconds (healthy)"."""
        if container.status == "created":
            return "Created"
        if container.status != "running":
            return f"Exited ({container.exit_code}) 1 second ago"
        text = f"Up {max(1, int(time.monotonic() - container.started))} seconds"
        health = self._health(container)
        if health == "starting":
            return text + " (health: starting)"
        return text + (f" ({health})" if health else "")

    def _long(self, container: Container) -> dict:
        state = {"Status": container.status, "Running": container.status == "running",
                 "Paused": False, "Restarting": False, "OOMKilled": False, "Dead": False,
                 "Pid": 4242 if container.status == "running" else 0,
                 "ExitCode": container.exit_code, "Error": "",
                 "StartedAt": _now_iso(container.created),
                 "FinishedAt": "0001-01-01T00:00:00Z"}
        health = self._health(container)
        if health is not None:
            state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
        return {"Id": container.id, "Name": "/" + container.name, "Created": _now_iso(container.created),
                "State": state, "Image": "sha256:" + hashlib.sha256(container.image.encode()).hexdigest(),
                "RestartCount": 0, "Driver": "overlay2", "Platform": "linux",
                "Config": {"Image": container.image, "Labels": container.labels,
                           "Hostname": container.id[:12], "Env": [], "Cmd": None,
                           "Healthcheck": container.healthcheck},
                "HostConfig": {"NanoCpus": container.nano_cpus, "NetworkMode": "none"},
                "NetworkSettings": {"Networks": {}, "Ports": {}}, "Mounts": []}

    async def _list(self, engine, path, params, body, writer):
        await self._wait("list_base", self.latency.list_per_container * len(engine.containers))
        filters = json.loads((params.get("filters") or ["{}"])[0] or "{}")
        wanted = []
        for item in filters.get("label", []) if isinstance(filters.get("label"), list) \
                else list(filters.get("label", {})):
            key, has_value, value = item.partition("=")
            wanted.append((key, value if has_value else None))
        show_all = _bool(params, "all")
        found = []
        for container in engine.containers.values():
            if not show_all and container.status != "running":
                continue
            if all(k in container.labels and (v is None or container.labels[k] == v)
                   for k, v in wanted):
                found.append(self._short(container))
        self._send(writer, 200, found)

    async def _inspect(self, engine, path, params, body, writer):
        await self._wait("inspect")
        container = self._find(engine, path.split("/")[2])
        if container is None:
            self._send(writer, 404, {"message": f"No such container: {path.split('/')[2]}"})
        else:
            self._send(writer, 200, self._long(container))

    async def _create(self, engine, path, params, body, writer):
        await self._wait("create")
        spec = json.loads(body or b"{}")
        name = (params.get("name") or [""])[0]
        image = spec.get("Image", "")
        if name and name in engine.names:
            self._send(writer, 409, {"message": f'Conflict. The container name "/{name}" is '
                                     f'already in use by container "{engine.names[name]}".'})
            return
        if image not in engine.images:
            self._send(writer, 404, {"message": f"No such image: {image}"})
            return
        container_id = hashlib.sha256(f"{engine.number}-{next(self._ids)}".encode()).hexdigest()
        name = name or f"hollow_{container_id[:8]}"
        health = spec.get("Healthcheck") or None
        container = Container(container_id, name, image, dict(spec.get("Labels") or {}),
                              time.time(), nano_cpus=int((spec.get("HostConfig") or {})
                                                         .get("NanoCpus") or 0),
                              healthcheck=health)
        engine.containers[container_id] = container
        engine.names[name] = container_id
        self._send(writer, 201, {"Id": container_id, "Warnings": []})

    async def _start(self, engine, path, params, body, writer):
        await self._wait("start")
        container = self._find(engine, path.split("/")[2])
        if container is None:
            self._send(writer, 404, {"message": f"No such container: {path.split('/')[2]}"})
        elif container.status == "running":
            self._send(writer, 304)
        else:
            container.status, container.started = "running", time.monotonic()
            self._send(writer, 204)

    def _halt(self, container: Container) -> None:
        if container.status == "running":
            now = time.monotonic()
            container.cpu_base_ns = self._cpu_ns(container, now)
            container.status, container.exit_code = "exited", 137

    async def _stop(self, engine, path, params, body, writer):
        await self._wait("stop")
        container = self._find(engine, path.split("/")[2])
        if container is None:
            self._send(writer, 404, {"message": f"No such container: {path.split('/')[2]}"})
        elif container.status != "running":
            self._send(writer, 304)
        else:
            self._halt(container)
            self._send(writer, 204)

    async def _remove(self, engine, path, params, body, writer):
        await self._wait("remove")
        container = self._find(engine, path.split("/")[2])
        if container is None:
            self._send(writer, 404, {"message": f"No such container: {path.split('/')[2]}"})
        elif container.status == "running" and not _bool(params, "force"):
            self._send(writer, 409, {"message": "You cannot remove a running container. "
                                     "Stop the container before attempting removal or force remove"})
        else:
            del engine.containers[container.id]
            engine.names.pop(container.name, None)
            self._send(writer, 204)

    async def _pull(self, engine, path, params, body, writer):
        image = (params.get("fromImage") or [""])[0]
        tag = (params.get("tag") or [""])[0]
        reference = f"{image}:{tag}" if tag and not tag.startswith("sha256:") else image
        present = reference in engine.images
        # A pull answers at once with a stream of progress lines (chunked), as dockerd does.
        writer.write(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")

        def chunk(item: dict) -> None:
            data = json.dumps(item).encode() + b"\r\n"
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        chunk({"status": f"Pulling from {image}", "id": tag or "latest"})
        await writer.drain()
        await self._wait("pull_present" if present else "pull_absent")
        if not present:
            chunk({"status": "Pull complete", "id": "0123456789ab"})
        engine.images.add(reference)
        chunk({"status": "Digest: sha256:" + hashlib.sha256(reference.encode()).hexdigest()})
        chunk({"status": ("Status: Image is up to date for " if present
                          else "Status: Downloaded newer image for ") + reference})
        writer.write(b"0\r\n\r\n")

    async def _image_inspect(self, engine, path, params, body, writer):
        await self._wait("image_inspect")
        reference = path[len("/images/"):-len("/json")]
        if reference not in engine.images:
            self._send(writer, 404, {"message": f"No such image: {reference}"})
            return
        self._send(writer, 200, {"Id": "sha256:" + hashlib.sha256(reference.encode()).hexdigest(),
                                 "RepoTags": [reference], "RepoDigests": [], "Size": 1_200_000,
                                 "Os": "linux", "Architecture": "amd64"})

    def _cpu_block(self, engine: HollowEngine, container: Container, at: float | None) -> dict:
        if at is None:  # what dockerd sends as precpu_stats of a one-shot reading
            return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                  "usage_in_usermode": 0}, "throttling_data": {
                "periods": 0, "throttled_periods": 0, "throttled_time": 0}}
        used = self._cpu_ns(container, at)
        return {"cpu_usage": {"total_usage": used, "usage_in_kernelmode": used // 5,
                              "usage_in_usermode": used - used // 5},
                "system_cpu_usage": self._system_ns(engine, at), "online_cpus": engine.cpus,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}

    async def _stats(self, engine, path, params, body, writer):
        ref = path.split("/")[2]
        container = self._find(engine, ref)
        if container is None:
            await self._wait("inspect")
            self._send(writer, 404, {"message": f"No such container: {ref}"})
            return
        streaming = "stream" not in params or _bool(params, "stream")
        if streaming:
            # Berth never streams stats; say so rather than hold a connection open forever.
            self._send(writer, 400, {"message": "hollow engines answer stream=0 only"})
            return
        one_shot = _bool(params, "one-shot")
        if container.status != "running":
            self._send(writer, 200, {"read": "0001-01-01T00:00:00Z", "id": container.id,
                                     "name": "/" + container.name, "cpu_stats": self._cpu_block(
                                         engine, container, None), "precpu_stats": self._cpu_block(
                                         engine, container, None), "memory_stats": {}})
            return
        began = time.monotonic()
        await self._wait("stats_one_shot" if one_shot else "stats")
        now = time.monotonic()
        previous = None if one_shot else max(began, now - 1.0)
        self._send(writer, 200, {
            "read": _now_iso(), "preread": _now_iso() if previous else "0001-01-01T00:00:00Z",
            "id": container.id, "name": "/" + container.name,
            "pids_stats": {"current": 1, "limit": 4096},
            "blkio_stats": {"io_service_bytes_recursive": [], "io_serviced_recursive": None},
            "num_procs": 0, "storage_stats": {},
            "cpu_stats": self._cpu_block(engine, container, now),
            "precpu_stats": self._cpu_block(engine, container, previous),
            "memory_stats": {"usage": 4_194_304, "limit": engine.memory, "stats": {
                "anon": 2_097_152, "file": 1_048_576, "kernel_stack": 16_384, "inactive_file": 524_288,
                "active_file": 524_288, "pgfault": 1200, "pgmajfault": 0}},
            "networks": {}})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", type=int, default=500)
    parser.add_argument("--cpus", type=int, default=4, help="NCPU every engine reports")
    parser.add_argument("--memory-gib", type=int, default=16)
    parser.add_argument("--image", action="append", default=[],
                        help="an image every engine already has (repeatable)")
    parser.add_argument("--cpu-busy", type=float, default=0.05,
                        help="cores each running container uses (capped at its limit)")
    parser.add_argument("--latency-scale", type=float, default=1.0,
                        help="multiplies every call's delay (0: answer at once)")
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="hard bound on how long this process serves")
    args = parser.parse_args()
    fleet = HollowFleet(args.engines, latency=Latency(scale=args.latency_scale), cpus=args.cpus,
                        memory=args.memory_gib * 2**30, images=set(args.image),
                        cpu_busy=args.cpu_busy)

    async def serve() -> None:
        await fleet.open()
        print(json.dumps({"urls": fleet.urls, "control": f"http://{LOCALHOST}:{fleet.control_port}",
                          "pid": os.getpid()}), flush=True)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: done.done() or done.set_result(None))

        def watch_stdin() -> None:  # stdin closing means the benchmark that started us is gone
            while sys.stdin.buffer.read1(65536):
                pass
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()
        try:
            await asyncio.wait_for(done, args.max_seconds)
        except asyncio.TimeoutError:
            print("hollow: --max-seconds reached, stopping", file=sys.stderr)
        await fleet.aclose()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
