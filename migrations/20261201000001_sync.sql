-- Offline sync (`sync-pull`, `sync-push`): where each synced row last changed, in an order no
-- committed change can slip behind.
--
-- Every insert, update and delete of a synced table stamps the row's entry in
-- `private.sync_rows` with the writing transaction's id (`xid8`) and a sequence number. A pull
-- returns entries in (xid, seq) order after the client's cursor, but only of transactions older
-- than the oldest one still running (`pg_snapshot_xmin(pg_current_snapshot())`): those are all
-- finished, so everything they wrote is visible and nothing can later appear before the cursor.
-- A transaction that commits late has a newer xid than any returned (xids are handed out in
-- order), so it is delivered on a later pull. One entry per row: a pull sends each row's
-- current state once, however often it changed.
--
-- Deletes are soft (`deleted_at`) and travel as `delete` changes. Tombstones older than the
-- retention are purged (`private.sync_purge`, daily); each org remembers the newest position
-- purged and how many purges ran, and a cursor from before a purge that is older than that
-- position is told to resync.
create table private.sync_rows (
    tbl        text not null,
    id         uuid not null,
    org_id     uuid,
    xid        xid8 not null,
    seq        bigint not null,
    deleted    boolean not null,
    changed_at timestamptz not null default pg_catalog.now(),
    primary key (tbl, id)
);
create index sync_rows_position on private.sync_rows (org_id, xid, seq);
create index sync_rows_tombstones on private.sync_rows (changed_at) where deleted;
create sequence private.sync_seq;
alter table private.sync_rows enable row level security;
alter table private.sync_rows force row level security;

create table private.sync_horizons (
    org_id     uuid primary key references public.organizations (id) on delete cascade,
    xid        xid8 not null,
    seq        bigint not null,
    generation bigint not null default 1
);
alter table private.sync_horizons enable row level security;
alter table private.sync_horizons force row level security;

-- Pushed mutations by (person, mutation id), with the result they got: a retried batch gets
-- the stored results and applies nothing twice.
create table private.sync_mutations (
    user_id     uuid not null references auth.users (id) on delete cascade,
    mutation_id uuid not null,
    org_id      uuid not null references public.organizations (id) on delete cascade,
    result      jsonb not null,
    created_at  timestamptz not null default pg_catalog.now(),
    primary key (user_id, mutation_id)
);
create index sync_mutations_age on private.sync_mutations (created_at);
alter table private.sync_mutations enable row level security;
alter table private.sync_mutations force row level security;
-- Read and written only by the security-definer functions below (tally_definer bypasses RLS).
grant select, insert, update, delete on private.sync_rows, private.sync_horizons, private.sync_mutations
  to tally_definer;
grant usage on sequence private.sync_seq to tally_definer;

-- Stamps the rows a statement wrote (or removed) with this transaction's position.
create or replace function private.sync_stamp() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if pg_catalog.current_setting('tally.sync_purging', true) = 'on' then
    return null;
  end if;
  if tg_op = 'DELETE' then
    insert into private.sync_rows as s (tbl, id, org_id, xid, seq, deleted)
    select tg_table_name, o.id, o.org_id, pg_catalog.pg_current_xact_id(),
           pg_catalog.nextval('private.sync_seq'), true
    from old_rows o
    on conflict (tbl, id) do update
      set xid = excluded.xid, seq = excluded.seq, deleted = true, changed_at = pg_catalog.now();
  else
    insert into private.sync_rows as s (tbl, id, org_id, xid, seq, deleted)
    select tg_table_name, n.id, n.org_id, pg_catalog.pg_current_xact_id(),
           pg_catalog.nextval('private.sync_seq'), n.deleted_at is not null
    from new_rows n
    on conflict (tbl, id) do update
      set org_id = excluded.org_id, xid = excluded.xid, seq = excluded.seq,
          deleted = excluded.deleted, changed_at = pg_catalog.now();
  end if;
  return null;
