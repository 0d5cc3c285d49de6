// The Node side of scripts/bench.py: skedge's npm package (wasm) and onnxruntime-node, measured on
// the same model and texts. One JSON object on stdout per run; scripts/bench.py runs it under
// `taskset -c 0` and aggregates.
//
//   node scripts/bench_node.mjs cold-skedge PKG_DIR MODEL TEXTS          # one fresh-process sample
//   node scripts/bench_node.mjs cold-core PKG_DIR MODEL TEXTS            # issue #3's cold start
//   node scripts/bench_node.mjs warm-skedge PKG_DIR MODEL TEXTS [QUICK]  # in-process medians
//   node [--no-wasm-tier-up] scripts/bench_node.mjs cold-start PKG_DIR MODEL TEXTS [ENTRY]  # issue #12
//   node scripts/bench_node.mjs cold-init PKG_DIR MODEL TEXTS          # the same after `await init()`
//   node scripts/bench_node.mjs cold-floor - MODEL -                   # the floor under cold-start
//   node scripts/bench_node.mjs cold-signed PKG_DIR SIGNED_MODEL TEXTS PUBLIC_KEY_FILE      # issue #12
//   node scripts/bench_node.mjs verify-signed PKG_DIR SIGNED_MODEL TEXTS PUBLIC_KEY_FILE host|wasm
//   node scripts/bench_node.mjs cold-workerd PKG_DIR MODEL TEXTS [lite|full [PUBLIC_KEY_FILE|- load|fromBytes]]
//   node scripts/bench_node.mjs cold-chromium PKG_DIR MODEL TEXTS        # a fresh Chromium
//   node scripts/bench_node.mjs cold-ort ORT_PREFIX MODEL.onnx TEXTS
//   node scripts/bench_node.mjs warm-ort ORT_PREFIX MODEL.onnx TEXTS [QUICK]
//
// TEXTS is a file with one text per line. "cold" measures from before the first `import` of the
// runtime to the first prediction being possible (`ready_ms`), and the first prediction itself
// (`first_ms`), with `performance.now()`; `process_ms` is node's own start-up before this script ran.
// Nothing here is imported statically but node's built-ins, so the cold numbers include everything
// the runtime costs.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const T0 = performance.now();
const [mode, dir, modelPath, textsPath, quickArg] = process.argv.slice(2);
const QUICK = quickArg === 'quick';

function readTexts(path) {
  const raw = readFileSync(path, 'utf8');
  return raw.split('\n').filter((line, i, all) => line.length > 0 || i < all.length - 1);
}

/** Nearest-rank quantiles of a list of numbers (any unit). */
function stats(values) {
  const v = Float64Array.from(values).sort();
  const q = (p) => v[Math.min(v.length - 1, Math.round((v.length - 1) * p))];
  return { n: v.length, min: v[0], p50: q(0.5), p99: q(0.99), max: v[v.length - 1] };
}

/** `fn()` timed `n` times, in milliseconds. */
function timeMs(n, fn) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

async function timeMsAsync(n, fn) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

const nsSince = (t) => Number(process.hrtime.bigint() - t);

function labelOf(p) {
  return typeof p.label === 'bigint' ? Number(p.label) : p.label;
}

// ---------------------------------------------------------------------------------------------
// skedge (wasm)
// ---------------------------------------------------------------------------------------------

async function coldSkedge() {
  const texts = readTexts(textsPath);
  const t0 = performance.now();
  const { Model } = await import(pathToFileURL(join(resolve(dir), 'node.mjs')).href);
  const t1 = performance.now();
  const bytes = readFileSync(modelPath);
  const t2 = performance.now();
  const model = Model.fromBytes(bytes);
  const t3 = performance.now();
  model.predict(texts[0]);
  const t4 = performance.now();
  return {
    process_ms: T0, // performance.now() counts from node's time origin (process start)
    import_ms: t1 - t0, // read .wasm, compile, instantiate, glue
    read_model_ms: t2 - t1,
    from_bytes_ms: t3 - t2,
    ready_ms: t3 - t0,
    first_ms: t4 - t3,
    heap_bytes_after_load: process.memoryUsage().arrayBuffers,
  };
}

