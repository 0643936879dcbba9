-- Usage records: one row per LLM call, time-partitioned by day.
-- Which kind of partitioning is detected, not assumed: with timescaledb under the Timescale license
-- the table is a hypertable; everywhere else (Supabase, Debian's Apache build) it is partitioned
-- natively and pg_partman keeps partitions ahead and drops those past retention.

create table private.usage_layout (
  singleton boolean primary key default true constraint only_one_row check (singleton),
  kind text not null constraint kind_is_known check (kind in ('hypertable', 'partman')),
  reason text not null,
  retention interval not null default interval '400 days'
);
alter table private.usage_layout enable row level security;
comment on table private.usage_layout is 'How public.usage_records is partitioned here, and why.';

do $$
declare
  columns text := $cols$
    id bigint generated always as identity,
    org_id uuid not null,
    occurred_at timestamptz not null,
    received_at timestamptz not null default now(),
    request_id text not null,
    source text not null default 'sdk',
    provider text not null,
    model text not null,
    price_model text,
    endpoint text,
    input_tokens bigint not null default 0 constraint input_tokens_is_not_negative check (input_tokens >= 0),
    output_tokens bigint not null default 0 constraint output_tokens_is_not_negative check (output_tokens >= 0),
    cached_tokens bigint not null default 0 constraint cached_tokens_are_part_of_input
      check (cached_tokens >= 0 and cache_write_tokens >= 0 and cached_tokens + cache_write_tokens <= input_tokens),
    cache_write_tokens bigint not null default 0,
    reasoning_tokens bigint not null default 0 constraint reasoning_tokens_are_part_of_output
      check (reasoning_tokens >= 0 and reasoning_tokens <= output_tokens),
    service_tier text,
    cost_usd numeric(20, 12),
    client_cost_usd numeric(20, 12),
    currency text not null default 'USD',
    price_id bigint,
    priced boolean not null default false,
    latency_ms integer,
    time_to_first_token_ms integer,
    status text not null default 'success' constraint status_is_known
      check (status in ('success', 'error', 'timeout', 'rate_limited', 'cancelled')),
    error_code text,
    retry_count integer not null default 0,
    is_timeout boolean not null default false,
    is_rate_limited boolean not null default false,
    is_streaming boolean not null default false,
    routed_from_model text,
    cache_hit boolean not null default false,
    prompt_hash text,
    system_prompt_hash text,
    task_type text,
    team text,
    project text,
    feature text,
    end_user_id text,
    api_key_id uuid,
    project_id uuid,
    metadata jsonb not null default '{}',
    raw_usage jsonb,
    content_hash bytea,
    primary key (id, occurred_at)
  $cols$;
  licensed boolean := exists (select 1 from pg_extension where extname = 'timescaledb')
                      and current_setting('timescaledb.license', true) = 'timescale';
begin
  if licensed then
    execute format('create table public.usage_records (%s)', columns);
    perform extensions.create_hypertable('public.usage_records', 'occurred_at',
                                         chunk_time_interval => interval '1 day');
    insert into private.usage_layout (kind, reason)
    values ('hypertable', 'timescaledb runs with the Timescale license: hypertable, continuous aggregates');
  else
    execute format('create table public.usage_records (%s) partition by range (occurred_at)', columns);
    -- Partitions from 35 days back to a week ahead; older backfills land in the default partition
    -- and maintenance moves them into day partitions of their own.
    perform partman.create_parent(
      p_parent_table := 'public.usage_records', p_control := 'occurred_at', p_interval := '1 day',
      p_premake := 7, p_start_partition := to_char(now() - interval '35 days', 'YYYY-MM-DD'));
    update partman.part_config
       set retention = '400 days', retention_keep_table = false, infinite_time_partitions = true
     where parent_table = 'public.usage_records';
    insert into private.usage_layout (kind, reason)
    values ('partman', case
      when exists (select 1 from pg_extension where extname = 'timescaledb')
        then 'timescaledb is the Apache edition (no continuous aggregates): native partitions + pg_partman'
      else 'timescaledb is absent: native partitions by day + pg_partman' end);
  end if;
end
$$;

comment on table public.usage_records is 'One row per LLM call, as reported by the SDK or OTLP, priced at insert.';
comment on column public.usage_records.input_tokens is 'All input tokens, cache reads and writes included.';
comment on column public.usage_records.output_tokens is 'All output tokens, reasoning included.';
comment on column public.usage_records.cost_usd is 'Our cost from the price effective at occurred_at; null while unpriced.';
comment on column public.usage_records.client_cost_usd is 'The cost the client says it was billed, kept beside ours.';
-- No foreign key to organizations: it costs a lookup per row at 1,000 rows a batch, and org_id is
-- always set by the ingest function from the authenticated key. Deleting an organization deletes its
-- usage through the trigger below instead.
create function private.delete_organization_usage() returns trigger
language plpgsql volatile set search_path = '' as $$
begin
  delete from public.usage_records where org_id = old.id;
  delete from private.usage_request_ids where org_id = old.id;
  return old;
end
$$;
comment on function private.delete_organization_usage() is
  'Trigger: remove an organization''s usage rows and request-id claims when it is deleted.';
create trigger delete_organization_usage after delete on public.organizations
  for each row execute function private.delete_organization_usage();

create index usage_records_org_time_idx on public.usage_records (org_id, occurred_at);
create index usage_records_unpriced_idx on public.usage_records (org_id, occurred_at) where not priced;

alter table public.usage_records enable row level security;
create policy "members with usage.read read their organizations' usage" on public.usage_records
  for select to authenticated using (org_id = any ((select private.org_ids_with('usage.read'))::uuid[]));
grant select on public.usage_records to authenticated;
-- Usage is written by the ingest function only (service role); users never write it.

-- Exactly-once: a partitioned table's unique keys must include occurred_at, so a retry whose timestamp
-- differs would slip past a unique index on the table. The claim lives here instead, written in the
-- same transaction as the usage row, keyed by (org_id, request_id) alone.
create table private.usage_request_ids (
  org_id uuid not null,
  request_id text not null,
  occurred_at timestamptz not null,
  content_hash bytea,
  claimed_at timestamptz not null default now(),
  primary key (org_id, request_id)
);
alter table private.usage_request_ids enable row level security;
create index usage_request_ids_claimed_at_idx on private.usage_request_ids (claimed_at);
comment on table private.usage_request_ids is 'One claim per (organization, request id): the exactly-once guard.';
