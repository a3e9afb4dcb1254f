"""Settings: the environment is read once, the brief's variables still work, secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from punchclock.settings import CommitMode, SettingsError, load_settings, redact


def test_defaults_serve_sqlite_on_port_8000(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing set, punchclock uses an embedded SQLite file and port 8000."""
    for name in ("DATABASE_URL", "DB_HOST", "PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.dsn, settings.port, settings.is_sqlite) == ("sqlite:///punchclock.db", 8000, True)
    assert settings.commit_mode is CommitMode.GROUP
    assert settings.should_migrate_on_start


def test_brief_variables_build_a_postgres_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """DB_HOST, DB_PORT, DB_USERNAME, DB_PASSWORD, DB_NAME and PORT from the original brief still work."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for name, value in {
        "DB_HOST": "db.internal",
        "DB_PORT": "6432",
        "DB_USERNAME": "app",
        "DB_PASSWORD": "p@ss:w/rd",
        "DB_NAME": "stamps",
        "PORT": "9000",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.dsn == "postgresql://app:p%40ss%3Aw%2Frd@db.internal:6432/stamps"
    assert settings.port == 9000
    assert not settings.should_migrate_on_start


def test_secrets_come_from_files_and_never_from_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """DATABASE_URL_FILE is read, and neither repr() nor redact() shows the password."""
    secret = tmp_path / "url"
    secret.write_text("postgresql://app:hunter2@db:5432/punchclock\n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret))
    settings = load_settings()
    assert settings.dsn == "postgresql://app:hunter2@db:5432/punchclock"
    assert "hunter2" not in repr(settings)
    assert redact(settings.dsn) == "postgresql://app:***@db:5432/punchclock"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A nonsense setting stops start-up with a message naming the variable, its value and what it may be."""
    monkeypatch.setenv("PUNCHCLOCK_COMMIT_MODE", "sometimes")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == "PUNCHCLOCK_COMMIT_MODE=sometimes: must be 'group' or 'per-request'"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PUNCHCLOCK_WORKERS": "100"}, "PUNCHCLOCK_WORKERS=100: must be at most 64"),
        ({"PUNCHCLOCK_WORKERS": "0"}, "PUNCHCLOCK_WORKERS=0: must be at least 1"),
        ({"PUNCHCLOCK_DRAIN_SECONDS": "-1"}, "PUNCHCLOCK_DRAIN_SECONDS=-1: must be at least 0"),
        ({"PUNCHCLOCK_ACCESS_LOG": "maybe"}, "PUNCHCLOCK_ACCESS_LOG=maybe: must be true or false"),
        ({"PUNCHCLOCK_ENV": "staging"}, "PUNCHCLOCK_ENV=staging: must be 'development' or 'production'"),
        ({"PUNCHCLOCK_LOG_FORMAT": "pretty"}, "PUNCHCLOCK_LOG_FORMAT=pretty: must be 'auto', 'json' or 'console'"),
        ({"PORT": "http"}, "PORT=http: must be a whole number"),
        ({"PORT": "70000"}, "PORT=70000: must be at most 65535"),
        ({"DB_HOST": "db", "DB_PORT": "x"}, "DB_PORT=x: must be a whole number"),
    ],
)
def test_errors_name_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    """A refused value is reported as VARIABLE=value as the user set it, never as pydantic's field name."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_several_errors_make_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refused variable is named, on one line."""
    monkeypatch.setenv("PUNCHCLOCK_WORKERS", "100")
    monkeypatch.setenv("PUNCHCLOCK_BATCH_MAX", "lots")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "PUNCHCLOCK_WORKERS=100: must be at most 64; PUNCHCLOCK_BATCH_MAX=lots: must be a whole number"
    )


def test_production_refuses_several_sqlite_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite has one writer, so production refuses more than one worker on it."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PUNCHCLOCK_ENV", "production")
    monkeypatch.setenv("PUNCHCLOCK_WORKERS", "4")
    with pytest.raises(SettingsError, match=r"^PUNCHCLOCK_WORKERS=4 with PUNCHCLOCK_ENV=production: SQLite"):
        load_settings()