// The package's wasm-bindgen glue with its JS half installed (`predict`, `predictBatch`), as every
// entry point has it, but instantiated by the caller.
async function importCore(dir) {
  const core = await import(pathToFileURL(join(resolve(dir), 'core.js')).href);
  const { extend } = await import(pathToFileURL(join(resolve(dir), 'extend.js')).href);
  extend(core);
  return core;
}

// Issue #3's definition, in a fresh process: the .wasm and the artifact are bytes in memory and the
// glue is imported (Node's module loading and file reads are `cold-skedge`'s business); timed are
// compiling and instantiating the module, `Model.fromBytes`, and the first prediction.
async function coldCore() {
  const texts = readTexts(textsPath);
  const wasm = readFileSync(process.argv[7] || join(resolve(dir), 'skedge_bg.wasm'));
  const bytes = readFileSync(modelPath);
  const core = await importCore(dir);
  const t0 = performance.now();
  const module = new WebAssembly.Module(wasm);
  const t1 = performance.now();
  core.initSync({ module });
  const t2 = performance.now();
  const model = core.Model.fromBytes(bytes);
  const t3 = performance.now();
  model.predict(texts[0]);
  const t4 = performance.now();
  return {
    compile_ms: t1 - t0,
    instantiate_ms: t2 - t1,
    from_bytes_ms: t3 - t2,
    first_ms: t4 - t3,
    total_ms: t4 - t0, // compile + instantiate + load + first prediction
    precompiled_ms: t4 - t1, // the same from a compiled module (Workers, browsers' code cache)
  };
}

// Issue #12's cold figures, as a new user meets them, in a fresh process: the artifact's bytes are
// read first; timed are the package's import (read, compile and instantiate the .wasm, the glue),
// the first `Model.fromBytes`, the first `predict` right after it, and a second `fromBytes`.
// ENTRY: `node.mjs` (default) or `lite-node.mjs`.
async function coldStart() {
  const texts = readTexts(textsPath);
  const bytes = readFileSync(modelPath);
  const entry = pathToFileURL(join(resolve(dir), quickArg || 'node.mjs')).href;
  // CPU time as well (the process's, all threads: V8 validates and tiers up on helper threads):
  // on a shared machine the wall time mostly measures the neighbours.
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };
  const [t0, c0] = [performance.now(), cpu()];
  const { Model } = await import(entry);
  const [t1, c1] = [performance.now(), cpu()];
  const model = Model.fromBytes(bytes);
  const [t2, c2] = [performance.now(), cpu()];
  model.predict(texts[0]);
  const [t3, c3] = [performance.now(), cpu()];
  Model.fromBytes(bytes).free();
  const t4 = performance.now();
  return {
    import_ms: t1 - t0,
    from_bytes_ms: t2 - t1,
    first_predict_ms: t3 - t2,
    second_from_bytes_ms: t4 - t3,
    ready_ms: t3 - t0,
    import_cpu_ms: c1 - c0,
    from_bytes_cpu_ms: c2 - c1,
    first_predict_cpu_ms: c3 - c2,
  };
}

