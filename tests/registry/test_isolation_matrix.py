"""The isolation matrix of issue 11: every endpoint of both APIs × every kind of caller.

Callers: the owner, another user, another user's service account, a
read-only service account (of the owner), anonymous, and an expired token
(the owner's own, properly signed, so that it would grant everything were it
still valid). For each caller and each endpoint that names a repository (all
``/v2/<name>/…`` routes, the dashboard's ``/api/repos/<name>…``) or an object
of a user (webhooks; service accounts, their tokens, refresh tokens and the
admin routes of the auth service), the answer for an existing object of
someone else and for a missing one must be byte-identical: status, body and
headers, once the name or id itself is replaced by a placeholder and the
request id, date and length are set aside. Listings (`/v2/_catalog`,
``/api/repos``, ``/api/webhooks``, ``/api/service-accounts``,
``/api/refresh-tokens``) never show someone else's names or ids. The owner,
and the read-only account on its own repository, get what they should.

One stack (SQLite) for the whole module; every request is plain httpx.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shared.keys import load_signing_key
from shared.scopes import parse_scope
from shared.tokens import TokenIssuer
from tests.conftest import Stack, build_stack
from tests.registry.manifest_helpers import OCI_MANIFEST, Repo

LIMITS = {
    "ECLOUD_RATE_LIMIT_FAILURES": "100000/60",
    "ECLOUD_RATE_LIMIT_REQUESTS": "100000/60",
    "ECLOUD_WEBHOOK_ALLOW_PRIVATE": "true",
}
IGNORED_HEADERS = {"date", "x-request-id", "content-length"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class User:
    """One user's world: a repository with an image, an upload, a webhook, a service
    account with a token, a refresh token."""

    name: str
    password: str
    user_id: str
    session: str
    repo: Repo
    manifest: bytes
    manifest_digest: str
    layer_digest: str
    upload: str
    webhook: str
    sa: str
    sa_token_id: str
    sa_secret: str
    refresh_token_id: str

    @property
    def existing(self) -> str:
        return self.repo.name

    @property
    def missing(self) -> str:
        return f"{self.name}/missing"


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _make_user(stack: Stack, sa_scope: str) -> User:
    name, password = stack.create_user()
    session = stack.session(name)
    repo = Repo.create(stack, name, "app")
    manifest = repo.image([b"isolated layer of " + name.encode()])
    assert repo.put_manifest("v1", manifest).status_code == 201
    layer = json.loads(manifest)["layers"][0]["digest"]
    r = repo.request("POST", "blobs/uploads/")
    assert r.status_code == 202, r.text
    upload = r.headers["docker-upload-uuid"]
    auth, reg = stack.auth_url, stack.registry_url
    with httpx.Client(timeout=30, headers=_bearer(session)) as c:
        r = c.post(f"{reg}/api/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert r.status_code == 201, r.text
        webhook = r.json()["id"]
        r = c.post(f"{auth}/api/service-accounts", json={"name": "ci", "scopes": [sa_scope]})
        assert r.status_code == 201, r.text
        sa = r.json()["id"]
        r = c.post(f"{auth}/api/service-accounts/{sa}/tokens", json={"name": "t"})
        assert r.status_code == 201, r.text
        sa_token_id, sa_secret = r.json()["id"], r.json()["token"]
        user_id = c.get(f"{auth}/api/session").json()["user_id"]
    r = httpx.post(
        f"{auth}/api/login", json={"username": name, "password": password, "refresh": True}
    )
    assert r.status_code == 200, r.text
    with httpx.Client(timeout=30, headers=_bearer(r.json()["token"])) as c:
        [refresh] = c.get(f"{auth}/api/refresh-tokens").json()["refresh_tokens"]
    return User(
        name=name,
        password=password,
        user_id=user_id,
        session=session,
        repo=repo,
        manifest=manifest,
        manifest_digest="sha256:" + hashlib.sha256(manifest).hexdigest(),
        layer_digest=layer,
        upload=upload,
        webhook=webhook,
        sa=sa,
        sa_token_id=sa_token_id,
        sa_secret=sa_secret,
        refresh_token_id=refresh["id"],
    )


@dataclass
class Caller:
    """Who asks: the credentials sent to the registry and to the auth service, whose
    objects are "someone else's" to it, and which namespace is its own."""

    name: str
    victim: User
    own: str
    registry_token: str | None
    api_token: str | None  # for /api/ of both services: a session, or the registry token
    auth_token: str | None  # for the auth service's per-user routes
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    stack: Stack
    alice: User
    bob: User
    callers: dict[str, Caller]


def _registry_token(stack: Stack, victim: User, own: str, basic: tuple[str, str]) -> str:
    scopes = [
        f"repository:{victim.existing}:pull,push,delete",
        f"repository:{victim.missing}:pull,push,delete",
        f"repository:{own}/mnt:pull,push",
        "registry:catalog:*",
    ]
    r = httpx.get(
        stack.auth_url + "/v2/token",
        params=[("service", "registry"), *(("scope", s) for s in scopes)],
        auth=basic,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _expired_tokens(stack: Stack, victim: User) -> tuple[str, str]:
    """A registry token granting everything on the victim's repositories and a session
    of the victim, both signed with the real key, both expired an hour ago."""
    key = load_signing_key((stack.root / "data" / "signing-key.pem").read_bytes())
    issuer = TokenIssuer(key, "ecloud-auth", clock=lambda: time.time() - 3600)
    access = [
        parse_scope(f"repository:{victim.existing}:pull,push,delete"),
        parse_scope(f"repository:{victim.missing}:pull,push,delete"),
        parse_scope("registry:catalog:*"),
    ]
    registry, _ = issuer.issue_registry_token(
        subject=victim.user_id,
        audience="registry",
        access=access,
        ttl_seconds=60,
        username=victim.name,
    )
    info = httpx.get(stack.auth_url + "/api/session", headers=_bearer(victim.session)).json()
    session, _ = issuer.issue_session_token(
        subject=victim.user_id,
        username=victim.name,
        admin=False,
        session_id=info["session_id"],
        ttl_seconds=60,
    )
    return registry, session


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    stack = build_stack(tmp_path_factory.mktemp("isolation"), LIMITS)
    try:
        alice = _make_user(stack, "storage.me.registry=read")  # alice's SA: read-only
        bob = _make_user(stack, "storage.me.registry=read,create,delete")
        expired_registry, expired_session = _expired_tokens(stack, alice)
        owner_token = _registry_token(stack, bob, alice.name, (alice.name, alice.password))
        bob_token = _registry_token(stack, alice, bob.name, (bob.name, bob.password))
        bob_sa_token = _registry_token(stack, alice, bob.name, ("x", bob.sa_secret))
        ro_token = _registry_token(stack, bob, alice.name, ("x", alice.sa_secret))
        callers = [
            Caller("owner", bob, alice.name, owner_token, alice.session, alice.session),
            Caller("another user", alice, bob.name, bob_token, bob.session, bob.session),
            Caller("another user's SA", alice, bob.name, bob_sa_token, bob_sa_token, bob_sa_token),
            Caller("read-only SA", bob, alice.name, ro_token, ro_token, ro_token),
            Caller("anonymous", alice, bob.name, None, None, None),
            Caller("expired", alice, bob.name, expired_registry, expired_session, expired_session),
        ]
        yield World(stack, alice, bob, {c.name: c for c in callers})
    finally:
        stack.stop()


# Endpoints naming a repository: {repo} is the existing or the missing one; the
# digests, tag and upload are the victim's. (method, path, body kind, extra headers)
REPOSITORY_ENDPOINTS: list[tuple[str, str, str | None, dict[str, str]]] = [
    ("GET", "/v2/{repo}/tags/list", None, {}),
    ("GET", "/v2/{repo}/tags/list?n=1&last=a", None, {}),
    ("GET", "/v2/{repo}/manifests/v1", None, {}),
    ("HEAD", "/v2/{repo}/manifests/v1", None, {}),
    ("GET", "/v2/{repo}/manifests/{manifest}", None, {}),
    ("HEAD", "/v2/{repo}/manifests/{manifest}", None, {}),
    ("GET", "/v2/{repo}/manifests/.INVALID", None, {}),
    ("PUT", "/v2/{repo}/manifests/v2", "manifest", {"Content-Type": OCI_MANIFEST}),
    ("DELETE", "/v2/{repo}/manifests/v1", None, {}),
    ("DELETE", "/v2/{repo}/manifests/{manifest}", None, {}),
    ("GET", "/v2/{repo}/blobs/{layer}", None, {}),
    ("HEAD", "/v2/{repo}/blobs/{layer}", None, {}),
    ("GET", "/v2/{repo}/blobs/{layer}", None, {"Range": "bytes=0-3"}),
    ("DELETE", "/v2/{repo}/blobs/{layer}", None, {}),
    ("POST", "/v2/{repo}/blobs/uploads/", None, {}),
    ("POST", "/v2/{repo}/blobs/uploads/?digest={small}", "small", {}),
    ("POST", "/v2/{repo}/blobs/uploads/?mount={layer}&from={repo}", None, {}),
    # A mount into the caller's own namespace from the other repository.
    ("POST", "/v2/{own}/mnt/blobs/uploads/?mount={layer}&from={repo}", None, {}),
    ("GET", "/v2/{repo}/blobs/uploads/{upload}", None, {}),
    ("PATCH", "/v2/{repo}/blobs/uploads/{upload}", "small", {}),
    ("PUT", "/v2/{repo}/blobs/uploads/{upload}?digest={small}", "small", {}),
    ("DELETE", "/v2/{repo}/blobs/uploads/{upload}", None, {}),
    ("GET", "/v2/{repo}/referrers/{manifest}", None, {}),
    ("GET", "/api/repos/{repo}", None, {}),
    ("GET", "/api/repos/{repo}/tags", None, {}),
    ("DELETE", "/api/repos/{repo}/tags/v1", None, {}),
]

# Endpoints naming an object of a user by id: {id} is the victim's or a missing one.
# (service, method, path template, id attribute of User, JSON body)
OBJECT_ENDPOINTS: list[tuple[str, str, str, str, Any]] = [
    ("registry", "GET", "/api/webhooks/{id}", "webhook", None),
    ("registry", "DELETE", "/api/webhooks/{id}", "webhook", None),
    ("registry", "POST", "/api/webhooks/{id}/test", "webhook", None),
    ("registry", "GET", "/api/webhooks/{id}/deliveries", "webhook", None),
    ("auth", "GET", "/api/service-accounts/{id}", "sa", None),
    ("auth", "DELETE", "/api/service-accounts/{id}", "sa", None),
    (
        "auth",
        "PUT",
        "/api/service-accounts/{id}/scopes",
        "sa",
        {"scopes": ["storage.me.registry=read"]},
    ),
    ("auth", "GET", "/api/service-accounts/{id}/tokens", "sa", None),
    ("auth", "POST", "/api/service-accounts/{id}/tokens", "sa", {"name": "x"}),
    ("auth", "DELETE", "/api/tokens/{id}", "sa_token_id", None),
    ("auth", "DELETE", "/api/refresh-tokens/{id}", "refresh_token_id", None),
    ("auth", "DELETE", "/admin/users/{id}", "user_id", None),
    ("auth", "POST", "/admin/users/{id}/password", "user_id", {"new_password": "x" * 20}),
    ("auth", "POST", "/admin/users/{id}/revoke", "user_id", None),
]

SMALL = b"small blob"
SMALL_DIGEST = "sha256:" + hashlib.sha256(SMALL).hexdigest()


def _missing_id(real: str) -> str:
    """An id of the same shape as `real` that names nothing."""
    tail = "0" * 6 if not real.endswith("0" * 6) else "1" * 6
    return real[:-6] + tail


def _normalized(r: httpx.Response, *replace: str) -> tuple[int, dict[str, str], str]:
    def clean(text: str) -> str:
        for value in replace:
            text = text.replace(value, "{X}")
        return UUID.sub("{uuid}", text)

    headers = {
        k: clean(v) for k, v in sorted(r.headers.items()) if k.lower() not in IGNORED_HEADERS
    }
    return r.status_code, headers, clean(r.content.decode("latin-1"))


def _send(
    client: httpx.Client, method: str, url: str, token: str | None, **kwargs: Any
) -> httpx.Response:
    headers = {**_bearer(token), **kwargs.pop("headers", {})}
    return client.request(method, url, headers=headers, **kwargs)


CALLERS = ["owner", "another user", "another user's SA", "read-only SA", "anonymous", "expired"]


@pytest.mark.parametrize("who", CALLERS)
def test_someone_elses_objects_answer_exactly_like_missing_ones(world: World, who: str) -> None:
    caller = world.callers[who]
    victim = caller.victim
    stack = world.stack
    differences: list[str] = []
    with httpx.Client(timeout=30) as client:
        for method, template, body_kind, headers in REPOSITORY_ENDPOINTS:
            answers = []
            for repo in (victim.existing, victim.missing):
                path = template.format(
                    repo=repo,
                    own=caller.own,
                    manifest=victim.manifest_digest,
                    layer=victim.layer_digest,
                    upload=victim.upload,
                    small=SMALL_DIGEST,
                )
                body = {"manifest": victim.manifest, "small": SMALL, None: None}[body_kind]
                token = caller.api_token if path.startswith("/api/") else caller.registry_token
                r = _send(
                    client, method, stack.registry_url + path, token, content=body, headers=headers
                )
                answers.append(_normalized(r, repo))
            if answers[0] != answers[1]:
                differences.append(f"{method} {template}:\n  {answers[0]}\n  {answers[1]}")
            assert answers[0][0] < 500, (method, template, answers[0])
            if who != "owner" or "{own}" not in template:
                # Nothing of someone else's is ever served or changed.
                assert answers[0][0] >= 400 or template.startswith("/v2/{own}"), (
                    method,
                    template,
                    answers[0],
                )
        for service, method, template, attribute, json_body in OBJECT_ENDPOINTS:
            base = stack.registry_url if service == "registry" else stack.auth_url
            real = str(getattr(victim, attribute))
            answers = []
            for object_id in (real, _missing_id(real)):
                r = _send(
                    client,
                    method,
                    base + template.format(id=object_id),
                    caller.api_token if service == "registry" else caller.auth_token,
                    json=json_body,
                )
                answers.append(_normalized(r, object_id))
            if answers[0] != answers[1]:
                differences.append(f"{method} {template}:\n  {answers[0]}\n  {answers[1]}")
            assert 400 <= answers[0][0] < 500, (method, template, answers[0])
        # Listings never name someone else's things.
        secrets_of_victim = [
            victim.existing,
            victim.webhook,
            victim.sa,
            victim.sa_token_id,
            victim.refresh_token_id,
        ]
        for base, path, token in [
            (stack.registry_url, "/v2/_catalog", caller.registry_token),
            (stack.registry_url, "/api/repos", caller.api_token),
            (stack.registry_url, "/api/webhooks", caller.api_token),
            (stack.auth_url, "/api/service-accounts", caller.auth_token),
            (stack.auth_url, "/api/refresh-tokens", caller.auth_token),
        ]:
            r = _send(client, "GET", base + path, token)
            assert r.status_code < 500, (path, r.text)
            for secret in secrets_of_victim:
                assert secret not in r.text, (who, path, secret, r.text[:500])
    assert not differences, f"{who}: answers differ:\n" + "\n".join(differences)
    # Nothing of the victim's was changed by anyone.
    assert victim.repo.get_manifest("v1").status_code == 200


def test_the_owner_and_the_read_only_account_get_what_they_should(world: World) -> None:
    alice, stack = world.alice, world.stack
    owner = Repo(stack, alice.name, alice.existing, alice.repo.token)
    read_only = Repo(stack, alice.name, alice.existing, "")
    r = httpx.get(
        stack.auth_url + "/v2/token",
        params={"service": "registry", "scope": f"repository:{alice.existing}:pull,push,delete"},
        auth=("x", alice.sa_secret),
    )
    read_only.token = r.json()["token"]
    for repo in (owner, read_only):
        assert repo.request("GET", "tags/list").json()["tags"] == ["v1"]
        for method in ("GET", "HEAD"):
            r = repo.request(method, f"manifests/{alice.manifest_digest}")
            assert r.status_code == 200 and r.headers["docker-content-digest"] == (
                alice.manifest_digest
            )
            assert repo.request(method, f"blobs/{alice.layer_digest}").status_code == 200
        r = repo.request("GET", f"referrers/{alice.manifest_digest}")
        assert r.status_code == 200 and r.json()["manifests"] == []
    assert owner.request("GET", f"blobs/uploads/{alice.upload}").status_code == 204
    # The read-only account can change nothing.
    assert read_only.put_manifest("v2", alice.manifest).status_code == 401
    assert read_only.request("DELETE", "manifests/v1").status_code == 401
    assert read_only.request("POST", "blobs/uploads/").status_code == 401
    r = httpx.delete(
        f"{stack.registry_url}/api/repos/{alice.existing}/tags/v1",
        headers=_bearer(read_only.token),
    )
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    # The dashboard and the auth API show the owner her own things.
    with httpx.Client(timeout=30, headers=_bearer(alice.session)) as c:
        r = c.get(f"{stack.registry_url}/api/repos")
        names = [x["name"] for x in r.json()["repositories"]]
        # (…/mnt: the matrix's mount fell back to an upload there)
        assert alice.existing in names and all(n.startswith(alice.name + "/") for n in names)
        r = c.get(f"{stack.registry_url}/api/repos/{alice.existing}/tags")
        assert [t["name"] for t in r.json()["tags"]] == ["v1"]
        assert c.get(f"{stack.registry_url}/api/webhooks/{alice.webhook}").status_code == 200
        # "²" is a digit to str.isdigit() but not to int(): it was a 500.
        for n in ("%C2%B2", "9" * 5000, "0", "-1"):
            r = c.get(f"{stack.registry_url}/api/webhooks/{alice.webhook}/deliveries?n={n}")
            assert r.status_code == 400, (n, r.text)
            assert r.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"
        assert c.get(f"{stack.auth_url}/api/service-accounts/{alice.sa}").status_code == 200
        r = c.get(f"{stack.auth_url}/api/service-accounts/{alice.sa}/tokens")
        assert [t["id"] for t in r.json()["tokens"]] == [alice.sa_token_id]
        r = c.get(f"{stack.auth_url}/api/refresh-tokens")
        assert [t["id"] for t in r.json()["refresh_tokens"]] == [alice.refresh_token_id]
    r = httpx.get(
        f"{stack.registry_url}/v2/_catalog",
        headers=_bearer(world.callers["owner"].registry_token),
    )
    assert r.status_code == 200 and alice.existing in r.json()["repositories"]
    # An expired token of the owner herself is refused everywhere.
    expired = world.callers["expired"]
    r = httpx.get(owner.url("tags/list"), headers=_bearer(expired.registry_token))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    r = httpx.get(stack.auth_url + "/api/session", headers=_bearer(expired.auth_token))
    assert r.status_code == 401
