"""One typed settings object, read from the environment once at start-up and passed in everywhere."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///punchclock.db"
# Passwords that ship in examples and images; production refuses them.
WELL_KNOWN_PASSWORDS = frozenset({"postgres", "password", "changeme", "punchclock", "secret", "admin"})
# Query parameters of a PostgreSQL URL that carry a secret; redaction hides their values.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
# The only sslmode that protects against a man in the middle: the server's certificate is checked against
# sslrootcert and its name against the host. libpq's and asyncpg's default, prefer, checks neither.
VERIFIED_SSLMODE = "verify-full"


class CommitMode(StrEnum):
    GROUP = "group"  # concurrent POSTs share one transaction
    PER_REQUEST = "per-request"  # one transaction per POST, kept for comparison


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    AUTO = "auto"  # console on a terminal, JSON otherwise
    JSON = "json"  # one JSON object per line
    CONSOLE = "console"  # structlog's readable lines


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
    # TLS to PostgreSQL, added to the URL unless it names them itself (CloudNativePG's secret has neither).
    db_sslmode: str | None = Field(default=None, validation_alias="DB_SSLMODE")
    db_sslrootcert: Path | None = Field(default=None, validation_alias="DB_SSLROOTCERT")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535, validation_alias="PORT")
    workers: int = Field(default=1, ge=1, le=64)
    environment: Environment = Field(default=Environment.DEVELOPMENT, validation_alias="PUNCHCLOCK_ENV")

    commit_mode: CommitMode = CommitMode.GROUP
    batch_max: int = Field(default=512, ge=1, le=10_000)
    queue_max: int = Field(default=10_000, ge=1)
    writers: int = Field(default=2, ge=1, le=32, description="batches committed concurrently")
    pool_size: int = Field(default=4, ge=1, le=200)

    # Above the slowest failover measured on the Patroni cluster (ttl 20): see docs/ha.md. Kubernetes sets its own.
    failover_budget_seconds: Seconds = 40.0
    ready_timeout_seconds: Seconds = 1.0
    startup_wait_seconds: Seconds = 30.0
    drain_delay_seconds: Seconds = 0.0
    drain_seconds: Seconds = 10.0
    keepalive_seconds: int = Field(default=65, ge=1)
    max_body_bytes: int = Field(default=1024, ge=0)
    # Limits at the edge of the instance (punchclock.edge): what one client can hold of it.
    max_header_bytes: int = Field(default=16_384, ge=1024, description="request line plus headers, else 431")
    max_headers: int = Field(default=100, ge=1, description="header fields in one request, else 431")
    header_timeout_seconds: float = Field(default=10.0, gt=0, description="to receive a request's headers")
    body_timeout_seconds: float = Field(default=10.0, gt=0, description="to receive its body after the headers")
    max_connections: int = Field(default=1000, ge=1, description="open connections before 503 + Retry-After")
    migrate_on_start: bool | None = None

    access_log: bool = True
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.AUTO
    # https://no-color.org: present and not empty turns colours off, whatever its value.
    no_color: str = Field(default="", validation_alias="NO_COLOR")

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
                raise ValueError(
                    f"PUNCHCLOCK_WORKERS={self.workers} with PUNCHCLOCK_ENV=production: SQLite is single-writer; "
                    "run one worker, or use PostgreSQL"
                )
            if _password(self.dsn) in WELL_KNOWN_PASSWORDS:
                source = (
                    "DATABASE_URL" if "database_url" in self.model_fields_set or not self.db_host else "DB_PASSWORD"
                )
                raise ValueError(
                    f"{source}: the database password is a well-known default, refused with "
                    "PUNCHCLOCK_ENV=production; set a real secret"
                )
            if not self.is_sqlite and not _over_unix_socket(self.dsn):
                sslmode = _parameters(self.dsn).get("sslmode")
                if sslmode != VERIFIED_SSLMODE:
                    raise ValueError(
                        f"sslmode={sslmode or 'unset (prefer)'} with PUNCHCLOCK_ENV=production: a man in the middle "
                        f"could read and change every stamp; set DB_SSLMODE={VERIFIED_SSLMODE} and DB_SSLROOTCERT "
                        "(or put them in DATABASE_URL), or connect over a Unix socket"
                    )
        return self

    @property
    def dsn(self) -> str:
        """The database URL: DATABASE_URL, or one built from the brief's DB_* variables when DB_HOST is set,
        with DB_SSLMODE and DB_SSLROOTCERT added where the URL does not say them itself."""
        url = self.database_url.get_secret_value()
        if self.db_host and "database_url" not in self.model_fields_set:
            password = self.db_password.get_secret_value() if self.db_password else ""
            auth = quote(self.db_username, safe="") + (":" + quote(password, safe="") if password else "")
            url = f"postgresql://{auth}@{self.db_host}:{self.db_port}/{quote(self.db_name, safe='')}"
        if url.startswith("sqlite:"):
            return url
        tls = {"sslmode": self.db_sslmode, "sslrootcert": str(self.db_sslrootcert) if self.db_sslrootcert else None}
        return _with_parameters(url, {key: value for key, value in tls.items() if value})

    @property
    def is_sqlite(self) -> bool:
        return self.dsn.startswith("sqlite:")

    @property
    def should_migrate_on_start(self) -> bool:
        return self.is_sqlite if self.migrate_on_start is None else self.migrate_on_start


class SettingsError(ValueError):
    """The environment holds settings punchclock cannot use. The message is one line that names each
    variable as the user set it, e.g. ``PUNCHCLOCK_WORKERS=100: must be at most 64``."""


def load_settings() -> Settings:
    """Read settings from the process environment; call once at start-up and pass the result in."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


