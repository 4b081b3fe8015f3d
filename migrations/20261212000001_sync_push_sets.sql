-- sync-push looks up and stores the results of a whole batch's mutations in one statement each
-- (it applied them one round trip per mutation before).
drop function private.sync_result(uuid);
drop function private.sync_remember(uuid, uuid, jsonb);

-- The stored results of those of `mutations` the caller pushed before.
create or replace function private.sync_results(mutations uuid[])
returns table (mutation_id uuid, result jsonb)
  language sql stable security definer set search_path = ''
as $$
  select m.mutation_id, m.result from private.sync_mutations m
  where m.user_id = (select auth.uid()) and m.mutation_id = any (mutations)
$$;
alter function private.sync_results(uuid[]) owner to tally_definer;

-- Stores each of `mutations`' result (`outcomes`, in the same order), in the push's transaction.
create or replace function private.sync_remember_all(mutations uuid[], org uuid, outcomes jsonb[])
returns void
  language sql security definer set search_path = ''
as $$
  insert into private.sync_mutations (user_id, mutation_id, org_id, result)
  select (select auth.uid()), r.mutation, org, r.outcome
  from unnest(mutations, outcomes) as r (mutation, outcome)
$$;
alter function private.sync_remember_all(uuid[], uuid, jsonb[]) owner to tally_definer;

revoke execute on function private.sync_results(uuid[]), private.sync_remember_all(uuid[], uuid, jsonb[])
  from public;
grant execute on function private.sync_results(uuid[]), private.sync_remember_all(uuid[], uuid, jsonb[])
  to authenticated;
