-- Realtime: the organizations a caller belongs to, as channels check them.
-- The current definition, applied after the numbered migrations on every migrate.

-- realtime.caller_orgs (last changed in 20261202000002_realtime_caller_orgs.sql)
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
    if callers -> i ->> 'role' = 'authenticated' then
      orgs := private.my_org_ids();
    else
      orgs := '{}';
    end if;
    return next;
  end loop;
  perform pg_catalog.set_config('role', 'none', true);
  perform pg_catalog.set_config('request.jwt.claims', '', true);
end
$$;
