-- Insights, second part: weekly and monthly summaries per person, team and project, as
-- materialized views in schema `insights` (no client can read them), and the views of public
-- that clients read them through, applying DESIGN §2:
--   a member sees their own rows; a manager also the people and teams they lead; owners and
--   admins the whole org; a viewer org- and team-level aggregates only, and a team's (or a
--   project's) aggregate only when at least `min_group_size` people (org setting, default 5)
--   are behind it, so no one person's hours can be read off it.
-- Weeks start on the org's `week_start` (ISO day, default 1 = Monday).

create schema if not exists insights;
revoke all on schema insights from public;
grant usage on schema insights to tally_definer, service_role;

-- The first day of the period (`week` or `month`) a day falls in.
create or replace function private.period_start(period text, day date, settings jsonb) returns date
  language sql immutable set search_path = ''
as $$
  select case period
    when 'week' then day - ((pg_catalog.date_part('isodow', day)::int
                             - coalesce((settings ->> 'week_start')::int, 1) + 7) % 7)
    else pg_catalog.date_trunc('month', day)::date
  end
$$;

-- The smallest group whose aggregate a viewer may read.
create or replace function private.min_group_size(settings jsonb) returns int
  language sql immutable set search_path = ''
as $$ select greatest(coalesce((settings ->> 'min_group_size')::int, 5), 1) $$;

create materialized view insights.person_periods as
  select s.org_id, s.user_id, p.period, private.period_start(p.period, s.day, o.settings) as starts,
         sum(s.total_minutes)::int as total_minutes, sum(s.focus_minutes)::int as focus_minutes,
         sum(s.meeting_minutes)::int as meeting_minutes,
         sum(s.collaboration_minutes)::int as collaboration_minutes,
         sum(s.after_hours_minutes)::int as after_hours_minutes,
         sum(s.weekend_minutes)::int as weekend_minutes, sum(s.billable_minutes)::int as billable_minutes,
         sum(s.log_count)::int as log_count, count(*)::int as days_worked,
         max(s.longest_focus_minutes)::int as longest_focus_minutes,
         sum(s.deep_work_blocks)::int as deep_work_blocks
  from public.user_day_summaries s
  join public.organizations o on o.id = s.org_id
  cross join (values ('week'), ('month')) p (period)
  group by 1, 2, 3, 4;
create unique index person_periods_key on insights.person_periods (org_id, user_id, period, starts);

create materialized view insights.team_periods as
  select t.org_id, t.team_id, p.period, p.starts,
         sum(p.total_minutes)::int as total_minutes, sum(p.focus_minutes)::int as focus_minutes,
         sum(p.meeting_minutes)::int as meeting_minutes,
         sum(p.collaboration_minutes)::int as collaboration_minutes,
         sum(p.after_hours_minutes)::int as after_hours_minutes,
         sum(p.weekend_minutes)::int as weekend_minutes, sum(p.billable_minutes)::int as billable_minutes,
         sum(p.log_count)::int as log_count, count(distinct p.user_id)::int as people
  from insights.person_periods p
  join public.team_members t on t.org_id = p.org_id and t.user_id = p.user_id and t.deleted_at is null
  group by 1, 2, 3, 4;
create unique index team_periods_key on insights.team_periods (org_id, team_id, period, starts);

create materialized view insights.project_periods as
  select s.org_id, b.key::uuid as project_id, p.period,
         private.period_start(p.period, s.day, o.settings) as starts,
         sum(b.value::int)::int as total_minutes, count(distinct s.user_id)::int as people
  from public.user_day_summaries s
  join public.organizations o on o.id = s.org_id
  cross join lateral pg_catalog.jsonb_each_text(s.by_project) b
  cross join (values ('week'), ('month')) p (period)
  group by 1, 2, 3, 4;
create unique index project_periods_key on insights.project_periods (org_id, project_id, period, starts);

-- Refreshes the three views without blocking readers.
create or replace function private.refresh_summaries() returns void
  language plpgsql security definer set search_path = ''
as $$
begin
  refresh materialized view concurrently insights.person_periods;
  refresh materialized view concurrently insights.team_periods;
  refresh materialized view concurrently insights.project_periods;
end
$$;
revoke execute on function private.refresh_summaries() from public;
grant execute on function private.refresh_summaries() to service_role;

-- What clients read. The views run as their owner (tally_definer) and filter by the caller.
create view public.person_period_summaries with (security_barrier) as
  select p.* from insights.person_periods p
  where p.org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
     or (p.user_id = (select auth.uid()) and p.org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
     or (p.org_id, p.user_id) in (select l.org_id, l.user_id from private.led_members() l);

create view public.team_period_summaries with (security_barrier) as
  select t.* from insights.team_periods t
  where t.org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
     or exists (select from public.team_members l
                join public.memberships m on m.org_id = l.org_id and m.user_id = l.user_id and m.role = 'manager'
                where l.team_id = t.team_id and l.user_id = (select auth.uid()) and l.is_lead and l.deleted_at is null)
     or (t.org_id = any ((select private.my_org_ids('{viewer}'))::uuid[])
         and (select count(*) from public.team_members c where c.team_id = t.team_id and c.deleted_at is null)
             >= (select private.min_group_size(o.settings) from public.organizations o where o.id = t.org_id));

create view public.project_period_summaries with (security_barrier) as
  select j.* from insights.project_periods j
  where j.org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
     or (j.org_id = any ((select private.my_org_ids('{viewer}'))::uuid[])
         and j.people >= (select private.min_group_size(o.settings) from public.organizations o where o.id = j.org_id));

create view public.org_period_summaries with (security_barrier) as
  select p.org_id, p.period, p.starts,
         sum(p.total_minutes)::int as total_minutes, sum(p.focus_minutes)::int as focus_minutes,
         sum(p.meeting_minutes)::int as meeting_minutes,
         sum(p.collaboration_minutes)::int as collaboration_minutes,
         sum(p.after_hours_minutes)::int as after_hours_minutes,
         sum(p.weekend_minutes)::int as weekend_minutes, sum(p.billable_minutes)::int as billable_minutes,
         sum(p.log_count)::int as log_count, count(distinct p.user_id)::int as people
  from insights.person_periods p
  where p.org_id = any ((select private.my_org_ids('{owner,admin,viewer}'))::uuid[])
  group by 1, 2, 3;

grant select on insights.person_periods, insights.team_periods, insights.project_periods to tally_definer;
grant select on public.organizations, public.memberships, public.user_day_summaries,
  public.team_members to tally_definer;
alter view public.person_period_summaries owner to tally_definer;
alter view public.team_period_summaries owner to tally_definer;
alter view public.project_period_summaries owner to tally_definer;
alter view public.org_period_summaries owner to tally_definer;
alter materialized view insights.person_periods owner to tally_definer;
alter materialized view insights.team_periods owner to tally_definer;
alter materialized view insights.project_periods owner to tally_definer;
alter function private.refresh_summaries() owner to tally_definer;
grant execute on function private.period_start(text, date, jsonb), private.min_group_size(jsonb)
  to tally_definer, service_role, authenticated;
grant select on public.person_period_summaries, public.team_period_summaries,
  public.project_period_summaries, public.org_period_summaries to authenticated, service_role;
