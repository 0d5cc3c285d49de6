// Headless Chromium (playwright-core, /usr/bin/chromium) against the installed package: use
// before init, parity on every fixture case inside the page, errors, `maxBytes` and `Model.follow`
// against a cross-origin server (whose gzip the page cannot see) and by a URL relative to the
// page, the plain <script type="module"> example page, and a Vite production build of
// examples/vite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCases, assertParity, fromColumnar } from './lib/cases.mjs';
import { serve, launchChromium } from './lib/serve.mjs';
import { assertVerdicts, casesJson } from './lib/signatures.mjs';
import { verdictsIn } from './lib/verdicts.mjs';

const app = fileURLToPath(new URL('.', import.meta.url));
const cases = loadCases();
const wordCase = cases.find((c) => c.name === 'word_tfidf_lr_binary') ?? cases[0];
const IMPORT_MAP = '<script type="importmap">{"imports":{"skedge":"/node_modules/skedge/browser.js"}}</script>';
const T = 60_000;

let server;
let browser;
let page;
/** What the pages' own origin answers under /same/ (a test sets it): responses that show the page
 * every header, Content-Encoding included. */
let sameOrigin = (req, res) => res.writeHead(404).end();

before(async () => {
  writeFileSync(join(app, 'blank.html'), `<!doctype html><meta charset="utf-8">${IMPORT_MAP}<title>blank</title>`);
  server = await serve({
    '/cases/': process.env.SKEDGE_CASES,
    '/golden/': join(process.env.SKEDGE_ROOT, 'tests', 'golden'),
    '/same/': (req, res) => sameOrigin(req, res),
    '/': app,
  });
  browser = await launchChromium();
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(T);
  page.on('pageerror', (e) => console.error(`# page error: ${e.message}`));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function blank() {
  await page.goto(`${server.url}/blank.html`);
}

test('chromium: use before init is NOT_INITIALIZED; init() then works', async () => {
  await blank();
  const codes = await page.evaluate(async () => {
    const { Model, init } = await import('skedge');
    const codeOf = async (fn) => {
      try { await fn(); return 'no error'; } catch (e) { return e instanceof Error && e.name === 'SkedgeError' ? e.code : String(e); }
    };
    const before = await codeOf(() => Model.fromBytes(new Uint8Array(8)));
    await init();
    await init(); // idempotent
    const after = await codeOf(() => Model.fromBytes(new Uint8Array(8)));
    return { before, after };
  });
  assert.deepEqual(codes, { before: 'NOT_INITIALIZED', after: 'ARTIFACT_CORRUPT' });
});

test('chromium: parity with scikit-learn on every case', async (t) => {
  await blank();
  let n = 0;
  for (const c of cases) {
    const got = await page.evaluate(async ({ name, texts }) => {
      const { Model, init } = await import('skedge');
      await init();
      const bytes = new Uint8Array(await (await fetch(`/cases/${name}.skedge`)).arrayBuffer());
      const model = Model.fromBytes(bytes);
      try {
        const c = model.predictBatch(texts, { columnar: true });
        const types = [c.labelIndex, c.decision, c.proba].map((v) => (v === null ? 'null' : v.constructor.name));
        // Typed arrays cross page.evaluate as plain arrays.
        const columnar = { ...c, labelIndex: [...c.labelIndex], decision: [...c.decision], proba: c.proba && [...c.proba] };
        return { batch: model.predictBatch(texts), columnar, types };
      } finally {
        model.free();
      }
    }, { name: c.name, texts: c.expected.map((e) => e.text) });
    n += assertParity(c, got.batch);
    assertParity(c, fromColumnar(got.columnar, c.expected.length));
    assert.deepEqual(got.types.slice(0, 2), ['Uint32Array', 'Float64Array']);
    assert.ok(['null', 'Float64Array'].includes(got.types[2]));
  }
  t.diagnostic(`${n} predictions of ${cases.length} cases equal scikit-learn's in Chromium`);
});

test('chromium: signed artifacts: WebCrypto prehash in Model.load, wasm in fromBytes', async () => {
  await blank();
  const r = await page.evaluate(async () => {
    const { Model, init } = await import('skedge');
    await init();
    const publicKey = await (await fetch('/golden/test-signing.pub')).text();
    const signed = new Uint8Array(await (await fetch('/golden/tiny.signed.skedge')).arrayBuffer());
    const codeOf = async (fn) => {
      try { await fn(); return 'no error'; } catch (e) { return e.code ?? String(e); }
    };
    const altered = signed.slice();
    altered[40] ^= 1;
    const cached = await caches.open('bench');
    await cached.put('/golden/tiny.signed.skedge', new Response(signed));
    return {
      load: (await Model.load('/golden/tiny.signed.skedge', { publicKey })).predict('good').label,
      fromCache: (await Model.load(await cached.match('/golden/tiny.signed.skedge'), { publicKey })).predict('good').label,
      fromBytes: Model.fromBytes(signed, { publicKey }).predict('good').label,
      altered: await codeOf(() => Model.fromBytes(altered, { publicKey })),
      unsigned: await codeOf(() => Model.load('/golden/tiny.skedge', { publicKey })),
    };
  });
  assert.equal(typeof r.load, 'string');
  assert.deepEqual(r, { load: r.load, fromCache: r.load, fromBytes: r.load, altered: 'SIGNATURE_INVALID', unsigned: 'SIGNATURE_MISSING' });
});

test('chromium: Model.load of bytes verifies with WebCrypto Ed25519, with the wasm\'s verdicts', async () => {
  await blank();
  const got = await page.evaluate(async ({ source, cases }) => {
    const { Model, init } = await import('skedge');
    await init();
    return (0, eval)(`(${source})`)(Model, cases);
  }, { source: verdictsIn.toString(), cases: casesJson() });
  assertVerdicts(assert, got);
});

test('chromium: Model.load streams with progress; error codes', async () => {
  await blank();
  const r = await page.evaluate(async ({ name, integrity }) => {
    const { Model } = await import('skedge');
    const codeOf = async (fn) => {
      try { await fn(); return 'no error'; } catch (e) { return e instanceof Error && e.name === 'SkedgeError' ? e.code : String(e); }
    };
    const progress = [];
    const model = await Model.load(`/cases/${name}.skedge`, { integrity, onProgress: (p) => progress.push(p) });
    const bytes = new Uint8Array(await (await fetch(`/cases/${name}.skedge`)).arrayBuffer());
    const corrupt = bytes.slice();
    corrupt[corrupt.length - 1] ^= 1;
    const out = {
      last: progress.at(-1),
      sha256: model.info().sha256,
      wrongIntegrity: await codeOf(() => Model.load(`/cases/${name}.skedge`, { integrity: 'sha256-' + btoa('z'.repeat(32)) })),
      missing: await codeOf(() => Model.load('/cases/none.skedge')),
      corrupt: await codeOf(() => Model.fromBytes(corrupt)),
      notString: await codeOf(() => model.predict({})),
      tooLarge: await codeOf(() => model.predict('x'.repeat(16 * 1024 * 1024 + 1))),
      tenMegabytes: await codeOf(() => model.predict('nice place. '.repeat(850_000))),
      dispose: typeof model[Symbol.dispose],
    };
    model.free();
    return out;
  }, { name: wordCase.name, integrity: integrityOf(wordCase) });
  assert.equal(r.last.loaded, wordCase.bytes.length);
  assert.equal(r.last.total, wordCase.bytes.length);
  assert.deepEqual(
    { wrongIntegrity: r.wrongIntegrity, missing: r.missing, corrupt: r.corrupt, notString: r.notString, tooLarge: r.tooLarge, tenMegabytes: r.tenMegabytes },
    { wrongIntegrity: 'INTEGRITY_MISMATCH', missing: 'LOAD_FAILED', corrupt: 'ARTIFACT_CORRUPT', notString: 'INVALID_INPUT', tooLarge: 'INPUT_TOO_LARGE', tenMegabytes: 'no error' },
  );
  assert.ok(['function', 'undefined'].includes(r.dispose));
});

test('chromium: maxBytes: a Content-Length refuses unread only same-origin; a cross-origin body (whose gzip the page cannot see) is read and cut as it passes maxBytes', async () => {
  // Another origin (another port), as a link handed to a page: Content-Length is shown to the page,
  // Content-Encoding is not (not exposed), so the length may be the compressed one: of a body that
  // inflates far past it, or of a good one shorter than it (gzip level 0: `stored`). The page's
  // own origin (/same/) shows both headers: its length is the body's.
  const MiB = 1 << 20;
  const bomb = gzipSync(new Uint8Array(64 * MiB));
  const gzipped = gzipSync(wordCase.bytes);
  const stored = gzipSync(wordCase.bytes, { level: 0 });
  assert.ok(gzipped.length < wordCase.bytes.length - 1 && stored.length > wordCase.bytes.length);
  const closed = {};
  const respond = (req, res, headers) => {
    closed[req.url] = new Promise((r) => res.on('close', r));
    const route = req.url.replace(/^\/same\//, '/');
    if (route === '/bomb') {
      // 64 MiB of zeros in about 64 KB, all but its last byte: only a reader that stops as it
      // inflates gets an answer (a whole read waits for the rest of the body).
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': bomb.length });
      res.write(bomb.subarray(0, bomb.length - 1));
    } else if (route === '/declared') {
      // Announces 4 MiB, sends 2 MiB and waits: only a refusal of its length unread, or a reader
      // that stops at maxBytes, gets an answer (and the message says which).
      res.writeHead(200, { ...headers, 'content-length': 4 * MiB });
      res.write(Buffer.alloc(2 * MiB, 7));
    } else if (route === '/model.skedge') {
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': gzipped.length }).end(gzipped);
    } else if (route === '/stored.skedge') {
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': stored.length }).end(stored);
    } else {
      res.writeHead(404, headers).end();
    }
  };
  sameOrigin = (req, res) => respond(req, res, {});
  const other = createServer((req, res) => respond(req, res, { 'access-control-allow-origin': '*' }));
  await new Promise((r) => other.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${other.address().port}`;
  try {
    await blank();
    const r = await page.evaluate(async ({ origin, limit, length }) => {
      const { Model } = await import('skedge');
      const outcome = async (load) => {
        try {
          (await load).free();
          return 'loaded';
        } catch (e) {
          return `${e.code}: ${e.message}`;
        }
      };
      const endless = new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(64 * 1024)) });
      return {
        bomb: await outcome(Model.load(`${origin}/bomb`, { maxBytes: limit })),
        declared: await outcome(Model.load(`${origin}/declared`, { maxBytes: limit })),
        sameDeclared: await outcome(Model.load('/same/declared', { maxBytes: limit })),
        built: await outcome(Model.load(new Response(endless, { headers: { 'content-length': '100' } }), { maxBytes: limit })),
        atLimit: await outcome(Model.load(`${origin}/model.skedge`, { maxBytes: length })),
        overLimit: await outcome(Model.load(`${origin}/model.skedge`, { maxBytes: length - 1 })),
        stored: await outcome(Model.load(`${origin}/stored.skedge`, { maxBytes: length })),
        storedOver: await outcome(Model.load(`${origin}/stored.skedge`, { maxBytes: length - 1 })),
        sameStored: await outcome(Model.load('/same/stored.skedge', { maxBytes: length })),
      };
    }, { origin, limit: MiB, length: wordCase.bytes.length });
    const over = (what, limit) => `INPUT_TOO_LARGE: could not load ${what}: its body is over maxBytes (${limit} bytes)`;
    assert.deepEqual(r, {
      bomb: over(`${origin}/bomb`, MiB),
      // Cross-origin, the length decides nothing: the body is read, and cut at maxBytes.
      declared: over(`${origin}/declared`, MiB),
      // Same-origin, it is the body's: refused unread.
      sameDeclared: `INPUT_TOO_LARGE: could not load /same/declared: its Content-Length, ${4 * MiB} bytes, is over maxBytes (${MiB} bytes)`,
      built: over('a Response without a URL', MiB),
      atLimit: 'loaded',
      overLimit: over(`${origin}/model.skedge`, wordCase.bytes.length - 1),
      // A compressed length over maxBytes of a body within it: loaded, not refused by its length.
      stored: 'loaded',
      storedOver: over(`${origin}/stored.skedge`, wordCase.bytes.length - 1),
      sameStored: 'loaded',
    });
    // The reader was cancelled: the connection of each refused body is closed.
    await closed['/bomb'];
    await closed['/declared'];
    await closed['/same/declared'];
  } finally {
    sameOrigin = (req, res) => res.writeHead(404).end();
    other.closeAllConnections();
    await new Promise((r) => other.close(r));
  }
});

/** An unsigned pointer (generation 1) naming `c`'s artifact as its blob. */
function pointerOf(c) {
  const sha = c.sha256hex;
  return JSON.stringify({
    pointer_version: 1, model: 'm', alias: 'production', version: '1', run_id: '',
    sha256: sha, size: c.bytes.length, integrity: integrityOf(c),
    blob: `blobs/sha256/${sha}.skedge`, manifest: `blobs/sha256/${sha}.manifest.json`,
    format_version: 3, generation: 1, previous_sha256: '', previous_generation: 0,
    published_at: '2026-12-03T00:00:00Z', signature: null,
  });
}

test('chromium: Model.follow of a cross-origin gzip blob: its sha256 decides, not its Content-Length', async () => {
  // The pointer and its blob on another origin (a CDN, a bucket with compression): the page sees the
  // compressed Content-Length, not the Content-Encoding. Each root serves the same pointer, its blob
  // gzip-encoded in one way: `gzip` (shorter than the pointer's size), `stored` (gzip level 0:
  // longer), `bomb` (inflates far past it; all but its last byte, so only a reader that stops as
  // it inflates gets an answer).
  const { bytes, sha256hex: sha } = wordCase;
  const pointer = pointerOf(wordCase);
  const blobs = {
    gzip: gzipSync(bytes),
    stored: gzipSync(bytes, { level: 0 }),
    bomb: gzipSync(new Uint8Array(64 << 20)),
  };
  assert.ok(blobs.gzip.length < bytes.length && blobs.stored.length > bytes.length);
  const closed = {};
  const other = createServer((req, res) => {
    const headers = { 'access-control-allow-origin': '*' };
    const [, root, ...rest] = req.url.split('/');
    const path = rest.join('/');
    const blob = blobs[root];
    if (blob && path === 'pointers/m/production.json') {
      res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(pointer);
    } else if (blob && path === `blobs/sha256/${sha}.skedge`) {
      closed[root] = new Promise((r) => res.on('close', r));
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': blob.length });
      if (root === 'bomb') res.write(blob.subarray(0, blob.length - 1));
      else res.end(blob);
    } else {
      res.writeHead(404, headers).end();
    }
  });
  await new Promise((r) => other.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${other.address().port}`;
  try {
    await blank();
    const r = await page.evaluate(async ({ origin, roots }) => {
      const { Model } = await import('skedge');
      const out = {}; // no init(): Model.follow initialises, as Model.load does
      for (const root of roots) {
        try {
          const handle = await Model.follow(`${origin}/${root}/pointers/m/production.json`, { intervalSeconds: 3600 });
          out[root] = handle.info().sha256;
          handle.dispose();
        } catch (e) {
          out[root] = `${e.code}: ${e.message}`;
        }
      }
      return out;
    }, { origin, roots: Object.keys(blobs) });
    assert.equal(r.gzip, sha);
    assert.equal(r.stored, sha);
    assert.match(r.bomb, new RegExp(`^INTEGRITY_MISMATCH: blob blobs/sha256/${sha}\\.skedge has \\d+ bytes, the pointer says ${bytes.length}$`));
    // The reader was cancelled as the body passed the pointer's size: the connection is closed.
    await closed.bomb;
  } finally {
    other.closeAllConnections();
    await new Promise((r) => other.close(r));
  }
});

test('chromium: Model.follow of a pointer URL relative to the page, as Model.load takes one', async () => {
  // The page's own origin serves the destination under /same/: the pointer is named by a path
  // (`/same/…`), a path relative to the page (`same/…`) and a URL; its blob is resolved from the
  // pointer's resolved URL. A source that is no URL even against the page is INVALID_INPUT.
  const { bytes, sha256hex: sha } = wordCase;
  const pointer = pointerOf(wordCase);
  const requested = [];
  sameOrigin = (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    requested.push(path);
    if (path === '/same/pointers/m/production.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(pointer);
    } else if (path === `/same/blobs/sha256/${sha}.skedge`) {
      res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
    } else {
      res.writeHead(404).end();
    }
  };
  try {
    await blank();
    const r = await page.evaluate(async () => {
      const { Model } = await import('skedge');
      const out = {};
      for (const [name, source] of [
        ['path', '/same/pointers/m/production.json'],
        ['relative', 'same/pointers/m/production.json'],
        ['url', new URL('/same/pointers/m/production.json', location.href)],
        ['not a URL', 'http://[bad/pointers/m/production.json'],
      ]) {
        try {
          const handle = await Model.follow(source, { intervalSeconds: 3600 });
          out[name] = { sha256: handle.info().sha256, model: handle.pointer.model, alias: handle.pointer.alias };
          handle.dispose();
        } catch (e) {
          out[name] = `${e.code}: ${e.message}`;
        }
      }
      return out;
    });
    const followed = { sha256: sha, model: 'm', alias: 'production' };
    assert.deepEqual(r.path, followed);
    assert.deepEqual(r.relative, followed);
    assert.deepEqual(r.url, followed);
    assert.match(r['not a URL'], /^INVALID_INPUT: the source of Model\.follow is not a URL/);
    assert.ok(requested.includes(`/same/blobs/sha256/${sha}.skedge`), requested.join(' '));
  } finally {
    sameOrigin = (req, res) => res.writeHead(404).end();
  }
});

test('chromium: signed and encrypted artifacts, keys as text and bytes; codes', async () => {
  await blank();
  const r = await page.evaluate(async () => {
    const { Model } = await import('skedge');
    const get = async (f) => new Uint8Array(await (await fetch(`/golden/${f}`)).arrayBuffer());
    const publicKey = (await (await fetch('/golden/test-signing.pub')).text()).trim();
    const decryptionKey = (await (await fetch('/golden/test-encryption.key')).text()).trim();
    const keyBytes = Uint8Array.from(decryptionKey.split(':')[1].match(/../g), (h) => parseInt(h, 16));
    const codeOf = async (fn) => {
      try { await fn(); return 'no error'; } catch (e) { return e instanceof Error && e.name === 'SkedgeError' ? e.code : String(e); }
    };
    const sealed = await get('tiny.signed-encrypted.skedge');
    const flipped = sealed.slice();
    flipped[100] ^= 1;
    const m = await Model.load('/golden/tiny.signed-encrypted.skedge', { publicKey, decryptionKey });
    const label = m.predict('good, good').label;
    m.free();
    return {
      label,
      bytesKey: await codeOf(() => Model.fromBytes(sealed, { publicKey, decryptionKey: keyBytes }).free()),
      unsigned: await codeOf(async () => Model.fromBytes(await get('tiny.skedge'), { publicKey })),
      flipped: await codeOf(() => Model.fromBytes(flipped, { publicKey, decryptionKey })),
      wrongKey: await codeOf(() => Model.fromBytes(sealed, { publicKey, decryptionKey: 'cd'.repeat(32) })),
      noKey: await codeOf(() => Model.fromBytes(sealed, { publicKey })),
    };
  });
  assert.deepEqual(r, { label: 'pos', bytesKey: 'no error', unsigned: 'SIGNATURE_MISSING', flipped: 'SIGNATURE_INVALID',
    wrongKey: 'DECRYPTION_FAILED', noKey: 'DECRYPTION_KEY_MISSING' });
});

test('chromium: monitoring times predictions and flushes with fetch and sendBeacon', async () => {
  await blank();
  const hits = [];
  // A collector on the page's own origin: the route answers 201 and records the requests.
  await page.route('**/collect**', async (route) => {
    hits.push({ url: route.request().url(), headers: route.request().headers(), body: route.request().postData() });
    await route.fulfill({ status: 201, body: '{}' });
  });
  try {
    const r = await page.evaluate(async (name) => {
      const { Model } = await import('skedge');
      const model = await Model.load(`/cases/${name}.skedge`);
      const monitor = model.monitor({ seed: 1 });
      model.predictBatch(['good food', 'bad service', 'so so']);
      const snap = monitor.snapshot();
      model.predict('again');
      const first = await monitor.flush('/collect', { token: 'tok' });
      model.predict('and again');
      const beacon = await monitor.flush('/collect', { token: 't+k=', beacon: true });
      model.free();
      return { snap, first, beacon };
    }, wordCase.name);
    assert.equal(r.snap.stats.count, 3);
    assert.ok(r.snap.stats.latency !== null, 'Chromium times predictions (performance.now)');
    assert.deepEqual(r.first, { sent: 2, rejected: 0, pending: 0, dropped: 0, lastError: null });
    assert.equal(r.beacon.sent, 1);
    const deadline = Date.now() + 10_000;
    while (hits.length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.equal(hits.length, 3);
    assert.equal(hits[0].headers.authorization, 'Bearer tok');
    assert.match(hits[2].url, /\/collect\?token=t%2Bk%3D$/, 'sendBeacon puts the token in the query, encoded');
    assert.equal(JSON.parse(hits[2].body).seen, 1);
  } finally {
    await page.unroute('**/collect**');
  }
});

function integrityOf(c) {
  return `sha256-${c.sha256b64}`;
}

test('examples/page: plain <script type="module"> page classifies and highlights', async () => {
  const shots = process.env.SKEDGE_TMP;
  const text = wordCase.expected[3].text;
  await page.goto(`${server.url}/examples/page/index.html?model=/cases/${wordCase.name}.skedge&integrity=${encodeURIComponent(integrityOf(wordCase))}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.fill('#text', text);
  const label = await page.getAttribute('#result', 'data-label');
  assert.equal(label, String(wordCase.expected[3].label));
  await page.fill('#text', 'The food was great and the service friendly, but the wait was terrible.');
  assert.ok((await page.locator('#highlight mark').count()) > 0, 'highlighted features');
  await page.screenshot({ path: join(shots, 'page.png') });
  // A wrong integrity string is reported on the page.
  await page.goto(`${server.url}/examples/page/index.html?model=/cases/${wordCase.name}.skedge&integrity=sha256-${btoa('q'.repeat(32))}`);
  await page.waitForSelector('#status[data-error]');
  assert.equal(await page.getAttribute('#status', 'data-error'), 'INTEGRITY_MISMATCH');
});

// The pinned Vite, and the next major (8, on Rolldown) where scripts/test_js.sh installed it.
const vites = [join(process.env.SKEDGE_ROOT, 'node_modules', 'vite')];
if (process.env.SKEDGE_NEXT) vites.push(join(process.env.SKEDGE_NEXT, 'vite'));
for (const vitePackage of vites) {
  const version = JSON.parse(readFileSync(join(vitePackage, 'package.json'), 'utf8')).version;
  test(`examples/vite: production build with Vite ${version} runs in Chromium`, async (t) => {
    const dir = join(app, 'examples', 'vite');
    const out = `dist-${version}`;
    copyFileSync(wordCase.artifact, join(dir, 'model.skedge'));
    const vite = join(vitePackage, 'bin', 'vite.js');
    const r = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn', '--outDir', out], {
      cwd: dir, encoding: 'utf8', timeout: 180_000,
    });
    assert.equal(r.status, 0, `vite build failed:\n${r.stdout}\n${r.stderr}`);
    const assets = readdirSync(join(dir, out, 'assets'));
    assert.ok(assets.some((f) => f.endsWith('.wasm')), `the .wasm is emitted: ${assets}`);
    assert.ok(assets.some((f) => f.endsWith('.skedge')), `the artifact is emitted: ${assets}`);
    t.diagnostic(`vite ${out}/assets: ${assets.join(', ')}`);
    const dist = await serve({ '/': join(dir, out) });
    try {
      await page.goto(`${dist.url}/`);
      await page.waitForFunction(() => window.skedgeModel !== undefined);
      const sample = wordCase.expected.slice(0, 40);
      const got = await page.evaluate((texts) => texts.map((x) => window.skedgeModel.predict(x)), sample.map((e) => e.text));
      assertParity({ ...wordCase, expected: sample }, got);
      assert.ok(existsSync(join(dir, out, 'index.html')));
    } finally {
      await dist.close();
    }
  });
}
