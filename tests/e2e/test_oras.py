"""An artifact pushed with oras-py, with a ``subject``, found again through the referrers API."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import Clients, oras_registry

SIGNATURE_TYPE = "application/vnd.example.signature.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(autouse=True)
def _isolated_home(clients: Clients, monkeypatch: pytest.MonkeyPatch) -> None:
    # oras-py runs in this process and reads Docker credentials from HOME.
    for name in ("HOME", "DOCKER_CONFIG", "TMPDIR"):
        monkeypatch.setenv(name, clients.env[name])


def _push(client: object, target: str, path: Path, **kwargs: object) -> str:
    response = client.push(  # type: ignore[attr-defined]
        target, files=[str(path)], disable_path_validation=True, quiet=True, **kwargs
    )
    assert response.status_code == 201, response.text
    digest: str = response.headers["Docker-Content-Digest"]
    return digest


def test_artifact_with_subject_and_referrers(clients: Clients, alice: str, tmp_path: Path) -> None:
    import oras.oci

    client = oras_registry(clients, alice)
    repo = f"{alice}/artifacts"
    payload = tmp_path / "payload.txt"
    payload.write_text("the artifact itself\n")
    subject_digest = _push(client, f"{clients.host}/{repo}:v1", payload)

    manifest_bytes = clients.registry_get(
        alice, f"/v2/{repo}/manifests/v1", f"repository:{repo}:pull", Accept=OCI_MANIFEST
    ).content
    assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == subject_digest

    signature = tmp_path / "signature.json"
    signature.write_text('{"signed": true}\n')
    config = tmp_path / "config.json"
    config.write_text("{}")
    referrer_digest = _push(
        client,
        f"{clients.host}/{repo}:sig",
        signature,
        manifest_config=f"{config}:{SIGNATURE_TYPE}",
        subject=oras.oci.Subject(OCI_MANIFEST, subject_digest, len(manifest_bytes)),
    )

    r = clients.registry_get(
        alice, f"/v2/{repo}/referrers/{subject_digest}", f"repository:{repo}:pull"
    )
    assert r.status_code == 200
    found = {m["digest"]: m for m in r.json()["manifests"]}
    assert referrer_digest in found
    assert found[referrer_digest]["artifactType"] == SIGNATURE_TYPE
    filtered = clients.registry_get(
        alice,
        f"/v2/{repo}/referrers/{subject_digest}?artifactType={quote(SIGNATURE_TYPE, safe='')}",
        f"repository:{repo}:pull",
    )
    assert [m["digest"] for m in filtered.json()["manifests"]] == [referrer_digest]
    none = clients.registry_get(
        alice,
        f"/v2/{repo}/referrers/{subject_digest}?artifactType=application/x-other",
        f"repository:{repo}:pull",
    )
    assert none.json()["manifests"] == []

    # Pulled back with oras-py, byte for byte.
    out = tmp_path / "out"
    files = client.pull(target=f"{clients.host}/{repo}:v1", outdir=str(out))
    assert [Path(f).read_bytes() for f in files] == [payload.read_bytes()]
