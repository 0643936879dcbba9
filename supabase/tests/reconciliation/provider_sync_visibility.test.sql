-- What the provider billing sync tells about itself: the raw pages' column says what jsonb keeps of a page.
begin;
select plan(2);

select ok(col_description('private.provider_report_pages'::regclass,
                          (select attnum from pg_attribute where attrelid = 'private.provider_report_pages'::regclass
                              and attname = 'body')) like '%key order%not preserved%',
          'the raw page''s column says its key order is not kept');
select isnt('{"b": 1, "a": 2}'::jsonb::text, '{"b": 1, "a": 2}',
            '... which is what jsonb does to a page (so the comment must not promise the page unchanged)');

select * from finish();
rollback;
