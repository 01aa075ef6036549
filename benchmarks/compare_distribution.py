"""The ecloud registry beside CNCF distribution 2.8, both with token auth, in one run.

Starts, fresh and on loopback only, distribution (Debian's ``docker-registry``,
filesystem storage, token auth checked against a self-signed certificate of a
small issuer inside this script) and our two services (auth + registry, SQLite,
local folder, the real token flow), then runs each scenario against both,
alternating which goes first, and prints a table with the ratio
ours/distribution (higher is better for ours, except peak RSS):

- blob push 256 MiB: monolithic (POST, then one PUT ?digest= with the whole
  blob; distribution 2.8 has no single-POST upload), one streamed (chunked) PATCH
  + PUT (docker's way), 8 MiB chunks (PATCH with Content-Range each);
- blob pull 256 MiB: curl, and a Python client hashing what it reads;
- GET manifest by tag, by digest, HEAD blob, GET /v2/ with a token: ``wrk``,
  32 connections for 10 s, a Lua script adding the Authorization header;
- 200 small images (3 layers of 16 KiB + config + manifest) pushed by 16
  workers (HEAD, POST, PATCH, PUT per blob, then PUT manifest), then pulled
  by 16 workers (manifest by tag, config, layers; every digest checked);
- peak RSS (VmHWM) of each server: ours is the sum over all its processes
  (registry supervisor + workers + auth service).

Every figure comes from requests whose status (and content, where there is
content) was checked; a scenario with an error is shown as FAILED. Tokens are
fetched from each side's token endpoint once per worker/scenario, outside the
timed part. Stops everything it started.

    python benchmarks/compare_distribution.py                 # one run
    python benchmarks/compare_distribution.py --runs 3        # medians of 3 runs
    python benchmarks/compare_distribution.py --quick         # short smoke run
    python benchmarks/compare_distribution.py --workers 2     # two registry workers (default 1)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ISSUER = "bench-issuer"
SERVICE = "registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Failed(Exception):
    """A request answered with the wrong status or content: the scenario failed."""


# --------------------------------------------------------------------------- issuer


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key id distribution 2.8 (libtrust) computes for a key in rootcertbundle."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


class Issuer:
    """Signs ES256 registry tokens with a key whose self-signed certificate
    distribution trusts (``auth.token.rootcertbundle``); serves them at
    ``/token`` over HTTP, like any token service (basic auth not checked)."""

    def __init__(self, folder: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_file = folder / "issuer.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.kid = libtrust_key_id(self.key.public_key())
        self.pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.port = free_port()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                body = json.dumps({"token": issuer.sign(query.get("scope", []))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def sign(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "bench",
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 3600,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        return jwt.encode(claims, self.pem, algorithm="ES256", headers={"kid": self.kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- servers


DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {bundle}
"""


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    parts = urllib.parse.urlsplit(url)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", parts.path or "/")
            status = conn.getresponse().status
            conn.close()
            if status in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def vm_hwm(pid: int) -> int:
    """The kernel's peak resident set of `pid`, in bytes (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Target:
    """One registry under test: where it is, how to get a token, its processes."""

    name: str
    url: str
    token_url: str
    namespace: str
    basic: tuple[str, str] | None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    stop: Callable[[], None] = lambda: None

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.url).port or 80)

    def token(self, *scopes: str) -> str:
        query = urllib.parse.urlencode([("service", SERVICE), *(("scope", s) for s in scopes)])
        parts = urllib.parse.urlsplit(self.token_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {}
        if self.basic is not None:
            raw = f"{self.basic[0]}:{self.basic[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        conn.request("GET", f"{parts.path}?{query}", headers=headers)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        if response.status != 200:
            raise Failed(f"token endpoint answered {response.status}: {body[:200]!r}")
        return str(json.loads(body)["token"])

    def track(self) -> None:
        """Remember every process of this target (workers appear after start)."""
        for proc in self.procs:
            if proc.poll() is None:
                self.pids.update(descendants(proc.pid))

    def peak_rss(self) -> tuple[int, int]:
        """Peak resident sets: (the registry's processes, every process of this side)."""
        self.track()
        registry = set(descendants(self.procs[-1].pid)) if self.procs[-1].poll() is None else set()
        return sum(vm_hwm(pid) for pid in registry), sum(vm_hwm(pid) for pid in self.pids)


def start_distribution(binary: str, folder: Path, issuer: Issuer) -> Target:
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        DISTRIBUTION_CONFIG.format(
            root=folder / "storage",
            port=port,
            realm=issuer.realm,
            service=SERVICE,
            issuer=ISSUER,
            bundle=issuer.cert_file,
        )
    )
    log = folder / "distribution.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/v2/", proc, log)
    except BaseException:
        stop_process(proc)
        raise
    target = Target("distribution", url, issuer.realm, "bench", None, [proc])
    target.stop = lambda: stop_process(proc)
    target.track()
    return target


