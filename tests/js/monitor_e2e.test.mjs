// Monitoring end to end (issue #6), on loopback, with the installed package:
//   a real `mlflow server` (sqlite) holds `monitor_e2e` v1 and v2 (the same English model, each
//   exported with its drift baseline) → the Worker example under workerd (wrangler dev) serves v1
//   with monitoring on and gets English sentences; a page in headless Chromium runs v2 with
//   monitoring on and gets French reviews → both flush their snapshots to `scripts/report.py serve`
//   → `report.py push` into MLflow → the MLflow client reads the metrics and tags back: the French
//   stream raised `skedge.drift_alert` on v2, the English one did not on v1.
// Run by scripts/test_monitor.sh (which builds and installs the package into a temporary app).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startService, stop } from './lib/services.mjs';
import { serve, launchChromium } from './lib/serve.mjs';

const ROOT = process.env.SKEDGE_ROOT;
const TMP = process.env.SKEDGE_TMP;
const PY = join(ROOT, '.venv', 'bin', 'python');
const app = fileURLToPath(new URL('.', import.meta.url));
const workerDir = join(app, 'examples', 'worker');
const wrangler = join(ROOT, 'node_modules', '.bin', 'wrangler');
const TOKEN = 'e2e-token-7d3a';
const env = {
  ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1',
  MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: '1', MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
};
delete env.MLFLOW_TRACKING_URI;

const procs = [];
let mlflowUri;
let collectorUrl;
let setup;
let workerBase;
let site;
let browser;
const spool = join(TMP, 'monitor-spool');



