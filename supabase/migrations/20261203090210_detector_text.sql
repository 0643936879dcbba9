-- How detectors write figures into titles and descriptions: counts with thousands separators, shares as
-- whole percents, money with two decimals. Inlinable expressions (no SET clause, one SELECT).

create function private.fmt_count(n numeric) returns text
language sql immutable parallel safe as $$
  select pg_catalog.to_char(n, 'FM999,999,999,999,999,990')
$$;
comment on function private.fmt_count(numeric) is 'A count with thousands separators: 12,345.';

create function private.fmt_share(x numeric) returns text
language sql immutable parallel safe as $$
  select round(x * 100)::text || '%'
$$;
comment on function private.fmt_share(numeric) is 'A share (0..1) as a whole percent: 0.42 -> 42%.';

create function private.fmt_usd(x numeric) returns text
language sql immutable parallel safe as $$
  select pg_catalog.to_char(x, 'FM999,999,999,999,990.00')
$$;
comment on function private.fmt_usd(numeric) is 'An amount with thousands separators and two decimals: 1,234.50.';

revoke all on function private.fmt_count(numeric), private.fmt_share(numeric), private.fmt_usd(numeric) from public;
grant execute on function private.fmt_count(numeric), private.fmt_share(numeric), private.fmt_usd(numeric)
  to service_role;
