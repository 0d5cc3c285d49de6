// Hostile and odd arguments to the installed package in Node: the JS that wraps the wasm reads
// every argument (bytes, options, records) itself, so user code they carry (a getter, a Proxy's
// trap, a detached buffer) throws outside wasm; an exception thrown through wasm frames skips
// their clean-up, and a few hundred of them used to leave the instance unusable. Also: a text's
// getter that runs another batch, the bounds of a batch and of a follower's requests, the options
// of monitor() and flush(). Each case runs often enough to have broken the instance before.
// Messages quote at most a bounded prefix of what the caller passed, however large.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Experiment, Model } from 'skedge';
import { Model as Lite } from 'skedge/lite';
import { loadCases } from './lib/cases.mjs';
import { publicKey } from './lib/signatures.mjs';

const cases = loadCases();
const wordCase = cases.find((c) => c.name === 'word_tfidf_lr_binary') ?? cases[0];
const bytes = wordCase.bytes;
const tiny = new Uint8Array(readFileSync(join(process.env.SKEDGE_ROOT, 'tests', 'golden', 'tiny.skedge')));
const ROUNDS = 700; // more than the ~450-550 throws that used to exhaust the instance

function detached(View = Uint8Array) {
  const buffer = new ArrayBuffer(16);
  const view = new View(buffer);
  structuredClone(buffer, { transfer: [buffer] });
  return view;
}

function code(fn) {
  try {
    fn();
  } catch (e) {
    return e.code ?? e.message;
  }
  return 'OK';
}

/** The model still predicts as a fresh one does. */
function healthy(M, model) {
  const text = wordCase.expected[0].text;
  assert.deepEqual(model.predict(text), M.fromBytes(bytes).predict(text));
}

for (const [name, M] of [['skedge', Model], ['skedge/lite', Lite]]) {
  test(`${name}: a text's getter that runs another batch does not change this batch's predictions`, () => {
    const model = M.fromBytes(bytes);
    const texts = wordCase.expected.slice(0, 3).map((e) => e.text);
    const plain = model.predictBatch(texts);
    const lazy = texts.slice();
    Object.defineProperty(lazy, 2, {
      get() {
        model.predictBatch(['zzzz zzzz zzzz zzzz zzzz '.repeat(50)]);
        M.fromBytes(bytes).predictBatch(['another model, another batch']);
        return texts[2];
      },
    });
    assert.deepEqual(model.predictBatch(lazy), plain);
    assert.deepEqual(model.predictBatch(lazy, { columnar: true }), model.predictBatch(texts, { columnar: true }));
  });

  test(`${name}: bytes that user code guards are refused (or throw the caller's error) outside wasm, ${ROUNDS} times`, () => {
    const model = M.fromBytes(bytes);
    for (let i = 0; i < ROUNDS; i++) {
      assert.equal(code(() => M.fromBytes(detached())), 'INVALID_INPUT');
      assert.equal(code(() => M.fromBytes(detached(DataView))), 'INVALID_INPUT');
      assert.equal(code(() => M.fromBytes(new Proxy(bytes, {}))), 'INVALID_INPUT');
      assert.equal(code(() => M.fromBytes(bytes, new Proxy({}, { ownKeys() { throw new Error('trap'); } }))), 'trap');
      assert.equal(code(() => M.fromBytes(bytes, { get integrity() { throw new Error('getter'); } })), 'getter');
    }
    healthy(M, model);
    model.free(); // no borrow left behind: free() works
  });

  test(`${name}: records whose getters throw, ${ROUNDS} times`, () => {
    const model = M.fromBytes(bytes);
    const record = { get text() { throw new Error('getter'); } };
    for (let i = 0; i < ROUNDS; i++) {
      assert.equal(code(() => model.predict(record)), 'getter');
      assert.equal(code(() => model.predictBatch(['good', record])), 'getter');
    }
    healthy(M, model);
    model.free();
  });

  test(`${name}: any view of a live buffer loads, a SharedArrayBuffer's too`, () => {
    const shared = new SharedArrayBuffer(bytes.length);
    new Uint8Array(shared).set(bytes);
    for (const b of [bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), shared, new DataView(shared),
      new Uint8Array(shared)]) {
      healthy(M, M.fromBytes(b));
    }
  });

  test(`${name}: Model.load of a detached buffer rejects with a code`, async () => {
    await assert.rejects(M.load(detached()), { code: 'INVALID_INPUT' });
    healthy(M, await M.load(new Response(bytes)));
  });

  test(`${name}: a batch over 256 MiB of UTF-8 in all is INPUT_TOO_LARGE at the text that passes it`, () => {
    const model = M.fromBytes(bytes);
    const text = 'a '.repeat(8 << 20); // 16 MiB, the largest text
    assert.throws(() => model.predictBatch(new Array(17).fill(text)), (e) => {
      assert.equal(e.code, 'INPUT_TOO_LARGE');
      assert.equal(e.index, 16);
      return true;
    });
    healthy(M, model);
  });
}

