"""A small S3 REST client over httpx: the operations the S3 driver needs, nothing else.

Path-style addressing (``<endpoint>/<bucket>/<key>``) by default, so one
endpoint setting serves AWS S3, MinIO, Ceph RGW and R2; virtual-host style
(``<bucket>.<endpoint host>/<key>``) on request. Every request is signed with
SigV4 over the real payload hash (with the session token of temporary
credentials). Bodies sent are bounded by the caller (a part at most); bodies
received are streamed or bounded by a range.

Retries: a request that fails with a transport error or a 5xx answer is sent
again, with jittered exponential backoff (`stamina`), up to
``retry_attempts`` attempts and never past ``retry_timeout`` seconds after the
first; only idempotent requests are retried after they may have reached S3
(every request here is idempotent but creating and completing a multipart
upload), while a ``503 SlowDown`` or a refused connection, which S3 did not
act on, is retried for all. A streamed download cut in the middle resumes
from the last byte received (`iter_range`), so a storage blip is not an
error to the client.

Failures map onto the storage exception tree: an unreachable endpoint,
refused credentials, a missing bucket or a server error is
`StorageUnavailable` (the registry answers 503); a missing key is reported
to the caller as ``None``/`PathNotFound`; anything else is `StorageError`
with S3's error code. Messages never carry credentials.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import stamina
from anyio import to_thread

from services.registry.storage.base import PathNotFound, StorageError, StorageUnavailable
from services.registry.storage.sigv4 import Credentials, presign, sign

__all__ = ["ListPage", "ObjectInfo", "S3Client", "S3Config"]

logger = logging.getLogger("ecloud.registry.s3")

_NS = re.compile(r"^\{[^}]*\}")
# Hashing a part in a worker thread is worth the hop only for larger bodies.
_THREAD_HASH_MIN = 256 * 1024
# Answers worth another attempt: S3's InternalError, SlowDown/ServiceUnavailable and
# the gateways in front of it.
_RETRY_STATUS = frozenset({500, 502, 503, 504})
# Each retry is logged by us, naming the request. stamina's own hooks are off: its
# structlog printer would bypass the services' log format, and its Prometheus
# counter would land in the default registry, which /metrics does not serve.
stamina.instrumentation.set_on_retry_hooks([])
# Transport errors raised before anything reached the server: safe to retry for any call.
_REFUSALS = frozenset(
    {"NoSuchBucket", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken", "TokenRefreshRequired"}
)
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _ServerFault(Exception):
    """A 5xx answer, kept to be reported once the retries are spent."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass(frozen=True, slots=True)
class S3Config:
    endpoint: str
    region: str
    bucket: str
    credentials: Credentials
    addressing: str = "path"  # or "virtual"
    retry_attempts: int = 5
    retry_timeout: float = 20.0


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: float


@dataclass(frozen=True, slots=True)
class ListPage:
    objects: list[ObjectInfo]
    prefixes: list[str]
    continuation: str | None


def _strip(tag: str) -> str:
    return _NS.sub("", tag)


