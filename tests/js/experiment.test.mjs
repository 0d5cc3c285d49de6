// `new Experiment(champion, challenger, options)` through the installed package in Node
// (issue #15): the served prediction is exactly the serving arm's, shadow pairs are compared,
// the canary assignment is sticky and pinned (the same hash as src/experiment.rs), feedback is
// matched through a bounded ring, snapshots add up, and bad options are coded refusals. On 10,000
// keys the canary stays within two points of the share and gives every key the same arm as Python.
// Ids cannot be guessed from one another; a followed arm that moves starts a window of its own,
// where the old version's labels are expired. `exp.flush` delivers the windows to a collector on
// 127.0.0.1 or a sink, as Monitor.flush does.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Experiment, Model } from 'skedge';
import { Experiment as LiteExperiment, Model as Lite } from 'skedge/lite';
import { loadCases } from './lib/cases.mjs';
import { code } from './lib/errors.mjs';

const cases = loadCases();
const byName = (name) => cases.find((c) => c.name === name);
const championCase = byName('lr_multinomial_3class_strings_fr');
const challengerCase = byName('ovr_lr_3class_fr');
const texts = championCase.expected.map((e) => e.text);

function pair() {
  return [Model.fromBytes(championCase.bytes), Model.fromBytes(challengerCase.bytes)];
}

test('shadow: the champion serves, sklearn-exact; every sampled text is also scored by the challenger and compared', () => {
  const [champion, challenger] = pair();
  const exp = new Experiment(champion, challenger, { mode: 'shadow', sampleRate: 1, seed: 7 });
  let agree = 0;
  let maxD = 0;
  const confusion = [0, 1, 2].map(() => [0, 0, 0]);
  const classes = champion.info().classes;
  championCase.expected.forEach((want, i) => {
    const r = exp.predict(want.text);
    assert.equal(r.arm, 'champion');
    assert.match(r.id, /^[0-9a-f]{32}$/);
    assert.equal(r.label, want.label);
    assert.deepEqual(r.decision, want.decision, `text ${i}: decision bit-identical to scikit-learn`);
    assert.deepEqual(r.shadow, challenger.predict(want.text));
    agree += r.label === r.shadow.label;
    confusion[classes.indexOf(r.label)][classes.indexOf(r.shadow.label)] += 1;
    maxD = Math.max(maxD, ...r.proba.map((p, j) => Math.abs(p - r.shadow.proba[j])));
  });
  const s = exp.snapshot();
  assert.equal(s.format, 'skedge-experiment-snapshot');
  assert.equal(s.seen, texts.length);
  assert.deepEqual(s.classes, classes);
  assert.equal(s.shadow.pairs, texts.length);
  assert.equal(s.shadow.agree, agree);
  assert.deepEqual(s.shadow.confusion, confusion);
  assert.equal(s.shadow.max_abs_dproba, maxD);
  assert.equal(s.arms[0].model.sha256, championCase.sha256hex);
  assert.equal(s.arms[1].model.sha256, challengerCase.sha256hex);
  assert.equal(s.arms[0].served, texts.length);
  assert.equal(s.arms[1].served, 0);
  assert.equal(s.arms[1].stats.count, texts.length, 'the challenger saw the same sampled texts');
  exp.free();
  champion.free();
  challenger.free();
});

test('shadow sampling: sampleRate 0 scores nothing with the challenger', () => {
  const [champion, challenger] = pair();
  const exp = new Experiment(champion, challenger, { sampleRate: 0 });
  for (const t of texts) assert.equal(exp.predict(t).shadow, null);
  assert.equal(exp.snapshot().shadow.pairs, 0);
});

