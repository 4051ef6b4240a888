"""Who is on the other end of a request: its address and scheme, through proxies we trust.

An `X-Forwarded-For` or `X-Forwarded-Proto` header is believed only when the direct
peer is one of `ARCANE_TRUSTED_PROXIES`; anyone else could write it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, MutableMapping
from functools import lru_cache
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, entries: Iterable[str] = ()) -> None:
        self._networks: tuple[Network, ...] = tuple(ipaddress.ip_network(e, strict=False) for e in entries)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        return bool(self._networks) and _trusted(self._networks, address)


@lru_cache(maxsize=4096)
def _trusted(networks: tuple[Network, ...], address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _header(headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]], name: str) -> str:
    if isinstance(headers, Mapping):
        return headers.get(name, "")
    key = name.encode()
    return next((v.decode("latin1") for k, v in headers if k.lower() == key), "")


def client_address(scope: Mapping[str, Any], proxies: TrustedProxies) -> str:
    """The client's address: the direct peer, or the last hop a trusted proxy names."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not proxies.trusts(peer):
        return peer
    # Walk back from the nearest hop: the first address not itself a trusted proxy is the client.
    hops = [h.strip() for h in _header(scope.get("headers", ()), "x-forwarded-for").split(",") if h.strip()]
    for hop in reversed(hops):
        if not proxies.trusts(hop):
            return hop
    return hops[0] if hops else peer


def is_https(scope: MutableMapping[str, Any], proxies: TrustedProxies) -> bool:
    """Whether the client reached us over TLS, directly or through a trusted proxy."""
    if scope.get("scheme") in {"https", "wss"}:
        return True
    client = scope.get("client")
    if client and proxies.trusts(str(client[0])):
        proto = _header(scope.get("headers", ()), "x-forwarded-proto").split(",")[0].strip().lower()
        return proto in {"https", "wss"}
    return False
