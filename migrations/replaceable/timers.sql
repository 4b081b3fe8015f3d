-- Running timers: one per person and org, through every door (REST, functions, sync-push).
-- The current definitions, applied after the numbered migrations on every migrate.

-- Whether a log is a running timer (the predicate of time_logs_running_timer_idx).
create or replace function private.timer_running(log public.time_logs) returns boolean
  language sql immutable set search_path = ''
as $$
  select log.source = 'timer' and log.ended_at is null and log.started_at is not null
         and log.deleted_at is null
$$;

-- The per-person lock every start and stop takes, so two starts at once run one after the
-- other; returns the clock once the lock is held (the instant a start or stop happens, in the
-- order they took the lock).
create or replace function private.lock_timers(org uuid, person uuid) returns timestamptz
  language sql volatile set search_path = ''
as $$
  select pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended(org::text || '/' || person::text, 20261206));
  select pg_catalog.clock_timestamp();
$$;

-- A log that becomes a running timer stops the person's running one at its own start (a timer
-- is at most a day long); one started earlier than the running one is stored already stopped at
-- that one's start. A timer given a duration but no end ends after it. Runs as the caller (RLS
-- applies), before time_logs_prepare.
create or replace function private.one_running_timer() returns trigger
  language plpgsql set search_path = ''
as $$
declare
  other record;
begin
  if new.source = 'timer' and new.ended_at is null and new.started_at is not null
     and new.duration_minutes is not null then
    new.ended_at := new.started_at + pg_catalog.make_interval(mins => new.duration_minutes);
  end if;
  if not private.timer_running(new)
     or (tg_op = 'UPDATE' and private.timer_running(old)
         and (old.org_id, old.user_id) = (new.org_id, new.user_id)) then
    return new;
  end if;
  perform private.lock_timers(new.org_id, new.user_id);
  for other in
    select l.id, l.started_at from public.time_logs l
    where l.org_id = new.org_id and l.user_id = new.user_id and l.id <> new.id
      and l.source = 'timer' and l.ended_at is null and l.started_at is not null
      and l.deleted_at is null
  loop
    if other.started_at <= new.started_at then
      update public.time_logs
         set ended_at = greatest(least(new.started_at, other.started_at + interval '1 day'),
                                 other.started_at + interval '1 microsecond'),
             duration_minutes = null
       where id = other.id;
    else
      new.ended_at := least(other.started_at, new.started_at + interval '1 day');
      new.duration_minutes := null;
    end if;
  end loop;
  return new;
end
$$;
create or replace trigger time_logs_one_timer before insert or update on public.time_logs
  for each row execute function private.one_running_timer();

-- Timers running longer than `hours`, not reminded of yet: each gets one `timer.running_long`
-- (outbound webhooks and its person's timer channel). Returns how many.
create or replace function private.remind_long_timers(hours int) returns int
  language plpgsql security definer set search_path = ''
as $$
declare
  due record;
  n int := 0;
begin
  for due in
    select l.id, l.org_id, l.user_id, pg_catalog.to_jsonb(l) as log from public.time_logs l
    where l.source = 'timer' and l.ended_at is null and l.started_at is not null
      and l.deleted_at is null
      and l.started_at < pg_catalog.now() - pg_catalog.make_interval(hours => hours)
      and not exists (select from private.timer_reminders r where r.time_log_id = l.id)
    limit 1000
  loop
    insert into private.timer_reminders (time_log_id, org_id) values (due.id, due.org_id)
      on conflict do nothing;
    if found then
      perform private.emit_webhook(due.org_id, 'timer.running_long',
                                   pg_catalog.jsonb_build_object('log', due.log, 'hours', hours));
      perform realtime.send(pg_catalog.jsonb_build_object('log', due.log, 'hours', hours),
                            'timer.running_long', 'timer:' || due.org_id || ':' || due.user_id);
      n := n + 1;
    end if;
  end loop;
  return n;
end
$$;
alter function private.remind_long_timers(int) owner to tally_definer;
revoke execute on function private.remind_long_timers(int) from public;
grant execute on function private.remind_long_timers(int) to service_role;
grant select, insert on private.timer_reminders to tally_definer;
