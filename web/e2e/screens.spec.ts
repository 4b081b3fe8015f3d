// The dashboard offline, roles as row-level security shapes them, accessibility (axe and the
// keyboard alone) and a screenshot of each main screen.
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { PASSWORD, Proxy, as, expect, goOffline, org, outbox, person, service, signIn, test } from './support';

/** Ready logs of `userId`: [project, days before this week's Monday, minutes, work mode key],
 * from 09:00 on in the tests' time zone (a Monday is a work day, and never after today). */
async function seedLogs(orgId: string, userId: string, logs: [string | null, number, number, string?][]) {
  const modes: { id: string; key: string }[] = await service('/rest/v1/work_modes?org_id=is.null&select=id,key');
  const monday = new Date();
  monday.setHours(0, 0, 0, 0);
  monday.setDate(monday.getDate() - ((monday.getDay() + 6) % 7));
  const rows = logs.map(([project, daysBack, minutes, mode], i) => {
    const start = new Date(monday.getTime() - daysBack * 86_400_000);
    start.setHours(9 + (i % 6), 0, 0, 0);
    return {
      org_id: orgId,
      user_id: userId,
      project_id: project,
      comment: `seeded work ${i + 1}`,
      started_at: start.toISOString(),
      ended_at: new Date(start.getTime() + minutes * 60_000).toISOString(),
      duration_minutes: minutes,
      work_mode_id: modes.find((m) => m.key === mode)?.id ?? null,
      status: 'ready',
    };
  });
  await service('/rest/v1/time_logs', { method: 'POST', body: JSON.stringify(rows), headers: { prefer: 'return=minimal' } });
}

/** Where the screenshots go: TALLY_SCREENSHOTS (docs/screenshots refreshes the README's). */
const shots = resolve(process.env.TALLY_SCREENSHOTS ?? 'test-results/screenshots');

async function axe(page: Page, screen: string) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${screen}: ${v.id} (${v.impact}) ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

test('11. the dashboard draws from the local copy offline; its totals are the entries; the CSV is the table', async ({ page, context, gate }) => {
  const me = await person('dashboard');
  const o = await org([{ id: me.id, role: 'member' }], [{ name: 'Atlas' }, { name: 'Borealis' }]);
  await seedLogs(o.id, me.id, [
    [o.projects.Atlas, 0, 90, 'deep_work'],
    [o.projects.Atlas, 0, 45, 'meeting'],
    [o.projects.Borealis, 7, 30, 'deep_work'],
    [null, 14, 20],
  ]);
  await signIn(page, gate.url, me.email);
  await page.getByRole('link', { name: 'Week' }).click();
  await expect(page.locator('li.entry')).toHaveCount(2);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await goOffline(context, gate);
  await page.getByRole('link', { name: 'Dashboard' }).click();

  await expect(page.getByTestId('dashboard-total')).toHaveText('3h 5m');
  await expect(page.getByTestId('project-total-Atlas')).toHaveText('135');
  await expect(page.getByTestId('project-total-Borealis')).toHaveText('30');
  await expect(page.getByTestId('project-total-No project')).toHaveText('20');
  await expect(page.getByText('Focus 2h · meetings 45m')).toBeVisible();
  for (const name of ['Hours per week by project', 'Focus, meetings and after hours']) {
    const painted = await page.getByRole('img', { name }).evaluate((c: HTMLCanvasElement) => {
      const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
      return n;
    });
    expect(painted, name).toBeGreaterThan(500);
  }

  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const csv = readFileSync((await (await download).path())!, 'utf8').trim().split('\n').map((l) => l.split(','));
  const table = await page.locator('table.totals').evaluate((t: HTMLTableElement) =>
    [...t.rows].map((r) => [...r.cells].map((c) => c.textContent!.trim())),
  );
  expect(csv.length).toBe(table.length);
  for (let i = 1; i < csv.length; i++) {
    expect([JSON.parse(csv[i][0]), ...csv[i].slice(1)]).toEqual(table[i]);
  }
});

