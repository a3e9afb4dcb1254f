"""The fresh machine's pure helpers: the private network's subnet, the container's environment and limits, and
pytest's closing line (no podman run)."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from punchclock_tools.fresh.machine import closing_line, passed_env
from punchclock_tools.podman import containers_conf, free_subnet, parse_routes

# /proc/net/route as a podman host has it: a default route, podman's own 10.88.0.0/16 and the uplink's /24.
ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
podman0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_routes_are_read_from_little_endian_hex_without_the_default_route() -> None:
    """Given /proc/net/route's text, then its networks come back in dotted form and 0.0.0.0/0 is left out."""
    assert parse_routes(ROUTES) == [IPv4Network("10.88.0.0/16"), IPv4Network("192.0.2.0/24")]


def test_free_subnet_is_the_first_candidate_when_no_route_touches_it() -> None:
    """Given the usual routes, then the network goes on 10.213.77.0/24, well away from podman's 10.88.0.0/16."""
    assert free_subnet(parse_routes(ROUTES)) == IPv4Network("10.213.77.0/24")


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("10.213.77.0/24", "10.213.78.0/24"),  # the same /24 is taken
        ("10.213.77.128/25", "10.213.78.0/24"),  # a route inside the candidate
        ("10.213.76.0/23", "10.213.78.0/24"),  # a broader route covering it
        ("10.213.64.0/20", "10.213.80.0/24"),  # a much broader one covers 77 to 79
    ],
)
def test_free_subnet_skips_every_24_a_host_route_overlaps(route: str, expected: str) -> None:
    """Given a route that overlaps 10.213.77.0/24 in some way, then the next /24 it leaves free is chosen."""
    assert free_subnet([IPv4Network(route)]) == IPv4Network(expected)


def test_free_subnet_fails_when_the_whole_pool_is_routed() -> None:
    """Given a route over all of 10.213.0.0/16, then there is no subnet to take and the error says so."""
    with pytest.raises(RuntimeError, match=r"no /24 of 10\.213\.0\.0/16"):
        free_subnet([IPv4Network("10.0.0.0/8")])


def test_containers_conf_lifts_the_pids_limit_only_when_asked() -> None:
    """Given the fresh machine's limits, then containers.conf sets them and lifts the pids limit; given the
    defaults (tests/deploy), then podman's pids limit stays."""
    fresh = containers_conf(Path("/run/x"), nofile=65536, nproc=32768, pids_limit=0).splitlines()
    default = containers_conf(Path("/run/x"), nofile=16384, nproc=4096).splitlines()
    assert fresh[1:3] == ['default_ulimits = ["nofile=65536:65536", "nproc=32768:32768"]', "pids_limit = 0"]
    assert [line for line in default if "pids_limit" in line] == []


def test_only_proxy_and_ca_variables_reach_the_container() -> None:
    """Given a host environment, then only proxy and CA variables pass, beside an empty nested podman root."""
    host = {"https_proxy": "http://proxy:3128", "SSL_CERT_FILE": "/ca.pem", "HOME": "/root", "PATH": "/bin"}
    assert passed_env(host) == {
        "https_proxy": "http://proxy:3128",
        "SSL_CERT_FILE": "/ca.pem",
        "PUNCHCLOCK_PODMAN_ROOT": "/var/cache/punchclock/podman",
        "DEBIAN_FRONTEND": "noninteractive",
    }


@pytest.mark.parametrize(
    "line",
    [
        "==== 412 passed, 3 skipped in 312.45s (0:05:12) ====",
        "= 1 failed, 10 passed, 2 errors in 1.00s =",
        "===== 5 deselected, 1 xfailed in 0.12s =====",
        "============ no tests ran in 0.01s ============",
    ],
)
def test_closing_line_matches_pytest_summaries(line: str) -> None:
    """Given a pytest summary line amid make's output, then it is the closing line found."""
    assert closing_line(["make: entering", f"  {line}  ", "make: leaving"]) == line


def test_closing_line_is_the_last_summary_and_ignores_other_banners() -> None:
    """Given section banners and two summaries (a sub-run, then the whole run), then the last summary is
    returned; given banners only, then there is none."""
    log = [
        "============ test session starts ============",
        "==== 2 passed in 0.50s ====",
        "=========== short test summary info ===========",
        "==== 1 failed, 411 passed in 300.00s (0:05:00) ====",
    ]
    assert closing_line(log) == "==== 1 failed, 411 passed in 300.00s (0:05:00) ===="
    assert closing_line(log[:1] + log[2:3]) is None
