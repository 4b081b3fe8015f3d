-- More keywords for the default vocabulary: the everyday words of engineering and office work
-- that the first list missed (measured with `tally eval`). Organizations add their own
-- keywords on their own vocabulary rows.
create function pg_temp.add_keywords(vocabulary regclass, term text, words text[]) returns void
  language plpgsql
as $$
begin
  execute format(
    'update %s set keywords = array(select distinct unnest(keywords || $2) order by 1)
     where org_id is null and key = $1', vocabulary)
  using term, words;
end
$$;

select pg_temp.add_keywords('public.activity_types', 'development',
  '{build,built,script,integration,component,migration,migrate,optimize,optimization,performance,perf,dashboard,installer,handler,webhook,endpoint,endpoints,ci,import,animation,widget,sso,query,queries,schema,database,upgrade,hotfix,crash,implementation,"dark mode","login flow"}');
select pg_temp.add_keywords('public.activity_types', 'support',
  '{answer,question,questions,"helping out",triage}');
select pg_temp.add_keywords('public.activity_types', 'recruiting',
  '{"phone screen",screen,debrief,"hiring committee"}');
select pg_temp.add_keywords('public.activity_types', 'testing',
  '{uat,"smoke test",backfill}');
select pg_temp.add_keywords('public.activity_types', 'writing',
  '{guide,editing,edit,newsletter,handbook}');
select pg_temp.add_keywords('public.activity_types', 'meeting',
  '{offsite,"weekly sync","team meeting"}');
select pg_temp.add_keywords('public.activity_types', 'design',
  '{icon,icons,"design system",illustrations}');
select pg_temp.add_keywords('public.activity_types', 'learning',
  '{read,"reading the docs",talk,watching}');
select pg_temp.add_keywords('public.activity_types', 'planning',
  '{"roadmap discussion",grooming}');
select pg_temp.add_keywords('public.work_modes', 'communication',
  '{answer,answering,messages,"answering messages"}');
select pg_temp.add_keywords('public.work_modes', 'collaboration',
  '{offsite,"roadmap discussion"}');
