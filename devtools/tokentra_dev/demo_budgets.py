"""The end of `tokentra demo`: budgets that cross their thresholds, the alerts they raise, and those
alerts delivered to a local receiver that speaks like Slack, a Standard Webhooks endpoint and
PagerDuty. Everything goes through the production path (the budgets and alert jobs, the SSRF check,
the signed webhook); only the targets are local, allowed for this receiver alone."""

from __future__ import annotations

import base64
import os
from decimal import ROUND_UP, Decimal
from uuid import UUID

import httpx
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from tokentra_core.alerting.channels import SAVE_SQL, Channel, prepare_channels, sealed_rows
from tokentra_core.db import connect
from tokentra_core.settings import get_settings
from tokentra_dev.testing.alert_receiver import LocalReceiver
from tokentra_worker.alerting.delivery import deliver_due

console = Console()


def _spend(
    conn, org_id: UUID, period: str, scope_type: str = "organization", scope_id: str | None = None
) -> Decimal:
    """What a budget of this scope and period would show as spent now (the same SQL the budget uses)."""
    return conn.execute(
        "select private.budget_spend(b, p.period_start, p.period_end) as s "
        "from jsonb_populate_record(null::public.budgets, %s) b "
        "cross join lateral private.budget_current_period(b) p",
        (
            Jsonb(
                {
                    "org_id": str(org_id),
                    "period": period,
                    "scope_type": scope_type,
                    "scope_id": scope_id,
                    "week_start": 1,
                    "name": "probe",
                    "amount": 1,
                    "alert_thresholds": [50, 75, 90, 100],
                }
            ),
        ),
    ).fetchone()["s"] or Decimal(0)


def _amount(spent: Decimal, fraction: str) -> Decimal:
    """An amount of which `spent` is `fraction`, in whole cents (at least a dollar)."""
    return max(Decimal(1), (spent / Decimal(fraction)).quantize(Decimal("0.01"), rounding=ROUND_UP))


def create_budgets(conn, org_id: UUID) -> None:
    """Three monthly budgets placed to cross thresholds: the organization at ~80%, the top team over its
    hard limit, the top feature at ~92%."""

    def top(column: str) -> str:
        return conn.execute(
            f"select {column} as v from public.usage_records where org_id = %s "  # noqa: S608
            f"and {column} is not null group by 1 order by sum(cost_usd) desc limit 1",
            (org_id,),
        ).fetchone()["v"]

    team, feature = top("team"), top("feature")
    # The team exists only as the tag the SDK sent: the budget names it so, and the team's row is created
    # from the usage (no SQL of ours makes it). Created and sized in one transaction, so the budgets job
    # never sees the placeholder amount.
    with conn.transaction():
        team_budget = conn.execute(
            "insert into public.budgets (org_id, name, period, scope_type, scope_id, amount, hard_limit) "
            "values (%s, %s, 'monthly', 'team', %s, 1, true) returning id, scope_id",
            (org_id, f"Team {team}", team),
        ).fetchone()
        conn.execute(
            "update public.budgets set amount = %s where id = %s",
            (_amount(_spend(conn, org_id, "monthly", "team", team_budget["scope_id"]), "1.1"), team_budget["id"]),
        )
    rows = [
        ("Monthly AI spend", "organization", None, _amount(_spend(conn, org_id, "monthly"), "0.8"), False),
        (
            f"Feature {feature}",
            "feature",
            feature,
            _amount(_spend(conn, org_id, "monthly", "feature", feature), "0.92"),
            False,
        ),
    ]
    for row in rows:
        conn.execute(
            "insert into public.budgets (org_id, name, period, scope_type, scope_id, amount, hard_limit) "
            "values (%s, %s, 'monthly', %s, %s, %s, %s)",
            (org_id, *row),
        )


