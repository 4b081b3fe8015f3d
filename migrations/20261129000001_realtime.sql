-- Realtime: the change feed behind postgres_changes, and realtime.messages for private channels.
--
-- Every table in public carries three statement-level triggers (insert, update, delete) that
-- pg_notify('tally_changes', …) a compact message per chunk of rows:
--   {"t": table, "o": "INSERT"|"UPDATE"|"DELETE", "ts": change time (UTC, ms),
--    "r": [[id, org_id], …]}            for inserts and updates (the row is read once later)
--   "r": [old row, …]                   for deletes (the old image decides who may hear of it)
-- A message over the 8,000-byte NOTIFY limit is kept in realtime.spill and the notification
-- carries only {"spill": id}. Every Tally instance LISTENs, so all of them deliver.

create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role, tally_authenticator;
-- The feed (as tally_authenticator) takes on callers' identities through private helpers.
grant usage on schema private to tally_authenticator;

create unlogged table realtime.spill (
    id         bigint generated always as identity primary key,
    payload    text not null,
    created_at timestamptz not null default now()
);
alter table realtime.spill enable row level security;
alter table realtime.spill force row level security;
grant select, insert, delete on realtime.spill to service_role;
grant select, insert on realtime.spill to tally_definer;
grant usage on schema realtime to tally_definer;

-- Sends one change message, through realtime.spill when it is too long for NOTIFY.
create or replace function private.send_change(message text) returns void
  language plpgsql set search_path = ''
as $$
declare
  spilled bigint;
begin
  if pg_catalog.octet_length(message) > 7900 then
    insert into realtime.spill (payload) values (message) returning id into spilled;
    message := pg_catalog.jsonb_build_object('spill', spilled)::text;
  end if;
  perform pg_catalog.pg_notify('tally_changes', message);
end
$$;
alter function private.send_change(text) owner to tally_definer;
revoke execute on function private.send_change(text) from public;

