// The monitoring binding (issue #6) in Node, against the installed package: `model.monitor()`,
// sampling, snapshots (FORMAT.md §4), `flush` to a collector on 127.0.0.1 with its answers
// (201, 409, 4xx, 5xx, no server) and the bounded retry queue, `flush(sink)` (a function that
// stores each snapshot: an R2 bucket in a Worker), `stopMonitoring`, option errors.
// The end to end run with the real collector and MLflow is monitor_e2e.test.mjs.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Model } from 'skedge';
import { loadCases } from './lib/cases.mjs';
import { code } from './lib/errors.mjs';

const cases = loadCases();
const wordCase = cases.find((c) => c.name === 'word_tfidf_lr_binary') ?? cases[0];
const texts = wordCase.expected.map((e) => e.text).slice(0, 50);

// A collector double: answers with the next status (or [status, body]) of `plan` (then 201), records
// the requests. The real collector's answers are in monitor_e2e.test.mjs and test_report.py.
let server;
let url;
let plan = [];
const received = [];
before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ headers: req.headers, url: req.url, body: JSON.parse(body) });
      const [status, answer] = [].concat(plan.length ? plan.shift() : 201, '{}');
      res.writeHead(status, { 'content-type': 'application/json' }).end(answer);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${server.address().port}/v1/snapshots`;
});
after(() => new Promise((r) => server.close(r)));

describe('monitor: statistics', () => {
  test('every prediction of predict and predictBatch is seen; sampleRate 1 samples all', () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ sampleRate: 1, seed: 7 });
    for (const t of texts.slice(0, 10)) model.predict(t);
    model.predictBatch(texts.slice(10));
    model.explain(texts[0]); // not a served prediction: not counted
    assert.equal(monitor.seen, texts.length);
    const s = monitor.snapshot();
    assert.equal(s.format, 'skedge-monitor-snapshot');
    assert.equal(s.version, 1);
    assert.match(s.id, /^[0-9a-f]{32}$/);
    assert.equal(s.model.sha256, model.info().sha256);
    assert.equal(s.seen, texts.length);
    assert.equal(s.stats.count, texts.length);
    assert.equal(s.stats.label_counts.reduce((a, b) => a + b), texts.length);
    assert.deepEqual(s.classes, model.info().classes.map(String));
    assert.equal(s.stats.length.length, 16);
    assert.ok(s.stats.oov && s.stats.oov.total_features > 0, 'a vocabulary model counts OOV features');
    assert.ok(s.stats.latency && s.stats.latency.counts.reduce((a, b) => a + b) === texts.length, 'Node times predictions');
    assert.deepEqual(s.texts, [], 'no text leaves without maxTexts');
    assert.equal(Object.getPrototypeOf(s), Object.prototype);
    assert.equal(monitor.seen, 0, 'a new window');
    assert.equal(monitor.pending, 1, 'snapshot() queues the snapshot');
    model.free();
  });

  test('sampling is deterministic per seed, ids are not; timing and maxTexts options', () => {
    const ids = [];
    const counts = [1, 1, 2].map((seed) => {
      const model = Model.fromBytes(wordCase.bytes);
      const m = model.monitor({ sampleRate: 0.3, seed, timing: false, maxTexts: 2 });
      model.predictBatch(texts);
      const s = m.snapshot();
      assert.equal(s.seen, texts.length);
      assert.equal(s.stats.latency, null, 'timing: false');
      assert.equal(s.texts.length, Math.min(2, s.stats.count));
      model.free();
      ids.push(s.id);
      return s.stats.count;
    });
    assert.equal(counts[0], counts[1]);
    // each instance keys its ids with crypto.getRandomValues, whatever its seed
    assert.notEqual(ids[0], ids[1], 'one seed, two monitors: two ids');
    assert.ok(counts.every((c) => c > 0 && c < texts.length), `${counts}`);
    const big = Model.fromBytes(wordCase.bytes);
    const m = big.monitor({ seed: 10n ** 19n, sampleRate: 0 });
    big.predict('x');
    assert.equal(m.snapshot().stats.count, 0);
    big.free();
  });

  test('stopMonitoring: later predictions are not seen; the monitor can still be flushed', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor();
    model.predict('a');
    model.stopMonitoring();
    model.predict('b');
    assert.equal(monitor.seen, 1);
    const r = await monitor.flush(url);
    assert.equal(r.sent, 1);
    model.free();
    // and a new monitor replaces the old one
  });

  test('drift() is null without a baseline in the artifact, else PSI values', () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor();
    model.predict('good');
    const d = monitor.drift();
    assert.ok(d === null || typeof d.oov_shift === 'number' || d.oov_shift === null);
    model.free();
  });

  test('windowSeconds closes windows by the clock', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ windowSeconds: 0.01 });
    model.predict('one');
    await new Promise((r) => setTimeout(r, 30));
    model.predict('two'); // notices the end of the first window
    assert.equal(monitor.pending, 1);
    assert.equal(monitor.seen, 1);
    model.free();
  });

  test('flush after an expired window sends it alone; closedOnly leaves the open window open', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    // A second-long window: the closedOnly flush below comes well within it, even on a busy machine.
    const monitor = model.monitor({ windowSeconds: 1 });
    const got = [];
    const sink = (snapshot) => { got.push(snapshot.seen); };
    model.predict('one');
    await new Promise((r) => setTimeout(r, 1100));
    // The expired window closes at the flush; no empty snapshot of the window after it.
    assert.equal((await monitor.flush(sink)).sent, 1);
    assert.deepEqual(got, [1]);
    model.predict('two');
    assert.deepEqual(await monitor.flush(sink, { closedOnly: true }),
      { sent: 0, rejected: 0, pending: 0, dropped: 0, lastError: null });
    assert.equal(monitor.seen, 1, 'the open window keeps its prediction');
    assert.equal((await monitor.flush(sink)).sent, 1);
    assert.deepEqual(got, [1, 1]);
    model.free();
  });

  test('option errors: INVALID_INPUT', () => {
    const model = Model.fromBytes(wordCase.bytes);
    for (const o of [{ sampleRate: 2 }, { sampleRate: 'x' }, { windowSeconds: 0 }, { seed: -1 }, { seed: 0.5 },
      { seed: 2n ** 64n }, { maxTexts: 65 }, { maxTexts: -1 }, { timing: 'yes' }]) {
      assert.equal(code(() => model.monitor(o)), 'INVALID_INPUT', JSON.stringify(o, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
    }
    model.free();
  });
});

describe('monitor: flush', () => {
  test('POSTs JSON with the bearer token; 201 and 409 are sent', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 3 });
    model.predictBatch(texts);
    received.length = 0;
    plan = [201];
    assert.deepEqual(await monitor.flush(url, { token: 'tok' }), { sent: 1, rejected: 0, pending: 0, dropped: 0, lastError: null });
    assert.equal(received.length, 1);
    assert.equal(received[0].headers.authorization, 'Bearer tok');
    assert.match(received[0].headers['content-type'], /^application\/json/);
    assert.equal(received[0].body.stats.count, texts.length);
    // nothing seen since: nothing to send
    assert.deepEqual(await monitor.flush(url, { token: 'tok' }), { sent: 0, rejected: 0, pending: 0, dropped: 0, lastError: null });
    model.predict('again');
    plan = [409];
    assert.equal((await monitor.flush(new URL(url))).sent, 1, '409: the collector has it already');
    model.free();
  });

  test('5xx, 429 and network errors keep snapshots for the next flush, in order; 4xx drops', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 4 });
    model.predict('first');
    monitor.snapshot();
    model.predict('second');
    received.length = 0;
    plan = [503];
    assert.deepEqual(await monitor.flush(url), { sent: 0, rejected: 0, pending: 2, dropped: 0,
      lastError: { status: 503, code: 'HTTP_503', message: 'the collector answered 503' } });
    assert.equal(received.length, 1, 'stops at the first failure');
    const down = await monitor.flush('http://127.0.0.1:9/nothing-listens-here');
    assert.deepEqual({ ...down, lastError: undefined }, { sent: 0, rejected: 0, pending: 2, dropped: 0, lastError: undefined });
    assert.equal(down.lastError.status, 0);
    assert.equal(down.lastError.code, 'NETWORK_ERROR');
    assert.equal(down.lastError.message, 'fetch failed: bad port', 'with the cause of Node\'s "fetch failed"');
    plan = [201, 429];
    model.predict('third');
    assert.deepEqual(await monitor.flush(url), { sent: 1, rejected: 0, pending: 2, dropped: 0,
      lastError: { status: 429, code: 'HTTP_429', message: 'the collector answered 429' } });
    received.length = 0;
    plan = [422, 201];
    assert.deepEqual(await monitor.flush(url), { sent: 1, rejected: 1, pending: 0, dropped: 0,
      lastError: { status: 422, code: 'HTTP_422', message: 'the collector answered 422' } });
    assert.equal(received.length, 2);
    assert.ok(received[0].body.window.index < received[1].body.window.index, 'oldest first');
    model.free();
  });

  test('a wrong token is visible: lastError carries the status and the collector\'s code', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 6 });
    model.predict('one');
    plan = [[401, '{"code":"TOKEN_INVALID","error":"wrong token"}']];
    assert.deepEqual(await monitor.flush(url, { token: 'wrong' }), { sent: 0, rejected: 0, pending: 1, dropped: 0,
      lastError: { status: 401, code: 'TOKEN_INVALID', message: 'wrong token' } });
    // an answer that is not the collector's: not JSON, an odd code, a huge body
    for (const [answer, code] of [['<html>denied</html>', 'HTTP_403'], ['{"code":"no spaces allowed"}', 'HTTP_403'],
      [JSON.stringify({ code: 'BIG', error: 'x'.repeat(5000) }), 'HTTP_403']]) {
      plan = [[403, answer]];
      const r = await monitor.flush(url, { token: 'wrong' });
      assert.equal(r.lastError.code, code, answer.slice(0, 40));
      assert.equal(r.pending, 1);
    }
    plan = [[400, JSON.stringify({ code: 'NOT_JSON', error: 'é'.repeat(400) })]];
    const r = await monitor.flush(url);
    assert.deepEqual([r.rejected, r.pending, r.lastError.code, r.lastError.message.length], [1, 0, 'NOT_JSON', 300]);
    model.predict('two');
    assert.equal((await monitor.flush(url, { token: 'right' })).lastError, null, 'a good flush clears it');
    model.free();
  });

  test('the queue is bounded: 64 snapshots, older ones dropped and counted', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 5 });
    for (let i = 0; i < 70; i++) {
      model.predict(`text ${i}`);
      monitor.snapshot();
    }
    assert.equal(monitor.pending, 64);
    assert.equal(monitor.dropped, 6);
    received.length = 0;
    const r = await monitor.flush(url);
    assert.deepEqual(r, { sent: 64, rejected: 0, pending: 0, dropped: 6, lastError: null });
    assert.equal(received[0].body.window.index, 6, 'the oldest were dropped');
    assert.equal(received.at(-1).body.dropped, 5, "dropped before that snapshot closed");
    model.free();
  });

  test('beacon without navigator.sendBeacon (Node) falls back to fetch', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor();
    model.predict('x');
    received.length = 0;
    assert.equal((await monitor.flush(url, { token: 't', beacon: true })).sent, 1);
    assert.equal(received[0].headers.authorization, 'Bearer t');
    model.free();
  });

  test('a sink instead of a URL: resolved is delivered, a throw or a rejection keeps it queued, `rejected: true` drops it', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 7 });
    model.predict('first');
    monitor.snapshot();
    model.predict('second');
    const stored = new Map();
    let failures = ['a thrown error', 'a rejection'];
    const sink = (snapshot, json) => {
      if (failures.length) {
        const why = failures.shift();
        if (why.startsWith('a thrown')) throw new Error(why);
        return Promise.reject(new Error(why));
      }
      assert.deepEqual(JSON.parse(json), snapshot);
      stored.set(snapshot.id, snapshot);
      return new Promise((r) => setTimeout(r, 1)); // a store that takes time, like R2's put
    };
    for (const why of [...failures]) {
      assert.deepEqual(await monitor.flush(sink), { sent: 0, rejected: 0, pending: 2, dropped: 0,
        lastError: { status: 0, code: 'SINK_FAILED', message: why } });
    }
    assert.deepEqual(await monitor.flush(sink), { sent: 2, rejected: 0, pending: 0, dropped: 0, lastError: null });
    assert.deepEqual([...stored.values()].map((s) => s.seen), [1, 1], 'each window once, oldest first');
    model.predict('third');
    assert.equal((await monitor.flush(() => undefined)).sent, 1, 'a sink that returns no promise');
    // `rejected: true` on what is thrown: a snapshot the sink can never store is dropped and
    // counted, and the ones behind it are delivered in the same flush
    for (const n of [1, 2]) { model.predict(`window ${n}`); monitor.snapshot(); }
    const kept = [];
    let refused = false;
    const refusing = (snapshot) => {
      if (!refused) {
        refused = true;
        throw Object.assign(new Error('its key is too long'), { rejected: true });
      }
      kept.push(snapshot.seen);
    };
    assert.deepEqual(await monitor.flush(refusing), { sent: 1, rejected: 1, pending: 0, dropped: 0,
      lastError: { status: 0, code: 'SINK_REJECTED', message: 'its key is too long' } });
    assert.deepEqual(kept, [1], 'the window behind the refused one');
    // only `true` drops: anything else thrown, a string included, is retried
    for (const thrown of [Object.assign(new Error('maybe'), { rejected: 'yes' }), 'rejected']) {
      model.predict('again');
      const result = await monitor.flush(() => { throw thrown; });
      assert.equal(result.lastError.code, 'SINK_FAILED');
      assert.equal(result.pending, 1);
      assert.equal((await monitor.flush(() => undefined)).sent, 1);
    }
    model.free();
  });

  test('options of the wrong type, and a token that cannot be a header value, are refused before anything is taken', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 1 });
    model.predict(texts[0]);
    monitor.snapshot();
    model.predict(texts[1]);
    const bad = [{ closedOnly: 'false' }, { closedOnly: 0n }, { closedOnly: 1 }, { beacon: 'no' }, { beacon: {} },
      { token: 'a\nb' }, { token: 'é' }, { token: '\u2028' }, { token: 'a b' }, { token: '' }, { token: 'x'.repeat(4097) }];
    for (const options of bad) {
      for (const endpoint of [url, () => {}]) {
        await assert.rejects(monitor.flush(endpoint, options), { code: 'INVALID_INPUT' }, JSON.stringify(options, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)).slice(0, 50));
      }
    }
    assert.equal(monitor.pending, 1, 'nothing taken');
    assert.equal(monitor.seen, 1, 'the open window was not closed');
    received.length = 0;
    const token = 'x'.repeat(4096);
    assert.equal((await monitor.flush(url, { token, closedOnly: false, beacon: false })).sent, 2);
    assert.equal(received[0].headers.authorization, `Bearer ${token}`);
    model.free();
  });

  test('a sink that throws or returns hostile values: SINK_FAILED, the snapshots kept, 1,000 times', { timeout: 120_000 }, async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 5 });
    for (const text of texts.slice(0, 2)) {
      model.predict(text);
      monitor.snapshot();
    }
    const nasty = (key) => Object.defineProperty(new Error('x'), key, { get() { throw new Error(`${key} getter`); } });
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    const sinks = [
      () => { throw nasty('message'); },
      () => { throw nasty('cause'); },
      () => { throw new Proxy({}, { get() { throw new Error('trap'); } }); },
      () => { throw revoked; },
      () => Object.defineProperty(Promise.resolve(), 'constructor', { get() { throw new Error('constructor getter'); } }),
      () => ({ get then() { throw new Error('then getter'); } }),
      () => ({ then() { throw nasty('message'); } }),
      () => Promise.reject(nasty('cause')),
    ];
    for (let i = 0; i < 125; i++) {
      for (const sink of sinks) {
        const r = await monitor.flush(sink);
        assert.equal(r.lastError?.code, 'SINK_FAILED', String(sink));
        assert.equal(r.pending, 2, 'both snapshots kept');
      }
    }
    const got = [];
    assert.deepEqual(await monitor.flush((s) => got.push(s)), { sent: 2, rejected: 0, pending: 0, dropped: 0, lastError: null });
    assert.deepEqual(got.map((s) => s.stats.count), [1, 1]);
    model.free();
  });

  test('a patched fetch that resolves to an odd object, throws or never calls back: the snapshot kept; each POST carries a timeout', { timeout: 60_000 }, async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 6 });
    model.predict(texts[0]);
    const realFetch = globalThis.fetch;
    const signals = [];
    const timedOut = () => Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
    const fetches = [
      async () => ({}),
      async () => ({ get status() { throw new Error('status getter'); } }),
      async () => 42,
      () => { throw Object.defineProperty(new Error('x'), 'message', { get() { throw new Error('message getter'); } }); },
      () => Object.assign(Promise.resolve(new Response('{}', { status: 201 })), { then() { throw new Error('then'); } }),
      // What AbortSignal.timeout's abort gives: a collector that never answered.
      async (_, init) => { signals.push(init.signal); throw timedOut(); },
      async () => ({ status: 503, body: { getReader() { throw new Error('getReader'); } } }),
    ];
    try {
      for (let i = 0; i < 100; i++) {
        for (const f of fetches) {
          globalThis.fetch = f;
          const r = await monitor.flush(url);
          assert.equal(r.pending, 1, String(f));
          assert.ok(['NETWORK_ERROR', 'HTTP_503'].includes(r.lastError?.code), `${f}: ${JSON.stringify(r.lastError)}`);
        }
      }
    } finally {
      globalThis.fetch = realFetch;
    }
    assert.ok(signals.every((s) => s instanceof AbortSignal && !s.aborted), 'every POST has an AbortSignal.timeout');
    assert.equal(signals.length, 100);
    assert.equal((await monitor.flush(url)).sent, 1);
    model.free();
  });

  test('an endless answer is read no further than its first bytes', { timeout: 60_000 }, async () => {
    const chunk = Buffer.alloc(64 << 10, 'x');
    let status = 201;
    const endless = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.write(`{"code":"NEVER_READ","error":"`);
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
      });
    });
    await new Promise((r) => endless.listen(0, '127.0.0.1', r));
    const endlessUrl = `http://127.0.0.1:${endless.address().port}/v1/snapshots`;
    try {
      const model = Model.fromBytes(wordCase.bytes);
      const monitor = model.monitor({ seed: 7 });
      model.predict(texts[0]);
      status = 500;
      const kept = await monitor.flush(endlessUrl);
      assert.equal(kept.pending, 1);
      assert.equal(kept.lastError.code, 'HTTP_500', 'an answer over 4 KiB is not parsed');
      status = 201;
      assert.equal((await monitor.flush(endlessUrl)).sent, 1);
      model.free();
    } finally {
      endless.closeAllConnections();
      endless.close();
    }
  });

  test('a bad endpoint: INVALID_INPUT', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor();
    await assert.rejects(monitor.flush(42), (e) => e.code === 'INVALID_INPUT');
    await assert.rejects(monitor.flush(url, { token: 5 }), (e) => e.code === 'INVALID_INPUT');
    model.free();
  });

  test('an endpoint that is not an http(s) URL is refused at the call: the window stays for a later flush', async () => {
    const model = Model.fromBytes(wordCase.bytes);
    const monitor = model.monitor({ seed: 1 });
    model.predict(texts[0]);
    const bad = ['not a url', '/v1/snapshots', '', 'ftp://127.0.0.1/x', 'file:///tmp/snapshots', 'javascript:void 0',
      new URL('data:,x'), { href: 'mailto:ops@example.com' }, `not a url ${'x'.repeat(10 << 20)}`];
    for (const endpoint of bad) {
      for (const options of [undefined, { beacon: true }, { closedOnly: true }]) {
        await assert.rejects(monitor.flush(endpoint, options), (e) => {
          assert.equal(e.code, 'INVALID_INPUT', e.message.slice(0, 300));
          assert.match(e.message, /http\(s\) URL/);
          assert.ok(e.message.length < 500, `${e.message.length} characters`);
          return true;
        });
      }
    }
    assert.equal(monitor.pending, 0, 'nothing queued');
    assert.equal(monitor.seen, 1, 'the open window was not closed');
    const got = [];
    assert.deepEqual(await monitor.flush((s) => got.push(s)), { sent: 1, rejected: 0, pending: 0, dropped: 0, lastError: null });
    assert.equal(got[0].stats.count, 1, 'nothing lost');
    model.predict(texts[1]);
    received.length = 0;
    assert.equal((await monitor.flush(url.replace('http:', 'HTTP:'))).sent, 1, 'a scheme in capitals is http too');
    assert.equal(received.length, 1);
    model.free();
  });
});
