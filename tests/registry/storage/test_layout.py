"""Storage layout and the running-hash cache."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from services.registry.storage.hashing import HashCache
from services.registry.storage.paths import blob_path, upload_dir, upload_path
from shared.names import parse_digest


def test_blob_path_is_content_addressed() -> None:
    digest = parse_digest("sha256:" + "ab" * 32)
    assert blob_path(digest) == f"blobs/sha256/ab/{'ab' * 32}/data"
    digest = parse_digest("sha512:" + "0f" * 64)
    assert blob_path(digest) == f"blobs/sha512/0f/{'0f' * 64}/data"


def test_upload_paths_accept_only_upload_ids() -> None:
    upload_id = str(uuid.uuid4())
    assert upload_path(upload_id) == f"uploads/{upload_id}/data"
    for bad in ("..", "x", upload_id.upper(), upload_id + "/..", ""):
        with pytest.raises(ValueError):
            upload_dir(bad)


def test_hash_cache_keys_by_offset_and_algorithm() -> None:
    cache = HashCache(max_entries=2)
    h = hashlib.sha256(b"abc")
    cache.put("u1", 3, h, 1.5)
    assert cache.take("u1", 2, "sha256") is None
    assert cache.take("u1", 3, "sha512") is None
    assert cache.take("u1", 3, "sha256") == (h, 1.5)
    assert cache.take("u1", 3, "sha256") is None  # taking consumes
    cache.put("u1", 3, h, 1.5)
    cache.put("u1", 6, hashlib.sha256(b"abcdef"), 2.0)  # a newer offset replaces the old one
    assert cache.take("u1", 3, "sha256") is None
    cache.put("u2", 1, hashlib.sha256(b"x"), 0.0)
    cache.put("u3", 1, hashlib.sha256(b"y"), 0.0)  # evicts the least recently stored (u1)
    assert len(cache) == 2
    assert cache.take("u1", 6, "sha256") is None
    cache.drop("u2")
    assert cache.take("u2", 1, "sha256") is None
