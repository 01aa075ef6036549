"""Image push and pull throughput through the load balancer, 1 and 3 registry replicas.

Each configuration is a fresh `scripts/cluster` (registries on PostgreSQL, blobs in
moto's S3, HAProxy round-robin in front, one auth service); a few clients push
images concurrently through HAProxy (POST, one streamed PATCH per layer, PUT, then
the manifest), then pull them back (manifest and every layer, each digest checked).
Prints a table and stops everything it started.

    .venv/bin/python benchmarks/cluster.py [--images 8] [--layers 3] [--layer-mib 4]
                                           [--concurrency 4] [--replicas 1,3]

On a small machine every replica, HAProxy, PostgreSQL and moto share the same
cores: the figures then show the cost of the extra hops more than scaling.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "cluster"
BIN = Path(sys.executable).parent
MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_images(count: int, layers: int, layer_size: int) -> list[tuple[bytes, list[bytes]]]:
    images = []
    for i in range(count):
        blobs = [os.urandom(layer_size) for _ in range(layers)]
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": i}).encode()
        images.append((config, blobs))
    return images


def manifest_of(config: bytes, blobs: list[bytes]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(b),
                    "size": len(b),
                }
                for b in blobs
            ],
        }
    ).encode()


async def push_blob(c: httpx.AsyncClient, repo: str, data: bytes) -> None:
    r = await c.post(f"/v2/{repo}/blobs/uploads/")
    r.raise_for_status()
    r = await c.patch(
        r.headers["location"], content=data, headers={"Content-Type": "application/octet-stream"}
    )
    r.raise_for_status()
    r = await c.put(r.headers["location"], params={"digest": digest(data)})
    r.raise_for_status()


async def push_all(url: str, token: str, repo: str, images: list, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as c:

        async def one(i: int, config: bytes, blobs: list[bytes]) -> None:
            async with gate:
                for blob in [config, *blobs]:
                    await push_blob(c, repo, blob)
                r = await c.put(
                    f"/v2/{repo}/manifests/img{i}",
                    content=manifest_of(config, blobs),
                    headers={"Content-Type": OCI_MANIFEST},
                )
                r.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(one(i, cfg, blobs) for i, (cfg, blobs) in enumerate(images)))
        return time.perf_counter() - start


async def pull_all(url: str, token: str, repo: str, count: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as c:

        async def one(i: int) -> None:
            async with gate:
                r = await c.get(f"/v2/{repo}/manifests/img{i}", headers={"Accept": OCI_MANIFEST})
                r.raise_for_status()
                manifest = r.json()
                for d in [manifest["config"], *manifest["layers"]]:
                    hasher = hashlib.sha256()
                    async with c.stream("GET", f"/v2/{repo}/blobs/{d['digest']}") as r:
                        r.raise_for_status()
                        async for chunk in r.aiter_bytes():
                            hasher.update(chunk)
                    assert "sha256:" + hasher.hexdigest() == d["digest"], d["digest"]

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - start


def bench(replicas: int, images: list, concurrency: int) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix=f"ecloud-bench-{replicas}-"))
    env = {
        **os.environ,
        "ECLOUD_CLUSTER_AUTH_ARGON2_MEMORY_KIB": "8192",
        "ECLOUD_CLUSTER_AUTH_ARGON2_TIME_COST": "1",
        "ECLOUD_CLUSTER_REGISTRY_GC_INTERVAL": "0",
        "ECLOUD_CLUSTER_REGISTRY_LOG_LEVEL": "warning",
        "ECLOUD_CLUSTER_AUTH_LOG_LEVEL": "warning",
    }
    common = ["--dir", str(root)]
    subprocess.run(
        [sys.executable, str(SCRIPT), "start", *common, "--registries", str(replicas),
         "--auths", "1"],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    try:
        state = json.loads((root / "cluster.json").read_text())
        admin, password = "bench", secrets.token_urlsafe(12)
        subprocess.run(
            [str(BIN / "ecloud-auth"), "users", "create", admin, "--admin", "--password-stdin"],
            input=password + "\n",
            env={**os.environ, **state["processes"]["auth-1"]["env"]},
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        repo = f"{admin}/bench"
        r = httpx.get(
            state["auth_url"] + "/v2/token",
            params={"service": "registry", "scope": f"repository:{repo}:pull,push"},
            auth=(admin, password),
            timeout=30,
        )
        r.raise_for_status()
        token = r.json()["token"]
        url = state["registry_url"]
        push = asyncio.run(push_all(url, token, repo, images, concurrency))
        pull = asyncio.run(pull_all(url, token, repo, len(images), concurrency))
        return push, pull
    finally:
        subprocess.run(
            [sys.executable, str(SCRIPT), "stop", *common], capture_output=True, timeout=300
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--layer-mib", type=float, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--replicas", default="1,3")
    args = parser.parse_args()
    images = make_images(args.images, args.layers, int(args.layer_mib * MIB))
    total = sum(len(cfg) + sum(map(len, blobs)) for cfg, blobs in images) / MIB
    print(
        f"{args.images} images x {args.layers} layers x {args.layer_mib:g} MiB"
        f" ({total:.0f} MiB), {args.concurrency} clients, {os.cpu_count()} CPUs"
    )
    print(f"{'registries':>10} | {'push MiB/s':>10} | {'push img/s':>10} | "
          f"{'pull MiB/s':>10} | {'pull img/s':>10}")  # fmt: skip
    for replicas in (int(n) for n in args.replicas.split(",")):
        push, pull = bench(replicas, images, args.concurrency)
        print(
            f"{replicas:>10} | {total / push:>10.1f} | {args.images / push:>10.2f} | "
            f"{total / pull:>10.1f} | {args.images / pull:>10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
