"""``docs/openapi.yaml`` against the running services, with schemathesis (issue 11).

Every operation of the description (the auth API: token endpoint, sessions,
credentials, service accounts, administration; the registry's dashboard and
webhook API) gets requests generated from the schema, valid ones and invalid
ones, sent to a real stack (both services on PostgreSQL) with a real session (an administrator's for
``/admin/``; a fresh one for the calls that end sessions). Every answer must:
not be a 5xx; have a documented status code, content type and headers; match
the documented body schema; carry the security headers. Fixed seed
(``derandomize``) and a small example count per operation, so CI is
repeatable and the module stays well under two minutes.

Also checked: the description names every route of both APIs (nothing
undocumented, nothing stale), and the services never logged a traceback.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Stack, build_stack, fresh_pg_database
from tests.needs import need_module

yaml = need_module("yaml", pip="pyyaml")
schemathesis = need_module("schemathesis", pip="schemathesis")
hypothesis = need_module("hypothesis", pip="hypothesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SPEC = ROOT / "docs" / "openapi.yaml"
RAW: dict[str, Any] = yaml.safe_load(SPEC.read_text())
SCHEMA = schemathesis.openapi.from_dict(RAW)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}
EXAMPLES = 3  # per operation and generation mode
# Calls that end the caller's sessions get a session of their own.
SESSION_ENDING = {"POST /api/logout", "POST /api/sessions/revoke-all", "POST /api/password"}
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "content-security-policy")


@dataclass
class Api:
    stack: Stack
    user: str
    session: str
    admin_session: str

    def fresh_session(self) -> str:
        return self.stack.session(self.user)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    # PostgreSQL for both services: it refuses what SQLite stores (NUL in text).
    with fresh_pg_database() as auth_db, fresh_pg_database() as registry_db:
        stack = build_stack(
            tmp_path_factory.mktemp("openapi"),
            {
                "ECLOUD_AUTH_DATABASE_URL": auth_db,
                "ECLOUD_REGISTRY_DATABASE_URL": registry_db,
                "ECLOUD_RATE_LIMIT_FAILURES": "100000/60",
                "ECLOUD_RATE_LIMIT_REQUESTS": "100000/60",
                "ECLOUD_WEBHOOK_ALLOW_PRIVATE": "true",
            },
        )
        yield from _serve(stack)


def _serve(stack: Stack) -> Iterator[Api]:
    try:
        admin, _ = stack.create_user(admin=True)
        user, _ = stack.create_user()
        yield Api(stack, user, stack.session(user), stack.session(admin))
        for log in ("auth.log", "registry.log"):
            text = (stack.root / log).read_text(errors="replace")
            assert "Traceback" not in text, text[text.find("Traceback") :][:3000]
    finally:
        stack.stop()


def has_security_headers(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every answer carries the security headers of `shared.security_headers`."""
    missing = [h for h in SECURITY_HEADERS if h not in {k.lower() for k in response.headers}]
    if missing:
        raise AssertionError(f"{case.method} {case.path}: no {missing}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    has_security_headers,
]


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation_conforms(api: Api, label: str) -> None:
    operation = OPERATIONS[label]
    tags = operation.definition.raw.get("tags", [])
    base = api.stack.auth_url if "auth" in tags else api.stack.registry_url
    needs_bearer = any("bearerAuth" in s for s in operation.definition.raw.get("security", []))

    def credentials() -> dict[str, str]:
        if not needs_bearer:
            return {}
        if label in SESSION_ENDING:
            session = api.fresh_session()
        elif operation.path.startswith("/admin/"):
            session = api.admin_session
        else:
            session = api.session
        return {"Authorization": f"Bearer {session}"}

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            headers = {**(case.headers or {}), **credentials()}
            response = case.call(base_url=base, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # Nothing in the operation can be made invalid (no parameters, no body).
            assert mode is GenerationMode.NEGATIVE, label


class Walk:
    """Explicit requests through one operation each, every answer validated like above."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen: set[str] = set()

    def __call__(
        self,
        label: str,
        status: int,
        *,
        session: str | None = None,
        auth: tuple[str, str] | None = None,
        **parts: Any,
    ) -> Any:
        operation = OPERATIONS[label]
        tags = operation.definition.raw.get("tags", [])
        base = self.api.stack.auth_url if "auth" in tags else self.api.stack.registry_url
        media = parts.pop("media_type", None)
        if "body" in parts and media is None:
            media = "application/json"
        case = operation.Case(media_type=media, **parts)
        headers = {"Authorization": f"Bearer {session}"} if session else {}
        response = case.call(base_url=base, headers=headers, auth=auth, timeout=30)
        assert response.status_code == status, (label, response.status_code, response.text)
        case.validate_response(response, checks=CHECKS)
        self.seen.add(label)
        return response.json() if response.content else None


def test_success_answers_conform(api: Api) -> None:
    """The answers the generated requests rarely reach: every success, and its body."""
    from tests.registry.manifest_helpers import Repo

    walk, stack = Walk(api), api.stack
    user, password = stack.create_user()
    repo = Repo.create(stack, user, "app")
    assert repo.put_manifest("v1", repo.image([b"openapi layer"])).status_code == 201
    tokens = walk(
        "GET /v2/token",
        200,
        auth=(user, password),
        query={
            "service": "registry",
            "scope": [f"repository:{repo.name}:pull"],
            "offline_token": "true",
            "client_id": "walk",
        },
    )
    walk(
        "POST /v2/token",
        200,
        media_type="application/x-www-form-urlencoded",
        body={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "walk",
            "service": "registry",
        },
    )
    walk(
        "POST /v2/token",
        200,
        media_type="application/x-www-form-urlencoded",
        body={
            "grant_type": "password",
            "username": user,
            "password": password,
            "client_id": "walk",
            "service": "registry",
            "access_type": "offline",
        },
    )
    login = walk(
        "POST /api/login",
        200,
        body={"username": user, "password": password, "refresh": True, "client_id": "w"},
    )
    session = login["token"]
    walk("POST /api/session/refresh", 200, body={"refresh_token": login["refresh_token"]})
    walk("GET /api/session", 200, session=session)
    listed = walk("GET /api/refresh-tokens", 200, session=session)["refresh_tokens"]
    walk(
        "DELETE /api/refresh-tokens/{id}",
        204,
        session=session,
        path_parameters={"id": listed[0]["id"]},
    )
    account = walk(
        "POST /api/service-accounts",
        201,
        session=session,
        body={"name": "ci", "scopes": ["storage.me.registry=read"]},
    )
    sa = {"id": account["id"]}
    walk("GET /api/service-accounts", 200, session=session)
    walk("GET /api/service-accounts/{id}", 200, session=session, path_parameters=sa)
    walk(
        "PUT /api/service-accounts/{id}/scopes",
        200,
        session=session,
        path_parameters=sa,
        body={"scopes": [f"storage.me.registry.{repo.name}=pull"]},
    )
    issued = walk(
        "POST /api/service-accounts/{id}/tokens",
        201,
        session=session,
        path_parameters=sa,
        body={"name": "t", "expires_in": "never"},
    )
    walk("GET /api/service-accounts/{id}/tokens", 200, session=session, path_parameters=sa)
    walk("GET /api/repos", 200, session=issued_registry_token(stack, issued["token"], repo.name))
    walk("DELETE /api/tokens/{id}", 204, session=session, path_parameters={"id": issued["id"]})
    walk("DELETE /api/service-accounts/{id}", 204, session=session, path_parameters=sa)
    name = {"name": repo.name}
    walk("GET /api/repos", 200, session=session)
    walk("GET /api/repos/{name}", 200, session=session, path_parameters=name)
    walk("GET /api/repos/{name}/tags", 200, session=session, path_parameters=name)
    hook = walk(
        "POST /api/webhooks",
        201,
        session=session,
        body={"url": "http://127.0.0.1:9/hook", "format": "distribution"},
    )
    walk("GET /api/webhooks", 200, session=session)
    walk("GET /api/webhooks/{id}", 200, session=session, path_parameters={"id": hook["id"]})
    walk("POST /api/webhooks/{id}/test", 200, session=session, path_parameters={"id": hook["id"]})
    walk(
        "GET /api/webhooks/{id}/deliveries",
        200,
        session=session,
        path_parameters={"id": hook["id"]},
        query={"n": 5},
    )
    walk("DELETE /api/webhooks/{id}", 204, session=session, path_parameters={"id": hook["id"]})
    walk(
        "DELETE /api/repos/{name}/tags/{tag}",
        204,
        session=session,
        path_parameters={**name, "tag": "v1"},
    )
    walk("GET /internal/sessions/revoked", 200)
    walk("GET /.well-known/jwks.json", 200)
    walk(
        "POST /api/password",
        204,
        session=session,
        body={"current_password": password, "new_password": password + "-new"},
    )
    session = stack.session(user, password + "-new")
    walk("POST /api/sessions/revoke-all", 200, session=session)
    session = stack.session(user, password + "-new")
    walk("POST /api/logout", 204, session=session)
    admin = api.admin_session
    made = walk(
        "POST /admin/users",
        201,
        session=admin,
        body={"username": "walk-" + user, "password": "a-long-password"},
    )
    target = {"id": made["id"]}
    walk("GET /admin/users", 200, session=admin)
    walk(
        "POST /admin/users/{id}/password",
        204,
        session=admin,
        path_parameters=target,
        body={"new_password": "another-long-one"},
    )
    walk("POST /admin/users/{id}/revoke", 200, session=admin, path_parameters=target)
    walk("DELETE /admin/users/{id}", 204, session=admin, path_parameters=target)
    assert walk.seen == set(OPERATIONS), sorted(set(OPERATIONS) - walk.seen)


def issued_registry_token(stack: Stack, secret: str, repository: str) -> str:
    r = httpx.get(
        stack.auth_url + "/v2/token",
        params={"service": "registry", "scope": f"repository:{repository}:pull"},
        auth=("ci", secret),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _routes(app_module: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every API route of a service, as OpenAPI spells paths."""
    found: set[tuple[str, str]] = set()
    for module in app_module.split():
        routes = importlib.import_module(module).routes
        for route in routes:
            path = re.sub(r"\{(\w+)(:path)?\}", r"{\1}", route.path)
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method, path))
    return found


def test_every_route_is_described() -> None:
    assert RAW["openapi"].startswith("3.1.")
    auth = _routes(
        "services.auth.routes.token services.auth.routes.session services.auth.routes.credentials"
        " services.auth.routes.internal services.auth.routes.service_accounts"
        " services.auth.routes.admin"
    )
    registry = _routes("services.registry.routes.dashboard services.registry.routes.webhooks")
    spelled = {(m, re.sub(r"\{(sa_id|token_id|user_id)\}", "{id}", p)) for m, p in auth | registry}
    spelled |= {("GET", "/.well-known/jwks.json")}
    described = {
        (method.upper(), path)
        for path, item in RAW["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert described == spelled, {
        "undocumented": sorted(spelled - described),
        "stale": sorted(described - spelled),
    }
    # docs/api.md links the description.
    assert "openapi.yaml" in (ROOT / "docs" / "api.md").read_text()
