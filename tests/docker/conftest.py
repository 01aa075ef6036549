"""Real docker: a private ``dockerd`` for the session and a docker CLI per test.

The daemon runs without systemd, iptables or overlayfs: its own data root,
exec root, pidfile and unix socket in a short folder under /tmp,
``--bridge=none --storage-driver=vfs``.
It is stopped by its PID at the end of the session, with the containerd it
spawned (its PID is under the exec root), the bind mount dockerd puts on its
data root is undone, and the folder is removed: nothing is left behind, even
when a test failed. Registries on 127.0.0.0/8 are plain HTTP for docker.

Each xdist worker that runs docker tests starts one daemon for itself (a
few seconds; xdist's ``loadgroup`` would share one, but with pytest 9 it
does not group). Every docker test module carries `DOCKER_MARKS`.
A missing ``dockerd`` skips them locally and fails them under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BIN, Stack, build_stack
from tests.needs import missing

DOCKER_TIMEOUT = 180
DOCKER_MARKS = [pytest.mark.e2e]


def _missing(message: str) -> None:
    """A skip locally, a failure under CI (the one rule: tests/needs.py)."""
    missing(message, "apt-get install -y docker.io (.ci/run does)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(pid: int, marker: str) -> bool:
    """Whether `pid` still is the process we started (its command line names our folder)."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _stop_pid(pid: int, marker: str, timeout: float) -> None:
    if not _ours(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid) and _ours(pid, marker):
        time.sleep(0.2)
    if _ours(pid, marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _unmount_under(root: Path) -> None:
    """Undo mounts dockerd left under `root` (it bind-mounts its data root onto itself)."""
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30, check=False)


@dataclass
class Dockerd:
    root: Path
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def ping(self) -> bool:
        # A plain socket, closed on every path (httpx's unix transport leaks the
        # socket of a refused connection, a ResourceWarning under -W error).
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                status_line = sock.recv(64).split(b"\r\n", 1)[0]
                return status_line.split(b" ")[1:2] == [b"200"]
        except OSError:
            return False

    def stop(self) -> None:
        marker = str(self.root)
        containerd_pid_file = self.root / "exec" / "containerd" / "containerd.pid"
        containerd_pid = None
        with contextlib.suppress(OSError, ValueError):
            containerd_pid = int(containerd_pid_file.read_text().strip())
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if containerd_pid is not None:
            _stop_pid(containerd_pid, marker, 30)
        _unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def start_dockerd() -> Dockerd:
    binary = shutil.which("dockerd")
    if binary is None or shutil.which("docker") is None:
        _missing("docker (dockerd and the docker client)")
    # A short path: unix socket paths are limited to 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="ecd-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with (root / "dockerd.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                str(binary),
                "--data-root",
                str(root / "data"),
                "--exec-root",
                str(root / "exec"),
                "--pidfile",
                str(root / "dockerd.pid"),
                "--host",
                f"unix://{root / 'docker.sock'}",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    daemon = Dockerd(root, proc)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = daemon.log.read_text(errors="replace")[-3000:]
            daemon.stop()
            _missing(f"dockerd exited at start ({proc.returncode}):\n{tail}")
        if daemon.ping():
            return daemon
        time.sleep(0.2)
    tail = daemon.log.read_text(errors="replace")[-3000:]
    daemon.stop()
    raise RuntimeError(f"dockerd did not answer within 120 s:\n{tail}")


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    daemon = start_dockerd()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def docker_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Our own stack: these tests fail logins on purpose."""
    s = build_stack(
        tmp_path_factory.mktemp("docker-stack"),
        {"ECLOUD_RATE_LIMIT_FAILURES": "1000/60", "ECLOUD_RATE_LIMIT_REQUESTS": "10000/60"},
    )
    yield s
    s.stop()


@dataclass
class Docker:
    """The docker CLI with its own config folder, talking to the private daemon."""

    daemon: Dockerd
    env: dict[str, str]
    config_dir: Path

    @property
    def config(self) -> dict[str, object]:
        path = self.config_dir / "config.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def login(
        self, host: str, username: str, password: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "login", "-u", username, "--password-stdin", host, stdin=password + "\n", check=check
        )

    def load(self, tarball: Path) -> None:
        self.run("load", "-i", str(tarball))

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0


@pytest.fixture
def docker(dockerd: Dockerd, tmp_path: Path) -> Docker:
    config_dir = tmp_path / "docker-config"
    home = tmp_path / "home"
    config_dir.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "EC_"))}
    env.update(
        {
            "DOCKER_HOST": dockerd.host,
            "DOCKER_CONFIG": str(config_dir),
            "HOME": str(home),
            # docker finds docker-credential-ec on PATH
            "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        }
    )
    return Docker(dockerd, env, config_dir)


@dataclass
class Image:
    tarball: Path
    ref: str
    diff_ids: list[str]


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def build_image(folder: Path, ref: str, layers: int = 3) -> Image:
    """A tiny multi-layer image as a ``docker save`` archive, unique to this call."""
    files: dict[str, bytes] = {}
    diff_ids = []
    layer_paths = []
    for index in range(layers):
        blob = _tar({f"layer{index}/data.bin": secrets.token_bytes(512 + index)})
        digest = hashlib.sha256(blob).hexdigest()
        diff_ids.append(f"sha256:{digest}")
        layer_paths.append(f"{digest}/layer.tar")
        files[f"{digest}/layer.tar"] = blob
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/layer0/data.bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {i}"} for i in range(layers)],
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    files[config_name] = config
    files["manifest.json"] = json.dumps(
        [{"Config": config_name, "RepoTags": [ref], "Layers": layer_paths}]
    ).encode()
    tarball = folder / f"image-{secrets.token_hex(4)}.tar"
    tarball.write_bytes(_tar(files))
    return Image(tarball, ref, diff_ids)
