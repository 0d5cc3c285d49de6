// Edge sync end to end (issue #14; scripts/test_sync.sh): a real mlflow server (sqlite) that sends
// model-registry webhooks, `scripts/sync.py serve` publishing to a real S3 API (moto's server, the
// bucket readable over HTTP as an R2 public bucket or a static host in front of S3 would be), and
// followers of the pointer URL: `Model.follow` in this Node process, the Worker example under
// workerd (`wrangler dev`, POINTER_URL) and, when WWW_DIR names a built demo, the demo page in
// headless Chromium (`?pointer=`). Alias on v1 -> every follower serves v1; the alias moves to
// v2 while a load generator runs against the Worker -> every follower serves v2, zero failed
// requests; a v3 the exporter refuses never reaches a follower; `sync.py rollback` brings v1 back.
// Every server listens on 127.0.0.1 and is stopped here. Prints the time from the alias move to
// the pointer and to the last follower switching (README "Keeping the edge in sync"); switches are
// awaited with deadlines, never asserted on time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, stop } from './lib/services.mjs';
import { Model } from 'skedge';

const ROOT = process.env.SKEDGE_ROOT;
const TMP = process.env.SKEDGE_TMP;
const PY = join(ROOT, '.venv', 'bin', 'python');
const HELPER = join(ROOT, 'tests', 'python', 'sync_e2e.py');
const SKEDGE = join(ROOT, 'target', 'release', 'skedge');
const wrangler = join(ROOT, 'node_modules', '.bin', 'wrangler');
const workerDir = fileURLToPath(new URL('./examples/worker/', import.meta.url));
const INTERVAL = Number(process.env.SKEDGE_FOLLOW_INTERVAL ?? 1); // seconds, every follower
const SECRET = 'e2e-webhook-secret';
const BUCKET = 'edge';
const env = {
  ...process.env, PYTHONPATH: join(ROOT, 'scripts'), MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: '1',
  // moto accepts any credentials; never the machine's real ones.
  AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_DEFAULT_REGION: 'us-east-1',
  CI: 'true', WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1',
};
delete env.MLFLOW_TRACKING_URI;
delete env.AWS_ENDPOINT_URL;

const procs = [];
let s3;
let mlflow;
let serveUrl;
let pointerUrl;
let versions;
let publicKey;
let node; // the Node follower
let worker; // { p, url }
let page; // the demo page in Chromium, when WWW_DIR is set
let browser;
const WWW = process.env.WWW_DIR;
const nodeSwitches = []; // [Date.now(), version] per onUpdate


const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (async, truthy when done) every `every` ms; fails after `seconds`. */
async function until(what, check, seconds = 300, every = 100) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    let value;
    try {
      value = await check();
    } catch {}
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s`);
    await sleep(every);
  }
}

/** A server process in its own process group (stopped with its children), logging to TMP. */
function start(name, cmd, args, opts = {}) {
  const log = createWriteStream(join(TMP, `${name}.log`));
  const p = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  p.stdout.pipe(log);
  p.stderr.pipe(log);
  p.logName = name;
  procs.push(p);
  return p;
}


async function up(p, url, seconds = 120) {
  await until(`${p.logName} at ${url}`, async () => {
    if (p.exitCode !== null) throw new Error(`${p.logName} exited ${p.exitCode}:\n${readFileSync(join(TMP, `${p.logName}.log`), 'utf8').slice(-3000)}`);
    const r = await fetch(url);
    await r.body?.cancel();
    return r.ok;
  }, seconds, 300).catch((e) => {
    throw new Error(`${e.message}\n${readFileSync(join(TMP, `${p.logName}.log`), 'utf8').slice(-3000)}`);
  });
}

function py(args) {
  const r = spawnSync(PY, args, { env, encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const helper = (...args) => JSON.parse(py([HELPER, ...args, '--tracking-uri', mlflow]).trim().split('\n').pop());

async function pointerVersion() {
  const r = await fetch(pointerUrl, { cache: 'no-store' });
  if (!r.ok) {
    await r.body?.cancel();
    return null;
  }
  return (await r.json()).version;
}

async function workerHealth() {
  const r = await fetch(`${worker.url}/health`);
  const body = await r.json();
  return { status: r.status, version: body.pointer?.version, sha256: body.model?.sha256 };
}

/** The version the demo page says it serves (and predicts with). */
const pageVersion = () => page.evaluate(() => document.documentElement.dataset.followVersion);

/** serve's /health once it accepted `n` deliveries and no pass runs or waits. */
async function settled(n) {
  return until(`serve settled after ${n} deliveries`, async () => {
    const h = await (await fetch(`${serveUrl}/health`)).json();
    const busy = Object.values(h.syncs).some((s) => s.running || s.queued);
    return (h.deliveries.accepted ?? 0) >= n && !busy && h;
  }, 600, 250);
}

before(async () => {
  const [s3Port, mlflowPort, servePort] = await Promise.all([freePort(), freePort(), freePort()]);
  s3 = `http://127.0.0.1:${s3Port}`;
  mlflow = `http://127.0.0.1:${mlflowPort}`;
  serveUrl = `http://127.0.0.1:${servePort}`;
  pointerUrl = `${s3}/${BUCKET}/fleet/pointers/sentiment/production.json`;
  const moto = start('moto', PY, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(s3Port)]);
  const fernet = py(['-c', 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())']).trim();
  // Webhooks to loopback are allowed in this MLflow only (MLflow refuses http and private
  // addresses by default); the secrets it stores are encrypted with this run's key.
  const server = start('mlflow', PY, ['-m', 'mlflow', 'server', '--backend-store-uri', `sqlite:///${join(TMP, 'mlflow.db')}`,
    '--default-artifact-root', join(TMP, 'mlflow-artifacts'), '--host', '127.0.0.1', '--port', String(mlflowPort), '--workers', '1'],
  { env: { ...env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false', MLFLOW_WEBHOOK_ALLOWED_SCHEMES: 'http,https',
    MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS: 'true', MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY: fernet } });
  await up(moto, `${s3}/moto-api/`);
  await up(server, `${mlflow}/health`);
  versions = helper('setup', '--s3', s3, '--bucket', BUCKET);
  const keygen = spawnSync(SKEDGE, ['keygen', join(TMP, 'edge')], { encoding: 'utf8' });
  assert.equal(keygen.status, 0, keygen.stderr);
  publicKey = readFileSync(join(TMP, 'edge.pub'), 'utf8').trim();
  const serve = start('serve', PY, ['-m', 'skedge.sync', 'serve', '--publish', `s3://${BUCKET}/fleet`, '--s3-endpoint-url', s3,
    '--tracking-uri', mlflow, '--sign-key', join(TMP, 'edge.key'), '--skedge', SKEDGE, '--port', String(servePort),
    '--model', 'sentiment'], { env: { ...env, SKEDGE_WEBHOOK_SECRET: SECRET } });
  await up(serve, `${serveUrl}/health`);
  py(['-m', 'skedge.sync', 'webhook', 'create', '--url', `${serveUrl}/webhook`, '--secret', SECRET, '--tracking-uri', mlflow]);
});

