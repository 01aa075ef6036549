"""Running a service under uvicorn: one process, or several workers on one port.

Both ``serve`` commands come here. The app is named by its factory
(``module:worker_app``), so with several workers uvicorn's supervisor starts
processes that each build their own state (database pool, HTTP clients,
caches) from the environment; nothing is shared between them but the
database, the storage and the port. Whatever must be exclusive or consistent
across workers goes through the database (see ``shared.locks``).

``proxy_headers=False``: uvicorn would otherwise take the client address
from ``X-Forwarded-For`` of any peer it trusts by default (loopback); the
only source of forwarded client addresses is ``ECLOUD_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import uvicorn

__all__ = ["run_server"]


def run_server(factory: str, *, host: str, port: int, workers: int, log_level: str) -> None:
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        # Workers stop within this on SIGTERM even with requests in flight.
        timeout_graceful_shutdown=10,
        # A worker must answer the supervisor's health ping within this, from
        # its start (imports included) on: a loaded machine needs more than
        # the 5 s default, or healthy workers are restarted in a loop.
        timeout_worker_healthcheck=60,
    )
