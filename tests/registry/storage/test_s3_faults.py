"""The S3 driver against a failing S3: the fault-injecting proxy in front of moto.

Retries with backoff carry every operation through a few 500s, SlowDowns and cut
connections with every byte intact; faults that persist end in
`StorageUnavailable` (the registry's 503), never in wrong bytes; creating a
multipart upload (not idempotent) is retried only when S3 said SlowDown.
Temporary credentials (a session token), virtual-host addressing and presigned
URLs run against the same emulator.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import httpx
import pytest

from services.registry.settings import S3Settings
from services.registry.storage.base import StorageUnavailable
from services.registry.storage.s3 import MIN_PART_SIZE, S3Driver
from services.registry.storage.s3client import S3Client, S3Config
from services.registry.storage.sigv4 import Credentials
from tests.registry.storage.fault_proxy import FaultProxy
from tests.registry.storage.s3_emulator import REGION, Emulator


@pytest.fixture(scope="module")
def proxy(s3_emulator: Emulator) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3_emulator.endpoint).start()
    proxy.secret = (s3_emulator.access_key_id, s3_emulator.secret_access_key)
    yield proxy
    proxy.stop()


def _driver(emulator: Emulator, endpoint: str, **settings: object) -> S3Driver:
    bucket = emulator.create_bucket()
    config = S3Settings(
        endpoint=endpoint,
        region=REGION,
        access_key_id=emulator.access_key_id,
        secret_access_key=emulator.secret_access_key,
        **settings,  # type: ignore[arg-type]
    )
    return S3Driver.from_url(f"s3://{bucket}/p", config)


def test_retries_carry_every_operation_through_faults(
    s3_emulator: Emulator, proxy: FaultProxy
) -> None:
    driver = _driver(s3_emulator, proxy.endpoint, retry_attempts=4, retry_timeout=30)
    driver.part_size = MIN_PART_SIZE  # two segments, so the move is a multipart upload
    big = os.urandom(MIN_PART_SIZE + 12345)  # composed by a multipart upload

    async def run() -> None:
        proxy.clear()
        proxy.fail("500", 2, "PUT")
        proxy.fail("slowdown", 2, "HEAD")
        proxy.fail("cut", 1, "PUT")  # a part's body lost on the way
        await driver.put_content("small", b"hello")
        writer = await driver.writer("uploads/big")
        await writer.write(big[:MIN_PART_SIZE])
        await writer.write(big[MIN_PART_SIZE:])
        await writer.commit()
        proxy.fail("slowdown", 1, "GET", "list-type")
        proxy.fail("slowdown", 1, "POST", "uploads")  # CreateMultipartUpload: S3 did nothing
        proxy.fail("cut", 2, "GET", "~seg")  # segments read back for the move, cut mid-body
        await driver.move("uploads/big", "blobs/big")
        proxy.fail("cut", 2, "GET", "blobs/big")
        proxy.fail("500", 1, "GET", "blobs/big")
        assert b"".join([c async for c in driver.read("blobs/big")]) == big
        assert await driver.get_content("small") == b"hello"
        proxy.fail("500", 1, "DELETE")
        await driver.delete("small")
        await driver.aclose()

    asyncio.run(run())
    assert proxy.injected == {"500": 4, "slowdown": 4, "cut": 5}, proxy.injected
    assert not [r for r in proxy.rules if r.count], "every planned fault was met"


def test_persistent_faults_are_unavailable_never_wrong_bytes(
    s3_emulator: Emulator, proxy: FaultProxy
) -> None:
    driver = _driver(s3_emulator, proxy.endpoint, retry_attempts=3, retry_timeout=10)
    data = os.urandom(300_000)

    async def run() -> None:
        proxy.clear()
        await driver.put_content("blob", data)
        for mode in ("500", "slowdown", "cut"):
            proxy.clear()
            proxy.fail(mode, 1000, "GET", "p/blob")
            received = bytearray()
            with pytest.raises(StorageUnavailable):
                async for chunk in driver.read("blob", chunk_size=1000):
                    received += chunk
            assert data.startswith(received), f"{mode}: wrong bytes before the error"
            assert proxy.injected[mode] == 3, (mode, proxy.injected)
        proxy.clear()
        proxy.fail("500", 1000, "PUT")
        with pytest.raises(StorageUnavailable):
            await driver.put_content("other", b"x")
        assert proxy.injected["500"] == 3
        # Not idempotent: an InternalError on CreateMultipartUpload is not sent again.
        proxy.clear()
        proxy.fail("500", 1, "POST", "uploads")
        with pytest.raises(StorageUnavailable):
            await driver.client.create_multipart("p/multi")
        assert proxy.injected["500"] == 1 and proxy.rules[0].count == 0
        proxy.clear()
        assert b"".join([c async for c in driver.read("blob")]) == data
        await driver.aclose()

    asyncio.run(run())


def test_retry_time_is_bounded(s3_emulator: Emulator, proxy: FaultProxy) -> None:
    # Many attempts allowed, little time: the retries stop at the time bound.
    driver = _driver(s3_emulator, proxy.endpoint, retry_attempts=1000, retry_timeout=1)

    async def run() -> None:
        proxy.clear()
        proxy.fail("slowdown", 100000, "PUT")
        with pytest.raises(StorageUnavailable):
            await driver.put_content("x", b"x")
        await driver.aclose()

    asyncio.run(run())
    assert 2 <= proxy.injected["slowdown"] < 1000


def test_session_token_is_sent_and_signed(s3_emulator: Emulator) -> None:
    temporary = s3_emulator.temporary_credentials()
    bucket = s3_emulator.create_bucket()

    def driver(token: str) -> S3Driver:
        settings = S3Settings.from_env(
            {
                "ECLOUD_S3_ENDPOINT": s3_emulator.endpoint,
                "AWS_ACCESS_KEY_ID": temporary["key"],
                "AWS_SECRET_ACCESS_KEY": temporary["secret"],
                "AWS_SESSION_TOKEN": token,
                "ECLOUD_S3_RETRY_ATTEMPTS": "1",
            }
        )
        assert settings.session_token == token and token not in repr(settings)
        return S3Driver.from_url(f"s3://{bucket}/p", settings)

    async def run() -> None:
        good = driver(temporary["token"])
        await good.put_content("k", b"temporary")
        assert await good.get_content("k") == b"temporary"
        await good.aclose()
        bad = driver(temporary["token"][:-4] + "AAAA")
        with pytest.raises(StorageUnavailable):
            await bad.get_content("k")
        await bad.aclose()

    asyncio.run(run())


class _Loopback(httpx.AsyncHTTPTransport):
    """Connects every host name to 127.0.0.1 (the only DNS this test changes): the
    request, its Host header and its signature stay those of the virtual host."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host="127.0.0.1")
        return await super().handle_async_request(request)


