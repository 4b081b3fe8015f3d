// supabase-js's storage client against Tally's /storage/v1. Run by the Rust test
// `compat::supabase_js_storage` (crates/storage/tests/integration/compat.rs), which passes
// TALLY_URL and TALLY_ANON_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tus from 'tus-js-client';
import { anonKey, signedIn, url } from './clients.mjs';

// A 1×1 PNG.
const png = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
    '1f15c4890000000d49444154789c63f8cfc0f01f0005000101ff89993d1d0000000049454e44ae426082',
  'hex',
);

/** A signed-in person with an org and a log of their own. */
async function personWithLog(email) {
  const supabase = await signedIn(email);
  const { data: org, error: orgError } = await supabase.rpc('create_organization', { name: email });
  assert.equal(orgError, null);
  const { data: user } = await supabase.auth.getUser();
  const { data: log, error: logError } = await supabase
    .from('time_logs')
    .insert({ org_id: org.id, user_id: user.user.id, comment: 'design review', duration_minutes: 30, status: 'ready' })
    .select()
    .single();
  assert.equal(logError, null);
  return { supabase, org, log };
}

test('upload, download, signed URLs, list, move and remove', async () => {
  const { supabase, org, log } = await personWithLog('storage-a@example.com');
  const images = supabase.storage.from('images');
  const folder = `${org.id}/${log.id}`;

  // A Buffer goes up raw, a Blob as a multipart form.
  const up = await images.upload(`${folder}/shot.png`, png, { contentType: 'image/png' });
  assert.equal(up.error, null);
  assert.equal(up.data.path, `${folder}/shot.png`);
  assert.equal(up.data.fullPath, `images/${folder}/shot.png`);
  assert.ok(up.data.id);
  const blob = await images.upload(`${folder}/blob.png`, new Blob([png], { type: 'image/png' }));
  assert.equal(blob.error, null);
  const again = await images.upload(`${folder}/shot.png`, png, { contentType: 'image/png' });
  assert.ok(again.error, 'the same name without upsert is refused');
  assert.equal(again.error.statusCode, '409');

  const down = await images.download(`${folder}/shot.png`);
  assert.equal(down.error, null);
  assert.deepEqual(Buffer.from(await down.data.arrayBuffer()), png);
  assert.equal((await images.exists(`${folder}/blob.png`)).data, true);
  assert.equal((await images.exists(`${folder}/nothing.png`)).data, false);
  const info = await images.info(`${folder}/shot.png`);
  assert.equal(info.error, null);
  assert.equal(info.data.size, png.length);
  assert.equal(info.data.contentType, 'image/png');

  const signed = await images.createSignedUrl(`${folder}/shot.png`, 60);
  assert.equal(signed.error, null);
  const fetched = await fetch(signed.data.signedUrl);
  assert.equal(fetched.status, 200);
  assert.deepEqual(Buffer.from(await fetched.arrayBuffer()), png);
  const many = await images.createSignedUrls([`${folder}/shot.png`, `${folder}/blob.png`], 60);
  assert.equal(many.error, null);
  assert.equal(many.data.length, 2);
  assert.ok(many.data.every((s) => s.signedUrl && !s.error));

  const uploadUrl = await images.createSignedUploadUrl(`${folder}/later.png`);
  assert.equal(uploadUrl.error, null);
  const viaUrl = await images.uploadToSignedUrl(`${folder}/later.png`, uploadUrl.data.token, png, {
    contentType: 'image/png',
  });
  assert.equal(viaUrl.error, null);
  assert.equal(viaUrl.data.fullPath, `images/${folder}/later.png`);

  const listed = await images.list(folder, { sortBy: { column: 'name', order: 'asc' } });
  assert.equal(listed.error, null);
  assert.deepEqual(listed.data.map((f) => f.name), ['blob.png', 'later.png', 'shot.png']);
  assert.equal(listed.data[2].metadata.size, png.length);

  const moved = await images.move(`${folder}/shot.png`, `${folder}/moved.png`);
  assert.equal(moved.error, null);
  assert.equal((await images.download(`${folder}/shot.png`)).data, null);
  const removed = await images.remove([`${folder}/moved.png`, `${folder}/later.png`]);
  assert.equal(removed.error, null);
  assert.deepEqual(removed.data.map((f) => f.name).sort(), [`${folder}/later.png`, `${folder}/moved.png`]);
  const left = await images.list(folder);
  assert.deepEqual(left.data.map((f) => f.name), ['blob.png']);
});

test('another organization sees nothing, and upload-presign hands out a URL storage-js can use', async () => {
  const a = await personWithLog('storage-owner@example.com');
  const folder = `${a.org.id}/${a.log.id}`;
  const presign = await a.supabase.functions.invoke('upload-presign', {
    body: {
      org_id: a.org.id,
      log_id: a.log.id,
      kind: 'image',
      filename: 'screen.png',
      content_type: 'image/png',
      size_bytes: png.length,
    },
  });
  assert.equal(presign.error, null);
  assert.equal(presign.data.path, `${folder}/screen.png`);
  const sent = await a.supabase.storage
    .from(presign.data.bucket)
    .uploadToSignedUrl(presign.data.path, presign.data.token, png, { contentType: 'image/png' });
  assert.equal(sent.error, null);

  const b = await signedIn('storage-stranger@example.com');
  const theirs = b.storage.from('images');
  const down = await theirs.download(`${folder}/screen.png`);
  assert.equal(down.data, null);
  assert.ok(down.error);
  const sign = await theirs.createSignedUrl(`${folder}/screen.png`, 60);
  assert.equal(sign.data, null);
  assert.equal(sign.error.statusCode, '404');
  const listed = await theirs.list(folder);
  assert.deepEqual(listed.data, []);
  const over = await theirs.upload(`${folder}/screen.png`, png, { contentType: 'image/png', upsert: true });
  assert.equal(over.error.statusCode, '403');
  const removed = await theirs.remove([`${folder}/screen.png`]);
  assert.deepEqual(removed.data, []);
  assert.equal((await a.supabase.storage.from('images').exists(`${folder}/screen.png`)).data, true);
});

test('a long voice note goes up resumably with tus-js-client, in 1 MB pieces, and reads back whole', async () => {
  const { supabase, org, log } = await personWithLog('storage-tus@example.com');
  const { data: session } = await supabase.auth.getSession();
  // A WAV of 2.5 MB: three pieces.
  const samples = 2_500_000;
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + samples, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(8, 34);
  header.write('data', 36);
  header.writeUInt32LE(samples, 40);
  const note = Buffer.concat([header, Buffer.alloc(samples, 128)]);
  const objectName = `${org.id}/${log.id}/note.wav`;

  const progress = [];
  await new Promise((resolve, reject) => {
    const upload = new tus.Upload(note, {
      endpoint: `${url}/storage/v1/upload/resumable`,
      retryDelays: [0, 500],
      headers: { authorization: `Bearer ${session.session.access_token}`, apikey: anonKey, 'x-upsert': 'true' },
      uploadDataDuringCreation: true,
      removeFingerprintOnSuccess: true,
      metadata: { bucketName: 'voices', objectName, contentType: 'audio/wav', cacheControl: '3600' },
      chunkSize: 1024 * 1024,
      onProgress: (sent) => progress.push(sent),
      onError: reject,
      onSuccess: resolve,
    });
    upload.start();
  });
  assert.ok(progress.length >= 3, `progress reported ${progress.length} times`);

  const down = await supabase.storage.from('voices').download(objectName);
  assert.equal(down.error, null);
  assert.ok(Buffer.from(await down.data.arrayBuffer()).equals(note), 'the note reads back whole');
});
