// supabase-js against Tally's /auth/v1. Run by the Rust test `compat::supabase_js_auth`
// (crates/auth/tests/integration/compat.rs), which starts Tally and passes:
//   TALLY_URL, TALLY_ANON_KEY, TALLY_SERVICE_ROLE_KEY, TALLY_DB_URL (to read the mail outbox)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createClient, AuthApiError } from '@supabase/supabase-js';
import pg from 'pg';
import ws from 'ws';

const url = process.env.TALLY_URL;
const anonKey = process.env.TALLY_ANON_KEY;
const serviceKey = process.env.TALLY_SERVICE_ROLE_KEY;
const dbUrl = process.env.TALLY_DB_URL;
assert.ok(url && anonKey && serviceKey && dbUrl, 'TALLY_URL, TALLY_ANON_KEY, TALLY_SERVICE_ROLE_KEY and TALLY_DB_URL must be set');

/** A Map-backed storage, so sessions and PKCE verifiers persist as in a browser. */
function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
}

function client(flowType = 'implicit') {
  return createClient(url, anonKey, {
    auth: { flowType, storage: memoryStorage(), autoRefreshToken: false, persistSession: true, detectSessionInUrl: false },
    realtime: { transport: ws },
  });
}

const password = 'correct-horse-battery';
const unique = (name) => `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;

test('signUp, signInWithPassword, getUser, updateUser, refreshSession, signOut', async () => {
  const supabase = client();
  const email = unique('js');
  const signUp = await supabase.auth.signUp({ email, password, options: { data: { full_name: 'JS Test' } } });
  assert.equal(signUp.error, null);
  assert.ok(signUp.data.session?.access_token, 'autoconfirm returns a session');
  assert.equal(signUp.data.user.email, email);
  assert.equal(signUp.data.user.user_metadata.full_name, 'JS Test');

  const signIn = await supabase.auth.signInWithPassword({ email, password });
  assert.equal(signIn.error, null);
  assert.equal(signIn.data.user.id, signUp.data.user.id);

  const got = await supabase.auth.getUser();
  assert.equal(got.error, null);
  assert.equal(got.data.user.email, email);

  const updated = await supabase.auth.updateUser({ data: { team: 'core' } });
  assert.equal(updated.error, null);
  assert.equal(updated.data.user.user_metadata.team, 'core');

  const before = (await supabase.auth.getSession()).data.session;
  const refreshed = await supabase.auth.refreshSession();
  assert.equal(refreshed.error, null);
  assert.notEqual(refreshed.data.session.refresh_token, before.refresh_token);
  assert.equal(refreshed.data.user.id, signUp.data.user.id);

  const out = await supabase.auth.signOut();
  assert.equal(out.error, null);
  assert.equal((await supabase.auth.getSession()).data.session, null);
  // The old access token is dead on the server too.
  const stale = await supabase.auth.getUser(refreshed.data.session.access_token);
  // Tally answers 403 session_not_found, which auth-js turns into AuthSessionMissingError.
  assert.equal(stale.error?.name, 'AuthSessionMissingError');
});

test('invalid credentials and weak passwords come back as AuthApiError with GoTrue codes', async () => {
  const supabase = client();
  const bad = await supabase.auth.signInWithPassword({ email: unique('nobody'), password: 'wrong-password' });
  assert.ok(bad.error instanceof AuthApiError);
  assert.equal(bad.error.status, 400);
  assert.equal(bad.error.code, 'invalid_credentials');
  assert.equal(bad.error.message, 'Invalid login credentials');

  const weak = await supabase.auth.signUp({ email: unique('weak'), password: 'short' });
  assert.equal(weak.error?.name, 'AuthWeakPasswordError');
  assert.equal(weak.error.code, 'weak_password');
  assert.deepEqual(weak.error.reasons, ['length']);
});

test('PKCE: a recovery link yields a code that exchangeCodeForSession redeems', async () => {
  const admin = createClient(url, serviceKey, { auth: { autoRefreshToken: false, persistSession: false }, realtime: { transport: ws } });
  const email = unique('pkce');
  const created = await admin.auth.admin.createUser({ email, password, email_confirm: true });
  assert.equal(created.error, null);

  const supabase = client('pkce');
  const reset = await supabase.auth.resetPasswordForEmail(email, { redirectTo: 'http://127.0.0.1:3000/reset' });
  assert.equal(reset.error, null);

  // The mail is queued just after the answer (so that its time tells nothing): wait for it.
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  let rows = [];
  for (let i = 0; i < 100 && rows.length === 0; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    ({ rows } = await db.query('select link from auth.mail_outbox where recipient = $1 order by created_at desc limit 1', [email]));
  }
  await db.end();
  assert.equal(rows.length, 1, 'a recovery mail was queued');

  const res = await fetch(rows[0].link, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const location = new URL(res.headers.get('location'));
  const code = location.searchParams.get('code');
  assert.ok(code, `a code in ${location}`);

  const exchanged = await supabase.auth.exchangeCodeForSession(code);
  assert.equal(exchanged.error, null);
  assert.equal(exchanged.data.user.email, email);
  assert.ok(exchanged.data.session.access_token);

  const again = await supabase.auth.exchangeCodeForSession(code);
  assert.ok(again.error, 'a code works once');
});

test('admin API: listUsers and deleteUser', async () => {
  const admin = createClient(url, serviceKey, { auth: { autoRefreshToken: false, persistSession: false }, realtime: { transport: ws } });
  const email = unique('admin');
  const created = await admin.auth.admin.createUser({ email, password, email_confirm: true });
  assert.equal(created.error, null);
  const listed = await admin.auth.admin.listUsers({ page: 1, perPage: 1000 });
  assert.equal(listed.error, null);
  assert.ok(listed.data.users.some((u) => u.email === email));
  const removed = await admin.auth.admin.deleteUser(created.data.user.id);
  assert.equal(removed.error, null);
  const gone = await admin.auth.admin.getUserById(created.data.user.id);
  assert.equal(gone.error?.status, 404);
});

/** The six-digit code of RFC 6238 (SHA-1, 30 s) for the base32 `secret` at `time` (ms). */
function totp(secret, time = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(time / 30000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1e6).padStart(6, '0');
}

test('mfa: enroll, challengeAndVerify to aal2, a replayed code refused, unenroll, admin reset', async () => {
  const supabase = client();
  const email = unique('mfa');
  assert.equal((await supabase.auth.signUp({ email, password })).error, null);

  const enrolled = await supabase.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone' });
  assert.equal(enrolled.error, null);
  assert.ok(enrolled.data.totp.qr_code.startsWith('data:image/svg+xml'), 'auth-js makes the SVG a data URL');
  assert.ok(enrolled.data.totp.uri.startsWith('otpauth://totp/'));
  const factorId = enrolled.data.id;

  let level = await supabase.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([level.data.currentLevel, level.data.nextLevel], ['aal1', 'aal1'], 'an unverified factor asks for nothing yet');

  const wrong = await supabase.auth.mfa.challengeAndVerify({ factorId, code: '000000' === totp(enrolled.data.totp.secret) ? '111111' : '000000' });
  assert.match(wrong.error?.message ?? '', /Invalid TOTP code/);

  const code = totp(enrolled.data.totp.secret);
  const verified = await supabase.auth.mfa.challengeAndVerify({ factorId, code });
  assert.equal(verified.error, null);
  level = await supabase.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([level.data.currentLevel, level.data.nextLevel], ['aal2', 'aal2']);
  assert.equal(level.data.currentAuthenticationMethods[0].method, 'totp');

  const replayed = await supabase.auth.mfa.challengeAndVerify({ factorId, code });
  assert.match(replayed.error?.message ?? '', /already used/);

  const factors = await supabase.auth.mfa.listFactors();
  assert.equal(factors.error, null);
  assert.deepEqual(factors.data.totp.map((f) => f.id), [factorId]);

  // A password sign-in elsewhere is aal1, with aal2 as the next level.
  const other = client();
  assert.equal((await other.auth.signInWithPassword({ email, password })).error, null);
  level = await other.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([level.data.currentLevel, level.data.nextLevel], ['aal1', 'aal2']);
  const refused = await other.auth.mfa.unenroll({ factorId });
  assert.equal(refused.error?.code, 'insufficient_aal');

  // The admin removes the factor of a person who lost their phone.
  const admin = createClient(url, serviceKey, { auth: { autoRefreshToken: false, persistSession: false }, realtime: { transport: ws } });
  const userId = verified.data.user.id;
  const listed = await admin.auth.admin.mfa.listFactors({ userId });
  assert.equal(listed.error, null);
  assert.deepEqual(listed.data.factors.map((f) => f.status), ['verified']);
  const removed = await admin.auth.admin.mfa.deleteFactor({ userId, id: factorId });
  assert.equal(removed.error, null);
  const { data: { session } } = await other.auth.getSession();
  level = await other.auth.mfa.getAuthenticatorAssuranceLevel(session.access_token);
  assert.equal(level.data.nextLevel, 'aal1', 'no factor left to ask for');
});

test('getClaims verifies an ES256 session through the JWKS, without asking /user', async () => {
  const supabase = client();
  const email = unique('claims');
  const signUp = await supabase.auth.signUp({ email, password });
  assert.equal(signUp.error, null);
  const [header] = signUp.data.session.access_token.split('.');
  assert.equal(JSON.parse(Buffer.from(header, 'base64url')).alg, 'ES256');

  const asked = [];
  const fetchOriginal = supabase.auth.fetch;
  supabase.auth.fetch = async (input, init) => {
    asked.push(String(input));
    return fetchOriginal(input, init);
  };
  const { data, error } = await supabase.auth.getClaims();
  assert.equal(error, null);
  assert.equal(data.claims.email, email);
  assert.ok(asked.some((u) => u.endsWith('/auth/v1/.well-known/jwks.json')), `the JWKS was fetched: ${asked}`);
  assert.ok(!asked.some((u) => u.endsWith('/auth/v1/user')), `no /user call: ${asked}`);
});
