-- Insights, third part: weekly burnout and utilization risk per person, explained.
--
-- From the day summaries of the scored week and the three before it (weeks start on the org's
-- `week_start`). Thresholds come from organizations.settings -> 'risk' (defaults in brackets):
-- contracted_hours [40], after_hours_minutes [120], long_day_hours [10], days_without_break
-- [14], meeting_share [0.5], focus_hours [10]. Burnout is the sum of the factors' points, at
-- most 100; every factor is kept in risk_scores.factors as {factor, value, threshold, points,
-- sentence}, points or not.

create or replace function private.score_week(org uuid, person uuid, week date) returns void
  language plpgsql set search_path = ''
as $$
declare
  settings jsonb := coalesce((select o.settings -> 'risk' from public.organizations o where o.id = org), '{}');
  contracted numeric := coalesce((settings ->> 'contracted_hours')::numeric, 40);
  after_limit numeric := coalesce((settings ->> 'after_hours_minutes')::numeric, 120);
  long_day numeric := coalesce((settings ->> 'long_day_hours')::numeric, 10);
  streak_limit int := coalesce((settings ->> 'days_without_break')::int, 14);
  meeting_limit numeric := coalesce((settings ->> 'meeting_share')::numeric, 0.5);
  focus_limit numeric := coalesce((settings ->> 'focus_hours')::numeric, 10);
  week_end date := week + 6;
  hours numeric[];           -- weekly hours, oldest first (4 weeks)
  total int; focus int; meeting int; billable int; after_hours int; days int; weekend_days int;
  long_days int; streak int; average numeric; after_avg numeric; share numeric;
  factors jsonb := '[]';
  points int;
  score int := 0;
