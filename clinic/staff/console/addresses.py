"""Who is connecting: the client's address behind trusted reverse proxies.

``X-Forwarded-For`` is only believed when the connection comes from a trusted proxy
(``STAFF_TRUSTED_PROXIES``); anyone else could write any address in it and dodge the sign-in
throttle. Each proxy appends the address it received the request from, so the list is read
from the right: the first address that is not one of our proxies is the client. Entries to its
left were written by the client and are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from starlette.requests import Request

from clinic.settings import IPNetwork

IPAddress = IPv4Address | IPv6Address
UNKNOWN = "unknown"
IPV6_PREFIX = 64  # one host usually holds a whole /64: counting its addresses one by one would be no limit


def _parse(text: str) -> IPAddress | None:
    try:
        address = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in proxies)


def forwarded_client(peer: str, forwarded_for: Iterable[str], proxies: Sequence[IPNetwork]) -> str:
    """The client's address from the connection's peer and its ``X-Forwarded-For`` headers.

    Args:
        peer: the address the connection comes from.
        forwarded_for: the values of every ``X-Forwarded-For`` header, in order.
        proxies: the trusted reverse proxies (none: the peer is the client).
    """
    current = _parse(peer)
    if current is None or not _trusted(current, proxies):
        return str(current) if current is not None else peer
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break  # a proxy of ours writes addresses only: the rest came from the client
        current = address
        if not _trusted(current, proxies):
            break
    return str(current)


def client_address(request: Request, proxies: Sequence[IPNetwork]) -> str:
    """The address of the client making ``request`` (see the module's docstring)."""
    peer = request.client.host if request.client else UNKNOWN
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), proxies)


def throttle_key(address: str) -> str:
    """What sign-in failures are counted under: the address, or its /64 network for IPv6."""
    parsed = _parse(address)
    if isinstance(parsed, IPv6Address):
        return str(ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed) if parsed is not None else address
