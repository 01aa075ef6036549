"""Several replicas working together, proven under failure, through HAProxy.

One cluster for the whole module, started and stopped by ``scripts/cluster``:
2 auth and 3 registry processes on fresh PostgreSQL databases, moto as S3, Redis
for the rate limits, HAProxy round-robin in front (each answer names the replica
that served it in ``X-Ecloud-Replica``). Real clients (skopeo, podman) push and
pull through it; one registry replica is SIGKILLed in the middle of pushes; GC
starts on every replica at once; failed logins are counted across both auth
replicas; a revoked session stops working on every registry replica.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import itertools
import json
import os
import secrets
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BIN, PG_DSN, ROOT
from tests.e2e.conftest import client_env
from tests.needs import missing, need_module, need_tool

pytestmark = pytest.mark.e2e

SCRIPT = ROOT / "scripts" / "cluster"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
FAILURE_LIMIT = 4
REVOCATION_POLL = 2  # ECLOUD_REVOCATION_POLL_SECONDS of the cluster's registries


@dataclass
class Cluster:
    root: Path
    state: dict[str, Any]
    clients: dict[str, str]
    admin: str = ""
    admin_session: str = ""

    @property
    def registry_url(self) -> str:
        return str(self.state["registry_url"])

    @property
    def auth_url(self) -> str:
        return str(self.state["auth_url"])

    @property
    def host(self) -> str:
        return self.registry_url.removeprefix("http://")

    def replica_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.state['processes'][name]['port']}"

    def env(self, name: str) -> dict[str, str]:
        return {**os.environ, **self.state["processes"][name]["env"]}

    def script(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, str(SCRIPT), *args, "--dir", str(self.root)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def reload(self) -> None:
        self.state = json.loads((self.root / "cluster.json").read_text())

    def user(self) -> tuple[str, str]:
        name, password = f"u{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        r = httpx.post(
            self.auth_url + "/admin/users",
            json={"username": name, "password": password},
            headers={"Authorization": f"Bearer {self.admin_session}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return name, password

    def token(self, user: tuple[str, str], *scopes: str) -> str:
        params = [("service", "registry")] + [("scope", s) for s in scopes]
        r = httpx.get(self.auth_url + "/v2/token", params=params, auth=user, timeout=30)
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(args), env=self.clients, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need_tool("haproxy", apt="haproxy")
    need_tool("skopeo")
    need_tool("podman")
    need_module("moto.server", pip="moto[server]")
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=5).close()
    except OSError as exc:
        missing(f"Redis at 127.0.0.1:6379 ({exc})", "start it (.ci/run does)")
    root = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "ECLOUD_CLUSTER_PG": PG_DSN,
        "ECLOUD_CLUSTER_AUTH_ARGON2_MEMORY_KIB": "8192",
        "ECLOUD_CLUSTER_AUTH_ARGON2_TIME_COST": "1",
        "ECLOUD_CLUSTER_AUTH_ARGON2_PARALLELISM": "1",
        "ECLOUD_CLUSTER_AUTH_RATE_LIMIT_FAILURES": f"{FAILURE_LIMIT}/300",
        "ECLOUD_CLUSTER_REGISTRY_GC_INTERVAL": "0",
        "ECLOUD_CLUSTER_REGISTRY_GC_GRACE": "0",
    }
    start = subprocess.run(
        [sys.executable, str(SCRIPT), "start", "--dir", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        assert "ecloud-auth users create admin --admin" in start.stdout
        state = json.loads((root / "cluster.json").read_text())
        host = state["registry_url"].removeprefix("http://")
        cluster = Cluster(root, state, client_env(root / "clients", host))
        # The first user, as the script's message says: `ecloud-auth users create`.
        cluster.admin, password = f"admin{secrets.token_hex(3)}", secrets.token_urlsafe(12)
        subprocess.run(
            [str(BIN / "ecloud-auth"), "users", "create", cluster.admin, "--admin",
             "--password-stdin"],
            input=password + "\n", env=cluster.env("auth-1"), check=True, timeout=120,
            capture_output=True, text=True,
        )  # fmt: skip
        r = httpx.post(
            cluster.auth_url + "/api/login",
            json={"username": cluster.admin, "password": password},
            timeout=30,
        )
        cluster.admin_session = r.json()["token"]
        yield cluster
    finally:
        subprocess.run(
            [sys.executable, str(SCRIPT), "stop", "--dir", str(root)],
            env=env,
            capture_output=True,
            timeout=300,
        )
        assert not (root / "cluster.json").exists(), "scripts/cluster stop left its state"


# -- images, written as OCI layouts in Python (real gzip'd tar layers) --------------------


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(name: str, size: int) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, compresslevel=1, mtime=0), hashlib.sha256(tar_bytes).hexdigest()


def make_layout(layout: Path, images: dict[str, tuple[str, list[int]]]) -> Path:
    """An OCI layout with one image per tag (architecture, layer sizes), plus ``multi``:
    an index of every image."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    refs = []
    for tag, (arch, sizes) in images.items():
        layers, diff_ids = [], []
        for i, size in enumerate(sizes):
            data, diff_id = _layer(f"{tag}-{i}.bin", size)
            layers.append(
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(layout, data)}
            )
            diff_ids.append(f"sha256:{diff_id}")
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Cmd": ["/bin/true"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    **_blob(layout, config),
                },
                "layers": layers,
            }
        ).encode()
        refs.append(
            (tag, arch, {"mediaType": OCI_MANIFEST, **_blob(layout, manifest)}),
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {**d, "platform": {"architecture": arch, "os": "linux"}} for _, arch, d in refs
            ],
        }
    ).encode()
    entries = [
        {**d, "annotations": {"org.opencontainers.image.ref.name": tag}} for tag, _, d in refs
    ]
    entries.append(
        {
            "mediaType": OCI_INDEX,
            **_blob(layout, index),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }
    )
    (layout / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    )
    return layout


