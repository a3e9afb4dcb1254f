"""The blackbox probe of the public endpoint, for real: HAProxy terminates TLS in front of a punchclock instance,
Debian's blackbox exporter probes it with the production module, and Prometheus (the production probe rules,
shortened by code) fires the certificate alerts on a certificate two days from expiry and the endpoint alert once
HAProxy is gone; both resolve or stay as the endpoint does."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from punchclock_tools import process
from punchclock_tools.http import wait_until_ready
from punchclock_tools.monitoring import blackbox, daemon, prometheus, rules
from punchclock_tools.monitoring.alerts import matching, wait_firing, wait_resolved
from punchclock_tools.ports import free_port
from punchclock_tools.postgres import Tls
from tests.monitoring.conftest import SCRAPE, SHORTENING

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
MODULE = "punchclock_https"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in (blackbox.BINARY, prometheus.BINARY, "haproxy", "openssl")),
    reason="needs prometheus, prometheus-blackbox-exporter, haproxy and openssl (make test installs them)",
)


def test_blackbox_config_passes_its_check() -> None:
    """The exporter accepts the probe modules, with no deprecation warning."""
    proc = blackbox.check_config(MONITORING / "blackbox.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "level=warn" not in proc.stdout + proc.stderr


def haproxy_tls(workdir: Path, tls: Tls, backend: str, port: int) -> list[str]:
    """A TLS-terminating HAProxy (Debian's 2.6) in front of ``backend``: its command line, config written."""
    pem = workdir / "haproxy.pem"
    pem.write_text(tls.server_cert.read_text() + tls.server_key.read_text())
    pem.chmod(0o600)
    config = workdir / "haproxy.cfg"
    config.write_text(
        f"""global
    log stderr format raw local0
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend public
    bind 127.0.0.1:{port} ssl crt {pem}
    default_backend app
backend app
    server app1 {backend.removeprefix("http://")}
"""
    )
    return [shutil.which("haproxy") or "haproxy", "-db", "-f", str(config)]


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[str, Tls, list[str]]]:
    """https://127.0.0.1:<port> served by HAProxy with a certificate valid two days, punchclock (SQLite) behind it;
    yields the URL, the certificates and HAProxy's command line (started once here)."""
    tls = Tls.make(tmp_path / "tls")
    with process.serving_on(f"sqlite:///{tmp_path / 'stamps.db'}", tmp_path / "punchclock.log") as (app_url, app):
        wait_until_ready(app_url, app)
        port = free_port()
        argv = haproxy_tls(tmp_path, tls, app_url, port)
        yield f"https://127.0.0.1:{port}", tls, argv


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_probe_fires_certificate_and_endpoint_alerts(endpoint: tuple[str, Tls, list[str]], tmp_path: Path) -> None:
    """A certificate two days from expiry fires the 14-day warning and the 3-day page; HAProxy stopped fires
    PunchclockEndpointDown; HAProxy back resolves it."""
    url, tls, haproxy_argv = endpoint
    # Given the production probe module, trusting the test's private CA as a real host trusts a public one
    config = yaml.safe_load((MONITORING / "blackbox.yml").read_text())
    config["modules"][MODULE]["http"]["tls_config"]["ca_file"] = str(tls.ca_cert)
    (tmp_path / "blackbox.yml").write_text(yaml.safe_dump(config))
    files = rules.write_shortened([MONITORING / "rules" / "probe.yml"], tmp_path / "rules", SHORTENING)
    haproxy = daemon.spawn(haproxy_argv, tmp_path / "haproxy.log")
    try:
        with blackbox.running(tmp_path, tmp_path / "blackbox.yml") as exporter:
            job = blackbox.scrape_job(exporter, [f"{url}/healthz"], MODULE)
            document = prometheus.config({}, files, SCRAPE, extra_scrape_configs=[job])
            with prometheus.running(tmp_path / "prometheus", document) as prom:
                # Then the probe succeeds, and sees the certificate's expiry two days ahead
                prom.wait_all_up(30)
                deadline = time.monotonic() + 30
                while not prom.query('probe_success{job="blackbox"} == 1'):
                    assert time.monotonic() < deadline, prom.query("probe_success")
                    time.sleep(0.5)
                left = float(prom.query('probe_ssl_earliest_cert_expiry{job="blackbox"} - time()')[0]["value"][1])
                assert 0 < left < 2 * 86400 + 60, left
                # and both certificate alerts fire, the endpoint alert does not
                wait_firing(prom, "PunchclockCertificateExpiresSoon", 90)
                wait_firing(prom, "PunchclockCertificateExpiryImminent", 90)
                assert matching(prom, "PunchclockEndpointDown") == []
                # When HAProxy stops, then the endpoint alert pages
                daemon.stop(haproxy)
                _, alert = wait_firing(prom, "PunchclockEndpointDown", 60)
                assert alert["labels"]["instance"] == f"{url}/healthz"
                # When it is back, then the endpoint alert resolves
                haproxy = daemon.spawn(haproxy_argv, tmp_path / "haproxy.log")
                wait_resolved(prom, "PunchclockEndpointDown", 60)
    finally:
        daemon.stop(haproxy)
