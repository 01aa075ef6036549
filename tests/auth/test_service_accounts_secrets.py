"""The ``ecloud_`` token format: length, alphabet, checksum."""

from __future__ import annotations

from services.auth.ids import BASE62
from services.auth.sa_secrets import (
    CHECKSUM_LENGTH,
    RANDOM_LENGTH,
    TOKEN_LENGTH,
    is_well_formed,
    new_secret,
)


def test_new_secrets_are_well_formed_and_distinct() -> None:
    secrets = {new_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        assert secret.startswith("ecloud_")
        assert len(secret) == TOKEN_LENGTH == 7 + RANDOM_LENGTH + CHECKSUM_LENGTH
        assert set(secret[7:]) <= set(BASE62)
        assert is_well_formed(secret)
    # At least 32 random bytes.
    assert 62**RANDOM_LENGTH >= 2**256


def test_every_single_character_typo_is_caught() -> None:
    secret = new_secret()
    for i in range(7, len(secret)):
        for replacement in ("0", "z", "Q"):
            if secret[i] == replacement:
                continue
            assert not is_well_formed(secret[:i] + replacement + secret[i + 1 :]), i


def test_malformed_shapes() -> None:
    secret = new_secret()
    assert not is_well_formed(secret[:-1])
    assert not is_well_formed(secret + "a")
    assert not is_well_formed("ECLOUD_" + secret[7:])
    assert not is_well_formed(secret[:20] + "-" + secret[21:])
    assert not is_well_formed("")
