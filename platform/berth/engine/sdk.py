"""The real engine client, over the docker SDK, for unix sockets and TCP with TLS."""
from __future__ import annotations

import calendar
import os
import re
import tempfile
import time
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.tls import TLSConfig
from docker.types import Healthcheck
from requests.exceptions import RequestException

from berth.engine import (
    ContainerSpec, ContainerState, CpuSample, EngineError, EngineInfo, Endpoint, NameInUse,
    TlsMaterial, cpu_percent,
)

_NS = 1_000_000_000
# Asked of the engine beyond a logs window on each side, the exact window then cut here by
# each line's nanosecond stamp. The engine's own cut would count a line on a bound twice (it
# keeps both bounds) and a float of Unix seconds is good to ~0.2 us only; above all, a log
# is not in stamp order (stdout and stderr are stamped, then written, by two goroutines:
# 0.1 ms apart on the idle test bed, tests/integration/test_log_signals.py), and dockerd
# stops at the first line past `until` and, from the first line past `since`, sends the
# rest. A second each side costs a second's lines more per call, and loses a line only if
# it was written a second after one stamped later.
LOGS_SLACK_S = 1.0
# Docker 20.10's API; newer engines still speak it. A fixed version saves the SDK's
# negotiation round trip on every new client (a probe makes one per host).
API_VERSION = "1.41"


class _TlsFiles:
    """The SDK wants file paths: write the PEMs to a private folder for the client's life."""

    def __init__(self, material: TlsMaterial):
        self.folder = Path(tempfile.mkdtemp(prefix="berth-tls-"))
        os.chmod(self.folder, 0o700)
        self.paths = {}
        for name in ("ca", "cert", "key"):
            path = self.folder / f"{name}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(getattr(material, name))
            self.paths[name] = str(path)

    def config(self) -> TLSConfig:
        return TLSConfig(client_cert=(self.paths["cert"], self.paths["key"]),
                         ca_cert=self.paths["ca"], verify=True)

    def remove(self) -> None:
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()


def _state(container) -> ContainerState:
    attrs = container.attrs
    state = attrs.get("State") or {}
    health = (state.get("Health") or {}).get("Status") if isinstance(state, dict) else None
    if isinstance(state, str):  # list results carry a short form
        status = state
    else:
        status = state.get("Status", container.status)
    labels = (attrs.get("Config") or {}).get("Labels") or attrs.get("Labels") or {}
    image = (attrs.get("Config") or {}).get("Image") or attrs.get("Image", "")
    return ContainerState(
        id=container.id, name=container.name, image=image, labels=dict(labels),
        status=status, health=health,
        exit_code=state.get("ExitCode") if isinstance(state, dict) else None,
    )


def _health_of(status_text: str) -> str | None:
    """The health in the list form's Status: "Up 2 s (healthy)", "(health: starting)"."""
    for marker, health in (("(healthy)", "healthy"), ("(unhealthy)", "unhealthy"),
                           ("(health: starting)", "starting")):
        if marker in status_text:
            return health
    return None


_EXITED = re.compile(r"^Exited \((-?\d+)\)")


def _listed(entry: dict) -> ContainerState:
    names = entry.get("Names") or [""]
    exited = _EXITED.match(entry.get("Status") or "")  # "Exited (3) 2 seconds ago"
    return ContainerState(
        id=entry["Id"], name=names[0].lstrip("/"), image=entry.get("Image", ""),
        labels=dict(entry.get("Labels") or {}), status=entry.get("State", ""),
        health=_health_of(entry.get("Status") or ""),
        exit_code=int(exited.group(1)) if exited else None)


def sample_of(cpu: dict) -> CpuSample | None:
    usage = (cpu.get("cpu_usage") or {}).get("total_usage")
    if usage is None or not cpu.get("system_cpu_usage"):
        return None  # not running (or the first sample of a fresh container)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
    return CpuSample(container_cpu_ns=usage, system_cpu_ns=cpu["system_cpu_usage"],
                     online_cpus=online)


def memory_in_use(memory: dict) -> int | None:
    """Memory in use the way the docker CLI shows it: usage less the inactive page cache
    (total_inactive_file on cgroup v1, inactive_file on v2); None when not running."""
    usage = memory.get("usage")
    if usage is None:
        return None
    counters = memory.get("stats") or {}
    if "total_inactive_file" in counters:  # cgroup v1
        if counters["total_inactive_file"] < usage:
            return usage - counters["total_inactive_file"]
    elif counters.get("inactive_file", usage) < usage:  # cgroup v2
        return usage - counters["inactive_file"]
    return usage


