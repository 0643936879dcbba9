-- private.cost_at_current_price: the recommendation engine's repricing gives usage_cost's figure at
-- now(), null for a model without a price, and only the service role may call it.
begin;
select plan(5);

-- a priced model (prices are loaded by setup): the figure of usage_cost at now(), cache reads included
select isnt(private.cost_at_current_price('openai', 'gpt-4o', 12000, 800, 4000), null, 'gpt-4o has a price');
select is(private.cost_at_current_price('openai', 'gpt-4o', 12000, 800, 4000),
          (select c.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 12000, 800, 4000, 0, 0) c),
          'the same figure as usage_cost at now()');
-- cached tokens are billed lower than fresh input
select ok(private.cost_at_current_price('openai', 'gpt-4o', 12000, 800, 4000)
          < private.cost_at_current_price('openai', 'gpt-4o', 12000, 800, 0), 'cache reads cost less');
-- a model without a price has no cost, not zero
select is(private.cost_at_current_price('openai', 'no-such-model-xyz', 1000, 100, 0), null, 'unknown model: null');
-- signed-in users cannot call it; the worker (service role) can
select ok(not has_function_privilege('authenticated', 'private.cost_at_current_price(text, text, bigint, bigint, bigint)',
                                     'execute')
          and has_function_privilege('service_role', 'private.cost_at_current_price(text, text, bigint, bigint, bigint)',
                                     'execute'), 'only the service role executes it');

select finish();
rollback;
