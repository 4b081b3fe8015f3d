-- Resumable uploads (the tus protocol at /storage/v1/upload/resumable): one row per upload in
-- progress — where it will go, who started it, how far it is. Its bytes wait in the backend
-- as parts under `_resumable/{id}/`; the finished object is written like any upload. Only the
-- server reads and writes these rows (it checks the caller against `owner`).
create table storage.resumable_uploads (
    id             uuid primary key default private.uuid_v7(),
    bucket_id      text not null references storage.buckets (id) on delete cascade,
    name           text collate "C" not null check (octet_length(name) between 1 and 900),
    owner          uuid references auth.users (id) on delete cascade,
    upload_length  bigint not null check (upload_length >= 0),
    upload_offset  bigint not null default 0 check (upload_offset between 0 and upload_length),
    content_type   text not null,
    cache_control  text not null,
    user_metadata  jsonb,
    upsert         boolean not null default false,
    parts          text[] not null default '{}',
    created_at     timestamptz not null default now(),
    expires_at     timestamptz not null default now() + interval '24 hours'
);
create index resumable_uploads_bucket_idx on storage.resumable_uploads (bucket_id);
create index resumable_uploads_owner_idx on storage.resumable_uploads (owner);
create index resumable_uploads_expiry_idx on storage.resumable_uploads (expires_at);
alter table storage.resumable_uploads enable row level security;
alter table storage.resumable_uploads force row level security;
grant select, insert, update, delete on storage.resumable_uploads to service_role;
create policy resumable_uploads_service on storage.resumable_uploads for all to service_role
  using (true) with check (true);
