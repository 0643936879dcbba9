-- Latency histograms: the mergeable sketch the rollups keep so p50/p95/p99 can be read from any sum of
-- buckets. Percentiles do not add up; counts per latency slot do, so every rollup row stores one
-- bigint[] of counts and a read merges them by element-wise addition (also with negative deltas,
-- which is how late deletes and updates are undone).
--
-- The array is sparse in the way Postgres arrays allow: subscript i is slot i, and the array spans only
-- the slots from the first to the last one seen (its lower bound is rarely 1; a null inside means 0).
-- A typical bucket spans about 15 of the 77 slots, which keeps rows small and merges four times faster.
--
-- Slots are log-spaced, about 19% wide (2^(1/4)), from 1 ms to about 17 minutes: slot 1 holds 0 ms,
-- slot i+1 holds [bound i, bound i+1), the last slot everything from 1,048,576 ms up. A percentile
-- read from the histogram is exact about the slot and within half a slot (about 9%) about the value.

-- ---------------------------------------------------------------- schema
-- Analysts' SQL lives in `analytics`: views that run with the caller's rights plus the helpers they
-- need to read the histograms. The API never exposes it; analyst roles and signed-in users read it.
create schema if not exists analytics;
comment on schema analytics is
  'Documented, read-only views of an organization''s usage for analysts'' SQL; RLS applies (security invoker).';
revoke all on schema analytics from public;
grant usage on schema analytics to authenticated, service_role;
alter default privileges in schema analytics revoke all on tables from public, anon, authenticated;
alter default privileges in schema analytics revoke all on functions from public;

-- ---------------------------------------------------------------- slots
-- The lower bounds of slots 2..77, distinct values of round(2^(k/4)) for k = 0..80. A literal, so the
-- slot of a latency never changes once stored.
create function analytics.latency_slot_bounds() returns integer[]
language sql immutable parallel safe set search_path = '' as $$
  select '{1,2,3,4,5,6,7,8,10,11,13,16,19,23,27,32,38,45,54,64,76,91,108,128,152,181,215,256,304,362,431,512,
           609,724,861,1024,1218,1448,1722,2048,2435,2896,3444,4096,4871,5793,6889,8192,9742,11585,13777,16384,
           19484,23170,27554,32768,38968,46341,55109,65536,77936,92682,110218,131072,155872,185364,220436,262144,
           311744,370728,440872,524288,623487,741455,881744,1048576}'::integer[]
$$;
comment on function analytics.latency_slot_bounds() is
  'Lower bounds (ms) of latency histogram slots 2..77; slot 1 holds 0 ms.';

-- The slot a latency falls in; null latency has no slot (it is not counted in the histogram).
-- No SET clause, unlike the other functions here: a SET clause stops the planner inlining a SQL
-- function, and this one runs once per raw row in refreshes and reads. Inlined, it folds to one
-- width_bucket over a constant array. It reads no relation and names only pg_catalog built-ins.
create function analytics.latency_slot(latency_ms integer) returns integer
language sql immutable parallel safe as $$
  select pg_catalog.width_bucket(latency_ms, '{1,2,3,4,5,6,7,8,10,11,13,16,19,23,27,32,38,45,54,64,76,91,108,128,152,181,215,256,304,362,431,512,
           609,724,861,1024,1218,1448,1722,2048,2435,2896,3444,4096,4871,5793,6889,8192,9742,11585,13777,16384,
           19484,23170,27554,32768,38968,46341,55109,65536,77936,92682,110218,131072,155872,185364,220436,262144,
           311744,370728,440872,524288,623487,741455,881744,1048576}'::integer[]) + 1
$$;
comment on function analytics.latency_slot(integer) is 'Histogram slot (1..77) of a latency in ms; null stays null.';

-- The value reported for a slot: the geometric middle of its bounds, so the error is at most half a slot.
create function analytics.latency_slot_value(slot integer) returns integer
language sql immutable parallel safe set search_path = '' as $$
  select case
    when slot is null then null
    when slot <= 1 then 0
    when slot >= 77 then (analytics.latency_slot_bounds())[76]
    else round(sqrt((analytics.latency_slot_bounds())[slot - 1]::float8
                    * (analytics.latency_slot_bounds())[slot]::float8))::integer
  end
$$;
comment on function analytics.latency_slot_value(integer) is 'Representative latency (ms) of a histogram slot.';

-- ---------------------------------------------------------------- building and merging
-- The aggregate steps below carry no SET clause either, for speed: with one, every call (one per raw
-- row) saves and restores the GUC state and loses the in-place update of the state array, which makes
-- a refresh about 20 times slower. They are not security definer and call only pg_catalog built-ins
-- and analytics.latency_slot by qualified name, so the caller's search_path cannot change them.

-- Add n observations to one slot. Assigning past an array's bounds extends it (a null array becomes
-- [slot:slot]); the state is modified in place (plpgsql expanded arrays).
create function private.histogram_put(state bigint[], slot integer, n bigint) returns bigint[]
language plpgsql immutable parallel safe as $$
begin
  if slot is not null and n is not null then
    state[slot] := coalesce(state[slot], 0) + n;
  end if;
  return state;
end
$$;
comment on function private.histogram_put(bigint[], integer, bigint) is
  'Aggregate step: add n observations to a histogram slot (the array grows to span the slots seen).';

