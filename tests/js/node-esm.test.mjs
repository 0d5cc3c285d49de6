// The installed package under Node (ESM entry `node.mjs`): parity with scikit-learn on every
// fixture case, the API surface, and every error path, each asserting `err.code`.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Model, init, initSync } from 'skedge';
import defaultInit from 'skedge';
import { Model as Lite } from 'skedge/lite';
import { loadCases, assertParity, fromColumnar, columnarTypes } from './lib/cases.mjs';
import { code } from './lib/errors.mjs';

const cases = loadCases();
const byName = Object.fromEntries(cases.map((c) => [c.name, c]));
// A word-analyzer, vocabulary, lowercase case for explanations and large inputs.
const wordCase = byName.word_tfidf_lr_binary ?? cases[0];

async function codeAsync(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof Error, 'a real Error');
    assert.equal(e.name, 'SkedgeError');
    return e.code;
  }
  assert.fail('did not reject');
}

describe('node esm: parity with scikit-learn', () => {
  for (const c of cases) {
    test(c.name, () => {
      const model = Model.fromBytes(c.bytes);
      try {
        const got = c.expected.map((e) => model.predict(e.text));
        assertParity(c, got);
        const texts = c.expected.map((e) => e.text);
        assert.deepEqual(model.predictBatch(texts), got, 'predictBatch = predict');
        const columnar = model.predictBatch(texts, { columnar: true });
        assert.deepEqual(columnarTypes(columnar), {
          labelIndex: 'Uint32Array',
          decision: 'Float64Array',
          proba: got[0].proba === null ? 'null' : 'Float64Array',
        });
        assert.deepEqual(fromColumnar(columnar, texts.length), got, 'columnar predictBatch = predict');
      } finally {
        model.free();
      }
    });
  }
});

describe('node esm: API', () => {
  test('init() and initSync() are harmless no-ops in Node', async () => {
    assert.equal(defaultInit, init);
    await init();
    initSync();
  });

  test('fromBytes accepts Uint8Array, Buffer, ArrayBuffer and DataView', () => {
    const b = wordCase.bytes;
    for (const input of [b, Buffer.from(b), b.slice().buffer, new DataView(b.slice().buffer)]) {
      const m = Model.fromBytes(input);
      assert.equal(m.info().bytes, b.length);
      m.free();
    }
  });

  test('info() has metadata, classes and the sha256 of the bytes', () => {
    const model = Model.fromBytes(wordCase.bytes);
    const info = model.info();
    const hex = createHash('sha256').update(wordCase.bytes).digest('hex');
    const b64 = createHash('sha256').update(wordCase.bytes).digest('base64');
    assert.equal(info.sha256, hex);
    assert.equal(info.integrity, `sha256-${b64}`);
    assert.ok(Array.isArray(info.classes) && info.classes.length >= 2);
    for (const key of ['name', 'version', 'estimator', 'sklearnVersion', 'created', 'skedgeVersion']) {
      assert.equal(typeof info[key], 'string', key);
    }
    assert.equal(typeof info.metrics, 'object');
    assert.equal(typeof info.provenance, 'object');
    assert.equal(info.maxTextBytes, 16 * 1024 * 1024);
    assert.equal(Object.getPrototypeOf(info), Object.prototype, 'a plain object');
    model.free();
  });

  test("info()'s metrics and provenance are the exported ones, keys in order", () => {
    for (const c of cases) {
      const path = `${process.env.SKEDGE_ROOT}/tests/fixtures/cases/${c.name}.interchange.json`;
      const { metrics, provenance } = JSON.parse(readFileSync(path, 'utf8')).metadata;
      const info = Model.fromBytes(c.bytes).info();
      for (const [got, want] of [[info.metrics, metrics], [info.provenance, provenance]]) {
        assert.deepEqual(got, want, c.name);
        assert.deepEqual(Object.keys(got), Object.keys(want).sort(), c.name);
      }
    }
  });

  test('labels are numbers for integer classes and strings for string classes', () => {
    for (const c of cases) {
      const model = Model.fromBytes(c.bytes);
      const { classes } = model.info();
      const { label } = model.predict(c.expected[0].text);
      assert.equal(typeof label, typeof c.expected[0].label, c.name);
      assert.ok(classes.includes(label), c.name);
      model.free();
    }
  });

  test('explain(): top features, contributions = value × weight, spans into the input', () => {
    const model = Model.fromBytes(wordCase.bytes);
    const text = 'The food was GREAT, great service... but the Wait was terrible 😀 and slow.';
    const ex = model.explain(text, 5);
    const p = model.predict(text);
    assert.deepEqual({ label: ex.label, decision: ex.decision, proba: ex.proba }, p);
    assert.ok(ex.features.length > 0 && ex.features.length <= 5);
    const row = ex.row;
    let last = Infinity;
    for (const f of ex.features) {
      assert.deepEqual(f.contributions, f.weights.map((w) => f.value * w));
      const mag = Math.abs(f.contributions[row]);
      assert.ok(mag <= last && mag > 0, 'sorted by |contribution|');
      last = mag;
      assert.ok(f.spans.length > 0, `${f.term} has spans`);
      for (const [s, e] of f.spans) {
        assert.ok(0 <= s && s < e && e <= text.length);
        // word unigrams/bigrams of a lowercasing analyzer: the span lowercased, tokens joined.
        const words = text.slice(s, e).toLowerCase().match(/\w\w+/gu);
        assert.ok(words && f.term.startsWith(words[0]) && f.term.endsWith(words[words.length - 1]), `${f.term} vs ${text.slice(s, e)}`);
      }
    }
    assert.equal(model.explain(text).features.length <= 10, true, 'k defaults to 10');
    assert.equal(code(() => model.explain(text, 0)), 'INVALID_INPUT', 'k is at least 1 (api.test.mjs: every bad k)');
    model.free();
  });

  test('explain() spans index UTF-16 strings: emoji, İ and lone surrogates', () => {
    const model = Model.fromBytes(wordCase.bytes);
    const text = '😀😀 \ud800 İİ great 𝒜 great';
    const great = model.explain(text, 100).features.find((f) => f.term === 'great');
    assert.ok(great, 'great is a feature');
    assert.deepEqual(great.spans.map(([s, e]) => text.slice(s, e)), ['great', 'great']);
    model.free();
  });

  test('lone surrogates are read as U+FFFD (as TextEncoder does), without error', () => {
    const model = Model.fromBytes(wordCase.bytes);
    assert.deepEqual(model.predict('good \ud800food\udfff'), model.predict('good \ufffdfood\ufffd'));
    model.free();
  });

  test('free() and Symbol.dispose', () => {
    const model = Model.fromBytes(wordCase.bytes);
    if (typeof Symbol.dispose === 'symbol') {
      assert.equal(typeof model[Symbol.dispose], 'function');
      model[Symbol.dispose]();
    } else {
      model.free();
    }
    assert.throws(() => model.predict('x'));
  });
});

