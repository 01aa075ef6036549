"""Push, pull, list, copy and delete images with skopeo and podman."""

from __future__ import annotations

import hashlib
import json

from tests.e2e.conftest import Clients, Layout

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def test_skopeo_push_and_inspect(clients: Clients, layout: Layout, alice: str, pushed: str) -> None:
    raw = clients.skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", clients.creds(alice),
        f"docker://{clients.host}/{alice}/img:v1",
    ).stdout  # fmt: skip
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == pushed
    manifest = json.loads(raw)
    assert len(manifest["layers"]) == 2
    assert raw.encode() == layout.blob(pushed)


def test_skopeo_pull_back(clients: Clients, alice: str, pushed: str) -> None:
    target = clients.root / "pulled"
    clients.skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", clients.creds(alice),
        f"docker://{clients.host}/{alice}/img:v1", f"oci:{target}:v1",
    )  # fmt: skip
    index = json.loads((target / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed


def test_podman_pull(clients: Clients, alice: str, pushed: str) -> None:
    image = f"{clients.host}/{alice}/img:v1"
    clients.run(
        "podman", "pull", "--quiet", "--tls-verify=false", "--creds", clients.creds(alice), image
    )
    digest = clients.run(
        "podman", "image", "inspect", "--format", "{{.Digest}}", image
    ).stdout.strip()
    assert digest == pushed


def test_multi_platform_index_round_trip(clients: Clients, layout: Layout, alice: str) -> None:
    dest = f"docker://{clients.host}/{alice}/multi:v1"
    clients.skopeo(
        "copy", "--all", "--dest-tls-verify=false", "--dest-creds", clients.creds(alice),
        layout.ref("multi"), dest,
    )  # fmt: skip
    descriptor = layout.descriptor("multi")
    original = layout.blob(str(descriptor["digest"]))
    r = clients.registry_get(
        alice,
        f"/v2/{alice}/multi/manifests/v1",
        f"repository:{alice}/multi:pull",
        Accept=f"{OCI_INDEX}, {OCI_MANIFEST}",
    )
    assert r.status_code == 200, r.text
    assert r.content == original
    assert r.headers["docker-content-digest"] == descriptor["digest"]
    assert r.headers["content-type"] == OCI_INDEX
    # Each platform's manifest is there too, byte for byte.
    for entry in json.loads(original)["manifests"]:
        r = clients.registry_get(
            alice,
            f"/v2/{alice}/multi/manifests/{entry['digest']}",
            f"repository:{alice}/multi:pull",
            Accept=OCI_MANIFEST,
        )
        assert r.content == layout.blob(entry["digest"])
    # skopeo reads it back as an index and picks a platform's image from it.
    raw = clients.skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", clients.creds(alice), dest
    ).stdout
    assert raw.encode() == original


def test_list_tags(clients: Clients, layout: Layout, alice: str, pushed: str) -> None:
    clients.skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", clients.creds(alice),
        layout.ref("amd64"), f"docker://{clients.host}/{alice}/img:v2",
    )  # fmt: skip
    out = clients.skopeo(
        "list-tags", "--tls-verify=false", "--creds", clients.creds(alice),
        f"docker://{clients.host}/{alice}/img",
    ).stdout  # fmt: skip
    listed = json.loads(out)
    assert listed["Repository"] == f"{clients.host}/{alice}/img"
    assert set(listed["Tags"]) >= {"v1", "v2"}


def _count(metrics: str, method: str, route_part: str, status: str) -> int:
    total = 0
    for line in metrics.splitlines():
        if (
            line.startswith("ecloud_registry_http_requests_total{")
            and f'method="{method}"' in line
            and route_part in line
            and f'status="{status}"' in line
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_copy_between_repositories_mounts_blobs(clients: Clients, alice: str, pushed: str) -> None:
    import httpx

    def metrics() -> str:
        return httpx.get(clients.stack.registry_url + "/metrics", timeout=10).text

    before = metrics()
    clients.skopeo(
        "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
        "--src-creds", clients.creds(alice), "--dest-creds", clients.creds(alice),
        f"docker://{clients.host}/{alice}/img:v1", f"docker://{clients.host}/{alice}/copy:v1",
    )  # fmt: skip
    after = metrics()
    # Both layers came over by cross-repository mount; skopeo re-sends only the
    # small config blob (it does not try to mount configs).
    mounts = _count(after, "POST", "uploads", "201") - _count(before, "POST", "uploads", "201")
    patches = _count(after, "PATCH", "uploads", "202") - _count(before, "PATCH", "uploads", "202")
    assert mounts >= 2
    assert patches <= 1
    raw = clients.skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", clients.creds(alice),
        f"docker://{clients.host}/{alice}/copy:v1",
    ).stdout  # fmt: skip
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == pushed


def test_skopeo_delete(clients: Clients, layout: Layout, alice: str) -> None:
    ref = f"docker://{clients.host}/{alice}/doomed:v1"
    clients.skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", clients.creds(alice),
        layout.ref("arm64"), ref,
    )  # fmt: skip
    clients.skopeo("delete", "--tls-verify=false", "--creds", clients.creds(alice), ref)
    result = clients.skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", clients.creds(alice), ref, check=False
    )
    assert result.returncode != 0
    assert "manifest unknown" in result.stderr.lower()
