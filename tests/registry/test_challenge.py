"""The ``WWW-Authenticate`` challenge: every parameter escaped, whatever it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.registry.auth import challenge, quoted_string
from services.registry.settings import RegistrySettings
from tests.registry.challenges import parse_challenge


@pytest.fixture
def settings(tmp_path: Path) -> RegistrySettings:
    return RegistrySettings.from_env(
        {"ECLOUD_DATA_DIR": str(tmp_path), "ECLOUD_AUTH_URL": "https://auth.example"}
    )


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("repository:a/b:pull", '"repository:a/b:pull"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a\r\nb", '"a%0D%0Ab"'),
        ("a\x00b\x7f", '"a%00b%7F"'),
        ("café", '"caf%C3%A9"'),
        (" ~!", '" ~!"'),  # the ends of printable ASCII stay as they are
    ],
)
def test_quoted_string(value: str, quoted: str) -> None:
    assert quoted_string(value) == quoted


def test_a_forged_scope_stays_one_parameter(settings: RegistrySettings) -> None:
    forged = 'repository:a/b",realm="https://evil.example/token",x="'
    params = parse_challenge(challenge(settings, forged, "insufficient_scope"))
    assert params == {
        "realm": "https://auth.example/v2/token",
        "service": "registry",
        "scope": forged,
        "error": "insufficient_scope",
    }


def test_several_scopes_in_one_parameter(settings: RegistrySettings) -> None:
    value = challenge(settings, "repository:a/t:pull,push repository:a/s:pull")
    assert value == (
        'Bearer realm="https://auth.example/v2/token",service="registry",'
        'scope="repository:a/t:pull,push repository:a/s:pull"'
    )


def test_no_scope_and_no_error_name_only_realm_and_service(settings: RegistrySettings) -> None:
    expected = 'Bearer realm="https://auth.example/v2/token",service="registry"'
    assert challenge(settings) == expected
    assert challenge(settings, "", "") == expected
    assert challenge(settings, None, "invalid_token") == expected + ',error="invalid_token"'
