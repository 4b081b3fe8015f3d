// Offline-first: the shell opens with the network cut, writes wait in the outbox and drain by
// themselves, a lost answer is retried without duplicates, rows created offline keep their
// references.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { as, entry, expect, goOffline, goOnline, org, outbox, person, signIn, test } from './support';
import { ZONE } from './zone';

test('1. after a first visit the shell opens offline within 2 s; the build holds no service key', async ({ page, context, gate }) => {
  const me = await person('shell');
  await org([{ id: me.id, role: 'member' }]);
  await signIn(page, gate.url, me.email);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await goOffline(context, gate);
  const started = Date.now();
  await page.reload();
  await expect(page.getByRole('navigation', { name: 'Screens' })).toBeVisible({ timeout: 2000 });
  expect(Date.now() - started).toBeLessThan(2000);
  await expect(page.getByTestId('sync-status')).toContainText('Offline');

  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
  const files = walk('dist');
  expect(files.length).toBeGreaterThan(3);
  for (const file of files) expect(readFileSync(file).includes('service_role'), file).toBe(false);
});

test('1. two hours later and offline, the app still opens on the local copy; back online it refreshes its session and syncs', async ({ page, context, gate }) => {
  const me = await person('later');
  const o = await org([{ id: me.id, role: 'member' }]);
  await signIn(page, gate.url, me.email);
  const line = page.getByLabel('What did you work on?');
  await line.fill('written before the break');
  await line.press('Enter');
  await expect(entry(page, 'written before the break')).toBeVisible();
  await expect.poll(async () => (await outbox(page)).length, { timeout: 10_000 }).toBe(0);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await goOffline(context, gate);
  // The access token (an hour) has expired by the page's clock.
  const written = new Date();
  const later = new Date(written.getTime() + 2 * 3600_000);
  await page.clock.install({ time: later });
  await page.reload();
  // Two hours after 22:00 in the tests' time zone the entry is yesterday's: the week shows it.
  const inZone = (d: Date, o: Intl.DateTimeFormatOptions) => d.toLocaleDateString('en-GB', { timeZone: ZONE, ...o });
  const nextDay = inZone(later, { day: 'numeric' }) !== inZone(written, { day: 'numeric' });
  if (nextDay) {
    await page.getByRole('link', { name: 'Week' }).click();
    if (inZone(later, { weekday: 'long' }) === 'Monday') await page.getByRole('button', { name: 'Previous week' }).click();
  }
  await expect(entry(page, 'written before the break')).toBeVisible();
  if (nextDay) await page.getByRole('link', { name: 'Today' }).click();
  await expect(page.getByTestId('sync-status')).toContainText('Offline');
  await line.fill('written offline after the break');
  await line.press('Enter');
  await expect(entry(page, 'written offline after the break')).toBeVisible();
  await goOnline(context, gate);
  await expect
    .poll(async () => (await as(me.email, `/rest/v1/time_logs?org_id=eq.${o.id}&select=comment&order=comment`)).map((r: any) => r.comment), { timeout: 15_000 })
    .toEqual(['written before the break', 'written offline after the break']);
  await expect.poll(async () => (await outbox(page)).length, { timeout: 15_000 }).toBe(0);
});

