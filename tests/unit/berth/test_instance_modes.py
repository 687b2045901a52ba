"""The instance folder and its files are Berth's user's alone: the database holds engine TLS
keys (a key that controls a Docker engine is root on its host) and password hashes."""
import os
import stat

from berth import db, migrate
from berth.config import Config


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_fresh_instance_is_0700_and_its_files_0600(tmp_path):
    old = os.umask(0o022)  # the usual umask, which made them 0755 and 0644
    try:
        instance = tmp_path / "instance"
        config = Config.from_env({"BERTH_INSTANCE": str(instance)})
        migrate.upgrade(config.database_url)
        db.configure(config.database_url)
        db.session.remove()
    finally:
        os.umask(old)
    assert mode(instance) == 0o700
    files = sorted(p.name for p in instance.iterdir())
    assert {"berth.sqlite", "broker.sqlite", "results.sqlite", "secret_key",
            "notification_secret"} <= set(files)
    assert {name: mode(instance / name) for name in files} == {name: 0o600 for name in files}


def test_an_existing_open_instance_is_closed_up(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    (instance / "berth.sqlite").touch(mode=0o644)
    os.chmod(instance, 0o755)
    os.chmod(instance / "berth.sqlite", 0o644)
    config = Config.from_env({"BERTH_INSTANCE": str(instance)})
    db.prepare_sqlite(config.database_url)
    assert (mode(instance), mode(instance / "berth.sqlite")) == (0o700, 0o600)
