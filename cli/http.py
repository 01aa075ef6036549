"""Calls to the auth service and the registry, with every failure turned into a `CliError`.

Both services answer errors in JSON: the auth service's ``/api/`` as
``{"error": {"code", "message"}}``, the registry and the token endpoint as
``{"errors": [{"code", "message"}]}``. Whatever the server says is shown in
one line; connection problems name the server that could not be reached.
Exit codes: 401 → 4, 404 → 5, anything else → 1 (see `cli.errors`).

A bearer is a plain token or a `Bearer` that can renew itself: on a 401 the
request is sent once more with the renewed token (a login session refreshed
with its refresh token).
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from cli.errors import CliError, ExitCode

__all__ = ["SESSION_ENDED", "Bearer", "Service", "server_message"]

SESSION_ENDED = (
    "your session has expired or was revoked, or the token is not valid: run `ec auth login`"
)


class Bearer(Protocol):
    """A token that may be renewed once when the server refuses it."""

    def current(self) -> str: ...

    def renew(self) -> str | None:
        """A fresh token, or None when this credential cannot be renewed."""
        ...


def server_message(response: httpx.Response) -> str:
    """The server's own words for an error response, or a short generic line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message")
            if isinstance(message, str):
                return message
        if isinstance(body.get("error_description"), str):
            return str(body["error_description"])
    return response.reason_phrase or f"HTTP {response.status_code}"


class Service:
    """One server (the auth service or the registry) and how to talk to it."""

    def __init__(self, name: str, base_url: str, timeout: float) -> None:
        self.name = name
        self.base_url = base_url
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        bearer: str | Bearer | None = None,
        basic: tuple[str, str] | None = None,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = False,
        unauthorized: str = SESSION_ENDED,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> httpx.Response:
        token = bearer if isinstance(bearer, str) or bearer is None else bearer.current()
        send = (method, path, basic, json, params, headers, follow_redirects)
        response = self._send(token, *send)
        if response.status_code == 401 and 401 not in ok and not isinstance(bearer, str | None):
            renewed = bearer.renew()
            if renewed is not None:
                response = self._send(renewed, *send)
        if response.status_code in ok:
            return response
        raise self._error(response, unauthorized)

    def _send(
        self,
        token: str | None,
        method: str,
        path: str,
        basic: tuple[str, str] | None,
        json: Any,
        params: Any,
        extra: dict[str, str] | None,
        follow_redirects: bool,
    ) -> httpx.Response:
        headers = {"Accept": "application/json", **(extra or {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = self.base_url + path
        try:
            return httpx.request(
                method,
                url,
                headers=headers,
                auth=basic,
                json=json,
                params=params,
                timeout=self.timeout,
                follow_redirects=follow_redirects,
            )
        except httpx.TimeoutException as exc:
            raise CliError(f"the {self.name} at {self.base_url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise CliError(f"cannot reach the {self.name} at {self.base_url}: {reason}") from exc

    def _error(self, response: httpx.Response, unauthorized: str) -> CliError:
        status = response.status_code
        message = server_message(response)
        if status == 401:
            return CliError(unauthorized, ExitCode.AUTH)
        if status == 403:
            return CliError(f"permission denied: {message}")
        if status == 404:
            return CliError(f"not found: {message}", ExitCode.NOT_FOUND)
        if status == 429:
            retry = response.headers.get("retry-after")
            later = f" in {retry} seconds" if retry else " later"
            return CliError(f"too many requests to the {self.name}; retry{later}")
        if status >= 500:
            return CliError(f"the {self.name} failed (HTTP {status}): {message}")
        return CliError(message)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(
                f"the {self.name} at {self.base_url} sent a response that is not JSON"
                f" (HTTP {response.status_code}); is the URL right?"
            ) from exc
