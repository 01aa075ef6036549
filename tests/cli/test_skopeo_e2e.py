"""skopeo with service-account tokens made by ``ec``: login, push, pull, revocation."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import Ec
from tests.conftest import Stack
from tests.needs import need_tool

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _need_skopeo() -> None:
    need_tool("skopeo")


@dataclass
class Skopeo:
    home: Path
    host: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TMPDIR": str(self.home),
            "REGISTRY_AUTH_FILE": str(self.home / "auth.json"),
        }

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["skopeo", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def login(self, secret: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "login", "--tls-verify=false", "-u", "ci", "--password-stdin", self.host,
            stdin=secret + "\n",
        )  # fmt: skip


@pytest.fixture
def skopeo(tmp_path: Path, cli_stack: Stack) -> Skopeo:
    home = tmp_path / "skopeo"
    home.mkdir()
    (home / "auth.json").write_text('{"auths":{}}')
    return Skopeo(home, cli_stack.registry_host)


def _create_account(ec: Ec, stack: Stack, scope: str) -> dict[str, str]:
    username, _ = stack.create_user()
    ec.login(stack, username)
    made = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "ci", "--scope", scope
    ).json()
    return {
        "username": username,
        "token": made["token"]["token"],
        "token_id": made["token"]["id"],
        "account": made["service_account"]["id"],
    }


def test_skopeo_login_with_sa_token_and_revocation(ec: Ec, cli_stack: Stack, skopeo: Skopeo):
    made = _create_account(ec, cli_stack, "storage.me.registry=read,create,delete")
    result = skopeo.login(made["token"])
    assert result.returncode == 0, result.stderr
    assert "Login Succeeded" in result.stdout
    ec.ok("auth", "tokens", "rm", made["token_id"], "--yes")
    (skopeo.home / "auth.json").write_text('{"auths":{}}')
    result = skopeo.login(made["token"])
    assert result.returncode != 0
    assert "invalid username/password" in result.stderr


# --- push and pull ----------------------------------------------------------------------


def _build_image(root: Path) -> str:
    """A one-layer OCI image built from scratch with umoci; returns its oci: reference."""
    need_tool("umoci")
    layout = root / "oci"
    bundle = root / "bundle"
    for args in (
        ["init", "--layout", str(layout)],
        ["new", "--image", f"{layout}:v1"],
        ["unpack", "--rootless", "--image", f"{layout}:v1", str(bundle)],
    ):
        subprocess.run(["umoci", *args], check=True, capture_output=True, timeout=60)
    (bundle / "rootfs" / "hello.txt").write_text("hello from ecloud\n")
    subprocess.run(
        ["umoci", "repack", "--image", f"{layout}:v1", str(bundle)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return f"oci:{layout}:v1"


def test_skopeo_push_and_pull_with_sa_tokens(
    ec: Ec, cli_stack: Stack, skopeo: Skopeo, tmp_path: Path
) -> None:
    image = _build_image(tmp_path)
    writer = _create_account(ec, cli_stack, "storage.me.registry=read,create,delete")
    user, host = writer["username"], skopeo.host
    target = f"docker://{host}/{user}/app:v1"

    pushed = skopeo.run(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"ci:{writer['token']}", image, target
    )
    assert pushed.returncode == 0, pushed.stderr

    # A read-only account of the same user pulls but cannot push.
    reader = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "reader",
        "--scope", "storage.me.registry=read",
    ).json()["token"]["token"]  # fmt: skip
    pulled = skopeo.run(
        "copy", "--src-tls-verify=false", "--src-creds", f"ci:{reader}",
        target, f"oci:{tmp_path / 'pulled'}:v1",
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    denied = skopeo.run(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"ci:{reader}",
        image, f"docker://{host}/{user}/app:v2",
    )  # fmt: skip
    assert denied.returncode != 0

    # Another user's account reaches nothing of this user's.
    stranger = _create_account(ec, cli_stack, "storage.me.registry=read,create,delete")
    assert (
        skopeo.run(
            "inspect", "--tls-verify=false", "--creds", f"ci:{stranger['token']}", target
        ).returncode
        != 0
    )

    # Revoked: the writer's token no longer pulls.
    ec.ok("--token", cli_stack.session(user), "auth", "tokens", "rm", writer["token_id"], "--yes")
    again = skopeo.run("inspect", "--tls-verify=false", "--creds", f"ci:{writer['token']}", target)
    assert again.returncode != 0
