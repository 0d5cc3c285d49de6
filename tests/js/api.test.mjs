// The JavaScript API where new users trip (issue #19, "JavaScript API and types"), through the
// installed package in Node: a freed model says so with a code, options are checked (type and
// keys), `Model.load` refuses a malformed `integrity` before downloading, `explain`'s `k` is
// validated like the text and its spans keep combining marks, load errors name the URL once and
// explain `file:` URLs, `maxBytes` bounds what `Model.load` reads from a server (a declared length
// refused unread, an endless or inflating body cut as it streams), and `instanceof SkedgeError`
// holds for every error of every entry.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Model, SkedgeError } from 'skedge';
import { Model as Lite, SkedgeError as LiteError } from 'skedge/lite';
import { loadCases } from './lib/cases.mjs';

const require = createRequire(import.meta.url);
const cases = loadCases();
const wordCase = cases.find((c) => c.name === 'word_tfidf_lr_binary') ?? cases[0];
const bytes = wordCase.bytes;

/** The error `fn` throws, checked to be a coded SkedgeError. */
function thrown(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, 'a real Error');
    assert.equal(e.name, 'SkedgeError');
    assert.equal(typeof e.code, 'string');
    return e;
  }
  assert.fail('did not throw');
}

async function rejected(promise) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.name, 'SkedgeError');
    return e;
  }
  assert.fail('did not reject');
}

describe('a freed model: MODEL_FREED', () => {
  const uses = {
    predict: (m) => m.predict('good'),
    predictBatch: (m) => m.predictBatch(['good']),
    columnar: (m) => m.predictBatch(['good'], { columnar: true }),
    explain: (m) => m.explain('good', 2),
    info: (m) => m.info(),
    monitor: (m) => m.monitor(),
    stopMonitoring: (m) => m.stopMonitoring(),
  };

  test('after free(): every method, and free() again is a no-op', () => {
    const model = Model.fromBytes(bytes);
    model.free();
    model.free();
    for (const [name, use] of Object.entries(uses)) {
      const e = thrown(() => use(model));
      assert.equal(e.code, 'MODEL_FREED', name);
      assert.match(e.message, /freed/);
    }
  });

  test('after Symbol.dispose and `using`-style disposal', () => {
    assert.equal(typeof Symbol.dispose, 'symbol', 'Node 20 has Symbol.dispose');
    const model = Model.fromBytes(bytes);
    model[Symbol.dispose]();
    model[Symbol.dispose]();
    model.free();
    assert.equal(thrown(() => model.predict('good')).code, 'MODEL_FREED');
  });

  test('new Model() is not a model', () => {
    let model;
    try {
      model = new Model();
    } catch (e) {
      // A constructor that refuses is fine too, as long as it says so with a code.
      assert.equal(e.code, 'MODEL_FREED');
      return;
    }
    assert.equal(thrown(() => model.predict('good')).code, 'MODEL_FREED');
    assert.equal(thrown(() => model.info()).code, 'MODEL_FREED');
    model.free();
  });

  test('skedge/lite and CommonJS too', () => {
    const lite = Lite.fromBytes(bytes);
    lite.free();
    assert.equal(thrown(() => lite.predictBatch(['good'])).code, 'MODEL_FREED');
    const { Model: Cjs } = require('skedge');
    const cjs = Cjs.fromBytes(bytes);
    cjs.free();
    cjs.free();
    assert.equal(thrown(() => cjs.predict('good')).code, 'MODEL_FREED');
  });
});

