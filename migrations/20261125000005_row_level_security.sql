-- Row-level security: the role matrix of DESIGN §2, enabled and forced on every table.
--
-- Policies ask "which orgs is the caller in with one of these roles" and "whose data may a
-- manager read" through definer helpers wrapped in (select ...), so each is evaluated once per
-- statement rather than once per row, then matched against indexed org_id/user_id columns.

-- Orgs in which the caller holds one of `roles` (any role when null).
create or replace function private.my_org_ids(roles public.org_role[] default null)
returns uuid[]
  language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(m.org_id), '{}')
  from public.memberships m
  where m.user_id = (select auth.uid()) and (roles is null or m.role = any (roles))
$$;

-- (org, person) pairs whose data the caller may read as a manager: the members of the teams
-- the caller leads, in orgs where the caller is a manager.
create or replace function private.led_members()
returns table (org_id uuid, user_id uuid)
  language sql stable security definer set search_path = ''
as $$
  select distinct t.org_id, t.user_id
  from public.team_members l
  join public.memberships m on m.org_id = l.org_id and m.user_id = l.user_id and m.role = 'manager'
  join public.team_members t on t.team_id = l.team_id and t.deleted_at is null
  where l.user_id = (select auth.uid()) and l.is_lead and l.deleted_at is null
$$;

-- People who share at least one org with the caller.
create or replace function private.co_member_ids()
returns uuid[]
  language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(distinct o.user_id), '{}')
  from public.memberships m
  join public.memberships o on o.org_id = m.org_id
  where m.user_id = (select auth.uid())
$$;

alter function private.my_org_ids(public.org_role[]) owner to tally_definer;
alter function private.led_members() owner to tally_definer;
alter function private.co_member_ids() owner to tally_definer;
grant select on public.team_members to tally_definer;
revoke execute on all functions in schema private from public;
grant execute on function private.my_org_ids(public.org_role[]), private.led_members(),
  private.co_member_ids(), private.is_time_zone(text), private.uuid_v7()
  to authenticated, service_role;

-- Enable and force RLS everywhere in public, and give service_role everything.
do $$
declare
  t text;
begin
  for t in select c.relname from pg_catalog.pg_class c
           where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') loop
    execute format('alter table public.%I enable row level security', t);
    execute format('alter table public.%I force row level security', t);
    execute format('grant select, insert, update, delete on public.%I to service_role', t);
  end loop;
end
$$;

-- organizations: everyone in the org reads; owners and admins write; owners delete.
-- New orgs come from create_organization(), which also makes the caller the owner.
grant select, update, delete on public.organizations to authenticated;
create policy organizations_select on public.organizations for select to authenticated
  using (id = any ((select private.my_org_ids())::uuid[]));
create policy organizations_update on public.organizations for update to authenticated
  using (id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]))
  with check (id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));
create policy organizations_delete on public.organizations for delete to authenticated
  using (id = any ((select private.my_org_ids('{owner}'))::uuid[]));

-- profiles: your own and those of people you share an org with; you edit only your own.
grant select on public.profiles to authenticated;
grant update (full_name, avatar_url, timezone) on public.profiles to authenticated;
create policy profiles_select on public.profiles for select to authenticated
  using (id = (select auth.uid()) or id = any ((select private.co_member_ids())::uuid[]));
create policy profiles_update on public.profiles for update to authenticated
  using (id = (select auth.uid())) with check (id = (select auth.uid()));

-- memberships: everyone in the org reads; owners manage all roles; admins manage managers,
-- members and viewers only (so only owners grant or revoke owner and admin).
grant select, insert, delete on public.memberships to authenticated;
grant update (role, department_id) on public.memberships to authenticated;
create policy memberships_select on public.memberships for select to authenticated
  using (org_id = any ((select private.my_org_ids())::uuid[]));
create policy memberships_insert on public.memberships for insert to authenticated
  with check (org_id = any ((select private.my_org_ids('{owner}'))::uuid[])
    or (org_id = any ((select private.my_org_ids('{admin}'))::uuid[]) and role in ('manager', 'member', 'viewer')));
create policy memberships_update on public.memberships for update to authenticated
  using (org_id = any ((select private.my_org_ids('{owner}'))::uuid[])
    or (org_id = any ((select private.my_org_ids('{admin}'))::uuid[]) and role in ('manager', 'member', 'viewer')))
  with check (org_id = any ((select private.my_org_ids('{owner}'))::uuid[])
    or (org_id = any ((select private.my_org_ids('{admin}'))::uuid[]) and role in ('manager', 'member', 'viewer')));
