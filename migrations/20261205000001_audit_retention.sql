-- The audit trail's retention: `audit_purge` runs daily at 03:47 UTC (first run tomorrow) and
-- removes rows older than TALLY_AUDIT_RETENTION_DAYS. (The triggers that write the trail live
-- in replaceable/audit.sql.)
insert into private.schedules (name, cron, timezone, kind, payload, next_run_at)
values ('audit.purge', '47 3 * * *', 'UTC', 'audit_purge', '{}',
        pg_catalog.date_trunc('day', pg_catalog.now()) + interval '1 day 3 hours 47 minutes')
on conflict (name) do nothing;
