-- Day summaries: which days a change makes dirty, and recomputing them.
-- The current definition, applied after the numbered migrations on every migrate.

-- private.compute_days (last changed in 20261212000002_incremental_periods.sql: no function call
-- per row)
create or replace function private.compute_days(k_org uuid[], k_user uuid[], k_day date[])
returns setof public.user_day_summaries
  -- Planned for each batch's keys: a generic plan (PostgreSQL 18 caches SQL functions' plans)
  -- took five times as long.
  language sql stable set search_path = '' set plan_cache_mode = force_custom_plan
  -- A batch's pieces are sorted in memory, not on disk.
  set work_mem = '64MB'
as $$
  with keys as (
    select distinct k.org_id, k.user_id, k.day from unnest(k_org, k_user, k_day) k (org_id, user_id, day)
  ),
  -- Each person's time zone and work hours, once (a function call per row would cost more
  -- than the row: functions with a pinned search_path are never inlined; materialized, or the
  -- planner calls it for every log again).
  people as materialized (
    select g.*, wh.day_start, wh.day_end, wh.work_days
    from (
      select k.org_id, k.user_id, coalesce(p.timezone, o.timezone) as tz, o.settings,
             min(k.day) as lo, max(k.day) as hi
      from keys k join public.organizations o on o.id = k.org_id
      left join public.profiles p on p.id = k.user_id
      group by 1, 2, 3, 4
    ) g, lateral private.work_hours(g.settings) wh
  ),
  logs as (
    select l.id, l.org_id, l.user_id, pp.tz, pp.day_start, pp.day_end, pp.work_days, l.project_id,
           l.billable, wm.key as mode, act.key as activity, l.duration_minutes, l.created_at,
           coalesce(l.started_at, l.ended_at - pg_catalog.make_interval(mins => l.duration_minutes)) as s,
           -- A running timer (private.timer_running, spelled out) counts up to now (at most a day).
           coalesce(l.ended_at, l.started_at + pg_catalog.make_interval(mins => l.duration_minutes),
                    case when l.source = 'timer' and l.started_at is not null
                         then least(pg_catalog.now(), l.started_at + interval '1 day') end) as e
    from people pp
    join public.time_logs l on l.org_id = pp.org_id and l.user_id = pp.user_id
    left join public.work_modes wm on wm.id = l.work_mode_id
    left join public.activity_types act on act.id = l.activity_type_id
    where l.deleted_at is null and l.status in ('ready', 'needs_review', 'finalized')
      -- Only logs that can touch the days asked for (a log is at most a day long; time zones
      -- shift a local day by at most 14 hours).
      and coalesce(l.started_at, l.ended_at, l.created_at) >= pp.lo - 2
      and coalesce(l.started_at, l.ended_at, l.created_at) < pp.hi + 3
  ),
  pieces as (
    select lg.id, lg.org_id, lg.user_id, lg.tz, lg.day_start, lg.day_end, lg.work_days,
           lg.project_id, lg.billable, lg.mode, lg.activity, d::date as day,
           greatest(lg.s, (d::date)::timestamp at time zone lg.tz) as ps,
           least(lg.e, (d::date + 1)::timestamp at time zone lg.tz) as pe,
           null::int as untimed_minutes
    from logs lg, pg_catalog.generate_series((lg.s at time zone lg.tz)::date,
                                             ((lg.e - interval '1 microsecond') at time zone lg.tz)::date,
                                             interval '1 day') d
    where lg.e > lg.s
    union all
    select lg.id, lg.org_id, lg.user_id, lg.tz, lg.day_start, lg.day_end, lg.work_days,
           lg.project_id, lg.billable, lg.mode, lg.activity, (lg.created_at at time zone lg.tz)::date,
           null, null,
           coalesce(lg.duration_minutes, 0)
    from logs lg where lg.s is null or lg.e is null or lg.e <= lg.s
  ),
  measured as (
    select pc.*,
           coalesce(pg_catalog.date_part('epoch', pc.pe - pc.ps), pc.untimed_minutes * 60) as secs,
           pg_catalog.date_part('isodow', pc.day)::int = any (pc.work_days) as workday,
           (pc.day + pc.day_start) at time zone pc.tz as ws,
           (pc.day + pc.day_end) at time zone pc.tz as we
    from pieces pc
    join keys k on k.org_id = pc.org_id and k.user_id = pc.user_id and k.day = pc.day
  ),
  classified as (
    select m.*,
           case when not m.workday then 0
                when m.ps is null then 0
                else m.secs - greatest(0, pg_catalog.date_part('epoch', least(m.pe, m.we) - greatest(m.ps, m.ws)))
           end as after_secs
    from measured m
  ),
  totals as (
    select c.org_id, c.user_id, c.day,
           pg_catalog.round(sum(c.secs) / 60)::int as total_minutes,
           pg_catalog.round(coalesce(sum(c.secs) filter (where c.mode = 'deep_work'), 0) / 60)::int as focus_minutes,
           pg_catalog.round(coalesce(sum(c.secs) filter (where c.mode = 'meeting'), 0) / 60)::int as meeting_minutes,
           pg_catalog.round(coalesce(sum(c.secs) filter (where c.mode = 'collaboration'), 0) / 60)::int as collaboration_minutes,
           pg_catalog.round(sum(c.after_secs) / 60)::int as after_hours_minutes,
           pg_catalog.round(coalesce(sum(c.secs) filter (where not c.workday), 0) / 60)::int as weekend_minutes,
           pg_catalog.round(coalesce(sum(c.secs) filter (where c.billable), 0) / 60)::int as billable_minutes,
           count(distinct c.id)::int as log_count,
           min(c.ps) as first_start, max(c.pe) as last_end
    from classified c group by 1, 2, 3
  ),
  breakdowns as (
    select b.org_id, b.user_id, b.day,
           pg_catalog.jsonb_object_agg(b.name, b.minutes) filter (where b.kind = 'project') as by_project,
           pg_catalog.jsonb_object_agg(b.name, b.minutes) filter (where b.kind = 'activity') as by_activity,
           pg_catalog.jsonb_object_agg(b.name, b.minutes) filter (where b.kind = 'mode') as by_mode
    from (
      select c.org_id, c.user_id, c.day, x.kind, x.name, pg_catalog.round(sum(c.secs) / 60)::int as minutes
      from classified c,
      lateral (values ('project', c.project_id::text), ('activity', c.activity), ('mode', c.mode)) x (kind, name)
      where x.name is not null
      group by 1, 2, 3, 4, 5
    ) b group by 1, 2, 3
  ),
  -- Deep work stretches: deep-work pieces that touch or overlap are one stretch.
  deep as (
    select c.org_id, c.user_id, c.day, c.ps, c.pe,
           max(c.pe) over (partition by c.org_id, c.user_id, c.day order by c.ps, c.pe
                           rows between unbounded preceding and 1 preceding) as reach
    from classified c where c.mode = 'deep_work' and c.ps is not null
  ),
  islands as (
    select d.*, sum(case when d.reach is null or d.ps > d.reach then 1 else 0 end)
                  over (partition by d.org_id, d.user_id, d.day order by d.ps, d.pe) as island
    from deep d
  ),
  stretches as (
    select i.org_id, i.user_id, i.day,
           pg_catalog.round(pg_catalog.date_part('epoch', max(i.pe) - min(i.ps)) / 60)::int as minutes
    from islands i group by 1, 2, 3, i.island
  ),
  focus as (
    select s.org_id, s.user_id, s.day, max(s.minutes) as longest,
           (count(*) filter (where s.minutes >= 90))::int as blocks
    from stretches s group by 1, 2, 3
  )
  select null::uuid, t.org_id, t.user_id, t.day, t.total_minutes, t.focus_minutes, t.meeting_minutes,
         t.collaboration_minutes, t.after_hours_minutes, t.weekend_minutes, t.billable_minutes,
         t.log_count,
         coalesce(b.by_project, '{}'), coalesce(b.by_activity, '{}'), coalesce(b.by_mode, '{}'),
         coalesce(f.longest, 0), coalesce(f.blocks, 0), t.first_start, t.last_end,
         null::timestamptz, null::timestamptz
  from totals t
  left join breakdowns b on (b.org_id, b.user_id, b.day) = (t.org_id, t.user_id, t.day)
  left join focus f on (f.org_id, f.user_id, f.day) = (t.org_id, t.user_id, t.day)