def digest_in(layout: Path, tag: str) -> str:
    for entry in json.loads((layout / "index.json").read_text())["manifests"]:
        if entry["annotations"]["org.opencontainers.image.ref.name"] == tag:
            return str(entry["digest"])
    raise KeyError(tag)


def skopeo_copy(
    cluster: Cluster, user: tuple[str, str], src: str, dest: str, *extra: str, attempts: int = 1
) -> int:
    """Copy with skopeo; `attempts` > 1 runs it again after a failure, as a CI job's
    retry would (skopeo 1.9 retries network errors itself, but not a 502 from the
    load balancer for an upload cut by a dying replica). Returns the runs needed."""
    creds = f"{user[0]}:{user[1]}"
    argv = [
        "skopeo", "copy", "--retry-times", "5", "--dest-tls-verify=false",
        "--src-tls-verify=false", "--dest-creds", creds, "--src-creds", creds, *extra, src, dest,
    ]  # fmt: skip
    for attempt in range(1, attempts + 1):
        result = subprocess.run(
            argv, env=cluster.clients, capture_output=True, text=True, timeout=300
        )
        if result.returncode == 0:
            return attempt
    raise AssertionError(f"{argv}: {result.stdout}\n{result.stderr}")


def remote_digest(cluster: Cluster, user: tuple[str, str], ref: str, host: str = "") -> str:
    raw = cluster.run(
        "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", f"{user[0]}:{user[1]}",
        f"docker://{host or cluster.host}/{ref}",
    ).stdout  # fmt: skip
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def served_by(cluster: Cluster) -> dict[str, int]:
    """Requests each backend server answered, from HAProxy's statistics (CSV)."""
    rows = httpx.get(cluster.state["stats_url"] + ";csv", timeout=10).text.splitlines()
    header = rows[0].lstrip("# ").split(",")
    counts = {}
    for row in rows[1:]:
        fields = dict(zip(header, row.split(","), strict=False))
        if fields.get("svname", "").startswith(("registry-", "auth-")):
            counts[fields["svname"]] = int(fields["stot"] or 0)
    return counts


# -- the steps: one test, each step a subtest (one cluster per run, not per xdist worker) --


