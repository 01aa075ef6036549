"""Which addresses a per-user webhook may call: public ones only, unless the operator allows.

A user must not make the registry call into its own network (cloud metadata
services, databases, admin ports). The host of a per-user webhook is
resolved, and every address it resolves to must be public (not loopback,
private, link-local, shared, multicast, reserved or unspecified, IPv4-mapped
forms included); the request is then sent to the address that was checked,
never resolved again, so a name that answers differently a moment later
(DNS rebinding) changes nothing. ``ECLOUD_WEBHOOK_ALLOW_PRIVATE`` lifts the
restriction (tests, or a registry whose users are all trusted).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

__all__ = ["AddressRefused", "is_public_address", "resolve_checked"]

# NAT64 (RFC 6052): the last 32 bits are an IPv4 address, maybe a private one.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressRefused(Exception):
    """The webhook's host is, or resolves to, an address users may not reach."""


def is_public_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if ip in _NAT64:
            mapped = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if mapped is not None:
            ip = mapped
    return ip.is_global and not ip.is_multicast


async def resolve_checked(host: str, port: int, allow_private: bool, limit: float) -> str:
    """One address of `host` to connect to, after checking every address it has.

    Raises `AddressRefused` when any address is not public (and private ones
    are not allowed), `OSError` when the name does not resolve within `limit`
    seconds.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(limit):
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except TimeoutError as exc:
        raise OSError(f"resolving {host} timed out") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"{host} has no address")
    if not allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise AddressRefused(
                f"{host} resolves to {refused[0]}, a loopback, private or link-local address"
            )
    return addresses[0]
