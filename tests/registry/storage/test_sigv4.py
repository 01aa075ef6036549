"""SigV4 against the examples AWS publishes (S3 GET with Range, ListObjects, the generic suite)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.registry.storage.sigv4 import EMPTY_SHA256, Credentials, presign, sign

EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
DAY = datetime(2013, 5, 24, tzinfo=UTC)


def _signature(headers: dict[str, str]) -> str:
    return headers["authorization"].rsplit("Signature=", 1)[1]


def test_s3_get_object_with_range() -> None:
    headers = sign(
        "GET", "examplebucket.s3.amazonaws.com", "/test.txt", {}, {"Range": "bytes=0-9"},
        EMPTY_SHA256, EXAMPLE, "us-east-1", DAY,
    )  # fmt: skip
    assert headers["x-amz-date"] == "20130524T000000Z"
    assert headers["x-amz-content-sha256"] == EMPTY_SHA256
    assert headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
    )
    assert _signature(headers) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def test_s3_list_objects_query_is_canonical() -> None:
    headers = sign(
        "GET", "examplebucket.s3.amazonaws.com", "/", {"prefix": "J", "max-keys": "2"}, {},
        EMPTY_SHA256, EXAMPLE, "us-east-1", DAY,
    )  # fmt: skip
    assert _signature(headers) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"


def test_generic_get_vanilla() -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    headers = sign(
        "GET", "example.amazonaws.com", "/", {}, {}, EMPTY_SHA256, credentials, "us-east-1",
        datetime(2015, 8, 30, 12, 36, tzinfo=UTC), service="service",
    )  # fmt: skip
    assert _signature(headers) == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    assert "x-amz-content-sha256" not in headers


def test_secret_never_in_headers_or_repr() -> None:
    headers = sign("PUT", "h", "/b/k", {}, {}, EMPTY_SHA256, EXAMPLE, "us-east-1", DAY)
    assert all(EXAMPLE.secret_access_key not in value for value in headers.values())
    assert EXAMPLE.secret_access_key not in repr(EXAMPLE)


def test_presigned_url_example() -> None:
    # AWS's published example of a presigned GET (query-string authentication).
    query = presign(
        "GET", "examplebucket.s3.amazonaws.com", "/test.txt", EXAMPLE, "us-east-1", DAY, 86400
    )
    assert query["X-Amz-Credential"] == "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
    assert query["X-Amz-SignedHeaders"] == "host" and query["X-Amz-Expires"] == "86400"
    assert (
        query["X-Amz-Signature"]
        == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def test_session_token_is_signed() -> None:
    temporary = Credentials(EXAMPLE.access_key_id, EXAMPLE.secret_access_key, "the-token")
    plain = sign("GET", "h", "/b/k", {}, {}, EMPTY_SHA256, EXAMPLE, "us-east-1", DAY)
    headers = sign("GET", "h", "/b/k", {}, {}, EMPTY_SHA256, temporary, "us-east-1", DAY)
    assert headers["x-amz-security-token"] == "the-token"
    assert "x-amz-security-token" in headers["authorization"].split("SignedHeaders=")[1]
    assert _signature(headers) != _signature(plain)
    assert "the-token" not in repr(temporary)
    query = presign("GET", "h", "/b/k", temporary, "us-east-1", DAY, 60)
    assert query["X-Amz-Security-Token"] == "the-token"
