"""The pieces of event delivery on their own: signatures, backoff, address policy,
secret sealing, payload formats, settings. No registry process involved; the
HTTP sender is exercised against the receiver in the test process.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import stat
import time
from pathlib import Path

import pytest

from services.registry.events.addresses import (
    AddressRefused,
    is_public_address,
    resolve_checked,
)
from services.registry.events.dispatcher import retry_delay
from services.registry.events.formats import SourceRecord, cloudevent, distribution_envelope
from services.registry.events.http_sender import Endpoint, WebhookSender
from services.registry.events.model import Actor, StoredEvent
from services.registry.events.nats_sink import subject_for
from services.registry.events.secretbox import SecretBox, SecretBoxError
from services.registry.events.signing import sign, verify
from services.registry.settings import RegistrySettings, SettingsError
from tests.events.conftest import Receiver

# -- signatures -------------------------------------------------------------------


def test_signature_verifies_and_refuses_tampering_and_replays() -> None:
    body = b'{"id":"1"}'
    now = int(time.time())
    header = sign("s3cret-s3cret-s3cret", body, now)
    assert header.startswith(f"t={now},v1=")
    assert len(header.split("v1=")[1]) == 64
    assert verify("s3cret-s3cret-s3cret", body, header, now)
    assert not verify("s3cret-s3cret-s3cret", body + b" ", header, now)
    assert not verify("another-secret-entirely", body, header, now)
    assert not verify("s3cret-s3cret-s3cret", body, header, now + 301)  # a replay, later
    assert not verify("s3cret-s3cret-s3cret", body, "v1=" + header.split("v1=")[1], now)
    rotated = header + ",v1=" + "0" * 64
    assert verify("s3cret-s3cret-s3cret", body, rotated, now)


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k" * 16, b"1700000000.hello", hashlib.sha256).hexdigest()
    assert sign("k" * 16, b"hello", 1700000000) == f"t=1700000000,v1={expected}"


# -- backoff -------------------------------------------------------------------


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7).random
    for attempt, low in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)):
        delays = [retry_delay(attempt, 1.0, 600.0, rng) for _ in range(200)]
        assert all(low <= d < 2 * low for d in delays)
        assert max(delays) - min(delays) > low / 4  # jittered, not a fixed step
    assert all(300 <= retry_delay(40, 1.0, 600.0, rng) < 600 for _ in range(50))


# -- address policy ----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - a value to classify, never bound
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        "not-an-address",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)


def test_public_addresses_pass() -> None:
    # Checked as values only: nothing here connects anywhere.
    assert is_public_address("8.8.8.8")
    assert is_public_address("2606:4700:4700::1111")
    assert is_public_address("64:ff9b::808:808")


def test_resolution_checks_every_address() -> None:
    with pytest.raises(AddressRefused, match=r"127\.0\.0\.1"):
        asyncio.run(resolve_checked("127.0.0.1", 80, False, 5))
    with pytest.raises(AddressRefused):
        asyncio.run(resolve_checked("localhost", 80, False, 5))
    assert asyncio.run(resolve_checked("127.0.0.1", 80, True, 5)) == "127.0.0.1"


# -- the HTTP sender ----------------------------------------------------------------


def _send(sender: WebhookSender, endpoint: Endpoint) -> object:
    async def go() -> object:
        try:
            return await sender.send(endpoint, b'{"x":1}', "application/json", "ev-1", "t.x")
        finally:
            await sender.aclose()

    return asyncio.run(go())


def test_sender_refuses_a_private_user_endpoint_without_calling_it(receiver: Receiver) -> None:
    endpoint = Endpoint("wh_x", receiver.url("/private"), "cloudevents", "s" * 20)
    result = _send(WebhookSender(3, allow_private=False), endpoint)
    assert result.refused and not result.delivered  # type: ignore[attr-defined]
    assert "127.0.0.1" in result.error  # type: ignore[attr-defined]
    assert receiver.at("/private") == []


def test_sender_signs_pins_and_never_follows_redirects(receiver: Receiver) -> None:
    receiver.plan(
        "/moved?token=abc", fail_first=10, status=302, location=receiver.url("/elsewhere")
    )
    endpoint = Endpoint("wh_y", receiver.url("/moved?token=abc"), "cloudevents", "s" * 20)
    result = _send(WebhookSender(3, allow_private=True), endpoint)
    assert not result.delivered and not result.refused  # type: ignore[attr-defined]
    assert result.status_code == 302  # type: ignore[attr-defined]
    assert "redirect" in result.error and "token" not in result.error  # type: ignore[attr-defined]
    assert receiver.at("/elsewhere") == []
    [got] = receiver.at("/moved?token=abc")
    assert got.headers["host"] == f"127.0.0.1:{receiver.server.server_address[1]}"
    assert got.headers["ecloud-event-id"] == "ev-1" and got.headers["ecloud-event-type"] == "t.x"
    assert verify("s" * 20, got.body, got.headers["ecloud-signature"], time.time())


def test_sender_reports_a_dead_endpoint() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = Endpoint("op:1", f"http://127.0.0.1:{port}/", "cloudevents", "s" * 20, False)
    result = _send(WebhookSender(3, allow_private=False), endpoint)
    assert not result.delivered and not result.refused and result.error  # type: ignore[attr-defined]


# -- sealed secrets ------------------------------------------------------------------


def test_secrets_are_sealed_per_webhook_and_the_key_file_is_private(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "webhook.key"
    box = SecretBox(key_file)
    sealed = box.seal("whsec_abcdefghijklmnop", "wh_1")
    assert "whsec_" not in sealed
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert SecretBox(key_file).open(sealed, "wh_1") == "whsec_abcdefghijklmnop"
    with pytest.raises(SecretBoxError):
        box.open(sealed, "wh_2")  # moved onto another webhook
    with pytest.raises(SecretBoxError, match="ECLOUD_WEBHOOK_KEY_FILE"):
        SecretBox(tmp_path / "other.key").open(sealed, "wh_1")
    # Rotation: a new key first, the old one still opens what it sealed.
    rotated = tmp_path / "rotated.key"
    old = key_file.read_text().strip()
    SecretBox(rotated).seal("x" * 16, "wh_0")
    rotated.write_text(rotated.read_text().strip() + "\n" + old + "\n")
    assert SecretBox(rotated).open(sealed, "wh_1") == "whsec_abcdefghijklmnop"
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    with pytest.raises(SecretBoxError, match="line 1"):
        SecretBox(bad).seal("x" * 16, "wh_1")


# -- payloads -----------------------------------------------------------------------


def _event(event_type: str, **data: object) -> StoredEvent:
    base: dict[str, object] = {
        "repository": "alice.b/app",
        "namespace": "alice.b",
        "actor": Actor("user", "usr_1", "alice.b").to_json(),
    }
    return StoredEvent(
        1, "ev-1", event_type, "alice.b", "alice.b/app", "usr_1", 0.0, 1, {**base, **data}
    )


def test_distribution_envelope_words_events_like_distribution() -> None:
    source = SourceRecord("host", "inst")
    assert distribution_envelope(_event("repository.created"), source) is None
    assert distribution_envelope(_event("repository.emptied"), source) is None
    tag = distribution_envelope(
        _event("tag.deleted", tag="v1", digest="sha256:" + "a" * 64), source
    )
    assert tag is not None
    assert tag["events"][0]["target"] == {"repository": "alice.b/app", "tag": "v1"}
    assert tag["events"][0]["timestamp"] == "1970-01-01T00:00:00.000000Z"
    assert tag["events"][0]["actor"] == {"name": "alice.b"}
    doc = cloudevent(_event("manifest.pushed", digest="sha256:" + "a" * 64))
    assert doc["time"] == "1970-01-01T00:00:00.000Z" and doc["subject"] == "alice.b/app"
    assert json.dumps(doc)  # plain JSON all the way down


def test_namespaces_with_dots_stay_one_subject_token() -> None:
    assert subject_for("ecloud.registry", "alice.b", "tag.deleted") == (
        "ecloud.registry.alice%2Eb.tag.deleted"
    )


# -- settings ---------------------------------------------------------------------------


def test_event_settings_defaults(tmp_path: Path) -> None:
    events = RegistrySettings.from_env({"ECLOUD_DATA_DIR": str(tmp_path)}).events
    assert events.nats_url is None and events.nats_stream == "ECLOUD_REGISTRY"
    assert events.nats_subject_prefix == "ecloud.registry"
    assert events.webhooks == () and events.allow_private is False and events.dispatch
    assert events.key_file == tmp_path / "webhook-secrets.key"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ECLOUD_WEBHOOKS": "{"}, "JSON array"),
        ({"ECLOUD_WEBHOOKS": "{}"}, "JSON array"),
        ({"ECLOUD_WEBHOOKS": '[{"url": "ftp://x", "secret": "TOPSECRET"}]'}, r"\[0\]\.url"),
        ({"ECLOUD_WEBHOOKS": '[{"url": "http://x", "secret": ""}]'}, r"\[0\]\.secret"),
        (
            {"ECLOUD_WEBHOOKS": '[{"url": "http://x", "secret": "TOPSECRET", "format": "xml"}]'},
            "format",
        ),
        ({"ECLOUD_WEBHOOKS": '[{"url": "http://x", "secret": "TOPSECRET", "x": 1}]'}, "unknown"),
        ({"ECLOUD_WEBHOOK_ALLOW_PRIVATE": "maybe"}, "true or false"),
        ({"ECLOUD_EVENTS_NATS_STREAM": "a.b"}, "STREAM"),
        ({"ECLOUD_EVENTS_NATS_SUBJECT_PREFIX": "a.>"}, "PREFIX"),
        ({"ECLOUD_EVENTS_NATS_URL": "http://127.0.0.1:4222"}, "nats://"),
        ({"ECLOUD_EVENTS_RETRY_BASE": "fast"}, "number"),
    ],
)
def test_bad_event_settings_are_refused_without_echoing_secrets(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        RegistrySettings.from_env({"ECLOUD_DATA_DIR": "/tmp", **env})
    assert "TOPSECRET" not in str(caught.value)


def test_operator_webhooks_parse_and_hide_their_secrets() -> None:
    raw = (
        '[{"url": "https://hooks.example/x?k=1", "secret": "TOPSECRET", "format": "distribution"}]'
    )
    events = RegistrySettings.from_env({"ECLOUD_DATA_DIR": "/tmp", "ECLOUD_WEBHOOKS": raw}).events
    [hook] = events.webhooks
    assert hook.format == "distribution" and hook.target.startswith("op:")
    assert "TOPSECRET" not in repr(events) and "hooks.example" not in hook.target


def test_nats_publisher_gives_up_quickly_when_nats_is_down() -> None:
    import socket

    from services.registry.events.nats_sink import NatsPublisher, NatsUnavailable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go() -> None:
        publisher = NatsPublisher(f"nats://user:pw@127.0.0.1:{port}", "S", "p.q", timeout=2)
        try:
            with pytest.raises(NatsUnavailable, match="cannot connect") as caught:
                async with asyncio.timeout(30):  # never hangs in the client's retry loop
                    await publisher.publish(_event("manifest.pushed"), b"{}")
            assert "pw" not in str(caught.value)
        finally:
            await publisher.close()

    asyncio.run(go())
