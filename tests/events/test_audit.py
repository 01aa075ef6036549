"""The registry's audit trail: a line for every push, pull, delete and refusal, no secret.

Runs on the session's shared stack: its registry log holds every line;
each test picks out the lines of its own users.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.conftest import Stack
from tests.registry.conftest import registry_sql
from tests.registry.manifest_helpers import Repo, digest_of


def audit_lines(stack: Stack) -> list[dict[str, Any]]:
    """Every audit record in the registry's log, whatever the log format around it."""
    found = []
    for line in (stack.root / "registry.log").read_text(errors="replace").splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("message"), str):
            try:  # a structured log line carrying the audit JSON as its message
                inner = json.loads(record["message"])
                record = inner if isinstance(inner, dict) else record
            except ValueError:
                pass
        if isinstance(record, dict) and "event" in record:
            found.append(record)
    return found


def wait_lines(stack: Stack, where: Any, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [r for r in audit_lines(stack) if where(r)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_pushes_pulls_deletes_and_refusals_are_audited(stack: Stack) -> None:
    repo = Repo.create(stack)
    bob, _ = stack.create_user()
    body = repo.image()
    digest = digest_of(body)
    assert repo.put_manifest("v1", body).status_code == 201
    assert repo.put_manifest("v2", b"{not json").status_code == 400
    assert repo.get_manifest("v1").status_code == 200
    assert repo.get_manifest("v1", method="HEAD").status_code == 200
    layer = repo.push_blob(b"a blob to delete " + repo.user.encode())
    assert repo.request("DELETE", f"blobs/{layer['digest']}").status_code == 202
    assert repo.request("DELETE", "manifests/v1").status_code == 202
    assert repo.request("DELETE", f"manifests/{digest}").status_code == 202
    bob_token = stack.token(bob, f"repository:{repo.name}:pull")
    denied = httpx.get(
        repo.url("manifests/v2"), headers={"Authorization": f"Bearer {bob_token}"}, timeout=10
    )
    assert denied.status_code == 401
    forged = httpx.get(
        repo.url("manifests/v2"), headers={"Authorization": "Bearer forged.token.x"}, timeout=10
    )
    assert forged.status_code == 401

    mine = wait_lines(stack, lambda r: r.get("repository") == repo.name, 9)
    by_event: dict[str, list[dict[str, Any]]] = {}
    for record in mine:
        by_event.setdefault(record["event"], []).append(record)
    ok_push, bad_push = sorted(by_event["manifest.push"], key=lambda r: r["outcome"] != "ok")
    assert ok_push["outcome"] == "ok" and ok_push["status"] == 201
    assert ok_push["digest"] == digest and ok_push["reference"] == "v1"
    assert ok_push["user"] == repo.user and ok_push["user_id"].startswith("usr_")
    assert ok_push["client"] == "127.0.0.1" and ok_push["request_id"]
    assert bad_push["outcome"] == "MANIFEST_INVALID" and bad_push["status"] == 400
    [pull] = by_event["manifest.pull"]  # the HEAD is no pull
    assert pull["reference"] == "v1" and pull["outcome"] == "ok"
    [blob] = by_event["blob.delete"]
    assert blob["reference"] == layer["digest"] and blob["outcome"] == "ok"
    deletes = by_event["manifest.delete"]
    assert sorted(d["reference"] for d in deletes) == sorted(["v1", digest])
    refusals = by_event["authz.denied"]
    reasons = {r["reason"]: r for r in refusals}
    assert reasons["insufficient_scope"]["user"] == bob
    assert reasons["insufficient_scope"]["scope"] == f"repository:{repo.name}:pull"
    assert "invalid_token" in reasons
    log = (stack.root / "registry.log").read_text()
    assert repo.token not in log and bob_token not in log and "forged.token.x" not in log


def test_service_account_pushes_name_the_account(stack: Stack) -> None:
    user, _ = stack.create_user()
    session = stack.session(user)
    auth = {"Authorization": f"Bearer {session}"}
    name = f"{user}/sa-app"
    account = httpx.post(
        stack.auth_url + "/api/service-accounts",
        json={"name": "ci-bot", "scopes": [f"storage.me.registry.{name}=pull,push"]},
        headers=auth,
        timeout=10,
    ).json()
    secret = httpx.post(
        stack.auth_url + f"/api/service-accounts/{account['id']}/tokens",
        json={},
        headers=auth,
        timeout=10,
    ).json()["token"]
    token = stack.token(user, f"repository:{name}:pull,push", password=secret)
    repo = Repo(stack, user, name, token)
    assert repo.put_manifest("v1", repo.image()).status_code == 201

    [push] = wait_lines(
        stack, lambda r: r.get("repository") == name and r["event"] == "manifest.push", 1
    )
    assert push["sa"] == account["id"] and push["sa_name"] == "ci-bot" and push["user"] == user
    [(data,)] = registry_sql(
        stack, "SELECT data FROM events WHERE repository = ? AND type = 'manifest.pushed'", name
    )
    actor = json.loads(str(data))["actor"]
    assert actor == {
        "type": "service_account",
        "id": push["user_id"],
        "name": user,
        "serviceAccount": {"id": account["id"], "name": "ci-bot"},
    }
    assert secret not in (stack.root / "registry.log").read_text()