after(async () => {
  node?.dispose();
  await browser?.close();
  for (const p of procs.reverse()) await stop(p);
});

test('alias on v1: the webhook publishes it and every follower serves v1', async (t) => {
  helper('alias', '--version', versions.v1);
  await until('the pointer names v1', async () => (await pointerVersion()) === versions.v1);
  node = await Model.follow(pointerUrl, {
    publicKey, intervalSeconds: INTERVAL, onUpdate: (info) => nodeSwitches.push([Date.now(), info.version]),
  });
  assert.equal(node.info().version, versions.v1);
  assert.equal(node.pointer.generation, 1);

  // The Worker example bundles a model (any: here v1's blob) but follows the pointer URL.
  const pointer = await (await fetch(pointerUrl)).json();
  writeFileSync(join(workerDir, 'model.skedge'), new Uint8Array(await (await fetch(new URL(`../../${pointer.blob}`, pointerUrl))).arrayBuffer()));
  const [port, inspector] = await Promise.all([freePort(), freePort()]);
  const p = start('worker', wrangler, ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', join(TMP, 'wrangler-state'), '--log-level', 'warn', '--show-interactive-dev-session=false',
    '--var', `POINTER_URL:${pointerUrl}`, '--var', `SKEDGE_PUBLIC_KEY:${publicKey}`, '--var', `POINTER_INTERVAL_SECONDS:${INTERVAL}`],
  { cwd: workerDir });
  worker = { p, url: `http://127.0.0.1:${port}` };
  await up(p, `${worker.url}/health`);
  const h = await workerHealth();
  assert.equal(h.version, versions.v1);
  assert.equal(h.sha256, pointer.sha256);

  if (WWW) {
    const www = start('www', 'python3', [join(ROOT, 'scripts', 'serve_www.py'), '--dir', WWW, '--port', '0', '--quiet']);
    const base = await new Promise((resolve, reject) => {
      www.stdout.once('data', (d) => resolve(String(d).trim().split('\n')[0]));
      www.once('exit', (code) => reject(new Error(`serve_www.py exited ${code}`)));
    });
    const { chromium } = createRequire(join(ROOT, 'package.json'))('playwright-core');
    const dir = join(TMP, 'chromium-profile');
    browser = await chromium.launchPersistentContext(dir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    const q = new URLSearchParams({ pointer: pointerUrl, key: publicKey, interval: String(INTERVAL) });
    await page.goto(`${base}?${q}`);
    await page.waitForFunction((v) => document.documentElement.dataset.followVersion === v, versions.v1, { timeout: 60_000 });
  }
  t.diagnostic(`v1 (${pointer.sha256.slice(0, 12)}…) served by Node and workerd`);
});

