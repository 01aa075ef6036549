"""Blob and upload storage: the driver interface, its backends, and the services on top.

`open_storage` turns ``settings.storage_url`` into a driver. Only ``file://``
exists today; an S3-compatible driver plugs in behind the same interface.
"""

from __future__ import annotations

from services.registry.storage.base import StorageDriver
from services.registry.storage.filesystem import FilesystemDriver

__all__ = ["open_storage"]


def open_storage(url: str) -> StorageDriver:
    if url.startswith("file:"):
        return FilesystemDriver.from_url(url)
    scheme = url.split(":", 1)[0]
    raise ValueError(f"unsupported storage URL scheme {scheme!r} (supported: file://)")
