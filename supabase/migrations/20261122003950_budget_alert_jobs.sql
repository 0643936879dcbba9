-- The periodic SQL of budgets and alerts, declared where every periodic job is (private.periodic_jobs):
-- pg_cron runs them where it exists, the worker otherwise. `tokentra worker --once budgets` runs the
-- first by its short name. Alert delivery needs HTTP and SMTP, so it is a Python job of the worker
-- (worker/jobs.py), never a cron job.

-- Housekeeping of what the worker, budgets and alerts leave behind.
create function private.worker_cleanup() returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  runs integer;
  reservations integer;
  deliveries integer;
  workers integer;
begin
  delete from private.job_runs where started_at < now() - interval '14 days' and outcome <> 'running';
  get diagnostics runs = row_count;
  delete from private.budget_reservations where status <> 'open' and closed_at < now() - interval '30 days';
  get diagnostics reservations = row_count;
  delete from private.alert_deliveries where status = 'delivered' and delivered_at < now() - interval '90 days';
  get diagnostics deliveries = row_count;
  delete from private.workers where last_seen_at < now() - interval '7 days';
  get diagnostics workers = row_count;
  return jsonb_build_object('job_runs', runs, 'reservations', reservations, 'deliveries', deliveries,
                            'workers', workers);
end
$$;
comment on function private.worker_cleanup() is
  'Delete job runs older than 14 days, closed reservations older than 30, delivered alerts older than 90, '
  'workers unseen for 7.';

-- Budget status must follow ingestion within seconds: pg_cron (1.5+) and the worker both take
-- second-granularity schedules.
insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-budgets', '10 seconds', 'select private.evaluate_budgets()',
   'Budgets: raise threshold alerts, broadcast status changes, resolve past periods, expire reservations.'),
  ('tokentra-worker-cleanup', '41 * * * *', 'select private.worker_cleanup()',
   'Drop old job runs, closed reservations, delivered alerts and stale worker records.');
select private.schedule_periodic_jobs();
