// skedge in a Cloudflare Worker.
//   GET  /health                      → { status, model: { name, version, estimator, classes, sha256 },
//                                        monitoring: { seen, pending } | null }
//   POST /predict  { "text": "…" }    → { label, decision, proba }
//   POST /predict  { "texts": […] }   → { predictions: [{ label, decision, proba }, …] }
//   POST /predict  { "text": "…", "explain": 5 } → the prediction and its top 5 features
//   ?model=<key>                       → a model from the R2 bucket bound as MODELS instead of the
//                                        bundled one; only the keys listed in MODEL_KEYS (comma-separated)
//   POST /monitor/flush                → { sent, rejected, pending, dropped, lastError }: sends the monitoring
//                                        snapshots now; needs `Authorization: Bearer <MONITOR_TOKEN>`
//   With an experiment (below): POST /predict also answers `arm` and `id`;
//   POST /feedback { "id": "…", "label": … } → { outcome: "counted" | "expired" | "unknown" | "duplicate" }
//   POST /experiment/flush             → { snapshots: […] } (FORMAT.md §4, experiment snapshots): the windows
//                                        not delivered yet (below) and the open one; same token
// Errors: { "error": { "code", "message" } } with 400 (bad input), 401 (flush without the token),
// 404 (no such model: a key not configured, missing in R2, or an object that is not a model all
// answer alike), 413 (too large).
//
// Anyone can call a Worker, so every input is bounded: a body of at most 16 MiB + 1 KiB, at most
// 1,000 texts per request, `explain` for at most 50 features of a text of at most 64 KiB. The
// bundled model and its monitor are never evicted by R2 models (at most 8 cached per isolate).
//
// Signed and encrypted artifacts (FORMAT.md §3): with the secret SKEDGE_DECRYPTION_KEY
// (`npx wrangler secret put SKEDGE_DECRYPTION_KEY` < the key file; locally a `.dev.vars` line)
// every model must be encrypted with that key, and with the variable SKEDGE_PUBLIC_KEY (the `.pub`
// line, public) signed by that key; anything else is refused (500 with the error code).
//
// Monitoring (FORMAT.md §4) of the bundled model when MONITOR_URL is set (the collector,
// `scripts/report.py serve`), or else when an R2 bucket is bound as SNAPSHOTS (no collector: each
// snapshot is written to snapshots/<model>/<version>/<window start ms>/<id>.json, only if absent,
// for `report.py push --from s3://…`), with MONITOR_TOKEN (a secret), MONITOR_SAMPLE_RATE
// (default 0.1) and MONITOR_WINDOW_SECONDS (default 60): closed windows are sent after the response
// (ctx.waitUntil), by the cron trigger if you add one, and by POST /monitor/flush.
//
// Following a published pointer (FORMAT.md §5, `scripts/sync.py`) instead of the bundled model: set
// POINTER_KEY (a key in the R2 bucket bound as MODELS, e.g. fleet/pointers/sentiment/production.json;
// R2 reads are strongly consistent, KV's are not) or POINTER_URL (the pointer over HTTP), and
// SKEDGE_PUBLIC_KEY to accept only pointers and blobs you signed. Timers do not run between requests
// in a Worker, so a request arriving POINTER_INTERVAL_SECONDS (default 30) after the last check
// re-reads the pointer after its response (ctx.waitUntil); the new version is verified, then swapped
// in between two predictions. /health then also gives the pointer (version, generation). Monitoring
// stays with the bundled model, and followed artifacts are not encrypted (Model.follow takes no
// decryption key).
//
// Champion and challenger (an Experiment, README "Champion and challenger"): set
// CHAMPION_POINTER_KEY and CHALLENGER_POINTER_KEY (pointers in the bucket bound as MODELS; or
// CHAMPION_POINTER_URL / CHALLENGER_POINTER_URL), both followed as above (an alias move swaps that
// arm in place and closes the window), and EXPERIMENT_MODE = shadow (default: the champion serves,
// EXPERIMENT_SAMPLE_RATE of the texts, default 1, are also scored by the challenger) or canary
// (EXPERIMENT_SHARE of the keys are served by the challenger); EXPERIMENT_WINDOW_SECONDS closes
// windows by time (default: a window lasts until the next flush) and EXPERIMENT_FEEDBACK_CAPACITY
// bounds the predictions remembered for feedback (default 10,000; older ids answer "expired").
// POST /predict without ?model=
// then serves through the experiment: the key that assigns the canary arm is the body's "key"
// (a string of at most 256 characters), else the X-Client-Id header, else the text itself; the
// answer adds `arm` and `id`, the id to give POST /feedback with the true label when it is known.
// Closed windows are delivered like monitoring snapshots, with `exp.flush(…, { closedOnly: true })`
// after the response (ctx.waitUntil) and by the cron trigger: to MONITOR_URL (the collector's
// POST /v1/snapshots, with MONITOR_TOKEN), or else to the SNAPSHOTS bucket as
// experiments/<champion model>/<champion version>/<window start ms>/<id>.json (only if absent);
// what could not be delivered is kept for the next flush. Without either, or to take them yourself,
// POST /experiment/flush (Authorization: Bearer <MONITOR_TOKEN>) closes the open window and hands
// over every window still queued, oldest first (a window is delivered or handed over, never both).
// At most 64 wait in an isolate (the oldest are dropped and counted in the next snapshot's
// `dropped`). The experiment, like the cache, lives in one isolate:
// feedback that reaches another isolate than its prediction answers "unknown" (counted there).
import { Experiment, Model } from 'skedge';
import bundled from '../model.skedge';