end
$$;
alter function private.sync_stamp() owner to tally_definer;

do $$
declare
  t text;
begin
  foreach t in array array['time_logs', 'attachments', 'projects', 'teams', 'work_modes',
                           'activity_types', 'task_categories'] loop
    execute format('create trigger sync_insert after insert on public.%I referencing new table as new_rows
                    for each statement execute function private.sync_stamp()', t);
    execute format('create trigger sync_update after update on public.%I referencing new table as new_rows
                    for each statement execute function private.sync_stamp()', t);
    execute format('create trigger sync_delete after delete on public.%I referencing old table as old_rows
                    for each statement execute function private.sync_stamp()', t);
    execute format('insert into private.sync_rows (tbl, id, org_id, xid, seq, deleted)
                    select %L, id, org_id, pg_catalog.pg_current_xact_id(),
                           pg_catalog.nextval(''private.sync_seq''), deleted_at is not null
                    from public.%I order by id', t, t);
  end loop;
end
$$;

-- The changes of an org (and of the default vocabulary) after (xid, seq), oldest first, of
-- finished transactions only; for members of the org.
create or replace function private.sync_changes(org uuid, after_xid xid8, after_seq bigint, max int)
returns table (tbl text, id uuid, xid xid8, seq bigint, deleted boolean)
  language sql stable security definer set search_path = ''
as $$
  with horizon as (select pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) as xmin)
  select c.* from (
    (select s.tbl, s.id, s.xid, s.seq, s.deleted from private.sync_rows s, horizon h
     where s.org_id = org and (s.xid, s.seq) > (after_xid, after_seq) and s.xid < h.xmin
     order by s.xid, s.seq limit max)
    union all
    (select s.tbl, s.id, s.xid, s.seq, s.deleted from private.sync_rows s, horizon h
     where s.org_id is null and (s.xid, s.seq) > (after_xid, after_seq) and s.xid < h.xmin
     order by s.xid, s.seq limit max)
  ) c
  where org = any (private.my_org_ids())
  order by c.xid, c.seq limit max
$$;
alter function private.sync_changes(uuid, xid8, bigint, int) owner to tally_definer;

-- Whether a cursor must resync: purges ran since it was handed out (its generation is older)
-- and it is behind the newest tombstone they removed, so it may have missed that delete.
create or replace function private.sync_needs_resync(org uuid, after_xid xid8, after_seq bigint,
                                                     seen bigint)
returns boolean
  language sql stable security definer set search_path = ''
as $$
  select exists (select 1 from private.sync_horizons h
                 where h.org_id = org and seen < h.generation
                   and (after_xid, after_seq) < (h.xid, h.seq))
$$;

-- How many purges have moved an org's horizon (cursors carry it).
create or replace function private.sync_generation(org uuid) returns bigint
  language sql stable security definer set search_path = ''
as $$
  select coalesce((select h.generation from private.sync_horizons h where h.org_id = org), 0)
$$;
alter function private.sync_generation(uuid) owner to tally_definer;
alter function private.sync_needs_resync(uuid, xid8, bigint, bigint) owner to tally_definer;

-- Removes tombstones (rows soft-deleted longer ago than `retention`, and their entries), and
-- moves each org's horizon to the newest position removed. Returns how many rows.
create or replace function private.sync_purge(retention interval) returns int
  language plpgsql security definer set search_path = ''
as $$
declare
  t text;
  n int := 0;
  removed int;
begin
  perform pg_catalog.set_config('tally.sync_purging', 'on', true);
  create temporary table purged on commit drop as
    select s.tbl, s.id, s.org_id, s.xid, s.seq from private.sync_rows s
    where s.deleted and s.changed_at < pg_catalog.now() - retention;
  foreach t in array array['time_logs', 'attachments', 'projects', 'teams', 'work_modes',
                           'activity_types', 'task_categories'] loop
    execute format('delete from public.%I x using purged p where p.tbl = %L and x.id = p.id', t, t);
    get diagnostics removed = row_count;
    n := n + removed;
  end loop;
  delete from private.sync_rows s using purged p where s.tbl = p.tbl and s.id = p.id;
  delete from private.sync_mutations m where m.created_at < pg_catalog.now() - retention;
  insert into private.sync_horizons as h (org_id, xid, seq)
    select distinct on (p.org_id) p.org_id, p.xid, p.seq from purged p
    where p.org_id is not null and exists (select 1 from public.organizations o where o.id = p.org_id)
    order by p.org_id, p.xid desc, p.seq desc
  on conflict (org_id) do update
    set xid = excluded.xid, seq = excluded.seq, generation = h.generation + 1
    where (excluded.xid, excluded.seq) > (h.xid, h.seq);
  perform pg_catalog.set_config('tally.sync_purging', 'off', true);
  return n;
end
$$;
alter function private.sync_purge(interval) owner to tally_definer;
grant select, delete on public.time_logs, public.attachments, public.projects, public.teams,
  public.work_modes, public.activity_types, public.task_categories to tally_definer;
revoke execute on function private.sync_purge(interval) from public;
grant execute on function private.sync_purge(interval) to service_role;

-- A pushed mutation's stored result, or null; and storing one (in the push's transaction).
create or replace function private.sync_result(mutation uuid) returns jsonb
  language sql stable security definer set search_path = ''
as $$
  select m.result from private.sync_mutations m
  where m.user_id = (select auth.uid()) and m.mutation_id = mutation
$$;
alter function private.sync_result(uuid) owner to tally_definer;

create or replace function private.sync_remember(mutation uuid, org uuid, outcome jsonb) returns void
  language sql security definer set search_path = ''
as $$
  insert into private.sync_mutations (user_id, mutation_id, org_id, result)
  values ((select auth.uid()), mutation, org, outcome)
$$;
alter function private.sync_remember(uuid, uuid, jsonb) owner to tally_definer;

-- The position of this transaction's writes in an org, if any.
create or replace function private.sync_position(org uuid) returns table (xid xid8, seq bigint)
  language sql stable security definer set search_path = ''
as $$
  select s.xid, max(s.seq) from private.sync_rows s
  where s.org_id = org and s.xid = pg_catalog.pg_current_xact_id_if_assigned()
  group by s.xid
$$;
alter function private.sync_position(uuid) owner to tally_definer;

-- Counts one sync request of the caller in this minute's window; false past `per_minute`.
create or replace function private.sync_take(per_minute int) returns boolean
  language plpgsql security definer set search_path = ''
as $$
declare
  person text := (select auth.uid())::text;
  hits int;
begin
  delete from auth.rate_limits r
   where r.bucket = 'sync' and r.key = person and r.window_start < pg_catalog.date_trunc('minute', pg_catalog.now());
  insert into auth.rate_limits as r (bucket, key, window_start, hits)
  values ('sync', person, pg_catalog.date_trunc('minute', pg_catalog.now()), 1)
  on conflict (bucket, key, window_start) do update set hits = r.hits + 1
  returning r.hits into hits;
  return hits <= per_minute;
end
$$;
alter function private.sync_take(int) owner to tally_definer;
grant select, insert, update, delete on auth.rate_limits to tally_definer;

grant execute on function private.sync_changes(uuid, xid8, bigint, int),
  private.sync_needs_resync(uuid, xid8, bigint, bigint), private.sync_generation(uuid),
  private.sync_result(uuid),
  private.sync_remember(uuid, uuid, jsonb), private.sync_position(uuid), private.sync_take(int)
  to authenticated;

-- The purge runs daily at 03:17 UTC (first run tomorrow).
insert into private.schedules (name, cron, timezone, kind, payload, next_run_at)
values ('sync.purge', '17 3 * * *', 'UTC', 'sync_purge', '{}',
        pg_catalog.date_trunc('day', pg_catalog.now()) + interval '1 day 3 hours 17 minutes')
on conflict (name) do nothing;
