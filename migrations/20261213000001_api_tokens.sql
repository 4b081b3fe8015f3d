-- Personal API tokens: a person scripts their time with a long-lived bearer token (as Toggl's
-- api_token, Clockify's X-Api-Key). The token is shown once; only its SHA-256 is stored (in
-- private.api_token_hashes, which no API role reaches, so `select=*` lists tokens). A
-- request with one runs as its person under RLS, narrowed by the token's scopes. The person
-- lists their tokens through /rest/v1 (never the hash) and creates and revokes them through
-- functions; every creation and revocation is audited in auth.audit_log_entries (GoTrue's
-- table of account events).

create table public.api_tokens (
    id           uuid primary key default private.uuid_v7(),
    user_id      uuid not null references auth.users (id) on delete cascade,
    name         text not null check (pg_catalog.length(name) between 1 and 100),
    scopes       text[] not null check (
                   pg_catalog.cardinality(scopes) between 1 and 4
                   and scopes <@ array['logs:read', 'logs:write', 'reports:read', 'admin']),
    -- The token's first characters, to tell tokens apart in a list.
    prefix       text not null check (pg_catalog.length(prefix) <= 32),
    created_at   timestamptz not null default now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
create index api_tokens_user_idx on public.api_tokens (user_id);

create table private.api_token_hashes (
    token_hash bytea primary key,
    token_id   uuid not null unique references public.api_tokens (id) on delete cascade
);

alter table public.api_tokens enable row level security;
alter table public.api_tokens force row level security;
grant select, insert, update, delete on public.api_tokens to service_role;
-- A person reads their own tokens; writes go through the functions below.
grant select on public.api_tokens to authenticated;
create policy api_tokens_select on public.api_tokens for select to authenticated
  using (user_id = (select auth.uid()));
create policy api_tokens_service on public.api_tokens for all to service_role
  using (true) with check (true);
-- Realtime, as every table of public: a person's token list follows creations, last uses and
-- revocations.
select private.watch_changes('public.api_tokens', 'none');

-- GoTrue's account events (created here for the token events; same columns as GoTrue's).
create table if not exists auth.audit_log_entries (
    instance_id uuid,
    id          uuid primary key default private.uuid_v7(),
    payload     json,
    created_at  timestamptz default now(),
    ip_address  varchar(64) not null default ''
);
alter table auth.audit_log_entries enable row level security;
alter table auth.audit_log_entries force row level security;
grant select on auth.audit_log_entries to service_role;
create policy audit_log_entries_service on auth.audit_log_entries for select to service_role
  using (true);

-- Creates a token of the caller's with the hash and prefix the server made of a fresh secret.
-- `admin` only for someone who is an owner or admin of an org.
create or replace function private.create_api_token(
    name text, scopes text[], expires_at timestamptz, token_hash bytea, prefix text)
returns public.api_tokens
  language plpgsql security definer set search_path = ''
as $$
declare
  me uuid := auth.uid();
  made public.api_tokens;
begin
  if me is null then
    raise exception 'Only a signed-in person may create a token' using errcode = '42501';
  end if;
  if 'admin' = any (scopes)
     and pg_catalog.cardinality(private.my_org_ids('{owner,admin}')) = 0 then
    raise exception 'Only owners and admins may create a token with the admin scope'
      using errcode = '42501';
  end if;
  if expires_at is not null and expires_at <= pg_catalog.now() then
    raise exception 'expires_at must be in the future' using errcode = '22023';
  end if;
  insert into public.api_tokens (user_id, name, scopes, expires_at, prefix)
  values (me, name, scopes, expires_at, prefix)
  returning * into made;
  insert into private.api_token_hashes (token_hash, token_id) values (token_hash, made.id);
  insert into auth.audit_log_entries (payload)
  values (pg_catalog.json_build_object('action', 'token_created', 'actor_id', me,
          'traits', pg_catalog.json_build_object('token_id', made.id, 'name', name,
                                                 'scopes', scopes)));
  return made;
end
$$;

-- Revokes one of the caller's tokens (at once: every request looks the token up). Whether a
-- live token was revoked.
create or replace function private.revoke_api_token(token uuid) returns boolean
  language plpgsql security definer set search_path = ''
as $$
declare
  me uuid := auth.uid();
begin
  update public.api_tokens t set revoked_at = pg_catalog.now()
  where t.id = token and t.user_id = me and t.revoked_at is null;
  if not found then
    return false;
  end if;
  insert into auth.audit_log_entries (payload)
  values (pg_catalog.json_build_object('action', 'token_revoked', 'actor_id', me,
          'traits', pg_catalog.json_build_object('token_id', token)));
  return true;
end
$$;

-- The claims a request with the token of this hash runs with (null when it is unknown,
-- revoked, expired, or its person is gone or banned); notes its use (at most once a minute).
create or replace function private.api_token_claims(hash bytea) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  t public.api_tokens;
  u auth.users;
begin
  select a.* into t from private.api_token_hashes h join public.api_tokens a on a.id = h.token_id
  where h.token_hash = hash and a.revoked_at is null
    and (a.expires_at is null or a.expires_at > pg_catalog.now());
  if not found then
    return null;
  end if;
  select * into u from auth.users x where x.id = t.user_id;
  if not found or (u.banned_until is not null and u.banned_until > pg_catalog.now())
     or u.deleted_at is not null then
    return null;
  end if;
  if t.last_used_at is null or t.last_used_at < pg_catalog.now() - interval '1 minute' then
    update public.api_tokens a set last_used_at = pg_catalog.now() where a.id = t.id;
  end if;
  return pg_catalog.jsonb_build_object(
    'sub', t.user_id, 'role', 'authenticated', 'aud', 'authenticated', 'email', u.email,
    'token_id', t.id, 'scopes', pg_catalog.to_jsonb(t.scopes), 'aal', 'aal1',
    'amr', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('method', 'token')));
end
$$;

alter function private.create_api_token(text, text[], timestamptz, bytea, text) owner to tally_definer;
alter function private.revoke_api_token(uuid) owner to tally_definer;
alter function private.api_token_claims(bytea) owner to tally_definer;
grant select, update on public.api_tokens to tally_definer;
grant insert on public.api_tokens to tally_definer;
grant select, insert on private.api_token_hashes to tally_definer;
grant insert on auth.audit_log_entries to tally_definer;
grant select on auth.users to tally_definer;
revoke execute on function private.create_api_token(text, text[], timestamptz, bytea, text),
  private.revoke_api_token(uuid), private.api_token_claims(bytea) from public;
grant execute on function private.create_api_token(text, text[], timestamptz, bytea, text),
  private.revoke_api_token(uuid) to authenticated;
grant execute on function private.api_token_claims(bytea) to tally_authenticator;