def start_ecloud(folder: Path, workers: int) -> Target:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECLOUD_")}
    auth_port, registry_port = free_port(), free_port()
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ECLOUD_DATA_DIR": str(folder / "data"),
            "ECLOUD_AUTH_URL": f"http://127.0.0.1:{auth_port}",
            "ECLOUD_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
            "ECLOUD_LOG_LEVEL": "info",
            # The benchmark asks many tokens from one address in a short time.
            "ECLOUD_RATE_LIMIT_REQUESTS": "1000000/60",
        }
    )
    procs: list[subprocess.Popen[bytes]] = []

    def stop() -> None:
        for proc in reversed(procs):
            stop_process(proc)

    try:
        for name, port, extra in (
            ("ecloud-auth", auth_port, []),
            ("ecloud-registry", registry_port, ["--workers", str(workers)]),
        ):
            log = folder / f"{name}.log"
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [str(BIN / name), "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs.append(proc)
            wait_ready(f"http://127.0.0.1:{port}/healthz", proc, log)
        user, password = f"bench{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        subprocess.run(
            [str(BIN / "ecloud-auth"), "users", "create", user, "--password-stdin"],
            input=password + "\n",
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except BaseException:
        stop()
        raise
    target = Target(
        "ours",
        f"http://127.0.0.1:{registry_port}",
        f"http://127.0.0.1:{auth_port}/v2/token",
        user,
        (user, password),
        procs,
    )
    target.stop = stop
    target.track()
    return target


# --------------------------------------------------------------------------- client


class Client:
    """One keep-alive HTTP/1.1 connection with a bearer token; checks statuses."""

    def __init__(self, target: Target, token: str) -> None:
        self.target = target
        self.auth = f"Bearer {token}"
        self.conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=300, blocksize=MIB)

    def close(self) -> None:
        self.conn.close()

    def request(
        self,
        method: str,
        path: str,
        expect: int,
        body: object = None,
        headers: dict[str, str] | None = None,
        read: bool = True,
        chunked: bool = False,
    ) -> http.client.HTTPResponse:
        all_headers = {"Authorization": self.auth, **(headers or {})}
        try:
            self.conn.request(method, path, body=body, headers=all_headers, encode_chunked=chunked)  # type: ignore[arg-type]
            response = self.conn.getresponse()
        except OSError as exc:
            self.conn.close()
            raise Failed(f"{method} {path}: {exc!r}") from exc
        if response.status != expect:
            detail = response.read()[:300]
            raise Failed(f"{method} {path}: {response.status} (expected {expect}) {detail!r}")
        if read:
            response.body = response.read()  # type: ignore[attr-defined]
        return response

    def location(self, response: http.client.HTTPResponse) -> str:
        location = response.getheader("Location") or ""
        parts = urllib.parse.urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def put_url(self, location: str, digest: str) -> str:
        return location + ("&" if "?" in location else "?") + "digest=" + digest

    def push_blob(self, name: str, data: bytes) -> str:
        """Docker's way for a small blob: HEAD, POST, PATCH, PUT ?digest=."""
        digest = sha256(data)
        self.request("HEAD", f"/v2/{name}/blobs/{digest}", 404)
        started = self.request("POST", f"/v2/{name}/blobs/uploads/", 202, body=b"")
        patched = self.request(
            "PATCH",
            self.location(started),
            202,
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        self.request("PUT", self.put_url(self.location(patched), digest), 201, body=b"")
        return digest

    def get_checked(self, path: str, digest: str, headers: dict[str, str] | None = None) -> bytes:
        body: bytes = self.request("GET", path, 200, headers=headers).body  # type: ignore[attr-defined]
        if sha256(body) != digest:
            raise Failed(f"GET {path}: content does not match {digest}")
        return body


STOP = threading.Event()


def finish(futures: list[Future[None]]) -> None:
    """Wait for every future, waking twice a second so a signal (Ctrl-C, SIGTERM)
    can stop the run and its servers; the first error is raised."""
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()
    except BaseException:
        STOP.set()  # the workers stop after their current image
        raise


def make_image(seed: int) -> tuple[list[bytes], bytes, bytes]:
    layers = [os.urandom(16 * 1024) for _ in range(3)]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [f"SEED={seed}"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}
                for layer in layers
            ],
        }
    ).encode()
    return layers, config, manifest


