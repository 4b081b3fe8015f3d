// supabase-js's realtime client against Tally's /realtime/v1 (vsn 2.0.0): broadcast between
// two clients (realtime-js sends binary frames), with self and ack; httpSend; presence between them;
// postgres_changes from /rest/v1 and from the log pipeline, filtered by RLS; a timer started and
// stopped through functions.invoke, heard on its private channel and as changes.
// Run by the Rust test `compat::supabase_js_realtime` (crates/realtime/tests/integration/compat.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';
import { url, anonKey, signedIn } from './clients.mjs';

const client = () =>
  createClient(url, anonKey, {
    auth: { autoRefreshToken: false, persistSession: false },
    realtime: { transport: ws },
  });

function subscribed(channel) {
  return new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error(`${channel.topic}: not subscribed within 10 s`)), 10000);
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err ?? new Error(status));
    });
  });
}

test('broadcast between two supabase-js clients', async () => {
  const a = client();
  const b = client();
  const received = [];
  const own = [];
  const chanA = a.channel('room', { config: { broadcast: { self: true, ack: true } } });
  chanA.on('broadcast', { event: 'cursor' }, (m) => own.push(m.payload));
  const chanB = b.channel('room');
  chanB.on('broadcast', { event: 'cursor' }, (m) => received.push(m.payload));
  await subscribed(chanA);
  await subscribed(chanB);

  const status = await chanA.send({ type: 'broadcast', event: 'cursor', payload: { x: 3, y: 4 } });
  assert.equal(status, 'ok', 'acknowledged');
  for (let i = 0; i < 50 && (received.length === 0 || own.length === 0); i += 1) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(received, [{ x: 3, y: 4 }]);
  assert.deepEqual(own, [{ x: 3, y: 4 }], 'self: true hears itself');

  assert.equal(await chanB.unsubscribe(), 'ok');
  await a.removeAllChannels();
  await b.removeAllChannels();
});

test('httpSend reaches a subscribed client; a private topic nobody may write is refused', async () => {
  const a = client();
  const b = client();
  const received = [];
  const chanB = b.channel('http-room');
  chanB.on('broadcast', { event: 'note' }, (m) => received.push(m.payload));
  await subscribed(chanB);
  const chanA = a.channel('http-room');
  assert.deepEqual(await chanA.httpSend('note', { text: 'over http' }), { success: true });
  for (let i = 0; i < 100 && received.length === 0; i += 1) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(received, [{ text: 'over http' }]);
  const secret = a.channel('secret', { config: { private: true } });
  await assert.rejects(secret.httpSend('note', { text: 'no' }), /do not have permissions/);
  await a.removeAllChannels();
  await b.removeAllChannels();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits (5 s at most) until `check()` holds. */
async function until(check, what, ms = 5000) {
  for (let i = 0; i < ms / 50 && !check(); i += 1) await sleep(50);
  assert.ok(check(), what);
}

test('presence between two supabase-js clients', async () => {
  const a = client();
  const b = client();
  const chanA = a.channel('lobby', { config: { presence: { key: 'ann' } } });
  const chanB = b.channel('lobby', { config: { presence: { key: 'bob' } } });
  const left = [];
  for (const chan of [chanA, chanB]) chan.on('presence', { event: 'sync' }, () => {});
  chanA.on('presence', { event: 'leave' }, ({ key }) => left.push(key));
  await subscribed(chanA);
  await subscribed(chanB);
  assert.equal(await chanA.track({ mood: 'focused' }), 'ok');
  assert.equal(await chanB.track({ mood: 'curious' }), 'ok');
  await until(() => Object.keys(chanA.presenceState()).length === 2, 'ann sees both');
  await until(() => Object.keys(chanB.presenceState()).length === 2, 'bob sees both');
  assert.equal(chanB.presenceState().ann[0].mood, 'focused');
  assert.ok(chanB.presenceState().ann[0].presence_ref, 'phx_ref arrives as presence_ref');
  await b.removeAllChannels();
  await until(() => left.includes('bob'), 'ann sees bob leave');
  assert.deepEqual(Object.keys(chanA.presenceState()), ['ann']);
  await a.removeAllChannels();
});

test('postgres_changes from /rest/v1 and the log pipeline, for whom RLS allows', async () => {
  const owner = await signedIn('rt-owner@example.com');
  const stranger = await signedIn('rt-stranger@example.com');
  const { data: org } = await owner.rpc('create_organization', { name: 'Realtime Co' });
  await stranger.rpc('create_organization', { name: 'Elsewhere' });
  const { data: project } = await owner
    .from('projects').insert({ org_id: org.id, name: 'Apollo', code: 'APL' }).select().single();
  const { data: me } = await owner.auth.getUser();

  const seen = [];
  const ready = [];
  const strangers = [];
  const mine = owner
    .channel('logs')
    .on('postgres_changes', { event: '*', schema: 'public', table: 'time_logs' }, (c) => seen.push(c))
    .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'time_logs', filter: 'status=eq.ready' },
      (c) => ready.push(c));
  const theirs = stranger
    .channel('logs')
    .on('postgres_changes', { event: '*', schema: 'public', table: 'time_logs' }, (c) => strangers.push(c));
  await subscribed(mine);
  await subscribed(theirs);
  try {
    await changesArrive();
  } finally {
    await owner.removeAllChannels();
    await stranger.removeAllChannels();
  }

  async function changesArrive() {
    // Through /rest/v1: insert, update, delete.
    const { data: log, error } = await owner
      .from('time_logs')
      .insert({ org_id: org.id, user_id: me.user.id, comment: 'notes', duration_minutes: 20, status: 'ready' })
      .select().single();
    assert.equal(error, null);
    await until(() => seen.length === 1, 'the insert arrives');
    assert.equal(seen[0].eventType, 'INSERT');
    assert.equal(seen[0].new.id, log.id);
    assert.equal(seen[0].new.duration_minutes, 20);
    assert.equal(seen[0].schema, 'public');
    assert.equal(seen[0].table, 'time_logs');
    assert.ok(seen[0].commit_timestamp);
    await owner.from('time_logs').update({ duration_minutes: 25 }).eq('id', log.id);
    await until(() => seen.length === 2, 'the update arrives');
    assert.equal(seen[1].eventType, 'UPDATE');
    assert.equal(seen[1].new.duration_minutes, 25);
    assert.deepEqual(seen[1].old, { id: log.id });
    await until(() => ready.length === 1, 'the filtered binding hears the ready log\'s update');
    await owner.from('time_logs').delete().eq('id', log.id);
    await until(() => seen.length === 3, 'the delete arrives');
    assert.equal(seen[2].eventType, 'DELETE');
    assert.deepEqual(seen[2].old, { id: log.id });
    assert.deepEqual(seen[2].new, {});

    // Through the pipeline: log-create stores it pending; classification makes it ready.
    const { data: created } = await owner.functions.invoke('log-create', {
      body: { org_id: org.id, comment: 'from 9 to 11:30 code review on apollo' },
    });
    assert.equal(created.log.status, 'pending');
    const classified = () => ready.find((c) => c.new.id === created.log.id);
    // The first classification after a start may wait for the vocabulary's prototypes.
    await until(classified, 'the pipeline\'s update to ready arrives', 60000);
    assert.equal(classified().eventType, 'UPDATE');
    assert.equal(classified().new.status, 'ready');
    assert.equal(classified().new.project_id, project.id);
    assert.equal(classified().new.duration_minutes, 150);
    assert.ok(seen.some((c) => c.eventType === 'INSERT' && c.new.id === created.log.id));

    await sleep(300);
    assert.deepEqual(strangers, [], 'another org hears nothing');
  }
});

