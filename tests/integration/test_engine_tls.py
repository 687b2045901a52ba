"""The engine boundary over a unix socket and over TCP with mutual TLS, on real dockerd."""
from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from berth.engine import Endpoint, EngineError, TlsMaterial
from berth.engine.sdk import DockerEngine
from testbed import EngineTLS, TestBed


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert(subject: str, key, issuer_name, issuer_key, *, ca=False, server=False):
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pki(folder):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as files and PEM."""
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth test CA")])
    ca = _cert("berth test CA", ca_key, ca_name, ca_key, ca=True)
    server_key, client_key = _key(), _key()
    server = _cert("127.0.0.1", server_key, ca_name, ca_key, server=True)
    client = _cert("berth", client_key, ca_name, ca_key)
    pem = {
        "ca": ca.public_bytes(serialization.Encoding.PEM).decode(),
        "server_cert": server.public_bytes(serialization.Encoding.PEM).decode(),
        "server_key": _pem_key(server_key),
        "cert": client.public_bytes(serialization.Encoding.PEM).decode(),
        "key": _pem_key(client_key),
    }
    paths = {}
    for name, text in pem.items():
        paths[name] = str(folder / f"{name}.pem")
        (folder / f"{name}.pem").write_text(text)
    return pem, paths


@pytest.fixture(scope="module")
def tls_engine(integration_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    pem, paths = _pki(folder)
    bed = TestBed(engines=["tls1"], registries=(), postgres=False, redis=False, image=False,
                  engine_tls={"tls1": EngineTLS(**paths)}, port_range_size=10)
    bed.start()
    yield bed.engine("tls1")["url"], pem
    bed.stop()


def test_tcp_with_client_certificates(tls_engine, monkeypatch, tmp_path):
    url, pem = tls_engine
    # A CA bundle in the environment must not replace the engine's own CA.
    (tmp_path / "bundle.pem").write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "bundle.pem"))
    engine = DockerEngine(Endpoint(url, TlsMaterial(ca=pem["ca"], cert=pem["cert"], key=pem["key"])))
    try:
        assert engine.ping() and engine.info().cpus >= 1
    finally:
        engine.close()


def test_tls_engine_refuses_a_client_without_its_certificate(tls_engine, tmp_path):
    url, pem = tls_engine
    other_pem, _ = _pki(tmp_path)  # a client certificate from another CA
    engine = DockerEngine(Endpoint(url, TlsMaterial(ca=pem["ca"], cert=other_pem["cert"],
                                                    key=other_pem["key"]), timeout_s=5))
    try:
        with pytest.raises(EngineError):
            engine.info()
    finally:
        engine.close()


def test_tls_files_are_private_and_removed(tls_engine):
    url, pem = tls_engine
    engine = DockerEngine(Endpoint(url, TlsMaterial(ca=pem["ca"], cert=pem["cert"], key=pem["key"])))
    folder = engine._tls.folder
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.iterdir())
    engine.close()
    assert not folder.exists()


def test_unix_socket(bed):
    engine = DockerEngine(Endpoint(bed.engine("e1")["socket"]))
    try:
        assert engine.ping() and engine.info().engine_version
    finally:
        engine.close()
