"""The GC crash hook (``ECLOUD_GC_TEST_CRASH_AFTER``) belongs to the ``gc`` command only.

A stray setting in a production environment must not kill a serving
registry: `serve`'s own sweeps ignore it; ``ecloud-registry gc`` honours it
(test_gc_races.py kills sweeps with it).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import httpx

from services.registry.gc import GCPolicy
from services.registry.settings import RegistrySettings
from tests.conftest import Stack
from tests.registry.gc_helpers import blob_file, gc_stack, run_gc
from tests.registry.manifest_helpers import Repo


def test_settings_never_carry_the_crash_hook() -> None:
    settings = RegistrySettings.from_env({"ECLOUD_GC_TEST_CRASH_AFTER": "1"})
    assert GCPolicy.from_settings(settings).crash_after == 0


def test_serve_sweeps_with_the_hook_set_and_keeps_running(
    make_stack: Callable[..., Stack],
) -> None:
    stack = gc_stack(make_stack, None, interval=1)
    stack.registry.stop()
    stack.registry.env = {**stack.registry.env, "ECLOUD_GC_TEST_CRASH_AFTER": "1"}
    stack.registry.start()
    repo = Repo.create(stack)
    # With no grace, the periodic sweep collects this unreferenced blob: a deletion.
    digest = repo.push_blob(secrets.token_bytes(2048))["digest"]
    deadline = time.monotonic() + 60
    while blob_file(stack, digest).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not blob_file(stack, digest).exists(), "the service never swept"
    assert stack.registry.proc is not None and stack.registry.proc.poll() is None
    assert httpx.get(stack.registry_url + "/healthz", timeout=10).status_code == 200

    # The gc command does honour it: it dies inside its first deletion.
    repo.push_blob(secrets.token_bytes(1024))
    stack.registry.stop()  # no periodic sweep racing the command for the blob
    crashed = run_gc(stack, env={"ECLOUD_GC_TEST_CRASH_AFTER": "1"})
    assert crashed.returncode == 137, crashed.stdout + crashed.stderr
