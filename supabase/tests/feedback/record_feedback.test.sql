-- private.record_feedback: one score per reported call, the latest wins, unknown calls are kept and
-- said so; scores stay in [0, 1]; no user role reads or calls it; they go with their organization.
begin;
select plan(7);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000fb01', 'fb');
insert into private.usage_request_ids (org_id, request_id, occurred_at, content_hash)
values ('00000000-0000-0000-0000-00000000fb01', 'known', now(), '\x00');

-- a known call is accepted, an unknown one stored as unmatched; in a batch the last score of a call wins
select results_eq($$ select idx, outcome from private.record_feedback('00000000-0000-0000-0000-00000000fb01',
  '[{"idx": 0, "request_id": "known", "score": 0.2}, {"idx": 1, "request_id": "later", "score": 1},
    {"idx": 2, "request_id": "known", "score": 0.9}]') $$,
  $$ values (0, 'accepted'), (1, 'unmatched'), (2, 'accepted') $$, 'one outcome per item');
select results_eq($$ select request_id, score from private.usage_feedback
                    where org_id = '00000000-0000-0000-0000-00000000fb01' order by request_id $$,
                  $$ values ('known', 0.900), ('later', 1.000) $$, 'the last score of the batch is stored');
-- a later batch replaces the score
select private.record_feedback('00000000-0000-0000-0000-00000000fb01', '[{"idx": 0, "request_id": "known", "score": 0}]');
select is((select score from private.usage_feedback where request_id = 'known'), 0.000, 'a later score replaces it');
-- scores outside [0, 1] never get in, whoever calls
select throws_ok($$ select private.record_feedback('00000000-0000-0000-0000-00000000fb01',
  '[{"idx": 0, "request_id": "x", "score": 1.5}]') $$, '23514', null, 'a score above 1 is refused');
-- users neither call the function nor read the table
select tests.create_user('fb_user');
select tests.authenticate_as('fb_user');
select throws_ok($$ select private.record_feedback('00000000-0000-0000-0000-00000000fb01', '[]') $$, '42501', null,
                 'users cannot record feedback directly');
select tests.clear_authentication();
-- retention is a periodic job
select ok(exists (select 1 from private.periodic_jobs where name = 'tokentra-feedback-retention'),
          'old feedback is dropped by a periodic job');
-- deleting the organization deletes its feedback
delete from public.organizations where id = '00000000-0000-0000-0000-00000000fb01';
select is_empty($$ select 1 from private.usage_feedback where org_id = '00000000-0000-0000-0000-00000000fb01' $$,
                'feedback goes with its organization');

select * from finish();
rollback;
