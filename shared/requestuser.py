"""Who the request being served is for, as its access line names it.

Authentication happens deep inside the services (the registry's
`services.registry.access.authenticate`, the auth service's session check,
login and token endpoints), while the access line is written by
`shared.observe.ObserveMiddleware` after the response. They meet here: the
middleware opens an empty `RequestUser` for each request, and whichever code
authenticates the caller calls `identify_user` once it has verified who it is.

The context variable holds a mutable record rather than the user itself: a
value set with ``ContextVar.set`` inside a handler is invisible to the
middleware when the handler ran in a child task (anyio task groups copy the
context), while a change to a shared record is seen by both.

Record only verified identities, never what a client merely claims (an
unchecked ``account=`` parameter, a username with a wrong password).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

__all__ = ["RequestUser", "current_user", "identify_user", "open_request_user", "request_user_var"]


@dataclass(slots=True)
class RequestUser:
    """The verified caller of one request; all None while anonymous."""

    user: str | None = None  # the username when known, else the user id
    user_id: str | None = None
    service_account: str | None = None


request_user_var: ContextVar[RequestUser | None] = ContextVar("ecloud_request_user", default=None)


def open_request_user() -> tuple[RequestUser, Token[RequestUser | None]]:
    """A fresh record for a new request (the middleware's side)."""
    record = RequestUser()
    return record, request_user_var.set(record)


def identify_user(
    *, user_id: str, username: str | None = None, service_account: str | None = None
) -> None:
    """Name the verified caller of the current request (no-op outside a request)."""
    record = request_user_var.get()
    if record is None or not user_id:
        return
    record.user = username or user_id
    record.user_id = user_id
    record.service_account = service_account


def current_user() -> RequestUser | None:
    return request_user_var.get()
