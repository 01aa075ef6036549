"""docker with ``docker-credential-ec``: after ``ec auth login`` and ``ec auth
configure-docker``, push and pull work with no ``docker login``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import make_ec
from tests.conftest import Stack
from tests.docker.conftest import DOCKER_MARKS, Docker, build_image

pytestmark = DOCKER_MARKS


def test_push_and_pull_with_the_credential_helper(
    docker: Docker, docker_stack: Stack, tmp_path: Path
) -> None:
    user, password = docker_stack.create_user()
    ec = make_ec(tmp_path / "ec-home", docker_stack)
    ec.env["DOCKER_CONFIG"] = str(docker.config_dir)
    # docker runs the helper with its own environment: the same user and config.
    docker.env["HOME"] = ec.env["HOME"]
    ec.ok("auth", "login", "-u", user, "--password-stdin", stdin=password + "\n")
    ec.ok("auth", "configure-docker")
    host = docker_stack.registry_host
    assert docker.config == {"credHelpers": {host: "ec"}}

    image = build_image(tmp_path, f"{host}/{user}/helper:v1", layers=2)
    docker.load(image.tarball)
    pushed = docker.run("push", image.ref).stdout
    assert pushed.count("Pushed") == 2, pushed
    docker.run("rmi", image.ref)
    pulled = docker.run("pull", image.ref).stdout
    assert pulled.count("Pull complete") == 2, pulled
    assert "auths" not in docker.config  # docker never stored a password

    # The identity token is the login's: once ec logs out, docker is refused.
    ec.ok("auth", "logout")
    docker.run("rmi", image.ref)
    refused = docker.run("pull", image.ref, check=False)
    assert refused.returncode != 0
    output = (refused.stdout + refused.stderr).lower()
    assert "denied" in output or "unauthorized" in output, output
    assert "refresh_token" not in json.loads(ec.config_file.read_text())
