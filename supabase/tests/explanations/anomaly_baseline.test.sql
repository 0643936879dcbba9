-- anomaly_evidence's baseline: windows longer than a day are compared with non-overlapping earlier ones
-- (a flat series shows no change), days before the organization's first usage are not counted as zero,
-- and with no history at all the whole change is volume.
begin;
select plan(6);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000e311', 'flat'),
                                                   ('00000000-0000-0000-0000-00000000e312', 'new');
create temp table w (ws timestamptz) on commit drop;
insert into w select date_trunc('hour', now()) - interval '30 hours';
-- flat: one $0.10 call every hour for the last 12 days
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
select '00000000-0000-0000-0000-00000000e311', date_trunc('hour', now()) - h * interval '1 hour' + interval '10 minutes',
       gen_random_uuid()::text, 'openai', 'gpt-4o-mini', 0.1, true
from generate_series(1, 12 * 24) h;
-- new: usage only in the last 3 days, $1 an hour
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
select '00000000-0000-0000-0000-00000000e312', date_trunc('hour', now()) - h * interval '1 hour' + interval '10 minutes',
       gen_random_uuid()::text, 'openai', 'gpt-4o-mini', 1, true
from generate_series(1, 3 * 24) h;
insert into public.anomalies (id, org_id, metric, severity, window_start, window_end, grain, kind)
select '00000000-0000-0000-0000-00000000e3b1'::uuid, '00000000-0000-0000-0000-00000000e311'::uuid, 'cost', 'low',
       w.ws, w.ws + interval '30 hours', 'hour', 'level_shift' from w
union all
select '00000000-0000-0000-0000-00000000e3b2', '00000000-0000-0000-0000-00000000e312', 'cost', 'low',
       date_trunc('hour', now()) - interval '2 hours', date_trunc('hour', now()), 'hour', 'spike';

-- a 30-hour window starts its baselines two days back; overlapping baseline windows count each hour
-- once per window, so a flat series reads as no change
select is(public.anomaly_evidence('00000000-0000-0000-0000-00000000e3b1') -> 'baseline',
          jsonb_build_object('windows', 7, 'shifted_by', 'day',
                             'first_start', private.evidence_time((select ws from w) - interval '8 days'),
                             'last_end', private.evidence_time((select ws from w) + interval '30 hours' - interval '2 days')),
          'seven baselines, the nearest two days back');
select is(public.anomaly_evidence('00000000-0000-0000-0000-00000000e3b1') #> '{usage,change}',
          '{"cost_usd": 0, "cost_pct": 0, "requests": 0, "requests_pct": 0, "cost_per_request_pct": 0}'::jsonb,
          'a flat series shows no change');
select is((public.anomaly_evidence('00000000-0000-0000-0000-00000000e3b1') #>> '{usage,baseline,cost_usd}')::numeric,
          3.0, 'each baseline window holds 30 hours');

-- an organization with three days of history: two baseline days, not seven with five zeros
select is((public.anomaly_evidence('00000000-0000-0000-0000-00000000e3b2') #>> '{baseline,windows}')::int, 2,
          'only days after the first usage');
select is((public.anomaly_evidence('00000000-0000-0000-0000-00000000e3b2') #>> '{usage,baseline,cost_usd}')::numeric,
          2.0, 'baseline averaged over the days that had usage');

-- no history at all: all volume
update public.anomalies set window_start = (select date_trunc('hour', min(occurred_at)) from public.usage_records
                                             where org_id = '00000000-0000-0000-0000-00000000e312'),
                            window_end = date_trunc('hour', now())
 where id = '00000000-0000-0000-0000-00000000e3b2';
select is(public.anomaly_evidence('00000000-0000-0000-0000-00000000e3b2') -> 'cost_change_split',
          '{"total_usd": 72, "volume_usd": 72, "mix_usd": 0, "rate_usd": 0, "volume_share_pct": 100,
            "mix_share_pct": 0, "rate_share_pct": 0}'::jsonb, 'no baseline: the whole change is volume');

select * from finish();
rollback;
