// skedge in a Cloudflare Worker.
//   GET  /health                      → { status, model: { name, version, estimator, classes, sha256 } }
//   POST /predict  { "text": "…" }    → { label, decision, proba }
//   POST /predict  { "texts": […] }   → { predictions: [{ label, decision, proba }, …] }
//   POST /predict  { "text": "…", "explain": 5 } → the prediction and its top 5 features
//   ?model=<key>                       → a model from the R2 bucket bound as MODELS instead of the bundled one
// Errors: { "error": { "code", "message" } } with 400 (bad input), 404 (no such model), 413 (too large).
import { Model } from 'skedge';
import bundled from '../model.skedge';

const MAX_CACHED = 8;
const models = new Map(); // key → Promise<Model>, per isolate

function model(env, key) {
  let m = models.get(key);
  if (m) return m;
  m = key === '' ? Promise.resolve(Model.fromBytes(bundled)) : fromR2(env, key);
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
  return Model.fromBytes(await object.arrayBuffer());
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
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/health' && request.method === 'GET') {
        const { name, version, estimator, classes, sha256 } = (await model(env, '')).info();
        return json({ status: 'ok', model: { name, version, estimator, classes, sha256 } });
      }
      if (url.pathname === '/predict') {
        if (request.method !== 'POST') return json({ error: { code: 'METHOD_NOT_ALLOWED', message: 'use POST' } }, 405);
        return await predict(request, env, url);
      }
      return json({ error: { code: 'NOT_FOUND', message: `no route ${url.pathname}` } }, 404);
    } catch (e) {
      const code = e?.code ?? 'INTERNAL';
      return json({ error: { code, message: String(e?.message ?? e) } }, e?.status ?? STATUS[code] ?? 500);
    }
  },
};
