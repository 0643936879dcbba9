-- Virtual keys: created with their policy and own budget, admitted by hash only while valid, rotated
-- (the old secret stops working), revoked; rpm and tpm limits and the runaway-loop kill-switch.
begin;
select plan(16);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000006f001', 'vk');
create temp table vk as select * from private.new_virtual_key('00000000-0000-0000-0000-00000006f001', 'agent',
  team => 'search', end_user_id => 'u-1', budget_amount => 5, budget_period => 'daily', rpm => 2, tpm => 100,
  models => array['gpt-4o-mini']);
create function pg_temp.admit(k text, prompt text default null)
returns table (key_id uuid, verdict text, retry_after integer) language sql as $$
  select a.key_id, a.verdict, a.retry_after
    from private.gateway_admit(extensions.digest(k, 'sha256'), prompt, 3, '5 minutes', '10 minutes') a
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

-- admission: valid key with its policy; an unknown key gives no row
select results_eq($$ select a.team, a.end_user_id, a.allowed_models, a.verdict
                      from private.gateway_admit(extensions.digest((select key from vk), 'sha256'), null, 3,
                                                 '5 minutes', '10 minutes') a $$,
                  $$ values ('search', 'u-1', array['gpt-4o-mini'], 'ok') $$, 'a valid key is admitted with its policy');
select is_empty($$ select * from pg_temp.admit('tt_vk_unknown') $$, 'an unknown key is not admitted');
-- rpm 2: the second call passes, the third is refused with a wait
select is((select verdict from pg_temp.admit((select key from vk))), 'ok', 'the second call of the minute passes');
select results_eq($$ select verdict, retry_after between 1 and 60 from pg_temp.admit((select key from vk)) $$,
                  $$ values ('rpm', true) $$, 'the third is over rpm, with a retry-after');
-- tpm 100: once 100 tokens are recorded this minute, calls wait
delete from private.gateway_rate_windows where key_id = (select id from vk);
select private.gateway_count_tokens(jsonb_build_array(jsonb_build_object('key_id', (select id from vk), 'tokens', 100)));
select is((select verdict from pg_temp.admit((select key from vk))), 'tpm', 'over tpm once the minute''s tokens are used');

-- runaway loop: more than 3 calls of one prompt in the window block the key
delete from private.gateway_rate_windows where key_id = (select id from vk);
update private.virtual_keys set rpm = null, tpm = null where key_id = (select id from vk);
select pg_temp.admit((select key from vk), 'h1') from generate_series(1, 3);
select results_eq($$ select verdict, retry_after from pg_temp.admit((select key from vk), 'h1') $$,
                  $$ values ('loop', 600) $$, 'the fourth identical prompt trips the kill-switch');
select is((select verdict from pg_temp.admit((select key from vk), 'h2')), 'blocked', 'the blocked key is refused for any prompt');
delete from private.gateway_key_blocks where key_id = (select id from vk);

-- rotation: same id, the old secret stops working, the new one works
create temp table rotated as select * from private.rotate_virtual_key('00000000-0000-0000-0000-00000006f001', (select id from vk));
select is_empty($$ select * from pg_temp.admit((select key from vk)) $$, 'the old secret no longer works');
select is((select key_id from pg_temp.admit((select key from rotated))), (select id from vk), 'the new secret is the same key');
-- revoked and expired keys are not admitted
update public.api_keys set expires_at = now() - interval '1 second' where id = (select id from vk);
select is_empty($$ select * from pg_temp.admit((select key from rotated)) $$, 'an expired key is not admitted');
update public.api_keys set expires_at = null where id = (select id from vk);
select public.revoke_virtual_key('00000000-0000-0000-0000-00000006f001', (select id from vk));
select is_empty($$ select * from pg_temp.admit((select key from rotated)) $$, 'a revoked key is not admitted');

select * from finish();
rollback;
