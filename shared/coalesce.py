"""uvicorn's HTTP protocol with one ``send`` per small response instead of two.

An ASGI response arrives as two messages, the status line with its headers
and then the body, and uvicorn writes each to the socket as it comes: two
system calls, two TCP segments and two wake-ups of the client for every
small response (a manifest, a HEAD, a JSON answer). Here the protocol's
transport is wrapped so that writes made within one turn of the event loop
are joined and sent together at the end of that turn. A write of
`DIRECT_WRITE` bytes or more (blob data) is never copied: what is pending
goes first, then the data, straight to the real transport. Closing or
ending the stream sends what is pending first; everything else (flow
control, addresses, TLS details) is the real transport's.

`protocol_class()` gives the coalescing subclass of the HTTP/1.1
implementation uvicorn would pick by itself (httptools when installed, h11
otherwise), for ``uvicorn.run(http=...)``.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    import httptools  # noqa: F401
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    HAVE_HTTPTOOLS = True
except ImportError:  # uvicorn without its standard extras
    HAVE_HTTPTOOLS = False

__all__ = ["DIRECT_WRITE", "CoalescingTransport", "protocol_class"]

DIRECT_WRITE = 64 * 1024


class CoalescingTransport:
    """A transport whose small writes in one event-loop turn leave in one send."""

    __slots__ = ("_loop", "_pending", "_scheduled", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if len(data) >= DIRECT_WRITE:
            self.flush()
            self._transport.write(data)
            return
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= DIRECT_WRITE:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_soon)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def _flush_soon(self) -> None:
        self._scheduled = False
        self.flush()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _stream(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """The connection's transport as a stream transport. Not an isinstance check:
    uvloop's transports (uvicorn's loop when uvloop is installed) have every method
    of `asyncio.Transport` without deriving from it."""
    return cast(asyncio.Transport, transport)


class CoalescingH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wrapped: Any = CoalescingTransport(_stream(transport), self.loop)
        super().connection_made(wrapped)


if HAVE_HTTPTOOLS:

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            wrapped: Any = CoalescingTransport(_stream(transport), self.loop)
            super().connection_made(wrapped)


def protocol_class() -> type[asyncio.Protocol]:
    """The coalescing subclass of uvicorn's own choice of HTTP/1.1 protocol (a
    module-level class: several workers receive it pickled)."""
    if HAVE_HTTPTOOLS:
        return CoalescingHttpToolsProtocol
    return CoalescingH11Protocol
