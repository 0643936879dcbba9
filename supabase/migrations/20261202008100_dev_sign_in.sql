-- Local development sign-in: where no Supabase Auth server runs, `tokentra users login EMAIL` issues a
-- one-time code (a link to the dashboard) that the functions exchange once for a user JWT. Only a hash
-- of the code is kept; codes expire within minutes and are spent on first use. The service issues and
-- redeems them (the CLI and the functions refuse to on a real Supabase project); users never reach
-- this table.
create table private.dev_sign_in_codes (
  code_hash bytea primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  constraint expiry_is_after_creation check (expires_at > created_at)
);
comment on table private.dev_sign_in_codes is
  'One-time local sign-in codes (hash only), issued by `tokentra users login`, spent by the dashboard.';
alter table private.dev_sign_in_codes enable row level security;
create index dev_sign_in_codes_user_id_idx on private.dev_sign_in_codes (user_id);

create function private.issue_dev_sign_in_code(member uuid, ttl interval default interval '10 minutes')
returns text
language plpgsql volatile set search_path = '' as $$
declare
  code text := translate(rtrim(encode(extensions.gen_random_bytes(24), 'base64'), '='), '+/', '-_');
begin
  if ttl <= interval '0' or ttl > interval '1 day' then
    raise exception 'ttl: between a second and a day' using errcode = '22023';
  end if;
  delete from private.dev_sign_in_codes c where c.expires_at < now() - interval '1 day';
  insert into private.dev_sign_in_codes (code_hash, user_id, expires_at)
  values (extensions.digest(code, 'sha256'), member, now() + ttl);
  return code;
end
$$;
comment on function private.issue_dev_sign_in_code(uuid, interval) is
  'Issue a one-time sign-in code for a user (local development only); returns the code, keeps its hash.';
revoke all on function private.issue_dev_sign_in_code(uuid, interval) from public;
grant execute on function private.issue_dev_sign_in_code(uuid, interval) to service_role;

create function private.redeem_dev_sign_in_code(code text)
returns table (user_id uuid, email text)
language sql volatile set search_path = '' as $$
  with spent as (
    update private.dev_sign_in_codes c set used_at = now()
     where c.code_hash = extensions.digest(code, 'sha256') and c.used_at is null and c.expires_at > now()
    returning c.user_id
  )
  select s.user_id, u.email::text from spent s join auth.users u on u.id = s.user_id
$$;
comment on function private.redeem_dev_sign_in_code(text) is
  'Spend a one-time sign-in code: its user, or no row when unknown, expired or already used.';
revoke all on function private.redeem_dev_sign_in_code(text) from public;
grant execute on function private.redeem_dev_sign_in_code(text) to service_role;
