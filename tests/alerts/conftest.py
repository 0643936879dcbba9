"""Fixtures of the alert tests: local receivers speaking like Slack, webhook endpoints and PagerDuty,
a local SMTP server, settings pointing delivery at them, and a functions server that may save loopback
targets (TOKENTRA_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8, as production never would)."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import Message

import pytest
from aiosmtpd.controller import Controller

from org_fixtures import Org, make_org
from tokentra_cli.functions_server import free_port, start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.settings import Settings, get_settings
from tokentra_dev.testing.alert_receiver import LocalReceiver

LOOPBACK = "127.0.0.0/8"


@pytest.fixture(scope="session")
def alerts_url(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The functions server, allowed to save channels on loopback receivers."""
    with open(tmp_path_factory.mktemp("alerts") / "server.log", "w") as log:
        proc, url = start_functions(free_port(), log=log,
                                    env={"DATABASE_URL": dsn, "TOKENTRA_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK})
        yield url
        stop_functions(proc)


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    with LocalReceiver() as r:
        yield r


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A local SMTP server: (mailbox, port)."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def alert_settings(receiver: LocalReceiver, smtp) -> Settings:
    """Delivery settings for these tests: loopback allowed, fast backoff, local SMTP and PagerDuty."""
    return get_settings().model_copy(
        update={
            "webhook_allowed_networks": LOOPBACK,
            "alert_retry_base_seconds": 0.05,
            "alert_retry_max_seconds": 0.5,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp[1],
            "pagerduty_events_url": receiver.url("/pagerduty"),
        }
    )


@pytest.fixture
def org(dsn: str) -> Iterator[Org]:
    """A fresh organization whose rules and queued deliveries are removed afterwards, so nothing of one
    test is left for the next test's delivery run (or pg_cron's budgets job) to pick up."""
    o = make_org(dsn)
    yield o
    with connect(dsn, autocommit=True) as conn:
        conn.execute("delete from public.alert_rules where org_id = %s", (o.id,))
        conn.execute("delete from private.alert_deliveries where org_id = %s", (o.id,))
