-- Every array and string a client writes has a bound, checked by the database, so it holds
-- through every door (REST, functions, sync, integrations): a log's tags, a project's aliases
-- and client, a vocabulary term's description and keywords, an avatar URL, an integration's
-- name and settings, an org's settings.

-- At most `max_items` texts of at most `max_length` characters each.
create or replace function private.short_texts(texts text[], max_items integer, max_length integer)
returns boolean
  language sql immutable parallel safe set search_path = ''
as $$
  select pg_catalog.cardinality(texts) <= max_items
     and not exists (select from pg_catalog.unnest(texts) t where pg_catalog.length(t) > max_length)
$$;

alter table public.time_logs
  add constraint time_logs_tags_bounded check (private.short_texts(tags, 50, 100));
alter table public.projects
  add constraint projects_aliases_bounded check (private.short_texts(aliases, 50, 200)),
  add constraint projects_client_name_bounded check (length(client_name) <= 200);
alter table public.activity_types
  add constraint activity_types_description_bounded check (length(description) <= 2000),
  add constraint activity_types_keywords_bounded check (private.short_texts(keywords, 100, 100));
alter table public.work_modes
  add constraint work_modes_description_bounded check (length(description) <= 2000),
  add constraint work_modes_keywords_bounded check (private.short_texts(keywords, 100, 100));
alter table public.task_categories
  add constraint task_categories_description_bounded check (length(description) <= 2000),
  add constraint task_categories_keywords_bounded check (private.short_texts(keywords, 100, 100));
alter table public.profiles
  add constraint profiles_avatar_url_bounded check (length(avatar_url) <= 2048);
alter table public.integrations
  add constraint integrations_name_bounded check (length(name) <= 200),
  add constraint integrations_config_bounded check (length(config::text) <= 65536);
alter table public.organizations
  add constraint organizations_settings_bounded check (length(settings::text) <= 65536);

-- What the pipeline writes into rows a person may also write (their own extractions,
-- attachments and embeddings) is bounded too.
alter table public.time_logs
  add constraint time_logs_user_locked_bounded check (private.short_texts(user_locked, 20, 64));
alter table public.ai_extractions
  add constraint ai_extractions_texts_bounded check (
    length(provider) <= 200 and length(model) <= 200 and length(prompt_version) <= 200
    and length(error) <= 10000),
  add constraint ai_extractions_json_bounded check (
    length(input::text) <= 1048576 and length(output::text) <= 1048576
    and length(confidences::text) <= 65536);
alter table public.attachments
  add constraint attachments_texts_bounded check (
    length(bucket) <= 63 and length(object_path) <= 1024 and length(content_type) <= 255
    and length(error) <= 10000 and length(extracted_text) <= 1048576);
alter table public.time_log_embeddings
  add constraint time_log_embeddings_texts_bounded check (
    length(model) <= 200 and length(content_hash) <= 128);
