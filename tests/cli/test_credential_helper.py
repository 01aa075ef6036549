"""``docker-credential-ec`` (docker's credential-helper protocol) and ``ec auth configure-docker``.

The helper is run as docker runs it: its console script, the action as its
only argument, JSON or a server URL on stdin, the answer on stdout.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import Ec
from tests.conftest import BIN, Stack

NOT_FOUND = "credentials not found in native keychain\n"


def helper(ec: Ec, action: str, stdin: str = "", *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "docker-credential-ec"), action, *extra],
        input=stdin,
        env=ec.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ec.home,
    )


def test_protocol_errors(ec: Ec) -> None:
    for args, stdin, message in (
        (["get"], "", "no credentials server URL\n"),
        (["get"], "  \n", "no credentials server URL\n"),
        (["erase"], "", "no credentials server URL\n"),
        (["store"], '{"Username": "u", "Secret": "s"}', "no credentials server URL\n"),
        (["store"], '{"ServerURL": "r.example", "Secret": "s"}', "no credentials username\n"),
        (["fly"], "", "Unknown credential action `fly`\n"),
        (["get", "extra"], "", "Usage: docker-credential-ec <store|get|erase|list|version>\n"),
        (["get"], "registry.example.com", NOT_FOUND),
        (["erase"], "registry.example.com", NOT_FOUND),
    ):
        result = helper(ec, args[0], stdin, *args[1:])
        assert (result.returncode, result.stdout) == (1, message), (args, result)
        assert "Traceback" not in result.stderr
    result = helper(ec, "store", "{not json")
    assert result.returncode == 1 and result.stdout.startswith("invalid credentials JSON")
    version = helper(ec, "version")
    assert version.returncode == 0 and version.stdout.startswith("docker-credential-ec ")
    assert helper(ec, "list").stdout == "{}\n"


def test_store_get_list_erase_round_trip(ec: Ec) -> None:
    creds = {"ServerURL": "https://registry.example.com", "Username": "alice", "Secret": "s3cr3t"}
    stored = helper(ec, "store", json.dumps(creds))
    assert (stored.returncode, stored.stdout) == (0, "")
    assert stat.S_IMODE(ec.config_file.stat().st_mode) == 0o600
    for server in ("https://registry.example.com", "registry.example.com"):
        got = helper(ec, "get", server + "\n")
        assert got.returncode == 0
        assert json.loads(got.stdout) == {**creds, "ServerURL": server}
    identity = {"ServerURL": "other.example:5000", "Username": "<token>", "Secret": "refresh"}
    assert helper(ec, "store", json.dumps(identity)).returncode == 0
    assert json.loads(helper(ec, "list").stdout) == {
        "registry.example.com": "alice",
        "other.example:5000": "<token>",
    }
    erased = helper(ec, "erase", "registry.example.com")
    assert (erased.returncode, erased.stdout) == (0, "")
    assert helper(ec, "get", "registry.example.com").stdout == NOT_FOUND
    assert json.loads(helper(ec, "get", "other.example:5000").stdout)["Secret"] == "refresh"
    assert json.loads(helper(ec, "list").stdout) == {"other.example:5000": "<token>"}


def test_get_with_a_service_account_token(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    secret = ec.ok(
        "auth", "service-accounts", "create", "-n", "ci", "-s", "storage.me.registry=read", "-q"
    ).stdout.strip()
    ec.ok("auth", "set-token", "-", stdin=secret + "\n")
    got = json.loads(helper(ec, "get", cli_stack.registry_host).stdout)
    assert got["Secret"] == secret
    # A session token pasted by hand has no refresh token to hand over: say so.
    ec.ok("auth", "set-token", "-", stdin=cli_stack.session(user) + "\n")
    refused = helper(ec, "get", cli_stack.registry_host)
    assert refused.returncode == 1 and "run `ec auth login`" in refused.stdout


@pytest.fixture
def docker_config(ec: Ec, tmp_path: Path) -> Path:
    folder = tmp_path / "docker"
    ec.env["DOCKER_CONFIG"] = str(folder)
    return folder / "config.json"


def test_configure_docker_keeps_the_rest_of_the_file(
    ec: Ec, cli_stack: Stack, docker_config: Path
) -> None:
    docker_config.parent.mkdir()
    original = {
        "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}},
        "credHelpers": {"gcr.io": "gcloud"},
        "psFormat": "table {{.ID}}",
        "proxies": {"default": {"noProxy": "127.0.0.1"}},
    }
    docker_config.write_text(json.dumps(original))
    docker_config.chmod(0o640)
    out = ec.ok("auth", "configure-docker").stdout
    assert cli_stack.registry_host in out
    data = json.loads(docker_config.read_text())
    assert data == {
        **original,
        "credHelpers": {"gcr.io": "gcloud", cli_stack.registry_host: "ec"},
    }
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o640
    assert [p.name for p in docker_config.parent.iterdir()] == ["config.json"]  # no temp left
    again = ec.ok("--json", "auth", "configure-docker").json()
    assert again == {
        "config": str(docker_config),
        "host": cli_stack.registry_host,
        "changed": False,
    }
    ec.ok("auth", "configure-docker", "https://registry.example.com/")
    assert json.loads(docker_config.read_text())["credHelpers"]["registry.example.com"] == "ec"


def test_configure_docker_new_file_and_bad_files(
    ec: Ec, cli_stack: Stack, docker_config: Path, tmp_path: Path
) -> None:
    ec.ok("auth", "configure-docker", "registry.example.com")
    assert json.loads(docker_config.read_text()) == {"credHelpers": {"registry.example.com": "ec"}}
    assert stat.S_IMODE(docker_config.stat().st_mode) == 0o600
    docker_config.write_text("{broken")
    line = ec.fails("auth", "configure-docker")
    assert "not valid JSON" in line and str(docker_config) in line
    assert docker_config.read_text() == "{broken"
    # Without DOCKER_CONFIG: ~/.docker/config.json.
    del ec.env["DOCKER_CONFIG"]
    ec.ok("auth", "configure-docker")
    home_config = ec.home / ".docker" / "config.json"
    assert json.loads(home_config.read_text()) == {"credHelpers": {cli_stack.registry_host: "ec"}}
    bare = dict(ec.env)
    bare.pop("EC_REGISTRY_URL")
    result = subprocess.run(
        [str(BIN / "ec"), "auth", "configure-docker"],
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "name the registry host" in result.stderr
