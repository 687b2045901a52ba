"""Secrets at rest: engine TLS keys are encrypted in the database with keys kept outside it."""
from __future__ import annotations

import logging
import os
import stat

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import Text, select, type_coerce, update

from berth import cli, db, vault
from berth.config import Config
from berth.engine.fake import FakeEngine
from berth.models import Host
from tests.support import make_tls

NEW = {"name": "web-01", "endpoint": "tcp://10.0.0.5:2376", "cluster": "web", "pool": "p1"}


def key_lines(pem: str) -> list[str]:
    return pem.strip().splitlines()[1:-1]  # the base64 body, without the BEGIN/END lines


def stored_tls_key(host_id: int = 1) -> str:
    """The column's text as the database holds it, without decryption."""
    return db.session.scalar(select(type_coerce(Host.tls_key, Text())).where(Host.id == host_id))


def database_bytes(config: Config) -> bytes:
    path = config.database_url.removeprefix("sqlite:///")
    return b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))


@pytest.fixture
def tls_host(app, client, admin, caplog):
    """Host web-01 added over the API with a real TLS client key."""
    app.config["BERTH_ENGINE_CONNECT"] = lambda endpoint: FakeEngine()
    tls = make_tls()
    caplog.set_level(logging.DEBUG)
    response = client.post("/api/v1/hosts", json={**NEW, "tls": tls}, headers=admin)
    assert response.status_code == 201, response.json
    return tls, response


def test_tls_key_is_not_in_the_database_file(app, config, client, admin, tls_host, caplog):
    tls, response = tls_host
    listed = client.get("/api/v1/hosts", headers=admin)
    raw = database_bytes(config)
    assert b"PRIVATE KEY" not in raw
    for line in key_lines(tls["key"]):
        assert line.encode() not in raw
        assert line not in response.text and line not in listed.text and line not in caplog.text
    with app.app_context():
        assert stored_tls_key().startswith(vault.PREFIX)
        assert db.session.get(Host, 1).tls_key == tls["key"].strip() + "\n"  # the model sees it


def test_rotation_re_encrypts_with_the_first_key(app, config, tls_host):
    tls, _ = tls_host
    old, new = config.secrets_keys[0], Fernet.generate_key().decode()
    with app.app_context():
        before = stored_tls_key()
        vault.configure([new, old])  # step 1: the new key first, the old one still there
        with db.unit_of_work():
            assert vault.rotate(db.session) == 1
        vault.configure([new])  # step 3: the old key removed
        assert stored_tls_key() != before
        assert db.session.get(Host, 1).tls_key.strip() == tls["key"].strip()
        db.session.remove()
        vault.configure([old])  # a key that no longer decrypts says what to do
        with pytest.raises(vault.SecretsError, match="BERTH_SECRETS_KEYS"):
            db.session.get(Host, 1)


def test_plaintext_from_before_encryption_is_read_and_encrypted_by_the_cli(app, config, tls_host):
    tls, _ = tls_host
    with app.app_context(), db.unit_of_work():  # as a database from before this change holds it
        db.session.execute(update(Host).values({type_coerce(Host.tls_key, Text()): tls["key"]}))
    with app.app_context():
        assert db.session.get(Host, 1).tls_key == tls["key"]
        db.session.remove()
    env = {"BERTH_INSTANCE": str(config.instance_dir), "DATABASE_URL": config.database_url}
    result = CliRunner().invoke(cli.main, ["secrets", "rotate"], env=env)
    assert result.exit_code == 0 and "re-encrypted 1 secret" in result.output, result.output
    assert key_lines(tls["key"])[0] not in result.output
    with app.app_context():
        assert stored_tls_key().startswith(vault.PREFIX)
        assert db.session.get(Host, 1).tls_key == tls["key"]
    # Already encrypted values are left alone by the release step's plaintext pass.
    with app.app_context(), db.unit_of_work():
        assert vault.rotate(db.session, plaintext_only=True) == 0


def test_keys_come_from_the_environment_or_a_private_file(tmp_path):
    generated = vault.load_keys({}, tmp_path)
    path = tmp_path / vault.KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(generated) == 1
    assert vault.load_keys({}, tmp_path) == generated  # generated once, then kept
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert vault.load_keys({"BERTH_SECRETS_KEYS": f"{a}, {b}"}, tmp_path) == (a, b)
    with pytest.raises(vault.SecretsError) as error:
        vault.load_keys({"BERTH_SECRETS_KEYS": "not-a-key-123"}, tmp_path)
    assert "not-a-key-123" not in str(error.value)
    config = Config.from_env({"BERTH_INSTANCE": str(tmp_path), "BERTH_SECRETS_KEYS": a})
    assert a not in repr(config)


def test_admin_password_can_come_from_a_file(tmp_path):
    secret = tmp_path / "admin_password"
    secret.write_text("from-a-file\n")
    config = Config.from_env({"BERTH_INSTANCE": str(tmp_path / "i"),
                              "BERTH_ADMIN_PASSWORD_FILE": str(secret)})
    assert config.admin_password == "from-a-file"


def test_scripts_run_leaves_no_admin_password_in_the_processes_environment():
    text = open(os.path.join(os.path.dirname(__file__), "../../../scripts/run")).read()
    assert "export BERTH_ADMIN_PASSWORD\n" not in text
    assert text.index("unset BERTH_ADMIN_PASSWORD") < text.index("exec honcho")
