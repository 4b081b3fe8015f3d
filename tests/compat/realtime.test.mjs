// supabase-js's realtime client against Tally's /realtime/v1: two clients on one channel,
// broadcast between them (realtime-js sends binary frames on vsn 2.0.0), with self and ack.
// Run by the Rust test `compat::supabase_js_realtime` (crates/realtime/tests/integration/compat.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';
import { url, anonKey } from './clients.mjs';

const client = () =>
  createClient(url, anonKey, {
    auth: { autoRefreshToken: false, persistSession: false },
    realtime: { transport: ws },
  });

function subscribed(channel) {
  return new Promise((resolve, reject) => {
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
