"""Fixtures for the storage tests: the S3 emulator and drivers on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.registry.settings import S3Settings
from services.registry.storage.s3 import S3Driver
from tests.registry.storage.s3_emulator import REGION, Emulator, start_emulator


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = start_emulator(tmp_path_factory.mktemp("moto"))
    yield emulator
    emulator.stop()


def s3_settings(emulator: Emulator, secret: str | None = None) -> S3Settings:
    return S3Settings(
        endpoint=emulator.endpoint,
        region=REGION,
        access_key_id=emulator.access_key_id,
        secret_access_key=secret or emulator.secret_access_key,
    )


@pytest.fixture
def s3_driver(s3_emulator: Emulator) -> S3Driver:
    """A driver on a fresh bucket, under a prefix (so keys outside it must stay untouched)."""
    bucket = s3_emulator.create_bucket()
    return S3Driver.from_url(f"s3://{bucket}/tenant/prefix", s3_settings(s3_emulator))