def create_rule(conn, org_id: UUID, receiver: LocalReceiver, secret: str, settings) -> None:
    channels = TypeAdapter(list[Channel]).validate_python(
        [
            {"type": "slack", "url": receiver.url("/slack")},
            {"type": "webhook", "url": receiver.url("/webhook"), "secret": secret},
            {"type": "pagerduty", "routing_key": "DEMOROUTINGKEY"},
        ]
    )
    stored, credentials = prepare_channels(channels, [], settings)
    rule = conn.execute(
        "insert into public.alert_rules (org_id, name, type, channels) values "
        "(%s, 'Budget thresholds', 'budget_threshold', %s) returning id",
        (org_id, Jsonb(stored)),
    ).fetchone()["id"]
    for params in sealed_rows(org_id, rule, credentials):
        conn.execute(SAVE_SQL, params)


def show(org_id: UUID, url: str, key: str) -> None:
    """Create the budgets and the rule, run the budgets job and deliver, print what arrived."""
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with LocalReceiver() as receiver:
        # The demo's own receiver is on loopback: allowed for this run only, as production never would.
        settings = get_settings().model_copy(
            update={
                "webhook_allowed_networks": "127.0.0.1/32",
                "pagerduty_events_url": receiver.url("/pagerduty"),
            }
        )
        with connect(autocommit=True) as conn:
            create_budgets(conn, org_id)
            create_rule(conn, org_id, receiver, secret, settings)
            raised = conn.execute("select private.evaluate_budgets() as r").fetchone()["r"]
            budgets = conn.execute(
                "select * from public.budget_status where org_id = %s order by name", (org_id,)
            ).fetchall()
        stats = deliver_due(settings.dsn, settings, "tokentra-demo", time_budget=20, org_id=org_id)
        team = next(b for b in budgets if b["scope_type"] == "team")
        verdict = httpx.post(
            f"{url}/budget/reserve",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            json={
                "provider": "openai",
                "model": "gpt-4o",
                "input_tokens": 2000,
                "max_tokens": 500,
                "team": team["name"].removeprefix("Team "),
            },
        ).json()
        print_budgets(budgets)
        print_alerts(receiver, secret)
        console.print(
            f"{raised['raised']} alert events raised; deliveries: {stats}. A strict reservation for "
            f"{team['name']} (hard limit): [bold]{'allowed' if verdict['allowed'] else 'refused'}[/bold]."
        )


def _money(v: Decimal | None) -> str:
    return f"${(v or 0):,.2f}"


def print_budgets(budgets: list[dict]) -> None:
    table = Table(title="Budgets", title_justify="left")
    for col in ("budget", "period", "amount", "spent", "projected", "status", "thresholds crossed"):
        table.add_column(col, justify="right" if col in ("amount", "spent", "projected") else "left")
    colour = {"ok": "green", "warning": "yellow", "exceeded": "red"}
    for b in budgets:
        table.add_row(
            b["name"] + (" (hard)" if b["hard_limit"] else ""),
            b["period"],
            _money(b["amount"]),
            _money(b["current_spend"]),
            _money(b["projected_spend"]),
            f"[{colour[b['status']]}]{b['status']}[/]",
            ", ".join(f"{t}%" for t in b["crossed_thresholds"]),
        )
    console.print(table)


def print_alerts(receiver: LocalReceiver, secret: str) -> None:
    """One row per alert, with what each channel received."""
    seen: dict[str, dict[str, str]] = {}
    for r in receiver.received():
        body = r.json
        if r.path == "/slack":
            seen.setdefault(body["text"], {})["Slack"] = "posted"
        elif r.path == "/webhook":
            ok = "signature ok" if r.signed_by(secret) else "[red]bad signature[/red]"
            seen.setdefault(body["data"]["title"], {})["Webhook"] = f"{r.headers['webhook-id'][:12]}…, {ok}"
        else:
            seen.setdefault(body["payload"]["summary"], {})["PagerDuty"] = (
                f"{body['event_action']}, dedup key set"
            )
    table = Table(title=f"Alerts delivered to the local receiver ({receiver.url()})", title_justify="left")
    for col in ("alert", "Slack", "Webhook (Standard Webhooks)", "PagerDuty (Events v2)"):
        table.add_column(col)
    for title in sorted(seen):
        got = seen[title]
        table.add_row(title, got.get("Slack", "-"), got.get("Webhook", "-"), got.get("PagerDuty", "-"))
    console.print(table)
