-- Every function Tally owns runs with a fixed search_path (Supabase's linter, lint 0011):
-- the job notifier was the one left to the caller's.
alter function private.notify_jobs() set search_path = '';