def test_virtual_host_addressing(s3_emulator: Emulator) -> None:
    bucket = s3_emulator.create_bucket()
    port = httpx.URL(s3_emulator.endpoint).port
    config = S3Config(
        endpoint=f"http://s3.example.test:{port}",
        region=REGION,
        bucket=bucket,
        credentials=Credentials(s3_emulator.access_key_id, s3_emulator.secret_access_key),
        addressing="virtual",
    )
    seen: list[str] = []

    async def log(request: httpx.Request) -> None:
        seen.append(f"{request.headers['host']}{request.url.path}")

    async def run() -> None:
        http = httpx.AsyncClient(transport=_Loopback(), event_hooks={"request": [log]})
        driver = S3Driver(S3Client(config, http), "p")
        await driver.put_content("a/b", b"virtual")
        assert await driver.get_content("a/b") == b"virtual"
        assert await driver.list("a") == ["a/b"]
        url = driver.client.presigned_url("p/a/b", 60)
        assert url.startswith(f"http://{bucket}.s3.example.test:{port}/p/a/b?")
        await driver.aclose()

    asyncio.run(run())
    assert f"{bucket}.s3.example.test:{port}/p/a/b" in seen
    assert f"{bucket}.s3.example.test:{port}/" in seen  # the listing, on the bucket's host
    # The object really is in the bucket, as boto3 (path style) sees it.
    assert s3_emulator.client().get_object(Bucket=bucket, Key="p/a/b")["Body"].read() == b"virtual"


def test_presigned_url_works_then_expires(s3_emulator: Emulator, proxy: FaultProxy) -> None:
    driver = _driver(s3_emulator, proxy.endpoint, redirect=True, redirect_ttl=2)
    proxy.clear()

    async def put() -> None:
        await driver.put_content("blob", b"presigned bytes")
        await driver.aclose()

    asyncio.run(put())
    url = driver.download_url("blob")
    assert url is not None and "X-Amz-Expires=2&" in url
    assert httpx.get(url).content == b"presigned bytes"
    tampered = url.replace("/p/blob?", "/p/blob2?")
    assert httpx.get(tampered).status_code == 403
    time.sleep(3.1)
    expired = httpx.get(url)
    assert expired.status_code == 403 and b"expired" in expired.content
