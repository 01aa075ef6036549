"""``serve --workers 2``: one ``/metrics`` sums what every worker counted.

The auth service runs with two worker processes and an operator-chosen
``PROMETHEUS_MULTIPROC_DIR`` that holds a stale count from an earlier run
(which `serve` must clear). Requests on separate connections land on both
workers; each worker's own count is read from its file in that folder with
prometheus_client's collector, and the scrape must equal their sum, which
equals the number of requests sent.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import BIN, _base_env, free_port, wait_healthy
from tests.shared.promtext import sample, samples

COUNTER = "ecloud_auth_http_requests_total"
JWKS = {"method": "GET", "route": "/.well-known/jwks.json", "status": "200"}


def per_worker_counts(folder: Path, scratch: Path) -> dict[str, float]:
    """The jwks count in each worker's own counter file."""
    counts = {}
    for db in sorted(folder.glob("counter_*.db")):
        alone = scratch / db.stem
        alone.mkdir(parents=True, exist_ok=True)
        shutil.copy(db, alone / db.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        value = sample(generate_latest(registry).decode(), COUNTER, **JWKS)
        if value:
            counts[db.stem.removeprefix("counter_")] = value
    return counts


def test_a_counter_incremented_through_two_workers_sums(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    # A count left by an earlier run: serve must start from an empty folder.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from prometheus_client import Counter;"
            f"Counter('{COUNTER}', 'x', ['method', 'route', 'status'])"
            ".labels('GET', '/.well-known/jwks.json', '200').inc(1000)",
        ],
        env={"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=60,
    )
    assert list(folder.glob("counter_*.db"))

    env = _base_env(tmp_path)
    env.update({"ECLOUD_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    log = tmp_path / "auth.log"
    url = ""
    proc = None
    try:
        for attempt in range(3):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with log.open("ab") as handle:
                proc = subprocess.Popen(
                    [str(BIN / "ecloud-auth"), "serve", "--port", str(port)],
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            try:
                wait_healthy(url, proc, log, timeout=120)
                break
            except RuntimeError as exc:
                proc.kill()
                proc.wait()
                if "address already in use" not in str(exc).lower() or attempt == 2:
                    raise

        sent = 0
        deadline = time.monotonic() + 180
        counts: dict[str, float] = {}
        while len(counts) < 2:
            assert time.monotonic() < deadline, f"one worker served everything: {counts}"
            for _ in range(10):
                # A new connection each time: the kernel hands it to either worker.
                r = httpx.get(url + "/.well-known/jwks.json", timeout=30)
                assert r.status_code == 200
                sent += 1
            # A worker counts a request just after answering it: wait for the last.
            while True:
                counts = per_worker_counts(folder, tmp_path / f"scratch{sent}-{time.monotonic()}")
                if sum(counts.values()) >= sent or time.monotonic() > deadline:
                    break
                time.sleep(0.05)

        text = httpx.get(url + "/metrics", timeout=30).text
        # The stale 1000 is gone, and both workers' counts are summed.
        assert sample(text, COUNTER, **JWKS) == sent == sum(counts.values())
        pids = {labels["pid"] for labels, _ in samples(text, "process_resident_memory_bytes")}
        assert set(counts) <= pids and len(pids) >= 2
        assert all(v > 1_000_000 for _, v in samples(text, "process_resident_memory_bytes"))
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # The operator's folder stays; the workers have stopped.
    assert folder.is_dir()