describe('node esm: errors carry stable codes', () => {
  const good = wordCase.bytes;
  const b64 = createHash('sha256').update(good).digest('base64');

  test('corrupt artifacts: ARTIFACT_CORRUPT', () => {
    const flipped = good.slice();
    flipped[flipped.length - 10] ^= 0xff;
    assert.equal(code(() => Model.fromBytes(flipped)), 'ARTIFACT_CORRUPT');
    assert.equal(code(() => Model.fromBytes(good.slice(0, good.length - 1))), 'ARTIFACT_CORRUPT');
    assert.equal(code(() => Model.fromBytes(good.slice(0, 10))), 'ARTIFACT_CORRUPT');
    assert.equal(code(() => Model.fromBytes(new TextEncoder().encode('{"not": "an artifact"}'))), 'ARTIFACT_CORRUPT');
    assert.equal(code(() => Model.fromBytes(new Uint8Array(0))), 'ARTIFACT_CORRUPT');
  });

  test('a future format version: ARTIFACT_VERSION_UNSUPPORTED', () => {
    const future = good.slice();
    future[8] = 99;
    assert.equal(code(() => Model.fromBytes(future)), 'ARTIFACT_VERSION_UNSUPPORTED');
  });

  test('integrity: INTEGRITY_MISMATCH, and INVALID_INPUT for malformed strings', () => {
    Model.fromBytes(good, { integrity: `sha256-${b64}` }).free();
    Model.fromBytes(good, { integrity: `sha256-${'A'.repeat(43)}= sha256-${b64}` }).free();
    const other = createHash('sha256').update('other').digest('base64');
    assert.equal(code(() => Model.fromBytes(good, { integrity: `sha256-${other}` })), 'INTEGRITY_MISMATCH');
    assert.equal(code(() => Model.fromBytes(good, { integrity: 'sha512-abc' })), 'INVALID_INPUT');
    assert.equal(code(() => Model.fromBytes(good, { integrity: 'nonsense' })), 'INVALID_INPUT');
    assert.equal(code(() => Model.fromBytes(good, { integrity: 42 })), 'INVALID_INPUT');
  });

  test('non-bytes to fromBytes: INVALID_INPUT', () => {
    for (const bad of [undefined, null, 'abc', 42, {}, [1, 2, 3]]) {
      assert.equal(code(() => Model.fromBytes(bad)), 'INVALID_INPUT', String(bad));
    }
  });

  test('non-string texts: INVALID_INPUT (no coercion)', () => {
    const model = Model.fromBytes(good);
    for (const bad of [undefined, null, 42, {}, ['a'], new String('a'), Symbol('s'), 10n]) {
      assert.equal(code(() => model.predict(bad)), 'INVALID_INPUT', typeof bad);
      assert.equal(code(() => model.explain(bad)), 'INVALID_INPUT', typeof bad);
    }
    assert.equal(code(() => model.predictBatch('not an array')), 'INVALID_INPUT');
    assert.equal(code(() => model.predictBatch(['ok', 3])), 'INVALID_INPUT');
    assert.deepEqual(model.predictBatch([]), []);
    const err = (() => { try { model.predictBatch(['ok', 'fine', null]); } catch (e) { return e; } })();
    assert.equal(err.index, 2);
    assert.equal(code(() => model.predictBatch(['ok'], { columnar: 'yes' })), 'INVALID_INPUT');
    const empty = model.predictBatch([], { columnar: true });
    assert.equal(empty.labelIndex.length, 0);
    assert.ok(empty.width >= 1);
    // Lone surrogates: each text is encoded alone, as predict does (U+FFFD), never joined with
    // the next text into one character.
    const split = ['good \ud83d', '\ude00 bad', '\ud83d\ude00'];
    assert.deepEqual(model.predictBatch(split), split.map((t) => model.predict(t)));
    model.free();
  });

  test('huge input: 10 MB works, over 16 MiB is INPUT_TOO_LARGE', (t) => {
    const model = Model.fromBytes(good);
    const unit = 'the food was great but the service was slow. ';
    const ten = unit.repeat(Math.ceil(10e6 / unit.length));
    const t0 = performance.now();
    const p = model.predict(ten);
    const ms = performance.now() - t0;
    assert.ok(p.decision.every(Number.isFinite));
    t.diagnostic(`10 MB text predicted in ${ms.toFixed(0)} ms`);
    const big = 'a'.repeat(16 * 1024 * 1024 + 1);
    assert.equal(code(() => model.predict(big)), 'INPUT_TOO_LARGE');
    // Fewer UTF-16 units than the limit but more UTF-8 bytes: refused after encoding.
    const wide = 'é'.repeat(9 * 1024 * 1024);
    assert.equal(code(() => model.predict(wide)), 'INPUT_TOO_LARGE');
    const err = (() => { try { model.predictBatch(['ok', big]); } catch (e) { return e; } })();
    assert.equal(err.code, 'INPUT_TOO_LARGE');
    assert.equal(err.index, 1);
    const wideErr = (() => { try { model.predictBatch(['ok', 'fine', wide]); } catch (e) { return e; } })();
    assert.equal(wideErr.code, 'INPUT_TOO_LARGE');
    assert.equal(wideErr.index, 2);
    model.free();
  });

  test('sublinear_tf: a feature counted more than 2^20 times is INPUT_TOO_LARGE, not approximated', () => {
    // numpy's log was checked against the engine's up to 2^20 at export (FORMAT.md §1).
    const c = byName.word12_tfidf_sublinear_lr_fr;
    const model = Model.fromBytes(c.bytes);
    const text = (n) => 'film '.repeat(n);
    assert.ok(model.predict(text(2 ** 20)).decision.every(Number.isFinite));
    assert.throws(() => model.predict(text(2 ** 20 + 1)),
      { name: 'SkedgeError', code: 'INPUT_TOO_LARGE', message: /occurs 1048577 times/ });
    assert.throws(() => model.predictBatch(['film', text(2 ** 20 + 1)], { columnar: true }),
      { name: 'SkedgeError', code: 'INPUT_TOO_LARGE', index: 1 });
    // The model predicts as before after a refusal (its buffers are reused).
    assert.equal(model.predict(c.expected[0].text).label, c.expected[0].label);
    model.free();
  });
});