function python(args, timeout = 600_000) {
  const r = spawnSync(PY, args, { cwd: ROOT, env: { ...env, MLFLOW_TRACKING_URI: mlflowUri }, encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function lastJson(stdout) {
  return JSON.parse(stdout.trim().split('\n').pop());
}

async function collected() {
  return (await (await fetch(collectorUrl.replace('/v1/snapshots', '/healthz'))).json()).snapshots;
}

before(async () => {
  mkdirSync(join(TMP, 'mlflow'), { recursive: true });
  const mlflowPort = await freePort();
  mlflowUri = `http://127.0.0.1:${mlflowPort}`;
  await startService(procs, env, 'mlflow server', PY, ['-m', 'mlflow', 'server',
    '--backend-store-uri', `sqlite:///${join(TMP, 'mlflow', 'mlflow.db')}`,
    '--default-artifact-root', join(TMP, 'mlflow', 'artifacts'),
    '--host', '127.0.0.1', '--port', String(mlflowPort), '--workers', '1'], `${mlflowUri}/health`, { cwd: join(TMP, 'mlflow') });

  const s = python([join(ROOT, 'tests', 'python', 'monitor_e2e.py'), 'setup', '--tracking-uri', mlflowUri, '--work', join(TMP, 'models')]);
  assert.equal(s.status, 0, `setup failed:\n${s.stderr.slice(-3000)}`);
  setup = lastJson(s.stdout);

  const collectorPort = await freePort();
  collectorUrl = `http://127.0.0.1:${collectorPort}/v1/snapshots`;
  await startService(procs, env, 'collector', PY, [join(ROOT, 'scripts', 'report.py'), 'serve', '--spool', spool, '--token', TOKEN,
    '--host', '127.0.0.1', '--port', String(collectorPort)], `http://127.0.0.1:${collectorPort}/healthz`);

  // The Worker example bundles v1; monitoring is switched on by its MONITOR_* variables.
  copyFileSync(setup.v1, join(workerDir, 'model.skedge'));
  const port = await freePort();
  const inspector = await freePort();
  workerBase = `http://127.0.0.1:${port}`;
  await startService(procs, env, 'wrangler dev', wrangler, ['dev', '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--persist-to', join(TMP, 'monitor-wrangler-state'), '--log-level', 'warn',
    '--show-interactive-dev-session=false',
    '--var', `MONITOR_URL:${collectorUrl}`, '--var', `MONITOR_TOKEN:${TOKEN}`,
    '--var', 'MONITOR_SAMPLE_RATE:0.5', '--var', 'MONITOR_WINDOW_SECONDS:3600'], `${workerBase}/health`, { cwd: workerDir });

  mkdirSync(join(TMP, 'monitor-models'), { recursive: true });
  copyFileSync(setup.v2, join(TMP, 'monitor-models', 'v2.skedge'));
  writeFileSync(join(app, 'monitor-blank.html'),
    '<!doctype html><meta charset="utf-8"><script type="importmap">{"imports":{"skedge":"/node_modules/skedge/browser.js"}}</script><title>monitor</title>');
  site = await serve({ '/models/': join(TMP, 'monitor-models'), '/': app });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await site?.close();
  for (const p of procs.reverse()) await stop(p);
});

test('worker: English sentences with monitoring on, flushed to the collector', async () => {
  const texts = setup.english;
  const before = await collected();
  for (let i = 0; i < texts.length; i += 50) {
    const r = await fetch(`${workerBase}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ texts: texts.slice(i, i + 50) }) });
    assert.equal(r.status, 200);
  }
  const one = await fetch(`${workerBase}/predict`, { method: 'POST', body: JSON.stringify({ text: texts[0] }) });
  assert.equal(one.status, 200);
  const f = await fetch(`${workerBase}/monitor/flush`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  const result = await f.json();
  assert.equal(f.status, 200, JSON.stringify(result));
  assert.ok(result.sent >= 1 && result.pending === 0 && result.rejected === 0, JSON.stringify(result));
  assert.ok((await collected()) >= before + 1);
  setup.workerSeen = texts.length + 1;
});

test('chromium: French reviews in a page with monitoring on, fetch and sendBeacon', async () => {
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(120_000);
  await page.goto(`${site.url}/monitor-blank.html`);
  const before = await collected();
  const r = await page.evaluate(async ({ texts, url, token }) => {
    const { Model, init } = await import('skedge');
    await init();
    const model = await Model.load('/models/v2.skedge');
    const monitor = model.monitor({ sampleRate: 1, seed: 42 });
    model.predictBatch(texts.slice(0, 200));
    for (const t of texts.slice(200)) model.predict(t);
    const drift = monitor.drift();
    const wrong = await monitor.flush(url, { token: 'not-the-token' }); // kept for the next flush
    const first = await monitor.flush(url, { token });
    for (const t of texts.slice(0, 5)) model.predict(t);
    const beacon = await monitor.flush(url, { token, beacon: true });
    return { wrong, first, beacon, drift, pending: monitor.pending };
  }, { texts: setup.french, url: collectorUrl, token: TOKEN });
  assert.deepEqual(r.wrong, { sent: 0, rejected: 0, pending: 1, dropped: 0,
    lastError: { status: 401, code: 'TOKEN_INVALID', message: 'wrong token' } }, 'the reason, read through CORS');
  assert.deepEqual(r.first, { sent: 1, rejected: 0, pending: 0, dropped: 0, lastError: null });
  assert.equal(r.beacon.sent, 1);
  assert.ok(r.drift.oov_shift > 0.5, JSON.stringify(r.drift));
  // the beacon is delivered by the browser in the background
  const deadline = Date.now() + 30_000;
  while ((await collected()) < before + 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
  assert.equal(await collected(), before + 2);
  setup.pageSeen = setup.french.length + 5;
});

test('push → MLflow: metrics and tags read back; French alerts on v2, English does not on v1', async (t) => {
  const push = python([join(ROOT, 'scripts', 'report.py'), 'push', '--spool', spool, '--tracking-uri', mlflowUri,
    '--window-seconds', '3600', '--close-all']);
  assert.equal(push.status, 1, `push should alert:\n${push.stderr}`);
  assert.match(push.stderr, /DRIFT ALERT[\s\S]*monitor_e2e v2/);
  assert.doesNotMatch(push.stderr.split('DRIFT ALERT')[1], /monitor_e2e v1/);

  const v = python([join(ROOT, 'tests', 'python', 'monitor_e2e.py'), 'verify', '--tracking-uri', mlflowUri]);
  assert.equal(v.status, 0, v.stderr);
  const got = lastJson(v.stdout);
  const [v1, v2] = [got['1'], got['2']];
  assert.equal(v1.tags['skedge.drift_alert'], undefined);
  assert.match(v2.tags['skedge.drift_alert'], /oov_shift/);
  assert.equal(v1.run.tags['skedge.model_version'], '1');
  assert.equal(v2.run.tags['skedge.sha256'], v2.tags['skedge.sha256']);
  assert.equal(v1.run.sums.seen, setup.workerSeen);
  assert.equal(v2.run.sums.seen, setup.pageSeen);
  assert.equal(v2.run.sums.sampled, setup.pageSeen); // sampleRate 1 in the page
  assert.ok(v1.run.metrics['drift.oov_shift'] < 0.05, JSON.stringify(v1.run.metrics));
  assert.ok(v2.run.metrics['drift.oov_shift'] > 0.5, JSON.stringify(v2.run.metrics));
  assert.ok('latency_mean_ms' in v2.run.metrics, 'Chromium times predictions');
  assert.ok(!('latency_mean_ms' in v1.run.metrics), 'Workers do not (frozen timers)');
  assert.ok(v1.run.figures.includes('drift/latest.png') && v2.run.figures.includes('drift/latest.png'));
  const pick = (m) => Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('drift.') || k === 'oov_rate'));
  t.diagnostic(`English stream (v1, workerd): ${JSON.stringify(pick(v1.run.metrics))}`);
  t.diagnostic(`French stream (v2, Chromium): ${JSON.stringify(pick(v2.run.metrics))}`);

  const again = python([join(ROOT, 'scripts', 'report.py'), 'push', '--spool', spool, '--tracking-uri', mlflowUri,
    '--window-seconds', '3600', '--close-all']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /nothing to push/);
});
