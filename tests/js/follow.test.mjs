// `Model.follow` (issue #14 item 3) through the installed package in Node: a local HTTP server on
// 127.0.0.1 (ETag / If-None-Match) serves a publish destination (FORMAT.md §5) whose blobs and
// pointers this test writes, the pointers signed by the CLI's `sign-pointer` (the one encoder).
// v1 served -> the pointer moves to v2 -> the handle serves v2; a tampered blob, an unsigned or
// re-signed pointer, a lower generation and an unreadable format are refused with codes while v2
// keeps serving; a gzip-encoded blob is taken, and cut as it inflates past the pointer's size; a
// blob over `maxBytes` is refused before it is requested; dispose() stops polling. In workerd
// (miniflare, an R2 bucket binding) the same from R2. Updates and refusals are awaited through
// onUpdate / onError: no assertion on time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Experiment, Model } from 'skedge';

const ROOT = process.env.SKEDGE_ROOT;
const CLI = join(ROOT, 'target', 'release', 'skedge');
const golden = join(ROOT, 'tests', 'golden');
const signKey = join(golden, 'test-signing.key');
const publicKey = readFileSync(join(golden, 'test-signing.pub'), 'utf8');
const dir = mkdtempSync(join(process.env.SKEDGE_TMP ?? tmpdir(), 'follow-'));
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

// v1: the signed tiny golden; v2: a signed pack of a parity fixture (other classes, other labels).
const v1 = new Uint8Array(readFileSync(join(golden, 'tiny.signed.skedge')));
execFileSync(CLI, ['pack', join(ROOT, 'tests/fixtures/cases/ovr_lr_binary.interchange.json'),
  '-o', join(dir, 'v2.skedge'), '--sign-key', signKey], { stdio: 'ignore' });
const v2 = new Uint8Array(readFileSync(join(dir, 'v2.skedge')));
execFileSync(CLI, ['keygen', join(dir, 'other')], { stdio: 'ignore' });

function putBlob(bytes, sha = sha256(bytes)) {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'blobs', 'sha256', `${sha}.skedge`), bytes);
  return sha;
}

let last = { sha: '', generation: 0 };
/** Writes `at` (pointers/m/production.json) naming `bytes`, signed with `key` (null: unsigned), for
 * `model` and `alias` (m, production); replaced at once (a rename), so no read sees half of it. */
function publish(bytes, { generation, key = signKey, sha = sha256(bytes), format = 3, model = 'm', alias = 'production',
  at = 'pointers/m/production.json' } = {}) {
  const p = {
    pointer_version: 1, model, alias, version: String(generation), run_id: '',
    sha256: sha, size: bytes.length,
    integrity: `sha256-${Buffer.from(sha, 'hex').toString('base64')}`,
    blob: `blobs/sha256/${sha}.skedge`, manifest: `blobs/sha256/${sha}.manifest.json`,
    format_version: format, generation,
    previous_sha256: generation > 1 ? last.sha || 'cd'.repeat(32) : '', previous_generation: generation - 1,
    published_at: '2026-12-03T00:00:00Z', signature: null,
  };
  const file = join(dir, at);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(p, null, 2));
  if (key) writeFileSync(`${file}.tmp`, execFileSync(CLI, ['sign-pointer', `${file}.tmp`, '--sign-key', key]));
  renameSync(`${file}.tmp`, file);
  last = { sha, generation };
}

