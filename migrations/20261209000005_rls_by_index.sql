-- Row-level security that costs an index lookup, not a scan of every org's rows.
--
-- The read policies of a person's data were an OR of three branches, one of them a hashed
-- subplan over the led members, which no index can serve: every list read scanned the whole
-- table, whatever the caller could see. Now every branch is one an index serves, so the
-- planner combines them (BitmapOr) and the cost follows what the caller may see:
--   owners and admins   org_id = any (their orgs)                      (org_id, …) indexes
--   managers, members   user_id = themselves, in their orgs           (user_id, …) indexes
--   team leads          user_id = any (the people they lead), checked against the pairs
-- The org check of the second branch is written so that it stays a recheck: as an index
-- condition the planner would intersect the caller's own rows with every row of their org.
-- An ordered list of one org (`org_id=eq.…&order=started_at.desc&limit=50`, as the Supabase
-- guide advises clients to filter) reads the newest rows of that org by index and stops.

-- The people the caller leads as a manager (any org), for an indexable `user_id = any (…)`.
create or replace function private.led_user_ids()
returns uuid[]
  language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(distinct l.user_id), '{}') from private.led_members() l
$$;
alter function private.led_user_ids() owner to tally_definer;
grant execute on function private.led_user_ids() to authenticated, service_role;

do $$
declare
  t text;
  person text := $q$(org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      or (user_id = (select auth.uid())
          and pg_catalog.array_position((select private.my_org_ids('{manager,member}'))::uuid[], org_id) is not null)
      or (user_id = any ((select private.led_user_ids())::uuid[])
          and (org_id, user_id) in (select l.org_id, l.user_id from private.led_members() l)))$q$;
begin
  foreach t in array array['time_logs', 'ai_extractions', 'time_log_embeddings', 'attachments',
                           'user_day_summaries', 'risk_scores'] loop
    execute format('alter policy %I on public.%I using %s', t || '_select', t, person);
  end loop;
end
$$;

-- time_logs: a person's newest first (members' lists, sync, the user_id foreign key) and an
-- org's newest first (admins' lists); the first replaces (org_id, user_id, started_at).
create index time_logs_user_started_idx on public.time_logs (user_id, started_at desc);
create index time_logs_org_started_idx on public.time_logs (org_id, started_at desc);
drop index public.time_logs_org_user_started_idx;

-- The person branch of the other tables, and the deletes that follow a user's foreign keys.
create index ai_extractions_user_idx on public.ai_extractions (user_id);
create index attachments_user_idx on public.attachments (user_id);
create index time_log_embeddings_user_idx on public.time_log_embeddings (user_id);
drop index public.time_log_embeddings_org_user_idx;
create index user_day_summaries_user_idx on public.user_day_summaries (user_id, day);
create index risk_scores_user_idx on public.risk_scores (user_id, week_start);

-- Foreign keys the database linter flags where a delete or a query would scan: the leads'
-- teams (led_members joins on team_id), who a change was by, whose timesheets, which org's
-- queued work. (The others it flags are served by an index leading with the same columns in
-- another order; see the README.)
create index team_members_team_idx on public.team_members (team_id, org_id);
create index audit_log_actor_idx on public.audit_log (actor_id) where actor_id is not null;
create index integrations_created_by_idx on public.integrations (created_by) where created_by is not null;
create index timesheet_periods_user_idx on public.timesheet_periods (user_id, period_start);
create index timesheet_periods_decided_by_idx on public.timesheet_periods (decided_by) where decided_by is not null;
create index sync_mutations_org_idx on private.sync_mutations (org_id);
create index timer_reminders_org_idx on private.timer_reminders (org_id);
