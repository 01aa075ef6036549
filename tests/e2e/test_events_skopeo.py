"""Events seen by a JetStream consumer while skopeo pushes and deletes.

skopeo copies an image as ``v1`` and again as ``v2``; ``v2`` is deleted as a
tag (the registry API), then skopeo deletes ``v1``, which it does by digest.
A JetStream consumer on the stream receives exactly the expected events, in
order, with tag and digest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import Stack
from tests.e2e.conftest import Clients, Layout, client_env
from tests.events.conftest import event_env, fresh_nats_stream, wait_settled


def test_skopeo_push_and_deletes_reach_jetstream(
    make_stack: Callable[..., Stack], layout: Layout, tmp_path: Path
) -> None:
    with fresh_nats_stream() as stream:
        stack = make_stack(event_env(None, stream))
        clients = Clients(stack, tmp_path / "c", client_env(tmp_path / "c", stack.registry_host))
        user, _ = stack.create_user()
        dest = f"docker://{clients.host}/{user}/img"
        creds = ["--dest-tls-verify=false", "--dest-creds", clients.creds(user)]
        clients.skopeo("copy", *creds, layout.ref("amd64"), f"{dest}:v1")
        clients.skopeo("copy", *creds, layout.ref("amd64"), f"{dest}:v2")
        token = stack.token(user, f"repository:{user}/img:delete")
        r = httpx.delete(
            f"{stack.registry_url}/v2/{user}/img/manifests/v2",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 202
        clients.skopeo("delete", "--tls-verify=false", "--creds", clients.creds(user), f"{dest}:v1")
        digest = layout.descriptor("amd64")["digest"]

        wait_settled(stack, user, 5)
        messages = stream.messages(f"{stream.prefix}.{user}.>", 5)
        events = [json.loads(m.data) for m in messages]
        assert [(e["type"], e["data"].get("tag"), e["data"].get("digest")) for e in events] == [
            ("ecloud.registry.repository.created", None, None),
            ("ecloud.registry.manifest.pushed", "v1", digest),
            ("ecloud.registry.manifest.pushed", "v2", digest),
            ("ecloud.registry.tag.deleted", "v2", digest),
            ("ecloud.registry.manifest.deleted", None, digest),
        ]
        assert events[4]["data"]["tags"] == ["v1"]
        assert all(e["data"]["repository"] == f"{user}/img" for e in events)
        assert all(e["data"]["actor"]["name"] == user for e in events)
        assert "skopeo" in events[1]["data"]["request"]["userAgent"]
        assert [m.headers["Nats-Msg-Id"] for m in messages] == [e["id"] for e in events]
        assert [m.subject.rsplit(".", 2)[0] for m in messages] == [f"{stream.prefix}.{user}"] * 5