begin
  select array_agg(coalesce((select sum(s.total_minutes) from public.user_day_summaries s
                             where s.org_id = org and s.user_id = person
                               and s.day between week - (3 - i) * 7 and week - (3 - i) * 7 + 6), 0) / 60.0
                   order by i)
    into hours
  from pg_catalog.generate_series(0, 3) i;
  select coalesce(sum(s.total_minutes), 0), coalesce(sum(s.focus_minutes), 0),
         coalesce(sum(s.meeting_minutes), 0), coalesce(sum(s.billable_minutes), 0),
         coalesce(sum(s.after_hours_minutes), 0), count(*) filter (where s.total_minutes > 0),
         count(*) filter (where s.weekend_minutes > 0),
         count(*) filter (where s.total_minutes > long_day * 60)
    into total, focus, meeting, billable, after_hours, days, weekend_days, long_days
  from public.user_day_summaries s
  where s.org_id = org and s.user_id = person and s.day between week and week_end;
  if total = 0 and hours[1] + hours[2] + hours[3] = 0 then
    delete from public.risk_scores r where r.org_id = org and r.user_id = person and r.week_start = week;
    return;
  end if;
  -- Days in a row with work, up to the week's last day (looking back as far as the limit).
  select coalesce(week_end - max(d)::date, streak_limit) into streak
  from pg_catalog.generate_series(week_end - (streak_limit - 1), week_end, interval '1 day') d
  where not exists (select from public.user_day_summaries s where s.org_id = org and s.user_id = person
                    and s.day = d::date and s.total_minutes > 0);

  average := (hours[1] + hours[2] + hours[3] + hours[4]) / 4;
  points := least(25, greatest(0, pg_catalog.round((average - contracted) * 5)))::int;
  factors := factors || pg_catalog.jsonb_build_object('factor', 'overtime', 'value', pg_catalog.round(average, 1),
    'threshold', contracted, 'points', points, 'sentence', pg_catalog.format(
      'Worked %s h a week on average over 4 weeks, against %s contracted hours.',
      pg_catalog.round(average, 1), contracted));
  score := score + points;

  after_avg := case when days > 0 then after_hours::numeric / days else 0 end;
  points := case when after_avg > after_limit then 15 else 0 end;
  factors := factors || pg_catalog.jsonb_build_object('factor', 'after_hours', 'value', pg_catalog.round(after_avg),
    'threshold', after_limit, 'points', points, 'sentence', pg_catalog.format(
      '%s minutes a day outside work hours on average this week (a flag above %s).',
      pg_catalog.round(after_avg), after_limit));
  score := score + points;

  points := least(10, weekend_days * 5);
  factors := factors || pg_catalog.jsonb_build_object('factor', 'weekend_days', 'value', weekend_days,
    'threshold', 0, 'points', points, 'sentence', pg_catalog.format(
      'Worked on %s day(s) off this week.', weekend_days));
  score := score + points;

  points := least(15, long_days * 5);
  factors := factors || pg_catalog.jsonb_build_object('factor', 'long_days', 'value', long_days,
    'threshold', long_day, 'points', points, 'sentence', pg_catalog.format(
      '%s day(s) this week over %s hours.', long_days, long_day));
  score := score + points;

  points := case when streak >= streak_limit then 15 else 0 end;
  factors := factors || pg_catalog.jsonb_build_object('factor', 'no_day_off', 'value', streak,
    'threshold', streak_limit, 'points', points, 'sentence', pg_catalog.format(
      '%s day(s) in a row with work up to the end of the week (a flag at %s).', streak, streak_limit));
  score := score + points;

  points := case when hours[2] < hours[3] and hours[3] < hours[4] then 10 else 0 end;
  factors := factors || pg_catalog.jsonb_build_object('factor', 'rising_hours',
    'value', pg_catalog.jsonb_build_array(pg_catalog.round(hours[2], 1), pg_catalog.round(hours[3], 1),
                                          pg_catalog.round(hours[4], 1)),
    'threshold', 'three weeks rising', 'points', points, 'sentence', pg_catalog.format(
      'Weekly hours over the last three weeks: %s, %s, %s.', pg_catalog.round(hours[2], 1),
      pg_catalog.round(hours[3], 1), pg_catalog.round(hours[4], 1)));
  score := score + points;

  share := case when total > 0 then meeting::numeric / total else 0 end;
  points := case when share > meeting_limit then 10 else 0 end;
  factors := factors || pg_catalog.jsonb_build_object('factor', 'meeting_share', 'value', pg_catalog.round(share, 3),
    'threshold', meeting_limit, 'points', points, 'sentence', pg_catalog.format(
      '%s%% of this week''s time in meetings (a flag above %s%%).', pg_catalog.round(share * 100),
      pg_catalog.round(meeting_limit * 100)));
  score := score + points;

  points := case when total > 0 and focus < focus_limit * 60 then 10 else 0 end;
  factors := factors || pg_catalog.jsonb_build_object('factor', 'low_focus', 'value', pg_catalog.round(focus / 60.0, 1),
    'threshold', focus_limit, 'points', points, 'sentence', pg_catalog.format(
      '%s h of deep work this week (a flag below %s h).', pg_catalog.round(focus / 60.0, 1), focus_limit));
  score := score + points;

  insert into public.risk_scores (org_id, user_id, week_start, burnout_score, utilization,
                                  focus_share, meeting_share, factors)
  values (org, person, week, least(score, 100),
          case when total > 0 then billable::real / total end,
          case when total > 0 then focus::real / total end,
          case when total > 0 then meeting::real / total end, factors)
  on conflict (org_id, user_id, week_start) do update set
    burnout_score = excluded.burnout_score, utilization = excluded.utilization,
    focus_share = excluded.focus_share, meeting_share = excluded.meeting_share,
    factors = excluded.factors;
end
$$;
revoke execute on function private.score_week(uuid, uuid, date) from public;

-- Scores every person of an org (or of every org) for the weeks that touch [from_day, to_day].
create or replace function private.score_range(org uuid, from_day date, to_day date) returns int
  language plpgsql set search_path = ''
as $$
declare
  target record;
  n int := 0;
begin
  for target in
    select distinct s.org_id, s.user_id, private.period_start('week', s.day, o.settings) as week
    from public.user_day_summaries s join public.organizations o on o.id = s.org_id
    where (org is null or s.org_id = org) and s.day between from_day and to_day
  loop
    perform private.score_week(target.org_id, target.user_id, target.week);
    n := n + 1;
  end loop;
  return n;
end
$$;
revoke execute on function private.score_range(uuid, date, date) from public;
grant execute on function private.score_range(uuid, date, date), private.score_week(uuid, uuid, date)
  to service_role;

-- Every hour, each org whose local time has just passed midnight gets yesterday recomputed and
-- its week scored, then the views are refreshed (the schedule fires once across instances).
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
  perform private.refresh_summaries();
  return done;
end
$$;
revoke execute on function private.rollup_nightly() from public;
grant execute on function private.rollup_nightly() to service_role;

insert into private.schedules (name, cron, timezone, kind, payload, next_run_at)
values ('insights.nightly', '5 * * * *', 'UTC', 'insights_rollup', '{"nightly": true}', now())
on conflict (name) do nothing;
