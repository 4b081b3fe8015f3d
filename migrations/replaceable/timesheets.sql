-- Timesheets: periods, their transitions and events, and the lock on the logs they close.
-- The current definitions, applied after the numbered migrations on every migrate.

-- The first day of the period of `org` holding `day`, and its last, by the org's setting
-- (`settings.timesheet_period`: 'week', Monday to Sunday, or 'month').
create or replace function private.timesheet_span(org uuid, day date,
                                                  out period text, out period_start date,
                                                  out period_end date)
  language sql stable security definer set search_path = ''
as $$
  select k.period,
         case k.period when 'month' then pg_catalog.date_trunc('month', day)::date
              else day - (pg_catalog.date_part('isodow', day)::int - 1) end,
         case k.period when 'month' then (pg_catalog.date_trunc('month', day) + interval '1 month - 1 day')::date
              else day - (pg_catalog.date_part('isodow', day)::int - 1) + 6 end
  from (select case when o.settings ->> 'timesheet_period' = 'month' then 'month' else 'week' end as period
        from public.organizations o where o.id = org) k
$$;

-- Who may move a timesheet from one status to another:
--   open | rejected → submitted   the person (or an owner or admin)
--   submitted → approved | rejected   the managers of the person's teams (never their own),
--                                     owners and admins
--   submitted | approved | rejected → open   owners and admins (reopen)
-- Refused transitions are PT409 (409), a caller without the right PT403 (403). The period is
-- fixed at creation from any day in it; decided_by and the times are the server's.
create or replace function private.timesheet_rules() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  me uuid := (select auth.uid());
  api boolean := pg_catalog.current_setting('role') in ('anon', 'authenticated');
  admin boolean;
  reviewer boolean;
  was public.timesheet_status := case when tg_op = 'UPDATE' then old.status else 'open' end;
  span record;
begin
  if tg_op = 'INSERT' then
    select * into span from private.timesheet_span(new.org_id, new.period_start);
    if span is null then
      return new;  -- no such org: the foreign key says so
    end if;
    new.period := span.period;
    new.period_start := span.period_start;
    new.period_end := span.period_end;
    new.submitted_at := null;
    new.decided_at := null;
    new.decided_by := null;
  elsif (new.org_id, new.user_id, new.period, new.period_start, new.period_end)
        is distinct from (old.org_id, old.user_id, old.period, old.period_start, old.period_end) then
    raise exception 'A timesheet''s person and period do not change' using errcode = 'PT409';
  end if;
  if new.status = was and tg_op = 'UPDATE' then
    return new;
  end if;
  admin := not api or new.org_id = any (private.my_org_ids('{owner,admin}'));
  reviewer := admin or (new.user_id <> me and (new.org_id, new.user_id) in
                         (select l.org_id, l.user_id from private.led_members() l));
  if new.status = 'submitted' and was in ('open', 'rejected') then
    if not (admin or new.user_id = me) then
      raise exception 'Only the person submits their timesheet' using errcode = 'PT403';
    end if;
    new.submitted_at := pg_catalog.now();
    new.decided_at := null;
    new.decided_by := null;
  elsif new.status in ('approved', 'rejected') and was = 'submitted' then
    if not reviewer then
      raise exception 'Only a manager of the person''s team, an owner or an admin decides on a timesheet'
        using errcode = 'PT403';
    end if;
    new.decided_at := pg_catalog.now();
    new.decided_by := me;
  elsif new.status = 'open' and was <> 'open' then
    if not admin then
      raise exception 'Only an owner or an admin reopens a timesheet' using errcode = 'PT403';
    end if;
    new.decided_at := pg_catalog.now();
    new.decided_by := me;
  elsif not (tg_op = 'INSERT' and new.status = 'open') then
    raise exception 'A timesheet cannot go from % to %', was, new.status using errcode = 'PT409',
      hint = 'open → submitted → approved | rejected; owners and admins reopen';
  end if;
  if new.status <> 'rejected' then
    new.reason := null;
  end if;
  return new;
end
$$;
alter function private.timesheet_rules() owner to tally_definer;
create or replace trigger timesheet_periods_rules before insert or update on public.timesheet_periods
  for each row execute function private.timesheet_rules();

