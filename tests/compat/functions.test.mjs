// supabase-js's functions.invoke against Tally's /functions/v1, with the classified log read
// back through /rest/v1. Run by the Rust test `compat::supabase_js_functions`
// (crates/functions/tests/integration/compat.rs), which passes TALLY_URL and TALLY_ANON_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FunctionsHttpError } from '@supabase/supabase-js';
import { signedIn } from './clients.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('log-create, then the classified log through /rest/v1', async () => {
  const supabase = await signedIn('fn-user@example.com');
  const { data: org, error: orgError } = await supabase.rpc('create_organization', { name: 'Acme' });
  assert.equal(orgError, null);
  const { data: project, error: projectError } = await supabase
    .from('projects')
    .insert({ org_id: org.id, name: 'Apollo', code: 'APL' })
    .select()
    .single();
  assert.equal(projectError, null);

  const { data, error } = await supabase.functions.invoke('log-create', {
    body: { org_id: org.id, comment: 'from 9 to 11:30 code review on apollo' },
  });
  assert.equal(error, null);
  assert.equal(data.log.status, 'pending');
  assert.deepEqual(data.log.user_locked, ['comment']);

  // The first classification after a start may wait for the vocabulary's prototypes to be
  // embedded (a few seconds on a busy machine): poll for up to 60 s.
  let log;
  for (let i = 0; i < 600; i += 1) {
    const read = await supabase
      .from('time_logs')
      .select('status, duration_minutes, project:projects(name), activity:activity_types(key)')
      .eq('id', data.log.id)
      .single();
    assert.equal(read.error, null);
    log = read.data;
    if (log.status !== 'pending') break;
    await sleep(100);
  }
  assert.equal(log.status, 'ready');
  assert.equal(log.duration_minutes, 150);
  assert.deepEqual(log.project, { name: project.name });
  assert.deepEqual(log.activity, { key: 'code_review' });

  // The seed's dotted name works too; ai-classify answers with the extraction.
  const classified = await supabase.functions.invoke('ai.classify', { body: { log_id: data.log.id } });
  assert.equal(classified.error, null);
  assert.equal(classified.data.extraction.provider, 'builtin');
});

test('errors arrive as FunctionsHttpError with {error, message}', async () => {
  const supabase = await signedIn('fn-errors@example.com');
  const { data, error } = await supabase.functions.invoke('log-create', { body: { comment: 'no org' } });
  assert.equal(data, null);
  assert.ok(error instanceof FunctionsHttpError);
  assert.equal(error.context.status, 400);
  const body = await error.context.json();
  assert.equal(body.error, 'invalid_request');
  assert.match(body.message, /org_id/);

  const missing = await supabase.functions.invoke('no-such-function', { body: {} });
  assert.ok(missing.error instanceof FunctionsHttpError);
  assert.equal(missing.error.context.status, 404);
});
