-- Multi-factor sign-in, as GoTrue keeps it: a person's factors (TOTP here; WebAuthn and phone
-- are GoTrue's other types) and the challenges a verification answers. A verified factor
-- raises the session to aal2, which the access token carries as its `aal` claim.
--
-- An organization may require it (`settings.require_mfa`): then the membership helpers every
-- policy goes through count the org only for callers whose token says aal2, so an aal1
-- session of a member sees and changes nothing of it, through any door, and Tally's functions
-- answer such a caller with a clear 403.

create table auth.mfa_factors (
    id                 uuid primary key default private.uuid_v7(),
    user_id            uuid not null references auth.users (id) on delete cascade,
    friendly_name      text not null default '' check (pg_catalog.length(friendly_name) <= 100),
    factor_type        text not null check (factor_type in ('totp', 'webauthn', 'phone')),
    status             text not null default 'unverified' check (status in ('unverified', 'verified')),
    -- The TOTP secret, base32; readable by the auth service alone, as GoTrue stores it.
    secret             text,
    -- The last TOTP time step accepted: a code of that step or earlier is a replay.
    last_totp_step     bigint,
    last_challenged_at timestamptz,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);
create index mfa_factors_user_id_idx on auth.mfa_factors (user_id);
create unique index mfa_factors_user_friendly_name_idx on auth.mfa_factors (user_id, friendly_name)
    where friendly_name <> '';
create trigger mfa_factors_updated_at before update on auth.mfa_factors
    for each row execute function private.set_updated_at();

create table auth.mfa_challenges (
    id          uuid primary key default private.uuid_v7(),
    factor_id   uuid not null references auth.mfa_factors (id) on delete cascade,
    ip_address  text not null,
    created_at  timestamptz not null default now(),
    verified_at timestamptz
);
create index mfa_challenges_factor_id_idx on auth.mfa_challenges (factor_id);

-- The factor a session was raised with (GoTrue's sessions.factor_id).
alter table auth.sessions add column factor_id uuid references auth.mfa_factors (id) on delete set null;
create index sessions_factor_id_idx on auth.sessions (factor_id);

grant select, insert, update, delete on auth.mfa_factors, auth.mfa_challenges to tally_auth, service_role;
-- The auth service records factor events beside the token events.
grant insert on auth.audit_log_entries to tally_auth;
create policy audit_log_entries_auth on auth.audit_log_entries for insert to tally_auth
  with check (true);

-- Whether the caller's token is at aal2 or above.
create or replace function private.caller_has_aal2() returns boolean
  language sql stable set search_path = ''
as $$
  select coalesce(auth.jwt() ->> 'aal', 'aal1') in ('aal2', 'aal3')
$$;

-- Whether an org with these settings lets the caller in: it does not require MFA, or the
-- caller's token is at aal2.
create or replace function private.mfa_satisfied(settings jsonb) returns boolean
  language sql stable set search_path = ''
as $$
  select settings -> 'require_mfa' is distinct from 'true'::jsonb or private.caller_has_aal2()
$$;

create or replace function private.my_org_ids(roles public.org_role[] default null)
returns uuid[]
  language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(m.org_id), '{}')
  from public.memberships m
  join public.organizations o on o.id = m.org_id
  where m.user_id = (select auth.uid()) and (roles is null or m.role = any (roles))
    and private.mfa_satisfied(o.settings)
$$;

create or replace function private.led_members()
returns table (org_id uuid, user_id uuid)
  language sql stable security definer set search_path = ''
as $$
  select distinct t.org_id, t.user_id
  from public.team_members l
  join public.memberships m on m.org_id = l.org_id and m.user_id = l.user_id and m.role = 'manager'
  join public.organizations o on o.id = l.org_id
  join public.team_members t on t.team_id = l.team_id and t.deleted_at is null
  where l.user_id = (select auth.uid()) and l.is_lead and l.deleted_at is null
    and private.mfa_satisfied(o.settings)
$$;

