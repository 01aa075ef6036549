"""A small S3 REST client over httpx: the operations the S3 driver needs, nothing else.

Path-style addressing (``<endpoint>/<bucket>/<key>``) so one endpoint setting
serves AWS S3, MinIO, Ceph RGW and R2. Every request is signed with SigV4
over the real payload hash. Bodies sent are bounded by the caller (a part at
most); bodies received are streamed or bounded by a range.

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
from urllib.parse import quote, urlsplit

import httpx
from anyio import to_thread

from services.registry.storage.base import StorageError, StorageUnavailable
from services.registry.storage.sigv4 import Credentials, sign

__all__ = ["ListPage", "ObjectInfo", "S3Client", "S3Config"]

logger = logging.getLogger("ecloud.registry.s3")

_NS = re.compile(r"^\{[^}]*\}")
# Hashing a part in a worker thread is worth the hop only for larger bodies.
_THREAD_HASH_MIN = 256 * 1024


@dataclass(frozen=True, slots=True)
class S3Config:
    endpoint: str
    region: str
    bucket: str
    credentials: Credentials


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
        self._host = parts.netloc
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(60, connect=10), follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _path(self, key: str | None) -> str:
        path = f"{self._base_path}/{self.config.bucket}"
        return path if key is None else f"{path}/{key}"

    async def _request(
        self,
        method: str,
        key: str | None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | Sequence[bytes] = b"",
        stream: bool = False,
    ) -> httpx.Response:
        """Send one signed request; `body` may be a list of pieces, sent without joining."""
        query = dict(query or {})
        headers = dict(headers or {})
        pieces = [body] if isinstance(body, bytes) else body
        length = sum(len(piece) for piece in pieces)
        if length >= _THREAD_HASH_MIN:
            payload_hash = await to_thread.run_sync(_sha256, pieces)
        else:
            payload_hash = _sha256(pieces)
        path = self._path(key)
        headers.update(
            sign(
                method,
                self._host,
                path,
                query,
                headers,
                payload_hash,
                self.config.credentials,
                self.config.region,
                datetime.now(UTC),
            )
        )
        url = httpx.URL(
            f"{self._origin}{quote(path, safe='/-_.~')}",
            params=query,
        )
        content: bytes | AsyncIterator[bytes] = b""
        if length:
            headers["content-length"] = str(length)
            content = _stream(pieces)
        request = self._http.build_request(method, url, headers=headers, content=content)
        try:
            return await self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            logger.warning("S3 endpoint %s unreachable: %s", self._host, type(exc).__name__)
            raise StorageUnavailable(f"storage endpoint {self._host} is unreachable") from exc

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
        if status in (401, 403) or code in ("NoSuchBucket", "InvalidAccessKeyId"):
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

    async def get_range(self, key: str, start: int, end: int) -> list[bytes]:
        """Bytes ``[start, end)`` of `key`, which must exist, as the pieces received.

        Kept as pieces (never joined) so a part costs its own size in memory once.
        """
        pieces: list[bytes] = []
        received = 0
        async with self.get_object(key, start, end) as response:
            if response is None:
                raise StorageError(f"storage lost {key} while reading it")
            async for piece in response.aiter_bytes():
                pieces.append(piece)
                received += len(piece)
        if received != end - start:
            raise StorageError(f"storage returned {received} bytes of {key}, not {end - start}")
        return pieces

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
        response = await self._request("POST", key, {"uploads": ""})
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
        response = await self._request("POST", key, {"uploadId": upload_id}, body=body)
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