describe('options are objects with known keys: INVALID_INPUT naming the key', () => {
  test('fromBytes: a string, a number, an array or a function in place of the options', () => {
    for (const bad of ['sha256-x', 42, true, ['integrity'], () => {}]) {
      const e = thrown(() => Model.fromBytes(bytes, bad));
      assert.equal(e.code, 'INVALID_INPUT', String(bad));
      assert.match(e.message, /options of Model\.fromBytes must be an object/);
    }
    Model.fromBytes(bytes, undefined).free();
    Model.fromBytes(bytes, null).free();
    Model.fromBytes(bytes, {}).free();
  });

  test('fromBytes: a misspelt key is refused, not ignored', () => {
    const e = thrown(() => Model.fromBytes(bytes, { integrty: `sha256-${'A'.repeat(43)}=` }));
    assert.equal(e.code, 'INVALID_INPUT');
    assert.match(e.message, /options\.integrty is not an option of Model\.fromBytes/);
    assert.match(e.message, /integrity, publicKey, decryptionKey/);
    // An option of load() is not one of fromBytes().
    assert.match(thrown(() => Model.fromBytes(bytes, { onProgress() {} })).message, /options\.onProgress/);
    // skedge/lite checks the same way.
    assert.match(thrown(() => Lite.fromBytes(bytes, { publickey: 'x' })).message, /options\.publickey/);
  });

  test('predictBatch: options must be an object with known keys', () => {
    const model = Model.fromBytes(bytes);
    assert.match(thrown(() => model.predictBatch(['a'], 'columnar')).message, /must be an object/);
    assert.match(thrown(() => model.predictBatch(['a'], { columar: true })).message, /options\.columar/);
    assert.equal(model.predictBatch(['a'], {}).length, 1);
    model.free();
  });
});

