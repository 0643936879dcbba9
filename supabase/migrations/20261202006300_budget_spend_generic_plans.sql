-- Budget spend plans its queries once per session, not once per call. Usage is partitioned by day over
-- the whole retention period (about 400 partitions); a custom plan of budget_spend's raw-row queries
-- prunes them at planning time, which costs most of a second per call, while a generic plan prunes the
-- same partitions when it starts (runtime pruning) in well under a millisecond. PL/pgSQL keeps choosing
-- custom plans here because their estimates look cheaper, so every strict reservation (the gateway's and
-- the SDK's) paid that planning inside the budget's lock. The function's body is unchanged.
alter function private.budget_spend(public.budgets, timestamptz, timestamptz) set plan_cache_mode = force_generic_plan;