test('canary: sticky per key, pinned across runtimes, near the share, each arm exact', () => {
  const [champion, challenger] = pair();
  const a = new Experiment(champion, challenger, { mode: 'canary', share: 0.3, salt: 'salt', seed: 1 });
  const b = new Experiment(champion, challenger, { mode: 'canary', share: 0.3, salt: 'salt', seed: 2 });
  let toChallenger = 0;
  for (let i = 0; i < 3000; i++) {
    const key = `user-${i}`;
    const text = texts[i % texts.length];
    const r = a.predict(text, { key });
    assert.equal(b.predict(text, { key }).arm, r.arm, 'the same key, the same arm, in any instance');
    const model = r.arm === 'champion' ? champion : challenger;
    assert.deepEqual({ label: r.label, decision: r.decision, proba: r.proba }, model.predict(text));
    toChallenger += r.arm === 'challenger';
  }
  assert.ok(toChallenger > 800 && toChallenger < 1000, `${toChallenger} of 3000 near 30 %`);
  // The hash is the contract of src/experiment.rs (its test pins the same values).
  const arm = (key, share) => new Experiment(champion, challenger, { mode: 'canary', share, salt: 'salt' }).predict('x', { key }).arm;
  assert.equal(arm('user-1', 0.2119), 'challenger');
  assert.equal(arm('user-1', 0.2118), 'champion');
  assert.equal(arm('é', 0.5543), 'challenger');
  assert.equal(arm('é', 0.5542), 'champion');
  const s = a.snapshot();
  assert.equal(s.shadow, null);
  assert.equal(s.arms[0].served + s.arms[1].served, 3000);
  assert.equal(s.arms[1].served, toChallenger);
});

// sha256 of the 10,000 arms of keys `client-0` … `client-9999` with salt `rollout-7` ("1" for the
// challenger), per share: tests/python/test_experiment.py pins the same digests, and checks them
// against FORMAT.md's xxh64 formula recomputed from xxhash's spec.
const CANARY_10K = {
  0.05: [501, '809fad1328571cc15d8e8f6db4e2063a7712c7510ab809bcfbe65767ef631297'],
  0.5: [5022, '302889647809ebfaa4308599cdbda0998f077811d718c8238a2aa084d1330bc0'],
};

test('canary on 10,000 keys: within two points of the share, sticky across instances, the same arms as Python', () => {
  const [champion, challenger] = pair();
  const keys = Array.from({ length: 10_000 }, (_, i) => `client-${i}`);
  for (const [share, [count, digest]] of Object.entries(CANARY_10K)) {
    const arms = (seed) => {
      const exp = new Experiment(champion, challenger, { mode: 'canary', share: Number(share), salt: 'rollout-7', seed });
      const served = keys.map((key) => (exp.predict('un film', { key }).arm === 'challenger' ? '1' : '0')).join('');
      assert.equal(exp.snapshot().arms[1].served, count);
      return served;
    };
    const served = arms(1);
    assert.equal(arms(2), served, 'another instance assigns every key the same arm');
    const n = [...served].filter((c) => c === '1').length;
    assert.ok(Math.abs(n / keys.length - Number(share)) <= 0.02, `${n} of 10,000 within two points of ${share}`);
    assert.deepEqual([n, createHash('sha256').update(served).digest('hex')], [count, digest]);
  }
});

test('feedback: counted per arm once, expired beyond the ring, unknown ids counted, bad labels refused', () => {
  const [champion, challenger] = pair();
  const exp = new Experiment(champion, challenger, { feedbackCapacity: 2, seed: 3 });
  const rs = texts.slice(0, 3).map((t) => exp.predict(t));
  assert.equal(exp.feedback(rs[0].id, rs[0].label), 'expired');
  assert.equal(exp.feedback(rs[2].id, rs[2].label), 'counted');
  assert.equal(exp.feedback(rs[2].id, rs[2].label), 'duplicate');
  assert.equal(exp.feedback('0'.repeat(32), rs[1].label), 'unknown');
  assert.equal(code(() => exp.feedback(rs[1].id, 'no such class')), 'INVALID_INPUT');
  assert.equal(code(() => exp.feedback('not an id', rs[1].label)), 'INVALID_INPUT');
  assert.equal(code(() => exp.feedback(rs[1].id, {})), 'INVALID_INPUT');
  const s = exp.snapshot();
  assert.equal(s.arms[0].feedback.count, 1);
  assert.equal(s.arms[0].feedback.correct, 1);
  assert.equal(s.arms[1].feedback.count, 1, 'the challenger scored the text in shadow: its label is judged too');
  assert.equal(s.arms[1].feedback.correct, Number(rs[2].shadow.label === rs[2].label));
  assert.deepEqual([s.feedback_expired, s.feedback_unknown, s.feedback_duplicate], [1, 1, 1]);
});