const MAX_CACHED = 8;
const MAX_BODY_BYTES = 16 * 1024 * 1024 + 1024; // one text at the engine's limit, as JSON
const MAX_TEXTS = 1000;
const MAX_EXPLAIN_FEATURES = 50;
const MAX_EXPLAIN_CHARS = 64 * 1024;
const MAX_KEY_LENGTH = 256;

let bundledModel = null; // the bundled model, per isolate: never evicted
let follower = null; // with POINTER_KEY / POINTER_URL: Promise<Follower>, per isolate
let checkedAt = 0; // when the follower last read its pointer (ms)
let monitor = null; // its Monitor, per isolate
const models = new Map(); // R2 key → Promise<Model>, per isolate, at most MAX_CACHED

/** What `Model.fromBytes` / `Model.load` need to check the artifact: the keys configured, if any. */
function keys(env) {
  const o = {};
  if (env.SKEDGE_PUBLIC_KEY) o.publicKey = env.SKEDGE_PUBLIC_KEY;
  if (env.SKEDGE_DECRYPTION_KEY) o.decryptionKey = env.SKEDGE_DECRYPTION_KEY;
  return o;
}

function bundle(env) {
  if (bundledModel) return bundledModel;
  bundledModel = Model.fromBytes(bundled, keys(env));
  if (env.MONITOR_URL || env.SNAPSHOTS) {
    monitor = bundledModel.monitor({
      sampleRate: Number(env.MONITOR_SAMPLE_RATE ?? 0.1),
      windowSeconds: Number(env.MONITOR_WINDOW_SECONDS ?? 60),
    });
  }
  return bundledModel;
}

/** The followed model (POINTER_KEY or POINTER_URL), its pointer re-read when it is due. */
function followed(env, ctx) {
  if (!follower) {
    const source = env.POINTER_KEY ? { bucket: env.MODELS, key: env.POINTER_KEY } : env.POINTER_URL;
    const options = { onError: (e) => console.warn(`pointer refused: ${e?.code ?? ''} ${e?.message ?? e}`) };
    if (env.SKEDGE_PUBLIC_KEY) options.publicKey = env.SKEDGE_PUBLIC_KEY;
    // The follower's own timer would fire outside any request: requests drive the re-reads.
    options.intervalSeconds = 2147483;
    follower = Model.follow(source, options);
    follower.catch(() => { follower = null; });
    checkedAt = Date.now();
    return follower;
  }
  const every = Number(env.POINTER_INTERVAL_SECONDS ?? 30) * 1000;
  if (Date.now() - checkedAt >= every) {
    checkedAt = Date.now();
    ctx.waitUntil(follower.then((f) => f.refresh()).catch((e) => console.warn(`pointer refused: ${e?.code ?? ''} ${e?.message ?? e}`)));
  }
  return follower;
}

const following = (env) => Boolean(env.POINTER_KEY || env.POINTER_URL);

/** Sends the queued windows; after a response or on the cron only the closed ones (`closedOnly`),
 * so that each flush does not also cut the window that just opened. */
function flush(env, closedOnly = true) {
  if (!env.MONITOR_URL) return monitor.flush((snapshot, json) => toBucket(env.SNAPSHOTS, snapshot, json), { closedOnly });
  return monitor.flush(env.MONITOR_URL, { token: env.MONITOR_TOKEN, closedOnly });
}

