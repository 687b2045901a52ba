"""The registry rows: the primary (from configuration) and the mirrors, their health probes,
and a client that acts on any of them as the sync's own identity."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import select

from berth import audit, db
from berth.clock import utcnow
from berth.config import Config
from berth.errors import Conflict, InvalidInput, NotFound
from berth.models.registries import Registry
from berth.projects.registry_access import key_directory, signing_key
from berth.registry_auth import issue_token, validate_project_name
from registry_sync.client import SyncClient

SYNC_SUBJECT = "berth-sync"  # who a registry sees when the sync copies or deletes
SYNC_TOKEN_LIFETIME_S = 300  # a tag's blobs copy within one token; the client asks per call
PRIMARY = "primary"
PROBE_PARALLEL = 8  # a handful of mirrors per IDC; bounded so a long list cannot fan out widely
PROBE_TIMEOUT_S = 5.0

# (url, tls_verify, ca_bundle PEM or None) -> None when the registry answers; raises otherwise.
Probe = Callable[[str, bool, "str | None"], None]


def _verify(tls_verify: bool, ca_bundle: str | None, directory: Path | None) -> bool | str:
    """What requests' `verify` needs: a file path for a custom CA, else a bool."""
    if not tls_verify or not ca_bundle:
        return tls_verify
    import hashlib
    import tempfile

    folder = directory or Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(ca_bundle.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_text(ca_bundle)
    return str(path)


def http_probe(url: str, tls_verify: bool = True, ca_bundle: str | None = None) -> None:
    # 401 is a registry asking for a token: up. Anything else means it is not (yet) one.
    response = requests.get(url.rstrip("/") + "/v2/", timeout=PROBE_TIMEOUT_S,
                            verify=_verify(tls_verify, ca_bundle, None))
    if response.status_code not in (200, 401):
        raise RuntimeError(f"GET /v2/ answered HTTP {response.status_code}")


def validate_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"registry URL {url!r} must be http:// or https:// with a host")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise InvalidInput(f"registry URL {url!r} must have no path: e.g. https://host:5000")
    return f"{parts.scheme}://{parts.netloc}"


def get_registry(name: str) -> Registry:
    registry = db.session.scalar(select(Registry).where(Registry.name == name))
    if registry is None:
        raise NotFound(f"no registry {name!r}")
    return registry


def list_registries() -> list[Registry]:
    return list(db.session.scalars(select(Registry).order_by(Registry.role.desc(), Registry.name)))


def add_registry(name: str, url: str, *, idc: str | None, role: str = "mirror",
                 tls_verify: bool = True, ca_bundle: str | None = None,
                 service: str | None = None, actor: str | None,
                 probe: Probe = http_probe) -> Registry:
    """Register a registry once it answers GET /v2/; nothing is saved if it does not."""
    try:
        validate_project_name(name)
    except ValueError as error:
        raise InvalidInput(str(error).replace("project name", "registry name")) from error
    url = validate_url(url)
    if role not in ("primary", "mirror"):
        raise InvalidInput("role must be primary or mirror")
    if db.session.scalar(select(Registry).where(Registry.name == name)) is not None:
        raise Conflict(f"registry {name!r} already exists")
    if role == "primary" and db.session.scalar(
            select(Registry).where(Registry.role == "primary")) is not None:
        raise Conflict("there is a primary registry already: only one takes pushes")
    if not service and role == "mirror":
        service = f"berth-mirror-{name}"
    if service and db.session.scalar(select(Registry).where(Registry.service == service)):
        # One audience per registry, or a token for one would be accepted by the other.
        raise Conflict(f"token service {service!r} is used by another registry")
    try:
        probe(url, tls_verify, ca_bundle or None)
    except Exception as error:  # noqa: BLE001 - any failure is the operator's to read
        raise InvalidInput(f"the registry at {url} did not answer: {error}") from error
    registry = Registry(name=name, url=url, role=role, idc=idc, service=service,
                        tls_verify=tls_verify, ca_bundle=ca_bundle or None, healthy=True,
                        last_checked_at=utcnow())
    db.session.add(registry)
    audit.record("registry.add", f"added {role} registry {name} ({url})",
                 subject_type="registry", subject=name, actor=actor, idc=idc)
    return registry


def remove_registry(name: str, actor: str | None) -> None:
    registry = get_registry(name)
    if registry.role == "primary":
        raise Conflict("the primary registry comes from configuration: it cannot be removed")
    db.session.delete(registry)
    audit.record("registry.remove", f"removed registry {name}", subject_type="registry",
                 subject=name, actor=actor)


def ensure_primary(config: Config) -> Registry:
    """The primary's row follows BERTH_REGISTRY_URL; run at each release."""
    registry = db.session.scalar(select(Registry).where(Registry.role == "primary"))
    if registry is None:
        registry = Registry(name=PRIMARY, role="primary")
        db.session.add(registry)
    registry.url, registry.service = config.registry_url, config.registry_service
    return registry


def probe_all(probe: Probe = http_probe) -> dict:
    targets = [(r.id, r.url, r.tls_verify, r.ca_bundle) for r in list_registries()]
    db.session.rollback()  # hold no transaction while waiting on the network

    def one(target):
        _, url, verify, bundle = target
        try:
            probe(url, verify, bundle)
            return None
        except Exception as error:  # noqa: BLE001
            return str(error)[:500] or type(error).__name__

    with ThreadPoolExecutor(max_workers=PROBE_PARALLEL) as pool:
        errors = list(pool.map(one, targets))
    now, counts = utcnow(), {"up": 0, "down": 0}
    for (registry_id, *_), error in zip(targets, errors):
        registry = db.session.get(Registry, registry_id)
        if registry is None:
            continue  # removed meanwhile
        registry.healthy, registry.last_error, registry.last_checked_at = error is None, error, now
        counts["up" if error is None else "down"] += 1
    return counts


def sync_client(registry: Registry, config: Config) -> SyncClient:
    """A client that signs its own short tokens for this registry's audience: the sync acts as
    itself, never with a person's password."""
    key, audience = signing_key(key_directory(config)), registry.service or config.registry_service

    def token_source(access):
        return issue_token(key, issuer=config.token_issuer, audience=audience,
                           subject=SYNC_SUBJECT, access=access,
                           lifetime_s=SYNC_TOKEN_LIFETIME_S, now=utcnow()).token

    client = SyncClient(registry.url, token_source)
    client.http.verify = _verify(registry.tls_verify, registry.ca_bundle,
                                 config.instance_dir / "registry-ca")
    return client


def release_primary(config: Config) -> str:
    """The release step's part: the primary's row, so mirrors have a source to sync from."""
    with db.unit_of_work():
        registry = ensure_primary(config)
        return f"primary registry {registry.url} (service {registry.service})"
