"""What the S3 driver does beyond the shared suite: its layout, multipart composition,
truncation of segments, isolation under its prefix, and failures of the backend."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from services.registry.settings import RegistrySettings, S3Settings
from services.registry.storage.base import PathNotFound, StorageUnavailable
from services.registry.storage.s3 import MIN_PART_SIZE, S3Driver
from tests.registry.storage.conftest import s3_settings
from tests.registry.storage.s3_emulator import Emulator

T = TypeVar("T")
MiB = 1024 * 1024


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def keys(emulator: Emulator, driver: S3Driver) -> list[str]:
    """Every key in the driver's bucket, as the bucket shows them."""
    listing = emulator.client().list_objects_v2(Bucket=driver.client.config.bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


async def read_all(driver: S3Driver, path: str) -> bytes:
    return b"".join([c async for c in driver.read(path)])


def test_layout_segments_then_one_object(s3_emulator: Emulator, s3_driver: S3Driver) -> None:
    async def go() -> None:
        writer = await s3_driver.writer("uploads/u/data")
        await writer.write(b"a" * 10)
        await writer.commit()
        writer = await s3_driver.writer("uploads/u/data", 10)
        await writer.write(b"b" * 5)
        await writer.commit()

    run(go())
    assert keys(s3_emulator, s3_driver) == [
        "tenant/prefix/uploads/u/data~seg/00000000000000000000",
        "tenant/prefix/uploads/u/data~seg/00000000000000000010",
    ]
    assert run(s3_driver.list("uploads/u")) == ["uploads/u/data"]
    run(s3_driver.move("uploads/u/data", "blobs/x/data"))
    assert keys(s3_emulator, s3_driver) == ["tenant/prefix/blobs/x/data"]
    body = (
        s3_emulator.client()
        .get_object(Bucket=s3_driver.client.config.bucket, Key="tenant/prefix/blobs/x/data")["Body"]
        .read()
    )
    assert body == b"a" * 10 + b"b" * 5


@pytest.mark.parametrize(
    "chunks",
    [
        [6 * MiB, 6 * MiB, 1 * MiB],  # parts copied server-side, a small tail
        [1 * MiB, 7 * MiB, 3 * MiB],  # a small head streamed through the buffer
        [2 * MiB] * 5,  # only small segments: every part streamed
    ],
)
def test_move_composes_segments_into_one_object(
    s3_emulator: Emulator, s3_driver: S3Driver, chunks: list[int]
) -> None:
    data = b"".join(os.urandom(n) for n in chunks)

    async def go() -> None:
        offset = 0
        for n in chunks:  # one writer per chunk, as one PATCH each
            writer = await s3_driver.writer("up/data", offset)
            await writer.write(data[offset : offset + n])
            await writer.commit()
            offset += n
        assert (await s3_driver.stat("up/data")).size == len(data)
        await s3_driver.move("up/data", "blob/data")
        assert hashlib.sha256(await read_all(s3_driver, "blob/data")).digest() == (
            hashlib.sha256(data).digest()
        )
        window = b"".join([c async for c in s3_driver.read("blob/data", 5 * MiB - 3, MiB + 7)])
        assert window == data[5 * MiB - 3 : 6 * MiB + 4]

    run(go())
    assert keys(s3_emulator, s3_driver) == ["tenant/prefix/blob/data"]


def test_writer_flushes_bounded_segments(s3_emulator: Emulator, s3_driver: S3Driver) -> None:
    data = os.urandom(2 * s3_driver.part_size + 123)

    async def go() -> None:
        writer = await s3_driver.writer("up/data")
        for i in range(0, len(data), MiB):
            await writer.write(data[i : i + MiB])
        assert writer.size == len(data)
        await writer.commit()
        assert await read_all(s3_driver, "up/data") == data
        # Reads across segment boundaries.
        part = s3_driver.part_size
        got = b"".join([c async for c in s3_driver.read("up/data", part - 10, 20)])
        assert got == data[part - 10 : part + 10]

    run(go())
    sizes = [
        o["Size"]
        for o in s3_emulator.client().list_objects_v2(Bucket=s3_driver.client.config.bucket)[
            "Contents"
        ]
    ]
    assert sizes == [s3_driver.part_size, s3_driver.part_size, 123]


def test_writer_truncates_a_large_straddling_segment(s3_driver: S3Driver) -> None:
    data = os.urandom(MIN_PART_SIZE + 2 * MiB)

    async def go() -> None:
        await s3_driver.put_content("up/data", data)  # one whole object
        writer = await s3_driver.writer("up/data", MIN_PART_SIZE + MiB)  # converted, truncated
        await writer.write(b"tail")
        await writer.commit()
        assert await read_all(s3_driver, "up/data") == data[: MIN_PART_SIZE + MiB] + b"tail"

    run(go())


def test_segments_after_a_gap_are_ignored_and_dropped(
    s3_emulator: Emulator, s3_driver: S3Driver
) -> None:
    bucket = s3_driver.client.config.bucket
    s3 = s3_emulator.client()
    base = "tenant/prefix/up/data~seg/"
    s3.put_object(Bucket=bucket, Key=base + "00000000000000000000", Body=b"abc")
    s3.put_object(Bucket=bucket, Key=base + "00000000000000000009", Body=b"stray")
    assert run(s3_driver.stat("up/data")).size == 3
    assert run(s3_driver.get_content("up/data")) == b"abc"

    async def resume() -> None:
        writer = await s3_driver.writer("up/data", 3)
        await writer.write(b"def")
        await writer.commit()

    run(resume())
    assert run(s3_driver.get_content("up/data")) == b"abcdef"
    assert keys(s3_emulator, s3_driver) == [
        base + "00000000000000000000",
        base + "00000000000000000003",
    ]


def test_whole_object_wins_and_delete_removes_everything(
    s3_emulator: Emulator, s3_driver: S3Driver
) -> None:
    async def go() -> None:
        writer = await s3_driver.writer("p/data")
        await writer.write(b"segments")
        await writer.commit()
        await s3_driver.put_content("p/data", b"whole")
        assert await s3_driver.get_content("p/data") == b"whole"
        assert (await s3_driver.stat("p/data")).size == 5
        await s3_driver.put_content("p/data/inside", b"x")  # a tree under the same name
        await s3_driver.delete("p/data")
        with pytest.raises(PathNotFound):
            await s3_driver.stat("p/data")

    run(go())
    assert keys(s3_emulator, s3_driver) == []


def test_driver_stays_under_its_prefix(s3_emulator: Emulator, s3_driver: S3Driver) -> None:
    bucket = s3_driver.client.config.bucket
    s3_emulator.client().put_object(Bucket=bucket, Key="tenant/other", Body=b"not ours")
    s3_emulator.client().put_object(Bucket=bucket, Key="tenant/prefixed/x", Body=b"not ours")
    run(s3_driver.put_content("dir/a", b"ours"))
    run(s3_driver.delete("dir"))
    assert keys(s3_emulator, s3_driver) == ["tenant/other", "tenant/prefixed/x"]


def test_wrong_secret_is_unavailable_and_never_shown(s3_emulator: Emulator) -> None:
    bucket = s3_emulator.create_bucket()
    secret = "wrong-" + s3_emulator.secret_access_key
    driver = S3Driver.from_url(f"s3://{bucket}", s3_settings(s3_emulator, secret))
    with pytest.raises(StorageUnavailable) as info:
        run(driver.put_content("a", b"x"))
    assert secret not in str(info.value)
    assert "SignatureDoesNotMatch" in str(info.value)


def test_missing_bucket_and_unreachable_endpoint_are_unavailable(
    s3_emulator: Emulator,
) -> None:
    missing = S3Driver.from_url("s3://no-such-bucket-here", s3_settings(s3_emulator))
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        run(missing.stat("a"))
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        run(missing.get_content("a"))
    closed = S3Settings("http://127.0.0.1:9", "us-east-1", "id", "secret")
    unreachable = S3Driver.from_url("s3://bucket", closed)
    with pytest.raises(StorageUnavailable, match="unreachable"):
        run(unreachable.stat("a"))


def test_settings_from_env_fall_back_to_aws_names() -> None:
    env = {"AWS_ACCESS_KEY_ID": "aws-id", "AWS_SECRET_ACCESS_KEY": "aws-secret"}
    settings = RegistrySettings.from_env(env)
    assert settings.s3 == S3Settings(None, "us-east-1", "aws-id", "aws-secret")
    assert "aws-secret" not in repr(settings)
    env |= {
        "ECLOUD_S3_ACCESS_KEY_ID": "id",
        "ECLOUD_S3_SECRET_ACCESS_KEY": "secret",
        "ECLOUD_S3_ENDPOINT": "http://minio:9000/",
        "ECLOUD_S3_REGION": "eu-central-1",
    }
    assert RegistrySettings.from_env(env).s3 == S3Settings(
        "http://minio:9000", "eu-central-1", "id", "secret"
    )