test('12. roles: a viewer sees aggregates only, a member cannot open admin, a manager approves a timesheet', async ({ browser, gate }) => {
  const [manager, member, viewer] = [await person('manager'), await person('member'), await person('viewer')];
  const o = await org(
    [
      { id: manager.id, role: 'manager' },
      { id: member.id, role: 'member' },
      { id: viewer.id, role: 'viewer' },
    ],
    [{ name: 'Atlas' }],
  );
  const [team] = await service('/rest/v1/teams', { method: 'POST', body: JSON.stringify({ org_id: o.id, name: 'Platform' }) });
  await service('/rest/v1/team_members', {
    method: 'POST',
    body: JSON.stringify([
      { org_id: o.id, team_id: team.id, user_id: manager.id, is_lead: true },
      { org_id: o.id, team_id: team.id, user_id: member.id, is_lead: false },
    ]),
  });
  await seedLogs(o.id, member.id, [[o.projects.Atlas, 0, 60], [o.projects.Atlas, 7, 120]]);
  await service('/functions/v1/insights-rollup', { method: 'POST', body: JSON.stringify({ org_id: o.id }) });

  const contexts = [];
  const open = async (email: string, via: Proxy) => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await signIn(page, via.url, email);
    return page;
  };
  const gates = [new Proxy(), new Proxy()];
  for (const g of gates) await g.start();
  try {
    // The viewer: no person's entries reach the browser; the org's totals do.
    const v = await open(viewer.email, gate);
    await expect(v.getByRole('link', { name: 'Admin' })).toHaveCount(0);
    await v.getByRole('link', { name: 'Dashboard' }).click();
    await expect(v.getByTestId('org-totals')).toContainText('1h');
    await expect(v.getByTestId('org-totals')).toContainText('2h');
    await expect(v.getByTestId('dashboard-total')).toHaveText('0m');
    await v.getByRole('link', { name: 'Week' }).click();
    await expect(v.locator('li.entry')).toHaveCount(0);

    // The member: no admin, even by its address; submits this week's timesheet.
    const m = await open(member.email, gates[0]);
    await expect(m.getByRole('link', { name: 'Admin' })).toHaveCount(0);
    await m.goto(`${gates[0].url}/admin`);
    await expect(m.getByRole('alert')).toContainText('Only the owners and admins');
    await m.getByRole('link', { name: 'Timesheets' }).click();
    await m.getByRole('button', { name: 'Submit this period' }).click();
    await expect(m.locator('.sheets li')).toContainText('submitted');

    // The manager approves it; the member sees it locked.
    const g = await open(manager.email, gates[1]);
    await g.getByRole('link', { name: 'Timesheets' }).click();
    const pending = g.getByRole('region', { name: 'To review' }).locator('li', { hasText: 'member' });
    await expect(pending).toBeVisible();
    await pending.getByRole('button', { name: 'Approve' }).click();
    await expect(g.getByRole('status').filter({ hasText: 'Approved.' })).toBeVisible();
    const [sheet] = await as(member.email, `/rest/v1/timesheet_periods?org_id=eq.${o.id}&select=status,decided_by`);
    expect(sheet).toEqual({ status: 'approved', decided_by: manager.id });
    await m.reload();
    await expect(m.locator('.sheets li')).toContainText('approved');
    await expect(m.locator('.sheets li .badge')).toHaveText('locked');
  } finally {
    for (const c of contexts) await c.close();
    for (const g of gates) await g.cut();
  }
});

test('14–15. every screen: no serious or critical axe violation, usable by keyboard alone, a screenshot each', async ({ page, gate }) => {
  const owner = await person('olivia');
  const o = await org([{ id: owner.id, role: 'owner' }], [
    { name: 'Apollo Redesign', aliases: ['apollo'] },
    { name: 'Internal Tools' },
    { name: 'Borealis' },
  ]);
  await seedLogs(o.id, owner.id, [
    [o.projects['Apollo Redesign'], 0, 120, 'deep_work'],
    [o.projects['Internal Tools'], 0, 45, 'meeting'],
    [o.projects.Borealis, 3, 90, 'deep_work'],
    [o.projects['Apollo Redesign'], 7, 240, 'deep_work'],
    [o.projects['Internal Tools'], 7, 60, 'meeting'],
    [o.projects.Borealis, 14, 180, 'deep_work'],
    [o.projects['Apollo Redesign'], 21, 150, 'deep_work'],
  ]);
  mkdirSync(shots, { recursive: true });

  // Signed out: the sign-in screen, then signing in with the keyboard alone.
  await page.goto(gate.url);
  await axe(page, 'sign-in');
  await page.screenshot({ path: join(shots, 'sign-in.png') });
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Email')).toBeFocused();
  await page.keyboard.type(owner.email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await expect(page.getByRole('navigation', { name: 'Screens' })).toBeVisible();
  await expect(page.getByTestId('sync-status')).toContainText('Online');

  // Logging and editing by keyboard.
  const tabTo = async (target: ReturnType<Page['getByRole']>) => {
    for (let i = 0; i < 60; i++) {
      if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) return;
      await page.keyboard.press('Tab');
    }
    throw new Error('not reachable by Tab');
  };
  await tabTo(page.getByLabel('What did you work on?'));
  await page.keyboard.type('30 min standup meeting');
  await page.keyboard.press('Enter');
  await expect(page.locator('li.entry', { hasText: 'standup' })).toBeVisible();
  await expect.poll(async () => (await outbox(page)).length, { timeout: 10_000 }).toBe(0);
  await tabTo(page.getByRole('button', { name: 'Edit “30 min standup meeting”' }));
  await page.keyboard.press('Enter');
  await tabTo(page.getByRole('form', { name: 'Edit entry' }).getByLabel('Description'));
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type('30 min standup with the team');
  await page.keyboard.press('Enter');
  await expect(page.locator('li.entry', { hasText: 'standup with the team' })).toBeVisible();
  await expect(page.getByText('Check the last entry').or(page.getByText('Classifying…'))).toBeVisible();

  const screens: [string, string][] = [
    ['Today', 'today'],
    ['Week', 'week'],
    ['Dashboard', 'dashboard'],
    ['Timesheets', 'timesheets'],
    ['Admin', 'admin'],
  ];
  for (const [link, name] of screens) {
    await tabTo(page.getByRole('link', { name: link, exact: true }));
    await page.keyboard.press('Enter');
    await expect(page.getByRole('link', { name: link, exact: true })).toHaveAttribute('aria-current', 'page');
    await page.waitForTimeout(300);
    await axe(page, name);
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  }
  await page.getByRole('link', { name: 'Week' }).click();
  await page.getByRole('button', { name: 'Calendar' }).click();
  await expect(page.getByRole('list', { name: 'Week calendar' })).toBeVisible();
  await axe(page, 'week calendar');
  await page.screenshot({ path: join(shots, 'week-calendar.png'), fullPage: true });
});
