-- Analytics phase 2, the source: the `tally_analytics` publication is the contract between
-- Tally and whatever streams its changes to a warehouse — Tally's replicator, or PeerDB,
-- ClickPipes, Supabase's ETL or Debezium pointed at it. It holds what analytics needs and
-- nothing more: time logs without their comment (large and personal), projects, teams and
-- their members, memberships, the vocabularies, day summaries and timesheet periods.
--
-- Replica identities make every update's old row and every delete carry `org_id` (a
-- destination keyed by (org_id, id) can place a hard delete) and, where the whole row is the
-- identity (FULL), the values of unchanged TOASTed columns too. time_logs cannot be FULL: a
-- publication's column list must cover the identity, and `comment` stays out; its identity is
-- the unique (id, org_id, user_id) index instead. All of this costs nothing until the cluster
-- runs with wal_level=logical (only then are old rows logged). Until then PostgreSQL warns
-- that wal_level is too low to publish; that is the intent, so the warning is not shown.
set local client_min_messages = error;
create publication tally_analytics
  for table
    public.time_logs (id, org_id, user_id, project_id, team_id, activity_type_id, work_mode_id,
      task_category_id, started_at, ended_at, duration_minutes, source, status, billable, tags,
      ai_confidence, user_locked, version, deleted_at, finalized_at, created_at, updated_at),
    public.projects, public.teams, public.team_members, public.memberships,
    public.work_modes, public.activity_types, public.task_categories,
    public.user_day_summaries, public.timesheet_periods
  with (publish = 'insert, update, delete, truncate');

alter table public.time_logs replica identity using index time_logs_id_org_id_user_id_key;
alter table public.projects replica identity full;
alter table public.teams replica identity full;
alter table public.team_members replica identity full;
alter table public.memberships replica identity full;
alter table public.work_modes replica identity full;
alter table public.activity_types replica identity full;
alter table public.task_categories replica identity full;
alter table public.user_day_summaries replica identity full;
alter table public.timesheet_periods replica identity full;
