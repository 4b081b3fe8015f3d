-- Time logs: the rules a write must meet (RLS refusals left to RLS).
-- The current definition, applied after the numbered migrations on every migrate.

-- private.prepare_time_log (last changed in 20261204000002_rls_before_rules.sql)
create or replace function private.prepare_time_log() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if new.duration_minutes is null and new.started_at is not null and new.ended_at is not null
     and new.ended_at > new.started_at then
    new.duration_minutes := round(extract(epoch from new.ended_at - new.started_at) / 60)::integer;
  end if;
  if new.status = 'finalized' and new.finalized_at is null then
    new.finalized_at := pg_catalog.now();
  end if;
  -- A row the caller may not write is refused by RLS (42501), which PostgreSQL checks after
  -- BEFORE triggers: the checks below would answer it 23503 first, telling an outsider what
  -- exists. The condition is the write policy of time_logs.
  if pg_catalog.current_setting('role') in ('anon', 'authenticated')
     and not (new.org_id = any (private.my_org_ids('{owner,admin}'))
              or (new.user_id = (select auth.uid())
                  and new.org_id = any (private.my_org_ids('{manager,member}')))) then
    return new;
  end if;
  if tg_op = 'INSERT' or new.user_id <> old.user_id or new.org_id <> old.org_id then
    if not exists (select 1 from public.memberships m
                   where m.org_id = new.org_id and m.user_id = new.user_id) then
      raise exception 'user % is not a member of this organization', new.user_id
        using errcode = 'foreign_key_violation';
    end if;
  end if;
  if new.activity_type_id is not null and not exists (
       select 1 from public.activity_types v
       where v.id = new.activity_type_id and (v.org_id is null or v.org_id = new.org_id)) then
    raise exception 'activity type % is not in this organization''s vocabulary', new.activity_type_id
      using errcode = 'foreign_key_violation';
  end if;
  if new.work_mode_id is not null and not exists (
       select 1 from public.work_modes v
       where v.id = new.work_mode_id and (v.org_id is null or v.org_id = new.org_id)) then
    raise exception 'work mode % is not in this organization''s vocabulary', new.work_mode_id
      using errcode = 'foreign_key_violation';
  end if;
  if new.task_category_id is not null and not exists (
       select 1 from public.task_categories v
       where v.id = new.task_category_id and (v.org_id is null or v.org_id = new.org_id)) then
    raise exception 'task category % is not in this organization''s vocabulary', new.task_category_id
      using errcode = 'foreign_key_violation';
  end if;
  return new;
end
$$;
