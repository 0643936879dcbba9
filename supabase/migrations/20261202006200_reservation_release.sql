-- A reservation whose call never reached a provider (the gateway refused it after reserving, or every
-- upstream attempt failed before a byte of answer) is given back at once instead of holding its budget
-- until the TTL sweep.
create function private.release_budget_reservation(org uuid, reservation uuid) returns boolean
language sql volatile set search_path = '' as $$
  with released as (
    update private.budget_reservations r set status = 'released', closed_at = now(), actual_cost_usd = 0
     where r.id = reservation and r.org_id = org and r.status = 'open'
    returning r.id
  ), freed as (
    delete from private.budget_holds h using released x where h.reservation_id = x.id
  )
  select exists (select 1 from released)
$$;
comment on function private.release_budget_reservation(uuid, uuid) is
  'Release an open reservation of org whose call cost nothing (never reached a provider); true when released.';
revoke all on function private.release_budget_reservation(uuid, uuid) from public;
grant execute on function private.release_budget_reservation(uuid, uuid) to service_role;
