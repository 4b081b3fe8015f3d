-- Records that an external record (a Jira worklog, a calendar event) was removed as a whole,
-- and by which event: an older event about it processed late (a retried job) creates no
-- draft again.
create table private.external_removals (
    integration_id uuid not null references public.integrations (id) on delete cascade,
    external_key   text not null,
    -- When the event that removed the record was received.
    removed_at     timestamptz not null,
    primary key (integration_id, external_key)
);
alter table private.external_removals enable row level security;
alter table private.external_removals force row level security;
grant select, insert, update, delete on private.external_removals to service_role;