test('alias moves to v2 under load: every follower switches, zero failed requests', async (t) => {
  const autocannon = createRequire(join(ROOT, 'package.json'))('autocannon');
  let load;
  const loaded = new Promise((resolve, reject) => {
    load = autocannon({
      url: `${worker.url}/predict`, method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'The food was great and the service friendly, but the wait was terrible.' }),
      connections: 4, duration: 600, timeout: 10,
    }, (err, result) => (err ? reject(err) : resolve(result)));
  });
  // And the Node follower predicting in a loop, as a service would between its requests.
  let nodeFailures = 0;
  let nodePredictions = 0;
  let looping = true;
  const loop = (async () => {
    while (looping) {
      try {
        node.predict('great food, terrible wait');
        nodePredictions++;
      } catch {
        nodeFailures++;
      }
      await sleep(1); // a service predicting between its requests, not a busy loop stealing the CPU
    }
  })();
  await sleep(2000); // the load is running before the move

  const { moved_at: movedAt } = helper('alias', '--version', versions.v2);
  const moved = movedAt * 1000;
  const seen = {};
  await until('every follower serves v2', async () => {
    if (!seen.pointer && (await pointerVersion()) === versions.v2) seen.pointer = Date.now();
    if (!seen.workerd && (await workerHealth()).version === versions.v2) seen.workerd = Date.now();
    if (!seen.node && node.info().version === versions.v2) seen.node = nodeSwitches.find(([, v]) => v === versions.v2)?.[0] ?? Date.now();
    if (page && !seen.chromium && (await pageVersion()) === versions.v2) seen.chromium = Date.now();
    return seen.pointer && seen.workerd && seen.node && (!page || seen.chromium);
  }, 600, 50);
  await sleep(2000); // and still running after the switch
  load.stop();
  looping = false;
  await loop;
  const result = await loaded;

  const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const last = Math.max(seen.workerd, seen.node, seen.chromium ?? 0);
  const summary = {
    aliasToPointer: s(seen.pointer - moved), pointerToLastFollower: s(last - seen.pointer), aliasToLastFollower: s(last - moved),
    node: s(seen.node - moved), workerd: s(seen.workerd - moved), chromium: page ? s(seen.chromium - moved) : 'not run',
    intervalSeconds: INTERVAL,
    load: { requests: result.requests.total, errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx },
    nodePredictions, nodeFailures,
  };
  writeFileSync(join(TMP, 'sync-figures.json'), JSON.stringify(summary, null, 2));
  console.log(`sync figures: alias move -> pointer ${summary.aliasToPointer}, pointer -> last follower ${summary.pointerToLastFollower}, `
    + `alias move -> last follower ${summary.aliasToLastFollower} (Node ${summary.node}, workerd ${summary.workerd}, Chromium ${summary.chromium}; interval ${INTERVAL} s); `
    + `load: ${result.requests.total} requests to the Worker, ${result.errors} errors, ${result.non2xx} non-2xx; `
    + `${nodePredictions} Node predictions, ${nodeFailures} failed`);
  t.diagnostic(JSON.stringify(summary));
  assert.ok(result.requests.total > 0);
  assert.equal(result.errors, 0);
  assert.equal(result.timeouts, 0);
  assert.equal(result.non2xx, 0);
  assert.equal(nodeFailures, 0);
  assert.equal(node.pointer.generation, 2);
});

test('a v3 the exporter refuses is tagged and never reaches a follower', async () => {
  const before = await (await fetch(pointerUrl)).text();
  helper('alias', '--version', versions.v3);
  await settled(3);
  const tags = helper('tags', '--version', versions.v3);
  assert.match(tags['skedge.sync'] ?? '', /^refused: /);
  assert.equal(tags['skedge.published'], undefined);
  assert.equal(await (await fetch(pointerUrl)).text(), before, 'the pointer is unchanged');
  assert.equal(await node.refresh(), false);
  await sleep(INTERVAL * 1000 + 500);
  assert.equal((await workerHealth()).version, versions.v2);
  assert.equal((await workerHealth()).version, versions.v2);
  assert.equal(node.info().version, versions.v2);
  if (page) assert.equal(await pageVersion(), versions.v2);
});

test('rollback: alias and pointer back on v1, every follower follows', async () => {
  py(['-m', 'skedge.sync', 'rollback', '--model', 'sentiment', '--alias', 'production', '--publish', `s3://${BUCKET}/fleet`,
    '--s3-endpoint-url', s3, '--tracking-uri', mlflow, '--sign-key', join(TMP, 'edge.key'), '--skedge', SKEDGE]);
  await until('every follower serves v1 again', async () => (await workerHealth()).version === versions.v1
    && node.info().version === versions.v1 && (!page || (await pageVersion()) === versions.v1), 300, 100);
  const pointer = await (await fetch(pointerUrl)).json();
  assert.equal(pointer.version, versions.v1);
  assert.equal(pointer.generation, 3);
  await settled(4); // the rollback's own alias move reached serve: in sync, nothing more written
  assert.equal((await (await fetch(pointerUrl)).json()).generation, 3);
});
