-- UUIDv7 ids: the server's own uuidv7() on PostgreSQL 18, an equivalent before.
-- The current definition, applied after the numbered migrations on every migrate.

do $$
begin
  if current_setting('server_version_num')::int >= 180000 then
    create or replace function private.uuid_v7() returns uuid
      language sql volatile parallel safe set search_path = ''
      as 'select pg_catalog.uuidv7()';
  else
    create or replace function private.uuid_v7() returns uuid
      language sql volatile parallel safe set search_path = ''
      as $f$
        select pg_catalog.encode(
          pg_catalog.set_bit(pg_catalog.set_bit(pg_catalog.overlay(
            pg_catalog.uuid_send(pg_catalog.gen_random_uuid())
            placing pg_catalog.substring(pg_catalog.int8send(
              (extract(epoch from pg_catalog.clock_timestamp()) * 1000)::bigint) from 3)
            from 1 for 6), 52, 1), 53, 1), 'hex')::uuid
      $f$;
  end if;
end
$$;
