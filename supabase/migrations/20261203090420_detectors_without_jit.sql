-- Detectors run without JIT, whoever calls them (the job, an analyst, a test): their plans span every
-- day partition of the raw table, so their estimated cost passes JIT's inlining and optimisation
-- thresholds and LLVM then spent minutes compiling what runs in a fraction of a second (seen on a fresh
-- test database, where the rate-limit detector's plan carries the hourly view's subplan). A function's
-- SET clause applies while its own statements are planned, so this holds inside the detector only.
do $$
declare
  f text;
begin
  for f in select d.function_name from private.detectors d loop
    execute format('alter function %s(uuid[], timestamptz) set jit = off', f);
  end loop;
end
$$;
