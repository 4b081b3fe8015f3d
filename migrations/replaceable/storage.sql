-- Storage: what happens when an object's file arrives.
-- The current definition, applied after the numbered migrations on every migrate.

-- private.object_arrived (last changed in 20261128000002_attachment_extraction.sql)
create or replace function private.object_arrived() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  queued integer;
begin
  with marked as (
    update public.attachments a
       set status = 'uploaded',
           size_bytes = (new.metadata ->> 'size')::bigint,
           content_type = new.metadata ->> 'mimetype',
           sha256 = new.metadata ->> 'sha256',
           extracted_text = null,
           error = null
     where a.bucket = new.bucket_id and a.object_path = new.name and a.deleted_at is null
       and a.status in ('pending_upload', 'uploaded', 'processed', 'failed')
    returning a.id, a.org_id
  )
  select count(private.enqueue_job('extract_attachment',
                                   jsonb_build_object('attachment_id', m.id), m.org_id, m.id::text))
    into queued
    from marked m;
  return null;
end
$$;
