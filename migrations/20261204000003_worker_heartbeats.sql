-- Workers say they are alive: each claim and each poll tick stamps the worker's row. A job
-- leased to a worker that has gone silent (its process crashed) is due again at once, without
-- waiting out the rest of its lease.
create table private.workers (
    id      text primary key,
    seen_at timestamptz not null default now()
);
alter table private.workers enable row level security;
alter table private.workers force row level security;
grant select, insert, update, delete on private.workers to service_role;
create policy workers_service on private.workers for all to service_role using (true) with check (true);
