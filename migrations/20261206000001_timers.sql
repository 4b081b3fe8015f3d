-- Running timers: a log with source 'timer', a start and no end is running. At most one runs per
-- person and org (this index; a start while another runs stops that one, see
-- replaceable/timers.sql). A timer that runs long is reminded of once (timer_reminders).
create unique index time_logs_running_timer_idx on public.time_logs (org_id, user_id)
    where source = 'timer' and ended_at is null and started_at is not null and deleted_at is null;

create table private.timer_reminders (
    time_log_id uuid primary key references public.time_logs (id) on delete cascade,
    org_id      uuid not null references public.organizations (id) on delete cascade,
    reminded_at timestamptz not null default now()
);
alter table private.timer_reminders enable row level security;
alter table private.timer_reminders force row level security;
grant select, insert, delete on private.timer_reminders to service_role;

-- Broadcast from the database, as Supabase's realtime.send: every instance delivers it to the
-- sockets joined to `topic` (through the relay's NOTIFY channel; realtime.spill when long).
create or replace function realtime.send(payload jsonb, event text, topic text,
                                         private boolean default true) returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  message text := pg_catalog.jsonb_build_object(
    'i', 'database', 'k', 'b', 't', 'realtime:' || topic,
    'p', pg_catalog.jsonb_build_object('type', 'broadcast', 'event', event, 'payload', payload))::text;
  spilled bigint;
begin
  if pg_catalog.octet_length(message) > 7900 then
    insert into realtime.spill (payload) values (message) returning id into spilled;
    message := pg_catalog.jsonb_build_object('i', 'database', 'spill', spilled)::text;
  end if;
  perform pg_catalog.pg_notify('tally_realtime', message);
end
$$;
alter function realtime.send(jsonb, text, text, boolean) owner to tally_definer;
revoke execute on function realtime.send(jsonb, text, text, boolean) from public;
grant execute on function realtime.send(jsonb, text, text, boolean) to service_role;

-- A person's timer channel `timer:{org_id}:{user_id}` is always private and heard by whoever
-- may read that person's logs; only the database sends on it.
create policy messages_timer_select on realtime.messages for select to authenticated
  using (realtime.topic() like 'timer:%' and exists (
    select from (select private.try_uuid(pg_catalog.split_part(realtime.topic(), ':', 2)) as org_id,
                        private.try_uuid(pg_catalog.split_part(realtime.topic(), ':', 3)) as user_id) t
    where t.org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
       or (t.user_id = (select auth.uid()) and t.org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
       or (t.org_id, t.user_id) in (select l.org_id, l.user_id from private.led_members() l)));

-- Timers running longer than TALLY_TIMER_REMIND_HOURS are looked for every five minutes.
insert into private.schedules (name, cron, timezone, kind, payload, next_run_at)
values ('timers.remind', '*/5 * * * *', 'UTC', 'timer_reminders', '{}', pg_catalog.now())
on conflict (name) do nothing;
