-- Members read anomalies, as they read usage and recommendations: an anomaly is a statement about usage
-- they can already see, and the explanation of a spike is most useful to the engineers who caused it.
insert into private.role_permissions (role, permission) values ('member', 'anomalies.read')
on conflict do nothing;
