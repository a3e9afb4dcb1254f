"""The manifests' configuration and punchclock's settings agree: every ConfigMap key is a setting punchclock
reads, and with the operator's Secret mounted the app would connect to the <cluster>-rw Service."""

from __future__ import annotations

from pathlib import Path

import pytest

from punchclock.settings import Settings, load_settings
from punchclock_tools.manifests import OVERLAYS, Manifest, one

OPERATOR_URI = "postgresql://punchclock:s3cret@punchclock-db-rw.punchclock.svc:5432/punchclock"


def setting_names() -> set[str]:
    prefix = Settings.model_config.get("env_prefix", "")
    return {str(field.validation_alias or f"{prefix}{name}".upper()) for name, field in Settings.model_fields.items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_config_key_is_a_punchclock_setting(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """No ConfigMap key is misspelt or unknown to punchclock (unknown ones would be ignored silently)."""
    config = one(rendered[overlay], "ConfigMap")["data"]
    assert set(config) - setting_names() == set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_load_from_the_config_and_the_operator_secret(
    rendered: dict[str, list[Manifest]], overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the ConfigMap and the Secret's `uri` file, punchclock uses that URI, verified against the mounted
    CloudNativePG CA, and leaves migrations to the Job."""
    config = dict(one(rendered[overlay], "ConfigMap")["data"])
    secret = tmp_path / "uri"
    secret.write_text(OPERATOR_URI + "\n")
    config["DATABASE_URL_FILE"] = str(secret)
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    ca = "%2Fvar%2Frun%2Fsecrets%2Fpunchclock%2Fdb-ca%2Fca.crt"
    assert settings.dsn == f"{OPERATOR_URI}?sslmode=verify-full&sslrootcert={ca}"
    assert settings.host == "0.0.0.0"  # noqa: S104 - the pod's own network namespace
    assert settings.port == 8000
    assert settings.should_migrate_on_start is False
