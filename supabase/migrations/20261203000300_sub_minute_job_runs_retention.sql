-- Runs of sub-minute periodic jobs are kept for two hours, not fourteen days. Without pg_cron the worker
-- runs them and records each run, which is how several workers agree that a slot ran once; at one run a
-- second (the live usage broadcast) fourteen days came to 1.2 million rows of the same success. Failed
-- runs of those jobs, and every run of the others, keep the fourteen days.
create or replace function private.worker_cleanup() returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  runs integer;
  frequent integer;
  reservations integer;
  deliveries integer;
  workers integer;
begin
  delete from private.job_runs where started_at < now() - interval '14 days' and outcome <> 'running';
  get diagnostics runs = row_count;
  delete from private.job_runs r
   using private.periodic_jobs p
   where r.job = p.name and p.schedule ~ '^\s*\d+\s+seconds?\s*$'
     and r.outcome in ('ok', 'skipped') and r.started_at < now() - interval '2 hours';
  get diagnostics frequent = row_count;
  delete from private.budget_reservations where status <> 'open' and closed_at < now() - interval '30 days';
  get diagnostics reservations = row_count;
  delete from private.alert_deliveries where status = 'delivered' and delivered_at < now() - interval '90 days';
  get diagnostics deliveries = row_count;
  delete from private.workers where last_seen_at < now() - interval '7 days';
  get diagnostics workers = row_count;
  return jsonb_build_object('job_runs', runs + frequent, 'reservations', reservations, 'deliveries', deliveries,
                            'workers', workers);
end
$$;
comment on function private.worker_cleanup() is
  'Delete job runs older than 14 days (successful runs of sub-minute jobs older than 2 hours), closed '
  'reservations older than 30 days, delivered alerts older than 90, workers unseen for 7.';
