-- Log events: outbound webhooks (log.created, log.updated, log.finalized, log.deleted,
-- timer.started, timer.stopped) and the timer broadcasts on `timer:{org_id}:{user_id}`.
-- The current definition, applied after the numbered migrations on every migrate.

-- private.emit_log_events (first defined in 20261202000001_integrations.sql)
create or replace function private.emit_log_events() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  org uuid := case when tg_op = 'DELETE' then old.org_id else new.org_id end;
  log jsonb := case when tg_op = 'DELETE' then pg_catalog.to_jsonb(old) else pg_catalog.to_jsonb(new) end;
  was_running boolean := tg_op <> 'INSERT' and private.timer_running(old);
  is_running boolean := tg_op <> 'DELETE' and private.timer_running(new);
  ignored constant text[] := array['updated_at', 'version'];
  events text[] := '{}';
  event text;
begin
  if tg_op = 'INSERT' and new.deleted_at is null then
    events := array['log.created'];
  elsif tg_op = 'DELETE' and old.deleted_at is null then
    events := array['log.deleted'];
  elsif tg_op = 'UPDATE' and new.deleted_at is not null and old.deleted_at is null then
    events := array['log.deleted'];
  elsif tg_op = 'UPDATE' and new.status = 'finalized' and old.status is distinct from 'finalized' then
    events := array['log.finalized'];
  elsif tg_op = 'UPDATE' and new.deleted_at is null
        and pg_catalog.to_jsonb(new) - ignored <> pg_catalog.to_jsonb(old) - ignored then
    events := array['log.updated'];
  end if;
  if is_running and not was_running then
    events := events || 'timer.started'::text;
  elsif was_running and not is_running and tg_op = 'UPDATE' and new.deleted_at is null then
    events := events || 'timer.stopped'::text;
  end if;
  foreach event in array events loop
    if event like 'timer.%' then
      perform realtime.send(pg_catalog.jsonb_build_object('log', log), event,
                            'timer:' || org || ':' || (log ->> 'user_id'));
    end if;
  end loop;
  if pg_catalog.cardinality(events) = 0
     or not exists (select 1 from public.integrations i
                    where i.org_id = org and i.config ? 'outbound') then
    return null;
  end if;
  foreach event in array events loop
    perform private.emit_webhook(org, event, pg_catalog.jsonb_build_object('log', log));
  end loop;
  return null;
end
$$;
