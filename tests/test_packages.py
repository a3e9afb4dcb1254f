"""The Debian packages the Makefiles name are the ones the tests and targets need, Recommends included.

``make test`` installs exactly ``make apt-packages`` with ``--no-install-recommends``; a program that only comes
with a Recommends (podman's catatonit, say) is then missing on a fresh machine although it is present on one
that installed it some other way. Under ``make test`` every program below must therefore be on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from punchclock_tools.paths import REPO

# Each program a test or a make target runs, and the package the Makefiles must name for it.
PROGRAMS = {
    "/usr/lib/postgresql/15/bin/postgres": "postgresql-15",
    "/usr/lib/postgresql/15/bin/pgbench": "postgresql-15",
    "/usr/lib/postgresql/15/bin/psql": "postgresql-15",  # postgresql-client-15, a Depends of postgresql-15
    "openssl": "openssl",  # the throwaway server's TLS certificates
    "curl": "curl",
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "/usr/bin/python3": "python3-venv",  # Patroni's own virtualenv is made from Debian's python3 (not the package)
    "haproxy": "haproxy",
    "supervisord": "supervisor",
    "pgbackrest": "pgbackrest",
    "nft": "nftables",
    "wrk": "wrk",
    "promtool": "prometheus",
    "prometheus": "prometheus",  # the live alert tests and make monitoring-up
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",  # the routing tests
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
    "/usr/sbin/rsyslogd": "rsyslog",  # the log-shipping example's tests
    "podman": "podman",
    "runc": "runc",
    "catatonit": "catatonit",  # a Recommends of podman: its pause image for `podman kube play` needs it
    "debootstrap": "debootstrap",
    "newuidmap": "uidmap",
    "/usr/lib/podman/netavark": "netavark",
    "/usr/lib/podman/aardvark-dns": "aardvark-dns",
    "iptables": "iptables",
    "systemd-analyze": "systemd",  # checks the backup timers' calendar expressions
    "git": "git",  # the image's revision label
    "dot": "graphviz",  # docs/diagrams
    "pandoc": "pandoc",  # make docs
    "weasyprint": "weasyprint",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf": "fonts-dejavu-core",  # the PDF's and the diagrams' text
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf": "fonts-dejavu-extra",  # the PDF's emphasis
    "pdftotext": "poppler-utils",  # tests/docs reads the PDF back
}


def named_packages() -> set[str]:
    out = subprocess.run(
        ["make", "-s", "--no-print-directory", "apt-packages"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(out.stdout.split())


def installed(program: str) -> bool:
    return Path(program).exists() if program.startswith("/") else shutil.which(program) is not None


def test_every_programs_package_is_named_in_the_makefiles() -> None:
    """Given the programs the suites run, then each one's package is in make test's install list."""
    missing = {program: package for program, package in PROGRAMS.items() if package not in named_packages()}
    assert missing == {}


@pytest.mark.skipif(os.environ.get("PUNCHCLOCK_MAKE_TEST") != "1", reason="only make test installs the packages")
def test_make_test_installed_every_program() -> None:
    """Given make test has installed its list without Recommends, then every program the suites run is there."""
    absent = sorted(program for program in PROGRAMS if not installed(program))
    assert absent == []
