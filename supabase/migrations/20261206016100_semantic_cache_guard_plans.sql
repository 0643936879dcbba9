-- The lexical guard runs for every candidate above the threshold. As a SQL function with subqueries it
-- could not be inlined, so its body was planned at each lookup that reached it (about 0.4 ms, more than
-- running it); in PL/pgSQL each of its statements keeps its plan for the connection. Same rules, same
-- order, same answers.
create or replace function private.cache_guard_refuses(
  q_guard text, q_polarity text[], q_tokens text[], q_bag text, q_seq text,
  e_guard text, e_polarity text[], e_tokens text[], e_bag text, e_seq text)
returns text
language plpgsql immutable set search_path = '' as $$
begin
  if q_guard is distinct from e_guard then
    return 'numbers_dates_negations';
  end if;
  if exists (select 1 from unnest(q_polarity) p
             where left(p, -1) || case when right(p, 1) = '+' then '-' else '+' end = any (e_polarity)) then
    return 'opposite';
  end if;
  if q_bag <> '' and q_bag = e_bag and q_seq <> e_seq then
    return 'swapped';
  end if;
  if (select count(*) from (select unnest(q_tokens) except select unnest(e_tokens)) a) = 1
     and (select count(*) from (select unnest(e_tokens) except select unnest(q_tokens)) b) = 1
     and q_tokens && e_tokens then
    return 'substituted';
  end if;
  return null;
end
$$;
