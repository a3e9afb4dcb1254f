"""The database exporters' settings, without a cluster: what each is told, where the monitoring role's password
lives, and the scrape jobs they become. tests/monitoring/test_live_alerts.py runs them against a real cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from punchclock_tools.cluster.layout import Node
from punchclock_tools.monitoring import exporters, node_exporter, postgres_exporter

NODE = Node("pg1", 5432, 8008, 61001, "/data", "/run", "/patroni.yml", "/pg1.log")


def test_password_file_is_private_from_creation_and_reused(tmp_path: Path) -> None:
    """The first read writes a new hex password to a 0600 file; the next returns the same one, not new."""
    path = tmp_path / postgres_exporter.PASSWORD_FILE
    first, new = postgres_exporter.read_or_create_password(path)
    assert (new, path.stat().st_mode & 0o777, len(first)) == (True, 0o600, 32)
    assert postgres_exporter.read_or_create_password(path) == (first, False)


def test_password_file_with_something_else_is_refused(tmp_path: Path) -> None:
    """A file that does not hold a generated password is not pasted into SQL."""
    path = tmp_path / postgres_exporter.PASSWORD_FILE
    path.write_text("x'; DROP ROLE postgres; --\n")
    with pytest.raises(ValueError, match="does not hold a generated password"):
        postgres_exporter.read_or_create_password(path)


def test_role_may_log_in_and_read_statistics_only() -> None:
    """The role's SQL grants pg_monitor and strips every other power."""
    sql = postgres_exporter.role_sql("0" * 32)
    assert f"GRANT pg_monitor TO {postgres_exporter.ROLE};" in sql
    for attribute in ("NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION", "NOBYPASSRLS", "LOGIN"):
        assert attribute in sql


def test_postgres_exporter_is_given_a_password_file_not_a_password(tmp_path: Path) -> None:
    """The exporter's environment names the node over loopback, the role and the password's file, and nothing of
    the caller's environment."""
    env = postgres_exporter.environment(NODE, tmp_path / "secret")
    assert env == {
        "PATH": env["PATH"],
        "DATA_SOURCE_URI": "127.0.0.1:5432/postgres?sslmode=disable",
        "DATA_SOURCE_USER": postgres_exporter.ROLE,
        "DATA_SOURCE_PASS_FILE": str(tmp_path / "secret"),
    }


def test_replacement_slots_query_keeps_the_built_in_names() -> None:
    """The replacement pg_replication_slots query exports the built-in labels and gauges the rules read."""
    slots = yaml.safe_load(postgres_exporter.QUERIES.read_text())["pg_replication_slots"]
    metrics = {name: spec["usage"] for item in slots["metrics"] for name, spec in item.items()}
    assert metrics == {"slot_name": "LABEL", "database": "LABEL", "active": "GAUGE", "pg_wal_lsn_diff": "GAUGE"}
    assert "pg_is_in_recovery()" in slots["query"]


def test_node_exporter_runs_the_filesystem_collector_only() -> None:
    """node_exporter starts with its defaults off and only the collector the rules and the dashboard read."""
    argv = node_exporter.argv("node_exporter", "127.0.0.1:1")
    assert [arg for arg in argv if arg.startswith("--collector.") and "." not in arg.removeprefix("--collector.")] == [
        "--collector.disable-defaults",
        "--collector.filesystem",
    ]
    assert "--web.listen-address=127.0.0.1:1" in argv


def test_scrape_configs_group_exporters_by_job_with_their_labels() -> None:
    """One scrape job per job name; each postgres target carries its node's scope and name."""
    found = [
        exporters.Exporter("postgres", "p", "127.0.0.1:1", 1, "/l", {"scope": "s", "name": "pg1"}),
        exporters.Exporter("postgres", "p", "127.0.0.1:2", 2, "/l", {"scope": "s", "name": "pg2"}),
        exporters.Exporter("node", "n", "127.0.0.1:3", 3, "/l"),
    ]
    assert exporters.scrape_configs(found) == [
        {
            "job_name": "postgres",
            "static_configs": [
                {"targets": ["127.0.0.1:1"], "labels": {"scope": "s", "name": "pg1"}},
                {"targets": ["127.0.0.1:2"], "labels": {"scope": "s", "name": "pg2"}},
            ],
        },
        {"job_name": "node", "static_configs": [{"targets": ["127.0.0.1:3"]}]},
    ]
    timed = exporters.scrape_configs(found, interval="2s")
    assert [(job["scrape_interval"], job["scrape_timeout"]) for job in timed] == [("2s", "2s"), ("2s", "2s")]
