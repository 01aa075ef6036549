"""Blob push/pull speed and memory: ecloud registry beside CNCF distribution.

Runs the same streamed push (POST, one PATCH, PUT ?digest=) and pull of one
blob against distribution (Debian's ``docker-registry``, filesystem storage,
no auth) and against our registry (with the full token flow, SQLite, local
folder), each started fresh on loopback, and prints a table. Stops by itself.

    python benchmarks/compare_distribution.py [--size-mib 512] [--rounds 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.blob_memory import MIB, Result, run
from tests.conftest import build_stack, free_port

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def bench_distribution(binary: str, tmp: Path, size: int) -> Result:
    port = free_port()
    config = tmp / "config.yml"
    config.write_text(DISTRIBUTION_CONFIG.format(root=tmp / "storage", port=port))
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        return run(url, "none", "bench/blob", proc.pid, size)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bench_ecloud(tmp: Path, size: int) -> Result:
    stack = build_stack(tmp / "stack", {"ECLOUD_LOG_LEVEL": "warning"})
    try:
        user, _ = stack.create_user()
        repository = f"{user}/bench"
        token = stack.token(user, f"repository:{repository}:pull,push")
        assert stack.registry.proc is not None
        return run(stack.registry_url, token, repository, stack.registry.proc.pid, size)
    finally:
        stack.stop()


def row(name: str, results: list[Result]) -> str:
    mib = results[0].size / MIB
    up = max(mib / r.upload_seconds for r in results)
    down = max(mib / r.download_seconds for r in results)
    peak = max(r.vm_hwm for r in results) / MIB
    return f"{name:<26} {up:9.0f} {down:11.0f} {peak:13.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2, help="best of N rounds")
    args = parser.parse_args()
    size = args.size_mib * MIB
    binary = shutil.which("docker-registry")
    results: dict[str, list[Result]] = {"ecloud registry": [], "distribution 2.8": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="ecloud-cmp-") as tmp:
            results["ecloud registry"].append(bench_ecloud(Path(tmp), size))
        if binary:
            with tempfile.TemporaryDirectory(prefix="ecloud-cmp-") as tmp:
                results["distribution 2.8"].append(bench_distribution(binary, Path(tmp), size))
    print(f"blob {args.size_mib} MiB, best of {args.rounds}")
    print(f"{'registry':<26} {'push MB/s':>9} {'pull MB/s':>11} {'peak RSS MiB':>13}")
    for name, rs in results.items():
        if rs:
            print(row(name, rs))
        else:
            print(f"{name:<26} (docker-registry not installed: apt-get install docker-registry)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
