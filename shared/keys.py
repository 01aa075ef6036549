"""Signing keys, RFC 7638 key ids and JWKS.

The auth service signs with one private key (Ed25519 by default, P-256 for
ES256 accepted); verifiers hold a set of public keys indexed by ``kid`` so a
new key can be published before the old one is retired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "KeyError_",
    "KeySet",
    "SigningKey",
    "VerifyKey",
    "generate_private_key_pem",
    "jwks_document",
    "load_or_create_signing_key",
    "load_signing_key",
    "load_verify_keys",
    "thumbprint",
]

SUPPORTED_ALGORITHMS = ("EdDSA", "ES256")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class KeyError_(ValueError):
    """A key file or JWK that cannot be used."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_jwk(key: PublicKey) -> dict[str, str]:
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
    raise KeyError_("only Ed25519 and P-256 keys are supported")


def thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members."""
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}.get(jwk.get("kty", ""))
    if required is None:
        raise KeyError_(f"unsupported key type {jwk.get('kty')!r}")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _algorithm_of(key: PublicKey) -> str:
    return "EdDSA" if isinstance(key, ed25519.Ed25519PublicKey) else "ES256"


@dataclass(frozen=True, slots=True)
class VerifyKey:
    kid: str
    alg: str
    public_key: PublicKey

    @classmethod
    def from_public_key(cls, key: PublicKey) -> VerifyKey:
        return cls(thumbprint(_public_jwk(key)), _algorithm_of(key), key)

    def to_jwk(self) -> dict[str, str]:
        return {**_public_jwk(self.public_key), "kid": self.kid, "alg": self.alg, "use": "sig"}

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> VerifyKey:
        try:
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
                key: PublicKey = ed25519.Ed25519PublicKey.from_public_bytes(
                    _b64url_decode(jwk["x"])
                )
            elif jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
                key = ec.EllipticCurvePublicNumbers(
                    int.from_bytes(_b64url_decode(jwk["x"]), "big"),
                    int.from_bytes(_b64url_decode(jwk["y"]), "big"),
                    ec.SECP256R1(),
                ).public_key()
            else:
                raise KeyError_(f"unsupported JWK kty={jwk.get('kty')!r} crv={jwk.get('crv')!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyError_(f"invalid JWK: {exc}") from exc
        verify_key = cls.from_public_key(key)
        if "alg" in jwk and jwk["alg"] != verify_key.alg:
            raise KeyError_(f"JWK alg {jwk['alg']!r} does not fit its key type")
        return verify_key


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    private_key: PrivateKey

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.kid, self.alg, self.private_key.public_key())


def generate_private_key_pem(alg: str = "EdDSA") -> bytes:
    """A new private key as unencrypted PKCS#8 PEM."""
    if alg == "EdDSA":
        key: PrivateKey = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise KeyError_(f"unsupported algorithm {alg!r}; use EdDSA or ES256")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_signing_key(pem: bytes) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"cannot read the signing key: {exc}") from exc
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise KeyError_("EC signing keys must be on P-256 (ES256)")
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyError_("the signing key must be Ed25519 or P-256")
    verify = VerifyKey.from_public_key(key.public_key())
    return SigningKey(verify.kid, verify.alg, key)


def load_or_create_signing_key(path: Path, alg: str = "EdDSA") -> SigningKey:
    """Load the key at `path`, generating it (mode 0600) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = generate_private_key_pem(alg)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return load_signing_key(path.read_bytes())


def load_verify_keys(data: bytes) -> list[VerifyKey]:
    """Public keys from a JWKS document or from one or more PEM blocks (public or private)."""
    text = data.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyError_(f"invalid JWKS JSON: {exc}") from exc
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise KeyError_("a JWKS document needs a 'keys' list")
        return [VerifyKey.from_jwk(k) for k in keys if isinstance(k, dict)]
    found: list[VerifyKey] = []
    for match in _PEM_BLOCK.finditer(text):
        block, label = match.group(0), match.group(1)
        raw = block.encode()
        try:
            if "PRIVATE KEY" in label:
                found.append(load_signing_key(raw).verify_key)
                continue
            public = serialization.load_pem_public_key(raw)
        except ValueError as exc:
            raise KeyError_(f"cannot read a PEM key: {exc}") from exc
        if not isinstance(public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise KeyError_("public keys must be Ed25519 or P-256")
        found.append(VerifyKey.from_public_key(public))
    if not found:
        raise KeyError_("no key found")
    return found


def jwks_document(keys: Iterable[VerifyKey]) -> dict[str, list[dict[str, str]]]:
    return {"keys": [k.to_jwk() for k in keys]}


class KeySet:
    """Public keys by ``kid``; replaced whole when a new set is loaded."""

    def __init__(self, keys: Iterable[VerifyKey] = ()) -> None:
        self._keys = {k.kid: k for k in keys}

    def get(self, kid: str) -> VerifyKey | None:
        return self._keys.get(kid)

    def replace(self, keys: Iterable[VerifyKey]) -> None:
        self._keys = {k.kid: k for k in keys}

    def __len__(self) -> int:
        return len(self._keys)

    def kids(self) -> list[str]:
        return sorted(self._keys)