def clients_push_and_pull_through_the_load_balancer(cluster: Cluster, tmp_path: Path) -> None:
    before = served_by(cluster)
    user = cluster.user()
    layout = make_layout(
        tmp_path / "oci",
        {"amd64": ("amd64", [300_000, 200_000, 1000]), "arm64": ("arm64", [250_000, 2000])},
    )
    skopeo_copy(cluster, user, f"oci:{layout}:amd64", f"docker://{cluster.host}/{user[0]}/app:v1")
    skopeo_copy(
        cluster, user, f"oci:{layout}:multi", f"docker://{cluster.host}/{user[0]}/multi:v1", "--all"
    )
    assert remote_digest(cluster, user, f"{user[0]}/app:v1") == digest_in(layout, "amd64")
    assert remote_digest(cluster, user, f"{user[0]}/multi:v1") == digest_in(layout, "multi")
    pulled = tmp_path / "pulled"
    skopeo_copy(
        cluster, user, f"docker://{cluster.host}/{user[0]}/multi:v1", f"oci:{pulled}:m", "--all"
    )
    assert digest_in(pulled, "m") == digest_in(layout, "multi")
    # podman: pull the image (layers unpacked and checked), push it back under a new tag.
    image = f"{cluster.host}/{user[0]}/app:v1"
    creds = f"{user[0]}:{user[1]}"
    cluster.run("podman", "pull", "-q", "--tls-verify=false", "--creds", creds, image)
    digest = cluster.run("podman", "image", "inspect", "--format", "{{.Digest}}", image).stdout
    assert digest.strip() == digest_in(layout, "amd64")
    copy = f"{cluster.host}/{user[0]}/copy:v1"
    cluster.run("podman", "tag", image, copy)
    cluster.run("podman", "push", "-q", "--tls-verify=false", "--creds", creds,
                copy)  # fmt: skip
    cluster.run("podman", "rmi", "-f", image, copy)
    cluster.run("podman", "pull", "-q", "--tls-verify=false", "--creds", creds, copy)
    # Every registry replica took part.
    after = served_by(cluster)
    for i in (1, 2, 3):
        assert after[f"registry-{i}"] > before.get(f"registry-{i}", 0), after


def chunked_upload_across_three_replicas(cluster: Cluster, tmp_path: Path) -> None:
    user = cluster.user()
    name = f"{user[0]}/chunks"
    headers = {"Authorization": f"Bearer {cluster.token(user, f'repository:{name}:pull,push')}"}
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    cut = [0, 1024 * 1024, 2 * 1024 * 1024 + 5, len(data)]

    def on(replica: str) -> httpx.Client:
        return httpx.Client(base_url=cluster.replica_url(replica), headers=headers, timeout=60)

    with on("registry-1") as c:
        r = c.post(f"/v2/{name}/blobs/uploads/")
        assert r.status_code == 202, r.text
        location = r.headers["location"]
    replicas = ["registry-2", "registry-3", "registry-1"]
    for (start, end), replica in zip(itertools.pairwise(cut), replicas, strict=True):
        with on(replica) as c:
            r = c.patch(
                location,
                content=data[start:end],
                headers={"Content-Range": f"{start}-{end - 1}"},
            )
            assert r.status_code == 202 and r.headers["range"] == f"0-{end - 1}", r.text
    with on("registry-2") as c:
        assert c.get(location).headers["range"] == f"0-{len(data) - 1}"
    with on("registry-3") as c:
        r = c.put(location, params={"digest": digest})
        assert r.status_code == 201, r.text
    # Read back through the load balancer, by each replica in turn.
    seen = set()
    with httpx.Client(base_url=cluster.registry_url, headers=headers, timeout=60) as c:
        for _ in range(3):
            r = c.get(f"/v2/{name}/blobs/{digest}")
            assert r.status_code == 200 and r.content == data
            seen.add(r.headers["x-ecloud-replica"])
        # The same through HAProxy's rotation: POST, PATCH, PUT on whichever come.
        small = os.urandom(1000)
        r = c.post(f"/v2/{name}/blobs/uploads/")
        where = [r.headers["x-ecloud-replica"]]
        r = c.patch(r.headers["location"], content=small)
        where.append(r.headers["x-ecloud-replica"])
        small_digest = "sha256:" + hashlib.sha256(small).hexdigest()
        r = c.put(r.headers["location"], params={"digest": small_digest})
        where.append(r.headers["x-ecloud-replica"])
        assert r.status_code == 201, r.text
        assert c.get(f"/v2/{name}/blobs/{small_digest}").content == small
    assert seen == {"registry-1", "registry-2", "registry-3"}
    assert len(set(where)) == 3, where


