-- A weekly report restates usage, anomalies, budgets at risk and recommendations (in its prose and its
-- evidence), so it is read only by members whose role reads all four: reading it must never show what
-- the role could not read directly. The whole report is gated rather than stripped per role, because the
-- prose weaves the sections together and cannot be split safely after it is written. Today owners,
-- admins, billing and members read reports; viewers do not. The owners and admins it is emailed to read
-- all four, which the tests check.

-- ---------------------------------------------------------------- who reads reports
create function private.report_reader_org_ids() returns uuid[]
language sql stable security definer set search_path = '' as $$
  select coalesce(array_agg(o), '{}')
  from unnest(private.org_ids_with('usage.read')) o
  where o = any (private.org_ids_with('anomalies.read'))
    and o = any (private.org_ids_with('budgets.read'))
    and o = any (private.org_ids_with('recommendations.read'))
$$;
comment on function private.report_reader_org_ids() is
  'Organizations where the current user''s role reads usage, anomalies, budgets and recommendations: '
  'the weekly reports they may read.';
revoke all on function private.report_reader_org_ids() from public;
grant execute on function private.report_reader_org_ids() to authenticated, service_role;

-- report_list and report_of run as the caller, so this policy gates them too.
drop policy "members with organization.read read rows of their organizations" on public.reports;
create policy "members who read usage, anomalies, budgets and recommendations read reports" on public.reports
  for select to authenticated using (org_id = any ((select private.report_reader_org_ids())::uuid[]));