test('2. offline: 3 logged, 1 edited, 1 deleted — kept across a reload, pushed by itself when back', async ({ page, context, gate }) => {
  const me = await person('offline');
  const o = await org([{ id: me.id, role: 'member' }], [{ name: 'Apollo Redesign', aliases: ['apollo'] }]);
  await signIn(page, gate.url, me.email);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await goOffline(context, gate);

  const line = page.getByLabel('What did you work on?');
  for (const text of ['45 min code review on Apollo', '30 min standup meeting', '2h debugging the login bug']) {
    await line.fill(text);
    await line.press('Enter');
    await expect(entry(page, text)).toBeVisible();
  }
  // Edit the standup (to 20 minutes), delete the debugging.
  await entry(page, 'standup').getByRole('button', { name: /^Edit/ }).click();
  await page.getByRole('form', { name: 'Edit entry' }).getByLabel('Description').fill('20 min standup meeting');
  await page.getByRole('form', { name: 'Edit entry' }).getByRole('button', { name: 'Save' }).click();
  await entry(page, 'debugging').getByRole('button', { name: /^Delete/ }).click();
  await expect(entry(page, 'debugging')).toHaveCount(0);
  await expect(entry(page, '20 min standup meeting')).toBeVisible();

  await page.reload();
  await expect(page.locator('li.entry')).toHaveCount(2);
  await expect(entry(page, '20 min standup meeting')).toBeVisible();
  await expect(entry(page, '45 min code review on Apollo')).toBeVisible();
  // The outbox holds exactly the two new entries (the edit joined its unsent insert; the
  // deleted entry never left this device, so nothing is sent for it).
  await expect(page.getByTestId('pending')).toHaveText(' · 2 pending');
  const queued = await outbox(page);
  expect(queued.map((m) => [m.op, m.values.comment]).sort()).toEqual([
    ['upsert', '20 min standup meeting'],
    ['upsert', '45 min code review on Apollo'],
  ]);
  const ids = queued.map((m) => m.id).sort();

  await goOnline(context, gate);
  await expect.poll(async () => (await outbox(page)).length, { timeout: 10_000 }).toBe(0);
  await expect(page.getByTestId('pending')).toHaveCount(0);
  // The server's rows are these two (their ids the client's), and they get classified.
  const rows = await as(me.email, `/rest/v1/time_logs?org_id=eq.${o.id}&select=id,comment,status,duration_minutes,project_id&order=id`);
  expect(rows.map((r: any) => r.id).sort()).toEqual(ids);
  await expect
    .poll(async () => (await as(me.email, `/rest/v1/time_logs?org_id=eq.${o.id}&status=in.(pending,processing)&select=id`)).length, { timeout: 20_000 })
    .toBe(0);
  await expect(entry(page, 'code review').getByTestId('duration')).toHaveText('45m');
  await expect(entry(page, 'code review')).toContainText('Apollo Redesign');
  await expect(entry(page, 'standup').getByTestId('duration')).toHaveText('20m');
});

test('3. the first push answer is lost after the server applied it: the retry makes no duplicate', async ({ page, gate }) => {
  const me = await person('retry');
  const o = await org([{ id: me.id, role: 'member' }]);
  await signIn(page, gate.url, me.email);
  let dropped = 0;
  await page.route('**/functions/v1/sync-push', async (route) => {
    if (dropped === 0) {
      dropped += 1;
      // The request reaches the server and is applied; its answer never comes back.
      await route.fetch();
      await route.abort('connectionreset');
      return;
    }
    await route.continue();
  });
  const line = page.getByLabel('What did you work on?');
  await line.fill('1h planning the roadmap');
  await line.press('Enter');
  await expect(entry(page, '1h planning the roadmap')).toBeVisible();
  await expect.poll(async () => (await outbox(page)).length, { timeout: 15_000 }).toBe(0);
  expect(dropped).toBe(1);
  const rows = await as(me.email, `/rest/v1/time_logs?org_id=eq.${o.id}&select=id,comment`);
  expect(rows).toHaveLength(1);
  expect(rows[0].comment).toBe('1h planning the roadmap');
  await expect(page.locator('li.entry')).toHaveCount(1);
});

test('4. a project and an entry on it created offline: after the push the entry points at it', async ({ page, context, gate }) => {
  const me = await person('refs');
  const o = await org([{ id: me.id, role: 'owner' }]);
  await signIn(page, gate.url, me.email);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await goOffline(context, gate);
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.getByLabel('Project name').fill('Zephyr Launch');
  await page.getByRole('button', { name: 'Add project' }).click();
  await expect(page.locator('.projects li', { hasText: 'Zephyr Launch' })).toBeVisible();
  await page.getByRole('link', { name: 'Today' }).click();
  const line = page.getByLabel('What did you work on?');
  await line.fill('launch checklist');
  await line.press('Enter');
  await entry(page, 'launch checklist').getByRole('button', { name: /^Edit/ }).click();
  const form = page.getByRole('form', { name: 'Edit entry' });
  await form.getByLabel('Project').selectOption({ label: 'Zephyr Launch' });
  await form.getByLabel('Minutes').fill('50');
  await form.getByRole('button', { name: 'Save' }).click();
  await expect(form).toHaveCount(0);
  await expect(entry(page, 'launch checklist').locator('.tag')).toHaveText('Zephyr Launch');
  await expect(entry(page, 'launch checklist').getByTestId('duration')).toHaveText('50m');

  await goOnline(context, gate);
  await expect.poll(async () => (await outbox(page)).length, { timeout: 10_000 }).toBe(0);
  const [project] = await as(me.email, `/rest/v1/projects?org_id=eq.${o.id}&select=id,name`);
  expect(project.name).toBe('Zephyr Launch');
  // As the server keeps it once classified too.
  await expect
    .poll(async () => (await as(me.email, `/rest/v1/time_logs?org_id=eq.${o.id}&status=neq.pending&select=project_id,duration_minutes`))[0], { timeout: 15_000 })
    .toEqual({ project_id: project.id, duration_minutes: 50 });
});
