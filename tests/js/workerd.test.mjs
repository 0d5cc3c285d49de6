// predictBatch (objects and columnar) of every fixture case inside workerd itself (`workerd serve`
// on 127.0.0.1, no wrangler): the installed package's `workerd` and `skedge/lite` entries, the .wasm
// as a CompiledWasm module, tests/js/workerd/worker.js. In the pinned npm workerd (wrangler 4.86's,
// at the README's compatibility date) and, when scripts/test_js.sh installed it (SKEDGE_NEXT), in the
// workerd Cloudflare runs today at the newest compatibility date it knows: what a new project gets.
import { execFileSync, spawn } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCases, assertParity, fromColumnar } from './lib/cases.mjs';
import { freePort } from './lib/services.mjs';
import { assertVerdicts, casesJson } from './lib/signatures.mjs';

const ROOT = process.env.SKEDGE_ROOT;
const pkg = join(process.env.SKEDGE_APP ?? fileURLToPath(new URL('.', import.meta.url)), 'node_modules', 'skedge');
const cases = loadCases();

const runtimes = [{ bin: join(ROOT, 'node_modules', '.bin', 'workerd'), date: '2026-04-01' }];
if (process.env.SKEDGE_NEXT) {
  const bin = join(process.env.SKEDGE_NEXT, '.bin', 'workerd');
  const date = /\d{4}-\d{2}-\d{2}/.exec(execFileSync(bin, ['--version'], { encoding: 'utf8' }))[0];
  runtimes.push({ bin, date });
}

async function workerd({ bin, date }, lite) {
  const work = mkdtempSync(join(process.env.SKEDGE_TMP, 'workerd-'));
  const [entry, core, wasm] = lite
    ? ['lite-workerd.js', 'core-lite.js', 'skedge_lite_bg.wasm']
    : ['workerd.js', 'core.js', 'skedge_bg.wasm'];
  for (const f of [entry, core, wasm, 'extend.js', 'errors.js']) copyFileSync(join(pkg, f), join(work, f));
  copyFileSync(fileURLToPath(new URL('./workerd/worker.js', import.meta.url)), join(work, 'worker.js'));
  copyFileSync(fileURLToPath(new URL('./lib/verdicts.mjs', import.meta.url)), join(work, 'verdicts.js'));
  const port = await freePort();
  writeFileSync(join(work, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .w)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const w :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "verdicts.js", esModule = embed "verdicts.js"),
    (name = "skedge.js", esModule = embed "${entry}"),
    (name = "${core}", esModule = embed "${core}"),
    (name = "extend.js", esModule = embed "extend.js"),
    (name = "errors.js", esModule = embed "errors.js"),
    (name = "${wasm}", wasm = embed "${wasm}"),
  ],
  compatibilityDate = "${date}",
);
`);
  const child = spawn(bin, ['serve', 'config.capnp'], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const t0 = Date.now();
  for (;;) {
    const up = await new Promise((ok) => {
      const c = connect(port, '127.0.0.1', () => { c.destroy(); ok(true); }).on('error', () => ok(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() - t0 > 60_000) {
      child.kill();
      throw new Error(`workerd did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    stop: () => new Promise((r) => { if (child.exitCode !== null) r(); else { child.once('exit', r); child.kill('SIGTERM'); } }),
  };
}

for (const runtime of runtimes) {
  const where = runtimes.length > 1 ? `workerd ${runtime.date}` : 'workerd';
  for (const lite of [false, true]) {
    test(`${where}${lite ? ' (skedge/lite)' : ''}: predictBatch and its columnar form equal scikit-learn on every case`, async (t) => {
      const w = await workerd(runtime, lite);
      try {
        let n = 0;
        for (const c of cases) {
          const texts = c.expected.map((e) => e.text);
          const r = await fetch(w.url, { method: 'POST', body: JSON.stringify({ artifact: Buffer.from(c.bytes).toString('base64'), texts }) });
          const body = await r.json();
          assert.equal(r.status, 200, JSON.stringify(body));
          n += assertParity(c, body.batch);
          assertParity(c, fromColumnar(body.columnar, texts.length));
          assert.deepEqual(body.types.slice(0, 2), ['Uint32Array', 'Float64Array'], c.name);
        }
        t.diagnostic(`${n} predictions of ${cases.length} cases equal scikit-learn's in ${where}`);
      } finally {
        await w.stop();
      }
    });
  }

  test(`${where}: Model.load of bytes verifies with WebCrypto Ed25519, with the wasm's verdicts`, async () => {
    const w = await workerd(runtime, false);
    try {
      const r = await fetch(`${w.url}verdicts`, { method: 'POST', body: JSON.stringify(casesJson()) });
      const body = await r.json();
      assert.equal(r.status, 200, JSON.stringify(body));
      assertVerdicts(assert, body);
    } finally {
      await w.stop();
    }
  });
}
