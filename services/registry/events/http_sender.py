"""One webhook delivery over HTTP: signed POST, no redirects, bounded time, pinned address.

Every request carries ``Ecloud-Signature`` (``signing``), ``Ecloud-Event-Id``
and ``Ecloud-Event-Type``. Only a 2xx answer counts as delivered; a redirect
is never followed (it would let an endpoint send the registry elsewhere) and
counts as a failure. The response body is never read. Per-user endpoints
are checked and pinned by ``addresses``; operator endpoints are trusted.
Errors are described without the URL (which may hold a token) or the secret.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from services.registry.events.addresses import AddressRefused, resolve_checked
from services.registry.events.signing import SIGNATURE_HEADER, sign

__all__ = ["Endpoint", "SendResult", "WebhookSender"]

USER_AGENT = "ecloud-registry-webhooks/1"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to deliver: `key` names it in the delivery records."""

    key: str
    url: str
    format: str
    secret: str = field(repr=False)
    restricted: bool = True  # a user's endpoint: public addresses only


@dataclass(frozen=True, slots=True)
class SendResult:
    delivered: bool
    refused: bool  # the address policy forbade the call: retrying cannot help
    status_code: int | None
    error: str | None
    latency: float


class WebhookSender:
    def __init__(self, timeout: float, allow_private: bool) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        # trust_env=False: no proxy from the environment may re-route a checked address.
        self._client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=httpx.Timeout(timeout)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(
        self,
        endpoint: Endpoint,
        body: bytes,
        content_type: str,
        event_id: str,
        event_type: str,
    ) -> SendResult:
        begun = time.monotonic()
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "Ecloud-Event-Id": event_id,
            "Ecloud-Event-Type": event_type,
            SIGNATURE_HEADER: sign(endpoint.secret, body, int(time.time())),
        }

        def result(
            delivered: bool, status: int | None, error: str | None, refused: bool = False
        ) -> SendResult:
            return SendResult(delivered, refused, status, error, time.monotonic() - begun)

        try:
            url = httpx.URL(endpoint.url)
            extensions: dict[str, str] = {}
            if endpoint.restricted:
                port = url.port or (443 if url.scheme == "https" else 80)
                address = await resolve_checked(url.host, port, self.allow_private, self.timeout)
                host = f"[{url.host}]" if ":" in url.host else url.host
                headers["Host"] = host if url.port is None else f"{host}:{url.port}"
                if url.scheme == "https":
                    # TLS still verifies the certificate of the name, not of the address.
                    extensions["sni_hostname"] = url.host
                url = url.copy_with(host=address)
            request = self._client.build_request(
                "POST", url, content=body, headers=headers, extensions=extensions
            )
            response = await self._client.send(request, stream=True)
            await response.aclose()
        except AddressRefused as exc:
            return result(False, None, f"refused: {exc}", refused=True)
        except httpx.TimeoutException:
            return result(False, None, f"no answer within {self.timeout:g} s")
        except (httpx.HTTPError, OSError) as exc:
            return result(False, None, _describe(exc))
        status = response.status_code
        if 200 <= status < 300:
            return result(True, status, None)
        if 300 <= status < 400:
            return result(False, status, f"HTTP {status}: redirects are not followed")
        return result(False, status, f"HTTP {status}")


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    # httpx names the URL in some messages; keep only the reason.
    return text.split(" for url ", 1)[0][:300]
