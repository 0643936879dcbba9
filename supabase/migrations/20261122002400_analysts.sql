-- Analysts: read-only Postgres login roles, one per organization, for SQL over the analytics views.
--
-- An analyst role is not a member of `authenticated`: that role trusts request.jwt.claims, which any
-- SQL session can set, so a login holding it could impersonate any user. Analysts get a group role of
-- their own, and policies `to tokentra_analyst` keyed on session_user (which a session cannot change)
-- through the private.analyst_roles mapping.

-- ---------------------------------------------------------------- roles
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'tokentra_analyst') then
    create role tokentra_analyst nologin noinherit;
  end if;
end
$$;
comment on role tokentra_analyst is 'Group role of analysts'' login roles: read-only SQL on the analytics views.';

create table private.analyst_roles (
  role_name text primary key,
  org_id uuid not null references public.organizations (id) on delete cascade,
  statement_timeout interval not null default interval '60 seconds'
    constraint statement_timeout_is_between_1s_and_1h
    check (statement_timeout between interval '1 second' and interval '1 hour'),
  created_at timestamptz not null default now()
);
comment on table private.analyst_roles is 'Which organization each analyst login role sees.';
alter table private.analyst_roles enable row level security;
create index analyst_roles_org_id_idx on private.analyst_roles (org_id);

-- The organizations the session's analyst login may read. session_user, not current_user: SET ROLE
-- cannot change it, so an analyst cannot borrow another mapping.
create function private.analyst_org_ids() returns uuid[]
language sql stable security definer set search_path = '' as $$
  select coalesce(array_agg(a.org_id), '{}') from private.analyst_roles a where a.role_name = session_user
$$;
comment on function private.analyst_org_ids() is 'Organizations visible to the analyst login of this session (empty otherwise).';
revoke all on function private.analyst_org_ids() from public;
grant execute on function private.analyst_org_ids() to tokentra_analyst, authenticated, service_role;
grant execute on function private.rollups_are_continuous_aggregates() to tokentra_analyst;

-- ---------------------------------------------------------------- what analysts may read
grant usage on schema analytics, private, public, extensions to tokentra_analyst;
grant select on public.usage_records, private.usage_rollup_hourly, private.usage_rollup_daily,
  private.usage_rollup_deltas, private.end_user_rollup_daily, private.end_user_rollup_monthly,
  private.end_user_rollup_deltas, private.usage_rollup_state, private.model_prices to tokentra_analyst;
grant execute on function analytics.latency_slot_bounds(), analytics.latency_slot(integer),
  analytics.latency_slot_value(integer), analytics.latency_quantile_slot(bigint[], float8),
  analytics.latency_percentile(bigint[], float8), analytics.latency_slot_counts(bigint[]),
  analytics.latency_histogram(integer),
  analytics.merge_latency(bigint[]), private.histogram_put(bigint[], integer, bigint),
  private.histogram_add(bigint[], bigint[]), private.histogram_put_latency(bigint[], integer),
  private.histogram_of(integer, bigint) to tokentra_analyst;

do $$
declare
  t text;
begin
  foreach t in array array['public.usage_records', 'private.usage_rollup_hourly', 'private.usage_rollup_daily',
                           'private.usage_rollup_deltas', 'private.end_user_rollup_daily',
                           'private.end_user_rollup_monthly', 'private.end_user_rollup_deltas'] loop
    execute format('create policy "analysts read their organization''s usage" on %s for select to tokentra_analyst '
                   'using (org_id = any ((select private.analyst_org_ids())::uuid[]))', t);
  end loop;
end
$$;
create policy "analysts read the rollup watermark" on private.usage_rollup_state
  for select to tokentra_analyst using (true);
create policy "analysts read prices" on private.model_prices for select to tokentra_analyst using (true);

-- ---------------------------------------------------------------- lifecycle
-- Create a login role for one organization; the password is generated here and returned once (it is
-- never logged: statements run inside a function are not logged by log_statement).
create function private.create_analyst_role(org uuid, timeout interval default interval '60 seconds')
returns table (role_name text, password text)
language plpgsql volatile set search_path = '' as $$
declare
  name text := 'tokentra_analyst_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12);
  secret text := translate(encode(extensions.gen_random_bytes(24), 'base64'), '+/=', '-_');
begin
  if not exists (select 1 from public.organizations o where o.id = org) then
    raise exception 'no organization %', org using errcode = 'P0002';
  end if;
  insert into private.analyst_roles (role_name, org_id, statement_timeout) values (name, org, timeout);
  execute format('create role %I login inherit in role tokentra_analyst password %L connection limit 5', name, secret);
  -- Defaults the session starts with. A session could change them, so the watchdog below enforces the
  -- timeout regardless, and RLS (not read-only mode) is what keeps every write out.
  execute format('alter role %I set statement_timeout = %L', name, (extract(epoch from timeout) * 1000)::bigint);
  execute format('alter role %I set idle_in_transaction_session_timeout = %L', name, '300000');
  execute format('alter role %I set default_transaction_read_only = on', name);
  execute format('alter role %I set search_path = analytics, extensions', name);
  return query select name, secret;
end
$$;
comment on function private.create_analyst_role(uuid, interval) is
  'Create a read-only analyst login role that sees one organization; returns its name and password (once).';
revoke all on function private.create_analyst_role(uuid, interval) from public;

create function private.drop_analyst_role(name text) returns boolean
language plpgsql volatile set search_path = '' as $$
begin
  if not exists (select 1 from private.analyst_roles a where a.role_name = name) then
    return false;
  end if;
  perform pg_terminate_backend(a.pid) from pg_catalog.pg_stat_activity a where a.usename = name;
  delete from private.analyst_roles a where a.role_name = name;
  execute format('drop role if exists %I', name);
  return true;
end
$$;
comment on function private.drop_analyst_role(text) is
  'End an analyst role''s sessions and drop it; false when the name is not an analyst role.';
revoke all on function private.drop_analyst_role(text) from public;

-- ---------------------------------------------------------------- timeout watchdog
-- statement_timeout is only a session default; cancel anything an analyst runs past its limit plus a
-- grace period (the watchdog runs every minute, so a minute by default).
create function private.cancel_overrunning_analyst_queries(grace interval default interval '1 minute')
returns integer
language plpgsql volatile set search_path = '' as $$
declare
  target record;
  n integer := 0;
begin
  -- Choose the backends first, cancel second: a pg_cancel_backend() in a WHERE clause may be evaluated
  -- before the join that limits it to analysts, and cancel anyone.
  for target in
    select s.pid from pg_catalog.pg_stat_activity s
    join private.analyst_roles a on a.role_name = s.usename
    where s.state = 'active' and s.query_start < now() - a.statement_timeout - grace
      and s.pid <> pg_catalog.pg_backend_pid()
  loop
    if pg_catalog.pg_cancel_backend(target.pid) then
      n := n + 1;
    end if;
  end loop;
  return n;
end
$$;
comment on function private.cancel_overrunning_analyst_queries(interval) is
  'Cancel analyst queries running longer than their role''s statement timeout plus grace; returns how many.';
revoke all on function private.cancel_overrunning_analyst_queries(interval) from public;

insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-analyst-timeouts', '* * * * *', 'select private.cancel_overrunning_analyst_queries()',
   'Cancel analyst queries that outrun their statement timeout.');
select private.schedule_periodic_jobs();
