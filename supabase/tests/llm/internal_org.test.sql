-- The internal organization and the short-lived ingest keys the LLM layer records its usage with.
begin;
select plan(6);

-- exactly one internal organization, found by its slug
select is((select count(*)::int from public.organizations where slug = 'tokentra-internal'), 1, 'one internal org');
select isnt(private.internal_org_id(), null, 'internal_org_id finds it');

create temp table minted on commit drop as select * from private.mint_internal_ingest_key(interval '1 hour');
-- the key is an ingest key of the internal organization that expires
select results_eq(
  $$ select k.org_id, k.scopes, k.expires_at from public.api_keys k join minted m on m.id = k.id $$,
  $$ select private.internal_org_id(), array['ingest'], (select expires_at from minted) $$,
  'an expiring ingest key of the internal organization');
-- only its hash is stored
select is((select k.key_hash from public.api_keys k join minted m on m.id = k.id),
          (select extensions.digest(key, 'sha256') from minted), 'only the hash is kept');
-- lifetimes are bounded
select throws_ok($$ select private.mint_internal_ingest_key(interval '30 days') $$, '22023', null, 'at most 7 days');

select tests.create_user('ai_nobody');
select tests.authenticate_as('ai_nobody');
-- users cannot mint internal keys
select throws_ok($$ select private.mint_internal_ingest_key() $$, '42501', null, 'users cannot mint');
select tests.clear_authentication();

select * from finish();
rollback;
