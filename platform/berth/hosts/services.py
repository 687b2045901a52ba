"""Inventory service functions: register hosts, change their admin state, record probes."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select

from berth import audit, db
from berth.clock import utcnow
from berth.engine import Endpoint, Engine, EngineError, EngineInfo, TlsMaterial
from berth.errors import Conflict, InvalidInput, NotFound
from berth.hosts.liveness import Liveness, after_probe
from berth.models import Cluster, Host, Pool
from berth.models.inventory import ADMIN_STATES

Connect = Callable[[Endpoint], Engine]


def default_connect(endpoint: Endpoint) -> Engine:
    from berth.engine.sdk import DockerEngine  # the SDK is only needed where engines are used

    return DockerEngine(endpoint)


def endpoint_of(host: Host, timeout_s: float = 10.0) -> Endpoint:
    tls = None
    if host.tls_cert:
        tls = TlsMaterial(ca=host.tls_ca or "", cert=host.tls_cert, key=host.tls_key or "")
    return Endpoint(url=host.endpoint, tls=tls, timeout_s=timeout_s)


def get_or_create_pool(cluster_name: str, pool_name: str) -> Pool:
    cluster = db.session.scalar(select(Cluster).where(Cluster.name == cluster_name))
    if cluster is None:
        cluster = Cluster(name=cluster_name)
        db.session.add(cluster)
    pool = next((p for p in cluster.pools if p.name == pool_name), None)
    if pool is None:
        pool = Pool(cluster=cluster, name=pool_name)
        db.session.add(pool)
    return pool


def validate_endpoint(url: str) -> None:
    if not (url.startswith("unix://") or url.startswith("tcp://")):
        raise InvalidInput(f"engine endpoint {url!r} must start with unix:// or tcp://")


def add_host(name: str, endpoint: str, *, cluster: str, pool: str, idc: str = "default",
             labels: dict[str, str] | None = None, tls: TlsMaterial | None = None,
             port_range: tuple[int, int] = (20000, 29999), disk_type: str | None = None,
             disk_gb: int | None = None, actor: str | None = None,
             connect: Connect = default_connect) -> Host:
    """Register a host after checking that its engine answers; nothing is saved if not."""
    validate_endpoint(endpoint)
    if db.session.scalar(select(Host).where(Host.name == name)) is not None:
        raise Conflict(f"host {name!r} already exists")
    start, end = port_range
    if not (1024 <= start <= end <= 65535):
        raise InvalidInput("port range must lie within 1024-65535 with start <= end")
    try:
        engine = connect(Endpoint(url=endpoint, tls=tls, timeout_s=5.0))
        try:
            info = engine.info()
        finally:
            engine.close()
    except EngineError as error:
        raise InvalidInput(f"the engine at {endpoint} did not answer: {error}") from error
    host = Host(
        name=name, endpoint=endpoint, pool=get_or_create_pool(cluster, pool), idc=idc,
        labels=dict(labels or {}), port_range_start=start, port_range_end=end,
        disk_type=disk_type, disk_gb=disk_gb,
        tls_ca=tls.ca if tls else None, tls_cert=tls.cert if tls else None,
        tls_key=tls.key if tls else None,
    )
    _apply_info(host, info)
    db.session.add(host)
    audit.record("host.add", f"added host {name} ({endpoint})", subject_type="host",
                 subject=name, actor=actor, cluster=cluster, pool=pool)
    return host


def set_admin_state(host: Host, state: str, *, actor: str | None = None) -> None:
    if state not in ADMIN_STATES:
        raise InvalidInput(f"admin state must be one of {', '.join(ADMIN_STATES)}")
    if host.admin_state != state:
        audit.record("host.admin_state", f"{host.name}: {host.admin_state} -> {state}",
                     subject_type="host", subject=host.name, actor=actor)
        host.admin_state = state


def get_host(host_id: int) -> Host:
    host = db.session.get(Host, host_id)
    if host is None:
        raise NotFound(f"no host with id {host_id}")
    return host


def _apply_info(host: Host, info: EngineInfo) -> None:
    host.cpus, host.memory = float(info.cpus), info.memory
    host.kernel, host.engine_version = info.kernel, info.engine_version


@dataclass(frozen=True)
class ProbeResult:
    host_id: int
    info: EngineInfo | None
    error: str | None = None


def probe(host_id: int, endpoint: Endpoint, connect: Connect) -> ProbeResult:
    try:
        engine = connect(endpoint)
        try:
            engine.ping()
            return ProbeResult(host_id, engine.info())
        finally:
            engine.close()
    except EngineError as error:
        return ProbeResult(host_id, None, str(error)[:500])


def probe_hosts(host_ids: list[int] | None, *, failures_for_down: int, timeout_s: float,
                connect: Connect = default_connect, max_parallel: int = 64) -> list[ProbeResult]:
    """Probe hosts concurrently and record the results; liveness changes become events."""
    query = select(Host)
    if host_ids is not None:
        query = query.where(Host.id.in_(host_ids))
    targets = [(h.id, endpoint_of(h, timeout_s)) for h in db.session.scalars(query)]
    # Hold no transaction while waiting on the network.
    db.session.rollback()
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(targets)))) as pool:
        results = list(pool.map(lambda t: probe(t[0], t[1], connect), targets))
    for result in results:
        record_probe(result, failures_for_down)
    return results


def record_probe(result: ProbeResult, failures_for_down: int) -> None:
    host = db.session.get(Host, result.host_id)
    if host is None:
        return  # removed while we probed
    before = Liveness(host.liveness, host.consecutive_failures)
    after = after_probe(before, result.info is not None, failures_for_down)
    host.liveness, host.consecutive_failures = after.state, after.consecutive_failures
    if result.info is not None:
        _apply_info(host, result.info)
        host.last_heartbeat_at = utcnow()
        host.last_error = None
    else:
        host.last_error = result.error
    if after.state != before.state:
        audit.record(f"host.{after.state}", f"host {host.name} is {after.state}",
                     subject_type="host", subject=host.name,
                     **({"error": result.error} if result.error else {}))
