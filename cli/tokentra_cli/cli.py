"""The `tokentra` command: operators' and tests' entry point to the platform."""

from __future__ import annotations

import json
import sys
from typing import Annotated
from uuid import UUID

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from tokentra_cli import admin, localdb, prices, providers, virtual_keys
from tokentra_cli.devtools import dev_tool
from tokentra_cli.errors import OneLineErrors, connection_failure, public_dsn
from tokentra_cli.platform_status import read_status
from tokentra_core.db import connect
from tokentra_core.migrations import MANIFEST, MigrationError, migrate, record_manifest
from tokentra_core.settings import get_settings

# OneLineErrors: a wrong password, an unreachable database or a refused statement ends any command with one
# `error:` line saying what failed, why and what to do, instead of a traceback.
app = typer.Typer(help="TokenTRA: AI cost intelligence on Postgres.", no_args_is_help=True, cls=OneLineErrors)
db_app = typer.Typer(help="The database: start, stop, status, reset, migrate.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their memberships.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
prices_app = typer.Typer(help="Model prices.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(prices_app, name="prices")
prices_app.command("show")(prices.show)
prices_app.command("set")(prices.set_price)
prices_app.command("from-bill")(prices.from_bill)
bench_app = typer.Typer(help="Benchmarks: figures and ratios against a baseline measured in the same run.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")
analysts_app = typer.Typer(help="Analysts: read-only SQL logins that see one organization.",
                           no_args_is_help=True)
app.add_typer(analysts_app, name="analysts")
teams_app = typer.Typer(help="Teams: the names usage tags carry become teams by themselves; create one not seen yet.",
                        no_args_is_help=True)
projects_app = typer.Typer(help="Projects: created from usage tags, or here for names not seen yet.",
                           no_args_is_help=True)
app.add_typer(teams_app, name="teams")
app.add_typer(projects_app, name="projects")
app.add_typer(providers.app, name="providers")
app.add_typer(virtual_keys.app, name="virtual-keys")

console = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line, whatever the terminal's width
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _local_only(action: str) -> None:
    if not get_settings().uses_local_db:
        _fail(f"`tokentra db {action}` manages the embedded database; DATABASE_URL points elsewhere")


# ---------------------------------------------------------------- db
@db_app.command("start")
def db_start() -> None:
    """Provision (once) and start the embedded Postgres on 127.0.0.1:54322."""
    _local_only("start")
    try:
        root = localdb.start(log=lambda m: err.print(m))
    except localdb.SetupError as exc:
        _fail(str(exc))
    console.print(f"Postgres {localdb.PG_MAJOR} running at {get_settings().dsn} (root {root})")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded Postgres."""
    _local_only("stop")
    localdb.stop()
    console.print("stopped")


@db_app.command("reset")
def db_reset(yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Drop all local data, start an empty cluster and apply the migrations."""
    _local_only("reset")
    if not yes and sys.stdin.isatty():
        typer.confirm("Erase every row in the local database?", abort=True)
    try:
        localdb.reset(log=lambda m: err.print(m))
        migrate(log=lambda m: err.print(m))
    except (localdb.SetupError, MigrationError) as exc:
        _fail(str(exc))
    console.print("local database reset and migrated")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations from supabase/migrations (recorded as the Supabase CLI does)."""
    try:
        done = migrate(log=lambda m: err.print(m))
    except MigrationError as exc:
        _fail(str(exc))
    except Exception as exc:  # connection refused and the like: one line, with the way out
        _fail(f"cannot reach the database ({exc.__class__.__name__}); run `tokentra db start` or check DATABASE_URL")
    console.print(f"{len(done)} migration(s) applied")


@db_app.command("manifest")
def db_manifest() -> None:
    """Record new migration files' checksums in supabase/migrations.sha256 (never rewrites a recorded one)."""
    try:
        added = record_manifest()
    except MigrationError as exc:
        _fail(str(exc))
    for name in added:
        err.print(f"recorded {name}")
    console.print(f"{len(added)} migration(s) recorded in {MANIFEST.relative_to(MANIFEST.parents[1])}")


@db_app.command("status")
def db_status(as_json: JsonFlag = False) -> None:
    """Server version and what the platform chose (partitioning, periodic jobs, secrets), and why."""
    settings = get_settings()
    local = localdb.status() if settings.uses_local_db else None
    try:
        with connect(connect_timeout=10) as conn:
            status = read_status(conn)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        if local and not local.running:
            _fail(f"cannot connect to the database at {public_dsn(settings.dsn)}: the embedded database is not "
                  "running; run `tokentra db start`")
        _fail(str(connection_failure(exc, settings.dsn, local is not None)))
    if as_json:
        print(status.model_dump_json())
        return
    table = Table(show_header=False)
    table.add_row("database", "embedded (local chroot)" if local else "DATABASE_URL")
    table.add_row("server", f"PostgreSQL {status.server_version}" + (" on Supabase" if status.supabase else ""))
    table.add_row("usage table", f"{status.usage_layout}: {status.usage_layout_reason}")
    table.add_row("timescaledb", status.timescaledb_license or "absent")
    table.add_row("periodic jobs", status.periodic_jobs)
    table.add_row("secrets", status.secrets)
    table.add_row("migrations", str(status.migrations_applied))
    llm = status.llm
    table.add_row("LLM features", f"on ({', '.join(llm['providers'])})" if llm.get("enabled")
                  else "off (set OPENAI_API_KEY or ANTHROPIC_API_KEY)")
    console.print(table)


# ---------------------------------------------------------------- admin
@orgs_app.command("create")
def orgs_create(name: str, as_json: JsonFlag = False) -> None:
    """Create an organization."""
    with connect() as conn:
        org = admin.create_org(conn, name)
    print(org.model_dump_json() if as_json else f"organization {org.id} ({org.name})")


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    """Rows as a table whose ids and names are never cut, however narrow the terminal."""
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(width=max(console.width, table.__rich_measure__(console, console.options).maximum)).print(table)


@orgs_app.command("list")
def orgs_list(as_json: JsonFlag = False) -> None:
    """Every organization with its member and active key counts."""
    with connect() as conn:
        orgs = admin.list_orgs(conn)
    if as_json:
        print(admin.as_json_rows(orgs))
        return
    _table(f"{len(orgs)} organization(s)", ("id", "name", "plan", "members", "active keys", "created"),
           [(o.id, o.name, o.plan, o.members, o.active_keys, f"{o.created_at:%Y-%m-%d}") for o in orgs])


@users_app.command("create")
def users_create(
    email: str,
    org: Annotated[UUID | None, typer.Option("--org", help="Organization to join.")] = None,
    role: Annotated[str, typer.Option("--role", help="owner, admin, member, viewer or billing.")] = "member",
    as_json: JsonFlag = False,
) -> None:
    """Create a user (local auth.users, or Supabase's admin API when configured) and its membership."""
    try:
        with connect() as conn:
            user = admin.create_user(conn, email, org, role)
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        print(user.model_dump_json())
    elif user.created:
        joined = f", {user.role} of organization {user.org_id}" if user.org_id else ""
        print(f"user {user.id} ({user.email}){joined}")
    else:
        print(f"existing user {user.id} ({user.email}) added to organization {user.org_id} as {user.role}")


@users_app.command("list")
def users_list(
    org: Annotated[UUID | None, typer.Option("--org", help="Only this organization's members.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Users and their memberships: one row per user and organization."""
    with connect() as conn:
        rows = admin.list_users(conn, org)
    if as_json:
        print(admin.as_json_rows(rows))
        return
    _table(f"{len({r.user_id for r in rows})} user(s)", ("email", "user id", "organization", "org id", "role"),
           [(r.email, r.user_id, r.org_name, r.org_id, r.role) for r in rows])


@users_app.command("login")
def users_login(
    email: str,
    token: Annotated[bool, typer.Option("--token", help="Print a user JWT for scripts instead of a link.")] = False,
    minutes: Annotated[int | None, typer.Option("--minutes", min=1, max=1440,
                                                help="Minutes the link (10) or token (480) lasts.")] = None,
) -> None:
    """Local development only: print a one-time sign-in link for the local dashboard (or, with --token, a
    JWT). Refused when SUPABASE_URL names a real project: sign in with Supabase Auth there."""
    from datetime import timedelta

    from tokentra_cli.sign_in import SignInRefused, login_link, login_token

    settings = get_settings()
    try:
        with connect() as conn:
            if token:
                print(login_token(conn, email, settings, timedelta(minutes=minutes or 480)))
            else:
                print(login_link(conn, email, settings, timedelta(minutes=minutes or 10)))
    except SignInRefused as exc:
        _fail(str(exc))


@keys_app.command("create")
def keys_create(
    org: Annotated[UUID, typer.Option("--org", help="Organization the key reports for.")],
    project: Annotated[UUID | None, typer.Option("--project", help="Pin the key to a project.")] = None,
    test: Annotated[bool, typer.Option("--test", help="A tt_test_ key.")] = False,
    name: Annotated[str, typer.Option("--name")] = "default",
    as_json: JsonFlag = False,
) -> None:
    """Create an API key. The key is printed once; only its hash is stored."""
    with connect() as conn:
        key = admin.create_key(conn, org, project, test, name)
    if as_json:
        print(key.model_dump_json())
    else:
        print(f"key {key.id}: {key.key}\n(shown once; store it now)")


def _scope_command(kind: str) -> None:
    scope_app = teams_app if kind == "teams" else projects_app

    @scope_app.command("create")
    def create(
        name: str,
        org: Annotated[UUID, typer.Option("--org", help="The organization.")],
        as_json: JsonFlag = False,
    ) -> None:
        """Create one no usage has named yet, so budgets and alert rules can name it now."""
        with connect() as conn:
            row = admin.create_scope(conn, kind, org, name)
        print(row.model_dump_json() if as_json else f"{kind[:-1]} {row.id} ({row.name}) in organization {org}")

    @scope_app.command("list")
    def list_(
        org: Annotated[UUID | None, typer.Option("--org", help="Only this organization's.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Every one, those created from usage tags included."""
        with connect() as conn:
            rows = admin.list_scopes(conn, kind, org)
        if as_json:
            print(admin.as_json_rows(rows))
            return
        _table(f"{len(rows)} {kind}", ("name", "id", "org id", "created"),
               [(r.name, r.id, r.org_id, f"{r.created_at:%Y-%m-%d %H:%M}") for r in rows])


_scope_command("teams")
_scope_command("projects")


@keys_app.command("list")
def keys_list(
    org: Annotated[UUID | None, typer.Option("--org", help="Only this organization's keys.")] = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """API keys by prefix (the key itself is never stored), newest first."""
    with connect() as conn:
        keys = admin.list_keys(conn, org, revoked)
    if as_json:
        print(admin.as_json_rows(keys))
        return
    _table(f"{len(keys)} key(s)", ("id", "prefix", "name", "org id", "project id", "created", "last used", "revoked"),
           [(k.id, k.prefix, k.name, k.org_id, k.project_id, f"{k.created_at:%Y-%m-%d %H:%M}",
             f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never",
             f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "") for k in keys])


@keys_app.command("revoke")
def keys_revoke(key_id: UUID) -> None:
    """Revoke an API key; it stops working at once."""
    with connect() as conn:
        if not admin.revoke_key(conn, key_id):
            _fail(f"no active key {key_id}")
    print(f"revoked {key_id}")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 54321, Supabase's API port).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (validation is CPU-bound).")] = 1,
) -> None:
    """Serve every function at http://HOST:PORT/functions/v1/<name>, logging one line per request."""
    import uvicorn

    settings = get_settings()
    # Without a database every request would fail after a long wait: check first, and say why.
    with connect(connect_timeout=5) as conn:
        conn.execute("select 1")
    host, port = host or settings.functions_host, port or settings.functions_port
    base = f"http://{host}:{port}/functions/v1"
    err.print(f"TokenTRA functions at {base} (database {public_dsn(settings.dsn)}); OpenAPI at {base}/openapi.json, "
              f"dashboard at http://{host}:{port}/dashboard/. One line per request below; Ctrl-C stops.")
    uvicorn.run("tokentra_cli.serve_app:app", host=host, port=port, log_level="warning", workers=workers,
                # 431 for oversized headers; no access log of the server's own (it quotes query strings):
                # serve_app logs method, path, status and time instead.
                http="tokentra_functions._http:HttpToolsProtocol", access_log=False)


@app.command("demo")
def demo(
    days: Annotated[int, typer.Option(help="Days of traffic to send.")] = 30,
    keep_serving: Annotated[bool, typer.Option(help="Keep the functions running afterwards.")] = False,
) -> None:
    """The main job: a demo organization sends a month of traffic through the SDK; print what we know."""
    run = dev_tool("demo").run

    run(days, keep_serving)


worker_app = typer.Typer(help="The scheduled worker: `tokentra worker` runs it, `--once JOB` runs one job, "
                         "`status` shows every job's runs.", invoke_without_command=True)
app.add_typer(worker_app, name="worker")


@worker_app.callback()
def worker(
    ctx: typer.Context,
    once: Annotated[str | None, typer.Option(
        "--once", help="Run one job (rollups, budgets, alerts, a periodic SQL job, or `periodic` for all of "
                       "them) and exit.")] = None,
) -> None:
    """Run the scheduled jobs (Python jobs always; periodic SQL where pg_cron is absent)."""
    if ctx.invoked_subcommand is not None:
        return
    import logging

    from tokentra_worker.main import run_forever, run_once

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if once:
        try:
            result = run_once(once)
        except KeyError as exc:
            _fail(str(exc.args[0]))
        print(json.dumps(result))
        if any(str(v).startswith("failed") for v in result.values()):
            raise typer.Exit(1)
    else:
        run_forever()


@worker_app.command("status")
def worker_status(as_json: JsonFlag = False) -> None:
    """Workers alive, each job's schedule, where it runs, its last run and recent failures."""
    from tokentra_worker.status import read_status as read_worker_status

    with connect() as conn:
        status = read_worker_status(conn)
    if as_json:
        print(status.model_dump_json())
        return
    alive = [w for w in status.workers if w.alive]
    console.print(f"workers alive: {len(alive)}", soft_wrap=True)
    for w in alive:
        console.print(f"  {w.name} (since {w.started_at:%Y-%m-%d %H:%M:%S})", soft_wrap=True)
    need_worker = [j.name for j in status.jobs if j.runs_in == "worker"]
    if not alive and need_worker:
        console.print(f"[yellow]no worker is alive, so these jobs will never run: {', '.join(need_worker)} "
                      "(alert delivery, anomalies, forecasts and recommendations among them); start one with "
                      "`tokentra worker`[/yellow]", soft_wrap=True)
    table = Table(title="jobs", title_justify="left")
    for col in ("job", "schedule", "runs in", "last start", "last end", "outcome", "running",
                "24h ok/failed"):
        # Names and times are never cut: a narrow terminal wraps the lines instead.
        table.add_column(col, no_wrap=col != "outcome")
    for j in status.jobs:
        table.add_row(j.name, j.schedule or "", j.runs_in,
                      f"{j.last_started_at:%m-%d %H:%M:%S}" if j.last_started_at else "never",
                      f"{j.last_finished_at:%H:%M:%S}" if j.last_finished_at else "",
                      (j.last_outcome or "") + (f": {j.last_error[:60]}" if j.last_error else ""),
                      str(j.running + j.retrying), f"{j.ok_24h}/{j.failed_24h}")
    Console(width=max(console.width, table.__rich_measure__(console, console.options).maximum)).print(table)
    o = status.alert_outbox
    console.print(f"alert outbox: {o.pending} pending, {o.sending} sending, "
                  f"{o.delivered_24h} delivered (24h), "
                  f"{o.failed} failed")


@bench_app.command("ingest")
def bench_ingest(
    events: Annotated[int, typer.Option(help="Events to send.")] = 50_000,
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients.")] = 4,
    workers: Annotated[int, typer.Option(help="Server worker processes.")] = 2,
) -> None:
    """Ingest throughput and batch latency beside a raw COPY of the same rows."""
    run = dev_tool("bench_ingest").run

    run(events, clients, workers)


@bench_app.command("gateway")
def bench_gateway(
    calls: Annotated[int, typer.Option(
        help="Timed calls per target, one client (twice that with many); a p99 of 2,000 is the 20th-slowest "
             "call, not the 4th of 400, so one stall of the shared machine moves it less.")] = 2000,
    clients: Annotated[int, typer.Option(help="Concurrent clients of the second run.")] = 50,
) -> None:
    """The gateway's added latency over the same local provider called directly (p50/p99, TTFT, throughput)."""
    run = dev_tool("bench_gateway").run

    run(calls, clients)


@bench_app.command("sdk")
def bench_sdk(
    calls: Annotated[int, typer.Option(help="Wrapped calls to time.")] = 20_000,
    stream: Annotated[bool, typer.Option(help="Time streamed calls read to the end.")] = False,
) -> None:
    """The SDK's added time per wrapped call (p50/p99 in microseconds; target p99 under 50)."""
    measure_overhead = dev_tool("bench_sdk").measure_overhead

    console.print_json(data=measure_overhead(calls, stream=stream))


@bench_app.command("query")
def bench_query(
    rows: Annotated[int, typer.Option(help="Usage rows of the large organization (30 days).")] = 10_000_000,
    small_orgs: Annotated[int, typer.Option(help="Smaller organizations loaded beside it.")] = 100,
    requests: Annotated[int, typer.Option(help="Timed HTTP requests per query.")] = 200,
    raw_runs: Annotated[int, typer.Option(help="Timed runs of each raw aggregate.")] = 5,
    late: Annotated[int, typer.Option(help="Late events ingested before the timed refresh.")] = 10_000,
    keep: Annotated[bool, typer.Option(help="Keep the benchmark database afterwards.")] = False,
    reuse: Annotated[bool, typer.Option(help="Time over the database a --keep run left (built if absent).")] = False,
) -> None:
    """Overview and 30-day breakdowns from the rollups beside raw aggregates; freshness; late refresh."""
    run = dev_tool("bench_query").run

    run(rows=rows, small_orgs=small_orgs, requests=requests, raw_runs=raw_runs, late=late, keep=keep, reuse=reuse)


@bench_app.command("dashboard")
def bench_dashboard(
    rows: Annotated[int, typer.Option(help="Rows to load when `bench query --keep` left no database.")] = 1_000_000,
    runs: Annotated[int, typer.Option(help="Cold page loads timed.")] = 10,
    keep: Annotated[bool, typer.Option(help="Keep a database this run built.")] = False,
) -> None:
    """The overview page in headless Chromium: first meaningful paint and all charts drawn, beside the API."""
    run = dev_tool("bench_dashboard").run

    run(rows=rows, runs=runs, keep=keep)


@bench_app.command("route")
def bench_route(
    decisions: Annotated[int, typer.Option(help="Decisions to time in process, per path.")] = 20_000,
    http_calls: Annotated[int, typer.Option(help="POST /route calls to time (and as many baseline calls).")] = 2_000,
    seed: Annotated[int | None, typer.Option(help="Repeat a run's generated requests.")] = None,
) -> None:
    """Routing decision time: in process (target p99 < 1 ms) and over HTTP (p99 < 5 ms) beside /budget/check."""
    run = dev_tool("bench_route").run_route

    run(decisions, http_calls, seed)


@bench_app.command("routing")
def bench_routing(
    calls: Annotated[int, typer.Option(help="Generated calls per seed.")] = 20_000,
    floor: Annotated[float, typer.Option(help="Quality floor (0..1).")] = 0.8,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds; default: five fresh ones.")] = None,
) -> None:
    """Savings at a quality floor on traffic of known true quality, against the asked and the cheapest model."""
    run = dev_tool("bench_route").run_routing

    run(calls, floor, [int(s) for s in seeds.split(",")] if seeds else None)


@bench_app.command("cache")
def bench_cache(
    entries: Annotated[int, typer.Option(help="Synthetic 384-dim entries (the largest org holds half).")] = 100_000,
    orgs: Annotated[int, typer.Option(help="Organizations the entries are spread over.")] = 100,
    queries: Annotated[int, typer.Option(help="Timed lookups.")] = 300,
    seeds: Annotated[str, typer.Option(help="Seeds of the generated labelled prompt set.")] = "101,102",
    threshold: Annotated[float | None, typer.Option(help="Similarity threshold (default: the embedder's).")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the benchmark database afterwards.")] = False,
    parts: Annotated[str, typer.Option(help="What to measure: quality, speed or both.")] = "quality,speed",
    reuse: Annotated[str | None, typer.Option(help="Time a database kept by --keep again (its name).")] = None,
    ef_search: Annotated[int, typer.Option(help="Rows of the scope an HNSW lookup gathers.")] = 40,
    vectors: Annotated[str, typer.Option(help="Synthetic vectors: latent (embedding-like) or uniform.")] = "latent",
    prewarm: Annotated[bool, typer.Option(help="Read the cache's pages into shared buffers before timing.")] = True,
) -> None:
    """Semantic cache: lookup p50/p95 and recall@10 against exact search; wrong-hit share and duplicate hits."""
    run = dev_tool("bench_cache").run

    run(entries=entries, orgs=orgs, queries=queries, seeds=seeds, threshold=threshold, keep=keep, parts=parts,
        reuse=reuse, ef_search=ef_search, vectors=vectors, prewarm=prewarm)


@bench_app.command("anomalies")
def bench_anomalies(
    nab: Annotated[str | None, typer.Option("--nab", help="A folder in NAB's layout (data/, windows).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    chart: Annotated[str, typer.Option(help="SVG chart of the per-folder NAB figures.")] = "out/bench_anomalies.svg",
) -> None:
    """Anomaly detector: window precision, recall and F1, and with --nab NAB's standard score beside its
    windowed-Gaussian baseline, per folder, tuned leave-one-folder-out."""
    run = dev_tool("bench_anomalies").run

    run(nab=nab, as_json=as_json, chart=chart)


@bench_app.command("forecast")
def bench_forecast(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds, one generated set of series each.")] = "11,12,13",
    horizon: Annotated[int, typer.Option(min=1, max=62, help="Days forecast from each origin.")] = 14,
) -> None:
    """Forecasts backtested on rolling origins: MASE of the model and of a seasonal-naive forecast."""
    run = dev_tool("bench_forecast").run

    try:
        parsed = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter("seeds must be comma-separated integers", param_hint="--seeds") from None
    if not parsed:
        raise typer.BadParameter("give at least one seed", param_hint="--seeds")
    run(as_json=as_json, seeds=parsed, horizon=horizon)


@bench_app.command("recommendations")
def bench_recommendations(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Planted inefficiencies per category and clean organizations: found, savings error, false alarms."""
    run = dev_tool("bench_recommendations").run

    run(as_json=as_json)


@bench_app.command("reconciliation")
def bench_reconciliation(
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds; default: three fixed, two fresh.")] = None,
    days: Annotated[int | None, typer.Option(min=2, max=30, help="Days per month (default: 14-28 per seed).")] = None,
    scale: Annotated[float, typer.Option(min=0.1, max=20, help="Calls per model and day, relative.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Generated months with planted gaps: what is left unexplained, and how much is booked to its true cause."""
    run = dev_tool("bench_reconciliation").run

    try:
        parsed = [int(s) for s in seeds.split(",") if s.strip()] if seeds else None
    except ValueError:
        raise typer.BadParameter("seeds must be comma-separated integers", param_hint="--seeds") from None
    run(seeds=parsed, days=days, scale=scale, as_json=as_json)


@bench_app.command("generalise")
def bench_generalise(
    seeds: Annotated[int, typer.Option(min=1, max=100, help="Held-out seeds (31 organizations each).")] = 4,
    first_seed: Annotated[int, typer.Option(help="First seed; development used seeds below 10000.")] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Reliability, scheduling and signal detectors on randomised held-out traffic: precision and recall."""
    run = dev_tool("bench_generalise").run

    run(seeds=seeds, first_seed=first_seed, as_json=as_json)


@bench_app.command("engine")
def bench_engine(
    orgs: Annotated[int, typer.Option(min=1, max=100_000, help="Organizations to generate.")] = 1000,
    rows_per_org: Annotated[int, typer.Option(min=20, max=1_000_000, help="Mean usage rows (30 days).")] = 1000,
    sample: Annotated[int, typer.Option(min=1, help="Organizations profiled for the breakdown.")] = 50,
    keep: Annotated[bool, typer.Option(help="Keep the scratch database afterwards.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The recommendations job over many generated organizations with 30 days of rollups, timed."""
    run = dev_tool("bench_engine").run

    run(orgs=orgs, rows_per_org=rows_per_org, sample=min(sample, orgs), keep=keep, as_json=as_json)


@bench_app.command("consensus")
def bench_consensus(
    n: Annotated[int, typer.Option("--n", min=1, max=10_000, help="Recommendations to review.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The consensus job against scripted provider servers: tokens and cost per run, wall time for N."""
    run = dev_tool("bench_consensus").run

    run(n=n, as_json=as_json)


# ---------------------------------------------------------------- analysts
@analysts_app.command("create")
def analysts_create(
    org: Annotated[UUID, typer.Option("--org", help="The organization the login may read.")],
    timeout: Annotated[int, typer.Option(help="Statement timeout in seconds (1..3600).")] = 60,
    as_json: JsonFlag = False,
) -> None:
    """Create a read-only login that sees one organization; prints its connection string once."""
    from datetime import timedelta

    import psycopg

    from tokentra_cli import analysts

    try:
        with connect() as conn:
            role = analysts.create(conn, org, timedelta(seconds=timeout))
    except psycopg.Error as exc:
        _fail(exc.diag.message_primary or exc.__class__.__name__)
    if as_json:
        print(role.model_dump_json())
    else:
        print(f"analyst role {role.role} for organization {org}\n{role.connection_string}\n"
              "(shown once: the password is not stored anywhere you can read it back)")


@analysts_app.command("list")
def analysts_list(
    org: Annotated[UUID | None, typer.Option("--org", help="Only this organization's logins.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Analyst logins and the organization each sees (passwords are never stored where they can be read)."""
    with connect() as conn:
        rows = admin.list_analysts(conn, org)
    if as_json:
        print(admin.as_json_rows(rows))
        return
    _table(f"{len(rows)} analyst login(s)", ("role", "organization", "org id", "statement timeout", "created"),
           [(a.role, a.org_name, a.org_id, f"{a.statement_timeout_seconds:g} s", f"{a.created_at:%Y-%m-%d %H:%M}")
            for a in rows])


@analysts_app.command("drop")
def analysts_drop(role: str) -> None:
    """End an analyst login's sessions and drop it."""
    from tokentra_cli import analysts

    with connect() as conn:
        if not analysts.drop(conn, role):
            _fail(f"no analyst role {role}")
    print(f"dropped {role}")


@prices_app.command("sync")
def prices_sync(as_json: JsonFlag = False) -> None:
    """Load every price genai-prices knows and re-price unpriced and affected usage."""
    from tokentra_core.pricing import sync_prices

    with connect() as conn:
        result = sync_prices(conn)
    print(json.dumps(result.model_dump(mode="json")) if as_json else str(result))
if __name__ == "__main__":
    app()