$$;

-- private.rollup_dirty (last changed in 20261212000002_incremental_periods.sql: the periods of
-- the days it recomputes follow, in the same transaction)
create or replace function private.rollup_dirty(max_days int default 10000) returns int
  language plpgsql set search_path = '' set plan_cache_mode = force_custom_plan
as $$
declare
  taken int;
  orgs uuid[];
  people uuid[];
  days date[];
begin
  with picked as (
    select d.ctid from private.dirty_days d
    order by d.org_id, d.user_id, d.day
    limit max_days for update skip locked
  ),
  -- By row address: a join with the CTE is planned as a nested loop (10,000² rows).
  cleared as (
    delete from private.dirty_days d where d.ctid = any (array(select p.ctid from picked p))
    returning d.org_id, d.user_id, d.day
  ),
  fresh as (
    select c.* from private.compute_days(
      (select array_agg(org_id) from cleared), (select array_agg(user_id) from cleared),
      (select array_agg(day) from cleared)) c
  ),
  written as (
    insert into public.user_day_summaries (org_id, user_id, day, total_minutes, focus_minutes,
      meeting_minutes, collaboration_minutes, after_hours_minutes, weekend_minutes,
      billable_minutes, log_count, by_project, by_activity, by_work_mode, longest_focus_minutes,
      deep_work_blocks, first_start, last_end)
    select f.org_id, f.user_id, f.day, f.total_minutes, f.focus_minutes, f.meeting_minutes,
      f.collaboration_minutes, f.after_hours_minutes, f.weekend_minutes, f.billable_minutes,
      f.log_count, f.by_project, f.by_activity, f.by_work_mode, f.longest_focus_minutes,
      f.deep_work_blocks, f.first_start, f.last_end
    from fresh f
    on conflict (org_id, user_id, day) do update set
      total_minutes = excluded.total_minutes, focus_minutes = excluded.focus_minutes,
      meeting_minutes = excluded.meeting_minutes, collaboration_minutes = excluded.collaboration_minutes,
      after_hours_minutes = excluded.after_hours_minutes, weekend_minutes = excluded.weekend_minutes,
      billable_minutes = excluded.billable_minutes, log_count = excluded.log_count,
      by_project = excluded.by_project, by_activity = excluded.by_activity,
      by_work_mode = excluded.by_work_mode, longest_focus_minutes = excluded.longest_focus_minutes,
      deep_work_blocks = excluded.deep_work_blocks, first_start = excluded.first_start,
      last_end = excluded.last_end
    returning 1
  ),
  emptied as (
    delete from public.user_day_summaries s using cleared c
    where (s.org_id, s.user_id, s.day) = (c.org_id, c.user_id, c.day)
      -- A hashed NOT IN: an anti join on a CTE is planned as a nested loop (10,000² rows).
      and (c.org_id, c.user_id, c.day) not in (select f.org_id, f.user_id, f.day from fresh f)
    returning 1
  )
  select count(*), array_agg(c.org_id), array_agg(c.user_id), array_agg(c.day)
  into taken, orgs, people, days from cleared c;
  if taken > 0 then
    perform private.refresh_periods(orgs, people, days);
  end if;
  return taken;
