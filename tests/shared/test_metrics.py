"""Metrics: the `Registry` call shapes on prometheus_client, and what the services expose."""

from __future__ import annotations

import secrets

import httpx
import pytest

from shared.metrics import Registry
from tests.conftest import Stack
from tests.registry.gc_helpers import push_image
from tests.registry.manifest_helpers import Repo
from tests.shared.promtext import sample, samples


def test_registry_call_shapes_and_exposition() -> None:
    metrics = Registry()
    assert not metrics.multiprocess
    requests = metrics.counter("t_requests_total", "Requests", ("method", "status"))
    plain = metrics.counter("t_plain_total", "No labels")
    level = metrics.gauge("t_level", "A level", ("kind",))
    latency = metrics.histogram("t_seconds", "Latency", ("route",), buckets=(0.1, 1.0))
    requests.inc(method="GET", status="200")
    requests.inc(2, method="GET", status="200")
    requests.inc(method="PUT")  # a label left out is ""
    plain.inc(5)
    level.set(7, kind="a")
    level.set(3, kind="a")
    latency.observe(0.5, route="/x")
    latency.observe(5, route="/x")
    text = metrics.render()
    assert sample(text, "t_requests_total", method="GET", status="200") == 3
    assert sample(text, "t_requests_total", method="PUT", status="") == 1
    assert sample(text, "t_plain_total") == 5
    assert sample(text, "t_level", kind="a") == 3
    assert sample(text, "t_seconds_bucket", route="/x", le="1.0") == 1
    assert sample(text, "t_seconds_bucket", route="/x", le="+Inf") == 2
    assert sample(text, "t_seconds_count", route="/x") == 2
    assert "_created" not in text
    # The process itself: memory, CPU, open files.
    assert (sample(text, "process_resident_memory_bytes") or 0) > 1_000_000
    assert sample(text, "process_open_fds") is not None
    assert sample(text, "process_cpu_seconds_total") is not None
    # Two registries (two apps in one process) never clash.
    Registry().counter("t_requests_total", "Requests", ("method", "status")).inc(method="X")
    with pytest.raises(ValueError, match="aggregate"):
        metrics.gauge("t_bad", "x", aggregate="avg")  # type: ignore[arg-type]


def test_services_expose_process_upload_and_gc_queue_metrics(stack: Stack) -> None:
    for url in (stack.auth_url, stack.registry_url):
        text = httpx.get(url + "/metrics", timeout=10).text
        assert (sample(text, "process_resident_memory_bytes") or 0) > 1_000_000
        assert sample(text, "process_open_fds") is not None
    before = httpx.get(stack.registry_url + "/metrics", timeout=10).text
    received = sample(before, "ecloud_registry_upload_bytes_total") or 0
    waiting = sample(before, "ecloud_registry_gc_queue_depth", queue="manifest", state="waiting")

    repo = Repo.create(stack)
    layers = [secrets.token_bytes(3000), secrets.token_bytes(1234)]
    push_image(repo, "v1", layers)
    r = httpx.delete(
        f"{stack.registry_url}/api/repos/{repo.name}/tags/v1",
        headers={"Authorization": f"Bearer {stack.session(repo.user)}"},
        timeout=30,
    )
    assert r.status_code == 204, r.text

    after = httpx.get(stack.registry_url + "/metrics", timeout=10).text
    # Both layers and the config went through upload bodies.
    assert (sample(after, "ecloud_registry_upload_bytes_total") or 0) >= received + 4234
    # The deleted tag's manifest waits for its grace in the review queue.
    assert (
        sample(after, "ecloud_registry_gc_queue_depth", queue="manifest", state="waiting")
        == (waiting or 0) + 1
    )
    states = {
        (labels["queue"], labels["state"])
        for labels, _ in samples(after, "ecloud_registry_gc_queue_depth")
    }
    assert states == {(q, s) for q in ("manifest", "blob") for s in ("due", "waiting")}
    # Today's names are kept.
    for name in (
        "ecloud_registry_http_requests_total",
        "ecloud_registry_http_request_seconds_count",
    ):
        assert samples(after, name), name
