-- The cost of given tokens at a model's price today, for the recommendation engine's projections
-- (worker/recommendations/_common.py reprice). A PL/pgSQL wrapper of private.usage_cost, because
-- PL/pgSQL keeps its query's plan for the session: the engine reprices a few aggregates per
-- organization, and planning the inlined SQL function took longer than running it (2.4 ms against
-- 1.0 ms a call on `tokentra bench engine`). Connections use no server-side prepared statements
-- (Supabase's transaction pooler), so this is where a plan can be reused.
create function private.cost_at_current_price(provider text, model text, input_tokens bigint,
                                              output_tokens bigint, cached_tokens bigint)
returns numeric
language plpgsql stable set search_path = '' as $$
begin
  return (select c.cost_usd
            from private.usage_cost(cost_at_current_price.provider, cost_at_current_price.model, now(),
                                    cost_at_current_price.input_tokens, cost_at_current_price.output_tokens,
                                    cost_at_current_price.cached_tokens, 0, 0) c);
end
$$;
comment on function private.cost_at_current_price(text, text, bigint, bigint, bigint) is
  'Cost in USD of these input (cache reads included), cached and output tokens at the model''s price now; '
  'null when the model has no price. Same figure as private.usage_cost at now().';
revoke all on function private.cost_at_current_price(text, text, bigint, bigint, bigint) from public;
grant execute on function private.cost_at_current_price(text, text, bigint, bigint, bigint) to service_role;
