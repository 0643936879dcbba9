"""The one settings object. Every knob TokenTRA reads from the environment is declared here."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The URL `supabase start` prints; the local database is provisioned to answer on it.
LOCAL_DB_PORT = 54322
LOCAL_DATABASE_URL = "postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
# The JWT secret `supabase start` uses locally. Refused outside development (see check_production).
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"  # noqa: S105 - public, local only
REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOKENTRA_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "TOKENTRA_DATABASE_URL")
    )
    home: Path = Field(default=Path.home() / ".cache" / "tokentra")
    # Another port only to run a second embedded database beside the first (e.g. a fresh-machine check).
    db_port: int = LOCAL_DB_PORT
    debian_mirror: str | None = None
    environment: str = "development"

    # Envelope encryption of provider credentials where Supabase Vault is absent.
    secret_key: str | None = None

    functions_host: str = "127.0.0.1"
    functions_port: int = 54321
    supabase_url: str | None = Field(default=None, validation_alias=AliasChoices("SUPABASE_URL"))
    supabase_service_role_key: str | None = Field(
        default=None, validation_alias=AliasChoices("SUPABASE_SERVICE_ROLE_KEY")
    )
    supabase_jwt_secret: str = Field(
        default=LOCAL_JWT_SECRET, validation_alias=AliasChoices("SUPABASE_JWT_SECRET")
    )
    # Analytics query functions: projects with asymmetric JWT signing keys publish them here
    # (https://<ref>.supabase.co/auth/v1/.well-known/jwks.json); HS256 tokens keep using the secret.
    supabase_jwks_url: str | None = Field(default=None, validation_alias=AliasChoices("SUPABASE_JWKS_URL"))
    supabase_jwt_audience: str = "authenticated"
    # The dashboard: the project's anon key (Supabase Auth and Realtime in the browser), and where its
    # built files are (served at /dashboard/ by `tokentra serve`; the wheel does not carry them).
    supabase_anon_key: str | None = Field(default=None, validation_alias=AliasChoices("SUPABASE_ANON_KEY"))
    dashboard_dir: Path = Field(default=REPO_ROOT / "dashboard" / "dist")

    ingest_max_events: int = 1000
    ingest_max_bytes: int = 1024 * 1024
    retention_days: int = 400
    # API keys verified in the database are served from memory this long by endpoints that make no other
    # round trip (POST /route); changes are announced on the keys' LISTEN channel and apply at once. 0: off.
    api_key_cache_seconds: float = Field(default=10, ge=0)

    # The worker: job leases, and retries of a failed run with exponential backoff.
    worker_lease_seconds: float = Field(default=60, gt=0)
    worker_poll_seconds: float = Field(default=2, gt=0)
    worker_retry_base_seconds: float = Field(default=5, gt=0)
    worker_retry_max_seconds: float = Field(default=600, gt=0)
    worker_max_attempts: int = Field(default=5, ge=1)

    # Budgets: strict reservations expire after this TTL unless the call is reported first.
    budget_reservation_ttl_seconds: int = Field(default=600, ge=1)
    # Output ceiling reserved for a call that sets no max_tokens (genai-prices has no output limits).
    budget_default_max_output_tokens: int = Field(default=32_768, ge=1)

    # Alert delivery: backoff between attempts, HTTP timeout, SSRF exceptions (comma-separated CIDRs
    # where private, loopback or link-local targets are allowed, e.g. "127.0.0.0/8" in tests).
    alert_retry_base_seconds: float = Field(default=10, gt=0)
    alert_retry_max_seconds: float = Field(default=3600, gt=0)
    alert_http_timeout_seconds: float = Field(default=10, gt=0)
    webhook_allowed_networks: str = ""
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_starttls: bool = False
    smtp_from: str = "TokenTRA alerts <alerts@tokentra.local>"

    # The LLM layer: provider keys and endpoints under their standard names, never logged.
    openai_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(default=None, validation_alias=AliasChoices("OPENAI_BASE_URL"))
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY"))
    anthropic_base_url: str | None = Field(default=None, validation_alias=AliasChoices("ANTHROPIC_BASE_URL"))
    # The model strategy per task (TOML); default: core/tokentra_core/llm/strategy.toml.
    llm_strategy: Path = Field(default=Path(__file__).resolve().parent / "llm" / "strategy.toml")
    # Per provider request; a timeout moves to the task's fallback model.
    llm_timeout_seconds: float = Field(default=30, gt=0)
    # Where the layer posts its own usage (the customers' ingest function); default: the local functions.
    llm_ingest_url: str | None = None

    # Multi-agent consensus: which recommendations are reviewed (any one trigger suffices: a single strong
    # reason is enough to want a second opinion), how the debate ends, and when a review stops standing.
    # See README "When consensus runs".
    consensus_min_savings: float = Field(default=1000, ge=0)  # USD a month: "high savings"
    consensus_min_confidence: float = Field(default=0.7, ge=0, le=1)  # detector confidence below: reviewed
    consensus_signal_change: float = Field(default=0.1, gt=0)  # 7-day cost vs requests moves that conflict
    consensus_floor_savings: float = Field(default=10, ge=0)  # never reviewed below (a review costs cents)
    consensus_max_rounds: int = Field(default=3, ge=1, le=10)
    consensus_stop_score: float = Field(default=0.8, ge=0, le=1)
    consensus_rereview_change: float = Field(default=0.2, gt=0)  # figures moving this much: review again
    consensus_retry_hours: float = Field(default=24, ge=0)  # after a failed or stopped run
    consensus_max_per_run: int = Field(default=100, ge=1)  # recommendations per job run
    consensus_concurrency: int = Field(default=4, ge=1, le=32)  # recommendations reviewed at once
    consensus_run_timeout_seconds: float = Field(default=900, gt=0)  # a run still `running` after: abandoned

    # Grounded explanations: an LLM text whose evidence changed is rewritten after this long
    # (templates at once); explanations written per job run, at most.
    explanations_refresh_minutes: float = Field(default=60, ge=0)
    explanations_max_per_run: int = Field(default=200, ge=1)

    # The cost assistant: model turns per answer (each a recorded, capped call), and the bounds of every
    # query a tool runs as the asking user (statement timeout, rows handed to the model per query).
    assistant_max_steps: int = Field(default=6, ge=2, le=20)
    assistant_statement_timeout_ms: int = Field(default=5000, ge=100, le=60_000)
    assistant_max_rows: int = Field(default=50, ge=1, le=500)

    # The semantic cache: the embedder (`local`: all-MiniLM-L6-v2 from the `cache` extra; or
    # `openai:<embedding model>` through the LLM layer), its dimension when the model is not a known one,
    # and the similarity threshold (default: the embedder's calibrated one; an organization's
    # semantic_cache_settings.similarity_threshold wins over both).
    cache_embedder: str = "local"
    cache_embedding_dims: int | None = Field(default=None, ge=1, le=4000)
    cache_similarity_threshold: float | None = Field(default=None, ge=0.5, le=1)
    # Memory for building one scope's own HNSW graph (the worker's cache_graphs job): a graph that does not
    # fit is built on disk, many times slower. About 1 kB per entry at 384 dimensions.
    cache_graph_build_memory_mb: int = Field(default=1024, ge=64, le=65536)

    # The gateway: upstream timeouts and pool, request size, how long decrypted provider keys stay in
    # memory, the runaway-loop kill-switch (more than loop_limit calls of one prompt by one key within
    # loop_window_seconds stop the key for block_seconds; 0 turns it off), and the usage writer (it waits
    # usage_linger_seconds for more calls before each write).
    gateway_timeout_seconds: float = Field(default=600, gt=0)
    gateway_connect_timeout_seconds: float = Field(default=10, gt=0)
    gateway_max_connections: int = Field(default=1000, ge=1)
    gateway_max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    gateway_credentials_seconds: float = Field(default=60, ge=0)
    gateway_loop_limit: int = Field(default=20, ge=0)
    gateway_loop_window_seconds: int = Field(default=300, ge=1)
    gateway_block_seconds: int = Field(default=900, ge=1)
    gateway_usage_batch: int = Field(default=500, ge=1, le=1000)
    gateway_usage_attempts: int = Field(default=8, ge=1)
    gateway_usage_retry_base_seconds: float = Field(default=0.5, gt=0)
    gateway_usage_linger_seconds: float = Field(default=0.2, ge=0)
    # The usage writer process runs this much nicer than the server (0 to 19): calls in flight come first.
    gateway_usage_writer_nice: int = Field(default=10, ge=0, le=19)
    # Also lower the priority of the writer's own Postgres backends to that niceness, when they run on this
    # machine (checked by pid, process name and start time; nothing is done to a remote database's).
    gateway_usage_writer_backend_nice: bool = False
    # How long a call may wait for a database connection to check its policy (a burst on one budget queues).
    gateway_policy_wait_seconds: float = Field(default=120, gt=0)
    # Admission without a database round trip per call: keys' policy cached this long (changes are also
    # announced on a LISTEN channel, read over gateway_listen_url when the main URL is a transaction pooler),
    # counters synced every sync_seconds, and budget leases of about lease_calls calls' maximum cost, or of
    # lease_rate_seconds of calls at the rate the last lease was used when that is more (at most lease_share
    # of a budget's room), used for lease_seconds, given back after lease_idle_seconds unused.
    gateway_key_cache_seconds: float = Field(default=10, ge=0)
    gateway_listen_url: str | None = None
    gateway_sync_seconds: float = Field(default=0.2, gt=0)
    gateway_lease_calls: int = Field(default=50, ge=1)
    gateway_lease_rate_seconds: float = Field(default=2, ge=0)
    gateway_lease_share: float = Field(default=0.5, gt=0, le=1)
    gateway_lease_seconds: float = Field(default=10, gt=0)
    gateway_lease_idle_seconds: float = Field(default=2, gt=0)
    gateway_price_seconds: float = Field(default=60, ge=0)

    # The providers' own usage and cost reports (the reconciliation job): the usage bucket width, days
    # backfilled on a first sync and re-synced on every run (providers revise the last day or two), buckets
    # per page (None: the provider's maximum), retries of rate limits and server errors, the HTTP timeout,
    # how long the raw pages are kept for audit, and how many connections are synced at once.
    reconciliation_bucket_width: str = Field(default="1d", pattern="^(1h|1d)$")
    reconciliation_backfill_days: int = Field(default=31, ge=1, le=400)
    reconciliation_resync_days: int = Field(default=2, ge=0, le=31)
    reconciliation_page_buckets: int | None = Field(default=None, ge=1)
    reconciliation_max_attempts: int = Field(default=6, ge=1)
    reconciliation_retry_base_seconds: float = Field(default=1, gt=0)
    reconciliation_retry_max_seconds: float = Field(default=60, gt=0)
    reconciliation_timeout_seconds: float = Field(default=30, gt=0)
    reconciliation_raw_page_days: int = Field(default=90, ge=1)
    reconciliation_concurrency: int = Field(default=4, ge=1, le=32)

    @property
    def uses_local_db(self) -> bool:
        """True when no DATABASE_URL is given and the embedded Postgres is ours to manage."""
        return self.database_url is None

    @property
    def dsn(self) -> str:
        return self.database_url or LOCAL_DATABASE_URL.format(port=self.db_port)

    @property
    def ingest_url(self) -> str:
        """The ingest function the LLM layer records TokenTRA's own calls through."""
        return self.llm_ingest_url or f"http://{self.functions_host}:{self.functions_port}/functions/v1/ingest"

    def check_production(self) -> None:
        """Refuse development defaults where real data lives."""
        if self.environment == "development":
            return
        if self.supabase_jwt_secret == LOCAL_JWT_SECRET:
            raise RuntimeError("SUPABASE_JWT_SECRET is the local default; set the project's secret")
        if not self.secret_key:
            raise RuntimeError("TOKENTRA_SECRET_KEY must be set outside development")


@lru_cache
def get_settings() -> Settings:
    return Settings()
