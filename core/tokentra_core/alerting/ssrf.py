"""SSRF guard for alert targets (webhooks, Slack, PagerDuty).

A target is refused when any address its host resolves to is not globally routable (private,
loopback, link-local and so cloud metadata, CGNAT, multicast, reserved, IPv4 embedded in IPv6), unless
the address is inside TOKENTRA_WEBHOOK_ALLOWED_NETWORKS. The check runs when a channel is saved and
again at send time; at send time the request goes to the very address that was checked (no second DNS
lookup an attacker could answer differently), with redirects never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["BlockedTarget", "Target", "check_address", "parse_networks", "resolve_target"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# 6to4 and Teredo carry an IPv4 address inside a "global" IPv6 one; they are judged by the IPv4 inside.
_SIXTOFOUR = ipaddress.ip_network("2002::/16")


class BlockedTarget(ValueError):
    """The target may not be called; the message says why (safe to show to the channel's owner)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent
    address: Address  # the checked address to connect to

    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_networks(spec: str) -> list[Network]:
    """Comma-separated CIDRs (TOKENTRA_WEBHOOK_ALLOWED_NETWORKS) as networks; blanks ignored."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


def check_address(address: Address, allowed: list[Network]) -> str | None:
    """Why address may not be called, or None when it may."""
    if any(address in net for net in allowed if net.version == address.version):
        return None
    inner: Address | None = None
    if address.version == 6:
        inner = address.ipv4_mapped or (address.teredo[1] if address.teredo else None)
        if inner is None and address in _SIXTOFOUR:
            inner = address.sixtofour
    if inner is not None:
        return check_address(inner, allowed)
    if not address.is_global or address.is_multicast:
        return f"address {address} is not public (private, loopback, link-local, metadata or reserved)"
    return None


def resolve_target(url: str, allowed: list[Network]) -> Target:
    """Parse and resolve url; every address its host has must pass check_address. Raises BlockedTarget."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedTarget(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedTarget("the URL must be http(s)://host/...")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        raise BlockedTarget(f"host {parts.hostname} does not resolve") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    for address in addresses:
        why = check_address(address, allowed)
        if why:
            raise BlockedTarget(f"{parts.hostname}: {why}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, addresses[0])
