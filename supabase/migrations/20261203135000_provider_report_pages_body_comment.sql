-- The raw page is stored as jsonb, so what the audit keeps is the page's parsed JSON, not its bytes: say so,
-- rather than promise a copy "as fetched" that jsonb cannot give.
comment on column private.provider_report_pages.body is
  'The page''s JSON as parsed (jsonb): every field and value the provider sent, numbers exact, but not its bytes: '
  'key order, whitespace and duplicate keys (the last one is kept) are not preserved.';
