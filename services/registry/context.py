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
from shared.metrics import Counter, Gauge, Histogram, Registry

__all__ = ["RegistryContext", "RegistryMetrics"]


@dataclass(slots=True)
class RegistryMetrics:
    registry: Registry
    requests: Counter
    latency: Histogram
    gc_objects: Counter
    gc_bytes: Counter
    gc_sweep_seconds: Histogram
    gc_last_success: Gauge
    gc_sweeps: Counter
    gc_queue_depth: Gauge
    upload_bytes: Counter

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
            gc_objects=registry.counter(
                "ecloud_registry_gc_collected_objects_total",
                "Objects removed by garbage collection in this process",
                ("kind",),
            ),
            gc_bytes=registry.counter(
                "ecloud_registry_gc_collected_bytes_total",
                "Bytes removed by garbage collection in this process (links free none)",
                ("kind",),
            ),
            gc_sweep_seconds=registry.histogram(
                "ecloud_registry_gc_sweep_seconds",
                "Duration of garbage collection sweeps",
                buckets=(0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0),
            ),
            gc_last_success=registry.gauge(
                "ecloud_registry_gc_last_success_timestamp_seconds",
                "Unix time at which the last successful sweep of this service's processes ended",
                aggregate="max",
            ),
            gc_sweeps=registry.counter(
                "ecloud_registry_gc_sweeps_total",
                "Garbage collection sweeps by outcome (success, failure, skipped, lease_lost)",
                ("outcome",),
            ),
            gc_queue_depth=registry.gauge(
                "ecloud_registry_gc_queue_depth",
                "Items waiting in the garbage collection review queues (manifest, blob),"
                " by whether their review time has come (due) or not (waiting);"
                " read from the database at each scrape",
                ("queue", "state"),
            ),
            upload_bytes=registry.counter(
                "ecloud_registry_upload_bytes_total",
                "Bytes of blob data received in upload requests (POST, PATCH, PUT bodies)",
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
