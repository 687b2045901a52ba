"""The configuration a registry needs to trust Berth: token auth and notifications."""
from __future__ import annotations

from pathlib import Path

from berth.config import Config
from berth.projects.registry_access import key_directory, signing_key
from berth.registry_auth import CERT_FILE

SECRET_MASK = "<notification secret: use --output FILE to write it>"


def registry_config(config: Config, berth_url: str, *, listen: str = "127.0.0.1:5000",
                    storage: str = "/var/lib/docker-registry", mask_secret: bool = False) -> dict:
    """distribution's config.yml as a dict (JSON is valid YAML, so it can be dumped as JSON)."""
    berth_url = berth_url.rstrip("/")
    signing_key(key_directory(config))  # the certificate must exist before the registry starts
    secret = SECRET_MASK if mask_secret else config.notification_secret
    return {
        "version": 0.1,
        # At info the registry logs each notification endpoint with its headers, and so the
        # shared secret, when it starts; warn keeps the secret out of its log. (Pushes, pulls
        # and deletes are in Berth's audit log either way.)
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": storage}, "delete": {"enabled": True}},
        "http": {"addr": listen},
        "auth": {"token": {
            "realm": f"{berth_url}/service/token",
            "service": config.registry_service,
            "issuer": config.token_issuer,
            "rootcertbundle": str(Path(key_directory(config)) / CERT_FILE),
        }},
        "notifications": {"endpoints": [{
            "name": "berth",
            "url": f"{berth_url}/service/notifications",
            "headers": {"Authorization": [f"Bearer {secret}"]},
            "timeout": "2s",
            "threshold": 5,
            "backoff": "1s",
        }]},
    }


def mirror_config(config: Config, berth_url: str, mirror: str, *,
                  listen: str = "127.0.0.1:5000",
                  storage: str = "/var/lib/docker-registry", service: str | None = None) -> dict:
    """A mirror's config.yml: Berth's token auth under the mirror's own service (audience),
    and no notifications: the catalogue is the primary's; the sync records what mirrors hold."""
    from sqlalchemy import select

    from berth import db
    from berth.errors import NotFound
    from berth.models.registries import Registry

    if service is None:  # looked up unless the caller already did
        service = db.session.scalar(select(Registry.service).where(
            Registry.name == mirror, Registry.role == "mirror"))
        if service is None:
            raise NotFound(f"no mirror registry {mirror!r}: add it first "
                           "(POST /api/v1/registries)")
    full = registry_config(config, berth_url, listen=listen, storage=storage, mask_secret=True)
    full.pop("notifications")
    full["auth"]["token"]["service"] = service
    return full


def guard_settings(config: Config, berth_url: str) -> dict:
    """The part of registry_config that makes a registry someone else set up Berth's: token
    auth, notifications, and the log level that keeps the notification secret out of its log."""
    full = registry_config(config, berth_url)
    return {key: full[key] for key in ("auth", "notifications", "log")}
