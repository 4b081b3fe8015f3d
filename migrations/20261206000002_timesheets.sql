-- Timesheets: each person's week or month (organizations.settings.timesheet_period, 'week' by
-- default) goes open → submitted → approved | rejected (with a reason); owners and admins may
-- reopen. An org's lock_date closes every day up to it. Logs in an approved period or on a
-- locked day are refused to everyone but owners and admins, whose overrides are audited. (The
-- rules and triggers live in migrations/replaceable/timesheets.sql.)
create type public.timesheet_status as enum ('open', 'submitted', 'approved', 'rejected');

alter table public.organizations add column lock_date date;

create table public.timesheet_periods (
    id           uuid primary key default private.uuid_v7(),
    org_id       uuid not null references public.organizations (id) on delete cascade,
    user_id      uuid not null references auth.users (id) on delete cascade,
    period       text not null default 'week' check (period in ('week', 'month')),
    period_start date not null,
    period_end   date not null,
    status       public.timesheet_status not null default 'open',
    reason       text check (length(reason) <= 2000),
    submitted_at timestamptz,
    decided_at   timestamptz,
    decided_by   uuid references auth.users (id) on delete set null,
    version      integer not null default 1,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    unique (org_id, user_id, period_start),
    constraint timesheet_periods_span check (period_end >= period_start),
    constraint timesheet_periods_rejected_reason check (
        status <> 'rejected' or length(btrim(coalesce(reason, ''))) > 0)
);
create index timesheet_periods_org_idx on public.timesheet_periods (org_id, updated_at);
create trigger timesheet_periods_version before insert or update on public.timesheet_periods
  for each row execute function private.set_version();

-- Read like a person's data (owners and admins all, managers their own and their teams',
-- members their own, viewers none); written by the person, their team's managers and the org's
-- owners and admins — the transition rules say who may do what; deleted by owners and admins.
alter table public.timesheet_periods enable row level security;
alter table public.timesheet_periods force row level security;
grant select, insert, update (status, reason), delete on public.timesheet_periods to authenticated;
grant all on public.timesheet_periods to service_role;
create policy timesheet_periods_select on public.timesheet_periods for select to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
      or (org_id, user_id) in (select l.org_id, l.user_id from private.led_members() l));
create policy timesheet_periods_insert on public.timesheet_periods for insert to authenticated
  with check (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[])));
create policy timesheet_periods_update on public.timesheet_periods for update to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
      or (org_id, user_id) in (select l.org_id, l.user_id from private.led_members() l))
  with check (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[])
      or (user_id = (select auth.uid()) and org_id = any ((select private.my_org_ids('{manager,member}'))::uuid[]))
      or (org_id, user_id) in (select l.org_id, l.user_id from private.led_members() l));
create policy timesheet_periods_delete on public.timesheet_periods for delete to authenticated
  using (org_id = any ((select private.my_org_ids('{owner,admin}'))::uuid[]));

select private.watch_changes('public.timesheet_periods');