create policy memberships_delete on public.memberships for delete to authenticated
  using (org_id = any ((select private.my_org_ids('{owner}'))::uuid[])
    or (org_id = any ((select private.my_org_ids('{admin}'))::uuid[]) and role in ('manager', 'member', 'viewer')));

-- departments, teams, team_members: everyone in the org reads; owners and admins write.
do $$
declare
  t text;
begin
  foreach t in array array['departments', 'teams', 'team_members'] loop
    execute format('grant select, insert, update, delete on public.%I to authenticated', t);
    execute format($p$create policy %I on public.%I for select to authenticated
                      using (org_id = any ((select private.my_org_ids())::uuid[])) $p$, t || '_select', t);
    execute format($p$create policy %I on public.%I for insert to authenticated
                      with check (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])) $p$, t || '_insert', t);
    execute format($p$create policy %I on public.%I for update to authenticated
                      using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]))
                      with check (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])) $p$, t || '_update', t);
    execute format($p$create policy %I on public.%I for delete to authenticated
                      using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])) $p$, t || '_delete', t);
  end loop;
end
$$;

-- projects and the org vocabulary: everyone in the org reads; managers also create; owners and
-- admins write. The default vocabulary (org_id null) is read by every signed-in user and
-- written only by service_role.
do $$
declare
  t text;
begin
  foreach t in array array['projects', 'work_modes', 'activity_types', 'task_categories'] loop
    execute format('grant select, insert, update, delete on public.%I to authenticated', t);
    execute format($p$create policy %I on public.%I for select to authenticated
                      using (%s org_id = any ((select private.my_org_ids())::uuid[])) $p$,
                   t || '_select', t, case when t = 'projects' then '' else 'org_id is null or' end);
    execute format($p$create policy %I on public.%I for insert to authenticated
                      with check (org_id = any ((select private.my_org_ids('{owner,admin,manager}'))::uuid[])) $p$, t || '_insert', t);
    execute format($p$create policy %I on public.%I for update to authenticated
                      using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]))
                      with check (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])) $p$, t || '_update', t);
    execute format($p$create policy %I on public.%I for delete to authenticated
                      using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])) $p$, t || '_delete', t);
  end loop;
end
$$;

-- A person's data (time logs, AI extractions, embeddings, attachments):
--   read:  owners and admins all in the org; managers and members their own; managers also
--          the people of the teams they lead; viewers nothing.
--   write: owners and admins all in the org; managers and members their own.
do $$
declare
  t text;
  can_read text := $q$(org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
      or (org_id, user_id) in (select l.org_id, l.user_id from private.led_members() l))$q$;
  can_write text := $q$(org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[])))$q$;
begin
  foreach t in array array['time_logs', 'ai_extractions', 'time_log_embeddings', 'attachments'] loop
    execute format('grant select, insert, update, delete on public.%I to authenticated', t);
    execute format('create policy %I on public.%I for select to authenticated using %s', t || '_select', t, can_read);
    execute format('create policy %I on public.%I for insert to authenticated with check %s', t || '_insert', t, can_write);
    execute format('create policy %I on public.%I for update to authenticated using %s with check %s',
                   t || '_update', t, can_write, can_write);
    execute format('create policy %I on public.%I for delete to authenticated using %s', t || '_delete', t, can_write);
  end loop;
end
$$;

-- Computed rollups are written by the server (service_role) only. Day summaries are read like a
-- person's data, and viewers read the whole org's; risk scores are personal: viewers see org
-- aggregates through the insights API, not these rows.
grant select on public.user_day_summaries, public.risk_scores to authenticated;
create policy user_day_summaries_select on public.user_day_summaries for select to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin,viewer}'))::uuid[])
      or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
      or (org_id, user_id) in (select l.org_id, l.user_id from private.led_members() l));
create policy risk_scores_select on public.risk_scores for select to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
      or (org_id, user_id) in (select l.org_id, l.user_id from private.led_members() l));

-- integrations: owners and admins only; the secret column is write-only.
grant select (id, org_id, provider, name, config, enabled, created_by, created_at, updated_at)
  on public.integrations to authenticated;
grant insert, update, delete on public.integrations to authenticated;
create policy integrations_select on public.integrations for select to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));
create policy integrations_insert on public.integrations for insert to authenticated
  with check (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));
create policy integrations_update on public.integrations for update to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]))
  with check (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));
create policy integrations_delete on public.integrations for delete to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));

-- external_events and audit_log: written by the server; owners and admins read.
grant select on public.external_events, public.audit_log to authenticated;
create policy external_events_select on public.external_events for select to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));
create policy audit_log_select on public.audit_log for select to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));

-- service_role bypasses RLS; it still needs sequence rights for future identity columns.
grant usage, select on all sequences in schema public to service_role;
