-- Reads across organizations of the rows past the rollup watermark (provider health every minute, an
-- analyst's view over all their organizations) have no index to find a time range with: the indexes all
-- lead with the organization, or with the id. With the watermark known to the planner they walked the
-- whole primary-key index of the day's partition (3,847 of its 3,854 pages at 2.4 million calls) to find
-- the few rows past it. A BRIN index on occurred_at finds them in a dozen pages; it costs next to nothing
-- to keep, since calls arrive in about the order they happened and rows go to the end of the day's
-- partition, whose ranges are not summarized until vacuum reaches them. Where usage is a hypertable,
-- Timescale already keeps a time index on every chunk.
do $$
begin
  if (select kind from private.usage_layout) = 'partman' then
    create index usage_records_occurred_at_brin on public.usage_records using brin (occurred_at);
  end if;
end
$$;
