"""``skopeo login`` against the pair: the real client's token flow."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Stack
from tests.needs import need_tool

pytestmark = pytest.mark.e2e


def skopeo() -> str:
    return need_tool("skopeo")


def login(
    stack: Stack, tmp_path: Path, user: str, password: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    return subprocess.run(
        [
            skopeo(),
            "login",
            "--tls-verify=false",
            "--authfile",
            str(tmp_path / "auth.json"),
            "-u",
            user,
            "--password-stdin",
            stack.registry_host,
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_skopeo_login_succeeds_with_the_password(stack: Stack, tmp_path: Path) -> None:
    user, password = stack.create_user()
    result = login(stack, tmp_path, user, password)
    assert result.returncode == 0, result.stderr
    assert "Login Succeeded" in result.stdout
    assert stack.registry_host in (tmp_path / "auth.json").read_text()


def test_skopeo_login_fails_clearly_with_a_wrong_password(stack: Stack, tmp_path: Path) -> None:
    user, _ = stack.create_user()
    result = login(stack, tmp_path, user, "definitely-wrong")
    assert result.returncode != 0
    message = result.stderr.lower()
    assert "unauthorized" in message or "invalid username/password" in message, result.stderr
    assert (
        not (tmp_path / "auth.json").exists()
        or stack.registry_host not in (tmp_path / "auth.json").read_text()
    )
