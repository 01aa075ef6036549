"""End to end, through the real services: the revocation bound and a key rotation.

- With the auth service gone, the registry cannot confirm that a session
  is still valid: once its revocation list is older than 60 s (the README's
  bound), sessions are refused at ``/v2/``; registry tokens, which need no
  list, still work.
- A key rotation as the README describes it: the auth service restarts
  with a new signing key and publishes the previous public key beside it
  (``ECLOUD_EXTRA_PUBLIC_KEYS_FILE``). The registry, whose periodic key
  refresh is an hour away, fetches the keys again on the new token's
  unknown ``kid`` and accepts it, and still accepts tokens of the old key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import jwt

from shared.keys import generate_private_key_pem, jwks_document, load_signing_key
from tests.conftest import Stack


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def v2(stack: Stack, token: str) -> httpx.Response:
    return httpx.get(stack.registry_url + "/v2/", headers=bearer(token), timeout=30)


def test_sessions_are_refused_once_the_revocation_list_is_stale(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    user, _ = stack.create_user()
    session = stack.session(user)
    token = stack.token(user, f"repository:{user}/app:pull")
    assert v2(stack, session).status_code == 200
    stack.auth.stop()
    stopped = time.monotonic()
    # The list was polled a second ago (ECLOUD_REVOCATION_POLL_SECONDS=1 in tests).
    assert v2(stack, session).status_code == 200
    # Refused within the bound; the deadline only adds room for a loaded machine.
    deadline = stopped + 60 + 60
    while time.monotonic() < deadline:
        r = v2(stack, session)
        if r.status_code != 200:
            break
        time.sleep(1)
    assert r.status_code == 401, "a session was still accepted long after the bound"
    assert "cannot confirm the session is still valid" in r.json()["errors"][0]["message"]
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert v2(stack, token).status_code == 200


def test_key_rotation_with_the_previous_key_published(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack({"ECLOUD_KEY_REFRESH_SECONDS": "3600"})
    user, _ = stack.create_user()
    scope = f"repository:{user}/app:pull"
    old_token = stack.token(user, scope)
    assert v2(stack, old_token).status_code == 200

    old = load_signing_key((stack.root / "data" / "signing-key.pem").read_bytes())
    previous = stack.root / "previous-keys.json"
    previous.write_text(json.dumps(jwks_document([old.verify_key])))
    new_file = stack.root / "new-signing-key.pem"
    new_file.write_bytes(generate_private_key_pem("ES256"))
    new_file.chmod(0o600)
    new = load_signing_key(new_file.read_bytes())
    stack.auth.stop()
    stack.auth.env = {
        **stack.auth.env,
        "ECLOUD_SIGNING_KEY_FILE": str(new_file),
        "ECLOUD_EXTRA_PUBLIC_KEYS_FILE": str(previous),
    }
    stack.auth.start()

    published = httpx.get(stack.auth_url + "/.well-known/jwks.json", timeout=10).json()
    assert [k["kid"] for k in published["keys"]] == [new.kid, old.kid]
    new_token = stack.token(user, scope)
    assert jwt.get_unverified_header(new_token)["kid"] == new.kid
    # The registry refetches on the unknown kid (at most once per 10 s).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = v2(stack, new_token)
        if r.status_code == 200:
            break
        assert "unknown key" in r.json()["errors"][0]["message"], r.text
        time.sleep(0.5)
    assert r.status_code == 200, "a token of the newly published key was never accepted"
    # Both keys now verify at the registry: the old one is still published.
    assert v2(stack, old_token).status_code == 200
    # A key nobody published is refused.
    stranger = load_signing_key(generate_private_key_pem("EdDSA"))
    from shared.scopes import parse_scope
    from shared.tokens import TokenIssuer

    forged, _ = TokenIssuer(stranger, "ecloud-auth").issue_registry_token(
        subject="usr_x", audience="registry", access=[parse_scope(scope)], ttl_seconds=60
    )
    assert v2(stack, forged).status_code == 401
