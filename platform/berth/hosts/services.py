"""Inventory service functions: register hosts, change their admin state, record probes."""
from __future__ import annotations

import re
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
    same_engine = db.session.scalar(select(Host).where(Host.endpoint == endpoint))
    if same_engine is not None:
        # Two records for one engine would show every container twice to the reconciler.
        raise Conflict(f"engine {endpoint} is already registered as host {same_engine.name!r}")
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
    # The engine has just answered: that is a probe, so the host is up now. Waiting for beat's
    # next probe (up to BERTH_PROBE_INTERVAL_S) held the first deploy on a new host for nothing.
    host.liveness, host.consecutive_failures, host.last_heartbeat_at = "up", 0, utcnow()
    db.session.add(host)
    audit.record("host.add", f"added host {name} ({endpoint})", subject_type="host",
                 subject=name, actor=actor, cluster=cluster, pool=pool)
    return host


LOCAL_ENGINE = "unix:///var/run/docker.sock"


def adopt_local_engine(endpoint: str = LOCAL_ENGINE, *, connect: Connect = default_connect) -> str:
    """A newcomer's first host: the engine on this machine, registered as `local` when the
    inventory is empty and it answers. Says what it did, or why not; safe to run each start."""
    if db.session.scalar(select(Host.id).limit(1)) is not None:
        return "hosts are registered already: no local engine added"
    try:
        host = add_host("local", endpoint, cluster="local", pool="default", actor="berth",
                        connect=connect)
    except InvalidInput as error:
        return f"no local engine added: {error.message}"
    return (f"added this machine's Docker engine ({endpoint}) as host local: "
            f"{host.cpus:g} CPUs, {host.memory // 2**20} MiB")


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
    hosts = list(db.session.scalars(query))
    # Hosts that failed last time are the likely timeouts: start them first, so their waits
    # overlap the probes of the hosts that answer instead of trailing the round (a black hole
    # dispatched late used to end the round a whole timeout after every other probe).
    hosts.sort(key=lambda h: (h.consecutive_failures == 0, h.id))
    targets = [(h.id, endpoint_of(h, timeout_s)) for h in hosts]
    # Hold no transaction while waiting on the network.
    db.session.rollback()
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(targets)))) as pool:
        results = list(pool.map(lambda t: probe(t[0], t[1], connect), targets))
    # Reload the probed hosts in a few SELECTs, not one per result: record_probe's session.get
    # then finds each one loaded, nothing autoflushes host by host, and the write transaction
    # (on SQLite, the database's write lock) starts only at the commit's single flush.
    ids = [result.host_id for result in results]
    for start in range(0, len(ids), 500):
        db.session.scalars(select(Host).where(Host.id.in_(ids[start:start + 500]))).all()
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


# Checks for what people type in, and edits after registration.

# The grammar the placement constraints (`disk==ssd`) can match, so every label is usable.
LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9_./:-]{1,255}$")
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----[A-Za-z0-9+/=\s]+?-----END \1-----")


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise InvalidInput(f"label key {key!r} must be letters, digits and _ . / - "
                               "(starting with a letter or digit, at most 128)")
        if not isinstance(value, str) or not LABEL_VALUE.match(value):
            raise InvalidInput(f"label {key}: value {value!r} must be 1-255 letters, digits "
                               "and _ . / : -")
    return dict(labels)


def _pem_kinds(text: str) -> list[str]:
    return [match.group(1) for match in PEM_BLOCK.finditer(text)]


def check_tls(ca: str | None, cert: str | None, key: str | None) -> TlsMaterial | None:
    """All three PEM texts or none. Messages name the part that is wrong, never its content:
    the key is a secret and must not come back in an error page or a log line."""
    parts = {"CA certificate": (ca or "").strip(), "client certificate": (cert or "").strip(),
             "client key": (key or "").strip()}
    given = [name for name, text in parts.items() if text]
    if not given:
        return None
    if len(given) != 3:
        missing = ", ".join(name for name in parts if name not in given)
        raise InvalidInput(f"TLS needs all three PEM texts (CA certificate, client certificate, "
                           f"client key) or none; missing: {missing}")
    ca, cert, key = parts.values()
    for name, text in (("CA certificate", ca), ("client certificate", cert)):
        if set(_pem_kinds(text)) != {"CERTIFICATE"}:
            raise InvalidInput(f"the {name} must be PEM: -----BEGIN CERTIFICATE----- ... "
                               "-----END CERTIFICATE-----")
    kinds = _pem_kinds(key)
    if len(kinds) != 1 or not kinds[0].endswith("PRIVATE KEY") or "ENCRYPTED" in kinds[0]:
        raise InvalidInput("the client key must be one unencrypted PEM private key block "
                           "(-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY)")
    _parse_tls(ca, cert, key)
    return TlsMaterial(ca=ca + "\n", cert=cert + "\n", key=key + "\n")


def _parse_tls(ca: str, cert: str, key: str) -> None:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        x509.load_pem_x509_certificates(ca.encode())
    except ValueError:
        raise InvalidInput("the CA certificate does not parse as an X.509 certificate") from None
    try:
        certificate = x509.load_pem_x509_certificate(cert.encode())
    except ValueError:
        raise InvalidInput("the client certificate does not parse as an X.509 certificate") from None
    try:  # `from None`: the parser's exception must not carry the key into a traceback
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidInput("the client key does not parse as an unencrypted private key") from None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if certificate.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise InvalidInput("the client key does not belong to the client certificate")


def update_host(host: Host, *, labels: dict[str, str] | None = None, idc: str | None = None,
                actor: str | None = None) -> None:
    """Change declared facts; each change is an event (what it was, what it is)."""
    changes = {}
    if labels is not None and check_labels(labels) != host.labels:
        changes["labels"] = (host.labels, labels)
        host.labels = dict(labels)
    if idc is not None and idc != host.idc:
        if not idc.strip():
            raise InvalidInput("idc must not be empty")
        changes["idc"] = (host.idc, idc)
        host.idc = idc
    if changes:
        audit.record("host.update", f"{host.name}: changed {', '.join(changes)}",
                     subject_type="host", subject=host.name, actor=actor,
                     **{name: {"from": old, "to": new} for name, (old, new) in changes.items()})
