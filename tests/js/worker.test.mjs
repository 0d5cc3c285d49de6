// The Cloudflare Worker example (examples/worker) under real workerd: `wrangler dev` on 127.0.0.1
// bundles it with the installed package (export condition `workerd`, .wasm as CompiledWasm, the
// artifact as a Data module). Health, parity of the bundled model and of every fixture case
// (served from local R2 through the MODELS binding), error statuses, a bounded load test; then a
// second instance of the example with a decryption key secret (.dev.vars) and a pinned public key
// serving the sealed golden artifact and refusing every other one with its code; then a third
// following a signed pointer in local R2 (POINTER_KEY) from generation 1 to 2 while it runs; then
// champion and challenger (two followed pointers, an Experiment) in canary and in shadow mode, and
// its closed windows written to an R2 bucket bound as SNAPSHOTS (exp.flush with a sink).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Experiment, Model } from 'skedge';
import { loadCases, assertParity, mismatch } from './lib/cases.mjs';
import { freePort } from './lib/services.mjs';

const ROOT = process.env.SKEDGE_ROOT;
const TMP = process.env.SKEDGE_TMP;
const dir = fileURLToPath(new URL('./examples/worker/', import.meta.url));
const wrangler = join(ROOT, 'node_modules', '.bin', 'wrangler');
const env = { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' };
const state = join(TMP, 'wrangler-state');
const cases = loadCases();
const wordCase = cases.find((c) => c.name === 'word_tfidf_lr_binary') ?? cases[0];
const LOAD_SECONDS = Number(process.env.SKEDGE_LOAD_SECONDS ?? 10);

let dev;
let base;
let log = '';

async function post(path, body, raw = false) {
  const r = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ? body : JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

/** Puts `objects` ([{ key, file }]) into the local R2 bucket skedge-models of `persist`. */
function r2Put(cwd, persist, objects, listFile) {
  writeFileSync(listFile, JSON.stringify(objects));
  const put = spawnSync(wrangler, ['r2', 'bulk', 'put', 'skedge-models', '--filename', listFile, '--local', '--persist-to', persist],
    { cwd, env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(put.status, 0, `wrangler r2 bulk put: ${put.stdout}${put.stderr}`);
}

/** `wrangler dev` of the Worker in `cwd` on a free port; resolves once `probe` answers. */
async function startDev(cwd, persist, probe = '/health', vars = {}, args = []) {
  const port = await freePort();
  const inspector = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const p = spawn(wrangler, ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', persist, '--log-level', 'warn', '--show-interactive-dev-session=false',
    ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]), ...args],
  { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  p.stdout.on('data', (d) => (log += d));
  p.stderr.on('data', (d) => (log += d));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`wrangler dev exited ${p.exitCode}:\n${log}`);
    try {
      const r = await fetch(`${url}${probe}`);
      await r.body?.cancel();
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`wrangler dev did not answer within 120 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return { p, url };
}

async function stopDev(p) {
  if (p && p.exitCode === null) {
    // wrangler and the workerd it started share the process group we created.
    try { process.kill(-p.pid, 'SIGTERM'); } catch {}
    const t = setTimeout(() => { try { process.kill(-p.pid, 'SIGKILL'); } catch {} }, 5000);
    await new Promise((r) => p.once('exit', r));
    clearTimeout(t);
  }
}

const FLUSH_TOKEN = 'flush-token-0d1e';
const GOLDEN = join(ROOT, 'tests', 'golden');
const SKEDGE = join(ROOT, 'target', 'release', 'skedge');
const SIGN_KEY = join(GOLDEN, 'test-signing.key');
const hash = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** `file` published as generation `generation` of pointers/<model>/<alias>.json, as
 * scripts/sync.py does (FORMAT.md §5) and signed by the CLI (the one encoder): the R2 objects of
 * its blob and its pointer, under fleet/. */
function publish(work, file, generation, previous, model = 'tiny', alias = 'production') {
  const sha = hash(file);
  const path = join(work, `pointer-${model}-${alias}-${generation}.json`);
  writeFileSync(path, JSON.stringify({
    pointer_version: 1, model, alias, version: String(generation), run_id: '', sha256: sha,
    size: readFileSync(file).length, integrity: `sha256-${Buffer.from(sha, 'hex').toString('base64')}`,
    blob: `blobs/sha256/${sha}.skedge`, manifest: `blobs/sha256/${sha}.manifest.json`, format_version: 3, generation,
    previous_sha256: previous, previous_generation: generation - 1, published_at: '2026-12-03T00:00:00Z', signature: null,
  }));
  const signed = spawnSync(SKEDGE, ['sign-pointer', path, '--sign-key', SIGN_KEY]);
  assert.equal(signed.status, 0, String(signed.stderr));
  writeFileSync(path, signed.stdout);
  return [{ key: `fleet/blobs/sha256/${sha}.skedge`, file }, { key: `fleet/pointers/${model}/${alias}.json`, file: path }];
}

/** A fixture case packed and signed with the test key, as the pointers' public key requires. */
function packSigned(work, name) {
  const out = join(work, `${name}.skedge`);
  const pack = spawnSync(SKEDGE, ['pack', join(ROOT, `tests/fixtures/cases/${name}.interchange.json`), '-o', out, '--sign-key', SIGN_KEY], { encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  return out;
}

before(async () => {
  copyFileSync(wordCase.artifact, join(dir, 'model.skedge'));
  // Every case into local R2 (bucket skedge-models), for ?model=<case>.skedge, and an object that
  // is not a model.
  const junk = join(TMP, 'junk.skedge');
  writeFileSync(junk, 'not a model');
  r2Put(dir, state, [...cases.map((c) => ({ key: `${c.name}.skedge`, file: c.artifact })), { key: 'junk.skedge', file: junk },
    { key: 'unlisted.skedge', file: wordCase.artifact }], join(TMP, 'r2-objects.json'));
  // Monitoring on, towards a closed port: windows of an hour never close during the test.
  ({ p: dev, url: base } = await startDev(dir, state, '/health', {
    MODEL_KEYS: [...cases.map((c) => `${c.name}.skedge`), 'junk.skedge', 'absent.skedge'].join(','),
    MONITOR_URL: 'http://127.0.0.1:9/v1/snapshots', MONITOR_TOKEN: FLUSH_TOKEN,
    MONITOR_SAMPLE_RATE: '1', MONITOR_WINDOW_SECONDS: '3600',
  }));
});

after(async () => {
  await stopDev(dev);
});

test('worker: GET /health describes the bundled model', async () => {
  const r = await fetch(`${base}/health`);
  const body = await r.json();
  assert.equal(r.status, 200);
  assert.equal(body.status, 'ok');
  assert.equal(body.model.sha256, wordCase.sha256hex);
});

test('worker: POST /predict equals scikit-learn (bundled Data module)', async () => {
  const one = await post('/predict', { text: wordCase.expected[0].text });
  assert.equal(one.status, 200);
  assertParity({ ...wordCase, expected: wordCase.expected.slice(0, 1) }, [one.body]);
  const all = await post('/predict', { texts: wordCase.expected.map((e) => e.text) });
  assert.equal(all.status, 200);
  assertParity(wordCase, all.body.predictions);
});

test('worker: parity on every case, from R2 through the MODELS binding', async (t) => {
  let n = 0;
  for (const c of cases) {
    const r = await post(`/predict?model=${c.name}.skedge`, { texts: c.expected.map((e) => e.text) });
    assert.equal(r.status, 200, `${c.name}: ${JSON.stringify(r.body).slice(0, 300)}`);
    n += assertParity(c, r.body.predictions);
  }
  t.diagnostic(`${n} predictions of ${cases.length} cases equal scikit-learn's in workerd`);
});

test('worker: explain and error statuses', async () => {
  const ex = await post('/predict', { text: 'great food, terrible wait', explain: 3 });
  assert.equal(ex.status, 200);
  assert.ok(ex.body.features.length > 0 && ex.body.features[0].spans.length > 0);
  const cases = [
    [await post('/predict', '{not json', true), 400, 'INVALID_INPUT'],
    [await post('/predict', { text: 5 }), 400, 'INVALID_INPUT'],
    [await post('/predict', { texts: 'abc' }), 400, 'INVALID_INPUT'],
    [await post('/predict', { nothing: true }), 400, 'INVALID_INPUT'],
    [await post('/predict', { text: 'x'.repeat(16 * 1024 * 1024 + 1) }), 413, 'INPUT_TOO_LARGE'],
    [await post('/predict?model=missing.skedge', { text: 'x' }), 404, 'MODEL_NOT_FOUND'],
  ];
  for (const [r, status, code] of cases) {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.error.code, code);
  }
  const get = await fetch(`${base}/predict`);
  assert.equal(get.status, 405);
  await get.body?.cancel();
});

test('worker: the bundled model and its monitor survive any number of R2 models', async () => {
  const before = (await (await fetch(`${base}/health`)).json()).monitoring;
  assert.ok(before && before.seen >= 0, 'monitoring is on');
  const texts = ['great food', 'terrible service', 'fine'];
  assert.equal((await post('/predict', { texts })).status, 200);
  for (const c of cases.slice(0, 12)) {
    assert.equal((await post(`/predict?model=${c.name}.skedge`, { text: 'x' })).status, 200);
  }
  const after = (await (await fetch(`${base}/health`)).json()).monitoring;
  assert.equal(after.seen, before.seen + texts.length, 'the open window was lost');
});

test('worker: ?model= takes configured keys only; missing keys and non-models answer alike', async () => {
  const answers = [];
  for (const key of ['unlisted.skedge', 'absent.skedge', 'junk.skedge', '../x', 'k'.repeat(300)]) {
    const r = await post(`/predict?model=${encodeURIComponent(key)}`, { text: 'x' });
    answers.push(JSON.stringify([r.status, r.body]));
  }
  assert.deepEqual(new Set(answers), new Set([JSON.stringify([404, { error: { code: 'MODEL_NOT_FOUND', message: 'no such model' } }])]));
});

test('worker: /monitor/flush needs the token', async () => {
  const flush = (headers) => fetch(`${base}/monitor/flush`, { method: 'POST', headers });
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: FLUSH_TOKEN }]) {
    const r = await flush(headers);
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.code, 'UNAUTHORIZED');
  }
  // With the token the flush runs: towards the closed port the window stays pending (503).
  const ok = await flush({ authorization: `Bearer ${FLUSH_TOKEN}` });
  const result = await ok.json();
  assert.ok([200, 503].includes(ok.status), JSON.stringify(result));
  assert.equal(typeof result.pending, 'number');
});