test('skedge: a key option whose getter throws is not a missing key: the caller\'s error, never an unverified load', async () => {
  for (let i = 0; i < ROUNDS; i++) {
    assert.equal(code(() => Model.fromBytes(tiny, { get publicKey() { throw new Error('secret store'); } })), 'secret store');
    const keys = [publicKey];
    Object.defineProperty(keys, 0, { get() { throw new Error('element'); } });
    assert.equal(code(() => Model.fromBytes(tiny, { publicKey: keys })), 'element');
    assert.equal(code(() => Model.fromBytes(tiny, { publicKey: detached() })), 'INVALID_INPUT');
  }
  const trap = new Proxy(publicKey, { get() { throw new Error('trap'); } });
  for (let i = 0; i < ROUNDS; i++) {
    assert.equal(code(() => Model.fromBytes(tiny, { publicKey: trap })), 'INVALID_INPUT');
    assert.equal(code(() => Model.fromBytes(tiny, { publicKey: [publicKey, trap] })), 'INVALID_INPUT');
  }
  // Model.follow checks the pointer it reads with the key: a valid pointer, so that the key is read.
  const pointer = readFileSync(join(process.env.SKEDGE_ROOT, 'tests', 'fuzz', 'seeds', 'pointer', 'first.json'));
  const server = createServer((req, res) => res.end(pointer));
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const url = `http://127.0.0.1:${server.address().port}/pointers/sentiment/production.json`;
    await assert.rejects(Model.follow(url, { publicKey: trap, timeoutSeconds: 5 }), { code: 'INVALID_INPUT' });
  } finally {
    server.close();
  }
  assert.equal(code(() => Model.fromBytes(tiny, { publicKey })), 'SIGNATURE_MISSING');
});

test('skedge: monitor() and flush() refuse what is not their options', async () => {
  const model = Model.fromBytes(bytes);
  for (const options of [{ sampelRate: 0.1 }, 'sampleRate=0.1', 5, [], () => {}]) {
    assert.equal(code(() => model.monitor(options)), 'INVALID_INPUT', JSON.stringify(String(options)));
  }
  const monitor = model.monitor({ sampleRate: 1 });
  model.predict('good');
  await assert.rejects(monitor.flush(() => {}, { tokn: 'x' }), { code: 'INVALID_INPUT' });
  await assert.rejects(monitor.flush(() => {}, 'token'), { code: 'INVALID_INPUT' });
  const delivered = [];
  const result = await monitor.flush((s) => delivered.push(s), { closedOnly: false });
  assert.equal(result.sent, 1);
  assert.equal(delivered.length, 1);
});

