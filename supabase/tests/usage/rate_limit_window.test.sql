-- The rate limit counts over the sliding last minute: a burst at the end of one clock minute still
-- counts at the start of the next, and a minute older than that no longer counts.
begin;
select plan(9);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000c001', 'rate');
insert into public.api_keys (id, org_id, name, prefix, key_hash, mode) values
  ('00000000-0000-0000-0000-00000000c101', '00000000-0000-0000-0000-00000000c001', 'fresh', 'tt_live_c1', sha256('c1'), 'live'),
  ('00000000-0000-0000-0000-00000000c102', '00000000-0000-0000-0000-00000000c001', 'busy', 'tt_live_c2', sha256('c2'), 'live'),
  ('00000000-0000-0000-0000-00000000c103', '00000000-0000-0000-0000-00000000c001', 'old', 'tt_live_c3', sha256('c3'), 'live');

create temp table fresh_answers (n int, allowed boolean);
insert into fresh_answers select 1, allowed from private.take_rate_limit('00000000-0000-0000-0000-00000000c101', 2);
insert into fresh_answers select 2, allowed from private.take_rate_limit('00000000-0000-0000-0000-00000000c101', 2);
insert into fresh_answers select 3, allowed from private.take_rate_limit('00000000-0000-0000-0000-00000000c101', 2);
select is((select array_agg(allowed order by n) from fresh_answers),
          array[true, true, false], 'a fresh key gets its limit, then is refused');
select cmp_ok((select retry_after from private.take_rate_limit('00000000-0000-0000-0000-00000000c101', 2)),
              '>', extract(epoch from date_trunc('minute', now()) + interval '1 minute' - now())::integer - 1,
              'a key whose own minute is full waits at least for that minute''s end');

-- a burst far past the limit in the previous clock minute still weighs on this one
insert into private.api_key_rate_windows (key_id, window_start, requests) values
  ('00000000-0000-0000-0000-00000000c102', date_trunc('minute', now()) - interval '1 minute', 1000000);
select is((select allowed from private.take_rate_limit('00000000-0000-0000-0000-00000000c102', 10)), false,
          'the previous minute''s burst refuses a request at the start of the next');
select ok((select retry_after between 1 and 60 from private.take_rate_limit('00000000-0000-0000-0000-00000000c102', 10)),
          'and the wait is at most until that minute has slid out');

-- the previous minute counts by the share of it still inside the last 60 seconds
update private.api_key_rate_windows set requests = 40
where key_id = '00000000-0000-0000-0000-00000000c102' and window_start < date_trunc('minute', now());
delete from private.api_key_rate_windows
where key_id = '00000000-0000-0000-0000-00000000c102' and window_start = date_trunc('minute', now());
select is((select allowed from private.take_rate_limit('00000000-0000-0000-0000-00000000c102', 100)), true,
          'under the limit with the previous minute weighted in');
select is((select allowed from private.take_rate_limit('00000000-0000-0000-0000-00000000c102', 41)),
          1 + 1 + 40 * (60 - extract(epoch from now() - date_trunc('minute', now()))) / 60 <= 41,
          'the previous minute''s 40 weigh in by the share of it left in the window');

-- two minutes back is outside the window
insert into private.api_key_rate_windows (key_id, window_start, requests) values
  ('00000000-0000-0000-0000-00000000c103', date_trunc('minute', now()) - interval '2 minutes', 1000000);
select is((select allowed from private.take_rate_limit('00000000-0000-0000-0000-00000000c103', 1)), true,
          'a burst two minutes back no longer counts');
select is((select allowed from private.take_rate_limit('00000000-0000-0000-0000-00000000c103', 1)), false,
          'the second request of a one-per-minute key is refused');
select is((select requests from private.api_key_rate_windows
           where key_id = '00000000-0000-0000-0000-00000000c103' and window_start = date_trunc('minute', now())),
          2, 'refused requests are counted too, so hammering does not reopen the window');

select * from finish();
rollback;
