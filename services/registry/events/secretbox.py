"""Webhook secrets at rest: sealed with AES-256-GCM under a key kept outside the database.

A webhook's secret must be usable (it keys the HMAC of every delivery), so it
cannot be hashed; it is encrypted instead, with the webhook's id as
associated data (a sealed secret copied onto another webhook does not open).
A leaked database alone gives nothing away. The sealed form names the key by
a short id, so a replica holding another key fails with a clear message.

The key file (``ECLOUD_WEBHOOK_KEY_FILE``, default in the data folder) holds
one base64 key per line: the first seals, all of them open, so a key can be
rotated by putting the new one first. It is generated (0600) on first use
when missing; several replicas must share one file (a Kubernetes Secret).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SecretBox", "SecretBoxError", "load_or_create_key_file"]

_VERSION = "v1"


class SecretBoxError(Exception):
    """A sealed secret that this process cannot open (or a key file it cannot use)."""


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def load_or_create_key_file(path: Path) -> list[bytes]:
    """The keys in `path`, generating a first one when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(AESGCM.generate_key(256)).decode() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            # Atomic and exclusive: two processes starting together keep one key.
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    keys = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            key = base64.b64decode(line.strip(), validate=True)
        except ValueError as exc:
            raise SecretBoxError(f"{path}: line {number} is not base64") from exc
        if len(key) != 32:
            raise SecretBoxError(f"{path}: line {number} is not a 256-bit key")
        keys.append(key)
    if not keys:
        raise SecretBoxError(f"{path} holds no key")
    return keys


class SecretBox:
    """Seals and opens webhook secrets; the key file is read on first use."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._keys: dict[str, AESGCM] | None = None
        self._current: str | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[dict[str, AESGCM], str]:
        with self._lock:
            if self._keys is None or self._current is None:
                try:
                    keys = load_or_create_key_file(self.key_file)
                except OSError as exc:
                    raise SecretBoxError(
                        f"cannot read or create the webhook key file {self.key_file}:"
                        f" {exc.strerror or exc}"
                    ) from exc
                self._keys = {_key_id(k): AESGCM(k) for k in keys}
                self._current = _key_id(keys[0])
            return self._keys, self._current

    def seal(self, secret: str, context: str) -> str:
        keys, current = self._load()
        nonce = secrets.token_bytes(12)
        sealed = keys[current].encrypt(nonce, secret.encode(), context.encode())
        return f"{_VERSION}.{current}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, box: str, context: str) -> str:
        keys, _ = self._load()
        version, _, rest = box.partition(".")
        key_id, _, payload = rest.partition(".")
        if version != _VERSION or not payload:
            raise SecretBoxError("the stored webhook secret is malformed")
        key = keys.get(key_id)
        if key is None:
            raise SecretBoxError(
                f"the webhook secret was sealed with key {key_id}, which is not in"
                f" {self.key_file} (replicas must share ECLOUD_WEBHOOK_KEY_FILE)"
            )
        try:
            raw = base64.urlsafe_b64decode(payload)
            return key.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (ValueError, InvalidTag) as exc:
            raise SecretBoxError("the stored webhook secret does not open with its key") from exc
