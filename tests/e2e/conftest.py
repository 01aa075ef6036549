"""Real clients against a real stack: skopeo, podman, umoci, oras-py.

Every client runs with its configuration in the test's temporary folder
(rootless-friendly settings that work in a container): vfs storage, cgroupfs, an insecure
registry entry for the numeric 127.0.0.1:PORT, one auth file per client, and
HOME/TMPDIR/DOCKER_CONFIG inside the folder. Every call has a timeout. A
missing client binary skips its tests (a failure under CI: see tests/needs.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Stack, build_stack
from tests.needs import need_tool

CLIENT_TIMEOUT = 120
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def need(binary: str) -> str:
    """The path of `binary` (a skip, so a failure under CI, when it is not installed)."""
    return need_tool(binary)


@dataclass
class Clients:
    """Environment and helpers for running container clients against one stack."""

    stack: Stack
    root: Path
    env: dict[str, str]

    @property
    def host(self) -> str:
        return self.stack.registry_host

    def run(
        self, *args: str, check: bool = True, timeout: float = CLIENT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        need(args[0])
        result = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("skopeo", *args, check=check)

    def creds(self, user: str) -> str:
        return f"{user}:{self.stack.passwords[user]}"

    def registry_get(self, user: str, path: str, scope: str, **headers: str) -> httpx.Response:
        token = self.stack.token(user, scope)
        return httpx.get(
            self.stack.registry_url + path,
            headers={"Authorization": f"Bearer {token}", **headers},
            timeout=30,
        )


def client_env(root: Path, registry_host: str) -> dict[str, str]:
    for name in ("home", "tmp", "docker", "storage/run", "storage/graph"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "storage.conf").write_text(
        "[storage]\n"
        'driver = "vfs"\n'
        f'runroot = "{root}/storage/run"\n'
        f'graphroot = "{root}/storage/graph"\n'
    )
    (root / "containers.conf").write_text(
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
    )
    (root / "registries.conf").write_text(
        "unqualified-search-registries = []\n\n"
        f'[[registry]]\nlocation = "{registry_host}"\ninsecure = true\n'
    )
    auth = root / "auth.json"
    auth.write_text(json.dumps({"auths": {}}))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "TMPDIR": str(root / "tmp"),
        "DOCKER_CONFIG": str(root / "docker"),
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf"),
        "REGISTRY_AUTH_FILE": str(auth),
        "LANG": "C.UTF-8",
    }
    return env


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = build_stack(tmp_path_factory.mktemp("e2e-stack"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def clients(e2e_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Clients:
    root = tmp_path_factory.mktemp("clients")
    return Clients(e2e_stack, root, client_env(root, e2e_stack.registry_host))


@dataclass
class Layout:
    """An OCI image layout built from scratch with umoci."""

    path: Path

    def ref(self, tag: str) -> str:
        """The containers/image (skopeo) reference."""
        return f"oci:{self.path}:{tag}"

    def umoci_ref(self, tag: str) -> str:
        return f"{self.path}:{tag}"

    def index(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.path / "index.json").read_text())
        return data

    def blob(self, digest: str) -> bytes:
        algorithm, hexpart = digest.split(":")
        return (self.path / "blobs" / algorithm / hexpart).read_bytes()

    def write_blob(self, data: bytes) -> str:
        import hashlib

        hexpart = hashlib.sha256(data).hexdigest()
        (self.path / "blobs/sha256" / hexpart).write_bytes(data)
        return f"sha256:{hexpart}"

    def descriptor(self, tag: str) -> dict[str, object]:
        manifests = self.index()["manifests"]
        assert isinstance(manifests, list)
        for d in manifests:
            if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return dict(d)
        raise KeyError(tag)

    def add_ref(self, tag: str, descriptor: dict[str, object]) -> None:
        index = self.index()
        manifests = index["manifests"]
        assert isinstance(manifests, list)
        manifests.append({**descriptor, "annotations": {"org.opencontainers.image.ref.name": tag}})
        (self.path / "index.json").write_text(json.dumps(index))


def build_image(clients: Clients, layout: Layout, tag: str, arch: str, files: list[str]) -> None:
    """An image of one layer per file (each layer adds one small text file)."""
    work = layout.path.parent
    image = layout.umoci_ref(tag)
    clients.run("umoci", "new", "--image", image)
    clients.run(
        "umoci", "config", "--image", image, "--os", "linux", "--architecture", arch,
        "--config.cmd", "/bin/true",
    )  # fmt: skip
    for i, name in enumerate(files):
        bundle = work / f"bundle-{tag}-{i}"
        clients.run("umoci", "unpack", "--image", image, str(bundle))
        (bundle / "rootfs" / name).write_text(f"{name} for {arch}\n")
        clients.run("umoci", "repack", "--image", image, str(bundle))
        shutil.rmtree(bundle)


@pytest.fixture(scope="session")
def layout(clients: Clients, tmp_path_factory: pytest.TempPathFactory) -> Layout:
    """A layout with `amd64` and `arm64` two-layer images and a `multi` index of both."""
    need("umoci")
    work = tmp_path_factory.mktemp("images")
    result = Layout(work / "oci")
    clients.run("umoci", "init", "--layout", str(result.path))
    build_image(clients, result, "amd64", "amd64", ["one.txt", "two.txt"])
    build_image(clients, result, "arm64", "arm64", ["one.txt", "two.txt"])
    entries = []
    for arch in ("amd64", "arm64"):
        d = result.descriptor(arch)
        d.pop("annotations", None)
        entries.append({**d, "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        },
        indent=2,
    ).encode()
    digest = result.write_blob(index)
    result.add_ref(
        "multi",
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": len(index),
        },
    )
    return result


@pytest.fixture(scope="session")
def alice(clients: Clients) -> str:
    user, _ = clients.stack.create_user()
    return user


@pytest.fixture(scope="session")
def bob(clients: Clients) -> str:
    user, _ = clients.stack.create_user()
    return user


@pytest.fixture(scope="session")
def pushed(clients: Clients, layout: Layout, alice: str) -> str:
    """alice/img:v1, pushed from the OCI layout with skopeo; returns its manifest digest."""
    clients.skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", clients.creds(alice),
        layout.ref("amd64"), f"docker://{clients.host}/{alice}/img:v1",
    )  # fmt: skip
    digest = layout.descriptor("amd64")["digest"]
    assert isinstance(digest, str)
    return digest


def oras_registry(clients: Clients, user: str) -> Any:
    """An oras-py client for `user`, tamed for tests (see real-clients.md).

    oras-py keeps the first token it got and answers a later challenge for
    more actions with that same token; here every challenge fetches a fresh
    token. Its retry decorator waits up to 83 s between attempts; here a
    failure is retried once after a second.
    """
    import oras.client  # first: importing oras.decorator alone is a circular import
    import oras.decorator
    import oras.provider

    class Registry(oras.provider.Registry):  # type: ignore[misc]
        do_request = oras.decorator.retry(attempts=2, timeout=0)(
            oras.provider.Registry.do_request.__wrapped__
        )

    client = Registry(hostname=clients.host, insecure=True)
    client.auth.set_basic_auth(user, clients.stack.passwords[user])
    authenticate = client.auth.authenticate_request

    def fresh(original: Any, headers: dict[str, str], refresh: bool = False) -> Any:
        return authenticate(original, headers, refresh=True)

    client.auth.authenticate_request = fresh
    return client
