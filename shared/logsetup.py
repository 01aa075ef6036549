"""Logging set-up shared by both services' command lines."""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # httpx logs every request at INFO, including the registry's periodic polls.
    logging.getLogger("httpx").setLevel(logging.WARNING)
