"""Log output of both services: one structured format for every line.

Application, access (`shared.observe`) and audit (`shared.audit`) lines all go
through the standard `logging` module (modules keep calling
``logging.getLogger("ecloud....")``) to one handler on standard error whose
formatter is structlog's ``ProcessorFormatter``. Every line carries ``ts``
(ISO 8601 UTC), ``level``, ``logger``, ``service`` and ``event`` (the message),
the id of the request being served when there is one (`shared.requestid`),
and the structured fields a caller attached (`fields`).

Two renderings of the same data (``ECLOUD_LOG_FORMAT``): ``json``, one JSON
object per line for log collectors, and ``text``, aligned ``key=value`` lines
for people. Unset means text when standard error is a terminal, JSON
otherwise (the container image sets json).

The configuration is a `logging.config.dictConfig` dictionary
(`logging_config`) because uvicorn applies such a dictionary again inside
every worker process it spawns (``serve --workers``); the formatter and the
filter are named by import path so the dictionary survives the trip.

Tracebacks are rendered plainly, never with local variables (which could hold
a password). uvicorn's own access log stays off: `shared.observe` writes the
one access line per request.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Mapping
from typing import Any

import structlog

from shared.requestid import current_request_id

__all__ = [
    "FIELDS",
    "LOG_FORMATS",
    "QuietProbeFilter",
    "configure_logging",
    "fields",
    "logging_config",
    "make_formatter",
    "resolve_format",
]

LOG_FORMATS = ("json", "text")
# The record attribute holding the structured fields of a line. One attribute
# (instead of ``extra`` keys spread over the record) so that a field may be
# called ``name``, ``message`` or ``args`` without clashing with LogRecord.
FIELDS = "ecloud_fields"

# What skopeo, podman and containerd cause by probing HTTPS on a plain-HTTP
# port: their TLS hello is not HTTP. uvicorn answers 400 and warns; it is
# expected and says nothing useful, so it becomes a debug line.
_PROBE_MESSAGES = ("Invalid HTTP request received.",)
_STANDARD_ATTRIBUTES = frozenset(
    {
        *logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__,
        "message",
        "asctime",
        "color_message",  # uvicorn's coloured copy of the message
    }
)
_HEAD = ("ts", "level", "logger", "service", "event")
_CORE_KEYS = frozenset({*_HEAD, "request_id"})


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` for a log call with structured fields: ``log.info("x", extra=fields(a=1))``."""
    return {FIELDS: values}


def _stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty is not None and isatty())


def resolve_format(requested: str | None) -> str:
    """``json`` or ``text``; None picks text on a terminal, JSON otherwise."""
    if requested:
        return requested
    return "text" if _stderr_is_terminal() else "json"


class QuietProbeFilter(logging.Filter):
    """Turns uvicorn's warning about a TLS probe into a debug line (dropped above debug)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("uvicorn") and record.msg in _PROBE_MESSAGES:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text = None, None
            return self.level <= logging.DEBUG
        return True


def _add_context(service: str) -> structlog.typing.Processor:
    def processor(
        logger: Any, method: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        event_dict["service"] = service
        request_id = current_request_id()
        if request_id is not None:
            event_dict["request_id"] = request_id
        record = event_dict.get("_record")
        if record is None:
            return event_dict
        attached = record.__dict__.get(FIELDS)
        if isinstance(attached, Mapping):
            for key, value in attached.items():
                event_dict[key if key not in _CORE_KEYS else f"field_{key}"] = value
        for key, value in record.__dict__.items():
            # Plain ``extra=`` keys of other modules' and libraries' calls.
            if key not in _STANDARD_ATTRIBUTES and key != FIELDS and not key.startswith("_"):
                event_dict.setdefault(key, value)
        return event_dict

    return processor


def _order(
    logger: Any, method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Core keys first, so lines read the same way whatever fields they carry."""
    head = {k: event_dict.pop(k) for k in _HEAD if k in event_dict}
    return {**head, **event_dict}


def make_formatter(format: str = "json", service: str = "ecloud") -> logging.Formatter:
    """The formatter of every line: structlog processors over standard records."""
    pre_chain: list[structlog.typing.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _add_context(service),
    ]
    tail: list[structlog.typing.Processor]
    if format == "text":
        tail = [
            structlog.dev.ConsoleRenderer(
                colors=_stderr_is_terminal(),
                exception_formatter=structlog.dev.plain_traceback,
                sort_keys=False,
                timestamp_key="ts",
            )
        ]
    else:
        tail = [
            structlog.processors.format_exc_info,
            _order,
            structlog.processors.JSONRenderer(separators=(",", ":"), default=str),
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )


def logging_config(level: str, format: str | None, service: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary (also uvicorn's ``log_config``)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    name = logging.getLevelName(numeric)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"quiet_probe": {"()": "shared.logsetup.QuietProbeFilter", "level": numeric}},
        "formatters": {
            "ecloud": {
                "()": "shared.logsetup.make_formatter",
                "format": resolve_format(format),
                "service": service,
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "ecloud",
                "filters": ["quiet_probe"],
                "level": name,
            }
        },
        "root": {"level": name, "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's loggers keep no handler of their own: every line reaches
            # the one handler above.
            "uvicorn": {"level": name, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": name, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": name, "handlers": [], "propagate": False},
            # httpx logs every request at INFO, including the registry's polls.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def configure_logging(
    level: str, format: str | None = None, service: str = "ecloud"
) -> dict[str, Any]:
    """Apply `logging_config` to this process; returns it (for uvicorn's ``log_config``)."""
    config = logging_config(level, format, service)
    logging.config.dictConfig(config)
    return config
