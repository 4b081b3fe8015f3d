-- Audit trail: every insert, update and delete of an audited table writes one row to
-- public.audit_log: who (auth.uid(), null for the server's own jobs), what (insert, update,
-- delete), which table and row, and a diff ({before, after}: for an update only the columns
-- that changed, bookkeeping columns aside). An update that changes nothing writes nothing. The
-- rows of an org being deleted are not audited: its audit rows go with it.

create or replace function private.audit_row() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  ignored constant text[] := array['updated_at', 'version'];
  old_row jsonb := case when tg_op <> 'INSERT' then pg_catalog.to_jsonb(old) - ignored end;
  new_row jsonb := case when tg_op <> 'DELETE' then pg_catalog.to_jsonb(new) - ignored end;
  row_data jsonb := coalesce(new_row, old_row);
  org uuid := (case when tg_table_name = 'organizations' then row_data ->> 'id'
                    else row_data ->> 'org_id' end)::uuid;
  changed text[];
begin
  if not exists (select from public.organizations o where o.id = org) then
    return null;
  end if;
  if tg_op = 'UPDATE' then
    select coalesce(pg_catalog.array_agg(k), '{}') into changed
      from pg_catalog.jsonb_object_keys(new_row) k
     where (old_row -> k) is distinct from (new_row -> k);
    if pg_catalog.cardinality(changed) = 0 then
      return null;
    end if;
    select pg_catalog.jsonb_object_agg(k, old_row -> k), pg_catalog.jsonb_object_agg(k, new_row -> k)
      into old_row, new_row
      from pg_catalog.unnest(changed) k;
  end if;
  insert into public.audit_log (org_id, actor_id, action, table_name, row_id, details)
  values (org, auth.uid(), pg_catalog.lower(tg_op), tg_table_name, (row_data ->> 'id')::uuid,
          pg_catalog.jsonb_build_object('before', old_row, 'after', new_row));
  return null;
end
$$;
alter function private.audit_row() owner to tally_definer;
revoke execute on function private.audit_row() from public;
grant select on public.organizations to tally_definer;
grant insert on public.audit_log to tally_definer;

do $$
declare
  t text;
begin
  foreach t in array array['organizations', 'memberships', 'projects', 'integrations',
      'time_logs', 'timesheet_periods'] loop
    execute pg_catalog.format(
      'create or replace trigger audit after insert or update or delete on public.%I '
      'for each row execute function private.audit_row()', t);
  end loop;
end
$$;
