-- Example sentences for each vocabulary term: the built-in classifier compares a log's
-- embedding with each term's name and description and with these, so a type is recognised
-- from what people write, not only from its keywords. Orgs give their own terms examples too.
alter table public.activity_types add column examples text[] not null default '{}';
alter table public.work_modes add column examples text[] not null default '{}';
alter table public.task_categories add column examples text[] not null default '{}';

alter table public.activity_types add constraint activity_types_examples_bounds
  check (cardinality(examples) <= 50 and length(array_to_string(examples, '')) <= 10000);
alter table public.work_modes add constraint work_modes_examples_bounds
  check (cardinality(examples) <= 50 and length(array_to_string(examples, '')) <= 10000);
alter table public.task_categories add constraint task_categories_examples_bounds
  check (cardinality(examples) <= 50 and length(array_to_string(examples, '')) <= 10000);

update public.activity_types t set examples = v.examples
from (values
  ('development', array[
    'implemented a new endpoint in the backend service',
    'fixed a bug in the signup form',
    'debugging a deadlock in the scheduler',
    'refactored the module into smaller pieces',
    'built the feature behind a flag',
    'wrote code for the importer',
    'made the page load faster with a database index',
    'programming the client library',
    'added a database migration for a new column',
    'investigating and fixing a crash in production code',
    'set up the ci pipeline and build scripts',
    'frontend work on react components',
    'backend work on the orders service',
    'integrated a third party payment provider',
    'wrote sql transformations for the data pipeline',
    'mobile app feature work in swift and kotlin',
    'implementing the settings screen',
    'coding the export feature',
    'getting the integration tests to pass after a change',
    'hotfix deployed to production',
    'feature work on the app']),
  ('design', array[
    'made mockups for a screen',
    'visual design of the interface',
    'wireframed a user flow',
    'drew illustrations',
    'ux work on a form',
    'typography, colour and layout choices',
    'clickable prototype in figma',
    'updating components in the design system',
    'redesigning the navigation']),
  ('code_review', array[
    'reviewed a pull request',
    'read a teammate''s diff and commented',
    'approved a merge request',
    'gave feedback on proposed code changes',
    're-reviewed the updated patch']),
  ('testing', array[
    'ran the regression suite',
    'manual qa of a build',
    'tested on several browsers',
    'added integration tests',
    'verified a bug fix in staging',
    'exploratory testing of a release',
    'wrote unit tests',
    'smoke testing after the deploy',
    'performance testing',
    'went through the test plan']),
  ('research', array[
    'investigated the root cause of a slowdown',
    'evaluated several libraries',
    'benchmarked two approaches',
    'analysed metrics and data',
    'explored an idea in a spike',
    'gathered findings from user studies',
    'compared vendors and tools',
    'read papers and articles to understand a problem',
    'proof of concept to test feasibility']),
  ('planning', array[
    'sprint planning',
    'grooming the backlog',
    'estimating stories',
    'drafting the quarterly roadmap',
    'defining scope and milestones',
    'prioritising what to build next',
    'okr planning for next quarter',
    'capacity planning for the team']),
  ('meeting', array[
    'standup',
    'team sync',
    'one on one with my manager',
    'call with stakeholders',
    'retrospective',
    'all hands',
    'kickoff meeting',
    'weekly status meeting',
    'video call with the client',
    'quick catch-up with a colleague']),
  ('writing', array[
    'wrote documentation',
    'drafted an article',
    'wrote a report',
    'edited a proposal document',
    'wrote the readme',
    'wrote a post for the company blog',
    'wrote the changelog and release notes',
    'technical design document',
    'website copy',
    'user guide and help centre articles']),
  ('support', array[
    'answered support tickets',
    'helped a user who was stuck',
    'handled an on-call page',
    'resolved an outage',
    'troubleshot an issue for a client',
    'helped a coworker get unblocked',
    'customer escalation']),
  ('sales', array[
    'sales call',
    'prospecting new accounts',
    'sent a price proposal',
    'pitched our product',
    'crm updates',
    'contract negotiation with a buyer',
    'renewal conversation with an account']),
  ('recruiting', array[
    'interviewed an applicant',
    'reviewed resumes',
    'posted a job opening',
    'sourced candidates',
    'hiring committee debrief',
    'phone screen with a candidate',
    'wrote a job description',
    'scheduling interviews with candidates',
    'take-home assignment review for a candidate',
    'emails to candidates']),
  ('admin', array[
    'expense report',
    'timesheet',
    'invoices and receipts',
    'paperwork and forms',
    'booked meeting rooms',
    'renewed contracts and licences',
    'it setup and account requests',
    'filing documents',
    'travel booking',
    'purchase orders and vendor paperwork']),
  ('learning', array[
    'took an online course',
    'watched a tech talk',
    'read a chapter of a book',
    'followed a tutorial',
    'studied for an exam',
    'attended a training',
    'learning a new programming language']),
  ('travel', array[
    'flight',
    'train journey',
    'drive to a meeting',
    'commuting',
    'trip to a conference',
    'travelling to the client site'])
) as v(key, examples)
where t.org_id is null and t.key = v.key;

update public.work_modes m set examples = v.examples
from (values
  ('deep_work', array[
    'focused solo work',
    'heads down on a hard problem',
    'uninterrupted coding',
    'concentrated writing',
    'working alone on a task']),
  ('collaboration', array[
    'pair programming',
    'whiteboard session',
    'working together in a group',
    'brainstorm with colleagues',
    'workshop with the team',
    'planning session together']),
  ('meeting', array[
    'scheduled meeting',
    'video call',
    'standup',
    'interview',
    'call with a client']),
  ('communication', array[
    'emails',
    'chat messages',
    'replying to people',
    'inbox',
    'slack messages']),
  ('learning', array[
    'course',
    'tutorial',
    'reading to learn',
    'training']),
  ('break', array[
    'lunch',
    'coffee break',
    'walk'])
) as v(key, examples)
where m.org_id is null and m.key = v.key;