test('skedge: Model.follow refuses a source that is not a URL, and a pointer server that stops answering fails the poll', async () => {
  await assert.rejects(Model.follow('not a url'), { code: 'INVALID_INPUT' });
  await assert.rejects(Model.follow('http://127.0.0.1:1/p.json', { timeoutSeconds: 0 }), { code: 'INVALID_INPUT' });
  const hung = [];
  const server = createServer((req) => hung.push(req)); // accepts, never answers
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const t0 = performance.now();
    await assert.rejects(
      Model.follow(`http://127.0.0.1:${server.address().port}/pointers/m/production.json`, { timeoutSeconds: 0.3 }),
      { code: 'LOAD_FAILED' },
    );
    assert.ok(performance.now() - t0 < 10_000, 'ended by the timeout');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

// A message that quoted the caller's input whole could be megabytes, sent back to a client by a
// server that returns `e.message`: each quote is cut (200 characters, then `…` and the length).
const HUGE = 'k'.repeat(10 << 20);
const SHORT_MESSAGE = 2000;

async function refusal(call) {
  try {
    await call();
  } catch (e) {
    assert.equal(e.name, 'SkedgeError', String(e.message).slice(0, 300));
    assert.ok(e.message.length < SHORT_MESSAGE, `a message of ${e.message.length} characters: ${e.message.slice(0, 300)}`);
    return e;
  }
  assert.fail('did not throw');
}

for (const [name, M] of [['skedge', Model], ['skedge/lite', Lite]]) {
  test(`${name}: a message quotes a bounded prefix of a huge option key, record key, integrity or URL`, async () => {
    const model = M.fromBytes(bytes);
    const column = cases.find((c) => c.name.startsWith('ct_'));
    const onColumn = M.fromBytes(column.bytes);
    const manyKeys = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`key${i}`, 'x']));
    const wrong = `sha256-${Buffer.alloc(32, 7).toString('base64')}`;
    const calls = {
      'fromBytes option': () => M.fromBytes(bytes, { [HUGE]: 1 }),
      'load option': () => M.load(bytes, { [HUGE]: 1 }),
      'monitor option': () => (name === 'skedge' ? model.monitor({ [HUGE]: 1 }) : M.fromBytes(bytes, { [`x${HUGE}`]: 1 })),
      'predictBatch option': () => model.predictBatch(['a'], { [HUGE]: true }),
      'follow option': () => M.follow('http://127.0.0.1:9/p.json', { [HUGE]: 1 }),
      'integrity token': () => M.fromBytes(bytes, { integrity: `sha256-${HUGE}` }),
      'integrity options': () => M.fromBytes(bytes, { integrity: `${wrong}?${HUGE}` }),
      'record key': () => onColumn.predict({ [HUGE]: 'text' }),
      'record keys': () => onColumn.predict(manyKeys),
      'batch record key': () => onColumn.predictBatch([{ [HUGE]: 'text' }]),
      'record on a text model': () => model.predict({ [HUGE]: 'text' }),
      'follow source': () => M.follow(`not a url ${HUGE}`),
      'load URL': () => M.load(`http://127.0.0.1:9/${HUGE}`),
    };
    const codes = {};
    for (const [what, call] of Object.entries(calls)) {
      const e = await refusal(call);
      codes[what] = e.code;
      const quotes = !['record keys', 'record on a text model'].includes(what);
      if (quotes) assert.match(e.message, /…"? \(\d+ (bytes|characters)\)/, `${what}: ${e.message}`);
    }
    assert.deepEqual(codes, {
      'fromBytes option': 'INVALID_INPUT',
      'load option': 'INVALID_INPUT',
      'monitor option': 'INVALID_INPUT',
      'predictBatch option': 'INVALID_INPUT',
      'follow option': 'INVALID_INPUT',
      'integrity token': 'INVALID_INPUT',
      'integrity options': 'INTEGRITY_MISMATCH',
      'record key': 'INVALID_INPUT',
      'record keys': 'INVALID_INPUT',
      'batch record key': 'INVALID_INPUT',
      'record on a text model': 'INVALID_INPUT',
      'follow source': 'INVALID_INPUT',
      'load URL': 'LOAD_FAILED',
    });
    const keys = await refusal(() => onColumn.predict(manyKeys));
    assert.match(keys.message, /"key0", "key1", .*, … 99980 more\]/);
    healthy(M, model);
  });
}

