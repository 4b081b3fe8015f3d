// The rest of what people do: sign up and ask for a link, confirm a classified entry, switch
// organizations, and an owner's admin work (roles, an integration's webhook, an export).
import { PASSWORD, as, entry, expect, org, person, service, signIn, test } from './support';

test('signing up, and asking for a sign-in link', async ({ page, gate }) => {
  await page.goto(gate.url);
  await page.getByRole('button', { name: 'Create an account' }).click();
  const email = `new-${Math.random().toString(36).slice(2, 10)}@e2e.tally.localhost`;
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByText(`You do not belong to an organization yet: ask an owner or admin to add ${email}.`)).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();

  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Email me a link' }).click();
  await expect(page.getByRole('status')).toHaveText(`A sign-in link is on its way to ${email}.`);
  await page.getByLabel('Email').fill('nobody-at-all');
  await page.getByRole('button', { name: 'Single sign-on' }).click();
  await expect(page.getByRole('alert')).toContainText('Enter your work email first');
});

test('the quick log shows each classified field with its confidence and confirms with log-finalize', async ({ page, gate }) => {
  const me = await person('review');
  const o = await org([{ id: me.id, role: 'member' }], [{ name: 'Apollo Redesign', aliases: ['apollo'] }, { name: 'Borealis' }]);
  await signIn(page, gate.url, me.email);
  const line = page.getByLabel('What did you work on?');
  await line.fill('1h45 code review on Apollo');
  await line.press('Enter');
  const review = page.getByRole('region', { name: 'Check the last entry' });
  await expect(review).toBeVisible({ timeout: 20_000 });
  const project = review.locator('[data-field="project_id"]');
  await expect(project.locator('select')).toHaveValue(o.projects['Apollo Redesign']);
  await expect(project).toContainText('% sure');
  await expect(review.locator('[data-field="duration_minutes"] input')).toHaveValue('105');
  // Corrected, then confirmed.
  await project.locator('select').selectOption({ label: 'Borealis' });
  await review.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByText('Confirmed.')).toBeVisible();
  const [log] = await as(me.email, `/rest/v1/time_logs?org_id=eq.${o.id}&select=status,project_id,duration_minutes`);
  expect(log).toEqual({ status: 'finalized', project_id: o.projects.Borealis, duration_minutes: 105 });
});

test('someone in two organizations switches between them; each shows and takes its own entries', async ({ page, gate }) => {
  const me = await person('switcher');
  const first = await org([{ id: me.id, role: 'member' }]);
  const second = await org([{ id: me.id, role: 'member' }]);
  for (const [o, comment] of [[first, 'work for the first org'], [second, 'work for the second org']] as const) {
    await service('/rest/v1/time_logs', {
      method: 'POST',
      body: JSON.stringify({ org_id: o.id, user_id: me.id, comment, duration_minutes: 30, status: 'ready' }),
    });
  }
  await signIn(page, gate.url, me.email);
  await expect(entry(page, 'work for the first org')).toBeVisible();
  await expect(entry(page, 'work for the second org')).toHaveCount(0);
  await page.getByLabel('Organization').selectOption(second.id);
  await expect(entry(page, 'work for the second org')).toBeVisible();
  await expect(entry(page, 'work for the first org')).toHaveCount(0);
  const line = page.getByLabel('What did you work on?');
  await line.fill('logged while in the second org');
  await line.press('Enter');
  await expect(entry(page, 'logged while in the second org')).toBeVisible();
  await expect
    .poll(() => as(me.email, `/rest/v1/time_logs?comment=eq.logged while in the second org&select=org_id`), { timeout: 10_000 })
    .toEqual([{ org_id: second.id }]);
  // The choice is remembered on this device.
  await page.reload();
  await expect(entry(page, 'logged while in the second org')).toBeVisible();
});

test("an owner's admin: a member's role, a Jira integration's webhook and secret, an export to download", async ({ page, gate }) => {
  const [owner, member] = [await person('owner'), await person('alex')];
  const o = await org([{ id: owner.id, role: 'owner' }, { id: member.id, role: 'member' }]);
  await service('/rest/v1/time_logs', {
    method: 'POST',
    body: JSON.stringify({ org_id: o.id, user_id: member.id, comment: 'exported line of work', duration_minutes: 50, status: 'ready' }),
  });
  await signIn(page, gate.url, owner.email);
  await page.getByRole('link', { name: 'Admin' }).click();

  await page.getByLabel('Role of alex').selectOption('manager');
  await expect(page.getByText('alex is now manager.')).toBeVisible();
  const [membership] = await service(`/rest/v1/memberships?org_id=eq.${o.id}&user_id=eq.${member.id}&select=role`);
  expect(membership.role).toBe('manager');

  await page.getByRole('form', { name: 'New integration' }).getByLabel('Provider').selectOption('jira');
  await page.getByRole('button', { name: 'Connect' }).click();
  await expect(page.getByText(/Signing secret \(shown once\): \S{20,}/)).toBeVisible();
  const [integration] = await service(`/rest/v1/integrations?org_id=eq.${o.id}&select=id,provider`);
  expect(integration.provider).toBe('jira');
  await expect(page.getByLabel('Webhook URL')).toHaveValue(`${gate.url}/functions/v1/webhooks-ingest/jira/${integration.id}`);

  await page.getByRole('form', { name: 'New export' }).getByLabel('Format').selectOption('csv');
  await page.getByRole('button', { name: 'Export the last 30 days' }).click();
  await expect(page.getByText(/1 entries from/)).toBeVisible();
  const href = await page.getByRole('link', { name: 'Download' }).getAttribute('href');
  const csv = await (await page.request.get(href!)).text();
  expect(csv).toContain('exported line of work');
});
