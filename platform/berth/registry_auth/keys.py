"""The token signing key: an EC P-256 key and its self-signed certificate, kept in a
directory (`token.key`, and `token.crt` = the registry's rootcertbundle; both 0600)."""
from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KEY_FILE = "token.key"
CERT_FILE = "token.crt"
_LOCK_FILE = ".token.lock"
# With `x5c` in the token header the registry checks the certificate's validity
# period on every request, so it must outlive any sensible rotation schedule.
CERT_LIFETIME = timedelta(days=3650)


def libtrust_kid(public_key: ec.EllipticCurvePublicKey) -> str:
    """docker/libtrust's key id: SHA-256 of the DER SubjectPublicKeyInfo, first 240
    bits, base32 without padding, in 12 colon-separated groups of 4."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()  # 48 chars
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


class SigningKey:
    """A private key with its certificate. Its repr shows only the key id."""

    __slots__ = ("_private_key", "certificate", "kid")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate):
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ValueError("the token signing key must be an EC P-256 key (ES256)")
        if certificate.public_key() != private_key.public_key():
            raise ValueError("the token certificate does not belong to the token signing key")
        self._private_key = private_key
        self.certificate = certificate
        self.kid = libtrust_kid(private_key.public_key())

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return self._private_key

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._private_key.public_key()

    @property
    def certificate_pem(self) -> bytes:
        """What the registry's `auth.token.rootcertbundle` file must contain."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def x5c(self) -> list[str]:
        """The JOSE `x5c` header: the chain as standard base64 DER, leaf first."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return [base64.b64encode(der).decode()]

    @classmethod
    def generate(
        cls, *, common_name: str = "berth token signer", now: datetime | None = None
    ) -> SigningKey:
        """A fresh key, kept only in memory."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        return cls.self_signed(private_key, common_name=common_name, now=now)

    @classmethod
    def self_signed(
        cls,
        private_key: ec.EllipticCurvePrivateKey,
        *,
        common_name: str = "berth token signer",
        now: datetime | None = None,
    ) -> SigningKey:
        """An existing key with a new self-signed certificate."""
        return cls(private_key, _self_signed(private_key, common_name, now or datetime.now(UTC)))

    @classmethod
    def load_or_create(
        cls,
        directory: Path | str,
        *,
        common_name: str = "berth token signer",
        now: datetime | None = None,
    ) -> SigningKey:
        """The key in `directory`, created on first use. Safe with several processes
        starting at once: creation runs under an exclusive file lock."""
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
        # The folder sits in the private instance: its files are Berth's alone (0600), the
        # public certificate and the empty lock file too.
        with os.fdopen(os.open(directory / _LOCK_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                               0o600), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if key_path.exists():
                private_key = _read_private_key(key_path)
            else:
                private_key = ec.generate_private_key(ec.SECP256R1())
                _write_private(key_path, _private_pem(private_key))
                cert_path.unlink(missing_ok=True)  # a certificate without its key is useless
            if cert_path.exists():
                certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            else:
                certificate = _self_signed(private_key, common_name, now or datetime.now(UTC))
                _write_public(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
        return cls(private_key, certificate)


def _private_pem(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # tighten a key file someone copied in with loose modes
    private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return private_key


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start (never world-readable, not even for a moment).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_public(path: Path, data: bytes) -> None:
    # Not secret, but only Berth (and a registry running as Berth's user) reads it from the
    # 0700 instance folder: more than 0600 would give nobody anything.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _self_signed(
    private_key: ec.EllipticCurvePrivateKey, common_name: str, now: datetime
) -> x509.Certificate:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)  # Berth's clock is naive UTC
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        # Go's x509 rejects negative serials; 159 random bits stay positive.
        .serial_number(secrets.randbits(159) | 1)
        # Backdated a day so a registry host whose clock runs behind accepts it.
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + CERT_LIFETIME)
        # It is its own root in the registry's rootcertbundle.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False
        )
        .sign(private_key, hashes.SHA256())
    )
