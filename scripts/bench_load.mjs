// The load generator of `scripts/bench.sh --only load` (scripts/bench_load.py runs the servers):
// autocannon on 127.0.0.1, one JSON summary line on stdout.
//
//   node scripts/bench_load.mjs worker URL SECONDS CONNECTIONS
//       POST URL/predict with one review, CONNECTIONS at once, for SECONDS.
//   node scripts/bench_load.mjs collector URL TOKEN SECONDS CONNECTIONS PKG ARTIFACT
//       POST URL (a collector's /v1/snapshots) a real snapshot of the npm monitor (PKG's node.mjs
//       on ARTIFACT), each request with a fresh id, so every one is a new snapshot to store.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const autocannon = createRequire(join(ROOT, 'package.json'))('autocannon');
const [mode, url, ...rest] = process.argv.slice(2);

const REVIEW = 'The food was great and the service friendly, but the wait was terrible.';
const TEXTS = ['great food', 'terrible service, cold soup', 'the wait was long', 'lovely staff, fair prices',
  'never again', 'fine', 'the best pasta in town', 'rude waiter and a dirty table'];

function summary(result, extra) {
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]));
  return {
    ...extra,
    seconds: result.duration,
    requests: result.requests.total,
    // sent and not answered when the run ended: the server may still have handled them
    sent: result.requests.sent,
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: result.latency.mean },
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
  };
}

let result;
if (mode === 'worker') {
  const [seconds, connections] = rest.map(Number);
  result = summary(await autocannon({
    url: `${url}/predict`, method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: REVIEW }), connections, duration: seconds, timeout: 10,
  }), { connections });
} else if (mode === 'collector') {
  const [token, seconds, connections, pkg, artifact] = rest;
  const { Model } = await import(pathToFileURL(pkg).href);
  const model = Model.fromBytes(readFileSync(artifact));
  const monitor = model.monitor({ sampleRate: 1, seed: 9 });
  for (let i = 0; i < 200; i++) model.predict(TEXTS[i % TEXTS.length]);
  const template = monitor.snapshot();
  const bodyBytes = Buffer.byteLength(JSON.stringify(template));
  result = summary(await autocannon({
    url, connections: Number(connections), duration: Number(seconds), timeout: 10,
    requests: [{
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      setupRequest: (req) => ({ ...req, body: JSON.stringify({ ...template, id: randomBytes(16).toString('hex') }) }),
    }],
  }), { connections: Number(connections), snapshotBytes: bodyBytes });
} else {
  console.error('usage: bench_load.mjs worker URL SECONDS CONNECTIONS | collector URL TOKEN SECONDS CONNECTIONS PKG ARTIFACT');
  process.exit(2);
}
console.log(JSON.stringify(result));
