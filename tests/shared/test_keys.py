"""Key generation, loading, RFC 7638 thumbprints and JWKS."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from shared.keys import (
    KeyError_,
    VerifyKey,
    generate_private_key_pem,
    jwks_document,
    load_or_create_signing_key,
    load_signing_key,
    load_verify_keys,
    thumbprint,
)


def test_rfc8037_thumbprint_vector() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 public key.
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_rfc7638_thumbprint_vector_member_order_does_not_matter() -> None:
    a = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "BB"}
    b = {"y": "BB", "x": "AA", "crv": "P-256", "kty": "EC", "kid": "ignored"}
    assert thumbprint(a) == thumbprint(b)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_jwk_round_trip(alg: str) -> None:
    key = load_signing_key(generate_private_key_pem(alg))
    assert key.alg == alg
    jwk = key.verify_key.to_jwk()
    assert jwk["kid"] == key.kid == thumbprint(jwk)
    assert "d" not in jwk
    again = VerifyKey.from_jwk(jwk)
    assert again.kid == key.kid and again.alg == alg


def test_load_verify_keys_from_jwks_and_pem() -> None:
    a = load_signing_key(generate_private_key_pem("EdDSA"))
    b = load_signing_key(generate_private_key_pem("ES256"))
    document = json.dumps(jwks_document([a.verify_key, b.verify_key])).encode()
    assert {k.kid for k in load_verify_keys(document)} == {a.kid, b.kid}
    pems = generate_private_key_pem("EdDSA") + generate_private_key_pem("ES256")
    assert len(load_verify_keys(pems)) == 2


def test_bad_key_material_is_refused() -> None:
    with pytest.raises(KeyError_):
        load_signing_key(b"not a key")
    with pytest.raises(KeyError_):
        load_verify_keys(b'{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}')
    with pytest.raises(KeyError_):
        load_verify_keys(b"nothing here")
    with pytest.raises(KeyError_):
        generate_private_key_pem("HS256")


def test_generated_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-key.pem"
    key = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_signing_key(path).kid == key.kid
