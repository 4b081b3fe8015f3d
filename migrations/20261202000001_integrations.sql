-- Integrations: inbound webhooks (Slack, Jira, calendars, generic), the identities they map to
-- Tally users, the drafts they create, and outbound signed webhooks with a delivery log.

alter type public.integration_provider add value if not exists 'generic';

-- The signing secret is AES-GCM ciphertext made by the server (`integration-secret`), kept
-- apart from the row in a table no client role can reach: clients create and edit an
-- integration's other columns (and read them all) but never write or read its secret.
create table private.integration_secrets (
    integration_id uuid primary key references public.integrations (id) on delete cascade,
    sealed         bytea not null,
    -- An API token the integration calls its provider with (Slack's bot token), sealed too.
    token_sealed   bytea,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now()
);
create trigger integration_secrets_updated_at before update on private.integration_secrets
    for each row execute function private.set_updated_at();
insert into private.integration_secrets (integration_id, sealed)
select id, secret from public.integrations where secret is not null;
alter table public.integrations drop column secret;
alter table private.integration_secrets enable row level security;
alter table private.integration_secrets force row level security;
revoke insert, update on public.integrations from authenticated;
grant select on public.integrations to authenticated;
grant insert (org_id, provider, name, config, enabled) on public.integrations to authenticated;
grant update (name, config, enabled) on public.integrations to authenticated;
alter table public.integrations alter column created_by set default auth.uid();

-- Outbound deliveries: consecutive failed attempts, and when deliveries were switched off.
-- ICS feeds: when the feed was last read, and why the last attempt failed.
alter table public.integrations
    add column delivery_failures      integer not null default 0,
    add column deliveries_disabled_at timestamptz,
    add column polled_at              timestamptz,
    add column poll_error             text;
-- Admins switch deliveries back on by clearing deliveries_disabled_at, which starts the count of
-- failures afresh.
grant update (deliveries_disabled_at) on public.integrations to authenticated;
create or replace function private.deliveries_back_on() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  if old.deliveries_disabled_at is not null and new.deliveries_disabled_at is null then
    new.delivery_failures := 0;
  end if;
  return new;
end
$$;
create trigger integrations_deliveries_back_on
    before update of deliveries_disabled_at on public.integrations
    for each row execute function private.deliveries_back_on();

-- Who an external identity is: set by admins, or found by verified email on first sight.
create table public.integration_identities (
    id             uuid primary key default private.uuid_v7(),
    org_id         uuid not null,
    integration_id uuid not null,
    external_id    text not null check (length(external_id) between 1 and 320),
    user_id        uuid not null references auth.users (id) on delete cascade,
    matched_by     text not null default 'admin' check (matched_by in ('admin', 'email')),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    unique (integration_id, external_id),
    foreign key (integration_id, org_id) references public.integrations (id, org_id) on delete cascade
);
create index integration_identities_user_idx on public.integration_identities (user_id);
create trigger integration_identities_updated_at before update on public.integration_identities
    for each row execute function private.set_updated_at();

-- The outbound delivery log.
create type public.delivery_status as enum ('pending', 'delivered', 'failed', 'dead', 'skipped');
create table public.webhook_deliveries (
    id              uuid primary key default private.uuid_v7(),
    org_id          uuid not null,
    integration_id  uuid not null,
    event           text not null,
    payload         jsonb not null,
    status          public.delivery_status not null default 'pending',
    attempts        integer not null default 0,
    response_status integer,
    error           text,
    delivered_at    timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    foreign key (integration_id, org_id) references public.integrations (id, org_id) on delete cascade
);
create index webhook_deliveries_integration_idx
    on public.webhook_deliveries (integration_id, created_at desc);
create index webhook_deliveries_org_idx on public.webhook_deliveries (org_id, status, created_at);
create trigger webhook_deliveries_updated_at before update on public.webhook_deliveries
    for each row execute function private.set_updated_at();

alter table public.integration_identities enable row level security;
alter table public.integration_identities force row level security;
alter table public.webhook_deliveries enable row level security;
alter table public.webhook_deliveries force row level security;

grant select, insert, update, delete on public.integration_identities, public.webhook_deliveries
  to service_role;
grant select, insert, update, delete on public.integration_identities to authenticated;
create policy integration_identities_select on public.integration_identities for select
  to authenticated using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));
