// Shared by the supabase-js suites: a client for the Tally under test, signed up and in.
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';

export const url = process.env.TALLY_URL;
export const anonKey = process.env.TALLY_ANON_KEY;
assert.ok(url && anonKey, 'TALLY_URL and TALLY_ANON_KEY must be set');

/** A fresh client signed up (and, with autoconfirm, signed in) as `email`. */
export async function signedIn(email) {
  const supabase = createClient(url, anonKey, {
    auth: { autoRefreshToken: false, persistSession: false },
    realtime: { transport: ws },
  });
  const { error } = await supabase.auth.signUp({ email, password: 'correct horse battery' });
  assert.equal(error, null);
  return supabase;
}