def replica_killed_in_the_middle_of_pushes(cluster: Cluster, tmp_path: Path) -> None:
    user = cluster.user()
    tags = [f"t{i}" for i in range(4)]
    layout = make_layout(
        tmp_path / "oci", {t: ("amd64", [2_000_000, 1_500_000, 700_000]) for t in tags}
    )
    errors: list[BaseException] = []

    runs: dict[str, int] = {}

    def push(tag: str) -> None:
        try:
            runs[tag] = skopeo_copy(
                cluster,
                user,
                f"oci:{layout}:{tag}",
                f"docker://{cluster.host}/{user[0]}/k:{tag}",
                attempts=3,
            )
        except BaseException as exc:
            errors.append(exc)

    before = served_by(cluster)["registry-2"]
    threads = [threading.Thread(target=push, args=(t,)) for t in tags]
    for thread in threads:
        thread.start()
    # SIGKILL registry-2 once it has taken part in these pushes.
    deadline = time.monotonic() + 120
    while served_by(cluster)["registry-2"] < before + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.script("kill", "registry-2")
    killed_at = served_by(cluster)["registry-2"]
    for thread in threads:
        thread.join(600)
    assert not errors, errors
    print(f"runs per push after the SIGKILL: {runs}")
    assert killed_at > before  # the replica really was serving these pushes when it died
    for tag in tags:
        assert remote_digest(cluster, user, f"{user[0]}/k:{tag}") == digest_in(layout, tag)
        pulled = tmp_path / f"pulled-{tag}"
        # skopeo verifies every blob's digest as it copies.
        skopeo_copy(cluster, user, f"docker://{cluster.host}/{user[0]}/k:{tag}", f"oci:{pulled}:x")
        assert digest_in(pulled, "x") == digest_in(layout, tag)
    # Restarted, it serves everything by itself, with no repair.
    cluster.script("restart", "registry-2")
    cluster.reload()
    direct = cluster.replica_url("registry-2").removeprefix("http://")
    for tag in tags:
        assert remote_digest(cluster, user, f"{user[0]}/k:{tag}", direct) == digest_in(layout, tag)
    pulled = tmp_path / "pulled-direct"
    skopeo_copy(cluster, user, f"docker://{direct}/{user[0]}/k:t0", f"oci:{pulled}:x")
    assert digest_in(pulled, "x") == digest_in(layout, "t0")


