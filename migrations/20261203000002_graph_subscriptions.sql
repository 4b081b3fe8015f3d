-- Microsoft Graph subscriptions Tally keeps alive for calendar integrations with a Graph app:
-- one per calendar in config.graph.resources, renewed a day before it expires, recreated when
-- Graph lost it, deleted when its calendar leaves the settings.
create table private.graph_subscriptions (
    integration_id  uuid not null references public.integrations (id) on delete cascade,
    resource        text not null,
    subscription_id text not null,
    expires_at      timestamptz not null,
    primary key (integration_id, resource)
);
alter table private.graph_subscriptions enable row level security;
alter table private.graph_subscriptions force row level security;
grant select, insert, update, delete on private.graph_subscriptions to service_role;
grant select on private.graph_subscriptions to tally_definer;

-- Every 30 minutes the subscriptions are checked (one job per integration).
insert into private.schedules (name, cron, timezone, kind, payload, next_run_at)
values ('integrations.graph_subscriptions', '*/30 * * * *', 'UTC', 'renew_graph_subscriptions',
        '{}', pg_catalog.now() + interval '30 minutes')
on conflict (name) do nothing;

-- A calendar integration's subscriptions follow its settings and credentials at once: a
-- change of either queues its check. The trigger's argument names the integration's column.
create or replace function private.queue_graph_subscriptions()
returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  integration uuid := (pg_catalog.to_jsonb(new) ->> tg_argv[0])::uuid;
  org uuid;
begin
  select i.org_id into org from public.integrations i
  where i.id = integration and i.provider = 'calendar'
    and (i.config ? 'graph'
         or exists (select 1 from private.graph_subscriptions s where s.integration_id = i.id));
  if org is not null then
    perform private.enqueue_job('renew_graph_subscriptions',
                                pg_catalog.jsonb_build_object('integration_id', integration),
                                org, 'graph:' || integration, null, 3);
  end if;
  return null;
end
$$;
alter function private.queue_graph_subscriptions() owner to tally_definer;
revoke execute on function private.queue_graph_subscriptions() from public;
create trigger integrations_graph_subscriptions
    after insert or update of config, enabled on public.integrations
    for each row execute function private.queue_graph_subscriptions('id');
create trigger integration_secrets_graph_subscriptions
    after insert or update on private.integration_secrets
    for each row execute function private.queue_graph_subscriptions('integration_id');
