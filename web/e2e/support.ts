// What the end-to-end tests share: a TCP proxy in front of Tally that a test stops and
// restarts to cut the network (HTTP, websockets and the service worker's fetches together),
// seeding through Tally's own API with the service key (people, orgs, projects), signing in
// through the app, and reading the app's IndexedDB outbox.
import { type Browser, type BrowserContext, type Page, test as base, expect } from '@playwright/test';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { ZONE } from './zone';

export const TALLY_URL = process.env.TALLY_URL ?? 'http://127.0.0.1:54321';
const SERVICE_KEY = process.env.TALLY_SERVICE_KEY ?? '';
const ANON_KEY = process.env.TALLY_ANON_KEY ?? '';
export const PASSWORD = 'e2e-password-123';

/** A proxy from a local port to Tally that can be cut and restored. */
export class Proxy {
  private server: Server | null = null;
  private sockets = new Set<Socket>();
  port = 0;

  /** Listens (on the same port as before, after a `cut`). */
  async start(): Promise<void> {
    const target = new URL(TALLY_URL);
    const server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      this.sockets.add(client).add(upstream);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(this.port, '127.0.0.1', () => ok());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Stops listening and drops every open connection (websockets included). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((ok) => server.close(() => ok()));
  }

  /** Drops the open connections but keeps listening (a socket lost, not the network). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
}

/** Calls Tally with `key` as apikey and `bearer` as the token; the answer's JSON. */
async function call(path: string, init: RequestInit, key: string, bearer: string): Promise<any> {
  const answer = await fetch(`${TALLY_URL}${path}`, {
    ...init,
    headers: {
      apikey: key,
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      prefer: 'return=representation',
      ...(init.headers ?? {}),
    },
  });
  const text = await answer.text();
  if (!answer.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${answer.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Calls Tally with the service key (seeding behind the app's back, as an operator would). */
export const service = (path: string, init: RequestInit = {}) => call(path, init, SERVICE_KEY, SERVICE_KEY);

const tokens = new Map<string, string>();

/** Signs `email` in with the anon key (as a script would) and returns the access token. */
export async function token(email: string): Promise<string> {
  const known = tokens.get(email);
  if (known) return known;
  const body = await call(
    '/auth/v1/token?grant_type=password',
    { method: 'POST', body: JSON.stringify({ email, password: PASSWORD }) },
    ANON_KEY,
    ANON_KEY,
  );
  tokens.set(email, body.access_token as string);
  return body.access_token as string;
}

/** Calls Tally as `email` (the anon key plus their token). */
export const as = async (email: string, path: string, init: RequestInit = {}) =>
  call(path, init, ANON_KEY, await token(email));

/** Two devices of `email` (browser contexts, each through a proxy of its own: `gate` for A),
 * both signed in; `close` ends them. */
export async function twoDevices(browser: Browser, gate: Proxy, email: string) {
  const a = await browser.newContext();
  const b = await browser.newContext();
  const gateB = new Proxy();
  await gateB.start();
  const pageA = await a.newPage();
  const pageB = await b.newPage();
  await signIn(pageA, gate.url, email);
  await signIn(pageB, gateB.url, email);
  const close = async () => {
    await a.close();
    await b.close();
    await gateB.cut();
  };
  return { a, b, pageA, pageB, close };
}

/** A person with a confirmed address and the shared test password. */
export async function person(label: string): Promise<{ id: string; email: string }> {
  const email = `${label}-${Math.random().toString(36).slice(2, 10)}@e2e.tally.localhost`;
  const user = await service('/auth/v1/admin/users', {
    method: 'POST',
    body: JSON.stringify({ email, password: PASSWORD, email_confirm: true, user_metadata: { full_name: label } }),
  });
  return { id: user.id, email };
}

/** An org (in the tests' time zone, `ZONE`) with `people` in their roles, and projects by name. */
export async function org(
  people: { id: string; role: string }[],
  projects: { name: string; aliases?: string[] }[] = [],
): Promise<{ id: string; projects: Record<string, string> }> {
  const slug = `e2e-${Math.random().toString(36).slice(2, 10)}`;
  const [made] = await service('/rest/v1/organizations', {
    method: 'POST',
    body: JSON.stringify({ name: `Org ${slug}`, slug, timezone: ZONE }),
  });
  await service('/rest/v1/memberships', {
    method: 'POST',
    body: JSON.stringify(people.map((p) => ({ org_id: made.id, user_id: p.id, role: p.role }))),
  });
  const ids: Record<string, string> = {};
  for (const p of projects) {
    const [row] = await service('/rest/v1/projects', {
      method: 'POST',
      body: JSON.stringify({ org_id: made.id, name: p.name, aliases: p.aliases ?? [] }),
    });
    ids[p.name] = row.id;
  }
  return { id: made.id, projects: ids };
}

/** Opens the app and signs in through its form; resolves once the shell is up and synced. */
export async function signIn(page: Page, url: string, email: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('navigation', { name: 'Screens' }).or(page.getByRole('alert'))).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);
  await expect(page.getByRole('navigation', { name: 'Screens' })).toBeVisible();
  await expect(page.getByTestId('sync-status')).toContainText('Online');
}

/** The app's outbox (IndexedDB), read as the app stores it. */
export async function outbox(page: Page): Promise<any[]> {
  return page.evaluate(async () => {
    const names = (await indexedDB.databases()).map((d) => d.name!).filter((n) => n.startsWith('tally-'));
    const all: unknown[] = [];
    for (const name of names) {
      const db: IDBDatabase = await new Promise((ok, fail) => {
        const open = indexedDB.open(name);
        open.onsuccess = () => ok(open.result);
        open.onerror = () => fail(open.error);
      });
      const rows: unknown[] = await new Promise((ok, fail) => {
        const get = db.transaction('outbox').objectStore('outbox').getAll();
        get.onsuccess = () => ok(get.result);
        get.onerror = () => fail(get.error);
      });
      all.push(...rows);
      db.close();
    }
    return all;
  });
}

/** A row of the app's local copy (IndexedDB), or undefined. */
export async function localRow(page: Page, table: string, id: string): Promise<any> {
  return page.evaluate(
    async ([table, id]) => {
      const name = (await indexedDB.databases()).map((d) => d.name!).find((n) => n.startsWith('tally-'))!;
      const db: IDBDatabase = await new Promise((ok, fail) => {
        const open = indexedDB.open(name);
        open.onsuccess = () => ok(open.result);
        open.onerror = () => fail(open.error);
      });
      const row = await new Promise((ok, fail) => {
        const get = db.transaction('rows').objectStore('rows').get([table, id]);
        get.onsuccess = () => ok(get.result);
        get.onerror = () => fail(get.error);
      });
      db.close();
      return row;
    },
    [table, id],
  );
}

/** Entries on the page, by their description. */
export const entry = (page: Page, text: string) => page.locator('li.entry', { hasText: text });

/** Cuts the network of `context` (the proxy, and `navigator.onLine`). */
export async function goOffline(context: BrowserContext, proxy: Proxy): Promise<void> {
  await proxy.cut();
  await context.setOffline(true);
}

/** Restores it. */
export async function goOnline(context: BrowserContext, proxy: Proxy): Promise<void> {
  await proxy.start();
  await context.setOffline(false);
}

/** Every test gets a proxy of its own (the app's origin), stopped at the end. */
export const test = base.extend<{ gate: Proxy }>({
  gate: async ({}, use) => {
    const proxy = new Proxy();
    await proxy.start();
    await use(proxy);
    await proxy.cut();
  },
});
export { expect };