def gc_on_every_replica_at_once(cluster: Cluster, tmp_path: Path) -> None:
    import asyncpg

    user = cluster.user()
    layout = make_layout(
        tmp_path / "oci", {"one": ("amd64", [50_000, 40_000]), "two": ("amd64", [60_000])}
    )
    # "two" shares "one"'s first layer: the layout holds it once, under both manifests.
    index = json.loads((layout / "index.json").read_text())
    one = json.loads((layout / "blobs/sha256" / digest_in(layout, "one")[7:]).read_bytes())
    two_path = layout / "blobs/sha256" / digest_in(layout, "two")[7:]
    two = json.loads(two_path.read_bytes())
    config = json.loads((layout / "blobs/sha256" / two["config"]["digest"][7:]).read_bytes())
    diff_one = json.loads((layout / "blobs/sha256" / one["config"]["digest"][7:]).read_bytes())[
        "rootfs"
    ]["diff_ids"][0]
    config["rootfs"]["diff_ids"].insert(0, diff_one)
    two["config"].update(_blob(layout, json.dumps(config).encode()))
    two["layers"].insert(0, one["layers"][0])
    new_two = _blob(layout, json.dumps(two).encode())
    for entry in index["manifests"]:
        if entry["annotations"]["org.opencontainers.image.ref.name"] == "two":
            entry.update(new_two)
    (layout / "index.json").write_text(json.dumps(index))
    for tag in ("one", "two"):
        skopeo_copy(
            cluster, user, f"oci:{layout}:{tag}", f"docker://{cluster.host}/{user[0]}/g:{tag}"
        )
    name = f"{user[0]}/g"
    headers = {
        "Authorization": f"Bearer {cluster.token(user, f'repository:{name}:pull,push,delete')}"
    }
    with httpx.Client(base_url=cluster.registry_url, headers=headers, timeout=60) as c:
        r = c.delete(f"/v2/{name}/manifests/{digest_in(layout, 'one')}")
        assert r.status_code == 202, r.text
    only_one = one["layers"][1]["digest"]
    shared = one["layers"][0]["digest"]

    # The three sweeps start together; the winner is held up right after taking the
    # lease (the test locks the review queue it reads first), so the others meet a
    # lease that is certainly held, whatever the timing.
    db_url = cluster.state["processes"]["registry-1"]["env"]["ECLOUD_REGISTRY_DATABASE_URL"]

    async def hold_then_release(procs: list[subprocess.Popen[str]]) -> None:
        conn = await asyncpg.connect(db_url)
        try:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("LOCK TABLE manifest_review_queue IN ACCESS EXCLUSIVE MODE")
            for i in (1, 2, 3):
                procs.append(
                    subprocess.Popen(
                        [str(BIN / "ecloud-registry"), "gc", "--grace", "0"],
                        env=cluster.env(f"registry-{i}"),
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
            deadline = time.monotonic() + 180
            while sum(p.poll() is not None for p in procs) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await tx.rollback()
        finally:
            await conn.close()

    procs: list[subprocess.Popen[str]] = []
    asyncio.run(hold_then_release(procs))
    outputs = []
    for p in procs:
        out, _ = p.communicate(timeout=180)
        outputs.append((p.returncode, out))
    swept = [out for code, out in outputs if code == 0]
    busy = [out for code, out in outputs if code == 2]
    assert len(swept) == 1 and len(busy) == 2, outputs
    assert all("another garbage collection sweep" in out for out in busy), busy
    assert f"deleted link {name}@{only_one}" in swept[0]
    assert f"{name}@{shared}" not in swept[0]
    with httpx.Client(base_url=cluster.registry_url, headers=headers, timeout=60) as c:
        assert c.get(f"/v2/{name}/blobs/{only_one}").status_code == 404
        r = c.get(f"/v2/{name}/blobs/{shared}")
        assert r.status_code == 200
        assert "sha256:" + hashlib.sha256(r.content).hexdigest() == shared
    assert remote_digest(cluster, user, f"{name}:two") == new_two["digest"]
    pulled = tmp_path / "pulled"
    skopeo_copy(cluster, user, f"docker://{cluster.host}/{name}:two", f"oci:{pulled}:x")


def limits_and_revocations_hold_across_replicas(cluster: Cluster, tmp_path: Path) -> None:
    user = cluster.user()
    # Wrong passwords, round-robin over both auth replicas: refused after the limit,
    # counted together in Redis (each replica alone saw only half of them).
    seen = []
    with httpx.Client(base_url=cluster.auth_url, timeout=30) as c:
        for _ in range(FAILURE_LIMIT):
            r = c.post("/api/login", json={"username": user[0], "password": "wrong password"})
            assert r.status_code == 401, r.text
            seen.append(r.headers["x-ecloud-replica"])
        assert set(seen) == {"auth-1", "auth-2"}
        for _ in range(2):  # the next one, whichever replica answers it
            r = c.post("/api/login", json={"username": user[0], "password": user[1]})
            assert r.status_code == 429, r.text
            seen.append(r.headers["x-ecloud-replica"])
        assert set(seen[FAILURE_LIMIT:]) == {"auth-1", "auth-2"}
    # A session works on every registry replica until it is revoked, then on none.
    other = cluster.user()
    session = httpx.post(
        cluster.auth_url + "/api/login",
        json={"username": other[0], "password": other[1]},
        timeout=30,
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {session}"}
    replicas = [f"registry-{i}" for i in (1, 2, 3)]
    for replica in replicas:
        r = httpx.get(cluster.replica_url(replica) + "/v2/", headers=bearer, timeout=30)
        assert r.status_code == 200, (replica, r.text)
    r = httpx.post(cluster.auth_url + "/api/logout", headers=bearer, timeout=30)
    assert r.status_code in (200, 204), r.text
    revoked_at = time.monotonic()
    # Stated interval: within ECLOUD_REVOCATION_POLL_SECONDS (here 2 s) of the logout;
    # a generous bound, the machine is shared.
    pending = set(replicas)
    while pending and time.monotonic() < revoked_at + 10 * REVOCATION_POLL + 20:
        for replica in list(pending):
            r = httpx.get(cluster.replica_url(replica) + "/v2/", headers=bearer, timeout=30)
            if r.status_code == 401:
                pending.discard(replica)
        time.sleep(0.2)
    assert not pending, f"still accepting a revoked session: {pending}"


STEPS = [
    clients_push_and_pull_through_the_load_balancer,
    chunked_upload_across_three_replicas,
    replica_killed_in_the_middle_of_pushes,
    gc_on_every_replica_at_once,
    limits_and_revocations_hold_across_replicas,
]


def test_cluster(cluster: Cluster, subtests: Any, tmp_path: Path) -> None:
    """Every step on the one cluster; a failing step does not hide the others."""
    for step in STEPS:
        with subtests.test(msg=step.__name__.replace("_", " ")):
            work = tmp_path / step.__name__
            work.mkdir()
            step(cluster, work)