describe('node esm: Model.load over HTTP (127.0.0.1)', () => {
  let server;
  let base;
  const bytes = wordCase.bytes;
  const b64 = createHash('sha256').update(bytes).digest('base64');

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/model.skedge') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
        // Several chunks, so progress has several steps.
        const step = Math.ceil(bytes.length / 4);
        for (let i = 0; i < bytes.length; i += step) res.write(bytes.subarray(i, i + step));
        res.end();
      } else if (req.url === '/chunked.skedge') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(bytes);
      } else if (req.url === '/gzip.skedge') {
        const z = gzipSync(bytes);
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': z.length });
        res.end(z);
      } else if (req.url === '/corrupt.skedge') {
        res.writeHead(200);
        res.end(bytes.subarray(0, 100));
      } else {
        res.writeHead(404);
        res.end('not found');
      }
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => new Promise((r) => server.close(r)));

  test('streams with progress and checks integrity', async () => {
    const progress = [];
    const model = await Model.load(`${base}/model.skedge`, {
      integrity: `sha256-${b64}`,
      onProgress: (p) => progress.push({ ...p }),
    });
    assert.deepEqual(model.predict(wordCase.expected[0].text).label, wordCase.expected[0].label);
    assert.ok(progress.length >= 2, `several progress events (${progress.length})`);
    assert.ok(progress.every((p) => p.total === bytes.length));
    assert.ok(progress.every((p, i) => i === 0 || p.loaded >= progress[i - 1].loaded));
    assert.equal(progress.at(-1).loaded, bytes.length);
    model.free();
  });

  test('a URL object, a Request, unknown length and gzip encoding', async () => {
    (await Model.load(new URL(`${base}/model.skedge`))).free();
    (await Model.load(new Request(`${base}/model.skedge`))).free();
    const seen = [];
    (await Model.load(`${base}/chunked.skedge`, { onProgress: (p) => seen.push(p.total) })).free();
    assert.ok(seen.every((t) => t === null), 'no content-length: total is null');
    const gz = [];
    (await Model.load(`${base}/gzip.skedge`, { onProgress: (p) => gz.push(p) })).free();
    assert.ok(gz.every((p) => p.total === null), 'content-encoded: total is null');
    assert.equal(gz.at(-1).loaded, bytes.length);
  });

  test('bytes in hand report their progress once, all of them; a throwing onProgress rejects the load', async () => {
    for (const M of [Model, Lite]) {
      for (const given of [bytes, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), new DataView(bytes.buffer, bytes.byteOffset, bytes.length)]) {
        const seen = [];
        const model = await M.load(given, { onProgress: (p) => seen.push({ ...p }) });
        assert.deepEqual(seen, [{ loaded: bytes.length, total: bytes.length }]);
        model.free();
      }
      const thrown = new Error('the page went away');
      await assert.rejects(M.load(bytes, { onProgress: () => { throw thrown; } }), (e) => e === thrown);
      // Checked before it is called: a non-function is refused, bytes or not.
      await assert.rejects(M.load(bytes, { onProgress: 'no' }), { code: 'INVALID_INPUT' });
    }
  });

  test('errors: INTEGRITY_MISMATCH, LOAD_FAILED, ARTIFACT_CORRUPT, INVALID_INPUT', async () => {
    const other = createHash('sha256').update('x').digest('base64');
    assert.equal(await codeAsync(Model.load(`${base}/model.skedge`, { integrity: `sha256-${other}` })), 'INTEGRITY_MISMATCH');
    assert.equal(await codeAsync(Model.load(`${base}/missing.skedge`)), 'LOAD_FAILED');
    assert.equal(await codeAsync(Model.load('http://127.0.0.1:9/nothing-listens-here')), 'LOAD_FAILED');
    assert.equal(await codeAsync(Model.load(`${base}/corrupt.skedge`)), 'ARTIFACT_CORRUPT');
    assert.equal(await codeAsync(Model.load()), 'INVALID_INPUT');
    assert.equal(await codeAsync(Model.load(`${base}/model.skedge`, { onProgress: 'no' })), 'INVALID_INPUT');
  });
});

