"""AWS Signature Version 4 for S3 requests (in headers, or in the query of a presigned URL).

A pure function of the request and the credentials, so it is tested against
the published example vectors without any server. The secret key only ever
enters an HMAC; it never appears in a header, a log line or an exception.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

__all__ = ["EMPTY_SHA256", "UNSIGNED_PAYLOAD", "Credentials", "presign", "sign"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    # Temporary credentials (STS, a Kubernetes service-account role) come with a
    # session token, sent as ``x-amz-security-token`` and signed with the rest.
    session_token: str | None = field(default=None, repr=False)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _encode(value: str, safe: str = "") -> str:
    # RFC 3986 unreserved characters stay; everything else is percent-encoded.
    return quote(value, safe="-_.~" + safe)


def sign(
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to add: ``x-amz-date``, ``x-amz-content-sha256``, ``authorization``.

    `path` is the request path before encoding; `headers` are the other
    headers to sign (``host`` is always signed). `now` must be UTC.
    """
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    if service == "s3":
        signed["x-amz-content-sha256"] = payload_sha256
    names = sorted(signed)
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical_request = "\n".join(
        [
            method,
            _encode(path, safe="/"),
            canonical_query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _signing_key(credentials, day, region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    added = {
        "x-amz-date": amz_date,
        "authorization": f"{_ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}",
    }
    if service == "s3":
        added["x-amz-content-sha256"] = payload_sha256
    if credentials.session_token:
        added["x-amz-security-token"] = credentials.session_token
    return added


def _signing_key(credentials: Credentials, day: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + credentials.secret_access_key).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def presign(
    method: str,
    host: str,
    path: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    expires: int,
    service: str = "s3",
) -> dict[str, str]:
    """The query parameters of a presigned URL (SigV4 in the query string).

    Anyone holding the URL may make this one request until `expires` seconds
    after `now` (S3 accepts 1 s to 7 days); only ``host`` is signed and the
    payload is ``UNSIGNED-PAYLOAD``, as S3 expects for presigned URLs.
    """
    if not 1 <= expires <= 604800:
        raise ValueError("a presigned URL lives between 1 second and 7 days")
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    query = {
        "X-Amz-Algorithm": _ALGORITHM,
        "X-Amz-Credential": f"{credentials.access_key_id}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    if credentials.session_token:
        query["X-Amz-Security-Token"] = credentials.session_token
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical_request = "\n".join(
        [
            method,
            _encode(path, safe="/"),
            canonical_query,
            f"host:{host}\n",
            "host",
            UNSIGNED_PAYLOAD,
        ]
    )
    string_to_sign = "\n".join(
        [_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _signing_key(credentials, day, region, service)
    query["X-Amz-Signature"] = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return query
