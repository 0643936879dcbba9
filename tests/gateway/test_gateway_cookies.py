"""A cookie a provider's answer sets is kept by no one: the gateway's upstream client serves every
organization, so a later call (here another organization's, to the same provider host) carries none."""

from __future__ import annotations

import uuid

from gateway_helpers import one_prompt

from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_dev.testing.gateway_upstream import PROVIDER_KEY, SECRET_HEADERS


def test_provider_cookies_never_reach_another_call(gw, dsn, upstream, openai_client) -> None:
    # A host name, not an address: cookie jars refuse cookies set by an IP address host.
    base_url = upstream.url.replace("127.0.0.1", "localhost") + "/v1"
    keys = []
    for _ in range(2):
        with connect(dsn, autocommit=True) as conn:
            org = admin.create_org(conn, f"gateway-cookies-{uuid.uuid4().hex[:8]}")
            store_provider_connection(conn, org.id, "openai", PROVIDER_KEY, base_url=base_url)
            keys.append(conn.execute("select key from private.new_virtual_key(%s, 'cookies')",
                                     (org.id,)).fetchone()["key"])
    seen = len(upstream.app.requests)
    for key in keys:
        raw = openai_client(key).chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=one_prompt(), max_tokens=5)
        assert "set-cookie" not in raw.headers  # the provider did set one (SECRET_HEADERS)
    sent = upstream.app.requests[seen:]
    assert len(sent) == 2 and "set-cookie" in SECRET_HEADERS
    assert all("cookie" not in headers for _, headers, _ in sent), [h.get("cookie") for _, h, _ in sent]