create policy integration_identities_insert on public.integration_identities for insert
  to authenticated with check (
    org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
    and exists (select 1 from public.memberships m
                where m.org_id = integration_identities.org_id
                  and m.user_id = integration_identities.user_id));
create policy integration_identities_update on public.integration_identities for update
  to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]))
  with check (
    org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
    and exists (select 1 from public.memberships m
                where m.org_id = integration_identities.org_id
                  and m.user_id = integration_identities.user_id));
create policy integration_identities_delete on public.integration_identities for delete
  to authenticated using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));

grant select on public.webhook_deliveries to authenticated;
create policy webhook_deliveries_select on public.webhook_deliveries for select to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));

select private.watch_changes('public.integration_identities');
select private.watch_changes('public.webhook_deliveries');

-- Drafts made from external records (a Jira worklog, a calendar event), one per person.
create table private.external_links (
    integration_id uuid not null references public.integrations (id) on delete cascade,
    external_key   text not null,
    user_id        uuid not null,
    time_log_id    uuid not null references public.time_logs (id) on delete cascade,
    -- When the event that last shaped the draft was received: an older one arriving late
    -- (a retried job) does not undo a newer one.
    source_at      timestamptz not null,
    created_at     timestamptz not null default now(),
    primary key (integration_id, external_key, user_id)
);
create index external_links_log_idx on private.external_links (time_log_id);
alter table private.external_links enable row level security;
alter table private.external_links force row level security;
grant select, insert, update, delete on private.external_links to service_role;

-- What each ICS feed held at the last poll, to store only what changed and to notice
-- meetings that disappeared from it.
create table private.ics_events (
    integration_id uuid not null references public.integrations (id) on delete cascade,
    uid            text not null,
    digest         text not null,
    starts_at      timestamptz not null,
    primary key (integration_id, uid)
);
alter table private.ics_events enable row level security;
alter table private.ics_events force row level security;
grant select, insert, update, delete on private.ics_events to service_role;

-- The Tally user behind an external identity of an integration: a mapping an admin made, or
-- else the org member whose verified email this is (remembered as a mapping). Null when
-- nobody matches, or the mapped person is no longer a member.
create or replace function private.integration_user(integration uuid, external text, address text)
returns uuid
  language plpgsql security definer set search_path = ''
as $$
declare
  org uuid;
  found uuid;
begin
  select i.org_id into org from public.integrations i where i.id = integration;
  if org is null then
    return null;
  end if;
  select m.user_id into found
  from public.integration_identities x
  join public.memberships m on m.org_id = x.org_id and m.user_id = x.user_id
  where x.integration_id = integration and x.external_id = external;
  if found is not null or address is null or btrim(address) = '' then
    return found;
  end if;
  select u.id into found
  from auth.users u
  join public.memberships m on m.user_id = u.id and m.org_id = org
  where lower(u.email) = lower(btrim(address)) and u.email_confirmed_at is not null
  limit 1;
  if found is not null and external is not null and btrim(external) <> '' then
    insert into public.integration_identities (org_id, integration_id, external_id, user_id, matched_by)
    values (org, integration, external, found, 'email')
    on conflict (integration_id, external_id) do nothing;
  end if;
  return found;
end
$$;
alter function private.integration_user(uuid, text, text) owner to tally_definer;
revoke execute on function private.integration_user(uuid, text, text) from public;
grant execute on function private.integration_user(uuid, text, text) to service_role;
grant select on auth.users to tally_definer;
grant select, insert on public.integration_identities to tally_definer;

-- Sets an integration's secret (ciphertext made by the server), and its API token when one is
-- given, for its org's owners and admins.
create or replace function private.set_integration_secret(integration uuid, ciphertext bytea,
                                                          token bytea default null)
