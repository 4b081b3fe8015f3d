-- Rules the database keeps whoever writes: profiles for new users, at least one owner per
-- organization, time logs that reference only their own org's data, and create_organization.
-- Definer functions belong to tally_definer (BYPASSRLS), so they see past the policies they
-- serve and never recurse into them.

-- tally_definer may own functions in these schemas.
grant create on schema private, public to tally_definer;

-- A profile for every new auth user, kept in step with the user's email.
create or replace function private.sync_profile() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into public.profiles (id, email, full_name, avatar_url)
    values (new.id, new.email,
            nullif(new.raw_user_meta_data ->> 'full_name', ''),
            nullif(new.raw_user_meta_data ->> 'avatar_url', ''))
    on conflict (id) do nothing;
  elsif new.email is distinct from old.email then
    update public.profiles set email = new.email where id = new.id;
  end if;
  return new;
end
$$;
alter function private.sync_profile() owner to tally_definer;
grant select, insert, update on public.profiles to tally_definer;
create trigger users_sync_profile after insert or update of email on auth.users
    for each row execute function private.sync_profile();

-- An organization keeps at least one owner (checked once the statement is done, so a swap of
-- owners in one statement passes; deleting the organization itself passes too).
create or replace function private.keep_an_owner() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if old.role = 'owner'
     and (tg_op = 'DELETE' or new.role <> 'owner' or new.org_id <> old.org_id)
     and exists (select 1 from public.organizations o where o.id = old.org_id)
     and not exists (select 1 from public.memberships m
                     where m.org_id = old.org_id and m.role = 'owner') then
    raise exception 'an organization must keep at least one owner'
      using errcode = 'check_violation',
            hint = 'Make another member an owner first.';
  end if;
  return null;
end
$$;
alter function private.keep_an_owner() owner to tally_definer;
grant select on public.organizations, public.memberships to tally_definer;
create trigger memberships_keep_an_owner after update or delete on public.memberships
    for each row execute function private.keep_an_owner();

-- Time logs: fill the duration from start and end, stamp finalized_at, and check that the
-- vocabulary is the org's or the default one and that the person belongs to the org.
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
alter function private.prepare_time_log() owner to tally_definer;
grant select on public.activity_types, public.work_modes, public.task_categories to tally_definer;
create trigger time_logs_prepare before insert or update on public.time_logs
    for each row execute function private.prepare_time_log();

-- Creates an organization and makes the caller its owner. With no slug, one is derived from
-- the name and made unique (acme, acme-2, ...).
create or replace function public.create_organization(
    name text, slug text default null, timezone text default 'UTC')
returns public.organizations
  language plpgsql security definer set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  base text;
  candidate text;
  n integer := 1;
  org public.organizations;
begin
  if caller is null then
    raise exception 'create_organization needs a signed-in user' using errcode = 'insufficient_privilege';
  end if;
  if coalesce(btrim(name), '') = '' then
    raise exception 'organization name must not be empty' using errcode = 'invalid_parameter_value';
  end if;
  if not private.is_time_zone(timezone) then
    raise exception 'unknown time zone "%"', timezone
      using errcode = 'invalid_parameter_value', hint = 'Use an IANA name such as Europe/Berlin.';
  end if;
  if slug is not null then
    candidate := slug;
  else
    base := btrim(regexp_replace(lower(name), '[^a-z0-9]+', '-', 'g'), '-');
    base := left(coalesce(nullif(base, ''), 'org'), 50);
    candidate := base;
    while exists (select 1 from public.organizations o where o.slug = candidate) loop
      n := n + 1;
      candidate := base || '-' || n;
    end loop;
  end if;
  insert into public.organizations (name, slug, timezone)
  values (btrim(create_organization.name), candidate, create_organization.timezone)
  returning * into org;
  insert into public.memberships (org_id, user_id, role) values (org.id, caller, 'owner');
  return org;
end
$$;
alter function public.create_organization(text, text, text) owner to tally_definer;
grant insert on public.organizations, public.memberships to tally_definer;
revoke execute on function public.create_organization(text, text, text) from public;
grant execute on function public.create_organization(text, text, text) to authenticated, service_role;
