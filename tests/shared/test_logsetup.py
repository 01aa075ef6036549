"""The log formatter, the probe filter, audit lines and query redaction, in-process."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared.audit import audit
from shared.logsetup import QuietProbeFilter, make_formatter, resolve_format
from shared.observe import safe_target
from shared.requestid import request_id_var


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every record of the ``ecloud`` and ``uvicorn`` loggers, formatted as JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter("json", "test"))
    handler.addFilter(QuietProbeFilter(logging.INFO))
    loggers = [logging.getLogger(n) for n in ("ecloud", "uvicorn.error")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
    yield stream
    for lg, (level, propagate) in zip(loggers, saved, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_audit_fields_are_keys_of_the_line_whatever_their_names(captured: io.StringIO) -> None:
    token = request_id_var.set("rid-1")
    try:
        audit("user_created", name="alice", message="m", args=[1], level="x", admin=True)
    finally:
        request_id_var.reset(token)
    audit("outside")
    inside, outside = parsed(captured)
    assert inside["event"] == "user_created" and inside["logger"] == "ecloud.audit"
    assert inside["name"] == "alice" and inside["message"] == "m" and inside["args"] == [1]
    # A field may not overwrite what every line means.
    assert inside["level"] == "info" and inside["field_level"] == "x"
    assert inside["request_id"] == "rid-1" and inside["service"] == "test"
    assert inside["admin"] is True and str(inside["ts"]).endswith("Z")
    assert "request_id" not in outside


def test_tracebacks_are_plain_text_without_local_variables(captured: io.StringIO) -> None:
    def fail(password: str) -> None:
        raise RuntimeError("boom")

    secret = "-".join(["hunter2", "local"])  # not in the source the traceback quotes
    try:
        fail(secret)
    except RuntimeError:
        logging.getLogger("ecloud.test").exception("it failed")
    (line,) = parsed(captured)
    assert line["event"] == "it failed" and line["level"] == "error"
    assert "RuntimeError: boom" in str(line["exception"])
    assert "hunter2-local" not in captured.getvalue()


def test_the_tls_probe_warning_becomes_a_debug_line() -> None:
    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, "h11", 1, msg, None, None)

    quiet, verbose = QuietProbeFilter(logging.INFO), QuietProbeFilter(logging.DEBUG)
    assert quiet.filter(record("Invalid HTTP request received.")) is False
    probe = record("Invalid HTTP request received.")
    assert verbose.filter(probe) is True and probe.levelname == "DEBUG"
    other = record("something else")
    assert quiet.filter(other) is True and other.levelname == "WARNING"


def test_format_defaults_to_text_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert resolve_format(None) == "json"
    assert resolve_format("text") == "text"
    monkeypatch.setattr("sys.stderr", Tty())
    assert resolve_format(None) == "text"
    assert resolve_format("json") == "json"


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        (b"", "/p"),
        (b"n=10&last=a%2Fb", "/p?n=10&last=a/b"),
        (b"password=s3cret&account=bob", "/p?password=REDACTED&account=bob"),
        (b"_state=abc&digest=sha256:1", "/p?_state=REDACTED&digest=sha256:1"),
        (
            b"refresh_token=x&access_token=y&Token=z",
            "/p?refresh_token=REDACTED&access_token=REDACTED&Token=REDACTED",
        ),
        (b"client_secret=x&api_key=y", "/p?client_secret=REDACTED&api_key=REDACTED"),
        (b"scope=repository:a/b:pull,push", "/p?scope=repository:a/b:pull,push"),
        (b"a=%0Ainjected", "/p?a=%0Ainjected"),
    ],
)
def test_query_secrets_are_redacted(query: bytes, logged: str) -> None:
    assert safe_target("/p", query) == logged


def test_logged_targets_are_bounded() -> None:
    assert len(safe_target("/p", b"x=" + b"a" * 10_000)) <= 2051
