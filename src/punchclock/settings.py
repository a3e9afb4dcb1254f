"""One typed settings object, read from the environment once at start-up and passed in everywhere."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///punchclock.db"
# Passwords that ship in examples and images; production refuses them.
WELL_KNOWN_PASSWORDS = frozenset({"postgres", "password", "changeme", "punchclock", "secret", "admin"})


class CommitMode(StrEnum):
    GROUP = "group"  # concurrent POSTs share one transaction
    PER_REQUEST = "per-request"  # one transaction per POST, kept for comparison


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


Seconds = Annotated[float, Field(ge=0)]


class Settings(BaseSettings):
    """Every knob punchclock has. Own settings take the ``PUNCHCLOCK_`` prefix; the original brief's
    ``PORT`` and ``DB_*`` variables and ``DATABASE_URL`` are read without it."""

    model_config = SettingsConfigDict(
        env_prefix="PUNCHCLOCK_", frozen=True, extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    database_url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL), validation_alias="DATABASE_URL", repr=False
    )
    db_host: str | None = Field(default=None, validation_alias="DB_HOST")
    db_port: int = Field(default=5432, validation_alias="DB_PORT")
    db_username: str = Field(default="punchclock", validation_alias="DB_USERNAME")
    db_password: SecretStr | None = Field(default=None, validation_alias="DB_PASSWORD", repr=False)
    db_name: str = Field(default="punchclock", validation_alias="DB_NAME")
    database_url_file: Path | None = Field(default=None, validation_alias="DATABASE_URL_FILE")
    db_password_file: Path | None = Field(default=None, validation_alias="DB_PASSWORD_FILE")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535, validation_alias="PORT")
    workers: int = Field(default=1, ge=1, le=64)
    environment: Environment = Field(default=Environment.DEVELOPMENT, validation_alias="PUNCHCLOCK_ENV")

    commit_mode: CommitMode = CommitMode.GROUP
    batch_max: int = Field(default=512, ge=1, le=10_000)
    queue_max: int = Field(default=10_000, ge=1)
    writers: int = Field(default=2, ge=1, le=32, description="batches committed concurrently")
    pool_size: int = Field(default=4, ge=1, le=200)

    failover_budget_seconds: Seconds = 20.0
    ready_timeout_seconds: Seconds = 1.0
    startup_wait_seconds: Seconds = 30.0
    drain_delay_seconds: Seconds = 0.0
    drain_seconds: Seconds = 10.0
    keepalive_seconds: int = Field(default=65, ge=1)
    max_body_bytes: int = Field(default=1024, ge=0)
    migrate_on_start: bool | None = None

    access_log: bool = True
    log_level: str = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``DATABASE_URL_FILE`` and ``DB_PASSWORD_FILE`` name files holding the secret (Kubernetes/Docker
        secrets); a value given directly wins."""
        if not isinstance(data, dict):
            return data
        for name in ("DATABASE_URL", "DB_PASSWORD"):
            path = data.get(f"{name}_FILE") or data.get(f"{name.lower()}_file")
            if path and not data.get(name) and not data.get(name.lower()):
                try:
                    data[name] = Path(path).read_text().strip()
                except OSError as exc:
                    raise ValueError(f"{name}_FILE names a file that cannot be read: {exc}") from None
        return data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            if self.is_sqlite and self.workers > 1:
                raise ValueError("SQLite is single-writer: run one worker, or use PostgreSQL")
            if _password(self.dsn) in WELL_KNOWN_PASSWORDS:
                raise ValueError("the database password is a well-known default; set a real secret")
        return self

    @property
    def dsn(self) -> str:
        """The database URL: DATABASE_URL, or one built from the brief's DB_* variables when DB_HOST is set."""
        url = self.database_url.get_secret_value()
        if self.db_host and "database_url" not in self.model_fields_set:
            password = self.db_password.get_secret_value() if self.db_password else ""
            auth = quote(self.db_username, safe="") + (":" + quote(password, safe="") if password else "")
            return f"postgresql://{auth}@{self.db_host}:{self.db_port}/{quote(self.db_name, safe='')}"
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.dsn.startswith("sqlite:")

    @property
    def should_migrate_on_start(self) -> bool:
        return self.is_sqlite if self.migrate_on_start is None else self.migrate_on_start


def load_settings() -> Settings:
    """Read settings from the process environment; call once at start-up and pass the result in."""
    return Settings()


def _password(dsn: str) -> str | None:
    auth = dsn.partition("://")[2].rpartition("@")[0]
    return unquote(auth.partition(":")[2]) if ":" in auth else None


def redact(dsn: str) -> str:
    """The DSN with any password replaced, safe for logs and error messages."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest:
        return dsn
    auth, _, hosts = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hosts}" if ":" in auth else dsn
