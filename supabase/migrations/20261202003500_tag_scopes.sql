-- Teams and projects from the tags usage carries. The SDK tags calls with team and project names; a
-- budget or an alert rule names its scope the same way. A name seen in usage becomes a `teams` or
-- `projects` row, so `scope_id` may be that name: the periodic job adopts new names within a minute or
-- two, and a budget naming one the job has not reached yet adopts it itself. Names never seen are
-- created explicitly (POST /functions/v1/teams, `tokentra teams create`), so a typo in a budget is
-- still refused rather than becoming a scope that never matches.

-- ---------------------------------------------------------------- state
create table private.tag_scope_state (
  singleton boolean primary key default true constraint only_one_row check (singleton),
  seen_through timestamptz not null default '-infinity'
);
comment on table private.tag_scope_state is
  'Usage hours before seen_through have had their team and project names adopted (one hour is re-read).';
insert into private.tag_scope_state default values;
alter table private.tag_scope_state enable row level security;

-- ---------------------------------------------------------------- adoption
-- New team and project names of recent usage become rows. Reads the hourly buckets (rollups plus the
-- raw tail) from an hour before the last run, so an hour still filling is read again; a late event
-- older than that is adopted when a budget names it (adopt_budget_tag_scope below).
create function private.adopt_tag_scopes() returns text
language plpgsql volatile set search_path = '' as $$
declare
  since timestamptz;
  upto timestamptz := now();
  teams_added integer;
  projects_added integer;
begin
  select s.seen_through - interval '1 hour' into since from private.tag_scope_state s for update;
  with seen as (
    select distinct v.org_id, btrim(v.team) as name from analytics.usage_hourly v
     where v.bucket >= since and btrim(v.team) <> ''
  ), added as (
    insert into public.teams (org_id, name) select s.org_id, s.name from seen s
    on conflict on constraint team_name_is_unique_in_organization do nothing
    returning 1
  )
  select count(*) into teams_added from added;
  with seen as (
    select distinct v.org_id, btrim(v.project) as name from analytics.usage_hourly v
     where v.bucket >= since and btrim(v.project) <> ''
  ), added as (
    insert into public.projects (org_id, name) select s.org_id, s.name from seen s
    on conflict on constraint project_name_is_unique_in_organization do nothing
    returning 1
  )
  select count(*) into projects_added from added;
  update private.tag_scope_state set seen_through = upto;
  return format('%s team(s) and %s project(s) adopted from usage tags', teams_added, projects_added);
end
$$;
comment on function private.adopt_tag_scopes() is
  'Create teams and projects rows for the team and project names usage carries (recent hours); says how many.';
revoke all on function private.adopt_tag_scopes() from public;
grant execute on function private.adopt_tag_scopes() to service_role;

-- A team or project budget naming a scope with no row yet: when the name is in the organization's
-- usage, the row is created here, before check_budget_scope (triggers fire in name order) resolves the
-- name to its id. Runs as the caller, so RLS decides whether they may create it (admins may).
create function private.adopt_budget_tag_scope() returns trigger
language plpgsql volatile set search_path = '' as $$
declare
  tag text := btrim(new.scope_id);
begin
  if new.scope_type not in ('team', 'project') or coalesce(tag, '') = '' then
    return new;
  end if;
  if new.scope_type = 'team' then
    if not exists (select 1 from public.teams t where t.org_id = new.org_id and (t.id::text = tag or t.name = tag))
       and exists (select 1 from analytics.usage_daily v where v.org_id = new.org_id and v.team = tag) then
      insert into public.teams (org_id, name) values (new.org_id, tag)
      on conflict on constraint team_name_is_unique_in_organization do nothing;
    end if;
  elsif not exists (select 1 from public.projects p
                     where p.org_id = new.org_id and (p.id::text = tag or p.name = tag))
        and exists (select 1 from analytics.usage_daily v where v.org_id = new.org_id and v.project = tag) then
    insert into public.projects (org_id, name) values (new.org_id, tag)
    on conflict on constraint project_name_is_unique_in_organization do nothing;
  end if;
  return new;
end
$$;
comment on function private.adopt_budget_tag_scope() is
  'Trigger: a team or project budget naming a tag value seen in the organization''s usage creates its row.';
create trigger adopt_budget_tag_scope before insert or update of scope_type, scope_id, org_id
  on public.budgets for each row execute function private.adopt_budget_tag_scope();

-- ---------------------------------------------------------------- schedule
insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-tag-scopes', '* * * * *', 'select private.adopt_tag_scopes()',
   'Teams and projects: create rows for the names usage tags carry, so budgets and alerts can name them.');
select private.schedule_periodic_jobs();