def to_ns(unix_s: float) -> int:
    """Unix seconds as integer nanoseconds, to the microsecond (what a datetime keeps)."""
    return round(unix_s * 1_000_000) * 1000


def timestamp_ns(text: str) -> int | None:
    """RFC 3339 with up to nanoseconds, as docker prefixes log lines
    ("2024-12-03T10:00:00.123456789Z"), as Unix nanoseconds; None if it is not one."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    date, fraction, zone = match.group(1), match.group(2) or "", match.group(3)
    try:
        seconds = calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * _NS + int(fraction.ljust(9, "0")[:9] or 0)


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)")


def lines_between(raw: bytes, since_ns: int | None, until_ns: int) -> list[str]:
    """The lines of a timestamped log (`docker logs -t`) stamped in (since_ns, until_ns],
    without their stamps. A line longer than docker's 16 KiB buffer comes as parts, each
    stamped, and only the last ends the line: it counts once, at its first part's stamp."""
    kept = []
    for record in raw.decode("utf-8", errors="replace").split("\n"):
        stamp, _, line = record.partition(" ")
        at = timestamp_ns(stamp)
        if at is None:  # the empty tail after the last newline (docker stamps every line)
            continue
        if (since_ns is None or at > since_ns) and at <= until_ns:
            kept.append(line.rstrip("\r"))
    return kept


