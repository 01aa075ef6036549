"""Settings parsing, and how the commands report a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.auth.settings import AuthSettings
from services.registry.settings import RegistrySettings
from shared.settings import SettingsError, env_int, env_list, env_url, url_origin


def test_env_int_and_list() -> None:
    assert env_int({}, "X", 5) == 5
    assert env_int({"X": ""}, "X", 5) == 5
    assert env_int({"X": "7"}, "X", 5) == 7
    with pytest.raises(SettingsError, match="X must be an integer"):
        env_int({"X": "seven"}, "X", 5)
    with pytest.raises(SettingsError, match="at least 60"):
        env_int({"X": "10"}, "X", 300, minimum=60)
    assert env_list(" a, ,b ,") == ("a", "b")
    assert env_list(None) == ()


def test_defaults_run_on_a_laptop(tmp_path: Path) -> None:
    auth = AuthSettings.from_env({"ECLOUD_DATA_DIR": str(tmp_path)})
    registry = RegistrySettings.from_env({"ECLOUD_DATA_DIR": str(tmp_path)})
    assert auth.database_url == f"sqlite:///{tmp_path}/auth.db"
    assert auth.signing_key_file == tmp_path / "signing-key.pem"
    assert registry.database_url == f"sqlite:///{tmp_path}/registry.db"
    assert registry.storage_url == f"file://{tmp_path}/storage"
    assert registry.token_realm == "http://127.0.0.1:5001/v2/token"
    assert registry.jwks_url == "http://127.0.0.1:5001/.well-known/jwks.json"
    assert auth.service == registry.service == "registry"


@pytest.mark.parametrize(
    ("command", "env"),
    [
        ("ecloud-auth", {"ECLOUD_TOKEN_TTL": "soon"}),
        ("ecloud-auth", {"ECLOUD_RATE_LIMIT_FAILURES": "lots"}),
        ("ecloud-registry", {"ECLOUD_GC_INTERVAL": "daily"}),
        ("ecloud-registry", {"ECLOUD_STORAGE_URL": "ftp://nowhere"}),
        ("ecloud-registry", {"ECLOUD_REGISTRY_URL": "registry.example.com"}),
        ("ecloud-auth", {"ECLOUD_REGISTRY_URL": "https://registry.example.com:port"}),
    ],
)
def test_bad_settings_end_in_one_error_line(
    tmp_path: Path, command: str, env: dict[str, str]
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ECLOUD_")}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [str(Path(sys.executable).parent / command), "serve", "--port", "1"],
        env={**clean, **env, "ECLOUD_DATA_DIR": str(tmp_path), "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout


def test_env_url() -> None:
    default = "http://127.0.0.1:5000"
    assert env_url({}, "U", default) == default
    assert env_url({"U": "https://registry.example.com/"}, "U", default) == (
        "https://registry.example.com"
    )
    for bad in (
        "registry.example.com",
        "ftp://registry.example.com",
        "https://",
        "https://registry.example.com:port",
        "https://user:pw@registry.example.com",
        "https://registry.example.com/?x=1",
    ):
        with pytest.raises(SettingsError, match="U must be"):
            env_url({"U": bad}, "U", default)


def test_url_origin() -> None:
    assert url_origin("https://Registry.Example.com:443/ui/") == "https://registry.example.com"
    assert url_origin("http://127.0.0.1:80") == "http://127.0.0.1"
    assert url_origin("http://127.0.0.1:5000/x") == "http://127.0.0.1:5000"
    assert url_origin("https://[::1]:8443") == "https://[::1]:8443"


def test_the_registry_dashboard_origin_is_allowed_by_the_auth_service(tmp_path: Path) -> None:
    env = {"ECLOUD_DATA_DIR": str(tmp_path)}
    auth = AuthSettings.from_env(env)
    registry = RegistrySettings.from_env(env)
    assert auth.registry_url == registry.registry_url == "http://127.0.0.1:5000"
    assert auth.allowed_origins == ("http://127.0.0.1:5000",)
    auth = AuthSettings.from_env(
        {
            **env,
            "ECLOUD_REGISTRY_URL": "https://registry.example.com/",
            "ECLOUD_CORS_ORIGINS": "https://cloud.example.com",
        }
    )
    assert auth.allowed_origins == ("https://cloud.example.com", "https://registry.example.com")
