-- The data model of DESIGN §3. Every table carries org_id (except profiles, which are per
-- person) and its indexes lead with it; rows clients edit offline carry version + deleted_at.
set local search_path = public, extensions;

create type public.org_role as enum ('owner', 'admin', 'manager', 'member', 'viewer');
create type public.log_source as enum
    ('manual', 'timer', 'voice', 'screenshot', 'slack', 'jira', 'calendar', 'import', 'api');
create type public.log_status as enum
    ('pending', 'processing', 'needs_review', 'ready', 'finalized', 'failed');
create type public.extraction_status as enum ('ok', 'invalid', 'error');
create type public.attachment_kind as enum ('voice', 'image');
create type public.attachment_status as enum
    ('pending_upload', 'uploaded', 'processing', 'processed', 'failed');
create type public.integration_provider as enum ('slack', 'jira', 'calendar');
create type public.event_status as enum ('received', 'processing', 'processed', 'failed', 'dead');

create table public.organizations (
    id         uuid primary key default private.uuid_v7(),
    name       text not null check (length(btrim(name)) between 1 and 200),
    slug       text not null unique check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and length(slug) <= 63),
    timezone   text not null default 'UTC' check (private.is_time_zone(timezone)),
    settings   jsonb not null default '{}'::jsonb check (jsonb_typeof(settings) = 'object'),
    version    integer not null default 1,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.profiles (
    id         uuid primary key references auth.users (id) on delete cascade,
    email      text,
    full_name  text check (length(full_name) <= 200),
    avatar_url text,
    timezone   text check (timezone is null or private.is_time_zone(timezone)),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.departments (
    id         uuid primary key default private.uuid_v7(),
    org_id     uuid not null references public.organizations (id) on delete cascade,
    name       text not null check (length(btrim(name)) between 1 and 200),
    version    integer not null default 1,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, org_id)
);
create index departments_org_idx on public.departments (org_id, updated_at);

create table public.memberships (
    id            uuid primary key default private.uuid_v7(),
    org_id        uuid not null references public.organizations (id) on delete cascade,
    user_id       uuid not null references auth.users (id) on delete cascade,
    role          public.org_role not null default 'member',
    department_id uuid,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (org_id, user_id),
    foreign key (department_id, org_id) references public.departments (id, org_id)
        on delete set null (department_id)
);
-- Policies look memberships up by the caller: this index serves them.
create index memberships_user_idx on public.memberships (user_id, org_id, role);

create table public.teams (
    id            uuid primary key default private.uuid_v7(),
    org_id        uuid not null references public.organizations (id) on delete cascade,
    department_id uuid,
    name          text not null check (length(btrim(name)) between 1 and 200),
    version       integer not null default 1,
    deleted_at    timestamptz,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (id, org_id),
    foreign key (department_id, org_id) references public.departments (id, org_id)
        on delete set null (department_id)
);
create index teams_org_idx on public.teams (org_id, updated_at);

create table public.team_members (
    id         uuid primary key default private.uuid_v7(),
    org_id     uuid not null,
    team_id    uuid not null,
    user_id    uuid not null,
    is_lead    boolean not null default false,
    version    integer not null default 1,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (team_id, user_id),
    foreign key (team_id, org_id) references public.teams (id, org_id) on delete cascade,
    -- A team member is a member of the team's org; leaving the org leaves its teams.
    foreign key (org_id, user_id) references public.memberships (org_id, user_id) on delete cascade
);
create index team_members_org_idx on public.team_members (org_id, user_id);
create index team_members_lead_idx on public.team_members (user_id, team_id) where is_lead;

