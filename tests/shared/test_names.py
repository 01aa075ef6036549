"""The OCI name, tag and digest grammars."""

from __future__ import annotations

import hashlib

import pytest

from shared.names import (
    Digest,
    DigestError,
    is_valid_name,
    is_valid_tag,
    is_valid_username,
    namespace_of,
    parse_digest,
)


@pytest.mark.parametrize(
    "name", ["alice/app", "a/b/c", "alice/my.app", "alice/my_app", "alice/my__app", "al-ice/x--y"]
)
def test_valid_names(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Alice/app",
        "alice/../x",
        "alice//x",
        "/alice",
        "alice/",
        "alice/.x",
        "alice/x.",
        "alice/x___y",
        "a" * 256,
        "alice/a:b",
        "alice/a@b",
    ],
)
def test_invalid_names(name: str) -> None:
    assert not is_valid_name(name)


def test_name_length_limit_is_255() -> None:
    assert is_valid_name("a/" + "b" * 253)
    assert not is_valid_name("a/" + "b" * 254)


def test_namespace() -> None:
    assert namespace_of("alice/app/x") == "alice"
    assert namespace_of("alice") is None
    assert namespace_of("Alice/app") is None


def test_usernames() -> None:
    assert is_valid_username("alice") and is_valid_username("a.b-c_d")
    for bad in ["a", "Alice", "a/b", "-a", "a" * 65, ""]:
        assert not is_valid_username(bad)


def test_tags() -> None:
    assert is_valid_tag("latest") and is_valid_tag("v1.0.0-rc_1") and is_valid_tag("_x")
    for bad in ["", ".x", "-x", "a" * 129, "a/b", "a:b"]:
        assert not is_valid_tag(bad)
    assert is_valid_tag("a" * 128)


def test_digests() -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert parse_digest(f"sha256:{sha}") == Digest("sha256", sha)
    sha512 = hashlib.sha512(b"x").hexdigest()
    assert str(parse_digest(f"sha512:{sha512}")) == f"sha512:{sha512}"
    assert Digest.of_bytes(b"x") == Digest("sha256", sha)
    for bad in [
        "",
        "sha256",
        f"sha256:{sha[:-1]}",
        f"sha256:{sha.upper()}",
        f"md5:{sha}",
        f"sha512:{sha}",
        "sha256:../../etc",
        f"SHA256:{sha}",
    ]:
        with pytest.raises(DigestError):
            parse_digest(bad)