test('ids: a sequence number and its keyed hash; a forged, altered or foreign id is unknown', () => {
  const [champion, challenger] = pair();
  const exp = new Experiment(champion, challenger, { seed: 3 });
  const [theirs, mine] = texts.slice(0, 2).map((t) => exp.predict(t));
  const wrong = (r) => champion.info().classes.find((c) => c !== r.label);
  // The neighbours of my id (either half one less): not another user's id.
  const less = (hex) => (BigInt(`0x${hex}`) - 1n).toString(16).padStart(16, '0');
  assert.equal(exp.feedback(mine.id.slice(0, 16) + less(mine.id.slice(16)), wrong(theirs)), 'unknown');
  assert.equal(exp.feedback(less(mine.id.slice(0, 16)) + mine.id.slice(16), wrong(theirs)), 'unknown');
  assert.deepEqual([theirs.id.slice(0, 16), mine.id.slice(0, 16)], ['0'.repeat(16), '0'.repeat(15) + '1']);
  // Their sequence number beside my hash, or their hash with one bit flipped: not an id.
  assert.equal(exp.feedback(theirs.id.slice(0, 16) + mine.id.slice(16), wrong(theirs)), 'unknown');
  const flipped = (BigInt(`0x${theirs.id.slice(16)}`) ^ 1n).toString(16).padStart(16, '0');
  assert.equal(exp.feedback(theirs.id.slice(0, 16) + flipped, wrong(theirs)), 'unknown');
  // Another instance with the same seed gives the same sequence numbers under another key.
  const other = new Experiment(champion, challenger, { seed: 3 }).predict(texts[0]);
  assert.equal(other.id.slice(0, 16), theirs.id.slice(0, 16));
  assert.notEqual(other.id, theirs.id);
  assert.equal(exp.feedback(other.id, wrong(theirs)), 'unknown');
  assert.equal(exp.feedback(theirs.id, theirs.label), 'counted');
  const s = exp.snapshot();
  assert.equal(s.feedback_unknown, 5);
  assert.deepEqual([s.arms[0].feedback.count, s.arms[0].feedback.correct], [1, 1], 'no forged label was counted');
  exp.free();
});

