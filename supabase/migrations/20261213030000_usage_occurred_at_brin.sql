-- Reads across organizations of the rows past the rollup watermark (provider health every minute, an
-- analyst's view over all their organizations) have no index to find a time range with: the indexes all
-- lead with the organization, or with the id. With the watermark known to the planner they walked the
-- whole primary-key index of the day's partition (3,847 of its 3,854 pages at about a million calls) to
-- find the few rows past it. A BRIN index on occurred_at finds them in a dozen pages; it costs next to
-- nothing to keep, since calls arrive in about the order they happened and rows go to the end of the
-- day's partition, whose ranges are not summarized until vacuum reaches them. Ranges of 32 pages rather
-- than 128: the planner's estimate for a BRIN scan grows with the range size, and at 128 it rated the
-- index barely cheaper than walking the primary key (9,865 against 10,234 at 400,000 calls), a choice
-- that a little disorder in the statistics would flip; at 32 it is half the cost at 300,000 calls.
-- Where usage is a hypertable, Timescale already keeps a time index on every chunk.
do $$
begin
  if (select kind from private.usage_layout) = 'partman' then
    create index usage_records_occurred_at_brin on public.usage_records using brin (occurred_at)
      with (pages_per_range = 32);
  end if;
end
$$;
