-- Budget validation and who reads budgets. The table is in 20261122000800; this file adds what its
-- constraints cannot say: that a scope id names something of the budget's own organization.

-- Members read budgets (issue 5: "CRUD for admins, read for members"); admins and owners already write.
insert into private.role_permissions (role, permission) values ('member', 'budgets.read')
on conflict do nothing;

-- Whether genai-prices knows a model name (under any provider). Definer: the name-resolution cache is
-- not readable by users, though prices are public knowledge.
create function private.is_priced_model(model text) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from private.price_model_names n where n.name = lower(btrim(model)))
      or exists (select 1 from private.price_models m where lower(m.model_id) = lower(btrim(model)))
$$;
comment on function private.is_priced_model(text) is 'True when genai-prices knows the model name under some provider.';
revoke all on function private.is_priced_model(text) from public;
grant execute on function private.is_priced_model(text) to authenticated, service_role;

-- Scope ids are checked against the organization's own rows, and team or project names are stored as
-- their ids so a rename never detaches a budget. Errors name the column, for the API to report.
create function private.check_budget_scope() returns trigger
language plpgsql volatile set search_path = '' as $$
declare
  found_id uuid;
begin
  new.alert_thresholds := array(select distinct t from unnest(new.alert_thresholds) t order by t);
  if new.scope_type = 'organization' then
    return new;
  end if;
  new.scope_id := nullif(btrim(new.scope_id), '');
  if new.scope_id is null then
    raise exception 'scope_id: required for scope_type %', new.scope_type using errcode = '23502', column = 'scope_id';
  end if;
  case new.scope_type
    when 'team' then
      select t.id into found_id from public.teams t
       where t.org_id = new.org_id and (t.id::text = new.scope_id or t.name = new.scope_id)
       order by t.id::text = new.scope_id desc limit 1;
    when 'project' then
      select p.id into found_id from public.projects p
       where p.org_id = new.org_id and (p.id::text = new.scope_id or p.name = new.scope_id)
       order by p.id::text = new.scope_id desc limit 1;
    when 'api_key' then
      select k.id into found_id from public.api_keys k where k.org_id = new.org_id and k.id::text = new.scope_id;
    when 'model' then
      -- A model genai-prices knows, or one this organization has sent in the last 35 days.
      if private.is_priced_model(new.scope_id)
         or exists (select 1 from analytics.usage_daily v
                     where v.org_id = new.org_id and v.model = new.scope_id and v.bucket > now() - interval '35 days') then
        return new;
      end if;
      raise exception 'scope_id: unknown model %', new.scope_id using errcode = '23503', column = 'scope_id';
    else
      -- feature and user: free-form tags the SDK sends; any non-blank value up to 200 characters.
      if length(new.scope_id) > 200 then
        raise exception 'scope_id: longer than 200 characters' using errcode = '22001', column = 'scope_id';
      end if;
      return new;
  end case;
  if found_id is null then
    raise exception 'scope_id: no % % in this organization', replace(new.scope_type, '_', ' '), new.scope_id
      using errcode = '23503', column = 'scope_id';
  end if;
  new.scope_id := found_id::text;
  return new;
end
$$;
comment on function private.check_budget_scope() is
  'Trigger: a budget''s scope_id must name a team, project, API key or model of its organization '
  '(team/project names are stored as ids); thresholds are kept sorted and distinct.';
create trigger check_budget_scope before insert or update of scope_type, scope_id, alert_thresholds, org_id
  on public.budgets for each row execute function private.check_budget_scope();

-- The currency budgets are kept in is the currency costs are computed in.
alter table public.budgets add constraint currency_is_usd check (currency = 'USD');
