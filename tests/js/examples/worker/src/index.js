// skedge in a Cloudflare Worker.
//   GET  /health                      → { status, model: { name, version, estimator, classes, sha256 } }
//   POST /predict  { "text": "…" }    → { label, decision, proba }
//   POST /predict  { "texts": […] }   → { predictions: [{ label, decision, proba }, …] }
//   POST /predict  { "text": "…", "explain": 5 } → the prediction and its top 5 features
//   ?model=<key>                       → a model from the R2 bucket bound as MODELS instead of the bundled one
//   POST /monitor/flush                → { sent, rejected, pending, dropped }: sends the monitoring snapshots now
// Errors: { "error": { "code", "message" } } with 400 (bad input), 404 (no such model), 413 (too large).
//
// Signed and encrypted artifacts (FORMAT.md §3): with the secret SKEDGE_DECRYPTION_KEY
// (`npx wrangler secret put SKEDGE_DECRYPTION_KEY` < the key file; locally a `.dev.vars` line)
// every model must be encrypted with that key, and with the variable SKEDGE_PUBLIC_KEY (the `.pub`
// line, public) signed by that key; anything else is refused (500 with the error code).
//
// Monitoring (FORMAT.md §4) of the bundled model when MONITOR_URL is set (the collector,
// `scripts/report.py serve`), with MONITOR_TOKEN (a secret), MONITOR_SAMPLE_RATE (default 0.1)
// and MONITOR_WINDOW_SECONDS (default 60): closed windows are sent after the response
// (ctx.waitUntil), by the cron trigger if you add one, and by POST /monitor/flush.
import { Model } from 'skedge';
import bundled from '../model.skedge';

const MAX_CACHED = 8;
const models = new Map(); // key → Promise<Model>, per isolate
let monitor = null; // the bundled model's Monitor, per isolate

/** What `Model.fromBytes` needs to check the artifact: the keys configured, if any. */
function keys(env) {
  const o = {};
  if (env.SKEDGE_PUBLIC_KEY) o.publicKey = env.SKEDGE_PUBLIC_KEY;
  if (env.SKEDGE_DECRYPTION_KEY) o.decryptionKey = env.SKEDGE_DECRYPTION_KEY;
  return o;
}

function fromBundle(env) {
  const m = Model.fromBytes(bundled, keys(env));
  if (env.MONITOR_URL) {
    monitor = m.monitor({
      sampleRate: Number(env.MONITOR_SAMPLE_RATE ?? 0.1),
      windowSeconds: Number(env.MONITOR_WINDOW_SECONDS ?? 60),
    });
  }
  return m;
}

function flush(env) {
  return monitor.flush(env.MONITOR_URL, { token: env.MONITOR_TOKEN });
}

function model(env, key) {
  let m = models.get(key);
  if (m) return m;
  m = key === '' ? Promise.resolve().then(() => fromBundle(env)) : fromR2(env, key);
  models.set(key, m);
  m.catch(() => models.delete(key));
  if (models.size > MAX_CACHED) {
    const [oldest, evicted] = models.entries().next().value;
    models.delete(oldest);
    evicted.then((x) => x.free(), () => {});
  }
  return m;
}

async function fromR2(env, key) {
  if (!env.MODELS) throw failure(404, 'MODEL_NOT_FOUND', 'no R2 bucket is bound as MODELS');
  const object = await env.MODELS.get(key);
  if (!object) throw failure(404, 'MODEL_NOT_FOUND', `no model ${JSON.stringify(key)} in the bucket`);
  return Model.fromBytes(await object.arrayBuffer(), keys(env));
}

function failure(status, code, message) {
  return Object.assign(new Error(message), { name: 'SkedgeError', code, status });
}

const STATUS = { INVALID_INPUT: 400, INPUT_TOO_LARGE: 413, MODEL_NOT_FOUND: 404 };

function json(body, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8' } });
}

async function predict(request, env, url) {
  let body;
  try {
    body = await request.json();
  } catch {
    throw failure(400, 'INVALID_INPUT', 'the body must be JSON: {"text": "..."} or {"texts": [...]}');
  }
  const m = await model(env, url.searchParams.get('model') ?? '');
  if (body !== null && typeof body === 'object' && 'texts' in body) {
    return json({ predictions: m.predictBatch(body.texts) });
  }
  if (body !== null && typeof body === 'object' && 'text' in body) {
    return json(body.explain ? m.explain(body.text, Number(body.explain)) : m.predict(body.text));
  }
  throw failure(400, 'INVALID_INPUT', 'expected {"text": "..."} or {"texts": [...]}');
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/monitor/flush' && request.method === 'POST') {
        await model(env, '');
        if (!monitor) return json({ error: { code: 'NOT_FOUND', message: 'monitoring is off (no MONITOR_URL)' } }, 404);
        const result = await flush(env);
        return json(result, result.pending === 0 ? 200 : 503);
      }
      if (url.pathname === '/health' && request.method === 'GET') {
        const { name, version, estimator, classes, sha256 } = (await model(env, '')).info();
        return json({ status: 'ok', model: { name, version, estimator, classes, sha256 } });
      }
      if (url.pathname === '/predict') {
        if (request.method !== 'POST') return json({ error: { code: 'METHOD_NOT_ALLOWED', message: 'use POST' } }, 405);
        const response = await predict(request, env, url);
        // Windows closed by this request's predictions go out after the response.
        if (monitor && monitor.pending > 0) ctx.waitUntil(flush(env));
        return response;
      }
      return json({ error: { code: 'NOT_FOUND', message: `no route ${url.pathname}` } }, 404);
    } catch (e) {
      const code = e?.code ?? 'INTERNAL';
      return json({ error: { code, message: String(e?.message ?? e) } }, e?.status ?? STATUS[code] ?? 500);
    }
  },

  // With a cron trigger (`[triggers] crons = ["* * * * *"]`), windows are also sent when idle.
  async scheduled(event, env, ctx) {
    if (monitor) ctx.waitUntil(flush(env));
  },
};
