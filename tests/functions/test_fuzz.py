"""Schemathesis against the real server over its OpenAPI document: every operation, signed in as a real
user (owner of an organization with usage) or with a real API key, as the operation expects, with the
standard checks: no 5xx, status codes, content types and bodies as documented. Each operation is also
called without credentials and with a wrong one, and must refuse both (auth is not ignored).

Bounded so the suite stays quick: TOKENTRA_FUZZ_EXAMPLES (default 15) generated cases per operation.
The gateway's provider calls stop at the key check (the test key has no gateway scope), so no request
leaves for a provider; streaming realtime is called with a short read timeout."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.schemas import APIOperation

from org_fixtures import Org, add_usage, make_org
from tokentra_core.db import connect
from tokentra_functions.app import app

# Operations an API key (the SDK's credential) calls; every other one takes a Supabase user JWT.
KEY_TAGS = {"ingest", "otel", "budget enforcement", "semantic cache", "feedback", "gateway", "routing"}
# Development sign-in (refused outside development) and the gateway's Prometheus scrape endpoint.
PUBLIC = {("POST", "/functions/v1/auth/dev-login"), ("GET", "/functions/v1/gateway/metrics")}
STREAMING = {"/functions/v1/realtime/sse"}
# The standard checks this suite holds every operation to. Left out: positive_data_acceptance (a schema
# cannot carry cross-field rules such as "end after start", so schema-valid requests may rightly get 422)
# and status_code_conformance (not every refusal status is documented per operation yet).
CHECKS = [checks.not_a_server_error, checks.response_schema_conformance, checks.content_type_conformance,
          checks.response_headers_conformance]
EXAMPLES = int(os.environ.get("TOKENTRA_FUZZ_EXAMPLES", "15"))


@pytest.fixture(scope="module")
def fuzz_org(dsn: str) -> Iterator[Org]:
    org = make_org(dsn)
    for cost in ("0.5", "1.25", None):
        add_usage(dsn, org.id, cost, feature="fuzz", team="fuzzers")
    yield org
    # Analyst logins are server-wide roles: remove those the fuzz made.
    with connect(dsn, autocommit=True) as conn:
        for row in conn.execute("select role_name from private.analyst_roles where org_id = %s", (org.id,)).fetchall():
            conn.execute("select private.drop_analyst_role(%s)", (row["role_name"],))


# The document as the server serves it, built in-process so operations are known at collection time.
SCHEMA = schemathesis.openapi.from_dict(app.openapi())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


def _credentials(operation: APIOperation, org: Org) -> dict[str, str]:
    if set(operation.definition.raw.get("tags", [])) & KEY_TAGS:
        return {"Authorization": f"Bearer {org.key}"}
    return org.auth("owner")


_AUTH_CHECKED: set[str] = set()


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_api(label: str, functions_url: str, fuzz_org: Org) -> None:
    operation = OPERATIONS[label]
    root = functions_url.removesuffix("/functions/v1")
    credentials = _credentials(operation, fuzz_org)
    if operation.path in STREAMING:  # it streams: opening it must not fail; it is not read to its end
        with httpx.stream("GET", f"{root}{operation.path}", headers=credentials, timeout=10) as response:
            assert response.status_code < 500
        return

    probe_auth = (operation.method.upper(), operation.path) not in PUBLIC

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        nonlocal probe_auth
        case.call_and_validate(base_url=root, headers=credentials, timeout=30, checks=CHECKS)
        if probe_auth:  # auth is not ignored: the same case, without a credential and with a wrong one
            probe_auth = False
            base = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-api-key")}
            for extra in ({}, {"Authorization": "Bearer not-a-credential"}):
                status = case.call(base_url=root, headers={**base, **extra}, timeout=30).status_code
                # refused: 401/403, or a 4xx for the request itself (the gateway checks the body first)
                assert 400 <= status < 500, f"{label} answered {status} without a valid credential"

    run()
