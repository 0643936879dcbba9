-- Provider connections: an optional base URL without credentials in it, an optional admin key sealed in a
-- private table no user role reaches, removed with its connection; the service reads the connection a
-- provider's calls go through, and the connections that have an admin key.
begin;
select plan(10);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-00000006e001', 'endpoints'), ('00000000-0000-0000-0000-00000006e002', 'other');
insert into public.provider_connections (id, org_id, provider, name, key_hint, ciphertext, wrapped_key, base_url)
values ('00000000-0000-0000-0000-00000006ec01', '00000000-0000-0000-0000-00000006e001', 'openai', 'default', 'abcd',
        '\x01', '\x02', 'http://127.0.0.1:9999/v1'),
       ('00000000-0000-0000-0000-00000006ec02', '00000000-0000-0000-0000-00000006e001', 'openai', 'backup', 'efgh',
        '\x03', '\x04', null);

-- a base URL is http(s) and carries no credentials
select throws_ok($$ update public.provider_connections set base_url = 'https://user:pw@api.example.com/v1'
                    where id = '00000000-0000-0000-0000-00000006ec01' $$, '23514', null,
                 'a base URL with credentials in it is refused');
select throws_ok($$ update public.provider_connections set base_url = 'ftp://api.example.com'
                    where id = '00000000-0000-0000-0000-00000006ec01' $$, '23514', null,
                 'a base URL that is not http(s) is refused');

-- the admin key is sealed one way or the other, and belongs to its connection's organization
select throws_ok($$ insert into private.provider_admin_keys (connection_id, org_id, key_hint)
                    values ('00000000-0000-0000-0000-00000006ec01', '00000000-0000-0000-0000-00000006e001', 'zzzz') $$,
                 '23514', null, 'an admin key with no sealed secret is refused');
select throws_ok($$ insert into private.provider_admin_keys (connection_id, org_id, key_hint, ciphertext, wrapped_key)
                    values ('00000000-0000-0000-0000-00000006ec01', '00000000-0000-0000-0000-00000006e002', 'zzzz',
                            '\x05', '\x06') $$,
                 '23514', null, 'an admin key of another organization than its connection''s is refused');
insert into private.provider_admin_keys (connection_id, org_id, key_hint, ciphertext, wrapped_key)
values ('00000000-0000-0000-0000-00000006ec01', '00000000-0000-0000-0000-00000006e001', 'wxyz', '\x05', '\x06');

-- the service reads the default connection first, with its base URL
select results_eq($$ select connection_id, base_url from private.provider_connection_for(
                       '00000000-0000-0000-0000-00000006e001', 'OpenAI') $$,
                  $$ values ('00000000-0000-0000-0000-00000006ec01'::uuid, 'http://127.0.0.1:9999/v1') $$,
                  'the default connection is the one calls go through');
-- a disabled default gives way to the next one
update public.provider_connections set enabled = false where id = '00000000-0000-0000-0000-00000006ec01';
select results_eq($$ select connection_id from private.provider_connection_for(
                       '00000000-0000-0000-0000-00000006e001', 'openai') $$,
                  $$ values ('00000000-0000-0000-0000-00000006ec02'::uuid) $$,
                  'a disabled connection is skipped');
update public.provider_connections set enabled = true where id = '00000000-0000-0000-0000-00000006ec01';
select results_eq($$ select connection_id, key_hint from private.provider_admin_connections()
                      where org_id = '00000000-0000-0000-0000-00000006e001' $$,
                  $$ values ('00000000-0000-0000-0000-00000006ec01'::uuid, 'wxyz') $$,
                  'the connections with an admin key are listed with its hint');

-- no user role reaches the admin key table, nor the service's functions
select ok(not has_table_privilege('authenticated', 'private.provider_admin_keys', 'select'),
          'signed-in users cannot read admin keys');
select ok(not has_function_privilege('authenticated', 'private.provider_connection_for(uuid, text)', 'execute'),
          'signed-in users cannot call the service''s connection lookup');

-- removing the connection removes its admin key
delete from public.provider_connections where id = '00000000-0000-0000-0000-00000006ec01';
select is_empty($$ select 1 from private.provider_admin_keys where connection_id = '00000000-0000-0000-0000-00000006ec01' $$,
                'the admin key goes with its connection');

select * from finish();
rollback;
