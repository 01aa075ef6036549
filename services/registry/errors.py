"""Every OCI Distribution error code, registered once with its HTTP status.

Handlers raise `RegistryError` (or call `error_response`); one place turns it
into the spec's body ``{"errors": [{"code", "message", "detail"}]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["CODES", "ErrorCode", "RegistryError", "error_response"]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    message: str


CODES: dict[str, ErrorCode] = {
    c.code: c
    for c in (
        ErrorCode("BLOB_UNKNOWN", 404, "blob unknown to registry"),
        ErrorCode("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
        ErrorCode("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"),
        ErrorCode("DIGEST_INVALID", 400, "provided digest did not match uploaded content"),
        ErrorCode(
            "MANIFEST_BLOB_UNKNOWN",
            404,
            "manifest references a manifest or blob unknown to registry",
        ),
        ErrorCode("MANIFEST_INVALID", 400, "manifest invalid"),
        ErrorCode("MANIFEST_UNKNOWN", 404, "manifest unknown to registry"),
        ErrorCode("NAME_INVALID", 400, "invalid repository name"),
        ErrorCode("NAME_UNKNOWN", 404, "repository name not known to registry"),
        ErrorCode("SIZE_INVALID", 400, "provided length did not match content length"),
        ErrorCode("TAG_INVALID", 400, "manifest tag did not match URI"),
        ErrorCode("UNAUTHORIZED", 401, "authentication required"),
        ErrorCode("DENIED", 403, "requested access to the resource is denied"),
        ErrorCode("UNSUPPORTED", 415, "the operation is unsupported"),
        ErrorCode("TOOMANYREQUESTS", 429, "too many requests"),
        ErrorCode("RANGE_INVALID", 416, "invalid content range"),
        ErrorCode("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"),
        ErrorCode("MANIFEST_TOO_LARGE", 413, "manifest too large"),
        ErrorCode("METHOD_NOT_ALLOWED", 405, "method not allowed"),
        ErrorCode("UNAVAILABLE", 503, "service unavailable"),
        ErrorCode("INTERNAL", 500, "internal server error"),
    )
}


class RegistryError(Exception):
    """An error the client should see, by spec code."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        spec = CODES[code]
        super().__init__(message or spec.message)
        self.code = code
        self.message = message or spec.message
        self.detail = detail
        self.status = status or spec.status
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return error_response(
            self.code, self.message, self.detail, status=self.status, headers=self.headers
        )


def error_response(
    code: str,
    message: str | None = None,
    detail: Any = None,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    spec = CODES[code]
    body = {"errors": [{"code": code, "message": message or spec.message, "detail": detail}]}
    return JSONResponse(body, status_code=status or spec.status, headers=dict(headers or {}))
