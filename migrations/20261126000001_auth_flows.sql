-- What the auth service needs beyond users and sessions: PKCE flow states, SSO providers,
-- the mail outbox (when no SMTP server is configured, and as a record), and rate-limit
-- counters shared by every instance.

-- OpenID Connect identity providers, and the email domains each one owns.
create table auth.sso_providers (
    id            uuid primary key default private.uuid_v7(),
    name          text not null unique,
    issuer        text not null,
    client_id     text not null,
    client_secret text not null default '',
    scopes        text[] not null default '{openid,email,profile}',
    domains       text[] not null default '{}',
    enabled       boolean not null default true,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create trigger sso_providers_updated_at before update on auth.sso_providers
    for each row execute function private.set_updated_at();

create table auth.flow_state (
    id                     uuid primary key default private.uuid_v7(),
    user_id                uuid references auth.users (id) on delete cascade,
    -- Set when a PKCE client's auth code is due; null for an SSO flow that has not come back.
    auth_code              text unique,
    -- The client's PKCE challenge; null for implicit-flow clients of SSO.
    code_challenge         text,
    code_challenge_method  text check (code_challenge_method in ('s256', 'plain')),
    authentication_method  text not null,
    provider_type          text not null default '',
    provider_id            uuid references auth.sso_providers (id) on delete cascade,
    redirect_to            text,
    -- SSO: the nonce and PKCE verifier Tally used towards the identity provider.
    nonce                  text,
    pkce_verifier          text,
    auth_code_issued_at    timestamptz,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now()
);
create index flow_state_created_idx on auth.flow_state (created_at);
create trigger flow_state_updated_at before update on auth.flow_state
    for each row execute function private.set_updated_at();

create table auth.mail_outbox (
    id         uuid primary key default private.uuid_v7(),
    recipient  text not null,
    template   text not null check (template in
        ('confirmation', 'recovery', 'magiclink', 'email_change', 'invite')),
    subject    text not null,
    body       text not null,
    link       text,
    otp        text,
    -- Delivery over SMTP, when configured: tries so far, when to try next, the last error.
    attempts   integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    sent_at    timestamptz,
    error      text,
    created_at timestamptz not null default now()
);
create index mail_outbox_pending_idx on auth.mail_outbox (next_attempt_at) where sent_at is null;
create index mail_outbox_recipient_idx on auth.mail_outbox (lower(recipient), created_at desc);

-- Fixed-window counters: one row per (bucket, key, window).
create table auth.rate_limits (
    bucket       text not null,
    key          text not null,
    window_start timestamptz not null,
    hits         integer not null default 0,
    primary key (bucket, key, window_start)
);

grant select, insert, update, delete on auth.flow_state, auth.sso_providers, auth.mail_outbox,
    auth.rate_limits to tally_auth, service_role;

-- Whether a session is alive: every service asks this of user tokens (as the login role).
create or replace function private.session_is_active(session uuid) returns boolean
  language sql stable security definer set search_path = ''
as $$
  select exists (
    select 1 from auth.sessions s
    join auth.users u on u.id = s.user_id
    where s.id = session
      and (s.not_after is null or s.not_after > pg_catalog.now())
      and u.deleted_at is null
      and (u.banned_until is null or u.banned_until <= pg_catalog.now()))
$$;
grant select on auth.sessions, auth.users to tally_definer;
alter function private.session_is_active(uuid) owner to tally_definer;
revoke execute on function private.session_is_active(uuid) from public;
grant usage on schema private to tally_authenticator;
grant execute on function private.session_is_active(uuid) to tally_authenticator;