let server;
let url;
let origin;
let pointerReads = 0;
let blobReads = 0;
/** When set, answers the blob requests in place of the destination (a proxy in the way). */
let blobFault = null;
before(async () => {
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path.includes('..')) return void res.writeHead(403).end();
    if (path.startsWith('/pointers/')) pointerReads++;
    if (path.startsWith('/blobs/')) blobReads++;
    if (path.startsWith('/blobs/') && blobFault) return void blobFault(res);
    let body;
    try {
      body = readFileSync(join(dir, path));
    } catch {
      return void res.writeHead(404).end();
    }
    const etag = `"${sha256(body)}"`;
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { etag }).end();
    res.writeHead(200, { etag, 'content-length': body.length }).end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${server.address().port}`;
  url = `${origin}/pointers/m/production.json`;
});
after(() => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }));

/** A queue of callback arguments, awaited one at a time. */
function events() {
  const queue = [];
  const waiting = [];
  return {
    push: (...args) => (waiting.length ? waiting.shift()(args) : queue.push(args)),
    next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r))),
  };
}

test('follows the pointer from v1 to v2 and refuses bad pointers and blobs while serving', async () => {
  const text = 'great product, works perfectly';
  const want1 = Model.fromBytes(v1).predict(text);
  const want2 = Model.fromBytes(v2).predict(text);
  assert.notDeepEqual(want1, want2, 'the two versions must be told apart by their predictions');

  putBlob(v1);
  putBlob(v2);
  publish(v1, { generation: 1 });
  const updates = events();
  const errors = events();
  const handle = await Model.follow(url, {
    publicKey, intervalSeconds: 0.05, onUpdate: updates.push, onError: errors.push,
  });
  assert.deepEqual(handle.predict(text), want1);
  assert.equal(handle.info().sha256, sha256(v1));
  assert.equal(handle.pointer.generation, 1);

  publish(v2, { generation: 2 });
  const [info, pointer] = await updates.next();
  assert.equal(info.sha256, sha256(v2));
  assert.equal(pointer.generation, 2);
  assert.deepEqual(handle.predict(text), want2);
  assert.deepEqual(handle.predictBatch([text, text]), [want2, want2]);
  assert.equal(handle.explain(text, 1).label, want2.label);

  // A refused blob is fetched again at each poll (the ETag is kept only once a blob is taken), so
  // its refusal may come more than once before the next pointer is read.
  let previous = null;
  const refused = async (code) => {
    let [e] = await errors.next();
    while (e.code === previous && e.code !== code) [e] = await errors.next();
    previous = code;
    assert.equal(e.name, 'SkedgeError');
    assert.equal(e.code, code, e.message);
    assert.deepEqual(handle.predict(text), want2, 'v2 keeps serving');
    assert.equal(handle.pointer.generation, 2);
  };
  // A blob whose bytes are not the ones the (valid, signed) pointer names.
  const tampered = v1.slice();
  tampered[tampered.length - 1] ^= 1;
  const fake = 'ee'.repeat(32);
  putBlob(tampered, fake);
  publish(tampered, { generation: 3, sha: fake });
  await refused('INTEGRITY_MISMATCH');
  publish(v1, { generation: 4, key: null });
  await refused('SIGNATURE_MISSING');
  publish(v1, { generation: 5, key: join(dir, 'other.key') });
  await refused('SIGNATURE_INVALID');
  publish(v1, { generation: 1 });
  await refused('POINTER_STALE');
  // A replay of v1's own signed pointer under generation 2 names another blob than the one served.
  publish(v1, { generation: 2 });
  await refused('POINTER_STALE');
  // A pointer to an artifact format this build cannot read: refused before its blob is fetched.
  const blobsBefore = blobReads;
  publish(v1, { generation: 6, key: null, format: 9 });
  await refused('ARTIFACT_VERSION_UNSUPPORTED');
  assert.equal(blobReads, blobsBefore, 'no blob read for an unreadable format');
  writeFileSync(join(dir, 'pointers', 'm', 'production.json'), '{"pointer_version": 1}');
  await refused('POINTER_INVALID');
  // A pointer far over its size bound is refused while it is read, never read whole.
  writeFileSync(join(dir, 'pointers', 'm', 'production.json'), `{"pad": "${'x'.repeat(200 * 1024)}"}`);
  await refused('POINTER_INVALID');

  // And a good pointer after all of that is followed again.
  publish(v1, { generation: 6 });
  const [back] = await updates.next();
  assert.equal(back.sha256, sha256(v1));
  assert.deepEqual(handle.predict(text), want1);

  // dispose() stops polling: reads counted across a refresh of the file that would be an update.
  handle.dispose();
  const reads = pointerReads;
  publish(v2, { generation: 7 });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(pointerReads, reads, 'no read after dispose()');
  assert.throws(() => handle.predict(text), { code: 'MODEL_FREED' });
  assert.equal(await handle.refresh(), false);
});

test('a refused first version rejects Model.follow; options are checked', async () => {
  putBlob(v1);
  publish(v1, { generation: 1, key: null });
  await assert.rejects(Model.follow(url, { publicKey }), { code: 'SIGNATURE_MISSING' });
  publish(v1, { generation: 1 });
  const handle = await Model.follow(url, { publicKey, intervalSeconds: 3600 });
  assert.equal(await handle.refresh(), false, 'unchanged (304)');
  handle.dispose();
  await assert.rejects(Model.follow(url, { publicKey, interval: 1 }), { code: 'INVALID_INPUT' });
  await assert.rejects(Model.follow(url, { intervalSeconds: 0 }), { code: 'INVALID_INPUT' });
  await assert.rejects(Model.follow(42), { code: 'INVALID_INPUT' });
  await assert.rejects(Model.follow(url.replace('production', 'missing')), { code: 'LOAD_FAILED' });
});

test('onError always gets an Error: what onUpdate throws, a non-Error as its cause; a disposed handle says so', { timeout: 20_000 }, async () => {
  putBlob(v1);
  putBlob(v2);
  publish(v1, { generation: 1 });
  const own = new TypeError('an Error of onUpdate');
  const throws = ['oops', undefined, own];
  const errors = [];
  const handle = await Model.follow(url, {
    publicKey,
    intervalSeconds: 3600,
    onUpdate: () => {
      throw throws.shift();
    },
    onError: (e) => errors.push(e),
  });
  // What onUpdate throws is reported before refresh() resolves, which it does not reject.
  const versions = [v2, v1, v2];
  for (let i = 0; i < versions.length; i++) {
    publish(versions[i], { generation: i + 2 });
    assert.equal(await handle.refresh(), true);
    assert.equal(errors.length, i + 1);
  }
  const [string, none, error] = errors;
  assert.ok(string instanceof Error && none instanceof Error);
  assert.equal(string.message, 'onUpdate threw "oops" (not an Error)');
  assert.equal(string.cause, 'oops');
  assert.equal(none.message, 'onUpdate threw undefined (not an Error)');
  assert.ok('cause' in none && none.cause === undefined);
  assert.equal(error, own, 'an Error is passed as it is');
  assert.equal(handle.info().sha256, sha256(v2), 'the update stands');

  // Input arrays are only read: frozen ones (TypeScript: readonly) do, with an options variable.
  const texts = Object.freeze(['great product', 'awful']);
  const options = Object.freeze({ columnar: true });
  assert.deepEqual(handle.predictBatch(texts, options).labelIndex, Model.fromBytes(v2).predictBatch(texts, options).labelIndex);

  const exp = new Experiment(handle, handle);
  handle.dispose();
  handle.dispose();
  for (const call of [() => handle.predict('x'), () => handle.predictBatch(texts), () => handle.info(), () => exp.predict('x')]) {
    assert.throws(call, { code: 'MODEL_FREED', message: /^this Model\.follow handle was disposed/ });
  }
});

test('intervalSeconds and timeoutSeconds are numbers of seconds in (0, 2147483]', async () => {
  putBlob(v1);
  publish(v1, { generation: 1 });
  const reads = pointerReads;
  for (const name of ['intervalSeconds', 'timeoutSeconds']) {
    for (const v of [0, -1, 2147483.5, 2147484, NaN, Infinity, '60', 60n, null]) {
      const e = await Model.follow(url, { [name]: v }).catch((e) => e);
      assert.equal(e.code, 'INVALID_INPUT', `${name}: ${String(v)}`);
      assert.ok(e.message.startsWith(`options.${name} must be a number of seconds in (0, 2147483], got `), e.message);
    }
  }
  assert.equal(pointerReads, reads, 'nothing was read');
  (await Model.follow(url, { intervalSeconds: 2147483, timeoutSeconds: 2147483 })).dispose();
});

test('a timeoutSeconds with a fraction of a millisecond reads (AbortSignal.timeout wants whole milliseconds)', async () => {
  putBlob(v1);
  publish(v1, { generation: 1 });
  for (const timeoutSeconds of [1.0005, 0.0015 + 5, 10.1234]) {
    const handle = await Model.follow(url, { publicKey, intervalSeconds: 3600, timeoutSeconds });
    assert.equal(handle.pointer.generation, 1, String(timeoutSeconds));
    assert.equal(await handle.refresh(), false, `${timeoutSeconds}: a later read too`);
    handle.dispose();
  }
});

test('a first read answered "unchanged" (a 304 never asked for, an R2 object without a body) rejects: no handle serves nothing', async () => {
  const proxy = createServer((req, res) => res.writeHead(304, { etag: '"x"' }).end());
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  try {
    const e = await Model.follow(`http://127.0.0.1:${proxy.address().port}/pointers/m/production.json`).catch((e) => e);
    assert.equal(e.code, 'LOAD_FAILED', e.message);
    assert.match(e.message, /gave no pointer/);
  } finally {
    proxy.close();
  }
  const bucket = { get: async () => ({ etag: 'x', size: 10 }) }; // what a failed precondition returns
  const e = await Model.follow({ bucket, key: 'pointers/m/production.json' }).catch((e) => e);
  assert.equal(e.code, 'LOAD_FAILED', e.message);
});

