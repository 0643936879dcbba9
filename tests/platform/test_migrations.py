"""The migration runner: order, the Supabase CLI's record, atomic failure with a useful message."""

from __future__ import annotations

import pytest

from tokentra_cli.platform_status import read_status
from tokentra_core.db import connect
from tokentra_core.migrations import (
    MIGRATIONS_DIR,
    MigrationError,
    discover,
    manifest_problems,
    migrate,
    record_manifest,
)


def test_fresh_database_gets_every_migration_recorded_as_the_supabase_cli_does(scratch_dsn):
    applied = migrate(scratch_dsn, log=lambda *_: None)
    files = discover()
    assert [m.version for m in applied] == [m.version for m in files]
    with connect(scratch_dsn) as conn:
        rows = conn.execute("select version, name, statements from supabase_migrations.schema_migrations "
                            "order by version").fetchall()
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in files]
    assert all(len(r["statements"]) > 0 for r in rows)
    assert migrate(scratch_dsn, log=lambda *_: None) == []  # a second run applies nothing


def test_without_pg_cron_the_worker_is_chosen_and_usage_is_partitioned(scratch_dsn):
    migrate(scratch_dsn, log=lambda *_: None)
    with connect(scratch_dsn) as conn:
        status = read_status(conn)
        parts = conn.execute("select count(*) as n from pg_inherits "
                             "where inhparent = 'public.usage_records'::regclass").fetchone()["n"]
    assert status.periodic_jobs.startswith("worker")
    assert status.usage_layout == "partman" and "Apache" in status.usage_layout_reason
    assert parts >= 40  # 35 days back, a week ahead, and the default partition


def test_failing_migration_names_file_and_statement_and_leaves_the_database_as_it_was(scratch_dsn, tmp_path):
    for mig in discover()[:2]:
        (tmp_path / mig.path.name).write_text(mig.path.read_text())
    (tmp_path / "20991231000000_broken.sql").write_text(
        "create table public.half_done (id int);\n\n-- a typo below\nselect * from public.no_such_table;\n"
    )
    with pytest.raises(MigrationError) as err:
        migrate(scratch_dsn, log=lambda *_: None, folder=tmp_path)
    message = str(err.value)
    assert "20991231000000_broken.sql" in message and "line 4" in message and "no_such_table" in message
    with connect(scratch_dsn) as conn:
        assert conn.execute("select to_regclass('public.half_done') as t").fetchone()["t"] is None
        versions = {r["version"] for r in conn.execute("select version from supabase_migrations.schema_migrations")}
    assert "20991231000000" not in versions and len(versions) == 2


def test_migration_files_are_named_as_the_supabase_cli_expects():
    assert all(len(m.version) == 14 for m in discover(MIGRATIONS_DIR))


def test_every_migration_file_is_recorded_and_unchanged_since():
    # The manifest is the baseline a landed migration is compared with, without git history.
    problems = manifest_problems()
    assert not problems, "\n".join(problems)


def test_manifest_check_names_an_edited_a_missing_and_an_unrecorded_file(tmp_path):
    folder, manifest = tmp_path / "migrations", tmp_path / "migrations.sha256"
    folder.mkdir()
    for name in ("20990101000000_a.sql", "20990101000100_b.sql"):
        (folder / name).write_text(f"select '{name}';\n")
    assert record_manifest(folder, manifest) == ["20990101000000_a.sql", "20990101000100_b.sql"]
    assert manifest_problems(folder, manifest) == []
    (folder / "20990101000000_a.sql").write_text("select 'edited';\n")
    (folder / "20990101000100_b.sql").unlink()
    (folder / "20990101000200_c.sql").write_text("select 3;\n")
    problems = manifest_problems(folder, manifest)
    assert any(p.startswith("20990101000000_a.sql changed") for p in problems)
    assert any(p.startswith("20990101000100_b.sql is recorded") for p in problems)
    assert any(p.startswith("20990101000200_c.sql is not recorded") for p in problems)
    with pytest.raises(MigrationError, match="20990101000000_a.sql changed"):
        record_manifest(folder, manifest)  # refuses to paper over an edit


def test_migrate_refuses_a_database_whose_applied_migration_was_edited(scratch_dsn, tmp_path):
    for mig in discover()[:2]:
        (tmp_path / mig.path.name).write_text(mig.path.read_text())
    migrate(scratch_dsn, log=lambda *_: None, folder=tmp_path)
    edited = sorted(tmp_path.glob("*.sql"))[1]
    edited.write_text(edited.read_text() + "\ncomment on schema public is 'edited later';\n")
    with pytest.raises(MigrationError, match=edited.name):
        migrate(scratch_dsn, log=lambda *_: None, folder=tmp_path)
