"""Push and pull one large blob through the registry and watch its memory.

Usage:
  python benchmarks/blob_memory.py                 # starts its own auth + registry (SQLite)
  python benchmarks/blob_memory.py --size-mib 64
  python benchmarks/blob_memory.py --registry-url http://127.0.0.1:5000 \\
      --auth-url http://127.0.0.1:5001 --user alice --password ... --pid <registry pid>

The blob is generated on the fly and streamed (docker's way: POST, one PATCH
with a chunked body, PUT ?digest=), then downloaded and hashed. A sampler
reads the registry process's VmRSS from /proc/<pid>/status every 20 ms; the
peak reported is VmHWM (the kernel's own high-water mark). Exits 1 when the
peak exceeds --limit-mib (default 200).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CHUNK = 1024 * 1024
MIB = 1024 * 1024


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in bytes."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


@dataclass
class Sampler:
    pid: int
    interval: float = 0.02
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, proc_status(self.pid)["VmRSS"])
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def generate(size: int, hasher: hashlib._Hash) -> Iterator[bytes]:
    """`size` pseudo-random bytes in 1 MiB chunks, hashed as they are produced."""
    block = os.urandom(CHUNK)
    sent = 0
    index = 0
    while sent < size:
        chunk = (index.to_bytes(8, "big") + block[8:])[: size - sent]
        hasher.update(chunk)
        sent += len(chunk)
        index += 1
        yield chunk


@dataclass
class Result:
    size: int
    baseline_rss: int
    peak_rss_sampled: int
    vm_hwm: int
    upload_seconds: float
    download_seconds: float

    def report(self) -> str:
        mib = self.size / MIB
        return "\n".join(
            [
                f"blob size:            {mib:.0f} MiB",
                f"registry RSS before:  {self.baseline_rss / MIB:.1f} MiB",
                f"registry peak RSS:    {self.peak_rss_sampled / MIB:.1f} MiB (sampled)",
                f"registry VmHWM:       {self.vm_hwm / MIB:.1f} MiB",
                f"upload:               {mib / self.upload_seconds:.0f} MB/s"
                f" ({self.upload_seconds:.1f} s)",
                f"download:             {mib / self.download_seconds:.0f} MB/s"
                f" ({self.download_seconds:.1f} s)",
            ]
        )


def run(registry_url: str, token: str, repository: str, pid: int, size: int) -> Result:
    headers = {"Authorization": f"Bearer {token}"}
    baseline = proc_status(pid)["VmRSS"]
    with (
        Sampler(pid) as sampler,
        httpx.Client(base_url=registry_url, headers=headers, timeout=600) as client,
    ):
        hasher = hashlib.sha256()
        began = time.perf_counter()
        r = client.post(f"/v2/{repository}/blobs/uploads/")
        r.raise_for_status()
        r = client.patch(r.headers["location"], content=generate(size, hasher))
        r.raise_for_status()
        digest = "sha256:" + hasher.hexdigest()
        # Append to the Location's own query (distribution keeps its upload state there).
        location = r.headers["location"]
        r = client.put(f"{location}{'&' if '?' in location else '?'}digest={digest}")
        if r.status_code != 201:
            raise RuntimeError(f"PUT failed: {r.status_code} {r.text}")
        uploaded = time.perf_counter()
        check = hashlib.sha256()
        received = 0
        with client.stream("GET", f"/v2/{repository}/blobs/{digest}") as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(CHUNK):
                check.update(chunk)
                received += len(chunk)
        downloaded = time.perf_counter()
    if received != size or "sha256:" + check.hexdigest() != digest:
        raise RuntimeError("downloaded blob differs from the uploaded one")
    return Result(
        size=size,
        baseline_rss=baseline,
        peak_rss_sampled=sampler.peak_rss,
        vm_hwm=proc_status(pid)["VmHWM"],
        upload_seconds=uploaded - began,
        download_seconds=downloaded - uploaded,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--limit-mib", type=int, default=200)
    parser.add_argument("--registry-url")
    parser.add_argument("--auth-url")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--pid", type=int, help="registry process id (for /proc/<pid>/status)")
    args = parser.parse_args()
    size = args.size_mib * MIB

    if args.registry_url:
        if not (args.auth_url and args.user and args.password and args.pid):
            parser.error("--registry-url needs --auth-url, --user, --password and --pid")
        repository = f"{args.user}/bench-memory"
        token = httpx.get(
            args.auth_url.rstrip("/") + "/v2/token",
            params={"service": "registry", "scope": f"repository:{repository}:pull,push"},
            auth=(args.user, args.password),
            timeout=10,
        ).json()["token"]
        result = run(args.registry_url, token, repository, args.pid, size)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.conftest import build_stack

        with tempfile.TemporaryDirectory(prefix="ecloud-bench-") as tmp:
            stack = build_stack(Path(tmp) / "stack")
            try:
                user, _ = stack.create_user()
                repository = f"{user}/bench-memory"
                token = stack.token(user, f"repository:{repository}:pull,push")
                assert stack.registry.proc is not None
                result = run(stack.registry_url, token, repository, stack.registry.proc.pid, size)
            finally:
                stack.stop()
    print(result.report())
    if result.vm_hwm > args.limit_mib * MIB:
        print(f"FAIL: peak RSS above {args.limit_mib} MiB", file=sys.stderr)
        return 1
    print(f"OK: peak RSS below {args.limit_mib} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