test('a followed arm that moves: labels of the old version are expired, the new window has its own statistics', { timeout: 20_000 }, async () => {
  // An R2-like bucket (Model.follow({ bucket, key })) whose challenger pointer moves from v2 (a
  // logistic regression) to v3 (LinearSVC: no predict_proba), both with the champion's classes.
  const objects = new Map();
  const bucket = {
    async get(key, options) {
      const body = objects.get(key);
      if (!body) return null;
      const etag = createHash('sha256').update(body).digest('hex');
      if (options?.onlyIf?.etagDoesNotMatch === etag) return { etag, size: body.length };
      return { etag, size: body.length, text: async () => Buffer.from(body).toString('utf8'), arrayBuffer: async () => new Uint8Array(body).buffer };
    },
  };
  let previous = '';
  const publish = (c, generation) => {
    objects.set(`blobs/sha256/${c.sha256hex}.skedge`, c.bytes);
    objects.set('pointers/m/challenger.json', Buffer.from(JSON.stringify({
      pointer_version: 1, model: 'm', alias: 'challenger', version: String(generation), run_id: '',
      sha256: c.sha256hex, size: c.bytes.length, integrity: `sha256-${c.sha256b64}`,
      blob: `blobs/sha256/${c.sha256hex}.skedge`, manifest: `blobs/sha256/${c.sha256hex}.manifest.json`,
      format_version: 3, generation, previous_sha256: previous, previous_generation: generation - 1,
      published_at: '2026-12-03T00:00:00Z', signature: null,
    })));
    previous = c.sha256hex;
  };
  const v3Case = byName('linearsvc_multiclass_fr');
  publish(challengerCase, 1);
  let moved;
  const move = new Promise((r) => (moved = r));
  const handle = await Model.follow({ bucket, key: 'pointers/m/challenger.json' }, { intervalSeconds: 0.05, onUpdate: () => moved() });
  const champion = Model.fromBytes(championCase.bytes);
  const exp = new Experiment(champion, handle, { mode: 'canary', share: 1, seed: 1 });
  const old = texts.slice(0, 5).map((t) => exp.predict(t));
  assert.ok(old.every((r) => r.arm === 'challenger'));
  publish(v3Case, 2);
  // The handle's poll timer does not hold the event loop (nor does this bucket): a timer of our own does.
  let timer;
  await Promise.race([move, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no update in 10 s')), 10_000)))]);
  clearTimeout(timer);
  const fresh = exp.predict(texts[5]); // the first call after the move closes v2's window
  for (const r of old) assert.equal(exp.feedback(r.id, r.label), 'expired', "v2's prediction is no evidence about v3");
  assert.equal(exp.feedback(old[0].id, old[0].label), 'duplicate');
  assert.equal(exp.feedback(fresh.id, fresh.label), 'counted');
  const [closed] = exp.takePending();
  assert.deepEqual([closed.arms[1].model.sha256, closed.arms[1].served, closed.arms[1].feedback.count],
    [challengerCase.sha256hex, 5, 0]);
  const open = exp.snapshot();
  assert.deepEqual([open.arms[1].model.sha256, open.arms[1].served, open.arms[1].feedback.count, open.feedback_expired],
    [v3Case.sha256hex, 1, 1, 5]);
  // v3 has no predict_proba: its window has no confidence histogram (one of zeros would not add up
  // to the count, and a collector refuses it), while v2's window kept its own.
  assert.ok(Array.isArray(closed.arms[1].stats.confidence));
  for (const a of open.arms) assert.equal(a.stats.confidence, null);
  assert.equal(open.arms[1].stats.label_counts.reduce((x, y) => x + y), open.arms[1].stats.count);
  exp.free();
  handle.dispose();
});

test('bad options, mismatched classes, freed models and skedge/lite are coded refusals', () => {
  const [champion, challenger] = pair();
  const binary = Model.fromBytes(byName('word_tfidf_lr_binary').bytes);
  for (const options of [
    'shadow',
    { mode: 'sideways' },
    { mode: 'canary' },
    { mode: 'canary', share: 1.5 },
    { share: 0.1 },
    { mode: 'canary', share: 0.1, sampleRate: 0.5 },
    { sampleRate: -1 },
    { feedbackCapacity: 0 },
    { feedbackCapacity: 2 ** 21 },
    { windowSeconds: 0 },
    { sampelRate: 0.1 },
  ]) {
    assert.equal(code(() => new Experiment(champion, challenger, options)), 'INVALID_INPUT', JSON.stringify(options));
  }
  assert.equal(code(() => new Experiment(champion, binary)), 'INVALID_INPUT');
  assert.equal(code(() => new Experiment(champion, {})), 'INVALID_INPUT');
  const exp = new Experiment(champion, challenger);
  assert.equal(code(() => exp.predict(42)), 'INVALID_INPUT');
  assert.equal(code(() => exp.predict('x', { kee: 'a' })), 'INVALID_INPUT');
  assert.equal(code(() => exp.predict('x', { key: 5 })), 'INVALID_INPUT');
  challenger.free();
  assert.equal(code(() => exp.predict('x')), 'MODEL_FREED');
  exp.free();
  assert.equal(code(() => exp.snapshot()), 'MODEL_FREED');
  const lite = Lite.fromBytes(championCase.bytes);
  assert.equal(code(() => new LiteExperiment(lite, lite)), 'FEATURE_UNAVAILABLE');
});

test('a model with more classes than a window can carry is refused: 112 in shadow mode, 137 in canary mode', () => {
  // The 3-class MultinomialNB fixture with 113 classes, packed by the CLI.
  const ROOT = process.env.SKEDGE_ROOT;
  const doc = JSON.parse(readFileSync(join(ROOT, 'tests', 'fixtures', 'cases', 'count_multinomialnb_3class_fr.interchange.json'), 'utf8'));
  const clf = doc.pipeline.classifier;
  const n = 113;
  clf.classes = Array.from({ length: n }, (_, i) => `c${i}`);
  clf.coef = Array.from({ length: n }, (_, i) => clf.coef[i % 3]);
  clf.intercept = Array.from({ length: n }, (_, i) => clf.intercept[i % 3]);
  const dir = mkdtempSync(join(tmpdir(), 'skedge-many-'));
  try {
    writeFileSync(join(dir, 'many.json'), JSON.stringify(doc));
    execFileSync(join(ROOT, 'target', 'release', 'skedge'), ['pack', join(dir, 'many.json'), '-o', join(dir, 'many.skedge')]);
    const model = Model.fromBytes(readFileSync(join(dir, 'many.skedge')));
    assert.throws(() => new Experiment(model, model), (e) => e.name === 'SkedgeError' && e.code === 'INVALID_INPUT' &&
      /113 classes is too large for a shadow experiment \(at most 112 classes\)/.test(e.message));
    const exp = new Experiment(model, model, { mode: 'canary', share: 0.5 });
    exp.predict('un livre');
    assert.equal(exp.snapshot().classes.length, n);
    exp.free();
    model.free();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('windows close by themselves and queue their snapshots', async () => {
  const [champion, challenger] = pair();
  const exp = new Experiment(champion, challenger, { windowSeconds: 0.05 });
  exp.predict(texts[0]);
  await new Promise((r) => setTimeout(r, 80));
  exp.predict(texts[1]);
  const pending = exp.takePending();
  assert.equal(pending.length, 1);
  assert.equal(pending[0].seen, 1);
  assert.equal(exp.snapshot().seen, 1);
});

// Delivery (`exp.flush`) is Monitor.flush's code (src/wasm/monitor.rs), over the experiment's
// queue: a collector double on 127.0.0.1 answering with the next status of `plan` (then 201).
describe('experiment: flush', () => {
  let server;
  let url;
  let plan = [];
  const received = [];
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(body) });
        const [status, answer] = [].concat(plan.length ? plan.shift() : 201, '{}');
        res.writeHead(status, { 'content-type': 'application/json' }).end(answer);
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${server.address().port}/v1/snapshots`;
  });
  after(() => new Promise((r) => server.close(r)));

  const ok = (sent) => ({ sent, rejected: 0, pending: 0, dropped: 0, lastError: null });

  test('POSTs the windows with the bearer token; 201 and 409 are sent; nothing new, nothing sent', async () => {
    const [champion, challenger] = pair();
    const exp = new Experiment(champion, challenger, { seed: 1 });
    const r = exp.predict(texts[0]);
    exp.feedback(r.id, r.label);
    received.length = 0;
    plan = [201];
    assert.deepEqual(await exp.flush(url, { token: 'tok' }), ok(1));
    assert.equal(received[0].headers.authorization, 'Bearer tok');
    assert.match(received[0].headers['content-type'], /^application\/json/);
    assert.equal(received[0].body.format, 'skedge-experiment-snapshot');
    assert.equal(received[0].body.arms[0].feedback.correct, 1);
    assert.deepEqual(await exp.flush(url, { token: 'tok' }), ok(0));
    exp.feedback('0'.repeat(32), r.label);
    plan = [409];
    assert.deepEqual(await exp.flush(new URL(url)), ok(1), 'ignored feedback is reported; 409: already stored');
    assert.equal(received.at(-1).body.feedback_unknown, 1);
    exp.free();
  });

  test('5xx, 401, 429 and network errors keep windows in order; another 4xx drops', async () => {
    const [champion, challenger] = pair();
    const exp = new Experiment(champion, challenger, { seed: 2 });
    exp.predict(texts[0]);
    exp.snapshot();
    exp.predict(texts[1]);
    received.length = 0;
    plan = [503];
    assert.deepEqual(await exp.flush(url), { sent: 0, rejected: 0, pending: 2, dropped: 0,
      lastError: { status: 503, code: 'HTTP_503', message: 'the collector answered 503' } });
    assert.equal(received.length, 1, 'stops at the first failure');
    const down = await exp.flush('http://127.0.0.1:9/nothing-listens-here');
    assert.deepEqual([down.pending, down.lastError.status, down.lastError.code], [2, 0, 'NETWORK_ERROR']);
    plan = [[401, '{"code":"TOKEN_INVALID","error":"wrong token"}']];
    assert.deepEqual(await exp.flush(url, { token: 'wrong' }), { sent: 0, rejected: 0, pending: 2, dropped: 0,
      lastError: { status: 401, code: 'TOKEN_INVALID', message: 'wrong token' } });
    plan = [201, 429];
    exp.predict(texts[2]);
    assert.deepEqual(await exp.flush(url), { sent: 1, rejected: 0, pending: 2, dropped: 0,
      lastError: { status: 429, code: 'HTTP_429', message: 'the collector answered 429' } });
    received.length = 0;
    plan = [422, 201];
    assert.deepEqual(await exp.flush(url), { sent: 1, rejected: 1, pending: 0, dropped: 0,
      lastError: { status: 422, code: 'HTTP_422', message: 'the collector answered 422' } });
    assert.equal(received.length, 2);
    assert.ok(received[0].body.window.index < received[1].body.window.index, 'oldest first');
    assert.equal(exp.pending, 0);
    exp.free();
  });

  test('the queue is bounded: 64 windows, older ones dropped and counted', async () => {
    const [champion, challenger] = pair();
    const exp = new Experiment(champion, challenger, { seed: 3 });
    for (let i = 0; i < 70; i++) {
      exp.predict(`text ${i}`);
      exp.snapshot();
    }
    assert.deepEqual([exp.pending, exp.dropped], [64, 6]);
    received.length = 0;
    assert.deepEqual(await exp.flush(url), { sent: 64, rejected: 0, pending: 0, dropped: 6, lastError: null });
    assert.equal(received[0].body.window.index, 6, 'the oldest were dropped');
    assert.equal(received.at(-1).body.dropped, 5, 'dropped before that window closed');
    exp.free();
  });

  test('closedOnly leaves the open window open; an expired window is sent alone', async () => {
    const [champion, challenger] = pair();
    // A second-long window: the closedOnly flush below comes well within it, even on a busy machine.
    const exp = new Experiment(champion, challenger, { windowSeconds: 1, seed: 4 });
    const got = [];
    const sink = (snapshot) => { got.push(snapshot.seen); };
    exp.predict(texts[0]);
    await new Promise((r) => setTimeout(r, 1100));
    assert.deepEqual(await exp.flush(sink, { closedOnly: true }), ok(1));
    assert.deepEqual(got, [1], 'no empty window after the expired one');
    exp.predict(texts[1]);
    assert.deepEqual(await exp.flush(sink, { closedOnly: true }), ok(0));
    assert.equal(exp.snapshot().seen, 1, 'the open window kept its prediction');
    assert.deepEqual(await exp.flush(sink), ok(1));
    exp.free();
  });

  test('a sink: resolved is delivered, a throw or a rejection keeps the window queued', async () => {
    const [champion, challenger] = pair();
    const exp = new Experiment(champion, challenger, { seed: 5 });
    exp.predict(texts[0]);
    exp.snapshot();
    exp.predict(texts[1]);
    const stored = [];
    const failures = ['a thrown error', 'a rejection'];
    const sink = (snapshot, json) => {
      if (failures.length) {
        const why = failures.shift();
        if (why.startsWith('a thrown')) throw new Error(why);
        return Promise.reject(new Error(why));
      }
      assert.deepEqual(JSON.parse(json), snapshot);
      stored.push(snapshot);
      return new Promise((r) => setTimeout(r, 1)); // a store that takes time, like R2's put
    };
    for (const why of [...failures]) {
      assert.deepEqual(await exp.flush(sink), { sent: 0, rejected: 0, pending: 2, dropped: 0,
        lastError: { status: 0, code: 'SINK_FAILED', message: why } });
    }
    assert.deepEqual(await exp.flush(sink), ok(2));
    assert.deepEqual(stored.map((s) => s.window.index), [0, 1], 'each window once, oldest first');
    exp.free();
  });

  test('a bad endpoint or token: INVALID_INPUT; a freed experiment: MODEL_FREED', async () => {
    const [champion, challenger] = pair();
    const exp = new Experiment(champion, challenger);
    exp.predict(texts[0]);
    await assert.rejects(exp.flush(42), (e) => e.code === 'INVALID_INPUT');
    await assert.rejects(exp.flush(url, { token: 5 }), (e) => e.code === 'INVALID_INPUT');
    assert.equal(exp.pending, 0, 'nothing was taken from the queue');
    exp.free();
    await assert.rejects(exp.flush(url), (e) => e.code === 'MODEL_FREED');
  });

  test('an endpoint that is not an http(s) URL is refused at the call: the window stays for a later flush', async () => {
    const [champion, challenger] = pair();
    const exp = new Experiment(champion, challenger, { seed: 1 });
    exp.predict(texts[0]);
    for (const endpoint of ['not a url', '/v1/snapshots', 'ftp://127.0.0.1/x', { href: 'file:///tmp/x' }]) {
      await assert.rejects(exp.flush(endpoint), (e) => e.code === 'INVALID_INPUT' && /http\(s\) URL/.test(e.message));
    }
    assert.equal(exp.pending, 0, 'nothing queued');
    const got = [];
    assert.equal((await exp.flush((s) => got.push(s))).sent, 1);
    assert.equal(got[0].seen, 1, 'nothing lost');
    exp.free();
  });
});