# Secrets are named in errors, never shown.
_SECRET_VARIABLES = frozenset({"DATABASE_URL", "DB_PASSWORD"})
_BOUNDS = {
    "less_than_equal": "at most",
    "less_than": "below",
    "greater_than_equal": "at least",
    "greater_than": "above",
}
_REASONS = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false (also 1/0, yes/no, on/off)",
}


def _variable(location: str) -> str:
    """The environment variable behind a field name or alias, as pydantic reports it in an error."""
    field = Settings.model_fields.get(location)
    if field is None:
        return location  # already an alias: DATABASE_URL, PORT, DB_*, PUNCHCLOCK_ENV
    alias = field.validation_alias
    return alias if isinstance(alias, str) else f"{Settings.model_config.get('env_prefix', '')}{location}".upper()


def _describe(exc: ValidationError) -> str:
    """One line for all of ``exc``'s errors: ``VARIABLE=value: what is wrong``, separated by ``; ``."""
    problems = []
    for error in exc.errors(include_url=False):
        reason = _reason(error["type"], error["msg"], error.get("ctx") or {})
        if not error["loc"]:  # a check across settings; its message names the variables itself
            problems.append(reason)
            continue
        name = _variable(str(error["loc"][0]))
        value = error.get("input")
        shown = name if name in _SECRET_VARIABLES or not isinstance(value, str | int | float) else f"{name}={value}"
        problems.append(f"{shown}: {reason}")
    return "; ".join(problems)


def _reason(kind: str, message: str, ctx: dict[str, Any]) -> str:
    """pydantic's message in the words of an environment variable's user."""
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()))
        shown = f"{limit:g}" if isinstance(limit, float) else str(limit)  # 0.0 reads as 0, 10000 stays 10000
        return f"must be {_BOUNDS[kind]} {shown}"
    if kind in _REASONS:
        return _REASONS[kind]
    if kind == "enum":
        return f"must be {ctx['expected']}"
    message = message.removeprefix("Value error, ")
    return message.replace("Input should be", "must be", 1)


def _split(dsn: str) -> tuple[str, str, str, str]:
    """``scheme://userinfo@hosts/path?query`` in four parts (userinfo and query may be empty). A PostgreSQL URL
    may list several ``host:port`` pairs, which ``urllib.parse.urlsplit`` cannot take apart, hence by hand."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return "", "", dsn, ""
    rest, _, query = rest.partition("?")
    location, _, path = rest.partition("/")
    userinfo, at, hosts = location.rpartition("@")
    return scheme, userinfo if at else "", hosts + ("/" + path if path or rest.endswith("/") else ""), query


def _parameters(dsn: str) -> dict[str, str]:
    return dict(parse_qsl(_split(dsn)[3], keep_blank_values=True))


def _with_parameters(dsn: str, extra: dict[str, str]) -> str:
    """``dsn`` with the ``extra`` query parameters it does not set itself."""
    missing = {key: value for key, value in extra.items() if key not in _parameters(dsn)}
    if not missing:
        return dsn
    return dsn + ("&" if "?" in dsn else "?") + urlencode(missing)


def _password(dsn: str) -> str | None:
    """The password in the URL's userinfo or its ``password`` query parameter."""
    userinfo = _split(dsn)[1]
    if ":" in userinfo:
        return unquote(userinfo.partition(":")[2])
    return _parameters(dsn).get("password")


def _over_unix_socket(dsn: str) -> bool:
    """The URL reaches the server through a socket directory (``host=/run/postgresql`` or ``%2Frun...``)."""
    host = _parameters(dsn).get("host") or unquote(_split(dsn)[2].partition("/")[0])
    return host.startswith("/")


def redact(dsn: str) -> str:
    """The URL with its password hidden, in the userinfo and in ``password``/``sslpassword`` query parameters,
    safe for logs and error messages."""
    scheme, userinfo, location, query = _split(dsn)
    if not scheme:
        return dsn
    if ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    pairs = [
        (key, "***" if key in SECRET_PARAMETERS else value) for key, value in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{scheme}://{userinfo + '@' if userinfo else ''}{location}" + (
        f"?{urlencode(pairs, safe='*/')}" if pairs else ""
    )
