"""TLS: a Milvus server with a (self-signed) certificate, reached with `--uri https://…`.

The CA is given the gRPC way, `GRPC_DEFAULT_SSL_ROOTS_FILE_PATH` (read once per process, hence the CLI in a
subprocess); a client that does not trust the certificate gets assetrag's clear error.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from milvus_server import MilvusServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("milvus-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem, key_file = tmp / "server.pem", tmp / "server.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tls = ("tls_mode=1", f"server_pem_path={pem}", f"server_key_path={key_file}")
    server = MilvusServer(tmp / "data", extra_config=tls).start()
    yield server, pem
    server.stop()


def _stats(uri: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assetrag.cli", "--uri", uri, "stats", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_https_uri_with_the_servers_ca_works_and_without_it_is_explained(tls_server):
    server, pem = tls_server
    uri = server.uri.replace("http://", "https://")
    ok = _stats(uri, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(pem))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["backend"] == "milvus-server"
    untrusted = _stats(uri)
    assert untrusted.returncode == 2
    assert "cannot reach the Milvus server" in untrusted.stderr
    assert "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH" in untrusted.stderr
    assert "Traceback" not in untrusted.stderr