returns boolean
  language plpgsql security definer set search_path = ''
as $$
begin
  if not exists (select 1 from public.integrations i
                 where i.id = integration
                   and i.org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])) then
    return false;
  end if;
  insert into private.integration_secrets (integration_id, sealed, token_sealed)
  values (integration, ciphertext, token)
  on conflict (integration_id) do update
    set sealed = excluded.sealed,
        token_sealed = coalesce(excluded.token_sealed, integration_secrets.token_sealed);
  return true;
end
$$;
alter function private.set_integration_secret(uuid, bytea, bytea) owner to tally_definer;
revoke execute on function private.set_integration_secret(uuid, bytea, bytea) from public;
grant execute on function private.set_integration_secret(uuid, bytea, bytea) to authenticated;
grant select, insert, update on private.integration_secrets to tally_definer;
grant select on private.integration_secrets to service_role;
grant select on public.integrations to tally_definer;

-- Outbound events: every enabled integration of the org subscribed to `event`
-- (config.outbound.events) gets a delivery row and a delivery job, in the caller's transaction.
create or replace function private.emit_webhook(org uuid, event text, payload jsonb)
returns integer
  language plpgsql security definer set search_path = ''
as $$
declare
  target record;
  delivery uuid;
  n integer := 0;
begin
  for target in
    select i.id from public.integrations i
    where i.org_id = org and i.enabled and i.deliveries_disabled_at is null
      and i.config ? 'outbound'
      and coalesce(i.config #> '{outbound,events}', '[]'::jsonb) ? event
  loop
    insert into public.webhook_deliveries (org_id, integration_id, event, payload)
    values (org, target.id, event, payload)
    returning id into delivery;
    perform private.enqueue_job('deliver_webhook', jsonb_build_object('delivery_id', delivery),
                                org, null, null, 8);
    n := n + 1;
  end loop;
  return n;
end
$$;
alter function private.emit_webhook(uuid, text, jsonb) owner to tally_definer;
revoke execute on function private.emit_webhook(uuid, text, jsonb) from public;
grant execute on function private.emit_webhook(uuid, text, jsonb) to authenticated, service_role;
grant select, insert on public.webhook_deliveries to tally_definer;

-- Log events: created, finalized, deleted (soft or hard). Cheap when the org subscribes to none.
create index integrations_outbound_idx on public.integrations (org_id)
    where config ? 'outbound';
create or replace function private.emit_log_events() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  org uuid := case when tg_op = 'DELETE' then old.org_id else new.org_id end;
  event text;
  log jsonb;
begin
  if not exists (select 1 from public.integrations i
                 where i.org_id = org and i.config ? 'outbound') then
    return null;
  end if;
  if tg_op = 'INSERT' and new.deleted_at is null then
    event := 'log.created';
  elsif tg_op = 'DELETE' and old.deleted_at is null then
    event := 'log.deleted';
  elsif tg_op = 'UPDATE' and new.deleted_at is not null and old.deleted_at is null then
    event := 'log.deleted';
  elsif tg_op = 'UPDATE' and new.status = 'finalized' and old.status is distinct from 'finalized' then
    event := 'log.finalized';
  end if;
  if event is not null then
    log := case when tg_op = 'DELETE' then to_jsonb(old) else to_jsonb(new) end;
    perform private.emit_webhook(org, event, jsonb_build_object('log', log));
  end if;
  return null;
end
$$;
alter function private.emit_log_events() owner to tally_definer;
create trigger time_logs_webhooks after insert or update or delete on public.time_logs
    for each row execute function private.emit_log_events();

-- ICS feeds are polled every 15 minutes (first run in 15 minutes).
insert into private.schedules (name, cron, timezone, kind, payload, next_run_at)
values ('integrations.poll_ics', '*/15 * * * *', 'UTC', 'poll_ics_feeds', '{}',
        pg_catalog.now() + interval '15 minutes')
on conflict (name) do nothing;
