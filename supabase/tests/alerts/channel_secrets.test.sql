-- Channel credentials: never in the rule's channel list, unreadable to every user role, stored only
-- through the permission-checking function, forgotten with their channel.
begin;
select plan(5);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000ac001', 'secrets');
select tests.create_user(r) from unnest(array['ac_admin', 'ac_member']) r;
insert into public.organization_members values
  ('00000000-0000-0000-0000-0000000ac001', tests.uid('ac_admin'), 'admin'),
  ('00000000-0000-0000-0000-0000000ac001', tests.uid('ac_member'), 'member');

select tests.authenticate_as('ac_admin');
-- a plaintext credential cannot be saved in the channel list
select throws_ok($$ insert into public.alert_rules (org_id, name, type, channels) values
  ('00000000-0000-0000-0000-0000000ac001', 'r', 'budget_threshold',
   '[{"id": "00000000-0000-0000-0000-0000000ac0c1", "type": "webhook", "url": "https://x.example", "secret": "whsec_x"}]') $$,
  '22023', null, 'credentials never go into the channel list');
insert into public.alert_rules (id, org_id, name, type, channels) values
  ('00000000-0000-0000-0000-0000000ac0a1', '00000000-0000-0000-0000-0000000ac001', 'r', 'budget_threshold',
   '[{"id": "00000000-0000-0000-0000-0000000ac0c1", "type": "webhook", "url": "https://x.example", "has_secret": true}]');
-- the admin stores the encrypted credential through the checked function
select lives_ok($$ select private.save_alert_channel_secret('00000000-0000-0000-0000-0000000ac0a1',
                  '00000000-0000-0000-0000-0000000ac0c1', '\x01', '\x02') $$, 'an admin stores a credential');
-- and can read none of it back
select throws_ok($$ select ciphertext from private.alert_channel_secrets $$, '42501', null,
                 'credentials are unreadable to users');
select tests.clear_authentication();
-- a member may not store one
select tests.authenticate_as('ac_member');
select throws_ok($$ select private.save_alert_channel_secret('00000000-0000-0000-0000-0000000ac0a1',
                   '00000000-0000-0000-0000-0000000ac0c1', '\x01', '\x02') $$, '42501', null,
                 'members cannot store credentials');
select tests.clear_authentication();
-- removing the channel removes its credential
update public.alert_rules set channels = '[]' where id = '00000000-0000-0000-0000-0000000ac0a1';
select is_empty($$ select 1 from private.alert_channel_secrets where rule_id = '00000000-0000-0000-0000-0000000ac0a1' $$,
                'a removed channel''s credential is deleted');

select * from finish();
rollback;
