"""Which certificate a TLS endpoint serves, verified against a CA and a name, read with the openssl CLI.

    before = certs.served("10.89.0.10", 5432, ca, "db1", starttls="postgres")
    ...                                             # rotate-certs.yml
    after = certs.served("10.89.0.10", 5432, ca, "db1", starttls="postgres")
    assert after.serial != before.serial and after == certs.installed(pki / "db1.crt")

``openssl s_client`` speaks PostgreSQL's STARTTLS (``-starttls postgres``), which no Python TLS client does, and
presents a client certificate where the endpoint requires one (etcd's client-cert-auth). ``endpoints`` lists every
TLS endpoint the roles put on an inventory's hosts, and ``served_by`` reads what each of them serves:

    before = certs.served_by(certs.endpoints(groups, public_name), addresses, pki)
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n.+?\n-----END CERTIFICATE-----\n", re.DOTALL)
DATE_FORMAT = "%b %d %H:%M:%S %Y %Z"  # openssl x509's: "Dec  2 03:16:41 2026 GMT"


class CertificateError(Exception):
    """The endpoint could not be reached, or what it serves does not verify."""


@dataclass(frozen=True)
class Certificate:
    serial: str  # hexadecimal, as openssl prints it
    not_before: datetime
    not_after: datetime
    subject: str


def parse(pem: str) -> Certificate:
    """The serial, validity and subject of a PEM certificate."""
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-serial", "-startdate", "-enddate", "-subject", "-nameopt", "RFC2253"],
        input=pem,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if out.returncode != 0:
        raise CertificateError(f"openssl x509 cannot read it: {out.stderr.strip()}")
    fields = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def when(value: str) -> datetime:
        return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)

    return Certificate(fields["serial"], when(fields["notBefore"]), when(fields["notAfter"]), fields["subject"])


def installed(path: Path) -> Certificate:
    """The certificate in a PEM file (the first one of a bundle)."""
    return parse(path.read_text())


def served(
    address: str,
    port: int,
    ca_file: Path,
    name: str,
    *,
    starttls: str | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    timeout: float = 20,
) -> Certificate:
    """The certificate ``address:port`` serves, which must verify against ``ca_file`` for ``name``; else raise.

    ``starttls`` is an ``openssl s_client -starttls`` protocol (``postgres``); ``cert`` and ``key`` are presented to
    endpoints that require a client certificate.
    """
    argv = ["openssl", "s_client", "-connect", f"{address}:{port}", "-servername", name, "-verify_hostname", name,
            "-CAfile", str(ca_file), "-verify_return_error"]  # fmt: skip
    if starttls:
        argv += ["-starttls", starttls]
    if cert and key:
        argv += ["-cert", str(cert), "-key", str(key)]
    # What the server sends after the handshake is printed too, and may be binary (pgBackRest's TLS server's).
    try:
        out = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise CertificateError(f"{address}:{port} did not complete a TLS handshake in {timeout} s") from e
    # Not its exit status: a server that refuses the client after the handshake (pgBackRest's TLS server admits only
    # the client names it is configured for) ends s_client with an error. An unverified certificate ends the
    # handshake itself (-verify_return_error), so "Verify return code: 0 (ok)" is printed only for a verified one.
    found = PEM.search(out.stdout)
    if found is None or "Verify return code: 0 (ok)" not in out.stdout:
        detail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise CertificateError(f"{address}:{port} serves no certificate that verifies for {name}: {detail}")
    return parse(found.group(0))


@dataclass(frozen=True)
class Endpoint:
    """A TLS endpoint of a deployment: ``host``'s ``port``, whose certificate must carry ``name``."""

    host: str
    port: int
    name: str
    starttls: str | None = None  # an ``openssl s_client -starttls`` protocol (PostgreSQL's: ``postgres``)


# The ports of deploy/ansible's roles (their defaults): etcd's client and peer ports, Patroni's REST API,
# PostgreSQL, pgBackRest's TLS server, HAProxy's instance hop, stats page and public listener, the exporters.
ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380
ETCD_PORTS = (ETCD_CLIENT_PORT, ETCD_PEER_PORT)
PATRONI_REST_PORT = 8008
POSTGRES_PORT = 5432
PGBACKREST_TLS_PORT = 8432
HAPROXY_APP_TLS_PORT = 8443
HAPROXY_STATS_PORT = 7000
PUBLIC_PORT = 443
NODE_EXPORTER_PORT = 9100
POSTGRES_EXPORTER_PORT = 9187


def endpoints(groups: Mapping[str, Sequence[str]], public_name: str) -> list[Endpoint]:
    """Every TLS endpoint the roles put on the hosts of an inventory's ``groups``, once each."""
    found: dict[tuple[str, int], Endpoint] = {}

    def add(hosts: Sequence[str], port: int, name: str | None = None, starttls: str | None = None) -> None:
        for host in hosts:
            found.setdefault((host, port), Endpoint(host, port, name or host, starttls))

    for port in ETCD_PORTS:
        add(groups.get("etcd_cluster", []), port)
    add(groups.get("postgres_cluster", []), PATRONI_REST_PORT)
    add(groups.get("postgres_cluster", []), POSTGRES_PORT, starttls="postgres")
    if groups.get("pgbackrest_repo"):
        add([*groups.get("postgres_cluster", []), *groups["pgbackrest_repo"]], PGBACKREST_TLS_PORT)
    add(groups.get("web", []), HAPROXY_APP_TLS_PORT)
    add([*groups.get("web", []), *groups.get("balancers", [])], HAPROXY_STATS_PORT)
    add(groups.get("balancers", []), PUBLIC_PORT, public_name)
    add(list(dict.fromkeys(host for members in groups.values() for host in members)), NODE_EXPORTER_PORT)
    add(groups.get("postgres_cluster", []), POSTGRES_EXPORTER_PORT)
    return list(found.values())


def served_by(targets: Sequence[Endpoint], addresses: Mapping[str, str], pki: Path) -> dict[Endpoint, Certificate]:
    """What each endpoint serves (``addresses``: host name to address), verified against ``pki``/ca.crt and its
    name; each host's own certificate is presented where a client certificate is required (etcd, HAProxy's
    instance hop)."""
    return {
        target: served(
            addresses[target.host],
            target.port,
            pki / "ca.crt",
            target.name,
            starttls=target.starttls,
            cert=pki / f"{target.host}.crt",
            key=pki / f"{target.host}.key",
        )
        for target in targets
    }
