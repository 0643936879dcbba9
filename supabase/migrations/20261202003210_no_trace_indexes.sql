-- The partial indexes on trace_id and session_id (20261202003200) go: every query the planner cannot
-- prune by day opens each index of each day partition, so two more per partition meant 800 more locks
-- per such query (enough to exhaust the lock table under the tests' concurrency), for look-ups that
-- trace_costs bounds by day and organization anyway and reads through (org_id, occurred_at).
drop index if exists public.usage_records_org_trace_idx;
drop index if exists public.usage_records_org_session_idx;
