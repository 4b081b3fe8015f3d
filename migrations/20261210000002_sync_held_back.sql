-- A pull returns only changes of transactions older than the oldest one still running (so a
-- slow transaction is never skipped). Whether such committed changes were held back from a
-- pull ending at (after_xid, after_seq): the client then pulls again shortly, instead of
-- waiting for the next change to tell it to.
create or replace function private.sync_held_back(org uuid, after_xid xid8, after_seq bigint)
returns boolean
  language sql stable security definer set search_path = ''
as $$
  select org = any (private.my_org_ids()) and exists (
    select 1 from private.sync_rows s
    where (s.org_id = org or s.org_id is null)
      and (s.xid, s.seq) > (after_xid, after_seq)
      and s.xid >= pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()))
$$;
alter function private.sync_held_back(uuid, xid8, bigint) owner to tally_definer;
grant execute on function private.sync_held_back(uuid, xid8, bigint) to authenticated;
