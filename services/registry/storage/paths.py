"""Where things live in storage. Every path the registry uses is built here.

::

    <root>/
    ├── blobs/                      content-addressed, shared by all repositories
    │   └── <algorithm>/            sha256 | sha512
    │       └── <first two hex>/    fan-out so no directory grows huge
    │           └── <hex>/
    │               └── data        the blob's bytes, complete or absent
    └── uploads/
        └── <upload id>/
            └── data                bytes received so far for one upload

Which repository may see a blob is metadata (``repository_blobs``), never
storage: the same bytes pushed to two repositories are stored once.
"""

from __future__ import annotations

import re

from shared.names import Digest

__all__ = ["BLOBS", "UPLOADS", "blob_path", "upload_dir", "upload_path"]

BLOBS = "blobs"
UPLOADS = "uploads"

_UPLOAD_ID = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}")


def blob_path(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}/data"


def upload_dir(upload_id: str) -> str:
    if _UPLOAD_ID.fullmatch(upload_id) is None:
        raise ValueError(f"invalid upload id {upload_id[:100]!r}")
    return f"{UPLOADS}/{upload_id}"


def upload_path(upload_id: str) -> str:
    return upload_dir(upload_id) + "/data"
