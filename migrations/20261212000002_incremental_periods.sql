-- The weekly and monthly summaries were materialized views, refreshed whole (27 s over a year
-- of 1,000 people, however few days changed) and only hourly. They are tables now, kept
-- current by the rollup: each batch of recomputed days recomputes exactly the person periods
-- (with each person's minutes per project in them) that those days fall in. Team and project
-- periods are views summing the person periods (team membership counts as it is now). Clients
-- read them through the same views of public as before, with the same columns.
drop view public.person_period_summaries, public.team_period_summaries,
  public.project_period_summaries, public.org_period_summaries;
drop materialized view insights.team_periods;
drop materialized view insights.project_periods;
drop materialized view insights.person_periods;

create table insights.person_periods (
    org_id                uuid not null references public.organizations (id) on delete cascade,
    user_id               uuid not null references auth.users (id) on delete cascade,
    period                text not null check (period in ('week', 'month')),
    starts                date not null,
    total_minutes         integer not null,
    focus_minutes         integer not null,
    meeting_minutes       integer not null,
    collaboration_minutes integer not null,
    after_hours_minutes   integer not null,
    weekend_minutes       integer not null,
    billable_minutes      integer not null,
    log_count             integer not null,
    days_worked           integer not null,
    longest_focus_minutes integer not null,
    deep_work_blocks      integer not null,
    -- Minutes per project ({project id: minutes}), which the project periods sum.
    by_project            jsonb not null,
    primary key (org_id, user_id, period, starts)
);
create index person_periods_user_idx on insights.person_periods (user_id);

-- Only the definer-owned functions and views below touch them (tally_definer bypasses RLS).
alter table insights.person_periods enable row level security;
alter table insights.person_periods force row level security;

create view insights.team_periods as
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

create view insights.project_periods as
  select p.org_id, b.key::uuid as project_id, p.period, p.starts,
         sum(b.value::int)::int as total_minutes, count(*)::int as people
  from insights.person_periods p
  cross join lateral pg_catalog.jsonb_each_text(p.by_project) b
  group by 1, 2, 3, 4;

-- The day after the last of a period that starts on `starts`.
create or replace function private.period_end(period text, starts date) returns date
  language sql immutable set search_path = ''
as $$
  select case period when 'week' then starts + 7
                     else (starts + pg_catalog.make_interval(months => 1))::date end
$$;

-- Recomputes the person periods (with their minutes per project) that the days
-- (k_org[i], k_user[i], k_day[i]) fall in, from the day summaries as they are now.
create or replace function private.refresh_periods(k_org uuid[], k_user uuid[], k_day date[])
returns void
  language sql security definer set search_path = '' set plan_cache_mode = force_custom_plan
  set work_mem = '64MB'
as $$
  with days as (
    select distinct k.org_id, k.user_id, k.day from unnest(k_org, k_user, k_day) k (org_id, user_id, day)
  ),
  -- private.period_start spelled out (a call per row would cost more than the row).
  keys as (
    select distinct d.org_id, d.user_id, p.period,
           case p.period
             when 'week' then d.day - ((pg_catalog.date_part('isodow', d.day)::int - o.week_start + 7) % 7)
             else pg_catalog.date_trunc('month', d.day)::date
           end as starts
    from days d
    join (select o.id, coalesce((o.settings ->> 'week_start')::int, 1) as week_start
          from public.organizations o) o on o.id = d.org_id
    cross join (values ('week'), ('month')) p (period)
  ),
  summaries as (
    select k.org_id, k.user_id, k.period, k.starts, s.total_minutes, s.focus_minutes,
           s.meeting_minutes, s.collaboration_minutes, s.after_hours_minutes, s.weekend_minutes,
           s.billable_minutes, s.log_count, s.longest_focus_minutes, s.deep_work_blocks, s.by_project
    from keys k
    join public.user_day_summaries s on s.org_id = k.org_id and s.user_id = k.user_id
     and s.day >= k.starts and s.day < private.period_end(k.period, k.starts)
  ),
  projects as (
    select m.org_id, m.user_id, m.period, m.starts,
           pg_catalog.jsonb_object_agg(m.project, m.minutes) as by_project
    from (
      select s.org_id, s.user_id, s.period, s.starts, b.key as project,
             sum(b.value::int)::int as minutes
      from summaries s cross join lateral pg_catalog.jsonb_each_text(s.by_project) b
      group by 1, 2, 3, 4, 5
    ) m
    group by 1, 2, 3, 4
  ),
  fresh as (
    select s.org_id, s.user_id, s.period, s.starts,
           sum(s.total_minutes)::int as total_minutes, sum(s.focus_minutes)::int as focus_minutes,
           sum(s.meeting_minutes)::int as meeting_minutes,
           sum(s.collaboration_minutes)::int as collaboration_minutes,
           sum(s.after_hours_minutes)::int as after_hours_minutes,
           sum(s.weekend_minutes)::int as weekend_minutes, sum(s.billable_minutes)::int as billable_minutes,
           sum(s.log_count)::int as log_count, count(*)::int as days_worked,
           max(s.longest_focus_minutes)::int as longest_focus_minutes,
           sum(s.deep_work_blocks)::int as deep_work_blocks
    from summaries s
    group by 1, 2, 3, 4
  ),
  gone as (
    delete from insights.person_periods p using keys k
    where (p.org_id, p.user_id, p.period, p.starts) = (k.org_id, k.user_id, k.period, k.starts)
      and (k.org_id, k.user_id, k.period, k.starts)
          not in (select f.org_id, f.user_id, f.period, f.starts from fresh f)
  )
  insert into insights.person_periods
  select f.*, coalesce(j.by_project, '{}')
  from fresh f
  left join projects j
    on (j.org_id, j.user_id, j.period, j.starts) = (f.org_id, f.user_id, f.period, f.starts)
  on conflict (org_id, user_id, period, starts) do update set
    total_minutes = excluded.total_minutes, focus_minutes = excluded.focus_minutes,
    meeting_minutes = excluded.meeting_minutes, collaboration_minutes = excluded.collaboration_minutes,
    after_hours_minutes = excluded.after_hours_minutes, weekend_minutes = excluded.weekend_minutes,
    billable_minutes = excluded.billable_minutes, log_count = excluded.log_count,
    days_worked = excluded.days_worked, longest_focus_minutes = excluded.longest_focus_minutes,
    deep_work_blocks = excluded.deep_work_blocks, by_project = excluded.by_project
$$;

-- Rebuilds every period of one org (or of every org) from its day summaries: after its week
-- start changes, or to repair.
create or replace function private.rebuild_periods(org uuid) returns void
  language plpgsql security definer set search_path = ''
as $$
begin
  delete from insights.person_periods p where org is null or p.org_id = org;
  perform private.refresh_periods(array_agg(s.org_id), array_agg(s.user_id), array_agg(s.day))
  from public.user_day_summaries s where org is null or s.org_id = org;
end
$$;

-- Every period of every org, rebuilt (what refreshing the views was).
create or replace function private.refresh_summaries() returns void
  language sql security definer set search_path = ''
as $$ select private.rebuild_periods(null) $$;

-- An org's weeks move with its week start.
create or replace function private.periods_follow_week_start() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  perform private.rebuild_periods(new.id);
  return new;
end
$$;
create trigger organizations_week_start after update of settings on public.organizations
  for each row when (old.settings -> 'week_start' is distinct from new.settings -> 'week_start')
  execute function private.periods_follow_week_start();

-- The nightly run no longer refreshes anything whole: its days' periods follow them.
create or replace function private.rollup_nightly() returns int
  language plpgsql set search_path = ''
as $$
declare
  org record;
  done int := 0;
begin
  for org in
    select o.id, (pg_catalog.now() at time zone o.timezone)::date - 1 as yesterday
    from public.organizations o
    where pg_catalog.date_part('hour', pg_catalog.now() at time zone o.timezone) = 0
  loop
    done := done + private.rollup_range(org.id, org.yesterday, org.yesterday);
    perform private.score_range(org.id, org.yesterday, org.yesterday);
  end loop;
  return done;
end
$$;

-- What clients read, as before. The views run as their owner (tally_definer) and filter by
-- the caller.
create view public.person_period_summaries with (security_barrier) as
  select p.org_id, p.user_id, p.period, p.starts, p.total_minutes, p.focus_minutes,
         p.meeting_minutes, p.collaboration_minutes, p.after_hours_minutes, p.weekend_minutes,
         p.billable_minutes, p.log_count, p.days_worked, p.longest_focus_minutes, p.deep_work_blocks
  from insights.person_periods p
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

grant select, insert, update, delete on insights.person_periods to tally_definer;
grant select on insights.team_periods, insights.project_periods to tally_definer;
alter table insights.person_periods owner to tally_definer;
alter view insights.team_periods owner to tally_definer;
alter view insights.project_periods owner to tally_definer;
alter view public.person_period_summaries owner to tally_definer;
alter view public.team_period_summaries owner to tally_definer;
alter view public.project_period_summaries owner to tally_definer;
alter view public.org_period_summaries owner to tally_definer;
alter function private.refresh_periods(uuid[], uuid[], date[]) owner to tally_definer;
alter function private.rebuild_periods(uuid) owner to tally_definer;
alter function private.refresh_summaries() owner to tally_definer;
alter function private.periods_follow_week_start() owner to tally_definer;
revoke execute on function private.refresh_periods(uuid[], uuid[], date[]),
  private.rebuild_periods(uuid), private.refresh_summaries(), private.periods_follow_week_start()
  from public;
grant execute on function private.refresh_periods(uuid[], uuid[], date[]), private.rebuild_periods(uuid),
  private.refresh_summaries() to service_role;
revoke execute on function private.period_end(text, date) from public;
grant execute on function private.period_end(text, date) to tally_definer, service_role;
grant select on public.person_period_summaries, public.team_period_summaries,
  public.project_period_summaries, public.org_period_summaries to authenticated, service_role;

-- What the views held, filled from the day summaries already there.
select private.rebuild_periods(null);
