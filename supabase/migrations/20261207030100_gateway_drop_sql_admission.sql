-- Gateway processes admit calls from keys they load with private.gateway_key and count rate limits and
-- prompt repeats in memory (private.gateway_sync_counters, private.gateway_block_key); the one-round-trip
-- admission in SQL and its token counter were left with no caller, only a test of their own.
drop function private.gateway_admit(bytea, text, integer, interval, interval);
drop function private.gateway_count_tokens(jsonb);