-- timesheet.submitted | approved | rejected | reopened, to the org's outbound webhooks.
create or replace function private.emit_timesheet_events() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and new.status = old.status then
    return null;
  end if;
  if tg_op = 'INSERT' and new.status = 'open' then
    return null;
  end if;
  perform private.emit_webhook(new.org_id,
    'timesheet.' || case new.status when 'open' then 'reopened' else new.status::text end,
    pg_catalog.jsonb_build_object('timesheet', pg_catalog.to_jsonb(new)));
  return null;
end
$$;
alter function private.emit_timesheet_events() owner to tally_definer;
create or replace trigger timesheet_periods_webhooks after insert or update on public.timesheet_periods
  for each row execute function private.emit_timesheet_events();

-- Why a log of `person` in `org` that starts at `at` may not be changed, or null: the org's
-- books are closed up to lock_date, or the person's timesheet of that day is approved. The day
-- is the person's local one (their time zone, else the org's).
create or replace function private.log_lock(org uuid, person uuid, at timestamptz) returns text
  language sql stable security definer set search_path = ''
as $$
  with d as (
    select (at at time zone coalesce(p.timezone, o.timezone))::date as day, o.lock_date
    from public.organizations o left join public.profiles p on p.id = person
    where o.id = org
  )
  select coalesce(
    (select 'the organization''s books are closed up to ' || d.lock_date from d where d.day <= d.lock_date),
    (select 'the timesheet of ' || t.period_start || ' to ' || t.period_end || ' is approved'
     from d, public.timesheet_periods t
     where t.org_id = org and t.user_id = person and t.status = 'approved'
       and t.period_start <= d.day and d.day <= t.period_end))
$$;

-- The lock on logs: a write (insert, update, delete) of a log in a closed period — before or
-- after the change — is refused with PT423 (423 Locked) for everyone but the org's owners and
-- admins, whose write goes through and is audited as an `override`. Server jobs (the service
-- role: integrations' drafts, classification) are refused too.
create or replace function private.guard_locked_logs() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  why text;
  row_org uuid := case when tg_op = 'DELETE' then old.org_id else new.org_id end;
  row_id uuid := case when tg_op = 'DELETE' then old.id else new.id end;
begin
  if pg_catalog.current_setting('role') not in ('anon', 'authenticated', 'service_role') then
    return case when tg_op = 'DELETE' then old else new end;  -- the database's owner
  end if;
  -- An insert the caller may not make at all is RLS's to refuse (42501), telling nothing.
  if tg_op = 'INSERT' and pg_catalog.current_setting('role') <> 'service_role'
     and not (new.org_id = any (private.my_org_ids('{owner,admin}'))
              or (new.user_id = (select auth.uid())
                  and new.org_id = any (private.my_org_ids('{manager,member}')))) then
    return new;
  end if;
  if tg_op <> 'INSERT' then
    why := private.log_lock(old.org_id, old.user_id,
      coalesce(old.started_at, old.ended_at - pg_catalog.make_interval(mins => coalesce(old.duration_minutes, 0)),
               old.created_at));
  end if;
  if why is null and tg_op <> 'DELETE' then
    why := private.log_lock(new.org_id, new.user_id,
      coalesce(new.started_at, new.ended_at - pg_catalog.make_interval(mins => coalesce(new.duration_minutes, 0)),
               new.created_at, pg_catalog.now()));
  end if;
  if why is null then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  if (select auth.uid()) is not null and row_org = any (private.my_org_ids('{owner,admin}')) then
    insert into public.audit_log (org_id, actor_id, action, table_name, row_id, details)
    values (row_org, (select auth.uid()), 'override', 'time_logs', row_id,
            pg_catalog.jsonb_build_object('operation', pg_catalog.lower(tg_op), 'locked', why));
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  raise exception 'This log is locked: %', why using errcode = 'PT423',
    hint = 'An owner or admin can reopen the timesheet or move the lock date';
end
$$;
alter function private.guard_locked_logs() owner to tally_definer;
grant select on public.timesheet_periods to tally_definer;
create or replace trigger time_logs_locked before insert or update or delete on public.time_logs
  for each row execute function private.guard_locked_logs();
