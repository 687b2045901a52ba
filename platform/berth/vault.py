"""Secrets at rest: columns that hold secrets (engine TLS keys) are Fernet-encrypted.

The keys live outside the database (BERTH_SECRETS_KEYS or the instance's `secrets_keys`
file), so a copy of the database alone reveals no secret. The first key encrypts; every key
decrypts, which is what makes rotation possible (add a key first, rotate, drop the old one).
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text, select, type_coerce, update
from sqlalchemy.types import TypeDecorator

# Marks an encrypted value; anything without it is a plaintext value from before encryption
# (still readable; `berth secrets rotate` or `berth release` encrypts it).
PREFIX = "fernet:"
KEYS_FILE = "secrets_keys"

_keyring: MultiFernet | None = None


class SecretsError(RuntimeError):
    """A secret cannot be read: the key that encrypted it is not configured."""


def parse_keys(text: str) -> list[str]:
    """Keys separated by commas or newlines; the first one encrypts."""
    return [key.strip() for key in text.replace("\n", ",").split(",") if key.strip()]


def load_keys(env: dict[str, str], instance: Path) -> tuple[str, ...]:
    """From BERTH_SECRETS_KEYS, else the instance's key file, generated once (0600)."""
    keys = parse_keys(env.get("BERTH_SECRETS_KEYS", ""))
    if not keys:
        path = instance / KEYS_FILE
        if not path.exists():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process created it first: use that one
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(Fernet.generate_key().decode() + "\n")
        keys = parse_keys(path.read_text())
    for key in keys:
        try:
            Fernet(key)
        except ValueError as error:  # never echo the key itself
            raise SecretsError("BERTH_SECRETS_KEYS (or the instance's secrets_keys file) holds "
                               "a value that is not a Fernet key; make one with "
                               "`berth secrets generate-key`") from error
    return tuple(keys)


def configure(keys: tuple[str, ...] | list[str]) -> None:
    """Set this process's keys. Called next to berth.db.configure at every edge."""
    global _keyring
    _keyring = MultiFernet([Fernet(key) for key in keys])


def keyring() -> MultiFernet:
    if _keyring is None:
        raise RuntimeError("berth.vault.configure(keys) has not been called in this process")
    return _keyring


def encrypt(value: str) -> str:
    return PREFIX + keyring().encrypt(value.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # plaintext from before encryption
    try:
        return keyring().decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken as error:
        raise SecretsError("a stored secret was encrypted with a key that is not configured: "
                           "put every key still in use in BERTH_SECRETS_KEYS") from error


class EncryptedText(TypeDecorator):
    """Text stored encrypted; the model sees plaintext."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)


def encrypted_columns():
    from berth.db import Base
    import berth.models  # noqa: F401 - every table registered on the metadata

    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText):
                yield table, column


def rotate(session, *, plaintext_only: bool = False) -> int:
    """Re-encrypt every stored secret with the first key (or only encrypt plaintext ones).
    Returns how many values were written."""
    written = 0
    for table, column in encrypted_columns():
        (pk,) = table.primary_key.columns
        # Read the stored text as it is (no decryption), to tell plaintext apart.
        stored_text = type_coerce(column, Text())
        rows = session.execute(select(pk, stored_text).where(column.is_not(None))).all()
        for key, stored in rows:
            if plaintext_only and stored.startswith(PREFIX):
                continue
            session.execute(update(table).where(pk == key).values({column: decrypt(stored)}))
            written += 1
    return written