test('skedge: an experiment\'s messages quote a bounded prefix of a huge mode, label, option key or endpoint', async () => {
  const [champion, challenger] = [Model.fromBytes(bytes), Model.fromBytes(bytes)];
  const exp = new Experiment(champion, challenger, { seed: 1 });
  const { id } = exp.predict('good');
  for (const call of [
    () => new Experiment(champion, challenger, { mode: HUGE }),
    () => new Experiment(champion, challenger, { [HUGE]: 1 }),
    () => exp.predict('good', { [HUGE]: 1 }),
    () => exp.feedback(id, HUGE),
    () => exp.flush(`not a url ${HUGE}`),
    () => exp.flush(() => {}, { [HUGE]: 1 }),
  ]) {
    const e = await refusal(call);
    assert.equal(e.code, 'INVALID_INPUT');
    assert.match(e.message, /…"? \(\d+ (bytes|characters)\)/, e.message);
  }
  assert.equal(exp.feedback(id, 1), 'counted', 'the experiment still works');
});

// A freed monitor (or a model, an arm, an experiment freed by a getter of the call's own
// arguments) reached wasm with no pointer: wasm-bindgen threw a bare "null pointer passed to rust"
// from inside wasm, and a few thousand of them left the instance unusable.
const MANY = 1000;

test('skedge: a freed monitor says MODEL_FREED, free() twice is a no-op, flush() rejects, 1,000 times', async () => {
  const model = Model.fromBytes(bytes);
  const monitor = model.monitor({ seed: 1 });
  model.predict('good');
  monitor.free();
  for (let i = 0; i < MANY; i++) {
    monitor.free();
    monitor[Symbol.dispose]();
    for (const use of [() => monitor.snapshot(), () => monitor.drift(), () => monitor.pending, () => monitor.seen, () => monitor.dropped]) {
      assert.equal(code(use), 'MODEL_FREED');
    }
    let flushed;
    assert.equal(code(() => (flushed = monitor.flush(() => {}))), 'OK', 'flush() does not throw');
    await assert.rejects(flushed, { code: 'MODEL_FREED', message: /^this monitor was freed/ });
  }
  // A getter of flush()'s options that frees the monitor: refused, nothing reaches wasm.
  const other = model.monitor({ seed: 1 });
  await assert.rejects(other.flush(() => {}, { get closedOnly() { other.free(); return false; } }), { code: 'MODEL_FREED' });
  const live = model.monitor({ seed: 1 });
  model.predict('good');
  assert.equal(live.seen, 1, 'a new monitor works');
  assert.equal((await live.flush(() => {})).sent, 1);
  healthy(Model, model);
});

test('skedge: a getter of a call\'s arguments that frees its model, an arm or the experiment: MODEL_FREED, 1,000 times', async () => {
  const column = cases.find((c) => c.name.startsWith('ct_'));
  const col = Model.fromBytes(column.bytes).info().inputColumn;
  const freeing = (m) => ({ get [col]() { m.free(); return 'good'; } });
  const calls = {
    predict: () => { const m = Model.fromBytes(column.bytes); return m.predict(freeing(m)); },
    explain: () => { const m = Model.fromBytes(column.bytes); return m.explain(freeing(m)); },
    predictBatch: () => { const m = Model.fromBytes(column.bytes); return m.predictBatch([freeing(m)]); },
    monitor: () => { const m = Model.fromBytes(bytes); return m.monitor({ get seed() { m.free(); return 1; } }); },
    'new Experiment': () => {
      const [a, b] = [Model.fromBytes(bytes), Model.fromBytes(bytes)];
      return new Experiment(a, b, { get seed() { a.free(); return 1; } });
    },
    'Experiment.predict record': () => {
      const [a, b] = [Model.fromBytes(column.bytes), Model.fromBytes(column.bytes)];
      return new Experiment(a, b, { seed: 1 }).predict(freeing(a));
    },
    'Experiment.predict key': () => {
      const [a, b] = [Model.fromBytes(bytes), Model.fromBytes(bytes)];
      return new Experiment(a, b, { seed: 1 }).predict('good', { get key() { b.free(); return 'k'; } });
    },
    'Experiment.predict frees the experiment': () => {
      const exp = new Experiment(Model.fromBytes(bytes), Model.fromBytes(bytes), { seed: 1 });
      return exp.predict('good', { get key() { exp.free(); return 'k'; } });
    },
  };
  for (const [what, call] of Object.entries(calls)) {
    for (let i = 0; i < MANY; i++) {
      assert.equal(code(call), 'MODEL_FREED', what);
    }
  }
  const exp = new Experiment(Model.fromBytes(bytes), Model.fromBytes(bytes), { seed: 1 });
  await assert.rejects(exp.flush(() => {}, { get closedOnly() { exp.free(); return false; } }), { code: 'MODEL_FREED' });
  healthy(Model, Model.fromBytes(bytes));
});

for (const [name, M] of [['skedge', Model], ['skedge/lite', Lite]]) {
  test(`${name}: predictBatch checks a length before allocating for it, and grows as it packs`, () => {
    const model = M.fromBytes(bytes);
    const sparse = [];
    sparse.length = 2 ** 32 - 1; // no memory: allocating for it first took 16 GiB
    assert.equal(code(() => model.predictBatch(sparse)), 'INPUT_TOO_LARGE');
    const claiming = (length, items = []) => new Proxy(items, { get: (t, k) => (k === 'length' ? length : t[k]) });
    for (const length of [-1, 1.5, '3', NaN, undefined]) {
      assert.equal(code(() => model.predictBatch(claiming(length, ['a', 'b', 'c']))), 'INVALID_INPUT', String(length));
    }
    for (const length of [2 ** 32 - 1, 2 ** 53, Infinity]) {
      assert.equal(code(() => model.predictBatch(claiming(length))), length === Infinity ? 'INVALID_INPUT' : 'INPUT_TOO_LARGE', String(length));
    }
    const { proxy, revoke } = Proxy.revocable([], {});
    revoke();
    assert.equal(code(() => model.predictBatch(proxy)), 'INVALID_INPUT');
    // Past the first buffers' 1,024 texts: the same predictions as one at a time.
    const texts = Array.from({ length: 2500 }, (_, i) => wordCase.expected[i % wordCase.expected.length].text);
    const batch = model.predictBatch(texts);
    assert.equal(batch.length, texts.length);
    for (const i of [0, 1023, 1024, 2047, 2048, 2499]) assert.deepEqual(batch[i], model.predict(texts[i]), `texts[${i}]`);
    healthy(M, model);
  });

  test(`${name}: predictBatch passes on what a text's getter threw as it is; an Error gets its index`, () => {
    const model = M.fromBytes(bytes);
    const frozen = Object.freeze(new Error('frozen'));
    for (const thrown of ['boom', undefined, null, 42, Symbol('s'), frozen]) {
      for (let i = 0; i < ROUNDS; i++) {
        let caught = 'nothing';
        try {
          model.predictBatch(['good', { get text() { throw thrown; } }]);
        } catch (e) {
          caught = e;
        }
        assert.equal(caught, thrown, String(thrown));
      }
    }
    assert.equal(frozen.index, undefined);
    const records = ['good', { get text() { throw new Error('record'); } }];
    assert.throws(() => model.predictBatch(records), (e) => e.message === 'record' && e.index === 1);
    healthy(M, model);
  });

  test(`${name}: Model.load of what only poses as bytes, a symbol or a bigint: INVALID_INPUT naming it`, async () => {
    for (const source of [Object.create(Uint8Array.prototype), new Proxy(bytes, {}), Object.create(ArrayBuffer.prototype), Symbol('s'), 123n]) {
      const e = await M.load(source).catch((e) => e);
      assert.equal(e.code, 'INVALID_INPUT', String(e.message));
      assert.match(e.message, /^the source of Model\.load must be a URL, a Request, a Response or bytes, got (a symbol|a bigint|an object posing as bytes)/);
    }
    healthy(M, await M.load(bytes));
  });
}

// A `Response` (or what a patched `fetch` resolves to), its body reader and the errors they throw
// come from outside: each getter and method is called through a catching import, each awaited value
// settled by the runtime, so a throw or an odd value is a coded rejection. Through wasm frames, it
// was an uncaught exception and a load that never settled; after ~300 the instance was broken.
const LOAD_ROUNDS = 67; // of the 9 cases below, 6 of them with onProgress too: 1,005 hostile loads
const nastyError = () => Object.defineProperty(new Error('x'), 'message', { get() { throw new Error('message getter'); } });
const reader = (read) => ({ getReader: () => ({ read, cancel() { throw nastyError(); } }) });
const framed = { headers: { 'content-length': String(bytes.length) } };

/** A real promise of `value` whose `constructor` getter throws (`Promise.resolve` reads it). */
function constructorThrows(value) {
  return Object.defineProperty(Promise.resolve(value), 'constructor', { get() { throw new Error('constructor getter'); } });
}

function hostileResponses() {
  return {
    'Object.create(Response.prototype)': Object.create(Response.prototype),
    'ok getter throws': new (class extends Response { get ok() { throw nastyError(); } })(bytes),
    'read() returns 42': new (class extends Response { get body() { return reader(() => 42); } })(bytes),
    'read() throws': new (class extends Response { get body() { return reader(() => { throw nastyError(); }); } })(bytes),
    'read() gives a fake Uint8Array': new (class extends Response {
      get body() { return reader(async () => ({ done: false, value: Object.create(Uint8Array.prototype) })); }
    })(bytes),
    'arrayBuffer() throws': new (class extends Response { get type() { return 'basic'; } arrayBuffer() { throw nastyError(); } })(bytes, framed),
    'arrayBuffer() gives a Promise whose constructor getter throws': new (class extends Response {
      get type() { return 'basic'; } arrayBuffer() { return constructorThrows(bytes.slice().buffer); }
    })(bytes, framed),
    'arrayBuffer() gives a Proxy': new (class extends Response {
      get type() { return 'basic'; } arrayBuffer() { return new Proxy({}, { get() { throw new Error('trap'); } }); }
    })(bytes, framed),
    'the body errors with an Error whose message getter throws': new Response(new ReadableStream({
      start(c) { c.enqueue(bytes.subarray(0, 100)); },
      pull(c) { c.error(nastyError()); },
    })),
  };
}

for (const [name, M] of [['skedge', Model], ['skedge/lite', Lite]]) {
  test(`${name}: Model.load of a Response whose getters or methods throw or give odd values rejects with a code, ${LOAD_ROUNDS} times`, { timeout: 120_000 }, async () => {
    for (let i = 0; i < LOAD_ROUNDS; i++) {
      // Without onProgress a framed body is read whole (arrayBuffer()), else through its reader.
      for (const options of [undefined, { onProgress() {} }]) {
        for (const [what, response] of Object.entries(hostileResponses())) {
          if (options && what.startsWith('arrayBuffer')) continue; // read through its (sound) body
          await assert.rejects(M.load(response, options), (e) => {
            assert.ok(['LOAD_FAILED', 'INVALID_INPUT'].includes(e.code), `${what}: ${e.code} ${e.message}`);
            return true;
          }, what);
        }
      }
    }
    // Headers that cannot be read are no headers: the body is read chunk by chunk.
    healthy(M, await M.load(new (class extends Response { get headers() { return { get() { throw nastyError(); } }; } })(bytes)));
    healthy(M, await M.load(new (class extends Response { get headers() { return 42; } })(bytes)));
    // A chunk whose own `length` getter throws is read from the runtime's copy of it.
    const lying = Object.defineProperty(new Uint8Array(bytes), 'length', { get() { throw new Error('length'); } });
    let reads = 0;
    const chunks = reader(async () => (reads++ === 0 ? { done: false, value: lying } : { done: true }));
    healthy(M, await M.load(new (class extends Response { get body() { return chunks; } })(bytes)));
    healthy(M, await M.load(new Response(bytes)));
    healthy(M, M.fromBytes(bytes));
  });

  test(`${name}: Model.load through a patched fetch that resolves to an odd object or a hostile promise`, { timeout: 60_000 }, async () => {
    const realFetch = globalThis.fetch;
    try {
      for (let i = 0; i < LOAD_ROUNDS; i++) {
        globalThis.fetch = async () => ({});
        await assert.rejects(M.load('http://127.0.0.1:9/m'), { code: 'LOAD_FAILED' });
        globalThis.fetch = () => constructorThrows(new Response(bytes));
        await assert.rejects(M.load('http://127.0.0.1:9/m'), { code: 'LOAD_FAILED' });
        globalThis.fetch = () => { const p = Promise.resolve(new Response(bytes)); p.then = () => { throw nastyError(); }; return p; };
        await assert.rejects(M.load('http://127.0.0.1:9/m'), { code: 'LOAD_FAILED' });
      }
      globalThis.fetch = async () => ({ ok: true, headers: new Headers(), body: null, arrayBuffer: async () => bytes.slice().buffer });
      healthy(M, await M.load('http://127.0.0.1:9/m'));
    } finally {
      globalThis.fetch = realFetch;
    }
    healthy(M, await M.load(new Response(bytes)));
  });
}

test('skedge: an artifact too large for WebAssembly memory is INPUT_TOO_LARGE, not an abort', () => {
  const huge = new Uint8Array(2 ** 31 - 1); // the largest maxBytes: zero pages, never touched
  for (let i = 0; i < 20; i++) {
    // Either the memory cannot grow to it (INPUT_TOO_LARGE) or the zeros are read (not an artifact).
    assert.ok(['INPUT_TOO_LARGE', 'ARTIFACT_CORRUPT'].includes(code(() => Model.fromBytes(huge))));
  }
  healthy(Model, Model.fromBytes(bytes));
});
