-- Rate limits count over a sliding minute, not the clock's minute: with fixed windows a key could send
-- its whole limit at the end of one minute and again at the start of the next, twice its limit within
-- a second. The previous minute's count is weighted by the share of it still inside the last 60 seconds
-- (the usual sliding-window counter: two counter rows per key, no per-request log).
create or replace function private.take_rate_limit(key uuid, per_minute integer)
returns table (allowed boolean, retry_after integer)
language plpgsql volatile set search_path = '' as $$
declare
  this_minute constant timestamptz := date_trunc('minute', now());
  elapsed constant double precision := extract(epoch from now() - date_trunc('minute', now()));
  current_count integer;
  previous_count integer;
  wait double precision;
begin
  insert into private.api_key_rate_windows as w (key_id, window_start, requests)
  values (key, this_minute, 1)
  on conflict (key_id, window_start) do update set requests = w.requests + 1
  returning w.requests into current_count;
  select w.requests into previous_count
  from private.api_key_rate_windows w
  where w.key_id = key and w.window_start = this_minute - interval '1 minute';
  previous_count := coalesce(previous_count, 0);

  allowed := current_count + previous_count * (60 - elapsed) / 60 <= per_minute;
  if allowed then
    retry_after := 0;
  elsif current_count + 1 <= per_minute then
    -- a retry fits this minute once enough of the previous minute has slid out of the window
    wait := (60 - elapsed) - (per_minute - current_count - 1) * 60.0 / previous_count;
    retry_after := greatest(1, ceil(wait))::integer;
  else
    -- this minute alone is full: wait for its end, then until its weight lets one more in
    wait := (60 - elapsed) + 60 * (1 - (per_minute - 1)::double precision / current_count);
    retry_after := greatest(1, ceil(wait))::integer;
  end if;
  return next;
end
$$;
comment on function private.take_rate_limit(uuid, integer) is
  'Count one request for an API key; allowed=false past per_minute over the sliding last 60 seconds '
  '(this minute''s count plus the previous minute''s, weighted by its share still in the window), '
  'with the seconds after which a retry would be allowed.';
