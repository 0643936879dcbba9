-- public.model_registry: every priced model once, families by longest prefix at a separator, specialised
-- variants outside families, tiers from price where no family says, priors from the maintained table,
-- and everything readable by signed-in users but not by anonymous callers.
begin;
select plan(10);

-- one row per priced model
select is((select count(*) from public.model_registry),
          (select count(distinct (provider_id, model_id)) from private.model_prices
            where service_tier = '' and (input_mtok is not null or output_mtok is not null))::bigint,
          'one registry row per model with a standard price');
select is_empty($$ select provider, model from public.model_registry group by 1, 2 having count(*) > 1 $$,
                'no model appears twice');
-- the longest prefix ending at a separator is the family: gpt-4o-mini is not gpt-4o, gpt-4o is not gpt-4
select is(private.model_family('openai', 'gpt-4o-mini-2024-07-18'), 'gpt-4o-mini', 'longest prefix wins');
select is(private.model_family('openai', 'gpt-4o'), 'gpt-4o', 'gpt-4o is its own family, not gpt-4');
select is(private.model_family('openai', 'gpt-4ox'), null, 'a prefix must end at a separator');
-- a Claude family is the same on Vertex (google) as on Anthropic
select is(private.model_family('google', 'claude-sonnet-4-5'), 'claude-sonnet-4', 'hosted families match anywhere');
-- specialised variants share a prefix but not the family's abilities
select is((select family from public.model_registry where provider = 'openai' and model = 'gpt-4o-mini-tts'), null,
          'a speech variant takes no family');
-- without a family, the tier comes from the price
select is(private.tier_from_price(0.1, 0.4), 'budget', 'cheap is budget');
select is(private.tier_from_price(15, 75), 'flagship', 'expensive is flagship');

-- signed-in users read the registry, anonymous callers do not
select tests.create_user('registry_reader');
select tests.authenticate_as('registry_reader');
select ok((select count(*) from public.model_registry where family = 'gpt-4o-mini' and quality_priors ? 'chat') > 0,
          'a signed-in user reads families and priors');
select tests.clear_authentication();

select * from finish();
rollback;
