"""The SSRF guard: private, loopback, link-local and metadata addresses are refused unless allowed; the
address checked is the address connected to (no second DNS answer); channels are checked when saved."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from tokentra_core.alerting import http as alert_http
from tokentra_core.alerting import ssrf
from tokentra_core.alerting.channels import ChannelError, WebhookChannel, prepare_channels
from tokentra_core.alerting.ssrf import BlockedTarget, check_address, parse_networks, resolve_target
from tokentra_core.settings import get_settings


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
    ],
)
def test_non_public_addresses_are_refused(address):
    assert check_address(ipaddress.ip_address(address), []) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert check_address(ipaddress.ip_address(address), []) is None


def test_allowed_networks_make_exceptions():
    allowed = parse_networks("127.0.0.0/8, 10.9.0.0/16")
    assert check_address(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert check_address(ipaddress.ip_address("10.9.3.4"), allowed) is None
    assert check_address(ipaddress.ip_address("10.8.3.4"), allowed) is not None


def _resolving(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    asked: list[str] = []

    def fake(host, port, *args, **kwargs):
        asked.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", fake)
    return asked


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    _resolving(monkeypatch, {"hooks.example.com": ["93.184.216.34", "10.0.0.5"]})
    with pytest.raises(BlockedTarget, match="10.0.0.5"):
        resolve_target("https://hooks.example.com/x", [])


def test_the_checked_address_is_the_one_connected_to(monkeypatch):
    """DNS rebinding: the name is resolved once, checked, and the request goes to that address with the
    name only in Host (and SNI for https), so a second, different answer is never used."""
    asked = _resolving(monkeypatch, {"hooks.example.com": ["93.184.216.34"]})
    sent = {}

    class FakeClient:
        def __init__(self, **kwargs):
            sent["client"] = kwargs

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def post(self, url, content, headers, extensions):
            sent.update(url=url, headers=headers, extensions=extensions)
            return alert_http.httpx.Response(200)

    monkeypatch.setattr(alert_http.httpx, "Client", FakeClient)
    alert_http.post_json_pinned("https://hooks.example.com/in?x=1", b"{}", {}, get_settings())
    assert asked == ["hooks.example.com"]
    assert sent["url"] == "https://93.184.216.34:443/in?x=1"
    assert sent["headers"]["Host"] == "hooks.example.com"
    assert sent["extensions"] == {"sni_hostname": "hooks.example.com"}
    assert sent["client"]["follow_redirects"] is False and sent["client"]["trust_env"] is False


def test_channels_are_checked_when_saved():
    settings = get_settings().model_copy(update={"webhook_allowed_networks": ""})
    secret = "whsec_" + "A" * 43 + "="
    for url in (
        "http://127.0.0.1:9/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://localhost:9/",
    ):
        with pytest.raises(ChannelError) as exc:
            prepare_channels([WebhookChannel(type="webhook", url=url, secret=secret)], [], settings)
        assert exc.value.field == "channels.0.url"
    allowed = settings.model_copy(update={"webhook_allowed_networks": "127.0.0.0/8"})
    stored, credentials = prepare_channels(
        [WebhookChannel(type="webhook", url="http://127.0.0.1:9/x", secret=secret)], [], allowed
    )
    assert "secret" not in stored[0] and stored[0]["has_secret"] is True
    assert list(credentials.values()) == [{"secret": secret}]
