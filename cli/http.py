"""Calls to the auth service and the registry, with every failure turned into a `CliError`.

Both services answer errors in JSON: the auth service's ``/api/`` as
``{"error": {"code", "message"}}``, the registry and the token endpoint as
``{"errors": [{"code", "message"}]}``. Whatever the server says is shown in
one line; connection problems name the server that could not be reached.
"""

from __future__ import annotations

from typing import Any

import httpx

from cli.errors import CliError

__all__ = ["Service", "server_message"]

_SESSION_ENDED = (
    "your session has expired or was revoked, or the token is not valid: run `ec auth login`"
)


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
        bearer: str | None = None,
        basic: tuple[str, str] | None = None,
        json: Any = None,
        params: Any = None,
        unauthorized: str = _SESSION_ENDED,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        url = self.base_url + path
        try:
            response = httpx.request(
                method,
                url,
                headers=headers,
                auth=basic,
                json=json,
                params=params,
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise CliError(f"the {self.name} at {self.base_url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise CliError(f"cannot reach the {self.name} at {self.base_url}: {reason}") from exc
        if response.status_code in ok:
            return response
        raise self._error(response, unauthorized)

    def _error(self, response: httpx.Response, unauthorized: str) -> CliError:
        status = response.status_code
        message = server_message(response)
        if status == 401:
            return CliError(unauthorized)
        if status == 403:
            return CliError(f"permission denied: {message}")
        if status == 429:
            retry = response.headers.get("retry-after")
            later = f" in {retry} seconds" if retry else " later"
            return CliError(f"too many requests to the {self.name}; retry{later}")
        if status >= 500:
            return CliError(f"the {self.name} failed (HTTP {status}): {message}")
        return CliError(message if status != 404 else f"not found: {message}")

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
