"""Token verification refuses every forged, stale or misdirected token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from shared.keys import SigningKey, generate_private_key_pem, load_signing_key
from shared.scopes import Scope
from shared.tokens import (
    RegistryClaims,
    TokenError,
    TokenIssuer,
    TokenVerifier,
    is_session_token,
    unverified_kid,
)

ISSUER = "ecloud-auth"
SERVICE = "registry"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(params=["EdDSA", "ES256"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return load_signing_key(generate_private_key_pem(request.param))


def verifier_for(*keys: SigningKey, clock: float | None = None) -> TokenVerifier:
    table = {k.kid: k.verify_key for k in keys}
    if clock is None:
        return TokenVerifier(table.get, issuer=ISSUER)
    return TokenVerifier(table.get, issuer=ISSUER, clock=lambda: clock)


def registry_token(key: SigningKey, **overrides: object) -> str:
    token, _ = TokenIssuer(key, ISSUER).issue_registry_token(
        subject="usr_1",
        audience=SERVICE,
        access=[Scope("repository", "alice/app", frozenset({"pull", "push"}))],
        ttl_seconds=300,
    )
    if not overrides:
        return token
    payload = jwt.decode(token, options={"verify_signature": False})
    payload.update(overrides)
    return jwt.encode(payload, key.private_key, algorithm=key.alg, headers={"kid": key.kid})


def test_valid_registry_token_round_trips(key: SigningKey) -> None:
    claims = verifier_for(key).verify_registry_token(registry_token(key), SERVICE)
    assert isinstance(claims, RegistryClaims)
    assert claims.subject == "usr_1"
    assert claims.actions_for("repository", "alice/app") == {"pull", "push"}
    assert claims.actions_for("repository", "alice/other") == frozenset()


def test_alg_none_is_refused(key: SigningKey) -> None:
    payload = jwt.decode(registry_token(key), options={"verify_signature": False})
    header = {"alg": "none", "typ": "JWT", "kid": key.kid}
    forged = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."
    with pytest.raises(TokenError, match="algorithm"):
        verifier_for(key).verify_registry_token(forged, SERVICE)


def test_hmac_signed_with_the_public_key_is_refused(key: SigningKey) -> None:
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = jwt.decode(registry_token(key), options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(signature)}"
    with pytest.raises(TokenError, match="algorithm"):
        verifier_for(key).verify_registry_token(forged, SERVICE)


def test_algorithm_must_match_the_key(key: SigningKey) -> None:
    other_alg = "ES256" if key.alg == "EdDSA" else "EdDSA"
    other = load_signing_key(generate_private_key_pem(other_alg))
    payload = jwt.decode(registry_token(key), options={"verify_signature": False})
    # Signed by another key but naming our kid: the alg/kid mismatch is caught first.
    forged = jwt.encode(payload, other.private_key, algorithm=other.alg, headers={"kid": key.kid})
    with pytest.raises(TokenError, match="does not match its key"):
        verifier_for(key).verify_registry_token(forged, SERVICE)


def test_expired_token(key: SigningKey) -> None:
    now = int(time.time())
    token = registry_token(key, exp=now - 120, iat=now - 600, nbf=now - 600)
    with pytest.raises(TokenError, match="expired"):
        verifier_for(key).verify_registry_token(token, SERVICE)


def test_not_yet_valid_token(key: SigningKey) -> None:
    now = int(time.time())
    token = registry_token(key, nbf=now + 600, exp=now + 900)
    with pytest.raises(TokenError, match="not valid yet"):
        verifier_for(key).verify_registry_token(token, SERVICE)


def test_small_clock_skew_is_tolerated(key: SigningKey) -> None:
    now = int(time.time())
    token = registry_token(key, nbf=now + 10)
    assert verifier_for(key).verify_registry_token(token, SERVICE).subject == "usr_1"


def test_wrong_audience(key: SigningKey) -> None:
    with pytest.raises(TokenError, match="audience"):
        verifier_for(key).verify_registry_token(registry_token(key, aud="other"), SERVICE)


def test_wrong_issuer(key: SigningKey) -> None:
    with pytest.raises(TokenError, match="issuer"):
        verifier_for(key).verify_registry_token(registry_token(key, iss="evil"), SERVICE)


def test_unknown_kid(key: SigningKey) -> None:
    stranger = load_signing_key(generate_private_key_pem(key.alg))
    with pytest.raises(TokenError, match="unknown key"):
        verifier_for(key).verify_registry_token(registry_token(stranger), SERVICE)


def test_tampered_payload(key: SigningKey) -> None:
    header, payload, signature = registry_token(key).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["access"][0]["name"] = "bob/app"
    tampered = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(TokenError):
        verifier_for(key).verify_registry_token(tampered, SERVICE)


def test_missing_required_claim(key: SigningKey) -> None:
    payload = jwt.decode(registry_token(key), options={"verify_signature": False})
    del payload["nbf"]
    token = jwt.encode(payload, key.private_key, algorithm=key.alg, headers={"kid": key.kid})
    with pytest.raises(TokenError):
        verifier_for(key).verify_registry_token(token, SERVICE)


def test_malformed_access_claim(key: SigningKey) -> None:
    with pytest.raises(TokenError, match="access"):
        verifier_for(key).verify_registry_token(registry_token(key, access="all"), SERVICE)


def test_garbage_is_refused(key: SigningKey) -> None:
    for garbage in ["", "abc", "a.b.c", "....", "eyJ.eyJ.sig"]:
        with pytest.raises(TokenError):
            verifier_for(key).verify_registry_token(garbage, SERVICE)


def session_token(key: SigningKey) -> str:
    token, _ = TokenIssuer(key, ISSUER).issue_session_token(
        subject="usr_1", username="alice", admin=False, session_id="ses_1", ttl_seconds=3600
    )
    return token


def test_session_token_round_trips(key: SigningKey) -> None:
    token = session_token(key)
    assert is_session_token(token)
    claims = verifier_for(key).verify_session_token(token)
    assert (claims.subject, claims.username, claims.session_id) == ("usr_1", "alice", "ses_1")


def test_session_token_is_not_a_registry_token(key: SigningKey) -> None:
    with pytest.raises(TokenError):
        verifier_for(key).verify_registry_token(session_token(key), SERVICE)


def test_session_token_with_the_service_audience_is_still_not_a_registry_token(
    key: SigningKey,
) -> None:
    token, _ = TokenIssuer(key, ISSUER).issue_session_token(
        subject="usr_1",
        username="alice",
        admin=False,
        session_id="ses_1",
        ttl_seconds=3600,
        audience=SERVICE,
    )
    with pytest.raises(TokenError):
        verifier_for(key).verify_registry_token(token, SERVICE)
    # Even with every registry claim present, typ=session keeps it out.
    payload = jwt.decode(token, options={"verify_signature": False})
    payload.update(nbf=payload["iat"], access=[])
    forged = jwt.encode(payload, key.private_key, algorithm=key.alg, headers={"kid": key.kid})
    with pytest.raises(TokenError, match="session"):
        verifier_for(key).verify_registry_token(forged, SERVICE)


def test_registry_token_is_not_a_session_token(key: SigningKey) -> None:
    token = registry_token(key)
    assert not is_session_token(token)
    with pytest.raises(TokenError):
        verifier_for(key).verify_session_token(token)
    # Even with the session audience it lacks typ=session.
    forged = registry_token(key, aud="ecloud-session")
    with pytest.raises(TokenError, match="not a session"):
        verifier_for(key).verify_session_token(forged)


def test_verifier_holds_several_keys() -> None:
    old = load_signing_key(generate_private_key_pem("EdDSA"))
    new = load_signing_key(generate_private_key_pem("ES256"))
    verifier = verifier_for(old, new)
    assert verifier.verify_registry_token(registry_token(old), SERVICE).subject == "usr_1"
    assert verifier.verify_registry_token(registry_token(new), SERVICE).subject == "usr_1"


def test_verifier_refuses_unsupported_algorithm_configuration() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        TokenVerifier(lambda kid: None, issuer=ISSUER, algorithms=["HS256"])


def test_registry_token_names_the_actor_and_older_tokens_still_verify(key: SigningKey) -> None:
    token, _ = TokenIssuer(key, ISSUER).issue_registry_token(
        subject="usr_1",
        audience=SERVICE,
        access=[],
        ttl_seconds=300,
        service_account="sa_1",
        username="alice",
        service_account_name="ci",
    )
    claims = verifier_for(key).verify_registry_token(token, SERVICE)
    assert (claims.username, claims.service_account, claims.service_account_name) == (
        "alice",
        "sa_1",
        "ci",
    )
    older = verifier_for(key).verify_registry_token(registry_token(key), SERVICE)
    assert older.username is None and older.service_account_name is None
    odd = registry_token(key, username=["not", "a", "name"], sa_name="x" * 300)
    odd_claims = verifier_for(key).verify_registry_token(odd, SERVICE)
    assert odd_claims.username is None and odd_claims.service_account_name is None


def test_the_verifiers_own_clock_bounds_exp_and_nbf_with_the_leeway(key: SigningKey) -> None:
    # Valid on the real clock (PyJWT's), so only the verifier's injected clock decides:
    # exactly at the leeway's edge a token is accepted, one second past it refused.
    now = int(time.time())
    token = registry_token(key, nbf=now, exp=now + 300, iat=now)
    leeway = 30
    at = verifier_for(key, clock=now + 300 + leeway).verify_registry_token(token, SERVICE)
    assert at.subject == "usr_1"
    with pytest.raises(TokenError, match="expired"):
        verifier_for(key, clock=now + 300 + leeway + 1).verify_registry_token(token, SERVICE)
    early = verifier_for(key, clock=now - leeway).verify_registry_token(token, SERVICE)
    assert early.subject == "usr_1"
    with pytest.raises(TokenError, match="not valid yet"):
        verifier_for(key, clock=now - leeway - 1).verify_registry_token(token, SERVICE)


def test_actor_names_are_kept_up_to_256_characters_and_never_empty(key: SigningKey) -> None:
    longest = registry_token(key, username="a" * 256, sa_name="")
    claims = verifier_for(key).verify_registry_token(longest, SERVICE)
    assert claims.username == "a" * 256
    assert claims.service_account_name is None
    shortest = registry_token(key, username="a", sa_name="b")
    claims = verifier_for(key).verify_registry_token(shortest, SERVICE)
    assert (claims.username, claims.service_account_name) == ("a", "b")
    too_long = registry_token(key, username="a" * 257)
    assert verifier_for(key).verify_registry_token(too_long, SERVICE).username is None


def test_verified_claims_cannot_be_changed_afterwards(key: SigningKey) -> None:
    # Callers pass claims around after verification: granting more by assignment
    # must be impossible.
    registry = verifier_for(key).verify_registry_token(registry_token(key), SERVICE)
    with pytest.raises(AttributeError):
        registry.subject = "usr_2"  # type: ignore[misc]
    session = verifier_for(key).verify_session_token(session_token(key))
    with pytest.raises(AttributeError):
        session.admin = True  # type: ignore[misc]


def test_what_is_not_a_jwt_is_never_taken_for_a_session_token() -> None:
    for garbage in ["", "abc", "a.b.c", "....", "eyJ.eyJ.sig"]:
        assert is_session_token(garbage) is False


def test_a_token_without_a_usable_key_id_is_refused_before_any_lookup(key: SigningKey) -> None:
    # Even a lookup that would hand out a key for any kid never sees these tokens.
    asked: list[object] = []

    def lookup(kid: str) -> object:
        asked.append(kid)
        return key.verify_key

    verifier = TokenVerifier(lookup, issuer=ISSUER)  # type: ignore[arg-type]
    payload = jwt.decode(registry_token(key), options={"verify_signature": False})
    for kid in ["", None]:
        headers = {} if kid is None else {"kid": kid}
        token = jwt.encode(payload, key.private_key, algorithm=key.alg, headers=headers)
        with pytest.raises(TokenError, match="no key id"):
            verifier.verify_registry_token(token, SERVICE)
    assert asked == []


def test_actions_are_looked_up_by_resource_type_and_name(key: SigningKey) -> None:
    token, _ = TokenIssuer(key, ISSUER).issue_registry_token(
        subject="usr_1",
        audience=SERVICE,
        access=[
            Scope("registry", "catalog", frozenset({"*"})),
            Scope("repository", "catalog", frozenset({"pull"})),
        ],
        ttl_seconds=300,
    )
    claims = verifier_for(key).verify_registry_token(token, SERVICE)
    assert claims.actions_for("registry", "catalog") == {"*"}
    assert claims.actions_for("repository", "catalog") == {"pull"}
    assert claims.actions_for("registry", "alice/app") == frozenset()


def test_the_unverified_kid_is_the_headers_string_or_nothing(key: SigningKey) -> None:
    assert unverified_kid(registry_token(key)) == key.kid
    payload = jwt.decode(registry_token(key), options={"verify_signature": False})
    assert unverified_kid(jwt.encode(payload, key.private_key, algorithm=key.alg)) is None
    for garbage in ["", "abc", "a.b.c", "eyJ.eyJ.sig"]:
        assert unverified_kid(garbage) is None


def test_a_session_token_needs_a_non_empty_sid_and_username(key: SigningKey) -> None:
    payload = jwt.decode(session_token(key), options={"verify_signature": False})
    verifier = verifier_for(key)
    for field, value in [("sid", ""), ("sid", 5), ("username", ""), ("username", 5)]:
        forged = jwt.encode(
            {**payload, field: value}, key.private_key, algorithm=key.alg, headers={"kid": key.kid}
        )
        with pytest.raises(TokenError, match="lacks sid or username"):
            verifier.verify_session_token(forged)
    for field in ["sid", "username"]:
        rest = {k: v for k, v in payload.items() if k != field}
        forged = jwt.encode(rest, key.private_key, algorithm=key.alg, headers={"kid": key.kid})
        with pytest.raises(TokenError, match="lacks sid or username"):
            verifier.verify_session_token(forged)


def test_the_issuer_names_the_key_it_signs_with(key: SigningKey) -> None:
    issuer = TokenIssuer(key, ISSUER)
    token, _ = issuer.issue_session_token(
        subject="usr_1", username="alice", admin=False, session_id="ses_1", ttl_seconds=60
    )
    assert issuer.key is key
    assert unverified_kid(token) == issuer.key.kid


def test_an_unaccepted_algorithm_is_named_in_at_most_20_characters(key: SigningKey) -> None:
    header = b64(json.dumps({"alg": "X" * 50, "kid": key.kid, "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "usr_1"}).encode())
    with pytest.raises(TokenError) as refused:
        verifier_for(key).verify_registry_token(f"{header}.{body}.{b64(b'sig')}", SERVICE)
    assert str(refused.value) == f"token algorithm {'X' * 20!r} is not accepted"


def test_only_a_true_admin_claim_makes_an_admin_session(key: SigningKey) -> None:
    payload = jwt.decode(session_token(key), options={"verify_signature": False})
    verifier = verifier_for(key)
    for value, admin in [(True, True), (False, False), ("true", False), (1, False)]:
        token = jwt.encode(
            {**payload, "admin": value},
            key.private_key,
            algorithm=key.alg,
            headers={"kid": key.kid},
        )
        assert verifier.verify_session_token(token).admin is admin
    rest = {k: v for k, v in payload.items() if k != "admin"}
    token = jwt.encode(rest, key.private_key, algorithm=key.alg, headers={"kid": key.kid})
    assert verifier.verify_session_token(token).admin is False


def test_iat_ahead_of_the_verifiers_clock_is_not_a_refusal(key: SigningKey) -> None:
    # Only nbf and exp bound validity: an issuer whose clock runs ahead stamps a
    # later iat, and its tokens still verify (iat is recorded, never judged).
    now = int(time.time())
    token = registry_token(key, iat=now + 600, nbf=now, exp=now + 900)
    claims = verifier_for(key).verify_registry_token(token, SERVICE)
    assert claims.issued_at == now + 600


def test_a_malformed_access_entry_is_a_token_error(key: SigningKey) -> None:
    verifier = verifier_for(key)
    for access in ([{"type": 1, "name": "a/b", "actions": []}], ["repository:a/b:pull"]):
        with pytest.raises(TokenError, match="access claim is malformed"):
            verifier.verify_registry_token(registry_token(key, access=access), SERVICE)