class DockerEngine:
    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self._tls = _TlsFiles(endpoint.tls) if endpoint.tls else None
        url = endpoint.url
        if self._tls and url.startswith("tcp://"):
            url = "https://" + url.removeprefix("tcp://")
        try:
            self._client = docker.DockerClient(
                base_url=url, timeout=endpoint.timeout_s, version=API_VERSION,
                tls=self._tls.config() if self._tls else False,
            )
        except DockerException as error:
            self.close()
            raise EngineError(f"cannot use engine {endpoint.url}: {error}") from error
        # requests lets REQUESTS_CA_BUNDLE (and proxy variables) override the engine's own
        # CA per request; an engine is verified against its own CA only.
        self._client.api.trust_env = False

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (APIError, DockerException, RequestException, OSError) as error:
            explanation = getattr(error, "explanation", None) or str(error)
            raise EngineError(f"{what} on {self.endpoint.url} failed: {explanation}") from error

    def ping(self) -> bool:
        return bool(self._call("ping", self._client.ping))

    def info(self) -> EngineInfo:
        info = self._call("info", self._client.info)
        return EngineInfo(
            cpus=int(info["NCPU"]), memory=int(info["MemTotal"]),
            kernel=info.get("KernelVersion", ""), engine_version=info.get("ServerVersion", ""),
            os=info.get("OperatingSystem", ""),
        )

    def list_containers(self, labels=None, all=True) -> list[ContainerState]:
        """One engine call, whatever the count: the list form's Status text carries the
        health ("Up 3 minutes (healthy)"), so no container is inspected. (The SDK's
        containers.list inspects every container it lists.)"""
        filters = {"label": [f"{k}={v}" for k, v in (labels or {}).items()]}
        found = self._call("list containers", self._client.api.containers,
                           all=all, filters=filters)
        return [_listed(entry) for entry in found]

    def inspect(self, name_or_id: str) -> ContainerState | None:
        try:
            container = self._client.containers.get(name_or_id)
        except NotFound:
            return None
        except (APIError, DockerException, RequestException, OSError) as error:
            raise EngineError(f"inspect {name_or_id} on {self.endpoint.url} failed: {error}") from error
        return _state(container)

    def create(self, spec: ContainerSpec) -> ContainerState:
        kwargs = dict(
            image=spec.image, name=spec.name, command=spec.command, labels=spec.labels,
            environment=spec.environment, network_mode=spec.network_mode, detach=True,
            # Every container is hardened the same way (see ContainerSpec).
            security_opt=["no-new-privileges"], cap_drop=["ALL"], cap_add=list(spec.cap_add),
            pids_limit=spec.pids_limit, read_only=spec.read_only,
        )
        if spec.cpus:
            kwargs["nano_cpus"] = int(spec.cpus * _NS)
        if spec.memory:
            kwargs["mem_limit"] = spec.memory
        if spec.ports and spec.network_mode == "bridge":
            kwargs["ports"] = {f"{c}/tcp": h for c, h in spec.ports.items()}
        if spec.healthcheck:
            check = spec.healthcheck
            kwargs["healthcheck"] = Healthcheck(
                test=check["test"], interval=int(check.get("interval_s", 2) * _NS),
                timeout=int(check.get("timeout_s", 2) * _NS), retries=check.get("retries", 3),
                start_period=int(check.get("start_period_s", 0) * _NS),
            )
        try:
            container = self._client.containers.create(**kwargs)
        except ImageNotFound as error:
            raise EngineError(f"image {spec.image} is not on {self.endpoint.url}") from error
        except APIError as error:
            message = f"create {spec.name} on {self.endpoint.url} failed: {error.explanation or error}"
            raise (NameInUse if error.status_code == 409 else EngineError)(message) from error
        except (DockerException, RequestException, OSError) as error:
            raise EngineError(f"create {spec.name} on {self.endpoint.url} failed: "
                              f"{getattr(error, 'explanation', None) or error}") from error
        return _state(container)

    def start(self, name_or_id: str) -> None:
        self._call(f"start {name_or_id}", self._client.api.start, name_or_id)

    def stop(self, name_or_id: str, timeout_s: int = 10) -> None:
        self._call(f"stop {name_or_id}", self._client.api.stop, name_or_id, timeout=timeout_s)

    def remove(self, name_or_id: str, force: bool = True) -> None:
        try:
            self._client.api.remove_container(name_or_id, force=force)
        except NotFound:
            return  # already gone: removing twice is fine
        except (APIError, DockerException, RequestException, OSError) as error:
            raise EngineError(f"remove {name_or_id} on {self.endpoint.url} failed: {error}") from error

    def pull(self, image: str, username=None, password=None) -> None:
        auth = {"username": username, "password": password} if username else None
        repository, _, tag = image.rpartition(":")
        if "/" in tag or not repository:  # no tag given, or the colon was a port
            repository, tag = image, "latest"
        self._call(f"pull {image}", self._client.images.pull, repository, tag=tag,
                   auth_config=auth)

    def tag(self, image: str, target: str) -> None:
        repository, _, tag = target.rpartition(":")
        if "/" in tag or not repository:
            repository, tag = target, "latest"
        self._call(f"tag {image} as {target}", self._client.api.tag, image, repository, tag=tag)

    def cpu_sample(self, name_or_id: str) -> CpuSample | None:
        try:
            stats = self._client.api.stats(name_or_id, stream=False, one_shot=True)
        except NotFound:
            return None
        except (APIError, DockerException, RequestException, OSError) as error:
            raise EngineError(f"stats {name_or_id} on {self.endpoint.url} failed: {error}") from error
        return sample_of(stats.get("cpu_stats") or {})

    def cpu_percent(self, name_or_id: str) -> float | None:
        """CPU% over the engine's own sampling interval (100% = one core). A non-one-shot
        stats call carries the previous sample too, so no state is kept between calls;
        it takes about two seconds, so callers ask many containers at once."""
        try:
            stats = self._client.api.stats(name_or_id, stream=False)
        except NotFound:
            return None
        except (APIError, DockerException, RequestException, OSError) as error:
            raise EngineError(f"stats {name_or_id} on {self.endpoint.url} failed: {error}") from error
        samples = [sample_of(stats.get(key) or {}) for key in ("precpu_stats", "cpu_stats")]
        if None in samples:
            return None
        return cpu_percent(*samples)

    def logs_since(self, name_or_id: str, since: float | None, until: float) -> list[str] | None:
        """stdout and stderr lines stamped in (since, until] (Unix seconds; since None: from
        the start), cut by their own stamps (see LOGS_SLACK_S); None if there is no such
        container."""
        asked_since = since - LOGS_SLACK_S if since is not None and since > LOGS_SLACK_S else None
        try:
            raw = self._client.api.logs(name_or_id, stdout=True, stderr=True, timestamps=True,
                                        since=asked_since, until=until + LOGS_SLACK_S)
        except NotFound:
            return None
        except (APIError, DockerException, RequestException, OSError) as error:
            raise EngineError(f"logs {name_or_id} on {self.endpoint.url} failed: "
                              f"{getattr(error, 'explanation', None) or error}") from error
        return lines_between(raw, None if since is None else to_ns(since), to_ns(until))

    def memory_usage(self, name_or_id: str) -> int | None:
        try:
            stats = self._client.api.stats(name_or_id, stream=False, one_shot=True)
        except NotFound:
            return None
        except (APIError, DockerException, RequestException, OSError) as error:
            raise EngineError(f"stats {name_or_id} on {self.endpoint.url} failed: {error}") from error
        return memory_in_use(stats.get("memory_stats") or {})

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
        if self._tls is not None:
            self._tls.remove()
            self._tls = None
