"""The signing key: libtrust key id, creation on first use, reuse, file modes."""
import base64
import hashlib
import os
import stat
import string
import threading
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from berth.registry_auth import CERT_FILE, KEY_FILE, SigningKey, libtrust_kid

# A fixed key whose libtrust id registry 2.8.2 accepted as `kid` (the only key
# identification in that token) against a rootcertbundle holding this key.
FIXED_KEY = ec.derive_private_key(0x0123456789ABCDEF0123456789ABCDEF, ec.SECP256R1())
FIXED_KID = "RYQM:B3KV:VJIA:SGX3:JYA7:ULWV:ZRXS:LYTP:L7FE:T2MH:N5O6:AJEW"
NOW = datetime(2030, 5, 17, 8, 0, tzinfo=UTC)


def independent_kid(public_key) -> str:
    """libtrust's algorithm again, by hand: base32 done bit by bit."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bits = "".join(f"{byte:08b}" for byte in hashlib.sha256(der).digest())[:240]
    alphabet = string.ascii_uppercase + "234567"
    encoded = "".join(alphabet[int(bits[i : i + 5], 2)] for i in range(0, 240, 5))
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


def test_kid_known_answer():
    assert libtrust_kid(FIXED_KEY.public_key()) == FIXED_KID
    assert independent_kid(FIXED_KEY.public_key()) == FIXED_KID


@pytest.mark.parametrize("seed", [1, 2, 0xDEADBEEF, 2**200 + 7])
def test_kid_format(seed):
    kid = libtrust_kid(ec.derive_private_key(seed, ec.SECP256R1()).public_key())
    assert len(kid) == 59
    assert kid.count(":") == 11
    groups = kid.split(":")
    assert len(groups) == 12 and all(len(group) == 4 for group in groups)
    assert set(kid.replace(":", "")) <= set(string.ascii_uppercase + "234567")
    assert kid == independent_kid(ec.derive_private_key(seed, ec.SECP256R1()).public_key())


def test_key_files_created_once_and_reused(tmp_path):
    directory = tmp_path / "keys"
    first = SigningKey.load_or_create(directory, now=NOW)
    key_bytes = (directory / KEY_FILE).read_bytes()
    cert_bytes = (directory / CERT_FILE).read_bytes()

    second = SigningKey.load_or_create(directory, now=NOW + timedelta(days=1))

    assert second.kid == first.kid
    assert (directory / KEY_FILE).read_bytes() == key_bytes
    assert (directory / CERT_FILE).read_bytes() == cert_bytes
    assert second.certificate_pem == cert_bytes


def test_file_modes(tmp_path):
    directory = tmp_path / "keys"
    SigningKey.load_or_create(directory, now=NOW)
    assert stat.S_IMODE((directory / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((directory / CERT_FILE).stat().st_mode) & 0o022 == 0


def test_loose_key_file_mode_is_tightened(tmp_path):
    SigningKey.load_or_create(tmp_path, now=NOW)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    SigningKey.load_or_create(tmp_path, now=NOW)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_missing_certificate_is_recreated_for_the_same_key(tmp_path):
    first = SigningKey.load_or_create(tmp_path, now=NOW)
    (tmp_path / CERT_FILE).unlink()
    second = SigningKey.load_or_create(tmp_path, now=NOW)
    assert second.kid == first.kid
    assert (tmp_path / CERT_FILE).exists()



def test_lost_key_gets_a_new_certificate_too(tmp_path):
    first = SigningKey.load_or_create(tmp_path, now=NOW)
    (tmp_path / KEY_FILE).unlink()
    second = SigningKey.load_or_create(tmp_path, now=NOW)
    assert second.kid != first.kid
    assert second.certificate.public_key() == second.public_key

def test_certificate_of_another_key_is_refused(tmp_path):
    SigningKey.load_or_create(tmp_path / "a", now=NOW)
    SigningKey.load_or_create(tmp_path / "b", now=NOW)
    (tmp_path / "a" / CERT_FILE).write_bytes((tmp_path / "b" / CERT_FILE).read_bytes())
    with pytest.raises(ValueError, match="does not belong"):
        SigningKey.load_or_create(tmp_path / "a")


def test_certificate_is_a_self_signed_root_for_the_key(tmp_path):
    key = SigningKey.load_or_create(tmp_path, now=NOW)
    cert = x509.load_pem_x509_certificate((tmp_path / CERT_FILE).read_bytes())
    assert cert.public_key() == key.public_key
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.serial_number > 0
    assert cert.not_valid_before_utc <= NOW < NOW + timedelta(days=3000) < cert.not_valid_after_utc
    assert isinstance(key.public_key.curve, ec.SECP256R1)


def test_x5c_is_standard_base64_der_of_the_certificate(tmp_path):
    key = SigningKey.load_or_create(tmp_path, now=NOW)
    (leaf,) = key.x5c
    assert x509.load_der_x509_certificate(base64.b64decode(leaf, validate=True)) == key.certificate


def test_concurrent_first_use_creates_one_key(tmp_path):
    kids, barrier = [], threading.Barrier(6)

    def start():
        barrier.wait()
        kids.append(SigningKey.load_or_create(tmp_path / "keys", now=NOW).kid)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 6 and len(set(kids)) == 1


def test_repr_shows_no_key_material(tmp_path):
    key = SigningKey.load_or_create(tmp_path, now=NOW)
    pem = (tmp_path / KEY_FILE).read_text()
    secret_number = str(key.private_key.private_numbers().private_value)
    for text in (repr(key), str(key)):
        assert key.kid in text
        assert "PRIVATE" not in text and pem not in text and secret_number not in text


def test_only_p256_keys_sign_es256():
    with pytest.raises(ValueError, match="P-256"):
        SigningKey.self_signed(ec.generate_private_key(ec.SECP384R1()), now=NOW)



def test_self_signed_for_a_given_key():
    key = SigningKey.self_signed(FIXED_KEY, now=NOW)
    assert key.kid == FIXED_KID
    assert key.certificate.public_key() == FIXED_KEY.public_key()
