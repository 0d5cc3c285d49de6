// Service worker of skedge's demo: cache-first for everything the demo needs, so that after one
// visit it works with the network off.
//
// precache.js (written by scripts/build_www.sh) sets self.SKEDGE_PRECACHE = { version, files }:
// `version` is a digest of every file, so any change to the page, the engine or a model gives a
// new cache name, and the browser installs the new worker (it compares imported scripts too).
// Update flow: the first worker takes control at once (clients.claim); a later one precaches in
// the background and waits until the page posts {type: 'SKIP_WAITING'} (its "Reload" button);
// on activation it deletes the caches of older versions.
/* eslint-env serviceworker */
importScripts('./precache.js');

const { version, files } = self.SKEDGE_PRECACHE;
const PREFIX = 'skedge-demo-';
const CACHE = `${PREFIX}${version}`;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // cache: 'reload' bypasses the HTTP cache, so the new version gets fresh bytes.
      await cache.addAll(files.map((f) => new Request(f, { cache: 'reload' })));
      if (!self.registration.active) await self.skipWaiting(); // first install: no page to disturb
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) {
        if (key.startsWith(PREFIX) && key !== CACHE) await caches.delete(key);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'SKIP_WAITING') self.skipWaiting();
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return hit;
      if (req.mode === 'navigate') {
        const page = await cache.match('./index.html');
        if (page) return page;
      }
      return fetch(req);
    })(),
  );
});
