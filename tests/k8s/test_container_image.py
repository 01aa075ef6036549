"""Checks on the Containerfile, and the image built and run (CI always builds it).

Static checks always run. The build runs under CI (see tests/needs.py) and
when asked for locally, since it takes minutes:

    ECLOUD_TEST_IMAGE_BUILD=1 pytest tests/k8s/test_container_image.py

No base image can be pulled here, so the test makes its own: a Debian
bookworm root file system from Debian's packages (``debootstrap``, with
python3 and venv), imported with buildah as a local base image and given to
the Containerfile's ``PYTHON_IMAGE`` build argument (production keeps its
default, the official Python image). The debootstrap tarball and apt's
downloaded packages are cached in ``$ECLOUD_CI_CACHE`` (default
``/var/cache/ecloud-ci``), which survives between runs on one machine. A cold
run (debootstrap and every package downloaded) costs ~5 more minutes on an
idle 2-core machine than a warm one; the build itself, with pip downloads
from PyPI, ~5 minutes.

The image is then run: ``ecloud-auth`` and ``ecloud-registry`` from two
buildah containers (chroot isolation: this sandbox lets no OCI runtime set
rlimits or cgroups, so ``podman run`` cannot start here) on the host's
loopback; a user is created inside the auth container, a token fetched from
it, and the registry answers ``/v2/`` and takes a push with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.needs import in_ci, need_tool

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"
UID = 10001
BUILD_TIMEOUT_S = 2400
DEBOOTSTRAP_TIMEOUT_S = 3600
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("ECLOUD_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What the Containerfile needs of its base beyond Debian's minimal system: `python`
# (python-is-python3) with venv, as the official Python image has.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def stages(text: str) -> list[str]:
    """The Containerfile split into its stages (text from one FROM to the next)."""
    parts = re.split(r"(?m)^(?=FROM\s)", text)
    return [p for p in parts if p.startswith("FROM")]


def instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", stage)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_ignore_files_are_identical_and_exclude_secrets() -> None:
    container = (REPO / ".containerignore").read_text()
    docker = (REPO / ".dockerignore").read_text()
    assert container == docker, ".containerignore and .dockerignore must be identical"
    patterns = {line.strip() for line in container.splitlines()}
    for needed in (".git", "*.pem", "data", ".venv", "**/__pycache__", ".env"):
        assert needed in patterns, f".containerignore must exclude {needed}"


def test_containerfile_is_multi_stage_and_slim() -> None:
    text = CONTAINERFILE.read_text()
    parts = stages(text)
    assert len(parts) >= 2, "multi-stage build expected (builder + runtime)"
    builder, final = parts[0], parts[-1]
    assert re.match(r"FROM\s+\S+\s+AS\s+builder", builder, re.IGNORECASE)
    assert "build-essential" in builder, "the builder stage installs the build tools"
    final_instr = instructions(final)
    final_runs = " ".join(args for word, args in final_instr if word == "RUN")
    for tool in ("build-essential", "gcc", "apt-get install", "pip install"):
        assert tool not in final_runs, f"the runtime stage must not run {tool!r}"
    copies = [args for word, args in final_instr if word == "COPY"]
    assert any(a.startswith("--from=builder") and "/opt/venv" in a for a in copies)


def test_containerfile_runtime_settings() -> None:
    final = instructions(stages(CONTAINERFILE.read_text())[-1])
    users = [args for word, args in final if word == "USER"]
    assert users, "the runtime stage must set USER"
    assert re.fullmatch(rf"{UID}:{UID}", users[-1]), "USER must be the numeric UID:GID"
    assert re.search(rf"--uid {UID}\b", CONTAINERFILE.read_text())
    assert re.search(rf"--gid {UID}\b", CONTAINERFILE.read_text())
    exposed = {p for word, args in final if word == "EXPOSE" for p in args.split()}
    assert {"5000", "5001"} <= exposed
    env = " ".join(args for word, args in final if word == "ENV")
    assert "/opt/venv/bin" in env, "the console scripts must be on PATH"
    assert "ECLOUD_DATA_DIR=/data" in env
    assert "ECLOUD_LOG_FORMAT=json" in env, "the image logs JSON lines for collectors"
    labels = " ".join(args for word, args in final if word == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, f"OCI label {key} missing"
    cmds = [args for word, args in final if word in {"CMD", "ENTRYPOINT"}]
    assert cmds, "CMD or ENTRYPOINT expected"
    argv = json.loads(cmds[-1])
    assert argv[0] in {"ecloud-registry", "ecloud-auth"}, "exec form running a service"


def test_manifests_use_the_image_uid() -> None:
    """The UID baked into the image is the one the manifests run as."""
    base = REPO / "k8s" / "base"
    for f in ("auth-deployment.yaml", "registry-deployment.yaml"):
        text = (base / f).read_text()
        assert f"runAsUser: {UID}" in text, f
        assert f"fsGroup: {UID}" in text, f


# ---------------------------------------------------------------- the real build


def cache_dir() -> Path:
    """A folder that survives between runs on this machine (CI included)."""
    for candidate in (os.environ.get("ECLOUD_CI_CACHE"), "/var/cache/ecloud-ci"):
        if candidate:
            path = Path(candidate)
            with contextlib.suppress(OSError):
                path.mkdir(parents=True, exist_ok=True)
                if os.access(path, os.W_OK):
                    return path
    path = Path.home() / ".cache" / "ecloud-ci"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _unmount_below(root: Path) -> None:
    """debootstrap mounts /proc and /sys in its target; a failed run may leave them."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(root) + "/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


