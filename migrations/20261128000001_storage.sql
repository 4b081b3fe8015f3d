-- Storage: buckets and objects, as Supabase Storage keeps them, under forced RLS.
--
-- Object names in the voices and images buckets are `{org_id}/{log_id or attachment_id}/{file}`,
-- exports are `{org_id}/…`. The bytes live in the configured backend (local files or S3) under
-- `{bucket}/{name}/{version}`; these rows say who may reach them. Every object operation runs
-- in the caller's transaction, so these policies decide, as on Supabase:
--   voices, images  read:  whoever may read the log the object belongs to (DESIGN §2: owners and
--                          admins the org's, managers their own and their teams', members
--                          their own), and the uploader;
--                   write: owners and admins of the org; managers and members their own objects,
--                          placed under a log or attachment of their own.
--   exports          owners and admins may sign download URLs; only the server writes.
create schema if not exists storage;
grant usage on schema storage to anon, authenticated, service_role;

create table storage.buckets (
    id                 text primary key check (id ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    name               text not null unique,
    owner              uuid,
    owner_id           text,
    public             boolean not null default false,
    file_size_limit    bigint check (file_size_limit > 0),
    allowed_mime_types text[],
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now()
);

create table storage.objects (
    id               uuid primary key default private.uuid_v7(),
    bucket_id        text not null references storage.buckets (id),
    name             text collate "C" not null check (octet_length(name) between 1 and 900),
    owner            uuid,
    owner_id         text,
    version          text not null,
    metadata         jsonb,
    user_metadata    jsonb,
    path_tokens      text[] generated always as (string_to_array(name, '/')) stored,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    last_accessed_at timestamptz not null default now(),
    unique (bucket_id, name)
);
-- (bucket_id, name) in "C" collation also serves prefix searches (`name like 'a/b/%'`).

create trigger buckets_updated_at before update on storage.buckets
    for each row execute function private.set_updated_at();
create trigger objects_updated_at before update on storage.objects
    for each row execute function private.set_updated_at();

-- Supabase's helpers for policies: the folders of a name, its file name and extension.
create or replace function storage.foldername(name text) returns text[]
  language sql immutable set search_path = ''
as $$ select (pg_catalog.string_to_array(name, '/'))[1:pg_catalog.array_length(pg_catalog.string_to_array(name, '/'), 1) - 1] $$;
create or replace function storage.filename(name text) returns text
  language sql immutable set search_path = ''
as $$ select (pg_catalog.string_to_array(name, '/'))[pg_catalog.array_length(pg_catalog.string_to_array(name, '/'), 1)] $$;
create or replace function storage.extension(name text) returns text
  language sql immutable set search_path = ''
as $$ select case when storage.filename(name) like '%.%'
                  then pg_catalog.lower(pg_catalog.regexp_replace(storage.filename(name), '^.*\.', '')) else '' end $$;
grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
  to anon, authenticated, service_role;

-- The uuid a text spells, or null (names are client input: never a cast error in a policy).
create or replace function private.try_uuid(value text) returns uuid
  language sql immutable set search_path = ''
as $$ select case when value ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                  then value::uuid end $$;

-- The org an object belongs to (its first folder) and the log or attachment (its second).
create or replace function private.object_org(name text) returns uuid
  language sql immutable set search_path = ''
as $$ select private.try_uuid(pg_catalog.split_part(name, '/', 1)) $$;
create or replace function private.object_ref(name text) returns uuid
  language sql immutable set search_path = ''
as $$ select private.try_uuid(pg_catalog.split_part(name, '/', 2)) $$;

-- May the caller change or remove an existing object: owners and admins of its org; managers and
-- members their own.
create or replace function private.can_modify_object(bucket text, name text, owner uuid)
returns boolean
  language sql stable set search_path = ''
as $$
  select bucket in ('voices', 'images') and (
    private.object_org(name) = any (private.my_org_ids('{owner,admin}'))
    or (owner = auth.uid() and private.object_org(name) = any (private.my_org_ids('{manager,member}'))))
$$;

-- May the caller put an object at this name: owners and admins anywhere in their org; managers
-- and members under a log or attachment of their own (read through their RLS).
create or replace function private.can_place_object(bucket text, name text)
returns boolean
  language sql stable set search_path = ''
as $$
  select bucket in ('voices', 'images') and (
    private.object_org(name) = any (private.my_org_ids('{owner,admin}'))
    or (private.object_org(name) = any (private.my_org_ids('{manager,member}')) and (
      exists (select 1 from public.time_logs t
              where t.id = private.object_ref(name) and t.org_id = private.object_org(name)
                and t.user_id = auth.uid())
      or exists (select 1 from public.attachments a
                 where a.id = private.object_ref(name) and a.org_id = private.object_org(name)
                   and a.user_id = auth.uid()))))
$$;

grant execute on function private.try_uuid(text), private.object_org(text), private.object_ref(text),
  private.can_modify_object(text, text, uuid), private.can_place_object(text, text)
  to authenticated, service_role;

alter table storage.buckets enable row level security;
alter table storage.buckets force row level security;
alter table storage.objects enable row level security;
alter table storage.objects force row level security;
grant select, insert, update, delete on storage.buckets, storage.objects to service_role;

-- Bucket settings (limits, MIME types) are not secret: clients read them. The anon role may
-- try everything on objects, and no policy lets it do anything (as on Supabase, RLS answers).
grant select on storage.buckets to anon, authenticated;
create policy buckets_select on storage.buckets for select to anon, authenticated using (true);

grant select, insert, update, delete on storage.objects to anon, authenticated;
create policy objects_select on storage.objects for select to authenticated using (
  (bucket_id in ('voices', 'images') and (
     private.object_org(name) = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
     or (owner = (select auth.uid())
         and private.object_org(name) = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
     or (private.object_org(name), owner) in (select l.org_id, l.user_id from private.led_members() l)
     or exists (select 1 from public.time_logs t
                where t.id = private.object_ref(name) and t.org_id = private.object_org(name))))
  or (bucket_id = 'exports'
      and private.object_org(name) = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      and current_setting('storage.operation', true) = 'object.sign'));
create policy objects_insert on storage.objects for insert to authenticated
  with check (owner = (select auth.uid()) and private.can_place_object(bucket_id, name));
create policy objects_update on storage.objects for update to authenticated
  using (private.can_modify_object(bucket_id, name, owner))
  with check (private.can_modify_object(bucket_id, name, owner)
              and private.can_place_object(bucket_id, name));
create policy objects_delete on storage.objects for delete to authenticated
  using (private.can_modify_object(bucket_id, name, owner));

-- The three buckets of DESIGN §3, private; limits and MIME types are changed through
-- PUT /storage/v1/bucket/{id} (service role).
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) values
  ('voices', 'voices', false, 25 * 1024 * 1024, '{audio/*}'),
  ('images', 'images', false, 10 * 1024 * 1024, '{image/png,image/jpeg,image/webp}'),
  ('exports', 'exports', false, 200 * 1024 * 1024,
   '{text/csv,application/json,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,application/vnd.apache.parquet}');

-- An object arriving where an attachment waits for it marks the attachment uploaded, with the
-- object's size, type and digest, in the same transaction.
create or replace function private.object_arrived() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  update public.attachments a
     set status = 'uploaded',
         size_bytes = (new.metadata ->> 'size')::bigint,
         content_type = new.metadata ->> 'mimetype',
         sha256 = new.metadata ->> 'sha256'
   where a.bucket = new.bucket_id and a.object_path = new.name and a.deleted_at is null
     and a.status in ('pending_upload', 'uploaded', 'failed');
  return null;
end
$$;
alter function private.object_arrived() owner to tally_definer;
grant select, update on public.attachments to tally_definer;
create trigger objects_arrived after insert or update of version on storage.objects
    for each row execute function private.object_arrived();
