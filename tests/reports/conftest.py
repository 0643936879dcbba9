"""Fixtures of the weekly report tests: an organization with two weeks of randomised usage, an anomaly,
applied and open recommendations and a budget at risk; a local SMTP server and webhook receiver; a
functions server that may save loopback channels (as production never would)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from org_fixtures import Org, make_org
from tokentra_cli.functions_server import free_port, start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.settings import Settings, get_settings
from tokentra_dev.testing.alert_receiver import LocalReceiver

sys.path.insert(0, str(Path(__file__).parent))

from report_fixtures import Mailbox, Week, seed_week  # noqa: E402

LOOPBACK = "127.0.0.0/8"


@pytest.fixture(scope="session")
def reports_url(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The functions server, allowed to save channels on loopback receivers."""
    with open(tmp_path_factory.mktemp("reports") / "server.log", "w") as log:
        proc, url = start_functions(free_port(), log=log,
                                    env={"DATABASE_URL": dsn, "TOKENTRA_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK})
        yield url
        stop_functions(proc)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as r:
        yield r


@pytest.fixture
def delivery_settings(smtp: tuple[Mailbox, int]) -> Settings:
    return get_settings().model_copy(update={
        "webhook_allowed_networks": LOOPBACK, "alert_retry_base_seconds": 0.05, "alert_retry_max_seconds": 0.5,
        "smtp_host": "127.0.0.1", "smtp_port": smtp[1]})


@pytest.fixture
def llm_off() -> Settings:
    return Settings(OPENAI_API_KEY="", ANTHROPIC_API_KEY="")


@pytest.fixture
def org(dsn: str) -> Iterator[Org]:
    o = make_org(dsn)
    yield o
    with connect(dsn, autocommit=True) as conn:  # nothing of this test left for another's delivery run
        conn.execute("delete from private.alert_deliveries where org_id = %s", (o.id,))


@pytest.fixture
def week(dsn: str, org: Org, request: pytest.FixtureRequest) -> Week:
    return seed_week(dsn, org.id, seed=hash(request.node.name) % 10_000)