describe('Model.load over HTTP (127.0.0.1)', () => {
  let server;
  let base;
  let requests = 0;

  before(async () => {
    server = createServer((req, res) => {
      requests++;
      if (req.url === '/model.skedge') {
        res.writeHead(200, { 'content-length': bytes.length });
        res.end(bytes);
      } else {
        res.writeHead(404);
        res.end('not found');
      }
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => new Promise((r) => server.close(r)));

  test('a malformed integrity, options or key is refused before anything is downloaded', async () => {
    const before = requests;
    for (const options of [
      { integrity: 'sha256-abc' },
      { integrity: 'sha384-' + 'A'.repeat(64) },
      { integrity: '' },
      { integrty: 'sha256-abc' },
      'sha256-abc',
      { publicKey: 'not a key' },
    ]) {
      const e = await rejected(Model.load(`${base}/model.skedge`, options));
      assert.ok(['INVALID_INPUT', 'KEY_INVALID'].includes(e.code), `${JSON.stringify(options)}: ${e.code}`);
    }
    assert.equal(requests, before, 'no request was made');
    (await Model.load(`${base}/model.skedge`, { integrity: `sha256-${wordCase.sha256b64}` })).free();
    assert.equal(requests, before + 1);
  });

  test('init must be an object (or null or undefined): INVALID_INPUT before anything is downloaded', async () => {
    const before = requests;
    for (const M of [Model, Lite]) {
      for (const init of [5, 'no-cache', true, 1n, Symbol('init'), () => ({})]) {
        const e = await rejected(M.load(`${base}/model.skedge`, { init }));
        assert.equal(e.code, 'INVALID_INPUT', String(init));
        assert.match(e.message, /^options\.init must be an object \(fetch's RequestInit\), got /, e.message);
      }
    }
    assert.equal(requests, before, 'no request was made');
    for (const init of [undefined, null, {}, { headers: { accept: 'application/octet-stream' } }]) {
      (await Model.load(`${base}/model.skedge`, { init })).free();
      (await Lite.load(`${base}/model.skedge`, { init })).free();
    }
    assert.equal(requests, before + 8);
  });

  test('a 404 names the URL once', async () => {
    const url = `${base}/missing.skedge`;
    const e = await rejected(Model.load(url));
    assert.equal(e.code, 'LOAD_FAILED');
    assert.equal(e.message.split(url).length - 1, 1, e.message);
    assert.match(e.message, /HTTP 404/);
    const viaUrl = await rejected(Model.load(new URL(url)));
    assert.equal(viaUrl.message.split(url).length - 1, 1, viaUrl.message);
  });

  test('a file: URL or a path: says that Node cannot fetch files, and what to do', async () => {
    const file = pathToFileURL(wordCase.artifact);
    for (const input of [file, file.href, 'model.skedge']) {
      const e = await rejected(Model.load(input));
      assert.equal(e.code, 'LOAD_FAILED');
      assert.match(e.message, /fromBytes\(readFileSync\(/, e.message);
    }
  });
});

describe('Model.load: maxBytes bounds what is read (127.0.0.1)', () => {
  const MiB = 1 << 20;
  const URL_LIMIT = MiB; // each test's maxBytes unless it says otherwise
  let server;
  let base;
  let requests = 0;
  // Each response the server is writing, by route: resolves when the client has gone away.
  const closed = new Map();
  const bomb = gzipSync(new Uint8Array(64 * MiB)); // 64 MiB of zeros in about 64 KB of gzip

  before(async () => {
    server = createServer((req, res) => {
      requests++;
      closed.set(req.url, new Promise((r) => res.on('close', r)));
      if (req.url === '/model.skedge') {
        res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
      } else if (req.url === '/chunked.skedge') {
        res.writeHead(200); // no content-length: chunked
        res.write(bytes.subarray(0, 100));
        res.end(bytes.subarray(100));
      } else if (req.url === '/gzip.skedge') {
        const z = gzipSync(bytes);
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': z.length }).end(z);
      } else if (req.url === '/endless') {
        // A body that never ends, written as fast as the client reads it.
        res.writeHead(200);
        const chunk = new Uint8Array(64 * 1024).fill(7);
        const write = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', write);
        };
        write();
      } else if (/^\/declared\//.test(req.url)) {
        // The headers announce a body that never comes: only a client that refuses the length
        // unread gets an answer.
        res.writeHead(200, { 'content-length': req.url.slice('/declared/'.length) });
        res.flushHeaders();
      } else if (req.url === '/short-length') {
        // A Content-Length that lies low: the transport stops at it, whatever follows.
        res.writeHead(200, { 'content-length': 100 });
        res.flushHeaders();
        res.socket.end(Buffer.concat([bytes.subarray(0, 100), Buffer.alloc(4 * MiB, 7)]));
      } else if (req.url === '/bomb') {
        // All but its last byte: only a reader that stops as it inflates gets an answer (a whole
        // read waits for the rest of the body).
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': bomb.length });
        res.write(bomb.subarray(0, bomb.length - 1));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }));

  /** Checks `e` is the refusal of `url` at `limit`, `declared` naming the Content-Length. */
  function tooLarge(e, url, limit, declared) {
    assert.equal(e.code, 'INPUT_TOO_LARGE', e.message);
    assert.ok(e.message.includes(url), e.message);
    assert.ok(e.message.includes(`over maxBytes (${limit} bytes)`), e.message);
    if (declared !== undefined) assert.ok(e.message.includes(`Content-Length, ${declared} bytes`), e.message);
  }

  test('an artifact within maxBytes loads, with or without a length, gzip, a Response or bytes', async () => {
    for (const M of [Model, Lite]) {
      for (const route of ['model.skedge', 'chunked.skedge', 'gzip.skedge']) {
        const url = `${base}/${route}`;
        const model = await M.load(url, { maxBytes: bytes.length });
        assert.equal(model.info().sha256, wordCase.sha256hex);
        model.free();
        tooLarge(await rejected(M.load(url, { maxBytes: bytes.length - 1 })), url, bytes.length - 1);
      }
      (await M.load(new Response(bytes), { maxBytes: bytes.length })).free();
      tooLarge(await rejected(M.load(new Response(bytes), { maxBytes: bytes.length - 1 })), 'a Response without a URL', bytes.length - 1);
      (await M.load(bytes, { maxBytes: bytes.length })).free();
      const e = await rejected(M.load(bytes, { maxBytes: bytes.length - 1 }));
      assert.equal(e.code, 'INPUT_TOO_LARGE');
      assert.match(e.message, new RegExp(`are ${bytes.length} bytes, over maxBytes \\(${bytes.length - 1} bytes\\)`));
      // With a progress callback too: refused by the length it announces, or as it streams.
      const seen = [];
      const url = `${base}/chunked.skedge`;
      tooLarge(await rejected(M.load(url, { maxBytes: 99, onProgress: (p) => seen.push(p.loaded) })), url, 99);
      assert.deepEqual(seen, [0], 'stopped at the first chunk past the limit');
    }
  });

  test('a Content-Length over maxBytes is refused before the body is read, and the connection closed', async () => {
    for (const M of [Model, Lite]) {
      const url = `${base}/declared/${4 * MiB}`;
      tooLarge(await rejected(M.load(url, { maxBytes: URL_LIMIT })), url, URL_LIMIT, 4 * MiB);
      await closed.get(`/declared/${4 * MiB}`);
      // By default, what WebAssembly holds: a length past it is refused at once, not awaited.
      const huge = `${base}/declared/${2 ** 32}`;
      tooLarge(await rejected(M.load(huge)), huge, 2 ** 31 - 1, 2 ** 32);
      await closed.get(`/declared/${2 ** 32}`);
    }
  });

  test('an endless body is cut at maxBytes: the reader is cancelled and the connection closed', async () => {
    for (const M of [Model, Lite]) {
      const url = `${base}/endless`;
      tooLarge(await rejected(M.load(url, { maxBytes: URL_LIMIT })), url, URL_LIMIT);
      await closed.get('/endless');
    }
  });

  test('a gzip body that inflates past maxBytes is cut as it streams (its Content-Length is the compressed one)', async () => {
    assert.ok(bomb.length < URL_LIMIT);
    for (const M of [Model, Lite]) {
      const url = `${base}/bomb`;
      tooLarge(await rejected(M.load(url, { maxBytes: URL_LIMIT })), url, URL_LIMIT);
      await closed.get('/bomb');
    }
  });

  test("a Content-Length that lies: the transport's low one ends the body; a built Response's is not trusted, either way", async () => {
    for (const M of [Model, Lite]) {
      // 100 bytes of the artifact, then 4 MiB the client never reads: a truncated artifact.
      assert.equal((await rejected(M.load(`${base}/short-length`, { maxBytes: URL_LIMIT }))).code, 'ARTIFACT_CORRUPT');
      // A Response a script built from an endless stream, announcing 100 bytes: read as it
      // streams, cut at maxBytes, its stream cancelled.
      let pulled = 0;
      let cancelled;
      const gone = new Promise((r) => (cancelled = r));
      const endless = new ReadableStream({
        pull(c) {
          pulled += 64 * 1024;
          c.enqueue(new Uint8Array(64 * 1024));
        },
        cancel: () => cancelled(),
      });
      const response = new Response(endless, { headers: { 'content-length': '100' } });
      tooLarge(await rejected(M.load(response, { maxBytes: URL_LIMIT })), 'a Response without a URL', URL_LIMIT);
      await gone;
      assert.ok(pulled <= URL_LIMIT + 2 * 64 * 1024, `read ${pulled} bytes`);
      // Nor the other way: announcing more than maxBytes, a body within it loads.
      const announcing = new Response(bytes, { headers: { 'content-length': String(10 * bytes.length) } });
      (await M.load(announcing, { maxBytes: bytes.length })).free();
    }
  });

  test('maxBytes is an integer from 1 to 2^31 - 1: anything else is INVALID_INPUT, before any request', async () => {
    const before = requests;
    for (const M of [Model, Lite]) {
      for (const maxBytes of [0, -1, 1.5, 2 ** 31, NaN, Infinity, '1024', 1024n, true, {}]) {
        for (const source of [`${base}/model.skedge`, bytes]) {
          const e = await rejected(M.load(source, { maxBytes }));
          assert.equal(e.code, 'INVALID_INPUT', String(maxBytes));
          assert.match(e.message, /^options\.maxBytes of Model\.load must be an integer from 1 to 2147483647, got /, e.message);
        }
      }
    }
    assert.equal(requests, before, 'no request was made');
    for (const maxBytes of [undefined, null, 2 ** 31 - 1]) (await Model.load(`${base}/model.skedge`, { maxBytes })).free();
  });
});

describe('explain(text, k)', () => {
  test('k is an integer from 1 to 2^32 - 1: anything else is INVALID_INPUT, never converted', () => {
    const model = Model.fromBytes(bytes);
    for (const k of [-1, 0, NaN, 2.5, 2 ** 32, 2 ** 32 + 1, Infinity, -Infinity, '3', 3n, {}, [2], true]) {
      const e = thrown(() => model.explain('great food', k));
      assert.equal(e.code, 'INVALID_INPUT', String(k));
      assert.match(e.message, /^k must be/);
    }
    assert.ok(model.explain('great food', 2 ** 32 - 1).features.length > 0);
    assert.ok(model.explain('great food', 1).features.length === 1);
    assert.ok(model.explain('great food', undefined).features.length <= 10);
    assert.ok(model.explain('great food', null).features.length <= 10);
    model.free();
  });

  test('spans keep the combining marks after a token (decomposed accents), and nothing else', () => {
    const model = Model.fromBytes(bytes);
    // "great" with a combining acute accent (U+0301) on its t, next to a decomposed "café".
    const expected = {
      'great\u0301 food, cafe\u0301 great': ['great\u0301', 'great'],
      'cafe\u0301\u0327 great\u0301\u0301!': ['great\u0301\u0301'],
      // Non-ASCII text, no mark after the token: the span is the token alone.
      'great 😀 great; café great\u0301': ['great', 'great', 'great\u0301'],
    };
    for (const [text, pieces] of Object.entries(expected)) {
      const great = model.explain(text, 100).features.find((f) => f.term === 'great');
      assert.ok(great, `great is a feature of ${JSON.stringify(text)}`);
      assert.deepEqual(great.spans.map(([s, e]) => text.slice(s, e)), pieces, JSON.stringify(text));
    }
    model.free();
  });
});

describe('SkedgeError', () => {
  test('is a runtime class: instanceof holds for errors from wasm, from JS, from lite and from CommonJS', async () => {
    assert.equal(typeof SkedgeError, 'function');
    const fromWasm = thrown(() => Model.fromBytes(new Uint8Array(3)));
    const fromJs = thrown(() => Model.fromBytes(bytes).predictBatch('x'));
    const freed = (() => {
      const m = Model.fromBytes(bytes);
      m.free();
      return thrown(() => m.predict('x'));
    })();
    const fromLite = thrown(() => Lite.fromBytes(bytes, { publicKey: 'x'.repeat(64) }));
    const { Model: Cjs, SkedgeError: CjsError } = require('skedge');
    const fromCjs = thrown(() => Cjs.fromBytes(new Uint8Array(3)));
    const fromLoad = await rejected(Model.load());
    for (const e of [fromWasm, fromJs, freed, fromLite, fromCjs, fromLoad]) {
      assert.ok(e instanceof SkedgeError, `${e.code}: instanceof SkedgeError`);
      assert.ok(e instanceof LiteError && e instanceof CjsError, `${e.code}: every copy's class`);
      assert.ok(e instanceof Error);
    }
    assert.ok(!(new Error('x') instanceof SkedgeError));
    assert.ok(!(Object.assign(new Error('x'), { name: 'SkedgeError' }) instanceof SkedgeError), 'no code');
    assert.ok(!({ name: 'SkedgeError', code: 'X' } instanceof SkedgeError), 'not an Error');
    const own = new SkedgeError('INVALID_INPUT', 'mine');
    assert.equal(own.name, 'SkedgeError');
    assert.equal(own.code, 'INVALID_INPUT');
    assert.ok(own instanceof SkedgeError && own instanceof Error);
  });
});

// The docs of what info() holds and of the error codes, checked against what the code does.
describe('the docs', () => {
  const ROOT = process.env.SKEDGE_ROOT;
  const pkgDir = dirname(require.resolve('skedge/package.json'));
  const snake = (k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

  test("ModelInfo's comment names every key it does not share with `skedge inspect`, and Python's Info every key it lacks", () => {
    const dts = readFileSync(join(pkgDir, 'core.d.ts'), 'utf8');
    const at = dts.indexOf('export interface ModelInfo {');
    assert.ok(at > 0, 'ModelInfo is declared');
    const comment = dts.slice(dts.lastIndexOf('/**', at), at);
    const body = dts.slice(at, dts.indexOf('\n}', at));
    const indent = /\n( +)\w/.exec(body)[1]; // wasm-bindgen's, not the source's
    const fields = [...body.matchAll(new RegExp(`^${indent}(\\w+)\\??:`, 'gm'))].map((m) => snake(m[1]));
    const cli = join(ROOT, 'target', 'release', 'skedge');
    const inspected = Object.keys(JSON.parse(execFileSync(cli, ['inspect', join(ROOT, 'tests', 'golden', 'tiny.skedge')])));
    const onlyInfo = fields.filter((k) => !inspected.includes(k));
    const onlyInspect = inspected.filter((k) => !fields.includes(k));
    assert.ok(onlyInfo.length > 0 && onlyInspect.length > 0, 'they differ');
    for (const k of onlyInfo) assert.ok(comment.includes(`\`${k.replace(/_(\w)/g, (_, c) => c.toUpperCase())}\``), `${k}: ${comment}`);
    for (const k of onlyInspect) assert.ok(comment.includes(`\`${k}\``), `${k}: ${comment}`);
    assert.doesNotMatch(comment, /as `skedge inspect` prints it/);
    // Python's Info: the same keys in snake case, but for those it lacks, which its docstring names.
    const types = readFileSync(join(ROOT, 'scripts', 'skedge', '_types.py'), 'utf8');
    const info = types.slice(types.indexOf('class Info(TypedDict):'));
    const doc = info.slice(0, info.indexOf('"""', info.indexOf('"""') + 3));
    const pyFields = [...info.slice(doc.length).split(/\n(?=\S)/)[0].matchAll(/^    (\w+): /gm)].map((m) => m[1]);
    const lacking = fields.filter((k) => !pyFields.includes(k));
    assert.deepEqual(pyFields.filter((k) => !fields.includes(k)), [], 'no key of its own');
    assert.ok(lacking.length > 0);
    for (const k of lacking) assert.ok(doc.includes(`\`\`${k}\`\``), `${k}: ${doc}`);
  });

  test('the error tables say SIGNATURE_MISSING / SIGNATURE_INVALID also come from publish pointers', () => {
    for (const file of [join(ROOT, 'README.md'), join(pkgDir, 'README.md')]) {
      const rows = readFileSync(file, 'utf8').split('\n').filter((l) => /^\| `SIGNATURE_(MISSING|INVALID)`/.test(l));
      assert.ok(rows.length > 0, file);
      for (const row of rows) {
        assert.match(row, /artifact/, `${file}: ${row}`);
        assert.match(row, /pointer/, `${file}: ${row}`);
        assert.match(row, /Model\.follow/, `${file}: ${row}`);
        assert.match(row, /verify-pointer/, `${file}: ${row}`);
      }
    }
  });

  test('the error tables name every source of MODEL_FREED and of FEATURE_UNAVAILABLE in JS', () => {
    for (const file of [join(ROOT, 'README.md'), join(pkgDir, 'README.md')]) {
      const row = (code) => readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
      assert.match(row('MODEL_FREED'), /free\(\)[^|]*`Experiment`[^|]*`Model\.follow` handle after `dispose\(\)`/, file);
      assert.match(row('MODEL_FREED'), /`Monitor` after `free\(\)`/, file);
      assert.match(row('FEATURE_UNAVAILABLE'), /`new Experiment\(\)`/, file);
    }
  });
});
