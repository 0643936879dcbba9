"""Demo: the semantic cache on for one feature's traffic, measured from usage rows.

A support bot and a sales bot ask the same kinds of questions (repeats, paraphrases and near misses from
the generated set of `tokentra_dev.cache_pairs`) through the real OpenAI client and the real SDK, against
the scripted local provider. Only the support bot's client has `cache=True`. What the cache saved is then
read back from the usage rows the calls produced (`cache_hit` rows carry what the call they replaced
cost), beside the sales bot's, which paid for every call.
"""

from __future__ import annotations

import random
from decimal import Decimal
from uuid import UUID

from rich.console import Console
from rich.table import Table

from tokentra_core.db import connect
from tokentra_dev.cache_pairs import generate
from tokentra_dev.testing.llm_servers import Answer, LLMServers

console = Console()
MODEL = "gpt-4o"


def _questions(seed: int, n: int) -> list[str]:
    """A stream of support questions: bases, then their paraphrases and near misses, shuffled."""
    rng = random.Random(seed)
    prompts: list[str] = []
    for case in generate(seed, 25):
        prompts.append(case.base.text)
        prompts.extend(d.text for d in case.duplicates)
        prompts.extend(p.text for kind, p in case.traps if kind != "system_prompt")
    first, rest = prompts[:25], prompts[25:]
    rng.shuffle(rest)
    return (first + rest)[:n]


def _send(url: str, key: str, questions: list[str]) -> None:
    import openai

    import tokentra

    answers = Answer.malformed("Here is what you asked, answered carefully in a few sentences for the user.")
    with LLMServers(lambda seen: answers) as servers:
        tokentra.configure(api_key=key, url=url)
        raw = openai.OpenAI(api_key=servers.env()["OPENAI_API_KEY"], base_url=servers.openai_base_url,
                            max_retries=0)
        cached = tokentra.wrap(raw, cache=True)
        plain = tokentra.wrap(raw)
        system = {"role": "system", "content": "You are a concise support assistant."}
        for text in questions:
            for client, feature in ((cached, "support-bot"), (plain, "sales-bot")):
                client.chat.completions.create(model=MODEL, temperature=0,
                                               messages=[system, {"role": "user", "content": text}],
                                               tokentra_tags={"feature": feature, "team": "customer-success"})
        tokentra.flush()


def show(org_id: UUID, url: str, key: str, calls: int = 150, seed: int = 31) -> None:
    console.rule("[bold]Semantic cache")
    with connect(autocommit=True) as conn:
        conn.execute("insert into public.semantic_cache_settings (org_id, enabled, store_responses) "
                     "values (%s, true, true) on conflict (org_id) do update set enabled = true, "
                     "store_responses = true", (org_id,))
    questions = _questions(seed, calls)
    console.print(f"{len(questions)} support questions (repeats, paraphrases, near misses) asked by two bots "
                  f"on {MODEL}; only support-bot's client has cache=True")
    _send(url, key, questions)
    with connect() as conn:
        rows = conn.execute(
            """select feature, count(*) as calls, count(*) filter (where cache_hit) as hits,
                      coalesce(sum(cost_usd), 0) as paid,
                      coalesce(sum((metadata -> 'tokentra' ->> 'cache_saved_usd')::numeric)
                               filter (where cache_hit), 0) as saved
               from public.usage_records
               where org_id = %s and feature in ('support-bot', 'sales-bot') and occurred_at > now() - interval '1 hour'
               group by feature order by feature desc""", (org_id,)).fetchall()
        stats = conn.execute("select * from public.cache_savings(current_date, current_date, %s)", (org_id,)).fetchone()
    table = Table(title="Measured from usage rows (last hour)")
    for column in ("feature", "calls", "cache hits", "hit rate", "paid to the provider", "saved by the cache",
                   "saved share"):
        table.add_column(column, justify="left" if column == "feature" else "right")
    for row in rows:
        paid, saved = Decimal(row["paid"]), Decimal(row["saved"])
        share = saved / (paid + saved) if paid + saved else Decimal(0)
        table.add_row(row["feature"], f"{row['calls']:,}", f"{row['hits']:,}", f"{row['hits'] / row['calls']:.0%}",
                      f"${paid:,.4f}", f"${saved:,.4f}", f"{share:.0%}")
    console.print(table)
    console.print(f"Cache counters: {stats['lookups']} lookups, {stats['exact_hits']} exact and "
                  f"{stats['semantic_hits']} semantic hits, {stats['misses']} misses, {stats['guard_rejections']} "
                  f"near neighbours refused by the lexical guard (other numbers, dates, entities, opposite words, "
                  f"swapped roles); ${Decimal(stats['saved_usd']):,.4f} saved "
                  f"(GET /functions/v1/costs/cache).")