def _find(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _strip(child.tag) == name:
            return child.text or ""
    return None


def _parse(body: bytes) -> ET.Element:
    # The endpoint is configured by the operator, not a client; expat refuses
    # entity expansion bombs on the Python versions we support.
    return ET.fromstring(body)  # noqa: S314


def _iso_time(raw: str) -> float:
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()


def _sha256(pieces: Sequence[bytes]) -> str:
    hasher = hashlib.sha256()
    for piece in pieces:
        hasher.update(piece)
    return hasher.hexdigest()


async def _stream(pieces: Sequence[bytes]) -> AsyncIterator[bytes]:
    # Sent piece by piece: joining a part into one bytes would double its memory.
    for piece in pieces:
        yield piece


class S3Client:
    def __init__(self, config: S3Config, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        parts = urlsplit(config.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"S3 endpoint must be an http(s) URL, got {config.endpoint!r}")
        if config.addressing not in ("path", "virtual"):
            raise ValueError(f"S3 addressing must be path or virtual, got {config.addressing!r}")
        self._base_path = parts.path.rstrip("/")
        self._virtual = config.addressing == "virtual"
        self._host = f"{config.bucket}.{parts.netloc}" if self._virtual else parts.netloc
        self._origin = f"{parts.scheme}://{self._host}"
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(60, connect=10), follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _path(self, key: str | None) -> str:
        if self._virtual:
            return f"{self._base_path}/{key or ''}"
        path = f"{self._base_path}/{self.config.bucket}"
        return path if key is None else f"{path}/{key}"

    def _url(self, path: str, query: Mapping[str, str]) -> httpx.URL:
        return httpx.URL(f"{self._origin}{quote(path, safe='/-_.~')}", params=query)

    def presigned_url(self, key: str, expires: int, method: str = "GET") -> str:
        """A URL anyone may use for one `method` on `key` during `expires` seconds."""
        path = self._path(key)
        query = presign(
            method,
            self._host,
            path,
            self.config.credentials,
            self.config.region,
            datetime.now(UTC),
            expires,
        )
        return str(self._url(path, query))

    def _retrying(self, idempotent: bool) -> Any:
        def retry_on(exc: Exception) -> bool:
            if isinstance(exc, _ServerFault):
                return idempotent or exc.response.status_code == 503
            if isinstance(exc, _NOT_SENT):
                return True
            return idempotent and isinstance(exc, httpx.TransportError)

        return stamina.retry_context(
            on=retry_on,
            attempts=self.config.retry_attempts,
            timeout=self.config.retry_timeout,
            wait_initial=0.05,
            wait_max=2.0,
            wait_jitter=0.25,
        )

    async def _request(
        self,
        method: str,
        key: str | None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | Sequence[bytes] = b"",
        stream: bool = False,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send one signed request, retried as the module says; `body` may be a list of
        pieces, sent without joining. After the last attempt a 5xx answer is returned
        (read and closed) for the caller to report; a transport error is
        `StorageUnavailable`."""
        query = dict(query or {})
        pieces = [body] if isinstance(body, bytes) else body
        length = sum(len(piece) for piece in pieces)
        if length >= _THREAD_HASH_MIN:
            payload_hash = await to_thread.run_sync(_sha256, pieces)
        else:
            payload_hash = _sha256(pieces)
        path = self._path(key)
        url = self._url(path, query)
        try:
            async for attempt in self._retrying(idempotent):
                with attempt:
                    if attempt.num > 1:
                        logger.warning("S3 %s %s: attempt %d", method, key, attempt.num)
                    # Signed again for each attempt: the signature carries the time.
                    signed = dict(headers or {})
                    signed.update(
                        sign(
                            method,
                            self._host,
                            path,
                            query,
                            signed,
                            payload_hash,
                            self.config.credentials,
                            self.config.region,
                            datetime.now(UTC),
                        )
                    )
                    content: bytes | AsyncIterator[bytes] = b""
                    if length:
                        signed["content-length"] = str(length)
                        content = _stream(pieces)
                    request = self._http.build_request(method, url, headers=signed, content=content)
                    response = await self._http.send(request, stream=stream)
                    if response.status_code in _RETRY_STATUS:
                        await response.aread()
                        await response.aclose()
                        raise _ServerFault(response)
                    return response
        except _ServerFault as fault:
            return fault.response
        except httpx.TransportError as exc:
            logger.warning("S3 endpoint %s unreachable: %s", self._host, type(exc).__name__)
            raise StorageUnavailable(f"storage endpoint {self._host} is unreachable") from exc
        raise AssertionError("unreachable: the retry loop returns or raises")

    async def _fail(self, response: httpx.Response, what: str) -> StorageError:
        """The exception for an unexpected response (its body read and closed)."""
        await response.aread()
        await response.aclose()
        code = "unknown"
        if response.content:
            try:
                code = _find(_parse(response.content), "Code") or code
            except ET.ParseError:
                pass
        status = response.status_code
        logger.warning("S3 %s failed: HTTP %d %s", what, status, code)
        # Refused credentials, an expired or wrong session token (400 InvalidToken or
        # ExpiredToken; a HEAD answer has no body to tell, and a 400 to a HEAD means the
        # same): the operator's problem, so unavailable, never a client's error.
        if (
            status in (401, 403)
            or code in _REFUSALS
            or (status == 400 and response.request.method == "HEAD")
        ):
            return StorageUnavailable(f"storage refused {what}: {code}")
        if status >= 500:
            return StorageUnavailable(f"storage failed {what}: HTTP {status} {code}")
        return StorageError(f"storage failed {what}: HTTP {status} {code}")

    async def _expect(self, response: httpx.Response, what: str, ok: int = 200) -> bytes:
        if response.status_code != ok:
            raise await self._fail(response, what)
        return response.content

    async def _is_missing_key(self, response: httpx.Response, what: str) -> bool:
        """True for a 404 about the key; a missing bucket is an error, not absence."""
        if response.status_code != 404:
            return False
        if response.request.method == "HEAD":
            return True
        await response.aread()
        try:
            code = _find(_parse(response.content), "Code") if response.content else None
        except ET.ParseError:
            code = None
        if code == "NoSuchBucket":
            raise await self._fail(response, what)
        return True

    # -- objects ------------------------------------------------------------------------

    async def put_object(self, key: str, data: bytes | Sequence[bytes]) -> None:
        response = await self._request("PUT", key, body=data)
        await self._expect(response, f"PUT {key}")

    async def head_object(self, key: str) -> ObjectInfo | None:
        response = await self._request("HEAD", key)
        if await self._is_missing_key(response, f"HEAD {key}"):
            return None
        await self._expect(response, f"HEAD {key}")
        modified = parsedate_to_datetime(response.headers["last-modified"]).timestamp()
        return ObjectInfo(key, int(response.headers["content-length"]), modified)

    @asynccontextmanager
    async def get_object(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[httpx.Response | None]:
        """A streaming response for bytes ``[start, end)``; None when the key is missing.

        A range that starts at or past the end yields a response with no body.
        """
        headers = {}
        if start or end is not None:
            headers["range"] = f"bytes={start}-{'' if end is None else end - 1}"
        response = await self._request("GET", key, headers=headers, stream=True)
        try:
            if await self._is_missing_key(response, f"GET {key}"):
                yield None
                return
            if response.status_code == 416:
                await response.aread()
                yield _empty(response)
                return
            if response.status_code not in (200, 206):
                raise await self._fail(response, f"GET {key}")
            if response.status_code == 200 and start:
                # A server that ignored the range would hand us the wrong bytes.
                raise StorageError(f"storage ignored the range of GET {key}")
            yield response
        finally:
            await response.aclose()

    async def iter_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of `key` as they arrive; `PathNotFound` when it is missing.

        A body cut in the middle is asked for again from the first byte not yet
        received, up to ``retry_attempts`` times in all, so the caller sees every byte
        exactly once or a `StorageUnavailable`, never a short or repeated read.
        """
        position = start
        cuts = 0
        while position < end:
            try:
                async with self.get_object(key, position, end) as response:
                    if response is None:
                        raise PathNotFound(key)
                    async for piece in response.aiter_bytes():
                        if position + len(piece) > end:
                            raise StorageError(f"storage returned too many bytes of {key}")
                        position += len(piece)
                        yield piece
                if position < end:
                    raise StorageError(f"storage returned {position - start} bytes of {key}")
            except httpx.TransportError as exc:
                cuts += 1
                logger.warning("S3 GET %s cut at byte %d (%d)", key, position, cuts)
                if cuts >= self.config.retry_attempts:
                    raise StorageUnavailable(f"storage kept cutting GET {key}") from exc

    async def get_range(self, key: str, start: int, end: int) -> list[bytes]:
        """Bytes ``[start, end)`` of `key`, which must exist, as the pieces received.

        Kept as pieces (never joined) so a part costs its own size in memory once.
        """
        try:
            return [piece async for piece in self.iter_range(key, start, end)]
        except PathNotFound:
            raise StorageError(f"storage lost {key} while reading it") from None

    async def delete_object(self, key: str) -> None:
        response = await self._request("DELETE", key)
        await self._expect(response, f"DELETE {key}", ok=204)

    async def delete_objects(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            root = ET.Element("Delete")
            ET.SubElement(root, "Quiet").text = "true"
            for key in batch:
                ET.SubElement(ET.SubElement(root, "Object"), "Key").text = key
            body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
            md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
            response = await self._request("POST", None, {"delete": ""}, {"content-md5": md5}, body)
            result = _parse(await self._expect(response, "DeleteObjects"))
            errors = [e for e in result if _strip(e.tag) == "Error"]
            if errors:
                raise StorageError(
                    f"storage could not delete {len(errors)} objects: {_find(errors[0], 'Code')}"
                )

    async def list_objects(
        self,
        prefix: str,
        delimiter: str | None = None,
        continuation: str | None = None,
        max_keys: int | None = None,
    ) -> ListPage:
        query = {"list-type": "2", "prefix": prefix}
        if max_keys is not None:
            query["max-keys"] = str(max_keys)
        if delimiter:
            query["delimiter"] = delimiter
        if continuation:
            query["continuation-token"] = continuation
        response = await self._request("GET", None, query)
        root = _parse(await self._expect(response, f"LIST {prefix}"))
        objects, prefixes = [], []
        for element in root:
            tag = _strip(element.tag)
            if tag == "Contents":
                objects.append(
                    ObjectInfo(
                        _find(element, "Key") or "",
                        int(_find(element, "Size") or 0),
                        _iso_time(_find(element, "LastModified") or "1970-01-01T00:00:00Z"),
                    )
                )
            elif tag == "CommonPrefixes":
                prefixes.append(_find(element, "Prefix") or "")
        truncated = _find(root, "IsTruncated") == "true"
        token = _find(root, "NextContinuationToken") if truncated else None
        return ListPage(objects, prefixes, token)

    async def list_all(self, prefix: str, delimiter: str | None = None) -> ListPage:
        """Every page of a listing merged (callers list small folders or key sets)."""
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        token: str | None = None
        while True:
            page = await self.list_objects(prefix, delimiter, token)
            objects += page.objects
            prefixes += page.prefixes
            token = page.continuation
            if not token:
                return ListPage(objects, prefixes, None)

    def _copy_source(self, key: str) -> str:
        return quote(f"/{self.config.bucket}/{key}", safe="/-_.~")

    async def copy_object(self, source: str, destination: str) -> None:
        response = await self._request(
            "PUT", destination, headers={"x-amz-copy-source": self._copy_source(source)}
        )
        body = await self._expect(response, f"COPY {source}")
        # CopyObject may report a failure inside a 200 response.
        if _strip(_parse(body).tag) == "Error":
            raise StorageError(f"storage failed COPY {source}")

    # -- multipart ----------------------------------------------------------------------

    async def create_multipart(self, key: str) -> str:
        response = await self._request("POST", key, {"uploads": ""}, idempotent=False)
        upload_id = _find(_parse(await self._expect(response, f"MULTIPART {key}")), "UploadId")
        if not upload_id:
            raise StorageError(f"storage returned no upload id for {key}")
        return upload_id

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: Sequence[bytes]
    ) -> str:
        response = await self._request(
            "PUT", key, {"partNumber": str(number), "uploadId": upload_id}, body=data
        )
        await self._expect(response, f"PART {number} of {key}")
        return response.headers["etag"]

    async def upload_part_copy(
        self, key: str, upload_id: str, number: int, source: str, start: int, end: int
    ) -> str:
        response = await self._request(
            "PUT",
            key,
            {"partNumber": str(number), "uploadId": upload_id},
            {
                "x-amz-copy-source": self._copy_source(source),
                "x-amz-copy-source-range": f"bytes={start}-{end - 1}",
            },
        )
        root = _parse(await self._expect(response, f"PART COPY {number} of {key}"))
        etag = _find(root, "ETag")
        if not etag:
            raise StorageError(f"storage failed PART COPY {number} of {key}")
        return etag

    async def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        root = ET.Element("CompleteMultipartUpload")
        for number, etag in enumerate(etags, start=1):
            part = ET.SubElement(root, "Part")
            ET.SubElement(part, "PartNumber").text = str(number)
            ET.SubElement(part, "ETag").text = etag
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        response = await self._request(
            "POST", key, {"uploadId": upload_id}, body=body, idempotent=False
        )
        result = _parse(await self._expect(response, f"COMPLETE {key}"))
        # Like CopyObject, completion may fail inside a 200 response.
        if _strip(result.tag) == "Error":
            raise StorageError(f"storage failed COMPLETE {key}: {_find(result, 'Code')}")

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        response = await self._request("DELETE", key, {"uploadId": upload_id})
        await self._expect(response, f"ABORT {key}", ok=204)


def _empty(response: httpx.Response) -> httpx.Response:
    """A stand-in for a 416: a response with no bytes to stream."""
    return httpx.Response(206, content=b"", request=response.request)