test('worker: bounded inputs; a bad body is a JSON 400, never a 500', async () => {
  const big = JSON.stringify({ texts: Array.from({ length: 17 * 1024 }, () => 'x'.repeat(1024)) });
  const cases = [
    [await post('/predict', big, true), 413, 'INPUT_TOO_LARGE'],
    [await post('/predict', { texts: Array.from({ length: 1001 }, () => 'a') }), 413, 'INPUT_TOO_LARGE'],
    [await post('/predict', { text: 'a '.repeat(40 * 1024), explain: 5 }), 413, 'INPUT_TOO_LARGE'],
    [await post('/predict', { text: 'good', explain: 1000 }), 400, 'INVALID_INPUT'],
    [await post('/predict', { text: 'good', explain: 'all' }), 400, 'INVALID_INPUT'],
    [await post('/predict', { texts: [1, 2] }), 400, 'INVALID_INPUT'],
    [await post('/predict', { texts: [null] }), 400, 'INVALID_INPUT'],
    [await post('/predict', '', true), 400, 'INVALID_INPUT'],
    [await post('/predict', 'null', true), 400, 'INVALID_INPUT'],
    [await post('/predict', '[]', true), 400, 'INVALID_INPUT'],
    [await post('/predict', { text: 'good', texts: ['bad'] }), 400, 'INVALID_INPUT'],
  ];
  for (const [r, status, code] of cases) {
    assert.equal(r.status, status, JSON.stringify(r.body).slice(0, 300));
    assert.equal(r.body.error.code, code);
    assert.ok(!/\bat\b.*:\d+:\d+/.test(r.body.error.message), 'no stack trace');
  }
  const none = await fetch(`${base}/predict`, { method: 'POST' });
  assert.equal(none.status, 400);
  assert.equal((await none.json()).error.code, 'INVALID_INPUT');
  const ok = await post('/predict', { text: 'great food, terrible wait', explain: 50 });
  assert.equal(ok.status, 200);
});

