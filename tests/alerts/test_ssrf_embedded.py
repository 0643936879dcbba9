"""IPv4 addresses carried inside IPv6 ones are unwrapped and judged like IPv4: every embedding form, as a
saved webhook target would resolve (literal IPv6 hosts resolve to themselves)."""

from __future__ import annotations

import ipaddress

import pytest

from tokentra_core.alerting.ssrf import BlockedTarget, check_address, parse_networks, resolve_target

# (form, address embedding a forbidden IPv4, address embedding a public one or None when the form has none)
FORMS = [
    ("IPv4-mapped ::ffff:0:0/96", "::ffff:127.0.0.1", "::ffff:8.8.8.8"),
    ("IPv4-compatible ::/96", "::7f00:1", None),  # deprecated: never a real public target either
    ("IPv4-compatible, metadata", "::a9fe:a9fe", None),
    ("NAT64 well-known 64:ff9b::/96, metadata", "64:ff9b::a9fe:a9fe", "64:ff9b::808:808"),
    ("NAT64 well-known, private", "64:ff9b::a00:1", "64:ff9b::101:101"),
    ("NAT64 local-use 64:ff9b:1::/48, /96 layout", "64:ff9b:1::7f00:1", None),
    ("NAT64 local-use, /48 layout", "64:ff9b:1:a9fe:a9:fe00::", None),
    ("IPv4-translated ::ffff:0:0:0/96", "::ffff:0:7f00:1", None),
    ("IPv4-translated, private", "::ffff:0:c0a8:101", None),
    ("6to4 2002::/16", "2002:7f00:1::", "2002:808:808::"),
    ("Teredo 2001::/32", "2001:0:4136:e378:8000:63bf:80ff:fffe", None),  # client 127.0.0.1 (obfuscated)
]


@pytest.mark.parametrize("form, blocked, public", FORMS, ids=[f[0] for f in FORMS])
def test_embedded_ipv4_is_judged_like_ipv4(form: str, blocked: str, public: str | None) -> None:
    assert check_address(ipaddress.ip_address(blocked), []) is not None
    with pytest.raises(BlockedTarget):
        resolve_target(f"http://[{blocked}]/hook", [])
    if public is not None:
        assert check_address(ipaddress.ip_address(public), []) is None
        assert resolve_target(f"https://[{public}]/hook", []).address == ipaddress.ip_address(public)


def test_an_allowed_ipv4_network_allows_its_embedded_forms_too() -> None:
    allowed = parse_networks("127.0.0.0/8")
    for address in ("::ffff:127.0.0.1", "::7f00:1", "64:ff9b::7f00:1", "::ffff:0:7f00:1"):
        assert check_address(ipaddress.ip_address(address), allowed) is None
    assert check_address(ipaddress.ip_address("64:ff9b::a9fe:a9fe"), allowed) is not None
