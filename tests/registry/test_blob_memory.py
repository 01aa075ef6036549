"""The registry streams blobs: pushing and pulling 64 MiB barely moves its memory."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.blob_memory import MIB, run
from tests.conftest import Stack


def test_push_and_pull_64_mib_in_bounded_memory(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    user, _ = stack.create_user()
    repository = f"{user}/memory"
    token = stack.token(user, f"repository:{repository}:pull,push")
    assert stack.registry.proc is not None
    result = run(stack.registry_url, token, repository, stack.registry.proc.pid, 64 * MIB)
    # Holding the body (or the blob) whole would add at least 64 MiB.
    assert result.vm_hwm - result.baseline_rss < 24 * MIB, result.report()