/** An R2 binding over `dir` (`fleet/` its prefix), as Workers' `get` answers: `null` when absent, an
 * object without a body when `onlyIf.etagDoesNotMatch` matches. `stall(key, what)` ('get' or
 * 'body') makes that step never answer, as a binding that stopped answering. */
function bucketOver({ stall = () => false, blob = null } = {}) {
  const never = () => new Promise(() => {});
  return {
    async get(key, options) {
      if (stall(key, 'get')) return never();
      let body;
      try {
        body = readFileSync(join(dir, key.replace(/^fleet\//, '')));
      } catch {
        return null;
      }
      if (blob && key.includes('/blobs/')) body = blob(body);
      const etag = sha256(body);
      if (options?.onlyIf?.etagDoesNotMatch === etag) return { etag, size: body.length };
      return {
        etag,
        size: body.length,
        text: async () => (stall(key, 'body') ? never() : body.toString('utf8')),
        arrayBuffer: async () => (stall(key, 'body') ? never() : new Uint8Array(body).buffer),
      };
    },
  };
}

test('a pointer of another model or alias is refused while serving, and the next good one is followed', { timeout: 20_000 }, async () => {
  // A source whose path names no model: the first pointer pins them.
  const at = 'feeds/m/current.json';
  const feed = `${origin}/${at}`;
  const text = 'great product, works perfectly';
  const want1 = Model.fromBytes(v1).predict(text);
  putBlob(v1);
  putBlob(v2);
  publish(v1, { generation: 1, at });
  const updates = events();
  const errors = events();
  const handle = await Model.follow(feed, { publicKey, intervalSeconds: 0.05, onUpdate: updates.push, onError: errors.push });
  assert.deepEqual([handle.pointer.model, handle.pointer.alias], ['m', 'production']);
  const refused = async (model, alias) => {
    const [e] = await errors.next();
    assert.equal(e.code, 'POINTER_INVALID', e.message);
    assert.match(e.message, new RegExp(`model "${model}" alias "${alias}", not of the followed model "m" alias "production"`));
    assert.deepEqual(handle.predict(text), want1, 'v1 keeps serving');
    assert.equal(handle.pointer.generation, 1);
  };
  // Another model's staging pointer signed by the same key, a higher generation: refused.
  publish(v2, { generation: 7, model: 'other-model', alias: 'staging', at });
  await refused('other-model', 'staging');
  // The challenger's pointer of the same model copied onto the followed key.
  publish(v2, { generation: 9, alias: 'challenger', at });
  await refused('m', 'challenger');
  // And the next poll follows the right one.
  publish(v2, { generation: 2, at });
  const [info, pointer] = await updates.next();
  assert.equal(info.sha256, sha256(v2));
  assert.deepEqual([pointer.model, pointer.alias, pointer.generation], ['m', 'production', 2]);
  handle.dispose();
});

test("the first pointer must name the source key's model and alias, or the options'", { timeout: 20_000 }, async () => {
  putBlob(v1);
  // The key pointers/m/production.json holding the pointer of another model, of another alias.
  publish(v1, { generation: 1, model: 'other-model', alias: 'staging' });
  await assert.rejects(Model.follow(url, { publicKey }), (e) => {
    assert.equal(e.code, 'POINTER_INVALID');
    assert.match(e.message, /model "other-model" alias "staging", not of the followed model "m" alias "production"/);
    return true;
  });
  publish(v1, { generation: 1, alias: 'staging' });
  await assert.rejects(Model.follow(url, { publicKey }), { code: 'POINTER_INVALID' });
  // An R2 key, under a prefix.
  const bucket = bucketOver();
  await assert.rejects(Model.follow({ bucket, key: 'fleet/pointers/m/production.json' }, { publicKey }), { code: 'POINTER_INVALID' });
  publish(v1, { generation: 1 });
  (await Model.follow({ bucket, key: 'fleet/pointers/m/production.json' }, { publicKey })).dispose();

  // The URL's path segments are percent-decoded: pointers/m%20x/prod%25.json is model "m x",
  // alias "prod%", and a pointer naming "m%20x" is another model.
  const odd = { model: 'm x', alias: 'prod%', at: 'pointers/m x/prod%.json' };
  const oddUrl = `${origin}/pointers/m%20x/prod%25.json`;
  publish(v1, { generation: 1, ...odd, model: 'm%20x' });
  await assert.rejects(Model.follow(oddUrl, { publicKey }), { code: 'POINTER_INVALID' });
  publish(v1, { generation: 1, ...odd });
  const h = await Model.follow(oddUrl, { publicKey, intervalSeconds: 3600 });
  assert.deepEqual([h.pointer.model, h.pointer.alias], ['m x', 'prod%']);
  h.dispose();

  // options.model / options.alias pin them where the source's path names none.
  const at = 'feeds/m/current.json';
  const feed = `${origin}/${at}`;
  publish(v1, { generation: 1, at });
  await assert.rejects(Model.follow(feed, { publicKey, model: 'm', alias: 'staging' }), (e) => {
    assert.equal(e.code, 'POINTER_INVALID');
    assert.match(e.message, /not of the followed model "m" alias "staging"/);
    return true;
  });
  await assert.rejects(Model.follow(feed, { publicKey, model: 'other' }), { code: 'POINTER_INVALID' });
  const pinned = await Model.follow(feed, { publicKey, model: 'm', alias: 'production', intervalSeconds: 3600 });
  // Once served, a pointer of another alias is refused by refresh() too, the version kept.
  publish(v1, { generation: 2, alias: 'staging', at });
  await assert.rejects(pinned.refresh(), { code: 'POINTER_INVALID' });
  assert.equal(pinned.pointer.generation, 1);
  pinned.dispose();
  (await Model.follow(url, { publicKey, model: 'm', alias: 'production', intervalSeconds: 3600 })).dispose();
  // Checked as strings, and against the source's own key.
  for (const bad of [{ model: 42 }, { alias: null }, { model: ['m'] }]) {
    await assert.rejects(Model.follow(url, { publicKey, ...bad }), { code: 'INVALID_INPUT' });
  }
  await assert.rejects(Model.follow(url, { publicKey, model: 'other' }), (e) => {
    assert.equal(e.code, 'INVALID_INPUT');
    assert.match(e.message, /options\.model "other" is not the model "m" of the source/);
    return true;
  });
  await assert.rejects(Model.follow({ bucket, key: 'pointers/m/production.json' }, { alias: 'staging' }), { code: 'INVALID_INPUT' });
});

test('a refused blob is fetched again at the next poll: a proxy error page does not block the version', { timeout: 20_000 }, async () => {
  putBlob(v1);
  putBlob(v2);
  publish(v1, { generation: 1 });
  const handle = await Model.follow(url, { publicKey, intervalSeconds: 3600 });
  publish(v2, { generation: 2 });
  // A proxy answering 200 with its error page (another size), then with bytes of the right size.
  blobFault = (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>502 Bad Gateway</html>');
  try {
    await assert.rejects(handle.refresh(), { code: 'INTEGRITY_MISMATCH' });
    blobFault = (res) => res.writeHead(200).end(Buffer.alloc(v2.length));
    await assert.rejects(handle.refresh(), { code: 'INTEGRITY_MISMATCH' });
  } finally {
    blobFault = null;
  }
  assert.equal(handle.pointer.generation, 1);
  assert.equal(await handle.refresh(), true, 'the same pointer, its blob fetched again');
  assert.equal(handle.info().sha256, sha256(v2));
  assert.equal(await handle.refresh(), false, 'unchanged (304) once taken');
  handle.dispose();

  // The same from an R2 binding whose blob read gives other bytes for a while.
  let garbled = true;
  const bucket = bucketOver({ blob: (body) => (garbled ? Buffer.alloc(body.length) : body) });
  publish(v1, { generation: 3 });
  const r2 = await Model.follow({ bucket, key: 'fleet/pointers/m/production.json' }, { publicKey, intervalSeconds: 3600 })
    .catch((e) => e);
  assert.equal(r2.code, 'INTEGRITY_MISMATCH');
  garbled = false;
  const h = await Model.follow({ bucket, key: 'fleet/pointers/m/production.json' }, { publicKey, intervalSeconds: 3600 });
  publish(v2, { generation: 4 });
  garbled = true;
  await assert.rejects(h.refresh(), { code: 'INTEGRITY_MISMATCH' });
  garbled = false;
  assert.equal(await h.refresh(), true);
  assert.equal(h.info().sha256, sha256(v2));
  h.dispose();
});

test('a gzip-encoded blob is judged by what it inflates to: taken at the pointer\'s size, cut as it passes it', { timeout: 20_000 }, async () => {
  putBlob(v1);
  putBlob(v2);
  publish(v1, { generation: 1 });
  const handle = await Model.follow(url, { publicKey, intervalSeconds: 3600 });
  publish(v2, { generation: 2 });
  // A server compressing the blob (a CDN, a bucket with compression): its Content-Length is the
  // compressed size, not the pointer's. 64 MiB of zeros in about 64 KB, all but its last byte:
  // only a reader that stops as it inflates gets an answer.
  const gzipped = gzipSync(v2);
  const bomb = gzipSync(new Uint8Array(64 << 20));
  assert.notEqual(gzipped.length, v2.length);
  let closed;
  try {
    blobFault = (res) => {
      closed = new Promise((r) => res.on('close', r));
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': bomb.length });
      res.write(bomb.subarray(0, bomb.length - 1));
    };
    await assert.rejects(handle.refresh(), (e) => {
      assert.equal(e.code, 'INTEGRITY_MISMATCH', e.message);
      assert.match(e.message, new RegExp(`has \\d+ bytes, the pointer says ${v2.length}$`));
      return true;
    });
    // The reader was cancelled as the body passed the pointer's size: the connection is closed.
    await closed;
    assert.equal(handle.info().sha256, sha256(v1), 'v1 keeps serving');
    blobFault = (res) => res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gzipped.length }).end(gzipped);
    assert.equal(await handle.refresh(), true, 'the gzip-encoded blob is taken');
  } finally {
    blobFault = null;
  }
  assert.equal(handle.info().sha256, sha256(v2));
  handle.dispose();
});

test('maxBytes: a pointer naming a larger blob is refused before the blob is requested; the option is checked', { timeout: 20_000 }, async () => {
  assert.ok(v2.length > v1.length);
  putBlob(v1);
  putBlob(v2);
  publish(v1, { generation: 1 });
  const reads = pointerReads;
  for (const maxBytes of [0, -1, 1.5, 2 ** 31, NaN, Infinity, '1024', 1024n, true, {}]) {
    const e = await Model.follow(url, { publicKey, maxBytes }).catch((e) => e);
    assert.equal(e.code, 'INVALID_INPUT', String(maxBytes));
    assert.match(e.message, /^options\.maxBytes of Model\.follow must be an integer from 1 to 2147483647, got /, e.message);
  }
  assert.equal(pointerReads, reads, 'nothing was read');

  const refused = (e, shown, limit) => {
    assert.equal(e.code, 'INPUT_TOO_LARGE', e.message);
    assert.ok(e.message.includes(shown), e.message);
    assert.ok(e.message.includes(`names a blob of ${v1.length} bytes, over maxBytes (${limit} bytes)`), e.message);
  };
  let blobs = blobReads;
  refused(await Model.follow(url, { publicKey, maxBytes: v1.length - 1 }).catch((e) => e), url, v1.length - 1);
  assert.equal(blobReads, blobs, 'the blob was not requested');

  // At the limit v1 is served; v2, past it, is refused while v1 keeps serving.
  const handle = await Model.follow(url, { publicKey, maxBytes: v1.length, intervalSeconds: 3600 });
  assert.equal(handle.info().sha256, sha256(v1));
  publish(v2, { generation: 2 });
  blobs = blobReads;
  await assert.rejects(handle.refresh(), (e) => e.code === 'INPUT_TOO_LARGE' && e.message.includes(`over maxBytes (${v1.length} bytes)`));
  assert.equal(blobReads, blobs, 'the blob was not requested');
  assert.equal(handle.info().sha256, sha256(v1));
  handle.dispose();

  // From an R2 binding: the blob is not read either.
  publish(v1, { generation: 3 });
  let r2Blobs = 0;
  const bucket = bucketOver({ blob: (body) => (r2Blobs++, body) });
  const key = 'fleet/pointers/m/production.json';
  refused(await Model.follow({ bucket, key }, { publicKey, maxBytes: v1.length - 1 }).catch((e) => e), key, v1.length - 1);
  assert.equal(r2Blobs, 0, 'the blob was not read');
  (await Model.follow({ bucket, key }, { publicKey, maxBytes: v1.length })).dispose();
  assert.equal(r2Blobs, 1);
});

test('an R2 binding that stops answering fails the read after timeoutSeconds', { timeout: 20_000 }, async () => {
  putBlob(v1);
  publish(v1, { generation: 1 });
  const key = 'fleet/pointers/m/production.json';
  const timedOut = (e) => {
    assert.equal(e.code, 'LOAD_FAILED', e.message);
    assert.match(e.message, /no answer within 0\.2 s \(timeoutSeconds\)/);
    return true;
  };
  for (const stall of [
    (k, what) => what === 'get' && k === key,
    (k, what) => what === 'body' && k === key,
    (k, what) => what === 'get' && k.includes('/blobs/'),
    (k, what) => what === 'body' && k.includes('/blobs/'),
  ]) {
    await assert.rejects(Model.follow({ bucket: bucketOver({ stall }), key }, { publicKey, timeoutSeconds: 0.2 }), timedOut);
  }
  // While serving: the poll fails (onError), the version stays, and the next poll is scheduled.
  let stalled = false;
  const errors = events();
  const updates = events();
  const bucket = bucketOver({ stall: (k, what) => stalled && what === 'get' });
  const h = await Model.follow({ bucket, key }, {
    publicKey, timeoutSeconds: 0.2, intervalSeconds: 0.05, onError: errors.push, onUpdate: updates.push,
  });
  stalled = true;
  const [e] = await errors.next();
  timedOut(e);
  putBlob(v2);
  publish(v2, { generation: 2 });
  stalled = false;
  const [info] = await updates.next();
  assert.equal(info.sha256, sha256(v2));
  h.dispose();
  // A binding that throws is LOAD_FAILED too, from its body as from its get.
  const throwing = { get: async () => ({ etag: 'x', size: 10, text: async () => { throw new Error('reset'); } }) };
  await assert.rejects(Model.follow({ bucket: throwing, key }), { code: 'LOAD_FAILED' });
});

test('workerd: follows a pointer in an R2 binding', async () => {
  const { Miniflare } = createRequire(join(ROOT, 'package.json'))('miniflare');
  const pkg = join(process.env.SKEDGE_APP ?? fileURLToPath(new URL('.', import.meta.url)), 'node_modules', 'skedge');
  const file = (name) => readFileSync(join(pkg, name), 'utf8');
  const mf = new Miniflare({
    compatibilityDate: '2026-04-01',
    modules: [
      { type: 'ESModule', path: 'worker.js', contents: readFileSync(fileURLToPath(new URL('./follow/worker.js', import.meta.url)), 'utf8') },
      { type: 'ESModule', path: 'skedge.js', contents: file('workerd.js') },
      { type: 'ESModule', path: 'core.js', contents: file('core.js') },
      { type: 'ESModule', path: 'extend.js', contents: file('extend.js') },
      { type: 'ESModule', path: 'errors.js', contents: file('errors.js') },
      { type: 'CompiledWasm', path: 'skedge_bg.wasm', contents: readFileSync(join(pkg, 'skedge_bg.wasm')) },
    ],
    r2Buckets: ['MODELS'],
    bindings: { PUBLIC_KEY: publicKey },
  });
  try {
    const bucket = await mf.getR2Bucket('MODELS');
    const pointerFile = join(dir, 'pointers', 'm', 'production.json');
    const put = async (bytes, options) => {
      const sha = options.sha ?? sha256(bytes);
      await bucket.put(`fleet/blobs/sha256/${sha}.skedge`, new Uint8Array(options.blob ?? bytes));
      publish(bytes, options);
      await bucket.put('fleet/pointers/m/production.json', readFileSync(pointerFile, 'utf8'));
    };
    const get = async (query) => (await mf.dispatchFetch(`http://localhost/?text=great&${query}`)).json();
    await put(v1, { generation: 1 });
    let r = await get('');
    assert.deepEqual([r.sha256, r.generation, r.error], [sha256(v1), 1, null]);
    r = await get('refresh');
    assert.deepEqual([r.sha256, r.generation, r.error], [sha256(v1), 1, null], 'unchanged');
    await put(v2, { generation: 2 });
    r = await get('refresh');
    assert.deepEqual([r.sha256, r.generation, r.error], [sha256(v2), 2, null]);
    await put(v1, { generation: 3, key: null });
    r = await get('refresh');
    assert.deepEqual([r.sha256, r.generation, r.error], [sha256(v2), 2, 'SIGNATURE_MISSING']);
    const tampered = v1.slice();
    tampered[tampered.length - 1] ^= 1;
    await put(v1, { generation: 4, blob: tampered, sha: sha256(v1) });
    r = await get('refresh');
    assert.deepEqual([r.sha256, r.generation, r.error], [sha256(v2), 2, 'INTEGRITY_MISMATCH']);
    await put(v1, { generation: 1 });
    r = await get('refresh');
    assert.deepEqual([r.sha256, r.generation, r.error], [sha256(v2), 2, 'POINTER_STALE']);
  } finally {
    await mf.dispose();
  }
});

test('skedge/lite follows without explain (its models have none)', async () => {
  const lite = await import('skedge/lite');
  const plain = new Uint8Array(readFileSync(join(golden, 'tiny.skedge')));
  putBlob(plain);
  publish(plain, { generation: 1, key: null, model: 'lite', at: 'pointers/lite/production.json' });
  const handle = await lite.Model.follow(`${origin}/pointers/lite/production.json`, { intervalSeconds: 3600 });
  try {
    assert.deepEqual(handle.predict('good'), lite.Model.fromBytes(plain).predict('good'));
    assert.equal(handle.explain, undefined, 'a handle method that could only throw a TypeError');
  } finally {
    handle.dispose();
  }
  const full = await Model.follow(`${origin}/pointers/lite/production.json`, { intervalSeconds: 3600 });
  try {
    assert.equal(typeof full.explain, 'function');
  } finally {
    full.dispose();
  }
});
