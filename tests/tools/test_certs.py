"""Reading served certificates (punchclock_tools.certs) from a real TLS listener on loopback, plain and behind
PostgreSQL's STARTTLS request, with certificates made by the openssl CLI."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from punchclock_tools import certs

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")  # PostgreSQL's SSLRequest message


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], capture_output=True, check=True, timeout=60)


def make_ca(directory: Path, name: str) -> Path:
    """A self-signed CA named ``name`` in directory (name.crt, name.key)."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-keyout", directory / f"{name}.key", "-out", directory / f"{name}.crt", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    return directory / f"{name}.crt"


def issue(directory: Path, ca: str, name: str) -> Path:
    """A server certificate for DNS:name and IP:127.0.0.1 signed by CA ``ca`` (name.crt, name.key)."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-keyout", directory / f"{name}.key", "-out", directory / f"{name}.crt", "-subj", f"/CN={name}",
            "-CA", directory / f"{ca}.crt", "-CAkey", directory / f"{ca}.key",
            "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1")  # fmt: skip
    return directory / f"{name}.crt"


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    make_ca(tmp_path, "ca")
    issue(tmp_path, "ca", "db1")
    return tmp_path


def listen(cert: Path, starttls: bool) -> Iterator[int]:
    """Serve TLS with ``cert`` on a loopback port (answering PostgreSQL's SSLRequest with 'S' first if asked),
    and send two bytes that are not UTF-8 after the handshake."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, cert.with_suffix(".key"))
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                if starttls:
                    assert conn.recv(8) == SSL_REQUEST
                    conn.sendall(b"S")
                # A client that does not trust the certificate aborts the handshake: expected here.
                with contextlib.suppress(ssl.SSLError, OSError), context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"\x88\xfe")  # bytes that are not UTF-8, as a binary protocol's first message
                    tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    thread.join(timeout=10)


@pytest.mark.parametrize("starttls", [False, True], ids=["tls", "postgres-starttls"])
def test_served_certificate_is_the_installed_one(pki: Path, starttls: bool) -> None:
    """Given a listener serving db1's certificate, then served() reads that certificate, verified for db1."""
    for port in listen(pki / "db1.crt", starttls):
        got = certs.served("127.0.0.1", port, pki / "ca.crt", "db1", starttls="postgres" if starttls else None)
        assert got == certs.installed(pki / "db1.crt")
        assert got.subject == "CN=db1"
        assert got.not_before < got.not_after


def test_a_re_issued_certificate_has_a_new_serial_and_a_later_or_equal_not_before(pki: Path) -> None:
    """Given db1 issued twice from one CA, then the two certificates differ in serial, and verify alike."""
    first = certs.installed(pki / "db1.crt")
    issue(pki, "ca", "db1")
    for port in listen(pki / "db1.crt", starttls=False):
        second = certs.served("127.0.0.1", port, pki / "ca.crt", "db1")
    assert second.serial != first.serial
    assert second.not_before >= first.not_before


def test_another_name_or_another_ca_does_not_verify(pki: Path) -> None:
    """Given db1's certificate, then asking for db2, or trusting another CA, raises CertificateError."""
    other = make_ca(pki, "other")
    for port in listen(pki / "db1.crt", starttls=False):
        with pytest.raises(certs.CertificateError, match="no certificate that verifies for db2"):
            certs.served("127.0.0.1", port, pki / "ca.crt", "db2")
    for port in listen(pki / "db1.crt", starttls=False):
        with pytest.raises(certs.CertificateError, match="for db1"):
            certs.served("127.0.0.1", port, other, "db1")


def test_endpoints_are_every_tls_listener_the_roles_put_on_the_hosts() -> None:
    """Each group's TLS ports, once per host: a database node that is also the repository host serves
    pgBackRest's TLS server once, every host its node_exporter, the balancers the public name."""
    groups = {
        "etcd_cluster": ["node1"],
        "postgres_cluster": ["node1", "node2"],
        "web": ["node2"],
        "balancers": ["node2"],
        "pgbackrest_repo": ["node1"],
    }
    found = {(e.host, e.port, e.name, e.starttls) for e in certs.endpoints(groups, "public.example")}
    assert found == {
        ("node1", 2379, "node1", None),
        ("node1", 2380, "node1", None),
        ("node1", 8008, "node1", None),
        ("node2", 8008, "node2", None),
        ("node1", 5432, "node1", "postgres"),
        ("node2", 5432, "node2", "postgres"),
        ("node1", 8432, "node1", None),
        ("node2", 8432, "node2", None),
        ("node2", 8443, "node2", None),
        ("node2", 7000, "node2", None),
        ("node2", 443, "public.example", None),
        ("node1", 9100, "node1", None),
        ("node2", 9100, "node2", None),
        ("node1", 9187, "node1", None),
        ("node2", 9187, "node2", None),
    }
    assert len(certs.endpoints(groups, "public.example")) == len(found)
