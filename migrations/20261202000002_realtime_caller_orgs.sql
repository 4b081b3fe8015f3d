-- realtime.caller_orgs evaluated `case when <authenticated> then private.my_org_ids() else '{}'`
-- as one expression: PostgreSQL checks EXECUTE on every function of an expression when it first
-- prepares it, whichever branch runs, so when the first caller of a batch was anon (which may not
-- execute my_org_ids) the whole batch failed and nobody heard those changes. The call now sits in
-- its own statement, prepared only for authenticated callers.
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
