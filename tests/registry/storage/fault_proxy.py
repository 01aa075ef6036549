"""An S3 fault-injecting proxy for tests: a small asyncio HTTP/1.1 server in front of
the S3 emulator (moto) that fails chosen requests on purpose.

Each rule fails the next `count` requests that match it (method, and a substring
of the path and query) in one way:

- ``"500"``: an S3 ``InternalError`` answer, the request never reaches moto;
- ``"slowdown"``: ``503 SlowDown``, as S3 throttles;
- ``"cut"``: the connection is closed mid-way: a request with a body is dropped
  without an answer, an answer with a body is forwarded half and then cut.

Everything else is forwarded as is (the ``Host`` header kept, so moto checks the
client's SigV4 signature). moto cannot serve presigned URLs while it checks
signatures, so the proxy plays S3's part for them: an expired URL is ``403
AccessDenied`` ("Request has expired"), the signature is recomputed with botocore
(an implementation independent of ours) from the secret the proxy was given, and
a valid request is forwarded to moto signed again in headers, by botocore.

The proxy runs its own event loop in a thread, so synchronous tests and the
registry's processes can use it alike.
"""

from __future__ import annotations

import asyncio
import threading
import time
from calendar import timegm
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}
_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
    "<Message>{message}</Message></Error>"
)


@dataclass
class Rule:
    mode: str
    count: int
    method: str | None = None
    match: str = ""


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.secret: tuple[str, str] | None = None  # (access key id, secret) for presigned URLs
        self.region = "us-east-1"
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._http = httpx.AsyncClient(timeout=60)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None and self._http is not None
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._http.aclose()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def fail(self, mode: str, count: int, method: str | None = None, match: str = "") -> None:
        assert mode in ("500", "slowdown", "cut")
        with self._lock:
            self.rules.append(Rule(mode, count, method, match))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.injected.clear()

    def _fault_for(self, method: str, target: str) -> str | None:
        with self._lock:
            self.requests += 1
            for rule in self.rules:
                if rule.count > 0 and rule.method in (None, method) and rule.match in target:
                    rule.count -= 1
                    self.injected[rule.mode] += 1
                    return rule.mode
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in lines[1:] if line]
        fields = {name.strip().lower(): value.strip() for name, value in headers}
        body = await reader.readexactly(int(fields.get("content-length", "0")))
        fault = self._fault_for(method, target)
        if fault == "500":
            await _answer(writer, 500, _ERROR.format(code="InternalError", message="injected"))
            return True
        if fault == "slowdown":
            await _answer(writer, 503, _ERROR.format(code="SlowDown", message="Reduce rate"))
            return True
        if fault == "cut" and body:
            return False  # the request's body is lost with the connection
        forwarded = [(n.strip(), v.strip()) for n, v in headers if n.strip().lower() not in _HOP]
        if "X-Amz-Signature=" in target:
            refusal = self._check_presigned(method, target, fields.get("host", ""))
            if refusal is not None:
                await _answer(writer, 403, _ERROR.format(code="AccessDenied", message=refusal))
                return True
            target, forwarded = self._resign(method, target, forwarded)
        assert self._http is not None
        request = self._http.build_request(
            method, self.upstream + target, headers=forwarded, content=body
        )
        response = await self._http.send(request)
        out = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
        for name, value in response.headers.multi_items():
            if name.lower() not in _HOP:
                out.append(f"{name}: {value}")
        content = response.content
        if method == "HEAD":
            out.append(f"content-length: {response.headers.get('content-length', '0')}")
            content = b""
        else:
            out.append(f"content-length: {len(content)}")
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        if fault == "cut" and len(content) > 1:
            writer.write(content[: len(content) // 2])
            await writer.drain()
            return False
        writer.write(content)
        await writer.drain()
        return True

    def _resign(
        self, method: str, target: str, headers: list[tuple[str, str]]
    ) -> tuple[str, list[tuple[str, str]]]:
        """The presigned request as moto accepts it: signed in headers by botocore."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        assert self.secret is not None
        parts = urlsplit(target)
        rest = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.startswith("X-Amz-")
        ]
        target = parts.path + (f"?{urlencode(rest)}" if rest else "")
        host = urlsplit(self.upstream).netloc
        request = AWSRequest(method=method, url=f"{self.upstream}{target}", headers={"host": host})
        S3SigV4Auth(Credentials(*self.secret), "s3", self.region).add_auth(request)
        kept = [(n, v) for n, v in headers if n.lower() in ("range", "accept")]
        return target, kept + list(request.headers.items())

    def _check_presigned(self, method: str, target: str, host: str) -> str | None:
        """Why S3 would refuse this presigned request, or None when it is valid."""
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        issued = timegm(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        if time.time() > issued + int(query["X-Amz-Expires"]):
            return "Request has expired"
        if self.secret is None or query["X-Amz-Credential"].split("/")[0] != self.secret[0]:
            return "unknown access key"
        from botocore.auth import S3SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        credentials = Credentials(self.secret[0], self.secret[1], query.get("X-Amz-Security-Token"))
        auth = S3SigV4QueryAuth(credentials, "s3", self.region, expires=int(query["X-Amz-Expires"]))
        rest = {k: v for k, v in query.items() if not k.startswith("X-Amz-")}
        url = f"http://{host}{parts.path}" + (f"?{urlencode(rest)}" if rest else "")
        request = AWSRequest(method=method, url=url, headers={"host": host})
        request.context["timestamp"] = query["X-Amz-Date"]
        auth._modify_request_before_signing(request)
        expected = auth.signature(
            auth.string_to_sign(request, auth.canonical_request(request)), request
        )
        return None if expected == query["X-Amz-Signature"] else "SignatureDoesNotMatch"


async def _answer(writer: asyncio.StreamWriter, status: int, body: str) -> None:
    data = body.encode()
    reason = {403: "Forbidden", 500: "Internal Server Error", 503: "Slow Down"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/xml\r\n"
        f"content-length: {len(data)}\r\n\r\n".encode()
        + data
    )
    await writer.drain()
