"""``docker login/push/pull/logout`` with the real docker engine against a real stack."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import Stack
from tests.docker.conftest import Docker, build_image

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def _pushed_digest(output: str, tag: str) -> str:
    pattern = rf"^{re.escape(tag)}: digest: (sha256:[0-9a-f]{{64}}) size: \d+$"
    match = re.search(pattern, output, re.M)
    assert match, output
    return match.group(1)


def _registry_digest(stack: Stack, user: str, name: str, tag: str) -> str:
    token = stack.token(user, f"repository:{name}:pull")
    response = httpx.head(
        f"{stack.registry_url}/v2/{name}/manifests/{tag}",
        headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.headers["docker-content-digest"]


def test_login_refuses_a_wrong_password_and_accepts_the_right_one(
    docker: Docker, docker_stack: Stack
) -> None:
    user, password = docker_stack.create_user()
    host = docker_stack.registry_host
    wrong = docker.login(host, user, password + "x", check=False)
    assert wrong.returncode != 0
    assert "unauthorized" in wrong.stderr.lower(), wrong.stderr
    assert host not in docker.config.get("auths", {})  # type: ignore[operator]
    right = docker.login(host, user, password)
    assert "Login Succeeded" in right.stdout
    assert host in docker.config["auths"]  # type: ignore[operator]


def test_push_mount_and_pull_on_a_clean_daemon(
    docker: Docker, docker_stack: Stack, tmp_path: Path
) -> None:
    user, password = docker_stack.create_user()
    host = docker_stack.registry_host
    docker.login(host, user, password)
    image = build_image(tmp_path, f"{host}/{user}/app:v1")
    docker.load(image.tarball)

    pushed = docker.run("push", image.ref).stdout
    assert pushed.count("Pushed") == 3, pushed
    digest = _pushed_digest(pushed, "v1")
    assert _registry_digest(docker_stack, user, f"{user}/app", "v1") == digest

    # The same layers in a second repository: docker mounts them instead of uploading.
    second = f"{host}/{user}/other:v1"
    docker.run("tag", image.ref, second)
    mounted = docker.run("push", second).stdout
    assert mounted.count(f"Mounted from {user}/app") == 3, mounted
    assert _pushed_digest(mounted, "v1") == digest

    # Forget the image entirely, then pull it back from the registry.
    docker.run("rmi", image.ref, second)
    assert not docker.image_exists(image.ref)
    pulled = docker.run("pull", image.ref).stdout
    assert pulled.count("Pull complete") == 3, pulled
    assert f"Digest: {digest}" in pulled
    repo_digests = docker.run("image", "inspect", "--format", "{{json .RepoDigests}}", image.ref)
    assert f"{host}/{user}/app@{digest}" in repo_digests.stdout
    layers = docker.run("image", "inspect", "--format", "{{json .RootFS.Layers}}", image.ref)
    assert all(diff_id in layers.stdout for diff_id in image.diff_ids)


def test_service_account_token_is_a_password_whatever_the_username(
    docker: Docker, docker_stack: Stack, tmp_path: Path
) -> None:
    user, _ = docker_stack.create_user()
    session = docker_stack.session(user)
    headers = {"Authorization": f"Bearer {session}"}
    account = httpx.post(
        docker_stack.auth_url + "/api/service-accounts",
        json={"name": "ci", "scopes": ["storage.me.registry=read,create"]},
        headers=headers,
        timeout=10,
    ).json()
    secret = httpx.post(
        f"{docker_stack.auth_url}/api/service-accounts/{account['id']}/tokens",
        json={"expires_in": "30d"},
        headers=headers,
        timeout=10,
    ).json()["token"]
    host = docker_stack.registry_host
    assert "Login Succeeded" in docker.login(host, "anyone-at-all", secret).stdout
    image = build_image(tmp_path, f"{host}/{user}/from-ci:v1", layers=2)
    docker.load(image.tarball)
    digest = _pushed_digest(docker.run("push", image.ref).stdout, "v1")
    assert _registry_digest(docker_stack, user, f"{user}/from-ci", "v1") == digest


def test_logout_then_refused_and_other_namespaces_denied(
    docker: Docker, docker_stack: Stack, tmp_path: Path
) -> None:
    owner, _ = docker_stack.create_user()
    intruder, intruder_password = docker_stack.create_user()
    host = docker_stack.registry_host
    docker.login(host, intruder, intruder_password)
    image = build_image(tmp_path, f"{host}/{owner}/app:v1", layers=1)
    docker.load(image.tarball)

    # Another user's namespace: the push is denied and nothing lands there.
    denied = docker.run("push", image.ref, check=False)
    assert denied.returncode != 0
    assert "denied" in (denied.stdout + denied.stderr).lower(), denied.stdout + denied.stderr
    owner_token = docker_stack.token(owner, f"repository:{owner}/app:pull")
    tags = httpx.get(
        f"{docker_stack.registry_url}/v2/{owner}/app/tags/list",
        headers={"Authorization": f"Bearer {owner_token}"},
        timeout=10,
    )
    assert tags.status_code == 404

    # The intruder's own push works while logged in, and is refused after logout.
    own = f"{host}/{intruder}/app:v1"
    docker.run("tag", image.ref, own)
    docker.run("push", own)
    docker.run("rmi", own)
    docker.run("logout", host)
    assert host not in docker.config.get("auths", {})  # type: ignore[operator]
    refused = docker.run("pull", own, check=False)
    assert refused.returncode != 0
    output = (refused.stdout + refused.stderr).lower()
    assert "denied" in output or "unauthorized" in output, output
    assert not docker.image_exists(own)