def test_production_refuses_a_well_known_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside development, a default password such as 'postgres' stops start-up; development allows it."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:postgres@db:5432/punchclock")
    assert load_settings().dsn.endswith("@db:5432/punchclock")
    monkeypatch.setenv("PUNCHCLOCK_ENV", "production")
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: the database password is a well-known default") as caught:
        load_settings()
    assert "postgres@db" not in str(caught.value)


def test_a_well_known_db_password_is_named_as_db_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the brief's DB_* variables, the refusal names DB_PASSWORD, and never shows it."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_HOST", "db")
    monkeypatch.setenv("DB_PASSWORD", "changeme")
    monkeypatch.setenv("PUNCHCLOCK_ENV", "production")
    with pytest.raises(SettingsError, match=r"^DB_PASSWORD: the database password is a well-known default") as caught:
        load_settings()
    assert "changeme" not in str(caught.value)


def test_production_refuses_a_well_known_password_in_the_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """A default password given as ``?password=`` is refused like one in the userinfo, and never shown."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db:5432/punchclock?password=postgres&sslmode=verify-full")
    monkeypatch.setenv("PUNCHCLOCK_ENV", "production")
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: the database password is a well-known default") as caught:
        load_settings()
    assert "password=postgres" not in str(caught.value)


@pytest.mark.parametrize("sslmode", [None, "disable", "prefer", "require", "verify-ca"])
def test_production_refuses_tls_weaker_than_verify_full(monkeypatch: pytest.MonkeyPatch, sslmode: str | None) -> None:
    """Over TCP, production starts only with sslmode=verify-full; development takes the URL as it is."""
    url = "postgresql://app:s3cr3t-enough@db:5432/punchclock" + (f"?sslmode={sslmode}" if sslmode else "")
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_settings().dsn == url
    monkeypatch.setenv("PUNCHCLOCK_ENV", "production")
    with pytest.raises(SettingsError, match=f"^sslmode={sslmode or 'unset'}.* set DB_SSLMODE=verify-full"):
        load_settings()


def test_db_sslmode_and_sslrootcert_complete_a_url_that_lacks_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """DB_SSLMODE and DB_SSLROOTCERT are added to DATABASE_URL (CloudNativePG's has neither), never over it."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cr3t-enough@db-rw:5432/punchclock")
    monkeypatch.setenv("DB_SSLMODE", "verify-full")
    monkeypatch.setenv("DB_SSLROOTCERT", "/etc/punchclock/db-ca/ca.crt")
    monkeypatch.setenv("PUNCHCLOCK_ENV", "production")
    assert load_settings().dsn == (
        "postgresql://app:s3cr3t-enough@db-rw:5432/punchclock?sslmode=verify-full"
        "&sslrootcert=%2Fetc%2Fpunchclock%2Fdb-ca%2Fca.crt"
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cr3t-enough@db-rw/punchclock?sslmode=verify-full&x=1")
    assert load_settings().dsn.endswith("?sslmode=verify-full&x=1&sslrootcert=%2Fetc%2Fpunchclock%2Fdb-ca%2Fca.crt")


def test_production_accepts_a_unix_socket_without_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket directory is not a network path: production needs no TLS there."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cr3t-enough@/punchclock?host=/run/postgresql")
    monkeypatch.setenv("PUNCHCLOCK_ENV", "production")
    assert load_settings().dsn.endswith("?host=/run/postgresql")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:p%40ss@h1:5432,h2:5433/db", "postgresql://app:***@h1:5432,h2:5433/db"),
        (
            "postgresql://app@db/db?password=hunter2&sslmode=verify-full",
            "postgresql://app@db/db?password=***&sslmode=verify-full",
        ),
        (
            "postgresql://db/db?sslpassword=k3y&sslrootcert=/ca.crt",
            "postgresql://db/db?sslpassword=***&sslrootcert=/ca.crt",
        ),
        ("postgresql://app@db/db", "postgresql://app@db/db"),
        ("sqlite:///punchclock.db", "sqlite:///punchclock.db"),
    ],
)
def test_redaction_hides_every_password_a_url_can_carry(url: str, shown: str) -> None:
    """redact() hides the userinfo password and the password and sslpassword query parameters."""
    assert redact(url) == shown