// The least any wasm load of MODEL can cost in a fresh process, without skedge: compile a module of
// one function, instantiate it, grow its memory to fit, copy the bytes in and read every 8 bytes
// once (a sum, cheaper than any checksum). benches/PROFILE.md "The floor of any wasm load".
function coldFloor() {
  const bytes = readFileSync(modelPath);
  // (func (export "sum") (param $p i32) (param $end i32) (result i64) (local $s i64)
  //   (loop $l (local.set $s (i64.add (local.get $s) (i64.load (local.get $p))))
  //     (br_if $l (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 8))) (local.get $end))))
  //   (local.get $s))
  const body = [1, 1, 0x7e, 0x03, 0x40, 0x20, 2, 0x20, 0, 0x29, 3, 0, 0x7c, 0x21, 2,
    0x20, 0, 0x41, 8, 0x6a, 0x22, 0, 0x20, 1, 0x49, 0x0d, 0, 0x0b, 0x20, 2, 0x0b];
  const sec = (id, b) => [id, b.length, ...b];
  const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, ...sec(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7e]),
    ...sec(3, [1, 0]), ...sec(5, [1, 0, 1]), ...sec(7, [2, 3, 115, 117, 109, 0, 0, 3, 109, 101, 109, 2, 0]),
    ...sec(10, [1, body.length, ...body])]);
  const t0 = performance.now();
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(wasm));
  exports.mem.grow(Math.ceil((bytes.length + 8) / 65536));
  const t1 = performance.now();
  new Uint8Array(exports.mem.buffer).set(bytes);
  const t2 = performance.now();
  exports.sum(0, bytes.length & ~7);
  const t3 = performance.now();
  return { floor_ms: t3 - t0, module_ms: t1 - t0, copy_ms: t2 - t1, read_ms: t3 - t2 };
}

// A server that calls `await init()` at start-up (compile, instantiate, warm-up), then loads its
// model and predicts: what its first request pays.
async function coldInit() {
  const texts = readTexts(textsPath);
  const bytes = readFileSync(modelPath);
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };
  const t0 = performance.now();
  const { Model, init } = await import(pathToFileURL(join(resolve(dir), 'node.mjs')).href);
  await init();
  const [t1, c1] = [performance.now(), cpu()];
  const model = Model.fromBytes(bytes);
  const [t2, c2] = [performance.now(), cpu()];
  model.predict(texts[0]);
  const [t3, c3] = [performance.now(), cpu()];
  return {
    import_init_ms: t1 - t0,
    from_bytes_ms: t2 - t1,
    first_predict_ms: t3 - t2,
    from_bytes_cpu_ms: c2 - c1,
    first_predict_cpu_ms: c3 - c2,
  };
}

// A signed artifact's first load with its public key pinned (signature verified: SHA-256 of the
// body and Ed25519 by node:crypto), in a fresh process after the import, or after `await init()`
// as a server's start-up (`init` after the key file).
//   node scripts/bench_node.mjs cold-signed PKG_DIR SIGNED_MODEL TEXTS PUBLIC_KEY_FILE [init]
async function coldSigned() {
  const texts = readTexts(textsPath);
  const bytes = readFileSync(modelPath);
  const publicKey = readFileSync(quickArg, 'utf8').trim();
  const { Model, init } = await import(pathToFileURL(join(resolve(dir), 'node.mjs')).href);
  if (process.argv[7] === 'init') await init();
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };
  const [t0, c0] = [performance.now(), cpu()];
  const model = Model.fromBytes(bytes, { publicKey });
  const [t1, c1] = [performance.now(), cpu()];
  model.predict(texts[0]);
  const t2 = performance.now();
  return { signed_from_bytes_ms: t1 - t0, first_predict_ms: t2 - t1, signed_from_bytes_cpu_ms: c1 - c0 };
}

// Ed25519 verification alone, in a fresh process: the load path and node:crypto are warmed first
// (the signed artifact loaded without a key, its body hashed), then the first verified load is
// timed with node:crypto verifying (`host`) or made to throw so the wasm verifies (`wasm`).
//   node scripts/bench_node.mjs verify-signed PKG_DIR SIGNED_MODEL TEXTS PUBLIC_KEY_FILE host|wasm
async function verifySigned() {
  const nodeCrypto = createRequire(import.meta.url)('node:crypto');
  const bytes = readFileSync(modelPath);
  const publicKey = readFileSync(quickArg, 'utf8').trim();
  const { Model } = await import(pathToFileURL(join(resolve(dir), 'node.mjs')).href);
  Model.fromBytes(bytes).free();
  nodeCrypto.createHash('sha256').update(bytes).digest();
  if (process.argv[7] === 'wasm') {
    nodeCrypto.verify = () => {
      throw new Error('the wasm verifies');
    };
  }
  // CPU time as well: on a shared machine the wall time mostly measures the neighbours.
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };
  const [t0, c0] = [performance.now(), cpu()];
  Model.fromBytes(bytes, { publicKey }).free();
  const [t1, c1] = [performance.now(), cpu()];
  Model.fromBytes(bytes, { publicKey }).free();
  const [t2, c2] = [performance.now(), cpu()];
  return {
    verifier: process.argv[7],
    first_verified_ms: t1 - t0,
    first_verified_cpu_ms: c1 - c0,
    second_verified_ms: t2 - t1,
    second_verified_cpu_ms: c2 - c1,
  };
}

