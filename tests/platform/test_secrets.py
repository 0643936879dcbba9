"""Provider credentials are encrypted at rest and bound to their organization."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from tokentra_cli import admin
from tokentra_core.secrets import read_provider_secret, store_provider_secret

SECRET = "sk-proj-THIS-IS-A-TEST-SECRET-1234"


def test_secret_round_trips_and_is_not_stored_in_plaintext(db):
    org = admin.create_org(db, "secrets")
    conn_id = store_provider_secret(db, org.id, "openai", SECRET)
    row = db.execute("select * from public.provider_connections where id = %s", (conn_id,)).fetchone()
    assert row["key_hint"] == "1234"
    stored = b"".join(bytes(row[c]) for c in ("ciphertext", "wrapped_key"))
    assert SECRET.encode() not in stored and b"THIS-IS-A-TEST" not in stored
    assert read_provider_secret(db, conn_id) == SECRET
    audit = db.execute("select new_row::text from public.audit_logs where table_name = 'provider_connections' "
                       "and org_id = %s", (org.id,)).fetchone()
    assert "ciphertext" not in audit["new_row"] and SECRET not in audit["new_row"]


def test_ciphertext_moved_to_another_organization_does_not_decrypt(db):
    a, b = admin.create_org(db, "a"), admin.create_org(db, "b")
    src = store_provider_secret(db, a.id, "openai", SECRET)
    dst = store_provider_secret(db, b.id, "openai", "sk-other-0000")
    db.execute("update public.provider_connections d set ciphertext = s.ciphertext, wrapped_key = s.wrapped_key "
               "from public.provider_connections s where s.id = %s and d.id = %s", (src, dst))
    with pytest.raises(InvalidTag):
        read_provider_secret(db, dst)
