// Service worker of skedge's demo: cache-first for everything the demo needs, so that after one
// visit it works with the network off.
//
// precache.js (written by scripts/build_www.sh) sets self.SKEDGE_PRECACHE = { version, files }:
// `version` is a digest of every file, so any change to the page, the engine or a model gives a
// new cache name, and the browser installs the new worker (it compares imported scripts too).
// Update flow: the first worker takes control at once (clients.claim); a later one precaches in
// the background and waits until the page posts {type: 'SKIP_WAITING'} (its "Reload" button);
// on activation it deletes the caches of older versions. A file that cannot be fetched fails the
// install (the page is told which, {type: 'PRECACHE_FAILED', message}, and tries again later).
// Requests the cache does not hold go to the network; only a navigation to the scope's root
// (the page itself) falls back to the cached page, and only when the network fails.
/* eslint-env serviceworker */
importScripts('./precache.js');

const { version, files } = self.SKEDGE_PRECACHE;
const PREFIX = 'skedge-demo-';
const CACHE = `${PREFIX}${version}`;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        // What cache.addAll does, but a failure names its file. cache: 'reload' bypasses the
        // HTTP cache, so the new version gets fresh bytes.
        const responses = await Promise.all(files.map(async (f) => {
          let res;
          try {
            res = await fetch(new Request(f, { cache: 'reload' }));
          } catch (err) {
            throw new Error(`${f}: ${err.message}`);
          }
          if (!res.ok) throw new Error(`${f}: HTTP ${res.status}`);
          return [f, res];
        }));
        await Promise.all(responses.map(([f, res]) => cache.put(f, res)));
      } catch (err) {
        const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
        for (const page of pages) page.postMessage({ type: 'PRECACHE_FAILED', version, message: err.message });
        throw err; // the install fails: this worker becomes redundant, the active one (if any) stays
      }
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
      try {
        return await fetch(req);
      } catch (err) {
        // Offline: the page for its own address (scope root), never for another path.
        const root = new URL(self.registration.scope).pathname;
        const path = new URL(req.url).pathname;
        if (req.mode === 'navigate' && (path === root || path === `${root}index.html`)) {
          const page = await cache.match('./index.html');
          if (page) return page;
        }
        throw err;
      }
    })(),
  );
});
