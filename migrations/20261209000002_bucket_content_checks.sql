-- Buckets whose files Tally itself reads (the pipeline's voice notes and screenshots, the
-- exports it writes) have their bytes checked against the declared type at upload; the others
-- store what is declared, as Supabase Storage does (checked only against allowed_mime_types).
alter table storage.buckets add column check_content boolean not null default false;
update storage.buckets set check_content = true where id in ('voices', 'images', 'exports');
