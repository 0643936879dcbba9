"""Pieces of the local database provisioning that can be checked without building a new root."""

from __future__ import annotations

import os

import pytest

from tokentra_cli.localdb import debian_mirror, status
from tokentra_core.settings import Settings


def test_mirror_comes_from_the_hosts_apt_sources_not_their_comments(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
                      "URIs: http://mirror.example/debian\nSuites: bookworm\n")
    assert debian_mirror(Settings(), (deb822,)) == "http://mirror.example/debian"
    legacy = tmp_path / "sources.list"
    legacy.write_text("# deb http://old.example/debian bookworm main\ndeb http://deb.example/debian/ bookworm main\n")
    assert debian_mirror(Settings(), (tmp_path / "missing", legacy)) == "http://deb.example/debian"
    assert debian_mirror(Settings(debian_mirror="http://set.example/debian"), (deb822,)) == "http://set.example/debian"


def test_status_reports_the_running_local_database(dsn):
    # The tests run in a database of their own; the embedded server is the user's unless DATABASE_URL
    # named another one (conftest says which).
    if os.environ.get("TOKENTRA_TESTS_LOCAL_DB") != "1":
        pytest.skip("DATABASE_URL points elsewhere: there is no local database to report on")
    settings = Settings(database_url=None)
    st = status(settings)
    assert st.provisioned and st.initialized and st.running
