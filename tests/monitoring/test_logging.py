"""The log-shipping example works: rsyslog on the host parses a real punchclock process's JSON lines and a real
collector rsyslog writes them out, field for field. Both configurations are the production files with only the
paths and the collector's address replaced."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from punchclock_tools import process
from punchclock_tools.http import wait_until_ready
from punchclock_tools.monitoring import daemon
from punchclock_tools.ports import free_port

LOGGING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "logging"
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"

pytestmark = pytest.mark.skipif(not Path(RSYSLOGD).exists(), reason="rsyslog is not installed (make test installs it)")


def local_copy(name: str, workdir: Path, replace: dict[str, str]) -> Path:
    """``name`` with each key replaced (each must occur), behind the ``global()`` that Debian's rsyslog.conf sets."""
    text = (LOGGING / name).read_text()
    for old, new in replace.items():
        assert old in text, f"{name} no longer says {old!r}"
        text = text.replace(old, new)
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / name
    target.write_text(f'global(workDirectory="{workdir}")\n{text}')
    return target


@pytest.mark.parametrize("name", ["punchclock-ship.conf", "collector.conf"])
def test_rsyslog_accepts_the_config(name: str, tmp_path: Path) -> None:
    """rsyslogd -N1 validates the file (as a drop-in after Debian's main configuration)."""
    config = local_copy(name, tmp_path, {})
    proc = subprocess.run([RSYSLOGD, "-N1", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_json_lines_reach_the_collector_parsed(tmp_path: Path) -> None:
    """Given punchclock writing JSON lines to a file, when one stamp is recorded, then every line of its log arrives
    at the collector as a JSON object with the same fields, plus the host and program it came from."""
    logs, port = tmp_path / "punchclock", free_port()
    logs.mkdir()
    collected = tmp_path / "collected"
    collector = local_copy(
        "collector.conf",
        tmp_path / "collector",
        {"/var/log/punchclock-hosts/": f"{collected}/", 'port="10514"': f'port="{port}"'},
    )
    shipper = local_copy(
        "punchclock-ship.conf",
        tmp_path / "shipper",
        {"/var/log/punchclock/*.log": f"{logs}/*.log", "logs.example.internal": "127.0.0.1", '"10514"': f'"{port}"'},
    )
    started = [
        daemon.spawn(
            [RSYSLOGD, "-n", "-i", str(conf.parent / "rsyslogd.pid"), "-f", str(conf)], conf.parent / "out.log"
        )
        for conf in (collector, shipper)
    ]
    try:
        with process.serving_on(
            f"sqlite:///{tmp_path / 'stamps.db'}", logs / "app.log", PUNCHCLOCK_LOG_FORMAT="json"
        ) as (url, app):
            wait_until_ready(url, app)
            assert httpx.post(f"{url}/app", timeout=10).status_code == 201
            time.sleep(0.5)
            written = [json.loads(line) for line in (logs / "app.log").read_text().splitlines() if line.startswith("{")]
        assert len(written) >= 2, written  # the start-up lines and the POST's access log line at least
        deadline = time.monotonic() + 30
        arrived: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(arrived) < len(written):
            files = list(collected.glob("*.jsonl")) if collected.exists() else []
            arrived = [json.loads(line) for path in files for line in path.read_text().splitlines()]
            time.sleep(0.3)
    finally:
        for proc in started:
            daemon.stop(proc)
    assert [{k: v for k, v in line.items() if k not in ("host", "program")} for line in arrived] == written
    assert {line["program"] for line in arrived} == {"punchclock"}
