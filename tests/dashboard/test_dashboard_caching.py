"""The built dashboard's caching headers: content-hashed assets are kept by browsers for a year, the page
that names them and the runtime config are asked for again every time (so a new build is picked up)."""

from __future__ import annotations

import re

import httpx


def test_hashed_assets_immutable_index_revalidated(dashboard_url: str) -> None:
    index = httpx.get(dashboard_url)
    assert index.status_code == 200
    assert index.headers["cache-control"] == "no-cache"
    assets = re.findall(r'(?:src|href)="/dashboard/(assets/[^"]+)"', index.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), index.text
    for asset in assets:
        r = httpx.get(dashboard_url + asset)
        assert r.status_code == 200, asset
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable", asset
        # a conditional request is answered 304 with the same policy
        again = httpx.get(dashboard_url + asset, headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.headers["cache-control"] == r.headers["cache-control"]
    config = httpx.get(dashboard_url + "config.json")
    assert config.status_code == 200 and config.headers["cache-control"] == "no-store"
    missing = httpx.get(dashboard_url + "assets/no-such-file.js")
    assert missing.status_code == 404 and "immutable" not in missing.headers.get("cache-control", "")
