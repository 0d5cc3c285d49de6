// A static file server on 127.0.0.1 (random port) for the browser tests, with the MIME types
// WebAssembly streaming compilation needs. `routes` maps URL prefixes to directories, or to a
// `(req, res)` handler for responses a page must get from its own origin.
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.skedge': 'application/octet-stream',
  '.svg': 'image/svg+xml',
};

export async function serve(routes) {
  const entries = Object.entries(routes).map(([p, d]) => [p, typeof d === 'function' ? d : resolve(d)]).sort((a, b) => b[0].length - a[0].length);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const route = entries.find(([prefix]) => path.startsWith(prefix));
    if (!route) return void res.writeHead(404).end();
    if (typeof route[1] === 'function') return void route[1](req, res);
    let file = normalize(join(route[1], path.slice(route[0].length)));
    if (!file.startsWith(route[1] + sep) && file !== route[1]) return void res.writeHead(403).end();
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const size = statSync(file).size;
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': size, 'cache-control': 'no-store' });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

/** Headless Chromium through playwright-core, as TOOLCHAIN.md says it runs here. */
export async function launchChromium() {
  const { createRequire } = await import('node:module');
  const require = createRequire(join(process.env.SKEDGE_ROOT, 'package.json'));
  const { chromium } = require('playwright-core');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const userDataDir = mkdtempSync(join(process.env.SKEDGE_TMP ?? tmpdir(), 'chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
