-- Asymmetric signing keys (crates/core/src/signing_keys.rs): sessions' tokens are signed with
-- the current key and carry its kid; standby keys are published ahead of a rotation, previous
-- keys still verify, revoked keys verify nothing. Only the owner writes them (`tally
-- signing-keys`); instances read them through a definer function and reload on every change.

create table private.jwt_signing_keys (
    kid             text primary key check (kid ~ '^[A-Za-z0-9._-]{1,100}$'),
    algorithm       text not null check (algorithm in ('ES256', 'RS256')),
    private_key_pem text not null,
    status          text not null check (status in ('standby', 'current', 'previous', 'revoked')),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);
-- One current key at most.
create unique index jwt_signing_keys_one_current on private.jwt_signing_keys ((true))
    where status = 'current';
create trigger jwt_signing_keys_updated_at before update on private.jwt_signing_keys
    for each row execute function private.set_updated_at();

create or replace function private.notify_signing_keys() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  perform pg_catalog.pg_notify('tally_signing_keys', '');
  return null;
end
$$;
create trigger jwt_signing_keys_changed after insert or update or delete or truncate
    on private.jwt_signing_keys for each statement execute function private.notify_signing_keys();

-- What an instance loads (its login role may read nothing else of the table's).
create or replace function private.signing_keys_of_instance()
returns table (kid text, algorithm text, private_key_pem text, status text)
  language sql stable security definer set search_path = ''
as $$
  select k.kid, k.algorithm, k.private_key_pem, k.status from private.jwt_signing_keys k
  where k.status <> 'revoked' order by k.created_at
$$;
revoke execute on function private.signing_keys_of_instance(), private.notify_signing_keys() from public;
grant execute on function private.signing_keys_of_instance() to tally_authenticator;
alter function private.signing_keys_of_instance() owner to tally_definer;
grant select on private.jwt_signing_keys to tally_definer;
