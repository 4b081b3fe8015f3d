-- A session signed out, revoked by refresh-token reuse, or ended by an admin (ban, delete) is
-- announced on `tally_sessions` with its id, so realtime closes the channels that run with its
-- tokens at once instead of streaming to them until they expire. A session whose `not_after`
-- is moved into the past is announced too.
create function private.announce_session_end() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    perform pg_catalog.pg_notify('tally_sessions', old.id::text);
  elsif new.not_after is not null and new.not_after <= pg_catalog.now()
      and (old.not_after is null or old.not_after > pg_catalog.now()) then
    perform pg_catalog.pg_notify('tally_sessions', new.id::text);
  end if;
  return null;
end
$$;
revoke execute on function private.announce_session_end() from public;

create trigger sessions_announce_end after delete or update of not_after on auth.sessions
  for each row execute function private.announce_session_end();
