-- The auth schema: users, identities, sessions, refresh tokens and one-time tokens, plus the
-- SQL helpers policies use (auth.uid(), auth.role(), auth.email(), auth.jwt()) exactly as on
-- Supabase. Only the auth service's role (tally_auth) and service_role touch these tables.
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role, tally_auth, tally_definer;

create table auth.users (
    id                   uuid primary key default private.uuid_v7(),
    aud                  text not null default 'authenticated',
    role                 text not null default 'authenticated',
    email                text,
    encrypted_password   text,
    email_confirmed_at   timestamptz,
    confirmation_sent_at timestamptz,
    recovery_sent_at     timestamptz,
    email_change         text,
    email_change_sent_at timestamptz,
    phone                text,
    phone_confirmed_at   timestamptz,
    last_sign_in_at      timestamptz,
    raw_app_meta_data    jsonb not null default '{}'::jsonb,
    raw_user_meta_data   jsonb not null default '{}'::jsonb,
    is_sso_user          boolean not null default false,
    is_anonymous         boolean not null default false,
    banned_until         timestamptz,
    deleted_at           timestamptz,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint users_email_shape check (email is null or email ~ '^[^@\s]+@[^@\s]+$')
);
create unique index users_email_key on auth.users (lower(email)) where email is not null;
create unique index users_phone_key on auth.users (phone) where phone is not null;
create trigger users_updated_at before update on auth.users
    for each row execute function private.set_updated_at();

create table auth.identities (
    id              uuid primary key default private.uuid_v7(),
    user_id         uuid not null references auth.users (id) on delete cascade,
    provider        text not null,
    provider_id     text not null,
    identity_data   jsonb not null default '{}'::jsonb,
    email           text generated always as (lower(identity_data ->> 'email')) stored,
    last_sign_in_at timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    unique (provider, provider_id)
);
create index identities_user_id_idx on auth.identities (user_id);
create trigger identities_updated_at before update on auth.identities
    for each row execute function private.set_updated_at();

create table auth.sessions (
    id           uuid primary key default private.uuid_v7(),
    user_id      uuid not null references auth.users (id) on delete cascade,
    aal          text not null default 'aal1' check (aal in ('aal1', 'aal2', 'aal3')),
    amr          jsonb not null default '[]'::jsonb,
    not_after    timestamptz,
    refreshed_at timestamptz,
    user_agent   text,
    ip           inet,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
create index sessions_user_id_idx on auth.sessions (user_id);
create trigger sessions_updated_at before update on auth.sessions
    for each row execute function private.set_updated_at();

create table auth.refresh_tokens (
    id         bigint generated always as identity primary key,
    token      text not null unique,
    user_id    uuid not null references auth.users (id) on delete cascade,
    session_id uuid not null references auth.sessions (id) on delete cascade,
    parent     text,
    revoked    boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index refresh_tokens_session_idx on auth.refresh_tokens (session_id);
create index refresh_tokens_parent_idx on auth.refresh_tokens (parent);
create trigger refresh_tokens_updated_at before update on auth.refresh_tokens
    for each row execute function private.set_updated_at();

-- Confirmation, recovery, magic-link and email-change tokens (stored hashed).
create table auth.one_time_tokens (
    id         uuid primary key default private.uuid_v7(),
    user_id    uuid not null references auth.users (id) on delete cascade,
    token_type text not null check (token_type in
        ('confirmation', 'recovery', 'magiclink', 'email_change', 'invite', 'reauthentication')),
    token_hash text not null,
    relates_to text not null default '',
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (user_id, token_type)
);
create index one_time_tokens_hash_idx on auth.one_time_tokens (token_hash);
create trigger one_time_tokens_updated_at before update on auth.one_time_tokens
    for each row execute function private.set_updated_at();

grant select, insert, update, delete on all tables in schema auth to tally_auth, service_role;
grant usage, select on all sequences in schema auth to tally_auth, service_role;

-- The caller's claims, read the way Supabase's helpers read them: the per-claim settings
-- first, then request.jwt.claims.
create or replace function auth.uid() returns uuid
  language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
    (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
  language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(pg_catalog.current_setting('request.jwt.claim.role', true), ''),
    (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
  language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(pg_catalog.current_setting('request.jwt.claim.email', true), ''),
    (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
  language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(pg_catalog.current_setting('request.jwt.claim', true), ''),
    nullif(pg_catalog.current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role, tally_auth, tally_definer;
