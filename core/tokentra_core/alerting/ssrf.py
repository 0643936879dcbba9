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
# Forms whose last 32 bits are an IPv4 address: IPv4-compatible (deprecated, ::a.b.c.d), NAT64's
# well-known prefix (RFC 6052), IPv4-translated (SIIT, ::ffff:0:a.b.c.d). Python calls several "global".
_LAST_32_BITS = tuple(ipaddress.ip_network(n) for n in ("::/96", "64:ff9b::/96", "::ffff:0:0:0/96"))
# NAT64 local-use prefix (RFC 8215): the operator picks the prefix length (48 to 96), so where the IPv4
# address sits is unknown; every RFC 6052 layout that fits is read, and all must pass.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_RFC6052_LAYOUTS = (48, 56, 64, 96)


def _rfc6052_ipv4(address: ipaddress.IPv6Address, prefix: int) -> ipaddress.IPv4Address:
    """The IPv4 address embedded after a NAT64 prefix of that length (bits 64..71 are the reserved u octet)."""
    raw = address.packed
    octets = {48: raw[6:8] + raw[9:11], 56: raw[7:8] + raw[9:12], 64: raw[9:13], 96: raw[12:16]}[prefix]
    return ipaddress.IPv4Address(octets)


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
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or (address.teredo[1] if address.teredo else None)
        if inner is None and address in _SIXTOFOUR:
            inner = address.sixtofour
        if inner is None and any(address in net for net in _LAST_32_BITS):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is None and address in _LOCAL_NAT64:
            for prefix in _RFC6052_LAYOUTS:
                why = check_address(_rfc6052_ipv4(address, prefix), allowed)
                if why:
                    return f"address {address} embeds a non-public IPv4 address ({why})"
            return None
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
    except (OSError, ValueError):  # ValueError: a NUL in the name, or a label IDNA cannot encode
        raise BlockedTarget(f"host {parts.hostname} does not resolve") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    for address in addresses:
        why = check_address(address, allowed)
        if why:
            raise BlockedTarget(f"{parts.hostname}: {why}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, addresses[0])
