"""The `berth` command: database migrations, bootstrap and admin tasks for operators."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from berth import db, migrate, vault
from berth.config import Config
from berth.errors import BerthError


def _config() -> Config:
    return Config.from_env()


@click.group()
def main() -> None:
    """Berth: container operations on a fleet of Docker hosts."""


@main.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database (DATABASE_URL) up to REVISION."""
    migrate.upgrade(_config().database_url, revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. base)."""
    migrate.downgrade(_config().database_url, revision)
    click.echo(f"database at {revision}")


@main.command("release")
def release() -> None:
    """The release step: migrate, then create `admin` if BERTH_ADMIN_PASSWORD is set."""
    config = _config()
    migrate.upgrade(config.database_url)
    click.echo("database migrated")
    # Values stored before encryption at rest are encrypted now, not at the next rotation.
    encrypted = _rotate(config, plaintext_only=True)
    if encrypted:
        click.echo(f"encrypted {encrypted} secret(s) stored in plaintext")
    if config.admin_password:
        _ensure_admin(config, config.admin_password)
    from registry_sync.registries import release_primary
    click.echo(release_primary(config))


def _ensure_admin(config: Config, password: str) -> None:
    from berth import accounts

    db.configure(config.database_url)
    try:
        with db.unit_of_work():
            _, created = accounts.ensure_admin(password)
    except BerthError as error:
        raise click.ClickException(error.message) from error
    click.echo("created user admin" if created else "user admin already exists (unchanged)")


def _rotate(config: Config, *, plaintext_only: bool = False) -> int:
    db.configure(config.database_url)
    vault.configure(config.secrets_keys)
    try:
        with db.unit_of_work():
            return vault.rotate(db.session, plaintext_only=plaintext_only)
    except vault.SecretsError as error:
        raise click.ClickException(str(error)) from error


@main.group("secrets")
def secrets_group() -> None:
    """Secrets at rest (engine TLS keys), encrypted with BERTH_SECRETS_KEYS."""


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret with the first key of BERTH_SECRETS_KEYS (or of the
    instance's secrets_keys file). Afterwards the other keys may be removed."""
    click.echo(f"re-encrypted {_rotate(_config())} secret(s) with the first key")


@secrets_group.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new Fernet key (to put first in BERTH_SECRETS_KEYS before `rotate`)."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@main.group("admin")
def admin_group() -> None:
    """System administrators."""


@admin_group.command("create")
@click.option("--password", envvar="BERTH_ADMIN_PASSWORD", prompt=True, hide_input=True,
              confirmation_prompt=True, help="defaults to $BERTH_ADMIN_PASSWORD")
def admin_create(password: str) -> None:
    """Create the `admin` system administrator (idempotent)."""
    config = _config()
    migrate.upgrade(config.database_url)
    _ensure_admin(config, password)


@main.group("hosts")
def hosts_group() -> None:
    """The inventory of Docker hosts."""


@hosts_group.command("adopt-local")
@click.option("--endpoint", default="unix:///var/run/docker.sock", show_default=True)
def hosts_adopt_local(endpoint: str) -> None:
    """Register this machine's engine as the first host, when the inventory is empty."""
    from berth.hosts.services import adopt_local_engine

    config = _config()
    db.configure(config.database_url)
    vault.configure(config.secrets_keys)
    with db.unit_of_work():
        click.echo(f"berth: {adopt_local_engine(endpoint)}")


@main.group("registry")
def registry_group() -> None:
    """The registry that Berth guards."""


@registry_group.command("config")
@click.option("--url", required=True, help="Berth's URL as the registry reaches it")
@click.option("--listen", default="127.0.0.1:5000", show_default=True)
@click.option("--storage", default="/var/lib/docker-registry", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False),
              help="write the full config here (0600); stdout shows it with the secret masked")
@click.option("--mirror", help="the config of this mirror (its token service, no notifications)")
def registry_config(url: str, listen: str, storage: str, output: str | None,
                    mirror: str | None) -> None:
    """Print the registry config: token auth and notifications pointing at Berth."""
    from berth.projects.registry_config import registry_config as build

    config = _config()
    if mirror:  # no secret in a mirror's config: stdout and --output are the same
        build = _mirror_builder(config, mirror)
    if output:
        text = json.dumps(build(config, url, listen=listen, storage=storage), indent=2)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
        click.echo(f"wrote {output}")
    else:
        click.echo(json.dumps(build(config, url, listen=listen, storage=storage,
                                    mask_secret=True), indent=2))


def _mirror_builder(config: Config, mirror: str):
    from berth.projects.registry_config import mirror_config

    db.configure(config.database_url)
    try:
        with db.unit_of_work():
            found = mirror_config(config, "http://berth", mirror)
    except BerthError as error:
        raise click.ClickException(error.message) from error

    def build(config, url, *, listen, storage, mask_secret=False):
        return mirror_config(config, url, mirror, listen=listen, storage=storage,
                             service=found["auth"]["token"]["service"])
    return build


@main.group("monitoring")
def monitoring_group() -> None:
    """Prometheus and Alertmanager, configured by Berth."""


@monitoring_group.command("config")
@click.option("--out", "out", type=click.Path(file_okay=False),
              help="write prometheus.yml, rules.yml, alertmanager.yml and the token file here "
                   "(default: BERTH_MONITORING_DIR, where the worker re-renders the rules)")
def monitoring_config(out: str | None) -> None:
    """Render Prometheus' and Alertmanager's configuration, with a fresh API token for
    Prometheus (0600, never shown)."""
    from berth.monitoring.config import write_all

    config = _config()
    if out is None:
        if config.monitoring_dir is None:
            raise click.UsageError("give --out DIR or set BERTH_MONITORING_DIR")
        out = str(config.monitoring_dir)
    db.configure(config.database_url)
    try:
        with db.unit_of_work() as session:
            written = write_all(session, config, Path(out))
    except BerthError as error:
        raise click.ClickException(error.message) from error
    for path in written:
        click.echo(f"wrote {path}")


@main.command("diagnose")
def diagnose() -> None:
    """Print facts about this process (Python, the stdlib `platform` module) as JSON."""
    from berth import runtime

    click.echo(json.dumps(runtime.describe()))


# The operator's client commands (login, apply, status, scale) talk to a server's API.
from berth import client_cli  # noqa: E402

client_cli.register(main)


if __name__ == "__main__":
    sys.exit(main())