create table public.projects (
    id          uuid primary key default private.uuid_v7(),
    org_id      uuid not null references public.organizations (id) on delete cascade,
    team_id     uuid,
    name        text not null check (length(btrim(name)) between 1 and 200),
    code        text check (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$'),
    client_name text,
    aliases     text[] not null default '{}',
    billable    boolean not null default false,
    color       text check (color ~ '^#[0-9a-fA-F]{6}$'),
    archived_at timestamptz,
    version     integer not null default 1,
    deleted_at  timestamptz,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    unique (id, org_id),
    foreign key (team_id, org_id) references public.teams (id, org_id) on delete set null (team_id)
);
create unique index projects_org_code_key on public.projects (org_id, lower(code)) where code is not null;
create index projects_org_idx on public.projects (org_id, updated_at);
create index projects_name_trgm_idx on public.projects using gin (name extensions.gin_trgm_ops);

-- The three vocabularies share one shape. org_id null = the default vocabulary.
create table public.work_modes (
    id          uuid primary key default private.uuid_v7(),
    org_id      uuid references public.organizations (id) on delete cascade,
    key         text not null check (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    name        text not null check (length(btrim(name)) between 1 and 200),
    description text not null default '',
    keywords    text[] not null default '{}',
    archived_at timestamptz,
    version     integer not null default 1,
    deleted_at  timestamptz,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    unique nulls not distinct (org_id, key)
);
create table public.activity_types (like public.work_modes including all);
create table public.task_categories (like public.work_modes including all);
alter table public.activity_types
    add foreign key (org_id) references public.organizations (id) on delete cascade;
alter table public.task_categories
    add foreign key (org_id) references public.organizations (id) on delete cascade;
create index work_modes_org_idx on public.work_modes (org_id, updated_at);
create index activity_types_org_idx on public.activity_types (org_id, updated_at);
create index task_categories_org_idx on public.task_categories (org_id, updated_at);

create table public.time_logs (
    id               uuid primary key default private.uuid_v7(),
    org_id           uuid not null references public.organizations (id) on delete cascade,
    user_id          uuid not null references auth.users (id) on delete cascade,
    project_id       uuid,
    team_id          uuid,
    activity_type_id uuid references public.activity_types (id) on delete set null,
    work_mode_id     uuid references public.work_modes (id) on delete set null,
    task_category_id uuid references public.task_categories (id) on delete set null,
    comment          text check (length(comment) <= 10000),
    started_at       timestamptz,
    ended_at         timestamptz,
    duration_minutes integer check (duration_minutes between 0 and 1440),
    source           public.log_source not null default 'manual',
    status           public.log_status not null default 'pending',
    billable         boolean not null default false,
    tags             text[] not null default '{}',
    ai_confidence    real check (ai_confidence between 0 and 1),
    user_locked      text[] not null default '{}',
    version          integer not null default 1,
    deleted_at       timestamptz,
    finalized_at     timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    unique (id, org_id, user_id),
    constraint time_logs_end_after_start check (ended_at is null or started_at is null or ended_at > started_at),
    constraint time_logs_duration_matches check (
        duration_minutes is null or started_at is null or ended_at is null
        or abs(extract(epoch from ended_at - started_at) - duration_minutes * 60) < 60),
    constraint time_logs_finalized_at check (status <> 'finalized' or finalized_at is not null),
    foreign key (project_id, org_id) references public.projects (id, org_id) on delete set null (project_id),
    foreign key (team_id, org_id) references public.teams (id, org_id) on delete set null (team_id)
);
create index time_logs_org_user_started_idx on public.time_logs (org_id, user_id, started_at desc);
create index time_logs_org_updated_idx on public.time_logs (org_id, updated_at);
create index time_logs_org_status_idx on public.time_logs (org_id, status) where deleted_at is null;
create index time_logs_org_project_idx on public.time_logs (org_id, project_id) where project_id is not null;

create table public.ai_extractions (
    id             uuid primary key default private.uuid_v7(),
    org_id         uuid not null,
    user_id        uuid not null,
    time_log_id    uuid not null,
    provider       text not null,
    model          text not null default '',
    prompt_version text not null default '',
    input          jsonb not null default '{}'::jsonb,
    output         jsonb,
    confidences    jsonb not null default '{}'::jsonb,
    status         public.extraction_status not null,
    error          text,
    latency_ms     integer check (latency_ms >= 0),
    tokens         integer check (tokens >= 0),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    foreign key (time_log_id, org_id, user_id) references public.time_logs (id, org_id, user_id)
        on update cascade on delete cascade
);
create index ai_extractions_org_log_idx on public.ai_extractions (org_id, time_log_id, created_at desc);

create table public.time_log_embeddings (
    id           uuid primary key default private.uuid_v7(),
    org_id       uuid not null,
    user_id      uuid not null,
    time_log_id  uuid not null unique,
    model        text not null,
    embedding    extensions.vector(384) not null,
    content_hash text not null,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    foreign key (time_log_id, org_id, user_id) references public.time_logs (id, org_id, user_id)
        on update cascade on delete cascade
);
create index time_log_embeddings_org_user_idx on public.time_log_embeddings (org_id, user_id);
create index time_log_embeddings_hnsw_idx on public.time_log_embeddings
    using hnsw (embedding extensions.vector_cosine_ops);

create table public.attachments (
    id             uuid primary key default private.uuid_v7(),
    org_id         uuid not null references public.organizations (id) on delete cascade,
    user_id        uuid not null references auth.users (id) on delete cascade,
    time_log_id    uuid,
    kind           public.attachment_kind not null,
    bucket         text not null,
    object_path    text not null,
    content_type   text,
    size_bytes     bigint check (size_bytes >= 0),
    sha256         text check (sha256 ~ '^[0-9a-f]{64}$'),
    status         public.attachment_status not null default 'pending_upload',
    extracted_text text,
    version        integer not null default 1,
    deleted_at     timestamptz,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    unique (bucket, object_path),
    foreign key (time_log_id, org_id, user_id) references public.time_logs (id, org_id, user_id)
        on update cascade on delete cascade
);
create index attachments_org_log_idx on public.attachments (org_id, time_log_id);
create index attachments_org_updated_idx on public.attachments (org_id, updated_at);

create table public.user_day_summaries (
    id                    uuid primary key default private.uuid_v7(),
    org_id                uuid not null references public.organizations (id) on delete cascade,
    user_id               uuid not null references auth.users (id) on delete cascade,
    day                   date not null,
    total_minutes         integer not null default 0 check (total_minutes >= 0),
    focus_minutes         integer not null default 0 check (focus_minutes >= 0),
    meeting_minutes       integer not null default 0 check (meeting_minutes >= 0),
    collaboration_minutes integer not null default 0 check (collaboration_minutes >= 0),
    after_hours_minutes   integer not null default 0 check (after_hours_minutes >= 0),
    weekend_minutes       integer not null default 0 check (weekend_minutes >= 0),
    billable_minutes      integer not null default 0 check (billable_minutes >= 0),
    log_count             integer not null default 0 check (log_count >= 0),
    by_project            jsonb not null default '{}'::jsonb,
    by_activity           jsonb not null default '{}'::jsonb,
    by_work_mode          jsonb not null default '{}'::jsonb,
    longest_focus_minutes integer not null default 0,
    deep_work_blocks      integer not null default 0,
    first_start           timestamptz,
    last_end              timestamptz,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    unique (org_id, user_id, day)
);

create table public.risk_scores (
    id            uuid primary key default private.uuid_v7(),
    org_id        uuid not null references public.organizations (id) on delete cascade,
    user_id       uuid not null references auth.users (id) on delete cascade,
    week_start    date not null,
    burnout_score smallint not null check (burnout_score between 0 and 100),
    utilization   real check (utilization >= 0),
    focus_share   real check (focus_share between 0 and 1),
    meeting_share real check (meeting_share between 0 and 1),
    factors       jsonb not null default '[]'::jsonb,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (org_id, user_id, week_start)
);

create table public.integrations (
    id         uuid primary key default private.uuid_v7(),
    org_id     uuid not null references public.organizations (id) on delete cascade,
    provider   public.integration_provider not null,
    name       text not null default '',
    config     jsonb not null default '{}'::jsonb check (jsonb_typeof(config) = 'object'),
    -- AES-GCM ciphertext of the signing secret; never readable through the API.
    secret     bytea,
    enabled    boolean not null default true,
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (id, org_id)
);
create index integrations_org_idx on public.integrations (org_id, provider);

create table public.external_events (
    id             uuid primary key default private.uuid_v7(),
    org_id         uuid not null,
    integration_id uuid not null,
    external_id    text not null,
    event_type     text not null default '',
    payload        jsonb not null,
    status         public.event_status not null default 'received',
    attempts       integer not null default 0,
    error          text,
    processed_at   timestamptz,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    unique (integration_id, external_id),
    foreign key (integration_id, org_id) references public.integrations (id, org_id) on delete cascade
);
create index external_events_org_idx on public.external_events (org_id, status, created_at);

create table public.audit_log (
    id         uuid primary key default private.uuid_v7(),
    org_id     uuid not null references public.organizations (id) on delete cascade,
    actor_id   uuid references auth.users (id) on delete set null,
    action     text not null,
    table_name text,
    row_id     uuid,
    details    jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index audit_log_org_idx on public.audit_log (org_id, created_at desc);

-- updated_at on every table; version on the offline-editable ones.
do $$
declare
  t text;
begin
  foreach t in array array['profiles', 'memberships', 'ai_extractions', 'time_log_embeddings',
      'user_day_summaries', 'risk_scores', 'integrations', 'external_events', 'audit_log'] loop
    execute format('create trigger %I before update on public.%I for each row execute function private.set_updated_at()',
                   t || '_updated_at', t);
  end loop;
  foreach t in array array['organizations', 'departments', 'teams', 'team_members', 'projects',
      'work_modes', 'activity_types', 'task_categories', 'time_logs', 'attachments'] loop
    execute format('create trigger %I before insert or update on public.%I for each row execute function private.set_version()',
                   t || '_version', t);
  end loop;
end
$$;