def push_image(client: Client, name: str, tag: str, image: tuple[list[bytes], bytes, bytes]) -> str:
    layers, config, manifest = image
    for blob in (*layers, config):
        client.push_blob(name, blob)
    response = client.request(
        "PUT",
        f"/v2/{name}/manifests/{tag}",
        201,
        body=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    digest = sha256(manifest)
    if response.getheader("Docker-Content-Digest") != digest:
        raise Failed(f"manifest {name}:{tag} stored under another digest")
    return digest


def pull_image(client: Client, name: str, tag: str, digest: str) -> None:
    body = client.get_checked(f"/v2/{name}/manifests/{tag}", digest, {"Accept": OCI_MANIFEST})
    manifest = json.loads(body)
    for descriptor in (manifest["config"], *manifest["layers"]):
        client.get_checked(f"/v2/{name}/blobs/{descriptor['digest']}", descriptor["digest"])


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    key: str
    label: str
    unit: str
    target: float  # the ratio ours/distribution the issue asks for
    lower_is_better: bool = False


SCENARIOS = [
    Scenario("push_post", "blob push 256 MiB, monolithic PUT", "MB/s", 1.5),
    Scenario("push_patch", "blob push 256 MiB, one streamed PATCH", "MB/s", 1.5),
    Scenario("push_chunks", "blob push 256 MiB, 8 MiB chunks", "MB/s", 1.5),
    Scenario("pull_curl", "blob pull 256 MiB, curl", "MB/s", 1.0),
    Scenario("pull_python", "blob pull 256 MiB, Python client", "MB/s", 1.0),
    Scenario("manifest_tag", "GET manifest by tag, 32 conn", "req/s", 2.0),
    Scenario("manifest_digest", "GET manifest by digest, 32 conn", "req/s", 2.0),
    Scenario("head_blob", "HEAD blob, 32 conn (curl --parallel)", "req/s", 2.0),
    Scenario("v2_token", "GET /v2/ with a token, 32 conn", "req/s", 2.0),
    Scenario("image_push", "push small images, 16 workers", "img/s", 2.0),
    Scenario("image_pull", "pull small images, 16 workers", "img/s", 1.5),
    Scenario("rss", "peak RSS, registry (all workers), MiB", "MiB", 1.5, lower_is_better=True),
    Scenario("rss_all", "peak RSS, registry + auth, MiB", "MiB", 1.5, lower_is_better=True),
]


@dataclass
class Settings:
    blob_mib: int
    wrk_seconds: int
    images: int
    workers: int
    blob_file: Path
    blob_digest: str
    scratch: Path


def blob_chunks(path: Path, size: int = MIB) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def mbps(size: int, seconds: float) -> float:
    return size / MIB / seconds


class Bench:
    """The scenarios, each against one target; returns the figure or raises Failed."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.state: dict[str, dict[str, str]] = {}

    def _client(self, target: Target, name: str, actions: str = "pull,push") -> Client:
        return Client(target, target.token(f"repository:{name}:{actions}"))

    def _finish_check(self, client: Client, name: str, response: http.client.HTTPResponse) -> None:
        if response.getheader("Docker-Content-Digest") != self.s.blob_digest:
            raise Failed("blob stored under another digest")
        client.request("HEAD", f"/v2/{name}/blobs/{self.s.blob_digest}", 200)

    def push_post(self, target: Target) -> float:
        """Monolithic: POST opens the upload, one PUT ?digest= carries the whole blob
        with its Content-Length (distribution 2.8 has no single-POST upload)."""
        name = f"{target.namespace}/post{secrets.token_hex(3)}"
        client = self._client(target, name)
        size = self.s.blob_file.stat().st_size
        with self.s.blob_file.open("rb") as handle:
            begun = time.perf_counter()
            started = client.request("POST", f"/v2/{name}/blobs/uploads/", 202, body=b"")
            response = client.request(
                "PUT",
                client.put_url(client.location(started), self.s.blob_digest),
                201,
                body=handle,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
            elapsed = time.perf_counter() - begun
        self._finish_check(client, name, response)
        client.close()
        return mbps(size, elapsed)

    def push_patch(self, target: Target) -> float:
        name = f"{target.namespace}/patch{secrets.token_hex(3)}"
        client = self._client(target, name)
        size = self.s.blob_file.stat().st_size
        begun = time.perf_counter()
        started = client.request("POST", f"/v2/{name}/blobs/uploads/", 202, body=b"")
        patched = client.request(
            "PATCH",
            client.location(started),
            202,
            body=blob_chunks(self.s.blob_file),
            headers={"Content-Type": "application/octet-stream"},
            chunked=True,
        )
        done = client.request(
            "PUT", client.put_url(client.location(patched), self.s.blob_digest), 201, body=b""
        )
        elapsed = time.perf_counter() - begun
        self._finish_check(client, name, done)
        client.close()
        return mbps(size, elapsed)

    def push_chunks(self, target: Target) -> float:
        name = f"{target.namespace}/chunks{secrets.token_hex(3)}"
        client = self._client(target, name)
        size = self.s.blob_file.stat().st_size
        begun = time.perf_counter()
        location = client.location(
            client.request("POST", f"/v2/{name}/blobs/uploads/", 202, body=b"")
        )
        offset = 0
        for chunk in blob_chunks(self.s.blob_file, 8 * MIB):
            response = client.request(
                "PATCH",
                location,
                202,
                body=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
            )
            offset += len(chunk)
            location = client.location(response)
        done = client.request("PUT", client.put_url(location, self.s.blob_digest), 201, body=b"")
        elapsed = time.perf_counter() - begun
        self._finish_check(client, name, done)
        client.close()
        return mbps(size, elapsed)

    def _pull_target(self, target: Target) -> tuple[str, str]:
        """A repository holding the big blob (pushed once per target, untimed)."""
        key = "pull_repo"
        if key not in self.state.setdefault(target.name, {}):
            name = f"{target.namespace}/pull{secrets.token_hex(3)}"
            client = self._client(target, name)
            started = client.request("POST", f"/v2/{name}/blobs/uploads/", 202, body=b"")
            with self.s.blob_file.open("rb") as handle:
                client.request(
                    "PUT",
                    client.put_url(client.location(started), self.s.blob_digest),
                    201,
                    body=handle,
                    headers={"Content-Length": str(self.s.blob_file.stat().st_size)},
                )
            client.close()
            self.state[target.name][key] = name
        name = self.state[target.name][key]
        return name, target.token(f"repository:{name}:pull")

    def pull_curl(self, target: Target) -> float:
        name, token = self._pull_target(target)
        out = self.s.scratch / "curl.out"
        begun = time.perf_counter()
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                str(out),
                "-w",
                "%{http_code} %{size_download}",
                "-H",
                f"Authorization: Bearer {token}",
                f"{target.url}/v2/{name}/blobs/{self.s.blob_digest}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        elapsed = time.perf_counter() - begun
        size = self.s.blob_file.stat().st_size
        try:
            if result.stdout.strip() != f"200 {size}":
                raise Failed(f"curl: {result.stdout} {result.stderr}")
            hasher = hashlib.sha256()
            for chunk in blob_chunks(out, 8 * MIB):
                hasher.update(chunk)
            if "sha256:" + hasher.hexdigest() != self.s.blob_digest:
                raise Failed("curl: content does not match the digest")
        finally:
            out.unlink(missing_ok=True)
        return mbps(size, elapsed)

    def pull_python(self, target: Target) -> float:
        name, token = self._pull_target(target)
        client = Client(target, token)
        begun = time.perf_counter()
        response = client.request("GET", f"/v2/{name}/blobs/{self.s.blob_digest}", 200, read=False)
        hasher = hashlib.sha256()
        size = 0
        while chunk := response.read(MIB):
            hasher.update(chunk)
            size += len(chunk)
        elapsed = time.perf_counter() - begun
        client.close()
        if "sha256:" + hasher.hexdigest() != self.s.blob_digest:
            raise Failed("python pull: content does not match the digest")
        return mbps(size, elapsed)

    def _small_target(self, target: Target) -> dict[str, str]:
        """One small image pushed once per target for the wrk scenarios."""
        state = self.state.setdefault(target.name, {})
        if "small_repo" not in state:
            name = f"{target.namespace}/small"
            client = self._client(target, name)
            image = make_image(0)
            digest = push_image(client, name, "latest", image)
            client.close()
            state.update(small_repo=name, small_manifest=digest, small_layer=sha256(image[0][0]))
        return state

    def _wrk(self, target: Target, method: str, path: str, headers: dict[str, str]) -> float:
        lua = "\n".join(
            [f'wrk.method = "{method}"']
            + [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
        )
        script = self.s.scratch / "wrk.lua"
        script.write_text(lua + "\n")
        result = subprocess.run(
            [
                "wrk",
                "-t2",
                "-c32",
                f"-d{self.s.wrk_seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                target.url + path,
            ],
            capture_output=True,
            text=True,
            timeout=self.s.wrk_seconds + 60,
            check=False,
        )
        out = result.stdout
        self.last_wrk = out
        if result.returncode != 0:
            raise Failed(f"wrk failed: {out} {result.stderr}")
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sockets = re.search(r"Socket errors: (.*)", out)
        if errors or sockets:
            raise Failed(
                f"wrk: {errors.group(0) if errors else ''} {sockets.group(0) if sockets else ''}"
            )
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if rate is None:
            raise Failed(f"wrk printed no rate: {out}")
        return float(rate.group(1))

    def _small_check(
        self, target: Target, token: str, method: str, path: str, digest: str | None
    ) -> None:
        """One request like the ones wrk sends, its status and content checked."""
        client = Client(target, token)
        headers = {"Accept": OCI_MANIFEST}
        response = client.request(method, path, 200, headers=headers)
        if digest is not None and method == "GET" and sha256(response.body) != digest:  # type: ignore[attr-defined]
            raise Failed(f"{path}: content does not match {digest}")
        if digest is not None and response.getheader("Docker-Content-Digest") != digest:
            raise Failed(f"{path}: Docker-Content-Digest is not {digest}")
        client.close()

    def _small(self, target: Target, method: str, what: str) -> float:
        state = self._small_target(target)
        name = state["small_repo"]
        token = target.token(f"repository:{name}:pull")
        path, digest = {
            "tag": (f"/v2/{name}/manifests/latest", state["small_manifest"]),
            "digest": (f"/v2/{name}/manifests/{state['small_manifest']}", state["small_manifest"]),
            "blob": (f"/v2/{name}/blobs/{state['small_layer']}", state["small_layer"]),
            "base": ("/v2/", None),
        }[what]
        self._small_check(target, token, method, path, digest)
        headers = {"Authorization": f"Bearer {token}", "Accept": OCI_MANIFEST}
        if method == "HEAD":
            return self._curl_parallel(target, path, headers)
        return self._wrk(target, method, path, headers)

    def _curl_parallel(self, target: Target, path: str, headers: dict[str, str]) -> float:
        """HEAD at 32 connections: wrk 4.1 waits for a HEAD response's body and
        stalls, so these go through ``curl --parallel`` (keep-alive connections,
        one status line per request checked). The count is sized for about
        ``--seconds`` from a short probe."""

        def run(count: int) -> tuple[float, list[str]]:
            config = self.s.scratch / "curl.cfg"
            lines = [f'header = "{k}: {v}"' for k, v in headers.items()]
            lines += ["head", "silent", 'write-out = "%{http_code}\\n"']
            lines += [f'url = "{target.url}{path}"\noutput = "/dev/null"'] * count
            config.write_text("\n".join(lines) + "\n")
            begun = time.perf_counter()
            result = subprocess.run(
                [
                    "curl",
                    "--parallel",
                    "--parallel-max",
                    "32",
                    "--no-progress-meter",
                    "-K",
                    str(config),
                ],
                capture_output=True,
                text=True,
                timeout=self.s.wrk_seconds * 10 + 60,
                check=False,
            )
            elapsed = time.perf_counter() - begun
            statuses = result.stdout.split()
            if len(statuses) != count or any(s != "200" for s in statuses):
                bad = [s for s in statuses if s != "200"][:5]
                raise Failed(
                    f"curl HEAD: {len(statuses)}/{count} answers, not 200: {bad}"
                    f" {result.stderr[:200]}"
                )
            return count / elapsed, statuses

        rate, _ = run(500)
        return run(max(500, int(rate * self.s.wrk_seconds)))[0]

    def manifest_tag(self, target: Target) -> float:
        return self._small(target, "GET", "tag")

    def manifest_digest(self, target: Target) -> float:
        return self._small(target, "GET", "digest")

    def head_blob(self, target: Target) -> float:
        return self._small(target, "HEAD", "blob")

    def v2_token(self, target: Target) -> float:
        return self._small(target, "GET", "base")

    def image_push(self, target: Target) -> float:
        workers = 16
        images = [make_image(i) for i in range(self.s.images)]
        names = [f"{target.namespace}/img{w}" for w in range(workers)]
        clients = [self._client(target, name) for name in names]
        pushed: dict[int, str] = {}

        def work(w: int) -> None:
            for i in range(w, len(images), workers):
                if STOP.is_set():
                    return
                pushed[i] = push_image(clients[w], names[w], f"t{i}", images[i])

        begun = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            finish([pool.submit(work, w) for w in range(workers)])
        elapsed = time.perf_counter() - begun
        for client in clients:
            client.close()
        state = self.state.setdefault(target.name, {})
        state["images"] = json.dumps(pushed)
        return len(images) / elapsed

    def image_pull(self, target: Target) -> float:
        workers = 16
        pushed = {int(k): v for k, v in json.loads(self.state[target.name]["images"]).items()}
        names = [f"{target.namespace}/img{w}" for w in range(workers)]
        clients = [self._client(target, name, "pull") for name in names]

        def work(w: int) -> None:
            for i in range(w, len(pushed), workers):
                if STOP.is_set():
                    return
                pull_image(clients[w], names[w], f"t{i}", pushed[i])

        begun = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            finish([pool.submit(work, w) for w in range(workers)])
        elapsed = time.perf_counter() - begun
        for client in clients:
            client.close()
        return len(pushed) / elapsed


def one_run(
    settings: Settings, binary: str, index: int, only: set[str] | None
) -> dict[str, dict[str, float | None]]:
    """Start both sides fresh, run every scenario alternating who goes first."""
    results: dict[str, dict[str, float | None]] = {"distribution": {}, "ours": {}}
    # The servers' data lives on disk (not in the scratch tmpfs), as in production.
    with tempfile.TemporaryDirectory(prefix="ecloud-cmp-") as tmp:
        folder = Path(tmp)
        (folder / "distribution").mkdir()
        (folder / "ours").mkdir()
        issuer = Issuer(folder)
        targets: list[Target] = []
        try:
            targets.append(start_distribution(binary, folder / "distribution", issuer))
            targets.append(start_ecloud(folder / "ours", settings.workers))
            bench = Bench(settings)
            for number, scenario in enumerate(SCENARIOS):
                if scenario.key.startswith("rss") or (only and scenario.key not in only):
                    continue
                order = targets if (index + number) % 2 == 0 else targets[::-1]
                for target in order:
                    try:
                        value: float | None = getattr(bench, scenario.key)(target)
                    except Failed as exc:
                        print(f"  FAILED {scenario.key} on {target.name}: {exc}", file=sys.stderr)
                        value = None
                    results[target.name][scenario.key] = value
                    target.track()
                    shown = "FAILED" if value is None else f"{value:,.1f} {scenario.unit}"
                    print(
                        f"  run {index + 1} {scenario.key:<16} {target.name:<13} {shown}",
                        file=sys.stderr,
                        flush=True,
                    )
            for target in targets:
                registry, everything = target.peak_rss()
                results[target.name]["rss"] = registry / MIB
                results[target.name]["rss_all"] = everything / MIB
        finally:
            for target in targets:
                target.stop()
            issuer.close()
    return results


def median(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return statistics.median(v for v in values if v is not None)


def print_table(runs: list[dict[str, dict[str, float | None]]], args: argparse.Namespace) -> bool:
    load = os.getloadavg()
    print(
        f"\nours: registry --workers {args.workers} + auth (SQLite, local folder); distribution"
        f" 2.8 (filesystem, token auth); {os.cpu_count()} cores; {len(runs)} run(s),"
        f" {'median' if len(runs) > 1 else 'single'}; load average"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    header = (
        f"| {'scenario':<40} | {'unit':<5} | {'distribution':>12} | {'ours':>10}"
        f" | {'ratio':>6} | {'target':>7} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    all_met = True
    for scenario in SCENARIOS:
        if scenario.key not in runs[0]["ours"]:
            continue
        theirs = median([r["distribution"].get(scenario.key) for r in runs])
        ours = median([r["ours"].get(scenario.key) for r in runs])
        if theirs is None or ours is None or theirs == 0:
            ratio_text, met = "FAILED", False
        else:
            ratio = ours / theirs
            ratio_text = f"{ratio:.2f}"
            met = ratio <= scenario.target if scenario.lower_is_better else ratio >= scenario.target
        all_met &= met
        target_text = ("≤" if scenario.lower_is_better else "≥") + f"{scenario.target:g}"
        print(
            f"| {scenario.label:<40} | {scenario.unit:<5} | {fmt(theirs):>12} | {fmt(ours):>10}"
            f" | {ratio_text:>6} | {target_text + ('' if met else ' ✗'):>7} |"
        )
    return all_met


def fmt(value: float | None) -> str:
    return "FAILED" if value is None else f"{value:,.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs; the table shows medians")
    parser.add_argument("--quick", action="store_true", help="smoke: 16 MiB, 2 s, 32 images")
    parser.add_argument("--workers", type=int, default=1, help="registry worker processes")
    parser.add_argument("--blob-mib", type=int, default=256)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per scenario")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument(
        "--only", default="", help="comma-separated scenario keys (e.g. manifest_tag,image_push)"
    )
    args = parser.parse_args()
    # SIGTERM stops the run like Ctrl-C: every server started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.blob_mib, args.seconds, args.images = 16, 2, 32
    binary = shutil.which("docker-registry")
    missing = [tool for tool in ("wrk", "curl") if shutil.which(tool) is None]
    if binary is None or missing:
        print("needs docker-registry, wrk and curl: apt-get install docker-registry wrk curl")
        return 2
    only = {k for k in args.only.split(",") if k} or None
    shm = Path("/dev/shm")  # noqa: S108 - a private TemporaryDirectory inside it
    scratch_parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="ecloud-bench-", dir=scratch_parent) as scratch:
        blob_file = Path(scratch) / "blob"
        hasher = hashlib.sha256()
        with blob_file.open("wb") as handle:
            block = os.urandom(MIB)
            for index in range(args.blob_mib):
                chunk = index.to_bytes(8, "big") + block[8:]
                hasher.update(chunk)
                handle.write(chunk)
        settings = Settings(
            blob_mib=args.blob_mib,
            wrk_seconds=args.seconds,
            images=args.images,
            workers=args.workers,
            blob_file=blob_file,
            blob_digest="sha256:" + hasher.hexdigest(),
            scratch=Path(scratch),
        )
        runs = [one_run(settings, binary, index, only) for index in range(args.runs)]
    print_table(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
