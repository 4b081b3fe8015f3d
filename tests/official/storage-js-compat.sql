-- Loaded before storage-js's seed (test/supabase/seed.sql) into a throwaway Tally database, so
-- the seed runs as written: the auth.users columns GoTrue has and Tally does not, pgcrypto's
-- crypt() (no storage test signs in, so any hash does), and a version for objects the seed
-- inserts without one (their bytes are not in the backend either).
alter table auth.users
  add column if not exists instance_id uuid,
  add column if not exists confirmation_token text,
  add column if not exists email_change_token_new text,
  add column if not exists recovery_token text;
create function public.gen_salt(text) returns text language sql immutable as $$ select 'seed' $$;
create function public.crypt(text, text) returns text language sql immutable as $$ select 'not-a-password-hash' $$;
alter table storage.objects alter column version set default 'seeded';