test('a timer started and stopped through functions.invoke arrives through realtime', async () => {
  const owner = await signedIn('timer-owner@example.com');
  const stranger = await signedIn('timer-stranger@example.com');
  const { data: org } = await owner.rpc('create_organization', { name: 'Timer Co' });
  const { data: me } = await owner.auth.getUser();
  const topic = `timer:${org.id}:${me.user.id}`;

  const events = [];
  const changes = [];
  const mine = owner
    .channel(topic, { config: { private: true } })
    .on('broadcast', { event: 'timer.started' }, (m) => events.push(m))
    .on('broadcast', { event: 'timer.stopped' }, (m) => events.push(m));
  const feed = owner
    .channel('timer-logs')
    .on('postgres_changes', { event: '*', schema: 'public', table: 'time_logs', filter: 'source=eq.timer' },
      (c) => changes.push(c));
  await subscribed(mine);
  await subscribed(feed);
  // Someone outside the org may not listen to the person's timer, private or not.
  await assert.rejects(subscribed(stranger.channel(topic, { config: { private: true } })),
    /do not have permissions/);
  await stranger.removeAllChannels();
  await assert.rejects(subscribed(stranger.channel(topic)), /do not have permissions/);
  try {
    const { data: started, error } = await owner.functions.invoke('timer-start', {
      body: { org_id: org.id, tags: ['focus'] },
    });
    assert.equal(error, null);
    assert.equal(started.log.source, 'timer');
    assert.equal(started.log.ended_at, null);
    assert.equal(started.stopped, null);
    await until(() => events.length === 1, 'timer.started arrives');
    assert.equal(events[0].event, 'timer.started');
    assert.equal(events[0].payload.log.id, started.log.id);

    const { data: stopped, error: stopError } = await owner.functions.invoke('timer-stop', {
      body: { org_id: org.id },
    });
    assert.equal(stopError, null);
    assert.equal(stopped.log.id, started.log.id);
    assert.ok(stopped.log.ended_at, 'stopped by the server');
    await until(() => events.length === 2, 'timer.stopped arrives');
    assert.equal(events[1].event, 'timer.stopped');
    assert.equal(events[1].payload.log.ended_at, stopped.log.ended_at);
    await until(() => changes.length === 2, 'the insert and the update arrive as changes too');
    assert.deepEqual(changes.map((c) => c.eventType), ['INSERT', 'UPDATE']);
    assert.equal(changes[1].new.ended_at, stopped.log.ended_at);
  } finally {
    await owner.removeAllChannels();
    await stranger.removeAllChannels();
  }
});