test(`worker: load test on loopback (${LOAD_SECONDS} s, 10 connections): no errors`, async (t) => {
  const autocannon = createRequire(join(ROOT, 'package.json'))('autocannon');
  const result = await autocannon({
    url: `${base}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'The food was great and the service friendly, but the wait was terrible.' }),
    connections: 10,
    duration: LOAD_SECONDS,
    timeout: 10,
  });
  const summary = {
    seconds: LOAD_SECONDS,
    connections: 10,
    requests: result.requests.total,
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
  };
  writeFileSync(join(TMP, 'loadtest.json'), JSON.stringify(summary, null, 2));
  t.diagnostic(`load test: ${summary.requests} requests, ${summary.requestsPerSecond} req/s, p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms, errors ${summary.errors}, non-2xx ${summary.non2xx}`);
  assert.ok(summary.requests > 0);
  assert.equal(summary.errors, 0);
  assert.equal(summary.timeouts, 0);
  assert.equal(summary.non2xx, 0);
});

test('worker: signed and encrypted model, key from a secret binding; refusals carry codes', async (t) => {
  await stopDev(dev); // one workerd at a time on this machine
  const golden = join(ROOT, 'tests', 'golden');
  // A copy of the example (inside the app, so `skedge` resolves), bundling the sealed golden, with
  // the decryption key as a local secret (.dev.vars) and the public key pinned.
  const sealedDir = join(dir, '..', 'worker-sealed');
  mkdirSync(sealedDir, { recursive: true });
  cpSync(join(dir, 'src'), join(sealedDir, 'src'), { recursive: true });
  copyFileSync(join(dir, 'wrangler.toml'), join(sealedDir, 'wrangler.toml'));
  copyFileSync(join(golden, 'tiny.signed-encrypted.skedge'), join(sealedDir, 'model.skedge'));
  const line = (f) => readFileSync(join(golden, f), 'utf8').trim();
  writeFileSync(join(sealedDir, '.dev.vars'),
    `SKEDGE_DECRYPTION_KEY="${line('test-encryption.key')}"\nSKEDGE_PUBLIC_KEY="${line('test-signing.pub')}"\n`);

  // R2 holds what an attacker (or a mistake) could put there.
  const work = join(TMP, 'sealed-artifacts');
  mkdirSync(work, { recursive: true });
  const flipped = new Uint8Array(readFileSync(join(golden, 'tiny.signed-encrypted.skedge')));
  flipped[flipped.length - 100] ^= 1;
  writeFileSync(join(work, 'flipped.skedge'), flipped);
  const skedge = join(ROOT, 'target', 'release', 'skedge');
  const keygen = spawnSync(skedge, ['keygen', '--encryption', join(work, 'other')], { encoding: 'utf8' });
  assert.equal(keygen.status, 0, keygen.stderr);
  const interchange = join(ROOT, 'tests', 'fixtures', 'cases', `${wordCase.name}.interchange.json`);
  const pack = spawnSync(skedge, ['pack', interchange, '-o', join(work, 'other-key.skedge'),
    '--sign-key', join(golden, 'test-signing.key'), '--encrypt-key', join(work, 'other.key')], { encoding: 'utf8' });
  assert.equal(pack.status, 0, pack.stderr);
  const sealedState = join(TMP, 'wrangler-sealed-state');
  r2Put(sealedDir, sealedState, [
    { key: 'plain.skedge', file: join(golden, 'tiny.skedge') },
    { key: 'signed-only.skedge', file: join(golden, 'tiny.signed.skedge') },
    { key: 'encrypted-only.skedge', file: join(golden, 'tiny.encrypted.skedge') },
    { key: 'flipped.skedge', file: join(work, 'flipped.skedge') },
    { key: 'other-key.skedge', file: join(work, 'other-key.skedge') },
    { key: 'sealed.skedge', file: join(golden, 'tiny.signed-encrypted.skedge') },
  ], join(TMP, 'r2-sealed.json'));

  const sealed = await startDev(sealedDir, sealedState, '/health', {
    MODEL_KEYS: 'plain.skedge,signed-only.skedge,encrypted-only.skedge,flipped.skedge,other-key.skedge,sealed.skedge',
  });
  try {
    base = sealed.url;
    const health = await (await fetch(`${base}/health`)).json();
    assert.equal(health.model.name, 'tiny');
    const ok = await post('/predict', { text: 'good, good' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.label, 'pos');
    assert.equal((await post('/predict?model=sealed.skedge', { text: 'bad' })).body.label, 'neg');
    const refused = {};
    for (const key of ['plain', 'signed-only', 'encrypted-only', 'flipped', 'other-key']) {
      const r = await post(`/predict?model=${key}.skedge`, { text: 'good' });
      assert.equal(r.status, 500, JSON.stringify(r.body));
      refused[key] = r.body.error.code;
    }
    assert.deepEqual(refused, {
      plain: 'SIGNATURE_MISSING',
      'signed-only': 'ENCRYPTION_MISSING',
      'encrypted-only': 'SIGNATURE_MISSING',
      flipped: 'SIGNATURE_INVALID',
      'other-key': 'DECRYPTION_FAILED',
    });
    t.diagnostic(`workerd refused: ${JSON.stringify(refused)}`);
  } finally {
    await stopDev(sealed.p);
  }
});

test('worker: follows a signed pointer in R2 (POINTER_KEY) and switches when it moves', async (t) => {
  await stopDev(dev);
  const work = join(TMP, 'follow-r2');
  mkdirSync(work, { recursive: true });
  const v1 = join(GOLDEN, 'tiny.signed.skedge');
  const v2 = packSigned(work, 'ovr_lr_binary');
  const state = join(TMP, 'wrangler-follow-state');
  r2Put(dir, state, publish(work, v1, 1, ''), join(work, 'r2-1.json'));
  const vars = { POINTER_KEY: 'fleet/pointers/tiny/production.json', POINTER_INTERVAL_SECONDS: '1',
    SKEDGE_PUBLIC_KEY: readFileSync(join(GOLDEN, 'test-signing.pub'), 'utf8').trim() };
  const follower = await startDev(dir, state, '/health', vars);
  try {
    base = follower.url;
    const health = async () => (await fetch(`${base}/health`)).json();
    const first = await health();
    assert.deepEqual([first.model.sha256, first.pointer], [hash(v1), { version: '1', generation: 1 }]);
    assert.equal((await post('/predict', { text: 'good, good' })).body.label, 'pos');
    // The pointer moves (another process writes the local bucket): a request after the interval
    // re-reads it, and the next ones are served by v2.
    r2Put(dir, state, publish(work, v2, 2, hash(v1)), join(work, 'r2-2.json'));
    const deadline = Date.now() + 60_000;
    let now = first;
    while (now.pointer.generation !== 2) {
      assert.ok(Date.now() < deadline, `the Worker still serves ${JSON.stringify(now.pointer)}:\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
      now = await health();
    }
    assert.equal(now.model.sha256, hash(v2));
    assert.equal((await post('/predict', { text: 'good' })).status, 200);
    t.diagnostic(`workerd followed fleet/pointers/tiny/production.json from generation 1 to ${now.pointer.generation}`);
  } finally {
    await stopDev(follower.p);
  }
});

