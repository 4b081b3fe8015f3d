// The service worker: the app shell (index.html, the hashed assets, the icons) is cached at
// install, so the app opens offline after the first visit. Pages are network-first (a new
// build shows when online) with the cached shell as the fallback; hashed assets are
// cache-first (they never change). The API is never cached here: the app keeps its data in
// IndexedDB and syncs it itself.
/// <reference lib="webworker" />
export {};
declare const self: ServiceWorkerGlobalScope;

/** The build's files, written in by the build (vite.config.ts). */
const SHELL: string[] = JSON.parse('__TALLY_SHELL__');
const VERSION = '__TALLY_VERSION__';
const CACHE = `tally-shell-${VERSION}`;
const API = ['/auth/', '/rest/', '/storage/', '/realtime/', '/functions/', '/metrics', '/health'];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(['/', '/app-config.json', '/manifest.webmanifest', '/icon.svg', ...SHELL]))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('tally-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || API.some((p) => url.pathname.startsWith(p))) {
    return;
  }
  if (request.mode === 'navigate') {
    event.respondWith(
      fetch(request).catch(async () => (await caches.match('/', { cacheName: CACHE })) ?? Response.error()),
    );
    return;
  }
  if (url.pathname === '/app-config.json') {
    event.respondWith(
      fetch(request)
        .then(async (answer) => {
          if (answer.ok) await (await caches.open(CACHE)).put('/app-config.json', answer.clone());
          return answer;
        })
        .catch(async () => (await caches.match('/app-config.json', { cacheName: CACHE })) ?? Response.error()),
    );
    return;
  }
  event.respondWith(caches.match(request, { cacheName: CACHE }).then((hit) => hit ?? fetch(request)));
});
