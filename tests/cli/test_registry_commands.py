"""``ec storage registry ls|tags|rm`` against the registry's dashboard API."""

from __future__ import annotations

import hashlib
import json

import httpx

from tests.cli.conftest import Ec
from tests.conftest import Stack


def _push(stack: Stack, user: str, repo: str, tag: str) -> str:
    """Push a tiny image by the plain distribution API; return the manifest digest."""
    token = stack.token(user, f"repository:{repo}:pull,push")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{stack.registry_url}/v2/{repo}"

    def blob(data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = httpx.post(
            f"{base}/blobs/uploads/",
            params={"digest": digest},
            content=data,
            headers={**headers, "Content-Type": "application/octet-stream"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return {"digest": digest, "size": len(data)}

    config = blob(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    layer = blob(b"not really a tarball, but bytes " + tag.encode())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
        }
    ).encode()
    r = httpx.put(
        f"{base}/manifests/{tag}",
        content=manifest,
        headers={**headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_ls_tags_rm(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    assert ec.ok("--json", "storage", "registry", "ls").json() == []
    digest = _push(cli_stack, user, f"{user}/app", "v1")
    _push(cli_stack, user, f"{user}/app", "v2")

    [repo] = ec.ok("--json", "storage", "registry", "ls").json()
    assert repo["name"] == f"{user}/app"
    assert repo["tag_count"] == 2
    assert set(repo) == {"name", "tag_count", "total_size", "last_pushed"}
    assert f"{user}/app" in ec.ok("storage", "registry", "ls").stdout

    tags = ec.ok("storage", "registry", "tags", f"{user}/app", "--json").json()
    assert sorted(t["name"] for t in tags) == ["v1", "v2"]
    assert next(t for t in tags if t["name"] == "v1")["digest"] == digest
    assert "v2" in ec.ok("storage", "registry", "tags", f"{user}/app").stdout

    assert "Deleted" in ec.ok("storage", "registry", "rm", f"{user}/app:v1", "-y").stdout
    ec.ok("storage", "registry", "rm", f"{user}/app", "v2", "--json", "--yes")
    assert ec.ok("--json", "storage", "registry", "tags", f"{user}/app").json() == []
    assert ec.fails("storage", "registry", "rm", f"{user}/app:v1", "-y").startswith("error: ")


def test_sa_token_lists_tags(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    _push(cli_stack, user, f"{user}/app", "v1")
    secret = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "ci",
        "--scope", "storage.me.registry=read",
    ).json()["token"]["token"]  # fmt: skip
    tags = ec.ok("--json", "storage", "registry", "tags", f"{user}/app", EC_TOKEN=secret).json()
    assert [t["name"] for t in tags] == ["v1"]


def test_other_users_repository(ec: Ec, cli_stack: Stack) -> None:
    owner, _ = cli_stack.create_user()
    _push(cli_stack, owner, f"{owner}/app", "v1")
    intruder, _ = cli_stack.create_user()
    ec.login(cli_stack, intruder)
    ec.fails("storage", "registry", "tags", f"{owner}/app")
    ec.fails("storage", "registry", "rm", f"{owner}/app:v1", "--yes")
    assert ec.ok("--json", "storage", "registry", "ls").json() == []


def test_bad_references_fail_before_any_request(ec: Ec) -> None:
    # No server configured: these must fail on the reference itself.
    args = ("--registry-url", "http://127.0.0.1:9", "--token", "t", "storage", "registry")
    assert "not a repository name" in ec.fails(*args, "tags", "Bad Name")
    assert "name the tag" in ec.fails(*args, "rm", "alice/app")
    assert "not a valid tag" in ec.fails(*args, "rm", "alice/app", "bad!")
    assert "not a repository name" in ec.fails(*args, "rm", "app:v1")


def test_registry_unreachable_and_not_logged_in(ec: Ec) -> None:
    assert "not logged in" in ec.fails("storage", "registry", "ls")
    line = ec.fails(
        "--registry-url", "http://127.0.0.1:9", "--token", "t", "storage", "registry", "ls"
    )
    assert "cannot reach the registry at http://127.0.0.1:9" in line