-- The statement-level trigger: one message per 64 inserted or updated rows (id and org), or
-- per 16 deleted rows (their old images). tg_argv[0] names the org column (see watch_changes).
create or replace function private.capture_changes() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  head jsonb := pg_catalog.jsonb_build_object('t', tg_table_name, 'o', tg_op, 'ts',
    pg_catalog.to_char(pg_catalog.clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
  chunk jsonb;
begin
  if tg_op = 'DELETE' then
    for chunk in select pg_catalog.jsonb_agg(x.r) from (
        select pg_catalog.to_jsonb(o) as r, (pg_catalog.row_number() over () - 1) / 16 as g
        from old_rows o) x group by x.g loop
      perform private.send_change((head || pg_catalog.jsonb_build_object('r', chunk))::text);
    end loop;
  elsif tg_argv[0] = 'org_id' then
    for chunk in select pg_catalog.jsonb_agg(x.r) from (
        select pg_catalog.jsonb_build_array(n.id, n.org_id) as r,
               (pg_catalog.row_number() over () - 1) / 64 as g
        from new_rows n) x group by x.g loop
      perform private.send_change((head || pg_catalog.jsonb_build_object('r', chunk))::text);
    end loop;
  else
    for chunk in select pg_catalog.jsonb_agg(x.r) from (
        select pg_catalog.jsonb_build_array(n.id, case when tg_argv[0] = 'id' then n.id end) as r,
               (pg_catalog.row_number() over () - 1) / 64 as g
        from new_rows n) x group by x.g loop
      perform private.send_change((head || pg_catalog.jsonb_build_object('r', chunk))::text);
    end loop;
  end if;
  return null;
end
$$;
alter function private.capture_changes() owner to tally_definer;
revoke execute on function private.capture_changes() from public;

-- The name of a table's visibility function: realtime.visible_<table>.
create or replace function private.visible_function(tbl regclass) returns text
  language sql stable set search_path = ''
as $$ select 'visible_' || c.relname from pg_catalog.pg_class c where c.oid = tbl $$;
revoke execute on function private.visible_function(regclass) from public;
grant execute on function private.visible_function(regclass) to tally_authenticator;

-- Adds the change triggers (and realtime.visible_<table>) to a table of public. org_column names the column holding the org
-- ('org_id'; 'id' for organizations; 'none' for tables of no org).
create or replace function private.watch_changes(tbl regclass, org_column text default 'org_id')
returns void
  language plpgsql set search_path = ''
as $$
begin
  execute pg_catalog.format('drop trigger if exists realtime_insert on %s', tbl);
  execute pg_catalog.format('drop trigger if exists realtime_update on %s', tbl);
  execute pg_catalog.format('drop trigger if exists realtime_delete on %s', tbl);
  -- Transition tables are named for both cases so one function reads either.
  execute pg_catalog.format('create trigger realtime_insert after insert on %s referencing new table as new_rows
      for each statement execute function private.capture_changes(%L)', tbl, org_column);
  execute pg_catalog.format('create trigger realtime_update after update on %s referencing new table as new_rows
      for each statement execute function private.capture_changes(%L)', tbl, org_column);
  execute pg_catalog.format('create trigger realtime_delete after delete on %s referencing old table as old_rows
      for each statement execute function private.capture_changes(%L)', tbl, org_column);
  -- Which of some changed rows each caller may read (see realtime.authorize), with static SQL:
  -- PostgreSQL keeps its plan from one caller to the next of the same role.
  execute pg_catalog.format($f$
    create or replace function realtime.%1$I(changes jsonb, callers jsonb, with_rows boolean)
    returns table (caller int, change int, record jsonb)
      language plpgsql volatile set search_path = ''
    as $body$
    declare
      i int;
      ids uuid[] := array(select pg_catalog.jsonb_array_elements_text(changes)::uuid);
    begin
      for i in 0 .. pg_catalog.jsonb_array_length(callers) - 1 loop
        perform pg_catalog.set_config('role', 'none', true);
        if not pg_catalog.has_table_privilege(callers -> i ->> 'role', %2$L, 'SELECT') then
          continue;
        end if;
        perform private.impersonate(callers -> i);
        return query select i, p.n - 1, null::jsonb
          from %2$s t, pg_catalog.unnest(pg_catalog.array_positions(ids, t.id)) p (n)
          where t.id = any (ids);
      end loop;
      perform pg_catalog.set_config('role', 'none', true);
      if with_rows then
        perform pg_catalog.set_config('role', 'service_role', true);
        return query select null::int, p.n - 1, pg_catalog.to_jsonb(t)
          from %2$s t, pg_catalog.unnest(pg_catalog.array_positions(ids, t.id)) p (n)
          where t.id = any (ids);
        perform pg_catalog.set_config('role', 'none', true);
      end if;
      perform pg_catalog.set_config('request.jwt.claims', '', true);
    end
    $body$ $f$, private.visible_function(tbl), tbl);
  execute pg_catalog.format('revoke execute on function realtime.%I(jsonb, jsonb, boolean) from public',
                            private.visible_function(tbl));
  execute pg_catalog.format('grant execute on function realtime.%I(jsonb, jsonb, boolean) to tally_authenticator',
                            private.visible_function(tbl));
end
$$;
revoke execute on function private.watch_changes(regclass, text) from public;

do $$
declare
  t record;
begin
  for t in
    select c.oid::regclass as tbl,
           case when c.relname = 'organizations' then 'id'
                when exists (select from pg_catalog.pg_attribute a where a.attrelid = c.oid
                             and a.attname = 'org_id' and not a.attisdropped) then 'org_id'
                else 'none' end as org_column
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind = 'r'
  loop
    perform private.watch_changes(t.tbl, t.org_column);
  end loop;
end
$$;

-- The select policies of a table for a role as one boolean expression over its columns (what
-- row-level security would apply to a select of that role): the permissive ones ORed, the
-- restrictive ones ANDed. 'true' for roles that bypass RLS, 'false' without the select grant.
create or replace function private.read_policy(tbl regclass, role_name text) returns text
  language sql stable set search_path = ''
as $$
  select case
    when r.rolbypassrls then 'true'
    when not pg_catalog.has_table_privilege(r.oid, tbl, 'SELECT') then 'false'
    else coalesce((select '(' || pg_catalog.string_agg(
                     '(' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), 'true') || ')', ' or ') || ')'
                   from pg_catalog.pg_policy p
                   where p.polrelid = tbl and p.polpermissive and p.polcmd in ('r', '*')
                     and p.polroles && array[0::oid, r.oid]), 'false')
      || coalesce((select ' and ' || pg_catalog.string_agg(
                     '(' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), 'true') || ')', ' and ')
                   from pg_catalog.pg_policy p
                   where p.polrelid = tbl and not p.polpermissive and p.polcmd in ('r', '*')
                     and p.polroles && array[0::oid, r.oid]), '')
  end
  from pg_catalog.pg_roles r where r.rolname = role_name
$$;
revoke execute on function private.read_policy(regclass, text) from public;
grant execute on function private.read_policy(regclass, text) to tally_authenticator;

-- Takes on a caller's identity for the rest of the transaction, as a request does.
create or replace function private.impersonate(caller jsonb) returns void
  language plpgsql set search_path = ''
as $$
begin
  perform pg_catalog.set_config('role', 'none', true);
  if caller ->> 'role' not in ('anon', 'authenticated', 'service_role') then
    raise exception 'unknown role %', caller ->> 'role';
  end if;
  perform pg_catalog.set_config('role', caller ->> 'role', true);
  perform pg_catalog.set_config('request.jwt.claims', (caller -> 'claims')::text, true);
  perform pg_catalog.set_config('request.jwt.claim.role', caller ->> 'role', true);
  perform pg_catalog.set_config('request.jwt.claim.sub', coalesce(caller -> 'claims' ->> 'sub', ''), true);
end
$$;
revoke execute on function private.impersonate(jsonb) from public;
grant execute on function private.impersonate(jsonb) to tally_authenticator;

-- Which callers may read which changed rows, in one statement for all of them: callers is
-- [{"role": …, "claims": {…}}, …]. For inserts and updates, changes is [id, …]: each caller
-- selects the ids it can see under RLS (in realtime.visible_<table>), and with with_rows the
-- rows come back once (caller null) for the server to send. For deletes, changes is [old row, …] and the table's select policies
-- are evaluated, as each caller, over the old row: who could see it before it went.
create or replace function realtime.authorize(tbl regclass, deleted boolean, changes jsonb, callers jsonb,
                                              with_rows boolean)
returns table (caller int, change int, record jsonb)
  language plpgsql volatile set search_path = ''
as $$
declare
  i int;
  policy text;
begin
  if not deleted then
    return query execute pg_catalog.format('select * from realtime.%I($1, $2, $3)', private.visible_function(tbl))
      using changes, callers, with_rows;
    return;
  end if;
  for i in 0 .. pg_catalog.jsonb_array_length(callers) - 1 loop
    perform pg_catalog.set_config('role', 'none', true);
    if not pg_catalog.has_table_privilege(callers -> i ->> 'role', tbl, 'SELECT') then
      continue;
    end if;
    policy := private.read_policy(tbl, callers -> i ->> 'role');
    perform private.impersonate(callers -> i);
    return query execute pg_catalog.format(
      'select $1, (c.n - 1)::int, null::jsonb
       from pg_catalog.jsonb_array_elements($2) with ordinality c (image, n),
            lateral pg_catalog.jsonb_populate_record(null::%s, c.image) as %I
       where %s', tbl, (select relname from pg_catalog.pg_class where oid = tbl), policy)
      using i, changes;
  end loop;
  perform pg_catalog.set_config('role', 'none', true);
  perform pg_catalog.set_config('request.jwt.claims', '', true);
end
$$;
revoke execute on function realtime.authorize(regclass, boolean, jsonb, jsonb, boolean) from public;
grant execute on function realtime.authorize(regclass, boolean, jsonb, jsonb, boolean) to tally_authenticator;

-- The orgs each caller belongs to: the feed skips callers outside a change's org before asking
-- RLS (an optimisation only; RLS still decides).
create or replace function realtime.caller_orgs(callers jsonb)
returns table (caller int, orgs uuid[])
  language plpgsql volatile set search_path = ''
as $$
declare
  i int;
begin
  for i in 0 .. pg_catalog.jsonb_array_length(callers) - 1 loop
    perform pg_catalog.set_config('role', 'none', true);
    perform private.impersonate(callers -> i);
    caller := i;
    orgs := case when callers -> i ->> 'role' = 'authenticated' then private.my_org_ids() else '{}' end;
    return next;
  end loop;
  perform pg_catalog.set_config('role', 'none', true);
  perform pg_catalog.set_config('request.jwt.claims', '', true);
end
$$;
revoke execute on function realtime.caller_orgs(jsonb) from public;
grant execute on function realtime.caller_orgs(jsonb) to tally_authenticator;

-- Private channels (config.private): a caller joins topic T only if, with realtime.topic() = T,
-- RLS lets it select (to listen) or insert (to send) rows of realtime.messages, as on Supabase.
create table realtime.messages (
    id          uuid primary key default private.uuid_v7(),
    topic       text not null,
    extension   text not null check (extension in ('broadcast', 'presence')),
    event       text,
    payload     jsonb,
    private     boolean not null default true,
    inserted_at timestamptz not null default now()
);
alter table realtime.messages enable row level security;
alter table realtime.messages force row level security;
grant select, insert on realtime.messages to authenticated;
grant all on realtime.messages to service_role;

-- The topic being authorized (without the `realtime:` prefix).
create or replace function realtime.topic() returns text
  language sql stable set search_path = ''
as $$ select nullif(pg_catalog.current_setting('realtime.topic', true), '') $$;
grant execute on function realtime.topic() to anon, authenticated, service_role;

-- An org's channel `org:{org_id}`: its members listen and send; nobody else.
create policy messages_org_select on realtime.messages for select to authenticated
  using (realtime.topic() like 'org:%'
         and private.try_uuid(pg_catalog.substr(realtime.topic(), 5)) = any ((select private.my_org_ids())::uuid[]));
create policy messages_org_insert on realtime.messages for insert to authenticated
  with check (realtime.topic() like 'org:%'
         and private.try_uuid(pg_catalog.substr(realtime.topic(), 5)) = any ((select private.my_org_ids())::uuid[]));

-- Whether a caller may listen on (select) and send to (insert) a private topic, tried as
-- Supabase does: with realtime.topic() set, in a transaction that is then undone.
create or replace function realtime.channel_access(sub_topic text, caller jsonb,
                                                   out can_read boolean, out can_write boolean)
  language plpgsql volatile set search_path = ''
as $$
begin
  can_read := false;
  can_write := false;
  if not pg_catalog.has_table_privilege(caller ->> 'role', 'realtime.messages', 'SELECT') then
    return;
  end if;
  begin
    perform pg_catalog.set_config('role', 'service_role', true);
    insert into realtime.messages (topic, extension) values (sub_topic, 'broadcast');
    perform pg_catalog.set_config('role', 'none', true);
    perform private.impersonate(caller);
    perform pg_catalog.set_config('realtime.topic', sub_topic, true);
    can_read := exists (select from realtime.messages m where m.topic = sub_topic);
    begin
      insert into realtime.messages (topic, extension) values (sub_topic, 'broadcast');
      can_write := true;
    exception when insufficient_privilege then
      can_write := false;
    end;
    -- Undo the probe rows and the settings.
    raise sqlstate 'RT001';
  exception when sqlstate 'RT001' then
    null;
  end;
end
$$;
revoke execute on function realtime.channel_access(text, jsonb) from public;
grant execute on function realtime.channel_access(text, jsonb) to tally_authenticator;
