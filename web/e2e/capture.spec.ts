// Voice notes and screenshots as people take them: recorded by Chromium's (fake) microphone as
// WebM/Opus while offline and uploaded when back; pasted as an image. Tally's built-in engines
// (whisper.cpp, tesseract) turn each into a log with its duration and project.
import { as, expect, goOffline, goOnline, org, outbox, person, signIn, test } from './support';

/** Waits until the org's only log is classified from its attachment; returns it. */
async function classified(email: string, orgId: string): Promise<any> {
  let log: any;
  await expect
    .poll(
      async () => {
        [log] = await as(email, `/rest/v1/time_logs?org_id=eq.${orgId}&select=id,source,status,duration_minutes,project_id,attachments(kind,status,extracted_text,content_type)`);
        return log && log.attachments[0]?.status === 'processed' && !['pending', 'processing'].includes(log.status);
      },
      { timeout: 60_000, intervals: [1000] },
    )
    .toBe(true);
  return log;
}

test('9. a voice note recorded offline (WebM/Opus) is uploaded on reconnect and transcribed into a log', async ({ page, context, gate }) => {
  const me = await person('voice');
  const o = await org([{ id: me.id, role: 'member' }], [{ name: 'Apollo Redesign', aliases: ['apollo'] }]);
  await signIn(page, gate.url, me.email);
  expect(await page.evaluate(() => MediaRecorder.isTypeSupported('audio/webm;codecs=opus'))).toBe(true);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await goOffline(context, gate);

  await page.getByRole('button', { name: 'Record a voice note' }).click();
  await expect(page.getByRole('button', { name: 'Stop recording' })).toBeVisible();
  // The spoken line lasts about three seconds (e2e/global-setup.ts).
  await page.waitForTimeout(4000);
  await page.getByRole('button', { name: 'Stop recording' }).click();
  await expect(page.getByText('Voice note logged')).toBeVisible();
  const files = await page.evaluate(async () => {
    const name = (await indexedDB.databases()).map((d) => d.name!).find((n) => n.startsWith('tally-'))!;
    const db: IDBDatabase = await new Promise((ok) => {
      const open = indexedDB.open(name);
      open.onsuccess = () => ok(open.result);
    });
    const all: any[] = await new Promise((ok) => {
      const req = db.transaction('files').objectStore('files').getAll();
      req.onsuccess = () => ok(req.result);
    });
    db.close();
    return all.map((f) => ({ kind: f.kind, type: f.content_type, size: f.blob.size }));
  });
  expect(files).toHaveLength(1);
  expect(files[0].kind).toBe('voice');
  expect(files[0].type).toContain('audio/webm');
  expect(files[0].size).toBeGreaterThan(1000);

  await goOnline(context, gate);
  await expect.poll(async () => (await outbox(page)).length, { timeout: 10_000 }).toBe(0);
  const log = await classified(me.email, o.id);
  expect(log.source).toBe('voice');
  expect(log.attachments[0].content_type).toContain('audio/webm');
  expect(log.attachments[0].extracted_text.toLowerCase()).toContain('apollo');
  expect(log.duration_minutes).toBe(120);
  expect(log.project_id).toBe(o.projects['Apollo Redesign']);
});

test('10. a pasted screenshot is read (OCR) into a log with its duration and project', async ({ page, gate }) => {
  const me = await person('screenshot');
  const o = await org([{ id: me.id, role: 'member' }], [{ name: 'Apollo Redesign', aliases: ['apollo'] }]);
  await signIn(page, gate.url, me.email);
  // A screenshot of a to-do line, pasted into the quick log.
  await page.getByLabel('What did you work on?').evaluate(async (input) => {
    const canvas = document.createElement('canvas');
    canvas.width = 900;
    canvas.height = 160;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, 900, 160);
    ctx.fillStyle = '#000000';
    ctx.font = '44px "DejaVu Sans", sans-serif';
    ctx.fillText('2h code review on Apollo', 30, 95);
    const blob: Blob = await new Promise((ok) => canvas.toBlob((b) => ok(b!), 'image/png'));
    const data = new DataTransfer();
    data.items.add(new File([blob], 'screenshot.png', { type: 'image/png' }));
    input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
  });
  await expect(page.getByText('Screenshot ready: screenshot.png')).toBeVisible();
  await page.getByRole('button', { name: 'Log', exact: true }).click();
  await expect.poll(async () => (await outbox(page)).length, { timeout: 10_000 }).toBe(0);
  const log = await classified(me.email, o.id);
  expect(log.source).toBe('screenshot');
  expect(log.attachments[0].kind).toBe('image');
  expect(log.attachments[0].extracted_text).toContain('Apollo');
  expect(log.duration_minutes).toBe(120);
  expect(log.project_id).toBe(o.projects['Apollo Redesign']);
});