// --- monitoring sink: snapshots straight to an R2 bucket (FORMAT.md §4, "Snapshots in a bucket")

/** A model name or version as one key segment: each UTF-8 byte outside [A-Za-z0-9._] as %XX;
 * the empty version is `-` (scripts/skedge/spool.py `segment`, the same bytes). */
function segment(text) {
  if (!text) return '-';
  let out = '';
  for (const b of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9._]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `snapshots/<model>/…` of a monitoring snapshot, `experiments/<champion model>/…` of an
 * experiment's (scripts/skedge/spool.py `snapshot_key`, the same keys). */
function bucketKey(snapshot) {
  const experiment = snapshot.format === 'skedge-experiment-snapshot';
  const model = experiment ? snapshot.arms[0].model : snapshot.model;
  const top = experiment ? 'experiments' : 'snapshots';
  return `${top}/${segment(model.name)}/${segment(model.version)}/${snapshot.window.start_ms}/${snapshot.id}.json`;
}

/** Longest key R2 (and S3) stores, in UTF-8 bytes (scripts/skedge/spool.py MAX_KEY_BYTES). */
const MAX_KEY_BYTES = 1024;

/** Writes the snapshot only if its key is absent: a retry of the same id (a flush whose answer
 * was lost) finds it there and counts as delivered, never as a second snapshot. A key over
 * MAX_KEY_BYTES (a long model name or version, escaped at 3 bytes a byte) is never stored: the
 * snapshot is refused for good (`rejected: true`: dropped and counted in the flush's `rejected`,
 * as the collector's 422 SNAPSHOT_KEY_TOO_LONG is), where any other throw would keep it, and the
 * snapshots queued behind it, for every flush after. */
async function toBucket(bucket, snapshot, json) {
  const key = bucketKey(snapshot);
  const size = new TextEncoder().encode(key).byteLength;
  if (size > MAX_KEY_BYTES) {
    const why = `SNAPSHOT_KEY_TOO_LONG snapshot ${snapshot.id}: its bucket key would be ${size} bytes, over R2's `
      + `limit of ${MAX_KEY_BYTES}: use a shorter model name or version, or a collector (MONITOR_URL)`;
    console.warn(`snapshot dropped: ${why}`);
    throw Object.assign(new Error(why), { rejected: true });
  }
  await bucket.put(key, json, { onlyIf: { etagDoesNotMatch: '*' }, httpMetadata: { contentType: 'application/json' } });
}

const notFound = () => failure(404, 'MODEL_NOT_FOUND', 'no such model');

/** The keys `?model=` may name: MODEL_KEYS, comma-separated. */
function allowedKeys(env) {
  return new Set(String(env.MODEL_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean));
}

function model(env, key, ctx, request, body) {
  if (key === null && experimenting(env)) return served(env, ctx, request, body);
  if (key === null) return following(env) ? followed(env, ctx) : bundle(env);
  if (key.length > MAX_KEY_LENGTH || !allowedKeys(env).has(key)) throw notFound();
  let m = models.get(key);
  if (m) return m;
  m = fromR2(env, key);
  models.set(key, m);
  m.catch(() => models.delete(key));
  if (models.size > MAX_CACHED) {
    const [oldest, evicted] = models.entries().next().value;
    models.delete(oldest);
    evicted.then((x) => x.free(), () => {});
  }
  return m;
}

/** A configured key missing in R2, an R2 failure and an object that is not a model answer alike
 * (R2's own messages never reach the client); a model refused by the key policy keeps its code. */
async function fromR2(env, key) {
  if (!env.MODELS) throw notFound();
  let bytes;
  try {
    const object = await env.MODELS.get(key);
    if (!object) throw notFound();
    bytes = await object.arrayBuffer();
  } catch {
    throw notFound();
  }
  try {
    return await Model.load(bytes, keys(env)); // WebCrypto hashes and verifies, not the wasm
  } catch (e) {
    if (e?.code === 'ARTIFACT_CORRUPT' || e?.code === 'ARTIFACT_VERSION_UNSUPPORTED' || !e?.code) throw notFound();
    throw e;
  }
}

function failure(status, code, message) {
  return Object.assign(new Error(message), { name: 'SkedgeError', code, status });
}

const STATUS = { INVALID_INPUT: 400, INPUT_TOO_LARGE: 413, MODEL_NOT_FOUND: 404 };

function json(body, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8' } });
}

/** The body as text, refused past MAX_BODY_BYTES without reading further. */
async function readBody(request) {
  const declared = Number(request.headers.get('content-length') ?? 0);
  const tooLarge = () => failure(413, 'INPUT_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const invalid = (message) => failure(400, 'INVALID_INPUT', message);

async function predict(request, env, url, ctx) {
  let body;
  try {
    body = JSON.parse(await readBody(request));
  } catch (e) {
    if (e?.code) throw e;
    throw invalid('the body must be JSON: {"text": "..."} or {"texts": [...]}');
  }
  if (!isObject(body) || !('text' in body || 'texts' in body)) throw invalid('expected {"text": "..."} or {"texts": [...]}');
  // Both is a client's mistake: answering one of them would drop the other silently.
  if ('text' in body && 'texts' in body) throw invalid('give "text" or "texts", not both');
  if ('texts' in body) {
    const { texts } = body;
    if (!Array.isArray(texts) || !texts.every((t) => typeof t === 'string')) throw invalid('"texts" must be an array of strings');
    if (texts.length > MAX_TEXTS) throw failure(413, 'INPUT_TOO_LARGE', `at most ${MAX_TEXTS} texts per request`);
    const m = await model(env, url.searchParams.get('model'), ctx, request, body);
    return json({ predictions: m.predictBatch(texts) });
  }
  const { text, explain } = body;
  if (typeof text !== 'string') throw invalid('"text" must be a string');
  if (explain !== undefined && explain !== null && explain !== false && explain !== 0) {
    if (!Number.isInteger(explain) || explain < 1 || explain > MAX_EXPLAIN_FEATURES) {
      throw invalid(`"explain" must be an integer from 1 to ${MAX_EXPLAIN_FEATURES}`);
    }
    if (text.length > MAX_EXPLAIN_CHARS) throw failure(413, 'INPUT_TOO_LARGE', `explain takes texts of at most ${MAX_EXPLAIN_CHARS} characters`);
    const m = await model(env, url.searchParams.get('model'), ctx, request, body);
    return json(m.explain(text, explain));
  }
  const m = await model(env, url.searchParams.get('model'), ctx, request, body);
  return json(m.predict(text));
}

/** Constant-time comparison of the flush token. */
function sameToken(given, expected) {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return b.length > 0 && diff === 0;
}

// ---------------------------------------------------------------------------------------------
// Champion and challenger: an Experiment of two followed pointers (see the top of this file).

let experiment = null; // Promise<{ exp, champion, challenger }> (Follower handles), per isolate
let armsCheckedAt = 0; // when the arms last read their pointers (ms)

const ARMS = ['champion', 'challenger'];
const armSource = (env, arm) => {
  const name = arm.toUpperCase();
  if (env[`${name}_POINTER_KEY`]) return { bucket: env.MODELS, key: env[`${name}_POINTER_KEY`] };
  return env[`${name}_POINTER_URL`] || null;
};
const experimenting = (env) => ARMS.some((arm) => armSource(env, arm) !== null);
const misconfigured = (message) => failure(500, 'MISCONFIGURED', message);
const delivering = (env) => Boolean(env.MONITOR_URL || env.SNAPSHOTS);

/** Sends the experiment's closed windows to the collector or the bucket (see the top). */
function flushExperiment(env, exp) {
  if (!env.MONITOR_URL) return exp.flush((snapshot, json) => toBucket(env.SNAPSHOTS, snapshot, json), { closedOnly: true });
  return exp.flush(env.MONITOR_URL, { token: env.MONITOR_TOKEN, closedOnly: true });
}

/** After a response: windows its predictions or feedback closed go out (a failed start has no windows). */
function deliverAfter(env, ctx) {
  if (!experiment || !delivering(env)) return;
  ctx.waitUntil(experiment.then(({ exp }) => (exp.pending > 0 ? flushExperiment(env, exp) : null), () => null));
}
const warnRefused = (e) => console.warn(`pointer refused: ${e?.code ?? ''} ${e?.message ?? e}`);

/** What the EXPERIMENT_* variables ask of `new Experiment` (the core checks the values). */
function experimentOptions(env) {
  const o = {};
  if (env.EXPERIMENT_MODE) o.mode = env.EXPERIMENT_MODE;
  if (env.EXPERIMENT_SHARE !== undefined) o.share = Number(env.EXPERIMENT_SHARE);
  if (env.EXPERIMENT_SAMPLE_RATE !== undefined) o.sampleRate = Number(env.EXPERIMENT_SAMPLE_RATE);
  if (env.EXPERIMENT_WINDOW_SECONDS !== undefined) o.windowSeconds = Number(env.EXPERIMENT_WINDOW_SECONDS);
  if (env.EXPERIMENT_FEEDBACK_CAPACITY !== undefined) o.feedbackCapacity = Number(env.EXPERIMENT_FEEDBACK_CAPACITY);
  return o;
}

async function startExperiment(env) {
  for (const arm of ARMS) {
    if (!armSource(env, arm)) throw misconfigured(`an experiment needs both ${arm.toUpperCase()}_POINTER_KEY (or _URL) and the other arm's`);
  }
  const options = { onError: warnRefused, intervalSeconds: 2147483 }; // requests drive the re-reads
  if (env.SKEDGE_PUBLIC_KEY) options.publicKey = env.SKEDGE_PUBLIC_KEY;
  const handles = await Promise.allSettled(ARMS.map((arm) => Model.follow(armSource(env, arm), options)));
  const refused = handles.find((h) => h.status === 'rejected');
  if (refused) {
    for (const h of handles) if (h.status === 'fulfilled') h.value.dispose();
    throw refused.reason;
  }
  const [champion, challenger] = handles.map((h) => h.value);
  try {
    return { exp: new Experiment(champion, challenger, experimentOptions(env)), champion, challenger };
  } catch (e) {
    champion.dispose();
    challenger.dispose();
    // Both arms were served, so the variables are wrong, not the client's request.
    throw failure(500, e?.code ?? 'MISCONFIGURED', `the EXPERIMENT_* variables or the arms: ${e?.message ?? e}`);
  }
}

/** The experiment, both pointers re-read after the response when POINTER_INTERVAL_SECONDS passed. */
function arms(env, ctx) {
  if (!experiment) {
    experiment = startExperiment(env);
    experiment.catch(() => { experiment = null; });
    armsCheckedAt = Date.now();
    return experiment;
  }
  const every = Number(env.POINTER_INTERVAL_SECONDS ?? 30) * 1000;
  if (Date.now() - armsCheckedAt >= every) {
    armsCheckedAt = Date.now();
    ctx.waitUntil(experiment.then(({ champion, challenger }) =>
      Promise.all([champion, challenger].map((f) => f.refresh().catch(warnRefused)))));
  }
  return experiment;
}

/** The canary key of a request: the body's "key", else the X-Client-Id header, else none (the text). */
function experimentKey(request, body) {
  const key = body.key ?? request.headers.get('x-client-id') ?? undefined;
  if (key === undefined) return undefined;
  if (typeof key !== 'string') throw invalid('"key" must be a string');
  if (key.length > MAX_KEY_LENGTH) throw failure(413, 'INPUT_TOO_LARGE', `a key has at most ${MAX_KEY_LENGTH} characters`);
  return key;
}

/** What /predict calls a model, served through the experiment: every answer gains `arm` and `id`
 * (the challenger's shadow prediction stays in the snapshot). */
async function served(env, ctx, request, body) {
  const key = experimentKey(request, body);
  const { exp, champion, challenger } = await arms(env, ctx);
  const predict = (text) => {
    const { shadow, ...r } = exp.predict(text, { key });
    return r;
  };
  return {
    predict,
    predictBatch: (texts) => texts.map(predict),
    // The arm that served the text explains it.
    explain(text, k) {
      const { arm, id } = predict(text);
      return { ...(arm === 'champion' ? champion : challenger).explain(text, k), arm, id };
    },
  };
}

async function experimentHealth(env, ctx) {
  const { champion, challenger } = await arms(env, ctx);
  const describe = (f) => {
    const { name, version, estimator, classes, sha256 } = f.info();
    return { name, version, estimator, classes, sha256, pointer: { version: f.pointer.version, generation: f.pointer.generation } };
  };
  const { pointer, ...model } = describe(champion);
  const { mode, share, sampleRate, windowSeconds } = experimentOptions(env);
  return {
    status: 'ok',
    model,
    pointer,
    experiment: { mode: mode ?? 'shadow', share: share ?? null, sampleRate: sampleRate ?? null, windowSeconds: windowSeconds ?? null,
      champion: describe(champion), challenger: describe(challenger) },
    monitoring: null,
  };
}

/** POST /feedback and POST /experiment/flush. */
async function experimentRoute(request, env, ctx, url) {
  if (request.method !== 'POST') return json({ error: { code: 'METHOD_NOT_ALLOWED', message: 'use POST' } }, 405);
  if (url.pathname === '/experiment/flush') {
    const auth = request.headers.get('authorization') ?? '';
    if (!sameToken(auth.startsWith('Bearer ') ? auth.slice(7) : '', env.MONITOR_TOKEN ?? '')) {
      return json({ error: { code: 'UNAUTHORIZED', message: 'POST /experiment/flush needs Authorization: Bearer <MONITOR_TOKEN>' } }, 401);
    }
  }
  if (url.pathname === '/experiment/flush') {
    const { exp } = await arms(env, ctx);
    exp.snapshot();
    return json({ snapshots: exp.takePending() });
  }
  let body;
  try {
    body = JSON.parse(await readBody(request));
  } catch (e) {
    if (e?.code) throw e;
    throw invalid('the body must be JSON: {"id": "...", "label": ...}');
  }
  if (!isObject(body) || !('id' in body) || !('label' in body)) throw invalid('expected {"id": "...", "label": ...}');
  if (typeof body.id !== 'string') throw invalid('"id" must be a string (the id /predict answered)');
  const { exp } = await arms(env, ctx);
  return json({ outcome: exp.feedback(body.id, body.label) });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/monitor/flush' && request.method === 'POST') {
        const auth = request.headers.get('authorization') ?? '';
        if (!sameToken(auth.startsWith('Bearer ') ? auth.slice(7) : '', env.MONITOR_TOKEN ?? '')) {
          return json({ error: { code: 'UNAUTHORIZED', message: 'POST /monitor/flush needs Authorization: Bearer <MONITOR_TOKEN>' } }, 401);
        }
        bundle(env);
        if (!monitor) return json({ error: { code: 'NOT_FOUND', message: 'monitoring is off (no MONITOR_URL, no SNAPSHOTS bucket)' } }, 404);
        const result = await flush(env, false);
        return json(result, result.pending === 0 ? 200 : 503);
      }
      if ((url.pathname === '/feedback' || url.pathname === '/experiment/flush') && experimenting(env)) {
        const response = await experimentRoute(request, env, ctx, url);
        if (url.pathname === '/feedback') deliverAfter(env, ctx);
        return response;
      }
      if (url.pathname === '/health' && request.method === 'GET') {
        if (experimenting(env)) return json(await experimentHealth(env, ctx));
        if (following(env)) {
          const f = await followed(env, ctx);
          const { name, version, estimator, classes, sha256 } = f.info();
          const { generation, version: pointed } = f.pointer;
          return json({ status: 'ok', model: { name, version, estimator, classes, sha256 }, pointer: { version: pointed, generation }, monitoring: null });
        }
        const { name, version, estimator, classes, sha256 } = bundle(env).info();
        const monitoring = monitor ? { seen: monitor.seen, pending: monitor.pending } : null;
        return json({ status: 'ok', model: { name, version, estimator, classes, sha256 }, monitoring });
      }
      if (url.pathname === '/predict') {
        if (request.method !== 'POST') return json({ error: { code: 'METHOD_NOT_ALLOWED', message: 'use POST' } }, 405);
        const response = await predict(request, env, url, ctx);
        // Windows closed by this request's predictions go out after the response.
        if (monitor && monitor.pending > 0) ctx.waitUntil(flush(env));
        deliverAfter(env, ctx);
        return response;
      }
      return json({ error: { code: 'NOT_FOUND', message: `no route ${url.pathname}` } }, 404);
    } catch (e) {
      // A coded error (ours or the package's SkedgeError) says what was wrong; anything else is
      // answered without its message or stack.
      if (e?.name === 'SkedgeError' && typeof e.code === 'string') {
        return json({ error: { code: e.code, message: String(e.message) } }, e.status ?? STATUS[e.code] ?? 500);
      }
      return json({ error: { code: 'INTERNAL', message: 'internal error' } }, 500);
    }
  },

  // With a cron trigger (`[triggers] crons = ["* * * * *"]`), windows are also sent when idle.
  async scheduled(event, env, ctx) {
    if (monitor) ctx.waitUntil(flush(env));
    if (experiment && delivering(env)) ctx.waitUntil(experiment.then(({ exp }) => flushExperiment(env, exp), () => null));
  },
};
