"""JWKS, probes and metrics of both services; key loading at the registry."""

from __future__ import annotations

import json

import httpx
import jwt

from shared.keys import load_signing_key, load_verify_keys
from tests.conftest import Stack


def test_jwks_publishes_the_signing_key(stack: Stack) -> None:
    r = httpx.get(stack.auth_url + "/.well-known/jwks.json")
    assert r.status_code == 200
    keys = load_verify_keys(r.content)
    signing = load_signing_key((stack.root / "data" / "signing-key.pem").read_bytes())
    assert [k.kid for k in keys] == [signing.kid]
    assert all("d" not in jwk for jwk in r.json()["keys"])


def test_probes_and_metrics(stack: Stack) -> None:
    user, _ = stack.create_user()
    stack.token(user)
    for base in (stack.auth_url, stack.registry_url):
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        assert httpx.get(base + "/readyz").status_code == 200
    metrics = httpx.get(stack.auth_url + "/metrics").text
    assert 'ecloud_auth_tokens_issued_total{kind="registry"}' in metrics
    assert "ecloud_registry_http_requests_total" in httpx.get(stack.registry_url + "/metrics").text


def test_registry_reads_keys_from_a_file_and_keeps_several(make_stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shared.keys import generate_private_key_pem, jwks_document
    from shared.scopes import parse_scope
    from shared.tokens import TokenIssuer

    data = tmp_path / "shared-data"
    data.mkdir()
    key_file = data / "signing-key.pem"
    key_file.write_bytes(generate_private_key_pem("ES256"))
    key_file.chmod(0o600)
    signing = load_signing_key(key_file.read_bytes())
    old = load_signing_key(generate_private_key_pem("EdDSA"))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jwks_document([old.verify_key, signing.verify_key])))
    stack: Stack = make_stack(
        {
            "ECLOUD_SIGNING_KEY_FILE": str(key_file),
            "ECLOUD_JWKS_FILE": str(jwks),
            "ECLOUD_AUTH_INTERNAL_URL": "http://127.0.0.1:9",
        }
    )
    user, _ = stack.create_user()
    token = stack.token(user)
    assert httpx.get(stack.auth_url + "/.well-known/jwks.json").json()["keys"][0]["alg"] == "ES256"
    r = httpx.get(stack.registry_url + "/v2/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200

    # A token signed by the other key of the file (the one the auth service no longer
    # signs with) verifies too, with its access; a key outside the file does not.
    def signed_by(key: object) -> str:
        issued, _ = TokenIssuer(key, "ecloud-auth").issue_registry_token(  # type: ignore[arg-type]
            subject="usr_someone",
            audience="registry",
            access=[parse_scope("repository:someone/app:pull")],
            ttl_seconds=120,
        )
        return issued

    by_old = signed_by(old)
    assert jwt.get_unverified_header(by_old)["kid"] == old.kid != signing.kid
    r = httpx.get(stack.registry_url + "/v2/", headers={"Authorization": f"Bearer {by_old}"})
    assert r.status_code == 200
    stranger = signed_by(load_signing_key(generate_private_key_pem("EdDSA")))
    r = httpx.get(stack.registry_url + "/v2/", headers={"Authorization": f"Bearer {stranger}"})
    assert r.status_code == 401
    assert "unknown key" in r.json()["errors"][0]["message"]


def test_auth_publishes_the_extra_public_keys(make_stack, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shared.keys import generate_private_key_pem, jwks_document

    extra = [load_signing_key(generate_private_key_pem(alg)) for alg in ("EdDSA", "ES256")]
    extra_file = tmp_path / "previous-keys.json"
    extra_file.write_text(json.dumps(jwks_document([k.verify_key for k in extra])))
    stack: Stack = make_stack({"ECLOUD_EXTRA_PUBLIC_KEYS_FILE": str(extra_file)})
    signing = load_signing_key((stack.root / "data" / "signing-key.pem").read_bytes())
    r = httpx.get(stack.auth_url + "/.well-known/jwks.json")
    published = load_verify_keys(r.content)
    assert [k.kid for k in published] == [signing.kid, extra[0].kid, extra[1].kid]
    assert all("d" not in jwk for jwk in r.json()["keys"])
    # The service still signs with its own key only.
    user, _ = stack.create_user()
    assert jwt.get_unverified_header(stack.token(user))["kid"] == signing.kid