-- Element-wise sum of two histograms; a null or empty side is an empty histogram.
create function private.histogram_add(a bigint[], b bigint[]) returns bigint[]
language plpgsql immutable parallel safe as $$
begin
  if a is null or pg_catalog.array_lower(a, 1) is null then
    return b;
  elsif b is null or pg_catalog.array_lower(b, 1) is null then
    return a;
  end if;
  for i in pg_catalog.array_lower(b, 1) .. pg_catalog.array_upper(b, 1) loop
    if b[i] <> 0 then
      a[i] := coalesce(a[i], 0) + b[i];
    end if;
  end loop;
  return a;
end
$$;
comment on function private.histogram_add(bigint[], bigint[]) is 'Element-wise sum of two latency histograms.';

-- histogram_of(slot, n): adds n (which may be negative: a removed row) to each row's slot; the
-- rollup deltas are built with it.
create aggregate private.histogram_of(integer, bigint) (
  sfunc = private.histogram_put, stype = bigint[], combinefunc = private.histogram_add, parallel = safe
);
comment on aggregate private.histogram_of(integer, bigint) is 'Histogram of (slot, count) pairs; counts may be negative.';

-- Count one latency (nulls skipped).
create function private.histogram_put_latency(state bigint[], latency_ms integer) returns bigint[]
language plpgsql immutable parallel safe as $$
declare
  slot integer;
begin
  if latency_ms is not null then
    slot := analytics.latency_slot(latency_ms);
    state[slot] := coalesce(state[slot], 0) + 1;
  end if;
  return state;
end
$$;
comment on function private.histogram_put_latency(bigint[], integer) is 'Aggregate step: count one latency.';

-- latency_histogram(latency_ms): the histogram of raw latencies (nulls skipped).
create aggregate analytics.latency_histogram(integer) (
  sfunc = private.histogram_put_latency, stype = bigint[], combinefunc = private.histogram_add,
  parallel = safe
);
comment on aggregate analytics.latency_histogram(integer) is 'Latency histogram of raw latencies in ms.';

-- merge_latency(histogram): the sum of stored histograms, to read percentiles over any set of buckets.
create aggregate analytics.merge_latency(bigint[]) (
  sfunc = private.histogram_add, stype = bigint[], combinefunc = private.histogram_add, parallel = safe
);
comment on aggregate analytics.merge_latency(bigint[]) is 'Sum of latency histograms (mergeable across buckets).';

-- ---------------------------------------------------------------- reading
-- The slot holding the q-quantile, with percentile_disc's meaning: the first slot whose cumulative
-- count reaches ceil(q * total). Null for an empty histogram.
create function analytics.latency_quantile_slot(histogram bigint[], q float8) returns integer
language plpgsql immutable parallel safe set search_path = '' as $$
declare
  lo integer := array_lower(histogram, 1);
  hi integer := array_upper(histogram, 1);
  total bigint := 0;
  rank bigint;
  seen bigint := 0;
begin
  if lo is null then
    return null;
  end if;
  for i in lo .. hi loop
    total := total + coalesce(histogram[i], 0);
  end loop;
  if total <= 0 then
    return null;
  end if;
  rank := greatest(1, ceil(q * total)::bigint);
  for i in lo .. hi loop
    seen := seen + coalesce(histogram[i], 0);
    if seen >= rank then
      return i;
    end if;
  end loop;
  return hi;
end
$$;
comment on function analytics.latency_quantile_slot(bigint[], float8) is
  'Histogram slot holding the q-quantile (percentile_disc semantics); null when empty.';

create function analytics.latency_percentile(histogram bigint[], q float8) returns integer
language sql immutable parallel safe set search_path = '' as $$
  select analytics.latency_slot_value(analytics.latency_quantile_slot(histogram, q))
$$;
comment on function analytics.latency_percentile(bigint[], float8) is
  'Approximate q-quantile latency in ms (within half a slot, ~9%) from a latency histogram.';

-- The histogram as rows, for reading by eye: each non-empty slot with its bounds in ms.
create function analytics.latency_slot_counts(histogram bigint[])
returns table (slot integer, from_ms integer, to_ms integer, requests bigint)
language sql immutable parallel safe set search_path = '' as $$
  select i, case when i = 1 then 0 else (analytics.latency_slot_bounds())[i - 1] end,
         case when i < 77 then (analytics.latency_slot_bounds())[i] end, histogram[i]
  from generate_subscripts(histogram, 1) i
  where coalesce(histogram[i], 0) <> 0
  order by i
$$;
comment on function analytics.latency_slot_counts(bigint[]) is
  'The non-empty slots of a latency histogram: slot, [from_ms, to_ms) (to_ms null for the last), requests.';

grant execute on function analytics.latency_slot_counts(bigint[]) to authenticated, service_role;
grant execute on function analytics.latency_slot_bounds(), analytics.latency_slot(integer),
  analytics.latency_slot_value(integer), analytics.latency_quantile_slot(bigint[], float8),
  analytics.latency_percentile(bigint[], float8) to authenticated, service_role;
grant execute on function analytics.latency_histogram(integer), analytics.merge_latency(bigint[])
  to authenticated, service_role;
grant execute on function private.histogram_put(bigint[], integer, bigint), private.histogram_add(bigint[], bigint[]),
  private.histogram_put_latency(bigint[], integer), private.histogram_of(integer, bigint)
  to authenticated, service_role;
