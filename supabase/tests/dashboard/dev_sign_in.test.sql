-- Local sign-in codes are one-time, expire, and are kept only as hashes; users cannot issue them.
begin;
select plan(6);

select tests.create_user('dsi_user');
create temp table codes (code text);
insert into codes select private.issue_dev_sign_in_code(tests.uid('dsi_user'), interval '5 minutes');

-- the code is stored only as its hash
select is((select count(*)::integer from private.dev_sign_in_codes c, codes
            where c.code_hash = extensions.digest(codes.code, 'sha256') and c.user_id = tests.uid('dsi_user')), 1,
          'the code is stored as a SHA-256 hash');
-- redeeming yields the user once
select results_eq($$ select email from private.redeem_dev_sign_in_code((select code from codes)) $$,
                  $$ values ('dsi_user@tests.tokentra.local'::text) $$, 'a fresh code signs its user in');
select is_empty($$ select * from private.redeem_dev_sign_in_code((select code from codes)) $$,
                'a spent code signs nobody in');
-- an expired code is refused
update private.dev_sign_in_codes set created_at = now() - interval '1 hour', expires_at = now() - interval '1 minute';
insert into codes select private.issue_dev_sign_in_code(tests.uid('dsi_user'), interval '1 second');
update private.dev_sign_in_codes set created_at = now() - interval '1 hour', expires_at = now() - interval '1 second'
 where used_at is null;
select is_empty($$ select * from private.redeem_dev_sign_in_code((select code from codes order by code limit 1)) $$,
                'an expired code signs nobody in');
select is_empty($$ select * from private.redeem_dev_sign_in_code('not-a-code') $$, 'an unknown code signs nobody in');
-- users cannot issue codes
create temp table who on commit drop as select tests.uid('dsi_user') as id;
grant select on who to authenticated;
select tests.authenticate_as('dsi_user');
select throws_ok($$ select private.issue_dev_sign_in_code((select id from who)) $$, '42501',
                 'permission denied for function issue_dev_sign_in_code',
                 'a signed-in user cannot issue sign-in codes');

select * from finish();
rollback;
