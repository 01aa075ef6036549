"""The shared suite every storage driver must pass: the filesystem and the S3 driver.

A new backend joins by adding a factory to `DRIVERS`. The S3 driver runs
against moto in server mode (see ``s3_emulator``), with signatures checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from services.registry.settings import S3Settings
from services.registry.storage import open_storage
from services.registry.storage.base import InvalidPath, PathNotFound, StorageDriver, StorageError
from services.registry.storage.filesystem import FilesystemDriver
from services.registry.storage.s3 import S3Driver

T = TypeVar("T")

DRIVERS: dict[str, Callable[[pytest.FixtureRequest, Path], StorageDriver]] = {
    "filesystem": lambda request, tmp: FilesystemDriver(tmp / "root"),
    "s3": lambda request, tmp: request.getfixturevalue("s3_driver"),
}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    return DRIVERS[request.param](request, tmp_path)


async def _read_all(driver: StorageDriver, path: str, *args: Any, **kwargs: Any) -> bytes:
    return b"".join([chunk async for chunk in driver.read(path, *args, **kwargs)])


def test_put_get_stat(driver: StorageDriver) -> None:
    async def go() -> None:
        await driver.put_content("a/b/c", b"hello")
        assert await driver.get_content("a/b/c") == b"hello"
        info = await driver.stat("a/b/c")
        assert info.size == 5 and not info.is_dir and info.path == "a/b/c"
        assert (await driver.stat("a/b")).is_dir
        await driver.put_content("a/b/c", b"replaced")
        assert await driver.get_content("a/b/c") == b"replaced"
        assert await driver.list("a/b") == ["a/b/c"]  # no temporary files left behind

    run(go())


def test_missing_paths_raise_path_not_found(driver: StorageDriver) -> None:
    async def go() -> None:
        for call in (
            driver.stat("nope"),
            driver.get_content("nope"),
            driver.list("nope"),
            driver.move("nope", "other"),
            driver.delete("nope"),
            _read_all(driver, "nope"),
            driver.writer("nope", 5),
        ):
            with pytest.raises(PathNotFound):
                await call

    run(go())


@pytest.mark.parametrize("path", ["", "/abs", "../up", "a/../b", "a//b", ".hidden", "a/.tmp", "a/"])
def test_invalid_paths(driver: StorageDriver, path: str) -> None:
    with pytest.raises(InvalidPath):
        run(driver.put_content(path, b"x"))


def test_writer_commit_and_read_ranges(driver: StorageDriver) -> None:
    async def go() -> None:
        writer = await driver.writer("up/data")
        for i in range(10):
            await writer.write(bytes([i]) * 1000)
        assert writer.size == 10_000
        await writer.commit()
        data = b"".join(bytes([i]) * 1000 for i in range(10))
        assert await _read_all(driver, "up/data") == data
        assert await _read_all(driver, "up/data", 2500, 1000) == data[2500:3500]
        assert await _read_all(driver, "up/data", 9990) == data[9990:]
        assert await _read_all(driver, "up/data", 0, 10_000, chunk_size=333) == data
        chunks = [c async for c in driver.read("up/data", chunk_size=4096)]
        assert [len(c) for c in chunks] == [4096, 4096, 1808]

    run(go())


def test_writer_resumes_at_offset_and_drops_torn_tail(driver: StorageDriver) -> None:
    async def go() -> None:
        writer = await driver.writer("up/data")
        await writer.write(b"committed|torn tail")
        await writer.commit()
        writer = await driver.writer("up/data", 10)
        assert writer.size == 10
        await writer.write(b"more")
        await writer.commit()
        assert await driver.get_content("up/data") == b"committed|more"
        with pytest.raises(StorageError):
            await driver.writer("up/data", 100)

    run(go())


def test_writer_cancel_and_close(driver: StorageDriver) -> None:
    async def go() -> None:
        writer = await driver.writer("up/data")
        await writer.write(b"abc")
        await writer.cancel()
        with pytest.raises(PathNotFound):
            await driver.stat("up/data")
        writer = await driver.writer("up/data")
        await writer.write(b"abc")
        await writer.close()
        with pytest.raises(StorageError):
            await writer.write(b"after close")

    run(go())


def test_move_is_replace(driver: StorageDriver) -> None:
    async def go() -> None:
        await driver.put_content("src/data", b"new")
        await driver.put_content("dst/x/data", b"old")
        await driver.move("src/data", "dst/x/data")
        assert await driver.get_content("dst/x/data") == b"new"
        with pytest.raises(PathNotFound):
            await driver.stat("src/data")
        await driver.put_content("src/data", b"fresh")
        await driver.move("src/data", "deep/new/parent/data")
        assert await driver.get_content("deep/new/parent/data") == b"fresh"

    run(go())


def test_list_and_delete(driver: StorageDriver) -> None:
    async def go() -> None:
        for name in ("b", "a", "c/d"):
            await driver.put_content(f"dir/{name}", b"x")
        assert await driver.list("dir") == ["dir/a", "dir/b", "dir/c"]
        await driver.delete("dir/c")
        await driver.delete("dir/a")
        assert await driver.list("dir") == ["dir/b"]
        await driver.delete("dir")
        with pytest.raises(PathNotFound):
            await driver.list("dir")

    run(go())


def test_open_storage(tmp_path: Path) -> None:
    driver = open_storage(f"file://{tmp_path}/store")
    assert isinstance(driver, FilesystemDriver)
    assert driver.root == (tmp_path / "store").resolve()
    s3 = S3Settings(endpoint="http://127.0.0.1:9", access_key_id="id", secret_access_key="key")
    bucket = open_storage("s3://bucket/some/prefix", s3)
    assert isinstance(bucket, S3Driver)
    assert (bucket.client.config.bucket, bucket.prefix) == ("bucket", "some/prefix")
    assert bucket.client.config.endpoint == "http://127.0.0.1:9"
    aws = open_storage(
        "s3://bucket", S3Settings(region="eu-west-1", access_key_id="i", secret_access_key="k")
    )
    assert isinstance(aws, S3Driver)
    assert aws.client.config.endpoint == "https://s3.eu-west-1.amazonaws.com"
    assert aws.prefix == ""
    for url in ("s3://bucket/prefix", "ftp://x", "file://otherhost/x"):
        with pytest.raises(ValueError):
            open_storage(url)  # s3 without credentials is refused at start-up
    for url in ("s3://", "s3://UPPER/x", "s3://bucket/../up", "s3://bucket/p?x=1"):
        with pytest.raises(ValueError):
            open_storage(url, s3)
