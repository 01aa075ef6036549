"""Blob and upload storage: the driver interface, its backends, and the services on top.

`open_storage` turns ``settings.storage_url`` into a driver: ``file://`` for
the filesystem driver, ``s3://bucket/prefix`` for the S3-compatible driver
(endpoint, region and credentials from `S3Settings`).
"""

from __future__ import annotations

from services.registry.settings import S3Settings
from services.registry.storage.base import StorageDriver
from services.registry.storage.filesystem import FilesystemDriver
from services.registry.storage.s3 import S3Driver

__all__ = ["open_storage"]


def open_storage(url: str, s3: S3Settings | None = None) -> StorageDriver:
    if url.startswith("file:"):
        return FilesystemDriver.from_url(url)
    if url.startswith("s3:"):
        return S3Driver.from_url(url, s3 or S3Settings())
    scheme = url.split(":", 1)[0]
    raise ValueError(f"unsupported storage URL scheme {scheme!r} (supported: file://, s3://)")