describe('browser entry imported in Node: use before init', () => {
  test('NOT_INITIALIZED before init(), works after initSync()', async () => {
    const entry = new URL('./browser.js', import.meta.resolve('skedge'));
    const { Model: M, init: i, initSync: iSync } = await import(entry.href);
    assert.equal(code(() => M.fromBytes(wordCase.bytes)), 'NOT_INITIALIZED');
    // The types let `initSync()` go without its module (Node, Deno and Workers ignore it); the
    // browser entry, which cannot read the file itself, says so with a code.
    for (const none of [undefined, null]) assert.equal(code(() => iSync(none)), 'INVALID_INPUT');
    assert.equal(code(() => M.fromBytes(wordCase.bytes)), 'NOT_INITIALIZED');
    const { readFileSync } = await import('node:fs');
    iSync(readFileSync(new URL('./skedge_bg.wasm', entry)));
    await i();
    const m = M.fromBytes(wordCase.bytes);
    assert.deepEqual(m.predict(wordCase.expected[0].text).label, wordCase.expected[0].label);
    m.free();
  });
});

describe('node entries: the wasm is compiled on first use, not on import', () => {
  test('an entry without its .wasm imports, and its first use is LOAD_FAILED (ESM and CommonJS)', async () => {
    const { copyFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { dirname, join } = await import('node:path');
    const { createRequire } = await import('node:module');
    const { fileURLToPath, pathToFileURL } = await import('node:url');
    const pkg = dirname(fileURLToPath(import.meta.resolve('skedge')));
    const dir = mkdtempSync(join(tmpdir(), 'skedge-no-wasm-'));
    try {
      // The Node entries are one file each (scripts/build.sh): alone, they miss only the .wasm.
      for (const f of ['node.mjs', 'node.cjs']) copyFileSync(join(pkg, f), join(dir, f));
      const esm = await import(pathToFileURL(join(dir, 'node.mjs')).href);
      const cjs = createRequire(join(dir, 'x.cjs'))('./node.cjs');
      for (const { Model: M, init: i } of [esm, cjs]) {
        assert.equal(code(() => M.fromBytes(new Uint8Array(8))), 'LOAD_FAILED');
        await assert.rejects(M.load('http://127.0.0.1:9/model.skedge'), (e) => e.code === 'LOAD_FAILED');
        await assert.rejects(i(), (e) => e.code === 'LOAD_FAILED');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("init() readies wasm memory: a first load's copy meets pages already mapped", async () => {
    // A fresh instance (query string); 1.5 MiB that are copied into wasm memory, then refused.
    const { Model: M, init: i } = await import(`${import.meta.resolve('skedge')}?warm`);
    await i();
    // The refusal's own first run (its code, its error) is not what is measured.
    assert.throws(() => M.fromBytes(new Uint8Array(100).fill(7)), { code: 'ARTIFACT_CORRUPT' });
    const bytes = new Uint8Array(3 << 19).fill(7);
    const before = process.resourceUsage().minorPageFault;
    assert.throws(() => M.fromBytes(bytes), { code: 'ARTIFACT_CORRUPT' });
    const faults = process.resourceUsage().minorPageFault - before;
    // Onto fresh memory the copy alone faults once per 4 KiB page: 384 times (390 measured
    // without the warm-up, 6 with it). The count is the process's: V8's compiler and GC threads
    // fault meanwhile too (78 seen once on Node 24 beside a busy machine), so the bound is half
    // the pages, which only an unwarmed copy reaches.
    const pages = bytes.length / 4096;
    assert.ok(faults < pages / 2, `${faults} page faults copying ${bytes.length} bytes (${pages} pages) after init()`);
    const m = M.fromBytes(wordCase.bytes);
    assert.deepEqual(m.predict(wordCase.expected[0].text).label, wordCase.expected[0].label);
    m.free();
  });

  test('init() warms a signed load: node:crypto is loaded by init(), not by the first signed load', () => {
    // A fresh process: this one loaded node:crypto long ago. Its list of loaded built-ins tells.
    const script = `
      const crypto = () => process.moduleLoadList.includes('NativeModule crypto');
      const { init } = await import(${JSON.stringify(import.meta.resolve('skedge'))});
      const imported = crypto();
      await init();
      console.log(JSON.stringify({ imported, init: crypto() }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { imported: false, init: true });
  });

  test('init() compiling in the background and a synchronous first use meanwhile', async () => {
    // A fresh copy of the entry (query string): its wasm not yet instantiated.
    const { Model: M, init: i } = await import(`${import.meta.resolve('skedge')}?fresh`);
    const pending = i();
    const m = M.fromBytes(wordCase.bytes);
    await pending;
    await i();
    assert.deepEqual(m.predict(wordCase.expected[0].text).label, wordCase.expected[0].label);
    m.free();
  });
});
