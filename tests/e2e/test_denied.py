"""A second user is refused everything on the first user's repositories, with every client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Clients, Layout, oras_registry

REFUSED = ("unauthorized", "denied", "authentication required", "insufficient")


def _refused(result_stderr: str) -> bool:
    text = result_stderr.lower()
    return any(word in text for word in REFUSED)


def test_skopeo_and_podman_are_refused(
    clients: Clients, layout: Layout, alice: str, bob: str, pushed: str
) -> None:
    creds = clients.creds(bob)
    image = f"{clients.host}/{alice}/img"
    attempts = [
        ("skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, f"docker://{image}:v1"),
        ("skopeo", "copy", "--src-tls-verify=false", "--src-creds", creds,
         f"docker://{image}:v1", f"oci:{clients.root}/stolen:v1"),
        ("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds,
         layout.ref("amd64"), f"docker://{image}:bob"),
        ("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds,
         layout.ref("amd64"), f"docker://{clients.host}/{alice}/new-by-bob:v1"),
        ("skopeo", "list-tags", "--tls-verify=false", "--creds", creds, f"docker://{image}"),
        ("skopeo", "delete", "--tls-verify=false", "--creds", creds, f"docker://{image}:v1"),
        ("podman", "pull", "--tls-verify=false", "--creds", creds, f"{image}:v1"),
    ]  # fmt: skip
    for args in attempts:
        result = clients.run(*args, check=False)
        assert result.returncode != 0, args
        assert _refused(result.stderr), (args, result.stderr)
    # Nothing changed for alice.
    tags = clients.registry_get(alice, f"/v2/{alice}/img/tags/list", f"repository:{alice}/img:pull")
    assert "bob" not in tags.json()["tags"]
    assert "v1" in tags.json()["tags"]
    r = clients.registry_get(
        alice, f"/v2/{alice}/new-by-bob/tags/list", f"repository:{alice}/new-by-bob:pull"
    )
    assert r.status_code == 404


def test_oras_is_refused(
    clients: Clients, alice: str, bob: str, pushed: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for name in ("HOME", "DOCKER_CONFIG", "TMPDIR"):
        monkeypatch.setenv(name, clients.env[name])
    client = oras_registry(clients, bob)
    payload = tmp_path / "x.txt"
    payload.write_text("bob's\n")
    # oras-py turns the registry's final 401 into a ValueError carrying the answer.
    with pytest.raises(ValueError, match="Issue retrieving session url") as pushed_err:
        client.push(
            f"{clients.host}/{alice}/img:oras",
            files=[str(payload)],
            disable_path_validation=True,
            quiet=True,
        )
    assert "'code': 'UNAUTHORIZED'" in str(pushed_err.value)
    assert f"repository:{alice}/img:pull,push is required" in str(pushed_err.value)
    with pytest.raises(ValueError, match=rf"/v2/{alice}/img/manifests/v1: Unauthorized$"):
        client.pull(target=f"{clients.host}/{alice}/img:v1", outdir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # Nothing changed for alice: no "oras" tag.
    tags = clients.registry_get(alice, f"/v2/{alice}/img/tags/list", f"repository:{alice}/img:pull")
    assert "oras" not in tags.json()["tags"]


def test_http_referrers_and_catalog_hide_other_users(
    clients: Clients, alice: str, bob: str, pushed: str
) -> None:
    # Bob's own repository, so his catalog has something in it.
    token = clients.stack.token(bob, f"repository:{bob}/mine:pull,push")
    r = httpx.post(
        f"{clients.stack.registry_url}/v2/{bob}/mine/blobs/uploads/",
        params={
            "digest": "sha256:" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201
    r = clients.registry_get(
        bob, f"/v2/{alice}/img/referrers/{pushed}", f"repository:{alice}/img:pull"
    )
    assert r.status_code == 401
    catalog = clients.registry_get(bob, "/v2/_catalog", "registry:catalog:*")
    assert catalog.status_code == 200
    names = catalog.json()["repositories"]
    assert f"{bob}/mine" in names
    assert not [n for n in names if n.startswith(f"{alice}/")]
    own = clients.registry_get(alice, "/v2/_catalog", "registry:catalog:*")
    assert f"{alice}/img" in own.json()["repositories"]