def debian_base_tarball(cache: Path) -> Path:
    """A Debian root file system as a tarball, made once per package set and cached."""
    key = hashlib.sha256(f"{DEBIAN_SUITE} {DEBIAN_MIRROR} {BASE_PACKAGES}".encode()).hexdigest()
    tarball = cache / f"debian-{DEBIAN_SUITE}-{key[:12]}.tar"
    with (cache / "debootstrap.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap at a time on this machine
        if tarball.exists():
            return tarball
        debootstrap = need_tool("debootstrap")
        work = cache / f"rootfs-{uuid.uuid4().hex[:8]}"
        try:
            # Its own session: on a timeout the whole group (dpkg included) is killed.
            proc = subprocess.Popen(
                [debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                 DEBIAN_SUITE, str(work), DEBIAN_MIRROR],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            try:
                output, _ = proc.communicate(timeout=DEBOOTSTRAP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            _unmount_below(work)
            tail = output.decode(errors="replace")[-4000:]
            assert proc.returncode == 0, f"debootstrap failed:\n{tail}"
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for item in (work / leftover).glob("*"):
                    if item.is_file():
                        item.unlink()
            partial = tarball.with_suffix(".partial")
            subprocess.run(
                ["tar", "--numeric-owner", "-C", str(work), "-cf", str(partial), "."],
                check=True, capture_output=True, timeout=600,
            )  # fmt: skip
            partial.rename(tarball)
        finally:
            _unmount_below(work)
            subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
    return tarball


@dataclass
class Buildah:
    """buildah with its storage and configuration in the test's own folder."""

    binary: str
    env: dict[str, str]

    @classmethod
    def in_folder(cls, binary: str, root: Path) -> Buildah:
        for name in ("run", "graph", "tmp"):
            (root / name).mkdir(parents=True, exist_ok=True)
        (root / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{root}/run"\ngraphroot = "{root}/graph"\n'
        )
        (root / "containers.conf").write_text(
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
        )
        (root / "registries.conf").write_text("unqualified-search-registries = []\n")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),
            "TMPDIR": str(root / "tmp"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
            "CONTAINERS_CONF": str(root / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf"),
            "LANG": "C.UTF-8",
        }
        return cls(binary, env)

    def __call__(self, *args: str, timeout: float = 600) -> str:
        proc = subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, (
            f"buildah {args[0]} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
        )
        return proc.stdout.strip()

    def serve(
        self, container: str, log: Path, env: dict[str, str], *argv: str
    ) -> subprocess.Popen[bytes]:
        """Run a service from `container` on the host's loopback, in a process group of its own."""
        envs = [f"--env={k}={v}" for k, v in env.items()]
        with log.open("wb") as out:
            return subprocess.Popen(
                [self.binary, "run", "--isolation", "chroot", *envs, container, "--", *argv],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group we started (buildah, its chroot runtime, the service)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited early:\n{log.read_text()[-4000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"{url} never became healthy:\n{log.read_text()[-4000:]}")


@pytest.fixture
def built_image(tmp_path: Path) -> Iterator[tuple[Buildah, str]]:
    if not in_ci() and os.environ.get("ECLOUD_TEST_IMAGE_BUILD") != "1":
        pytest.skip(
            "the image build takes minutes: set ECLOUD_TEST_IMAGE_BUILD=1 (CI always runs it)"
        )
    buildah = Buildah.in_folder(need_tool("buildah"), tmp_path / "containers")
    cache = cache_dir()
    tarball = debian_base_tarball(cache)
    base = f"localhost/ecloud-test-base:{uuid.uuid4().hex[:12]}"
    tag = f"localhost/ecloud-registry-test:{uuid.uuid4().hex[:12]}"
    try:
        ctr = buildah("from", "scratch")
        buildah("add", ctr, str(tarball), "/", timeout=900)
        if HOST_CA.exists():
            # Where HTTPS leaves through an inspecting proxy, pip in the build trusts
            # what this machine trusts (only in the test's own base image).
            buildah("copy", ctr, str(HOST_CA), "/etc/ssl/certs/host-ca.crt")
            buildah("config", "--env", "PIP_CERT=/etc/ssl/certs/host-ca.crt", ctr)
        buildah("commit", "--rm", "-q", ctr, base, timeout=900)
        apt_cache = cache / "apt-archives"
        (apt_cache / "partial").mkdir(parents=True, exist_ok=True)
        buildah(
            "bud", "--isolation", "chroot", "--layers=false",
            "-v", f"{apt_cache}:/var/cache/apt/archives",
            "-f", str(CONTAINERFILE), "-t", tag,
            "--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", "VERSION=0.0.0-test",
            str(REPO), timeout=BUILD_TIMEOUT_S,
        )  # fmt: skip
        yield buildah, tag
    finally:
        subprocess.run([buildah.binary, "rm", "--all"], env=buildah.env, capture_output=True)
        subprocess.run(
            [buildah.binary, "rmi", "--all", "--force"], env=buildah.env, capture_output=True
        )


def test_image_builds_and_both_services_run_from_it(
    built_image: tuple[Buildah, str], tmp_path: Path
) -> None:
    buildah, tag = built_image
    config = json.loads(buildah("inspect", "--type", "image", tag))["OCIv1"]["config"]
    assert config["User"] == f"{UID}:{UID}"
    assert {"5000/tcp", "5001/tcp"} <= set(config.get("ExposedPorts") or {})
    assert config["Labels"]["org.opencontainers.image.version"] == "0.0.0-test"
    assert config["Labels"]["org.opencontainers.image.base.name"].startswith(
        "localhost/ecloud-test-base:"
    )
    assert any(e.startswith("PATH=/opt/venv/bin") for e in config["Env"])
    assert config["Cmd"][0] == "ecloud-registry"

    auth_ctr = buildah("from", "--pull-never", tag)
    registry_ctr = buildah("from", "--pull-never", tag)
    script = (
        "id -u && id -g && command -v ecloud-auth ecloud-registry ec"
        " && python -c 'import shared, services.auth, services.registry, cli'"
        " && ! command -v gcc && ! command -v cc"
    )
    lines = buildah("run", "--isolation", "chroot", auth_ctr, "--", "sh", "-c", script).split()
    assert lines[:2] == [str(UID), str(UID)]
    assert "/opt/venv/bin/ecloud-auth" in lines

    auth_port, registry_port = free_port(), free_port()
    auth_url = f"http://127.0.0.1:{auth_port}"
    registry_url = f"http://127.0.0.1:{registry_port}"
    env = {"ECLOUD_AUTH_URL": auth_url, "ECLOUD_ARGON2_MEMORY_KIB": "8192"}
    auth_log, registry_log = tmp_path / "auth.log", tmp_path / "registry.log"
    auth = buildah.serve(
        auth_ctr, auth_log, env, "ecloud-auth", "serve", "--host", "127.0.0.1",
        "--port", str(auth_port),
    )  # fmt: skip
    registry = None
    try:
        _healthy(auth_url, auth, auth_log)
        password = uuid.uuid4().hex
        created = subprocess.run(
            [buildah.binary, "run", "--isolation", "chroot",
             *[f"--env={k}={v}" for k, v in env.items()],
             auth_ctr, "--", "ecloud-auth", "users", "create", "alice", "--password-stdin"],
            env=buildah.env, input=password + "\n", capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        registry = buildah.serve(
            registry_ctr, registry_log, env, "ecloud-registry", "serve", "--host", "127.0.0.1",
            "--port", str(registry_port),
        )  # fmt: skip
        _healthy(registry_url, registry, registry_log)

        challenge = httpx.get(registry_url + "/v2/", timeout=30)
        assert challenge.status_code == 401
        assert f'realm="{auth_url}/v2/token"' in challenge.headers["www-authenticate"]
        r = httpx.get(
            auth_url + "/v2/token",
            params={"service": "registry", "scope": "repository:alice/app:pull,push"},
            auth=("alice", password),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        r = httpx.get(registry_url + "/v2/", headers=headers, timeout=30)
        assert r.status_code == 200 and r.json() == {}
        data = b"pushed into the image's registry"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = httpx.post(
            registry_url + "/v2/alice/app/blobs/uploads/",
            params={"digest": digest}, content=data, headers=headers, timeout=30,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        r = httpx.get(f"{registry_url}/v2/alice/app/blobs/{digest}", headers=headers, timeout=30)
        assert r.status_code == 200 and r.content == data
    finally:
        if registry is not None:
            _stop(registry)
        _stop(auth)
