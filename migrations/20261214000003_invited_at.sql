-- When a person was last invited (GoTrue's users.invited_at, shown on the user).
alter table auth.users add column invited_at timestamptz;
