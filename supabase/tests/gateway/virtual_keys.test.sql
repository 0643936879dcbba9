-- Virtual keys: created with their policy and own budget, found by hash (private.gateway_key, what gateway
-- processes load) only while valid, rotated (the old secret stops working), revoked, expired; a block set by
-- the runaway-loop kill-switch travels with the key. The rpm, tpm and loop counting itself runs in the
-- gateway process and is tested through the gateway.
begin;
select plan(13);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000006f001', 'vk');
create temp table vk as select * from private.new_virtual_key('00000000-0000-0000-0000-00000006f001', 'agent',
  team => 'search', end_user_id => 'u-1', budget_amount => 5, budget_period => 'daily', rpm => 2, tpm => 100,
  models => array['gpt-4o-mini']);
create function pg_temp.admit(k text)
returns table (key_id uuid, team text, end_user_id text, allowed_models text[], rpm integer, tpm integer,
               blocked_until timestamptz) language sql as $$
  select g.key_id, g.team, g.end_user_id, g.allowed_models, g.rpm, g.tpm, g.blocked_until
    from private.gateway_key(extensions.digest(k, 'sha256')) g
$$;

-- the key is shown once and stored as a hash with scope gateway
select ok((select key from vk) ~ '^tt_vk_[A-Za-z0-9_-]{43}$', 'the key has the virtual key shape');
select results_eq($$ select scopes, key_hash = extensions.digest((select key from vk), 'sha256') from public.api_keys
                      where id = (select id from vk) $$,
                  $$ values (array['gateway'], true) $$, 'stored as its SHA-256 hash, scope gateway');
-- its own budget is an ordinary hard budget scoped to the key
select results_eq($$ select amount, period, scope_type, scope_id, hard_limit from public.budgets
                      where id = (select budget_id from vk) $$,
                  $$ values (5.00::numeric(14,2), 'daily', 'api_key', (select id::text from vk), true) $$,
                  'the key''s budget covers the key');
-- bad input names the field
select throws_ok($$ select private.new_virtual_key('00000000-0000-0000-0000-00000006f001', budget_period => 'hourly') $$,
                 '22023', 'period: must be daily, weekly or monthly', 'an unknown period is refused by name');
select throws_ok($$ select private.new_virtual_key('00000000-0000-0000-0000-00000006f001', expires => now() - interval '1 day') $$,
                 '22023', 'expires: must be in the future', 'an expiry in the past is refused');

-- a valid key is found with its policy; an unknown key gives no row
select results_eq($$ select team, end_user_id, allowed_models, rpm, tpm, blocked_until from pg_temp.admit((select key from vk)) $$,
                  $$ values ('search', 'u-1', array['gpt-4o-mini'], 2, 100, null::timestamptz) $$,
                  'a valid key is found with its policy and limits');
select is_empty($$ select * from pg_temp.admit('tt_vk_unknown') $$, 'an unknown key is not found');
-- the kill-switch's block travels with the key until it ends or is lifted
select private.gateway_block_key((select id from vk), 'h1', '10 minutes');
select ok((select blocked_until between now() + interval '9 minutes' and now() + interval '11 minutes'
           from pg_temp.admit((select key from vk))), 'a blocked key is found with the end of its block');
update private.gateway_key_blocks set blocked_until = now() - interval '1 second' where key_id = (select id from vk);
select is((select blocked_until from pg_temp.admit((select key from vk))), null, 'an ended block no longer shows');
delete from private.gateway_key_blocks where key_id = (select id from vk);

-- rotation: same id, the old secret stops working, the new one works
create temp table rotated as select * from private.rotate_virtual_key('00000000-0000-0000-0000-00000006f001', (select id from vk));
select is_empty($$ select * from pg_temp.admit((select key from vk)) $$, 'the old secret no longer works');
select is((select key_id from pg_temp.admit((select key from rotated))), (select id from vk), 'the new secret is the same key');
-- revoked and expired keys are not found
update public.api_keys set expires_at = now() - interval '1 second' where id = (select id from vk);
select is_empty($$ select * from pg_temp.admit((select key from rotated)) $$, 'an expired key is not found');
update public.api_keys set expires_at = null where id = (select id from vk);
select public.revoke_virtual_key('00000000-0000-0000-0000-00000006f001', (select id from vk));
select is_empty($$ select * from pg_temp.admit((select key from rotated)) $$, 'a revoked key is not found');

select * from finish();
rollback;
