-- Roles, schemas and extensions.
--
-- Roles are cluster-wide, so each is created only when missing: several databases of one
-- cluster (tests clone a template) share them.
--   anon, authenticated, service_role  the three API roles, as on Supabase (service_role bypasses RLS)
--   tally_auth                          the auth service's role: the only one that reads auth.* tables
--   tally_definer                       owns the security-definer helpers (bypasses RLS, so
--                                       policies that call them never recurse)
--   tally_authenticator                 the login role of request connections: not a superuser,
--                                       not an owner, no BYPASSRLS; it can only SET ROLE to the above
do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'tally_auth') then
    create role tally_auth nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'tally_definer') then
    create role tally_definer nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'tally_authenticator') then
    create role tally_authenticator login noinherit nosuperuser nocreatedb nocreaterole nobypassrls;
  end if;
end
$$;

grant anon, authenticated, service_role, tally_auth to tally_authenticator;
-- The migrating role must be able to hand functions to tally_definer.
grant tally_definer to current_user;

create schema if not exists extensions;
create extension if not exists vector with schema extensions;
create extension if not exists pg_trgm with schema extensions;
grant usage on schema extensions to anon, authenticated, service_role, tally_auth, tally_definer;

-- Helpers that policies and triggers call; never exposed over the API.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to anon, authenticated, service_role, tally_auth, tally_definer;

-- Nothing in public is reachable by default; grants below open exactly what policies allow.
revoke create on schema public from public;
grant usage on schema public to anon, authenticated, service_role, tally_definer;
alter default privileges in schema public revoke execute on functions from public;

-- UUIDv7 ids: the server's own uuidv7() on PostgreSQL 18, an equivalent before.
do $$
begin
  if current_setting('server_version_num')::int >= 180000 then
    create or replace function private.uuid_v7() returns uuid
      language sql volatile parallel safe set search_path = ''
      as 'select pg_catalog.uuidv7()';
  else
    create or replace function private.uuid_v7() returns uuid
      language sql volatile parallel safe set search_path = ''
      as $f$
        select pg_catalog.encode(
          pg_catalog.set_bit(pg_catalog.set_bit(pg_catalog.overlay(
            pg_catalog.uuid_send(pg_catalog.gen_random_uuid())
            placing pg_catalog.substring(pg_catalog.int8send(
              (extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint) from 3)
            from 1 for 6), 52, 1), 53, 1), 'hex')::uuid
      $f$;
  end if;
end
$$;
grant execute on function private.uuid_v7() to anon, authenticated, service_role, tally_auth, tally_definer;

-- True when PostgreSQL knows the time zone name.
create or replace function private.is_time_zone(tz text) returns boolean
  language plpgsql immutable set search_path = ''
as $$
begin
  perform pg_catalog.now() at time zone tz;
  return true;
exception when invalid_parameter_value then
  return false;
end
$$;
grant execute on function private.is_time_zone(text) to authenticated, service_role, tally_definer;

-- Keeps updated_at current on every update.
create or replace function private.set_updated_at() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end
$$;

-- For rows clients edit offline: version starts at 1 and goes up by one on every update,
-- whatever the client sends (offline sync compares it; the server wins).
create or replace function private.set_version() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    new.version := 1;
  else
    new.version := old.version + 1;
    new.updated_at := pg_catalog.now();
  end if;
  return new;
end
$$;
