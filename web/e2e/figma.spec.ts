// The Figma plugin's UI in a sandboxed iframe (origin `null`, as Figma runs it), with this page
// playing Figma's main thread (settings, the selected frame's PNG): it signs in and logs an
// entry with the frame through /auth/v1 and /functions/v1 (and the signed upload URL), and
// every service answers a `null` origin's CORS requests.
import { readFileSync } from 'node:fs';
import { TALLY_URL, as, expect, org, person, test, PASSWORD } from './support';

const ANON_KEY = process.env.TALLY_ANON_KEY ?? '';

test('13. the Figma plugin signs in and logs an entry with the selected frame; CORS for null everywhere', async ({ page }) => {
  const me = await person('figma');
  const o = await org([{ id: me.id, role: 'member' }]);
  const ui = readFileSync('figma/ui.html', 'utf8');
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  await page.setContent(`<!doctype html><title>Figma</title>
    <iframe id="plugin" title="Tally plugin" sandbox="allow-scripts allow-forms" style="width:360px;height:480px"></iframe>
    <script>
      const frame = document.getElementById('plugin');
      window.notified = [];
      window.addEventListener('message', async (event) => {
        const message = event.data.pluginMessage;
        const reply = (m) => frame.contentWindow.postMessage({ pluginMessage: m }, '*');
        if (message.type === 'load-settings') reply({ type: 'settings', settings: {} });
        if (message.type === 'notify') window.notified.push(message.text);
        if (message.type === 'export-selection') {
          const canvas = new OffscreenCanvas(320, 200);
          const ctx = canvas.getContext('2d');
          ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, 320, 200);
          ctx.fillStyle = '#1d4ed8'; ctx.fillRect(20, 20, 280, 60);
          const blob = await canvas.convertToBlob({ type: 'image/png' });
          reply({ type: 'selection-png', bytes: new Uint8Array(await blob.arrayBuffer()), name: 'Checkout frame.png' });
        }
      });
    </script>`);
  await page.locator('#plugin').evaluate((f: HTMLIFrameElement, html) => (f.srcdoc = html), ui);
  const plugin = page.frameLocator('#plugin');
  await plugin.getByLabel('Tally URL').fill(TALLY_URL);
  await plugin.getByLabel('Anon key').fill(ANON_KEY);
  await plugin.getByLabel('Email').fill(me.email);
  await plugin.getByLabel('Password').fill(PASSWORD);
  await plugin.getByRole('button', { name: 'Sign in' }).click();
  await expect(plugin.getByRole('status')).toHaveText(`Signed in as ${me.email}.`);
  await plugin.getByLabel('What did you work on?').fill('2h design review of the checkout flow');
  await plugin.getByRole('button', { name: 'Log' }).click();
  await expect(plugin.getByRole('status')).toHaveText('Logged: Tally is classifying it now.');
  expect(await page.evaluate(() => (window as any).notified)).toEqual(['Logged to Tally']);

  const [log] = await as(me.email, `/rest/v1/time_logs?org_id=eq.${o.id}&select=id,comment,source,attachments(object_path,content_type,size_bytes,status)`);
  expect(log.comment).toBe('2h design review of the checkout flow');
  expect(log.attachments).toHaveLength(1);
  expect(log.attachments[0].object_path).toMatch(/\/Checkout frame\.png$/);
  expect(log.attachments[0].content_type).toBe('image/png');
  expect(['uploaded', 'processing', 'processed']).toContain(log.attachments[0].status);
  expect(log.attachments[0].size_bytes).toBeGreaterThan(100);
  // Only the two services (and the signed upload URL): no REST, no realtime.
  const api = requests.filter((p) => /^\/(auth|rest|storage|realtime|functions)\//.test(p));
  expect(api.length).toBeGreaterThanOrEqual(4);
  for (const path of api) expect(path).toMatch(/^\/(auth\/v1\/token|functions\/v1\/(orgs-list|upload-presign|log-create)|storage\/v1\/object\/upload\/sign\/)/);

  // From the null origin, every service answers (preflights included) without a CORS error.
  const statuses = await page.frames()[1].evaluate(
    async ([url, key]) => {
      const headers = { apikey: key, authorization: `Bearer ${key}`, 'x-client-info': 'figma-plugin', 'content-type': 'application/json' };
      const out: Record<string, number | string> = {};
      const tries: [string, string, string?][] = [
        ['GET', '/auth/v1/settings'],
        ['GET', '/rest/v1/projects?select=id'],
        ['POST', '/storage/v1/object/list/images', '{"prefix":""}'],
        ['POST', '/functions/v1/orgs-list', '{}'],
        ['POST', '/realtime/v1/api/broadcast', '{"messages":[]}'],
      ];
      for (const [method, path, body] of tries) {
        try {
          out[path] = (await fetch(url + path, { method, headers, body })).status;
        } catch (e) {
          out[path] = String(e);
        }
      }
      return out;
    },
    [TALLY_URL, ANON_KEY],
  );
  for (const [path, status] of Object.entries(statuses)) expect(typeof status, `${path}: ${status}`).toBe('number');
});

test("13. the plugin's manifest and main thread: network access declared, the selection exported as PNG", async () => {
  const manifest = JSON.parse(readFileSync('figma/manifest.json', 'utf8'));
  expect(manifest).toMatchObject({ main: 'code.js', ui: 'ui.html', api: '1.0.0' });
  expect(manifest.networkAccess.allowedDomains.length).toBeGreaterThan(0);
  expect(manifest.networkAccess.reasoning).toBeTruthy();

  // code.js run against a stand-in of Figma's plugin API (the real one exists only in Figma).
  const posted: any[] = [];
  const stored: Record<string, unknown> = {};
  let onmessage: (m: unknown) => Promise<void> = async () => {};
  const png = new Uint8Array([137, 80, 78, 71]);
  const figma = {
    showUI: () => {},
    notify: (text: string) => posted.push({ notified: text }),
    clientStorage: { getAsync: async (k: string) => stored[k], setAsync: async (k: string, v: unknown) => void (stored[k] = v) },
    currentPage: { selection: [] as any[] },
    ui: { postMessage: (m: unknown) => posted.push(m), set onmessage(f: any) { onmessage = f; } },
  };
  new Function('figma', '__html__', readFileSync('figma/code.js', 'utf8'))(figma, '<html></html>');
  await onmessage({ type: 'export-selection' });
  expect(posted.pop()).toEqual({ type: 'selection-png', error: 'Select a frame first.' });
  figma.currentPage.selection = [{ name: 'Checkout', exportAsync: async (o: any) => (o.format === 'PNG' ? png : null) }];
  await onmessage({ type: 'export-selection' });
  expect(posted.pop()).toEqual({ type: 'selection-png', bytes: png, name: 'Checkout.png' });
  await onmessage({ type: 'save-settings', settings: { url: 'http://127.0.0.1:54321' } });
  await onmessage({ type: 'load-settings' });
  expect(posted.pop()).toEqual({ type: 'settings', settings: { url: 'http://127.0.0.1:54321' } });
});
