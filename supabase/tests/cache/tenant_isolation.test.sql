-- The semantic cache never crosses organizations: entries, settings and savings are read under RLS,
-- and the lookup and store functions are the service's alone.
begin;
select plan(9);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-00000000cb01', 'cache a'), ('00000000-0000-0000-0000-00000000cb02', 'cache b');
select tests.create_user('cache_owner_a'), tests.create_user('cache_member_a'), tests.create_user('cache_viewer_a');
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000cb01', tests.uid('cache_owner_a'), 'owner'),
  ('00000000-0000-0000-0000-00000000cb01', tests.uid('cache_member_a'), 'member'),
  ('00000000-0000-0000-0000-00000000cb01', tests.uid('cache_viewer_a'), 'viewer');
insert into public.semantic_cache_settings (org_id, enabled, store_responses) values
  ('00000000-0000-0000-0000-00000000cb01', true, true), ('00000000-0000-0000-0000-00000000cb02', true, true);
-- the same prompt and vector stored by both organizations, with different answers
select private.cache_store(o::uuid, 'openai', 'gpt-4o', 'p', '', '', repeat('e', 64),
                           extensions.l2_normalize(array_fill(1, array[384])::extensions.vector), 'local', 'g', '{}', '{}', 'b',
                           's', 'faq', jsonb_build_object('answer', o), 10, 10, 0.5)
from (values ('00000000-0000-0000-0000-00000000cb01'), ('00000000-0000-0000-0000-00000000cb02')) v(o);
select private.cache_lookup(o::uuid, 'gpt-4o', 'p', '', '', repeat('e', 64), null, 'local', 'g', '{}', '{}', 'b', 's', 0.9)
from (values ('00000000-0000-0000-0000-00000000cb01'), ('00000000-0000-0000-0000-00000000cb02')) v(o);

-- each organization's lookup answers with its own entry
select is((select response ->> 'answer' from private.cache_lookup('00000000-0000-0000-0000-00000000cb02', 'gpt-4o', 'p', '', '',
            repeat('e', 64), extensions.l2_normalize(array_fill(1, array[384])::extensions.vector), 'local', 'g', '{}', '{}', 'b',
            's', 0.9)),
          '00000000-0000-0000-0000-00000000cb02', 'a lookup answers from the organization''s own entry');

select tests.authenticate_as('cache_owner_a');
-- the owner of A sees A's entry and none of B's
select results_eq($$select org_id::text from public.semantic_cache$$,
                  $$values ('00000000-0000-0000-0000-00000000cb01')$$, 'the owner of A reads only A''s entries');
-- and A's savings only
select results_eq($$select org_id::text from public.semantic_cache_stats$$,
                  $$values ('00000000-0000-0000-0000-00000000cb01')$$, 'the owner of A reads only A''s cache stats');
select is((select saved_usd from public.cache_savings(current_date, current_date)), 0.5::numeric,
          'cache_savings counts only the caller''s organizations');
-- users cannot call the service's lookup, store or feedback functions
select throws_ok($$select * from private.cache_lookup('00000000-0000-0000-0000-00000000cb02', 'gpt-4o', 'p', '', '',
                   repeat('e', 64), null, 'local', 'g', '{}', '{}', 'b', 's', 0.9)$$, '42501', null,
                 'a user cannot run a lookup, even for another organization');
select throws_ok($$select * from private.cache_store('00000000-0000-0000-0000-00000000cb02', 'openai', 'gpt-4o', 'p', '', '',
                   repeat('f', 64), null, 'local', 'g', '{}', '{}', 'b', 's', 'faq', '{}', 1, 1, 1)$$, '42501', null,
                 'a user cannot store entries');
-- the owner cannot turn on B's cache
select throws_ok($$insert into public.semantic_cache_settings (org_id, enabled) values ('00000000-0000-0000-0000-00000000cb02', false)
                   on conflict (org_id) do update set enabled = false$$, '42501', null,
                 'the owner of A cannot change B''s cache settings');

-- a member (no cache.read) does not read cached answers, but reads what the cache saved (like usage)
select tests.clear_authentication();
select tests.authenticate_as('cache_member_a');
select is_empty($$select id from public.semantic_cache$$, 'a member does not read cached answers');
select tests.clear_authentication();
select tests.authenticate_as('cache_viewer_a');
select is((select count(*)::int from public.semantic_cache_stats), 1, 'a viewer reads the cache savings like costs');
select tests.clear_authentication();

select * from finish();
rollback;