/** CPU time (ns) the process `pid` has run: its main thread and all its threads (schedstat). */
function cpuNs(pid) {
  const of = (task) => Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  const tasks = readdirSync(`/proc/${pid}/task`);
  return { main: of(String(pid)), all: tasks.reduce((sum, t) => sum + of(t), 0) };
}

// A cold isolate in workerd (the pinned npm `workerd`, on 127.0.0.1): a fresh workerd process
// serving benches/worker/worker.js, whose first request loads the model (a Data module) and
// predicts. Timed from outside: start-up (spawn to listening: the .wasm compiled, the package
// instantiated), the first request's wall time and CPU time (workerd's threads, from
// /proc/PID/task/*/schedstat: the Worker's own timers do not advance during CPU work), and a
// second, warm request's. With a public key the model is a signed one, loaded with the key pinned
// by `await Model.load(bytes)` (WebCrypto verifies) or `Model.fromBytes(bytes)` (the wasm does);
// `-` for the key pins none. SKEDGE_WORKERD names another workerd binary (scripts/npm_next.sh
// installs Cloudflare's current one), run at its own compatibility date (SKEDGE_WORKERD_DATE to
// choose; the pinned one runs at the README's, 2026-04-01). Newer workerds start a Worker (its global scope) on its first
// request, not at start-up: SKEDGE_WORKERD_START=1 sends a request that loads no model first
// (`start_request_*`), so that the first model request finds the isolate started, as the older
// workerd's does.
async function coldWorkerd() {
  const lite = quickArg === 'lite';
  const [keyFile, via] = process.argv.slice(7);
  const options = keyFile ? { via, ...(keyFile !== '-' && { publicKey: readFileSync(keyFile, 'utf8').trim() }) } : {};
  const pkg = resolve(dir);
  const root = new URL('..', import.meta.url).pathname;
  const work = mkdtempSync(join(tmpdir(), 'skedge-workerd-'));
  const [entry, core, wasm] = lite
    ? ['lite-workerd.js', 'core-lite.js', 'skedge_lite_bg.wasm']
    : ['workerd.js', 'core.js', 'skedge_bg.wasm'];
  for (const f of [entry, core, wasm, 'extend.js', 'errors.js']) copyFileSync(join(pkg, f), join(work, f));
  copyFileSync(join(root, 'benches/worker/worker.js'), join(work, 'worker.js'));
  copyFileSync(modelPath, join(work, 'model.skedge'));
  writeFileSync(join(work, 'options.json'), JSON.stringify(options));
  const port = await new Promise((ok) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
  const bin = process.env.SKEDGE_WORKERD || join(root, 'node_modules/.bin/workerd');
  const date = process.env.SKEDGE_WORKERD_DATE || (process.env.SKEDGE_WORKERD
    ? /\d{4}-\d{2}-\d{2}/.exec(execFileSync(bin, ['--version'], { encoding: 'utf8' }))[0] : '2026-04-01');
  const config = readFileSync(join(root, 'benches/worker/config.capnp.in'), 'utf8')
    .replaceAll('@PORT@', String(port)).replaceAll('@ENTRY@', entry)
    .replaceAll('@CORE@', core).replaceAll('@WASM@', wasm).replaceAll('@DATE@', date);
  writeFileSync(join(work, 'config.capnp'), config);
  const text = readTexts(textsPath)[0];
  const t0 = performance.now();
  const child = spawn(bin, ['serve', 'config.capnp'], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  try {
    for (;;) {
      const up = await new Promise((ok) => {
        const c = connect(port, '127.0.0.1', () => { c.destroy(); ok(true); }).on('error', () => ok(false));
      });
      if (up) break;
      if (child.exitCode !== null || performance.now() - t0 > 20000) throw new Error(`workerd did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const startup = performance.now() - t0;
    const url = `http://127.0.0.1:${port}/?text=${encodeURIComponent(text)}`;
    const request = async (to = url) => {
      const c0 = cpuNs(child.pid);
      const a = performance.now();
      const r = await fetch(to);
      const body = await r.json();
      const b = performance.now();
      const c1 = cpuNs(child.pid);
      if (!r.ok) throw new Error(`workerd: HTTP ${r.status}: ${JSON.stringify(body)}`);
      return { body, wall: b - a, cpuMain: (c1.main - c0.main) / 1e6, cpuAll: (c1.all - c0.all) / 1e6 };
    };
    const start = process.env.SKEDGE_WORKERD_START === '1' ? await request(`http://127.0.0.1:${port}/start`) : null;
    const first = await request();
    const second = await request();
    if (!first.body.loaded || second.body.loaded) throw new Error('workerd: the first request did not load the model');
    return {
      startup_ms: startup,
      ...(start && { start_request_ms: start.wall, start_request_cpu_ms: start.cpuMain }),
      first_request_ms: first.wall,
      first_request_cpu_ms: first.cpuMain,
      first_request_cpu_all_threads_ms: first.cpuAll,
      warm_request_ms: second.wall,
      warm_request_cpu_ms: second.cpuMain,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    rmSync(work, { recursive: true, force: true });
  }
}

// Chromium (playwright-core, /usr/bin/chromium, a fresh profile): the model is put in the Cache
// API by a first visit, then a new tab measures `init()` and `Model.load(await caches.match(url))`
// to the first prediction, as a returning visitor's page does.
async function coldChromium() {
  process.env.SKEDGE_ROOT ??= new URL('..', import.meta.url).pathname;
  const { serve, launchChromium } = await import('../tests/js/lib/serve.mjs');
  const page0 = mkdtempSync(join(tmpdir(), 'skedge-chromium-page-'));
  writeFileSync(join(page0, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="importmap">' +
    '{"imports":{"skedge":"/pkg/browser.js"}}</script><title>bench</title>');
  copyFileSync(modelPath, join(page0, 'model.skedge'));
  const server = await serve({ '/pkg/': resolve(dir), '/': page0 });
  const browser = await launchChromium();
  try {
    const first = browser.pages()[0] ?? (await browser.newPage());
    await first.goto(`${server.url}/index.html`);
    await first.evaluate(async () => (await caches.open('models')).add('/model.skedge'));
    await first.close();
    const page = await browser.newPage();
    await page.goto(`${server.url}/index.html`);
    const text = readTexts(textsPath)[0];
    // The split says whose time it is: the Cache API's (`caches.open` + `match`, and reading the
    // body, which a second read of the same entry afterwards measures alone) or the package's.
    return await page.evaluate(async (text) => {
      const t0 = performance.now();
      const { Model, init } = await import('skedge');
      await init();
      const t1 = performance.now();
      const cache = await caches.open('models');
      const response = await cache.match('/model.skedge');
      const ta = performance.now();
      const model = await Model.load(response);
      const t2 = performance.now();
      model.predict(text);
      const t3 = performance.now();
      const again = await cache.match('/model.skedge');
      const tb = performance.now();
      await again.arrayBuffer();
      const tc = performance.now();
      return {
        init_ms: t1 - t0, cache_match_ms: ta - t1, model_load_ms: t2 - ta, load_ms: t2 - t1,
        first_predict_ms: t3 - t2, cache_to_prediction_ms: t3 - t1, second_body_read_ms: tc - tb,
      };
    }, text);
  } finally {
    await browser.close();
    await server.close();
    rmSync(page0, { recursive: true, force: true });
  }
}

async function warmSkedge() {
  const texts = readTexts(textsPath);
  const textBytes = texts.reduce((s, t) => s + Buffer.byteLength(t), 0);
  const pkg = resolve(dir);
  const wasmBytes = readFileSync(join(pkg, 'skedge_bg.wasm'));
  const modelBytes = readFileSync(modelPath);
  const coreUrl = pathToFileURL(join(pkg, 'core.js')).href;
  const reps = QUICK ? 5 : 20;

  // In-process re-instantiation: a fresh copy of the glue module (query string), compile,
  // instantiate, fromBytes. V8 may reuse compiled code for identical bytes within one process,
  // so the fresh-process "cold" samples are the honest cold start; these show the steady parts.
  const compile = timeMs(reps, () => new WebAssembly.Module(wasmBytes));
  const compiled = new WebAssembly.Module(wasmBytes);
  const instantiate = [];
  const fromBytesFresh = [];
  const total = [];
  for (let i = 0; i < reps; i++) {
    const core = await import(`${coreUrl}?instance=${i}`);
    const a = performance.now();
    core.initSync({ module: wasmBytes });
    const b = performance.now();
    const m = core.Model.fromBytes(modelBytes);
    const c = performance.now();
    m.free();
    instantiate.push(b - a);
    fromBytesFresh.push(c - b);
    total.push(c - a);
  }
  const instantiateOnly = [];
  for (let i = 0; i < reps; i++) {
    const core = await import(`${coreUrl}?compiled=${i}`);
    const a = performance.now();
    core.initSync({ module: compiled });
    instantiateOnly.push(performance.now() - a);
  }

  const { Model } = await import(pathToFileURL(join(pkg, 'node.mjs')).href);
  const fromBytes = timeMs(QUICK ? 10 : 30, () => Model.fromBytes(modelBytes).free());
  const model = Model.fromBytes(modelBytes);

  // Single text: every text, `rounds` times, each call timed alone (JS↔wasm crossing included).
  for (const t of texts.slice(0, 500)) model.predict(t); // warm up (tier-up to TurboFan)
  const rounds = QUICK ? 2 : Math.max(3, Math.ceil(60000 / texts.length));
  const single = [];
  for (let r = 0; r < rounds; r++) {
    for (const t of texts) {
      const s = process.hrtime.bigint();
      model.predict(t);
      single.push(nsSince(s));
    }
  }
  // predict() in a loop, timed as a whole (no per-call timer).
  const loop = timeMs(QUICK ? 3 : 10, () => {
    for (const t of texts) model.predict(t);
  });
  // Both batch paths warmed up first, as single texts are above: their JS loops run in V8's
  // interpreter until it optimises them, which the first path timed used to pay alone.
  for (let i = 0; i < 3; i++) {
    model.predictBatch(texts);
    model.predictBatch(texts, { columnar: true });
  }
  const batch = timeMs(QUICK ? 3 : 15, () => model.predictBatch(texts));
  const columnar = timeMs(QUICK ? 3 : 15, () => model.predictBatch(texts, { columnar: true }));
  const labels = model.predictBatch(texts).map(labelOf);
  return {
    texts: texts.length,
    text_bytes: textBytes,
    compile_ms: stats(compile),
    instantiate_ms: stats(instantiate),
    instantiate_precompiled_ms: stats(instantiateOnly),
    from_bytes_fresh_instance_ms: stats(fromBytesFresh),
    reinstantiate_total_ms: stats(total),
    from_bytes_ms: stats(fromBytes),
    single_ns: stats(single),
    predict_loop_ms: stats(loop),
    batch_ms: stats(batch),
    batch_columnar_ms: stats(columnar),
    labels,
  };
}

// ---------------------------------------------------------------------------------------------
// onnxruntime-node
// ---------------------------------------------------------------------------------------------

const SESSION_OPTIONS = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

function loadOrt() {
  return createRequire(join(resolve(dir), 'package.json'))('onnxruntime-node');
}

const ortInput = (ort, texts) => ({ input: new ort.Tensor('string', texts, [texts.length, 1]) });

async function coldOrt() {
  const texts = readTexts(textsPath);
  const t0 = performance.now();
  const ort = loadOrt();
  const t1 = performance.now();
  const bytes = readFileSync(modelPath);
  const session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
  const t2 = performance.now();
  await session.run(ortInput(ort, [texts[0]]));
  const t3 = performance.now();
  return {
    process_ms: T0,
    import_ms: t1 - t0,
    session_ms: t2 - t1,
    ready_ms: t2 - t0,
    first_ms: t3 - t2,
  };
}

async function warmOrt() {
  const texts = readTexts(textsPath);
  const textBytes = texts.reduce((s, t) => s + Buffer.byteLength(t), 0);
  const ort = loadOrt();
  const bytes = readFileSync(modelPath);
  const create = await timeMsAsync(QUICK ? 3 : 10, () => ort.InferenceSession.create(bytes, SESSION_OPTIONS));
  const session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
  for (const t of texts.slice(0, 200)) await session.run(ortInput(ort, [t]));
  const single = [];
  const rounds = QUICK ? 1 : 2;
  for (let r = 0; r < rounds; r++) {
    for (const t of texts) {
      const s = process.hrtime.bigint();
      await session.run(ortInput(ort, [t]));
      single.push(nsSince(s));
    }
  }
  // Batches in chunks of 1,000: skl2onnx's TF-IDF output is dense (n_texts × n_terms floats).
  const chunk = 1000;
  let labels = [];
  const batch = await timeMsAsync(QUICK ? 2 : 5, async (i) => {
    const out = [];
    for (let k = 0; k < texts.length; k += chunk) {
      const r = await session.run(ortInput(ort, texts.slice(k, k + chunk)), ['label']);
      if (i === 0) out.push(...Array.from(r.label.data, Number));
    }
    if (i === 0) labels = out;
  });
  return {
    texts: texts.length,
    text_bytes: textBytes,
    session_create_ms: stats(create),
    single_ns: stats(single),
    batch_ms: stats(batch),
    labels,
  };
}

// ---------------------------------------------------------------------------------------------
// profile: a steady loop of one operation, for `node --cpu-prof` (scripts/bench.py --profile).
// `quickArg` is the operation (load | predict | batch); argv[7] an optional .wasm with a name
// section (wasm-bindgen's output before wasm-opt) so the profile names Rust functions.
// ---------------------------------------------------------------------------------------------

async function profileSkedge() {
  const what = quickArg;
  const wasmPath = process.argv[7] || join(resolve(dir), 'skedge_bg.wasm');
  const core = await importCore(dir);
  core.initSync({ module: readFileSync(wasmPath) });
  const texts = readTexts(textsPath);
  const bytes = readFileSync(modelPath);
  const model = core.Model.fromBytes(bytes);
  const seconds = Number(process.env.SKEDGE_PROFILE_SECONDS || 5);
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    if (what === 'load') core.Model.fromBytes(bytes).free();
    else if (what === 'batch') model.predictBatch(texts);
    else for (const t of texts) model.predict(t);
    n++;
  }
  return { what, wasm: wasmPath, iterations: n, seconds };
}

const modes = {
  'cold-skedge': coldSkedge,
  'cold-core': coldCore,
  'cold-start': coldStart,
  'cold-init': coldInit,
  'cold-floor': coldFloor,
  'cold-signed': coldSigned,
  'verify-signed': verifySigned,
  'cold-workerd': coldWorkerd,
  'cold-chromium': coldChromium,
  'warm-skedge': warmSkedge,
  'cold-ort': coldOrt,
  'warm-ort': warmOrt,
  'profile-skedge': profileSkedge,
};
if (!modes[mode]) {
  console.error(`usage: bench_node.mjs ${Object.keys(modes).join('|')} DIR MODEL TEXTS [quick]`);
  process.exit(2);
}
const result = await modes[mode]();
process.stdout.write(JSON.stringify({ mode, node: process.version, ...result }) + '\n');