create or replace function private.co_member_ids()
returns uuid[]
  language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(distinct o.user_id), '{}')
  from public.memberships m
  join public.organizations g on g.id = m.org_id
  join public.memberships o on o.org_id = m.org_id
  where m.user_id = (select auth.uid()) and private.mfa_satisfied(g.settings)
$$;

-- The team summaries' lead branch read memberships itself: it now asks the helper too.
create or replace view public.team_period_summaries with (security_barrier) as
  select t.* from insights.team_periods t
  where t.org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
     or (t.org_id = any ((select private.my_org_ids('{manager}'))::uuid[])
         and exists (select from public.team_members l
                     where l.team_id = t.team_id and l.user_id = (select auth.uid())
                       and l.is_lead and l.deleted_at is null))
     or (t.org_id = any ((select private.my_org_ids('{viewer}'))::uuid[])
         and (select count(*) from public.team_members c where c.team_id = t.team_id and c.deleted_at is null)
             >= (select private.min_group_size(o.settings) from public.organizations o where o.id = t.org_id));

-- What the caller is to `org`: 'member', 'mfa_required' (a member whose token is below what
-- the org requires), or null. For the functions' errors; policies use my_org_ids.
create or replace function private.org_access(org uuid) returns text
  language sql stable security definer set search_path = ''
as $$
  select case when private.mfa_satisfied(o.settings) then 'member' else 'mfa_required' end
  from public.memberships m join public.organizations o on o.id = m.org_id
  where m.org_id = org and m.user_id = (select auth.uid())
$$;

-- The caller's orgs that require MFA of an aal1 session like theirs: what a client shows
-- instead of silently missing orgs (orgs-list answers them).
create or replace function private.orgs_awaiting_mfa()
returns table (org_id uuid, name text)
  language sql stable security definer set search_path = ''
as $$
  select o.id, o.name
  from public.memberships m join public.organizations o on o.id = m.org_id
  where m.user_id = (select auth.uid()) and not private.mfa_satisfied(o.settings)
  order by m.created_at
$$;

-- A person turning the requirement on must be at aal2 (the service key and the owner may do
-- it as they are): whoever turns it on must not lock themselves out.
create or replace function private.require_mfa_needs_aal2() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  if new.settings -> 'require_mfa' = 'true'::jsonb
     and old.settings -> 'require_mfa' is distinct from 'true'::jsonb
     and auth.uid() is not null and not private.caller_has_aal2() then
    raise exception 'Verify a second factor (an aal2 session) before requiring MFA for the organization'
      using errcode = '42501';
  end if;
  return new;
end
$$;
create trigger organizations_require_mfa before update of settings on public.organizations
  for each row execute function private.require_mfa_needs_aal2();

alter function private.my_org_ids(public.org_role[]) owner to tally_definer;
alter function private.led_members() owner to tally_definer;
alter function private.co_member_ids() owner to tally_definer;
alter function private.org_access(uuid) owner to tally_definer;
alter function private.orgs_awaiting_mfa() owner to tally_definer;
revoke execute on function private.caller_has_aal2(), private.mfa_satisfied(jsonb),
  private.org_access(uuid), private.require_mfa_needs_aal2() from public;
grant execute on function private.caller_has_aal2(), private.mfa_satisfied(jsonb)
  to authenticated, service_role, tally_definer;
revoke execute on function private.orgs_awaiting_mfa() from public;
grant execute on function private.org_access(uuid), private.orgs_awaiting_mfa()
  to authenticated, service_role;

-- An API token keeps the assurance level of the session that made it (the default reads the
-- creator's claims): one made at aal2 works in an org that requires MFA, one made at aal1 not.
alter table public.api_tokens add column aal text not null
    default (case when private.caller_has_aal2() then 'aal2' else 'aal1' end)
    check (aal in ('aal1', 'aal2'));

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
    'token_id', t.id, 'scopes', pg_catalog.to_jsonb(t.scopes), 'aal', t.aal,
    'amr', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('method', 'token')));
end
$$;