test('worker: champion and challenger: canary sticky per key, feedback, shadow pairs, an arm moved in place', async (t) => {
  await stopDev(dev);
  const work = join(TMP, 'experiment-r2');
  mkdirSync(work, { recursive: true });
  // Two real models with the same classes, trained differently (words + LR, char_wb + LinearSVC),
  // and a third to move the challenger's alias to.
  const [champion, challenger] = ['word_tfidf_lr_binary', 'charwb25_tfidf_linearsvc'].map((n) => cases.find((c) => c.name === n));
  const files = [champion.name, challenger.name, 'count_binary_bernoullinb'].map((n) => packSigned(work, n));
  const state = join(TMP, 'wrangler-experiment-state');
  r2Put(dir, state, [...publish(work, files[0], 1, '', 'sentiment', 'champion'), ...publish(work, files[1], 1, '', 'sentiment', 'challenger')],
    join(work, 'r2-1.json'));
  const common = {
    CHAMPION_POINTER_KEY: 'fleet/pointers/sentiment/champion.json', CHALLENGER_POINTER_KEY: 'fleet/pointers/sentiment/challenger.json',
    SKEDGE_PUBLIC_KEY: readFileSync(join(GOLDEN, 'test-signing.pub'), 'utf8').trim(), MONITOR_TOKEN: FLUSH_TOKEN,
  };
  const texts = champion.expected.slice(0, 24);
  const want = (arm, i) => (arm === 'champion' ? champion : challenger).expected[i];
  const truth = (i) => String(i % 3 === 0 ? 1 - champion.expected[i].label : champion.expected[i].label);
  const send = async (path, body, headers = {}) => {
    const r = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const flush = () => send('/experiment/flush', '', { authorization: `Bearer ${FLUSH_TOKEN}` });

  // Canary: half of the keys go to the challenger, each key to the same arm on every request
  // (body key or X-Client-Id), the same arm as Node's Experiment gives it (one hash everywhere).
  let worker = await startDev(dir, state, '/health', { ...common, EXPERIMENT_MODE: 'canary', EXPERIMENT_SHARE: '0.5', POINTER_INTERVAL_SECONDS: '3600' });
  try {
    base = worker.url;
    const health = await (await fetch(`${base}/health`)).json();
    assert.equal(health.experiment.mode, 'canary');
    assert.deepEqual([health.experiment.champion.sha256, health.experiment.challenger.sha256], [hash(files[0]), hash(files[1])]);
    assert.deepEqual(health.experiment.challenger.pointer, { version: '1', generation: 1 });
    const node = new Experiment(Model.fromBytes(readFileSync(files[0])), Model.fromBytes(readFileSync(files[1])), { mode: 'canary', share: 0.5 });
    const served = [];
    for (let i = 0; i < texts.length; i++) {
      const key = `user-${i}`;
      const a = await send('/predict', { text: texts[i].text, key });
      const b = await send('/predict', { text: texts[(i + 1) % texts.length].text }, { 'x-client-id': key });
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(b.body.arm, a.body.arm, `${key}: the arm changed between requests`);
      assert.equal(a.body.arm, node.predict('', { key }).arm, `${key}: workerd and Node disagree`);
      assert.match(a.body.id, /^[0-9a-f]{32}$/);
      assert.equal(mismatch(a.body, want(a.body.arm, i)), null, `${key} (${a.body.arm})`);
      served.push(a.body);
    }
    const challengers = served.filter((r) => r.arm === 'challenger').length;
    assert.ok(challengers > 0 && challengers < texts.length, `${challengers} of ${texts.length} keys on the challenger`);
    const batch = await send('/predict', { texts: texts.map((x) => x.text), key: 'user-0' });
    assert.deepEqual(new Set(batch.body.predictions.map((r) => r.arm)), new Set([served[0].arm]));

    // Feedback: counted once per id; an unknown id is answered and counted; bad bodies are coded 400s.
    const outcomes = [];
    for (let i = 0; i < served.length; i++) outcomes.push((await send('/feedback', { id: served[i].id, label: truth(i) })).body.outcome);
    assert.deepEqual(new Set(outcomes), new Set(['counted']));
    assert.deepEqual((await send('/feedback', { id: served[0].id, label: truth(0) })).body, { outcome: 'duplicate' });
    assert.deepEqual((await send('/feedback', { id: '0'.repeat(32), label: 1 })).body, { outcome: 'unknown' });
    const bad = [
      [await send('/feedback', '{not json'), 400, 'INVALID_INPUT'],
      [await send('/feedback', '[]'), 400, 'INVALID_INPUT'],
      [await send('/feedback', { id: served[1].id }), 400, 'INVALID_INPUT'],
      [await send('/feedback', { id: 7, label: 1 }), 400, 'INVALID_INPUT'],
      [await send('/feedback', { id: 'not-an-id', label: 1 }), 400, 'INVALID_INPUT'],
      [await send('/feedback', { id: served[1].id, label: 'maybe' }), 400, 'INVALID_INPUT'],
      [await send('/feedback', { id: served[1].id, label: [1] }), 400, 'INVALID_INPUT'],
      [await send('/feedback', JSON.stringify({ id: served[1].id, label: 'x'.repeat(17 * 1024 * 1024) })), 413, 'INPUT_TOO_LARGE'],
      [await send('/predict', { text: 'x', key: 5 }), 400, 'INVALID_INPUT'],
      [await send('/predict', { text: 'x', key: 'k'.repeat(300) }), 413, 'INPUT_TOO_LARGE'],
    ];
    for (const [r, status, code] of bad) {
      assert.equal(r.status, status, JSON.stringify(r.body).slice(0, 300));
      assert.equal(r.body.error.code, code);
    }
    const get = await fetch(`${base}/feedback`);
    assert.equal(get.status, 405);
    await get.body?.cancel();
    assert.equal((await send('/experiment/flush', '', { authorization: 'Bearer wrong' })).status, 401);

    // The snapshot: per arm, what it served and its feedback against the true labels.
    const { status, body } = await flush();
    assert.equal(status, 200);
    assert.equal(body.snapshots.length, 1);
    const [s] = body.snapshots;
    assert.equal(s.mode, 'canary');
    assert.equal(s.shadow, null);
    assert.equal(s.seen, 2 * texts.length + texts.length);
    assert.deepEqual([s.feedback_unknown, s.feedback_duplicate], [1, 1]);
    for (const [k, arm] of ['champion', 'challenger'].entries()) {
      const mine = served.map((r, i) => [r, i]).filter(([r]) => r.arm === arm);
      assert.equal(s.arms[k].feedback.count, mine.length, arm);
      assert.equal(s.arms[k].feedback.correct, mine.filter(([r, i]) => String(want(arm, i).label) === truth(i)).length, arm);
    }
    assert.equal(s.arms[1].model.sha256, hash(files[1]));
    t.diagnostic(`canary: ${challengers} of ${texts.length} keys on the challenger, sticky, as in Node; feedback ${s.arms[0].feedback.correct}/${s.arms[0].feedback.count} and ${s.arms[1].feedback.correct}/${s.arms[1].feedback.count} correct`);
    assert.deepEqual((await flush()).body.snapshots.map((x) => x.seen), [0], 'the flush hands each window over once');
  } finally {
    await stopDev(worker.p);
  }

  // Shadow: the champion serves every text, the challenger scores it too; agreement and the
  // confusion matrix are scikit-learn's. Then the challenger's alias moves: swapped in place.
  worker = await startDev(dir, state, '/health', { ...common, EXPERIMENT_MODE: 'shadow', EXPERIMENT_SAMPLE_RATE: '1', POINTER_INTERVAL_SECONDS: '1',
    EXPERIMENT_FEEDBACK_CAPACITY: String(texts.length) });
  try {
    base = worker.url;
    const r = await send('/predict', { texts: texts.map((x) => x.text) });
    assert.equal(r.status, 200);
    r.body.predictions.forEach((p, i) => {
      assert.equal(p.arm, 'champion');
      assert.equal(mismatch(p, want('champion', i)), null);
      assert.equal(p.shadow, undefined, 'the challenger is not served');
    });
    for (let i = 0; i < texts.length; i++) {
      assert.equal((await send('/feedback', { id: r.body.predictions[i].id, label: truth(i) })).body.outcome, 'counted');
    }
    r2Put(dir, state, publish(work, files[2], 2, hash(files[1]), 'sentiment', 'challenger'), join(work, 'r2-2.json'));
    const deadline = Date.now() + 60_000;
    for (;;) {
      // Another process writes the local bucket meanwhile: one poll may fail while it does
      // (seen once, "fetch failed", on a loaded machine); the deadline still bounds the wait.
      const h = await fetch(`${base}/health`).then((r) => r.json(), (e) => ({ failed: String(e) }));
      if (h.experiment?.challenger.pointer.generation === 2) {
        assert.equal(h.experiment.challenger.sha256, hash(files[2]));
        break;
      }
      assert.ok(Date.now() < deadline, `the challenger still serves ${JSON.stringify(h.failed ?? h.experiment.challenger.pointer)}:\n${log.slice(-2000)}`);
      await new Promise((ok) => setTimeout(ok, 500));
    }
    assert.equal((await send('/predict', { text: texts[0].text })).status, 200);
    // The ring holds EXPERIMENT_FEEDBACK_CAPACITY ids: that prediction pushed the first one out.
    assert.deepEqual((await send('/feedback', { id: r.body.predictions[0].id, label: truth(0) })).body, { outcome: 'expired' });
    const { body } = await flush();
    const before = body.snapshots.filter((x) => x.arms[1].model.sha256 === hash(files[1]));
    const after = body.snapshots.filter((x) => x.arms[1].model.sha256 === hash(files[2]));
    // The swap closed the window: one window per challenger.
    assert.deepEqual([before.length, after.length], [1, 1]);
    const sum = (xs, f) => xs.reduce((a, x) => a + f(x), 0);
    const n = [[0, 0], [0, 0]];
    for (let i = 0; i < texts.length; i++) n[want('champion', i).label][want('challenger', i).label] += 1;
    assert.equal(sum(before, (x) => x.shadow.pairs), texts.length);
    assert.equal(sum(before, (x) => x.shadow.agree), n[0][0] + n[1][1]);
    assert.deepEqual(before.at(-1).shadow.confusion, n, 'champion × challenger, as scikit-learn predicts');
    for (const [k, arm] of ['champion', 'challenger'].entries()) {
      assert.equal(sum(before, (x) => x.arms[k].feedback.count), texts.length);
      assert.equal(sum(before, (x) => x.arms[k].feedback.correct), texts.filter((_, i) => String(want(arm, i).label) === truth(i)).length);
    }
    assert.equal(sum(after, (x) => x.shadow.pairs), 1, 'the moved challenger scored the next text');
    assert.equal(after[0].feedback_expired, 1);
    const explained = await send('/predict', { text: texts[0].text, explain: 3 });
    assert.equal(explained.body.arm, 'champion');
    assert.ok(explained.body.features.length > 0 && /^[0-9a-f]{32}$/.test(explained.body.id));
    t.diagnostic(`shadow: ${texts.length} pairs, ${n[0][0] + n[1][1]} agree; the challenger moved to generation 2 in place (${body.snapshots.length} windows)`);
  } finally {
    await stopDev(worker.p);
  }
});

test('worker: the experiment\'s closed windows go to the SNAPSHOTS bucket under experiments/, the open one stays', async () => {
  await stopDev(dev);
  const work = join(TMP, 'experiment-bucket');
  // The example with the bucket binding, copied inside the app (so `skedge` resolves).
  const app = join(dir, '..', 'worker-experiments');
  rmSync(work, { recursive: true, force: true }); // the bucket must hold this run's windows only
  mkdirSync(work, { recursive: true });
  mkdirSync(app, { recursive: true });
  cpSync(join(dir, 'src'), join(app, 'src'), { recursive: true });
  copyFileSync(join(dir, 'model.skedge'), join(app, 'model.skedge'));
  writeFileSync(join(app, 'wrangler.toml'), `${readFileSync(join(dir, 'wrangler.toml'), 'utf8')}
[[r2_buckets]]
binding = "SNAPSHOTS"
bucket_name = "skedge-snapshots"
`);
  const [champion, challenger] = ['word_tfidf_lr_binary', 'charwb25_tfidf_linearsvc'].map((n) => cases.find((c) => c.name === n));
  const files = [champion.name, challenger.name].map((n) => packSigned(work, n));
  const persist = join(work, 'state');
  r2Put(app, persist, [...publish(work, files[0], 1, '', 'sentiment', 'champion'), ...publish(work, files[1], 1, '', 'sentiment', 'challenger')],
    join(work, 'r2.json'));
  const worker = await startDev(app, persist, '/health', {
    CHAMPION_POINTER_KEY: 'fleet/pointers/sentiment/champion.json', CHALLENGER_POINTER_KEY: 'fleet/pointers/sentiment/challenger.json',
    SKEDGE_PUBLIC_KEY: readFileSync(join(GOLDEN, 'test-signing.pub'), 'utf8').trim(), MONITOR_TOKEN: FLUSH_TOKEN,
    EXPERIMENT_WINDOW_SECONDS: '1', POINTER_INTERVAL_SECONDS: '3600',
  }, ['--test-scheduled']);
  let health;
  let open;
  try {
    base = worker.url;
    health = await (await fetch(`${base}/health`)).json();
    const texts = champion.expected.slice(0, 3).map((e) => e.text);
    assert.equal((await post('/predict', { texts })).status, 200);
    await new Promise((r) => setTimeout(r, 1100)); // past the one-second window
    // This prediction closes the first window; it is written after the response (ctx.waitUntil),
    // and the cron (wrangler's /__scheduled, which waits for its waitUntil) flushes again.
    assert.equal((await post('/predict', { text: texts[0] })).status, 200);
    const cron = await fetch(`${base}/__scheduled`);
    await cron.body?.cancel();
    assert.equal(cron.status, 200);
    // POST /experiment/flush still answers what was not delivered: only the open window.
    const r = await fetch(`${base}/experiment/flush`, { method: 'POST', headers: { authorization: `Bearer ${FLUSH_TOKEN}` } });
    open = (await r.json()).snapshots;
    assert.deepEqual(open.map((x) => x.seen), [1], 'the delivered window is not handed over again');
  } finally {
    await stopDev(worker.p);
  }
  // wrangler's local R2, read with miniflare on the same persistence root
  const { Miniflare } = createRequire(join(ROOT, 'package.json'))('miniflare');
  const mf = new Miniflare({
    modules: true, script: 'export default { fetch() { return new Response(null, { status: 404 }); } }',
    compatibilityDate: '2026-04-01', defaultPersistRoot: join(persist, 'v3'), r2Buckets: { SNAPSHOTS: 'skedge-snapshots' },
  });
  try {
    const bucket = await mf.getR2Bucket('SNAPSHOTS');
    const listed = await bucket.list();
    assert.equal(listed.objects.length, 1, JSON.stringify(listed.objects.map((o) => o.key)));
    const [{ key }] = listed.objects;
    const s = JSON.parse(await (await bucket.get(key)).text());
    const { name, version } = health.experiment.champion;
    // scripts/skedge/spool.py `segment`: bytes outside [A-Za-z0-9._] as %XX, the empty version `-`
    const segment = (text) => (text ? [...new TextEncoder().encode(text)].map((b) => (/[A-Za-z0-9._]/.test(String.fromCharCode(b))
      ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('') : '-');
    assert.equal(key, `experiments/${segment(name)}/${segment(version)}/${s.window.start_ms}/${s.id}.json`);
    assert.equal(s.format, 'skedge-experiment-snapshot');
    assert.deepEqual([s.window.index, s.seen, s.shadow.pairs], [0, 3, 3]);
    assert.deepEqual(s.arms.map((a) => a.model.sha256), files.map(hash));
    assert.equal(open[0].window.index, 1);
  } finally {
    await mf.dispose();
  }
});
