"""GC under fire: a sweep killed midway, and sweeps racing concurrent pushes (SQLite and PG).

The killed sweep dies through the test hook ``ECLOUD_GC_TEST_CRASH_AFTER``
(``os._exit`` inside the Nth deleting transaction, after any storage delete
and before the commit: the worst moment). The stress test runs pushers in
threads while the service sweeps every second and ``ecloud-registry gc``
runs in a loop, then pulls every tag it pushed and verifies every digest.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

import pytest

from tests.conftest import Stack
from tests.registry.gc_helpers import (
    assert_consistent,
    blob_file,
    blobs_of,
    gc_ok,
    gc_stack,
    pull_and_verify,
    push_image,
    run_gc,
)
from tests.registry.manifest_helpers import Repo, digest_of, error_code


@pytest.mark.parametrize("crash_after", [1, 4, 9])
def test_sweep_killed_midway_is_completed_by_the_next(
    make_stack: Callable[..., Stack], registry_db: str | None, crash_after: int
) -> None:
    lease = 20  # long enough that the busy check below runs inside it, even on a loaded CI
    stack = gc_stack(make_stack, registry_db, lease_seconds=lease)
    repo = Repo.create(stack)
    base = [secrets.token_bytes(1000) for _ in range(2)]
    kept_digest, kept_body = push_image(repo, "kept", base)
    doomed = [push_image(repo, f"t{i}", [*base, secrets.token_bytes(500)]) for i in range(4)]
    for i in range(4):
        assert repo.request("DELETE", f"manifests/t{i}").status_code == 202

    crashed = run_gc(stack, env={"ECLOUD_GC_TEST_CRASH_AFTER": str(crash_after)})
    died = time.monotonic()
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
    # The dead sweep's lease holds until it expires, then the next one runs.
    busy = run_gc(stack)
    assert time.monotonic() - died < lease, "the busy check came too late to mean anything"
    assert busy.returncode == 2, busy.stdout + busy.stderr
    time.sleep(max(0.0, died + lease + 0.5 - time.monotonic()))
    out = gc_ok(stack)
    assert out.splitlines()[-1].startswith("deleted ")

    for digest, body in doomed:
        assert repo.get_manifest(digest).status_code == 404
        assert not blob_file(stack, blobs_of(body)[-1]).exists()
    assert pull_and_verify(repo, "kept") == kept_digest
    for digest in blobs_of(kept_body):
        assert blob_file(stack, digest).exists()
    assert_consistent(stack)
    assert "deleted 0 objects" in gc_ok(stack)


def _pusher(
    stack: Stack,
    user: str,
    index: int,
    shared: list[bytes],
    rounds: int,
    pushed: dict[str, str],
    failures: list[str],
    retries: list[int],
) -> None:
    repo = Repo.create(stack, user, f"app{index % 2}")
    try:
        for n in range(rounds):
            tag = f"w{index}-{n}"
            layers = [*shared, secrets.token_bytes(700)]
            for _ in range(20):
                body = repo.image(layers)
                r = repo.put_manifest(tag, body)
                if r.status_code == 201:
                    pushed[f"{repo.name}:{tag}"] = digest_of(body)
                    break
                # A push slower than a tiny grace may lose its fresh blobs to
                # a sweep: the PUT must then fail cleanly, and a retry work.
                assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN", r.text
                retries.append(1)
            else:
                failures.append(f"{tag}: never stored")
            if n % 2 == 1:
                # Garbage for the sweeps: drop the previous tag.
                assert repo.request("DELETE", f"manifests/w{index}-{n - 1}").status_code == 202
                pushed.pop(f"{repo.name}:w{index}-{n - 1}", None)
    except Exception as exc:  # surfaced by the main thread
        failures.append(repr(exc))


# Grace 2 s: sweeps (every second, plus the CLI loop) constantly race pushes
# at the grace boundary; 120 s: no push may ever lose a blob to a sweep.
@pytest.mark.parametrize("grace", [2, 120])
def test_sweeps_racing_pushes_lose_nothing(
    make_stack: Callable[..., Stack], registry_db: str | None, grace: int
) -> None:
    stack = gc_stack(make_stack, registry_db, interval=1, grace=grace)
    user, _ = stack.create_user()
    shared = [secrets.token_bytes(1500) for _ in range(3)]
    pushed: dict[str, str] = {}
    failures: list[str] = []
    retries: list[int] = []
    threads = [
        threading.Thread(
            target=_pusher, args=(stack, user, i, shared, 6, pushed, failures, retries)
        )
        for i in range(4)
    ]
    for t in threads:
        t.start()
    sweeps = 0
    while any(t.is_alive() for t in threads) and sweeps < 15:
        result = run_gc(stack)  # racing the service's own 1 s sweeps too
        assert result.returncode in (0, 2), result.stdout + result.stderr
        sweeps += 1
    for t in threads:
        t.join(timeout=300)
    assert failures == []
    assert sweeps >= 2
    if grace > 60:
        assert retries == [], "a blob younger than the grace was collected"
    time.sleep(1.5)  # let a last service sweep finish and release its lease
    for _ in range(20):
        if run_gc(stack).returncode == 0:
            break
        time.sleep(0.5)
    assert len(pushed) == 4 * 3
    for reference, digest in pushed.items():
        name, tag = reference.split(":")
        repo = Repo.create(stack, user, name.split("/", 1)[1])
        assert pull_and_verify(repo, tag) == digest
    if grace < 60:  # once everything is past the grace, a sweep leaves no leftovers
        time.sleep(grace)
        assert run_gc(stack).returncode in (0, 2)
    assert_consistent(stack, complete=grace < 60)
