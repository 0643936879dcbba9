-- An organization's usage goes before the organization row does (20261123000700), so the rollup deltas
-- its delete writes still find the organization; and the delete leaves no usage behind.
begin;
select plan(2);

select ok((select tgtype & 2 = 2 from pg_trigger
           where tgrelid = 'public.organizations'::regclass and tgname = 'delete_organization_usage'),
          'the usage-deleting trigger runs before the organization is deleted');

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000de101', 'to delete');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens)
values ('00000000-0000-0000-0000-0000000de101', now() - interval '1 hour', 'del-1', 'openai', 'gpt-4o', 10, 5);
delete from public.organizations where id = '00000000-0000-0000-0000-0000000de101';
select is_empty($$ select 1 from public.usage_records where org_id = '00000000-0000-0000-0000-0000000de101' $$,
                'deleting the organization deleted its usage');

select * from finish();
rollback;
