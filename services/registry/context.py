"""Everything a request handler of the registry needs, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.registry.auth import RegistryAuth
from services.registry.settings import RegistrySettings
from services.registry.storage.base import StorageDriver
from services.registry.storage.blobs import BlobStore
from services.registry.storage.uploads import UploadManager
from shared.database import MetadataDB
from shared.metrics import Counter, Histogram, Registry

__all__ = ["RegistryContext", "RegistryMetrics"]


@dataclass(slots=True)
class RegistryMetrics:
    registry: Registry
    requests: Counter
    latency: Histogram

    @classmethod
    def create(cls) -> RegistryMetrics:
        registry = Registry()
        return cls(
            registry=registry,
            requests=registry.counter(
                "ecloud_registry_http_requests_total",
                "HTTP requests",
                ("method", "route", "status"),
            ),
            latency=registry.histogram(
                "ecloud_registry_http_request_seconds", "Time to first response byte", ("route",)
            ),
        )


@dataclass(slots=True)
class RegistryContext:
    settings: RegistrySettings
    db: MetadataDB
    http: httpx.AsyncClient
    auth: RegistryAuth
    metrics: RegistryMetrics
    storage: StorageDriver
    blobs: BlobStore
    uploads: UploadManager
