-- A recommendation with a standing consensus review could not be applied or dismissed by its owner: the
-- keep_consensus_review trigger runs as the user who updates the row and calls
-- private.consensus_figures_changed, which only the service could execute, so the update failed with
-- "permission denied". The function only compares numbers it is given (no table access); users may run it.
grant execute on function private.consensus_figures_changed(numeric, numeric, numeric, numeric, numeric)
  to authenticated;