end
$$;

-- private.rollup_range (last changed in 20261212000002_incremental_periods.sql: the local days of
-- each log spelled out, as private.log_days computes them, instead of a call per log)
-- Marks an org's (or every org's) days in [from_day, to_day] dirty, for every person with logs
-- or summaries there, then recomputes them all.
create or replace function private.rollup_range(org uuid, from_day date, to_day date) returns int
  language plpgsql set search_path = ''
as $$
declare
  done int := 0;
  n int;
begin
  insert into private.dirty_days (org_id, user_id, day)
  select distinct l.org_id, l.user_id, d::date
  from (
    select l.org_id, l.user_id, l.created_at, coalesce(p.timezone, o.timezone) as tz,
           coalesce(l.started_at, l.ended_at - pg_catalog.make_interval(mins => l.duration_minutes)) as s,
           coalesce(l.ended_at, l.started_at + pg_catalog.make_interval(mins => l.duration_minutes)) as e
    from public.time_logs l
    join public.organizations o on o.id = l.org_id
    left join public.profiles p on p.id = l.user_id
    where (org is null or l.org_id = org)
      and coalesce(l.started_at, l.ended_at, l.created_at) >= from_day - 2
      and coalesce(l.started_at, l.ended_at, l.created_at) < to_day + 3
  ) l,
  pg_catalog.generate_series(
    case when l.e > l.s then (l.s at time zone l.tz)::date else (l.created_at at time zone l.tz)::date end,
    case when l.e > l.s then ((l.e - interval '1 microsecond') at time zone l.tz)::date
         else (l.created_at at time zone l.tz)::date end,
    interval '1 day') d
  where d::date between from_day and to_day
  union
  select s.org_id, s.user_id, s.day from public.user_day_summaries s
  where (org is null or s.org_id = org) and s.day between from_day and to_day
  on conflict do nothing;
  loop
    n := private.rollup_dirty(10000);
    done := done + n;
    exit when n = 0;
  end loop;
  return done;
end
$$;

-- Marks the days of every running timer dirty, so each rollup counts them up to its now.
-- Returns how many days were marked.
create or replace function private.mark_running_timers() returns int
  language sql volatile set search_path = ''
as $$
  with marked as (
    insert into private.dirty_days (org_id, user_id, day)
    select distinct l.org_id, l.user_id, d
    from public.time_logs l
    join public.organizations o on o.id = l.org_id
    left join public.profiles p on p.id = l.user_id,
    lateral private.log_days(l.started_at, least(pg_catalog.now(), l.started_at + interval '1 day'),
                             null, l.created_at, coalesce(p.timezone, o.timezone)) d
    where l.source = 'timer' and l.ended_at is null and l.started_at is not null
      and l.deleted_at is null
    on conflict do nothing
    returning 1
  )
  select count(*)::int from marked
$$;
revoke execute on function private.mark_running_timers() from public;
grant execute on function private.mark_running_timers() to service_role;
