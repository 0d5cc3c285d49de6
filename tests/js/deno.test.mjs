// Deno (npm package `deno` ships the binary) against the installed package: parity on every
// fixture case, error codes, Model.load from a server on 127.0.0.1, and signature verdicts with
// WebCrypto's Ed25519.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCases, assertParity, fromColumnar } from './lib/cases.mjs';
import { assertVerdicts, casesJson } from './lib/signatures.mjs';

const deno = join(process.env.SKEDGE_ROOT, 'node_modules', '.bin', 'deno');
const app = fileURLToPath(new URL('.', import.meta.url));

function run(args, stdin) {
  return new Promise((resolve, reject) => {
    const p = spawn(deno, args, { cwd: app, env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`deno exited ${code}: ${err}`))));
    p.stdin.end(stdin);
  });
}

test('deno: the generated TypeScript types check (deno check)', async () => {
  await run(['check', '--quiet', 'deno/types.ts'], '');
});

test('deno: parity, error codes, load()', async (t) => {
  const cases = loadCases();
  const bytes = readFileSync(cases[0].artifact);
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/model.skedge`;
  try {
    const version = (await run(['--version'], '')).split('\n')[0];
    t.diagnostic(version);
    const input = JSON.stringify({ url, cases: cases.map((c) => ({ name: c.name, artifact: c.artifact, texts: c.expected.map((e) => e.text) })), signatures: casesJson() });
    const out = JSON.parse(await run(['run', '--quiet', '--allow-read', '--allow-net=127.0.0.1', 'deno/run.mjs'], input));
    assert.match(out.resolved, /skedge\/deno\.js$/, 'the deno export condition');
    let n = 0;
    for (const c of cases) {
      n += assertParity(c, out.predictions[c.name]);
      const columnar = out.columnar[c.name];
      assertParity(c, fromColumnar(columnar, c.expected.length));
      assert.deepEqual(columnar.types.slice(0, 2), ['Uint32Array', 'Float64Array'], c.name);
    }
    t.diagnostic(`${n} predictions of ${cases.length} cases equal scikit-learn's in Deno`);
    assert.deepEqual(out.codes, {
      corrupt: 'ARTIFACT_CORRUPT',
      version: 'ARTIFACT_VERSION_UNSUPPORTED',
      integrity: 'INTEGRITY_MISMATCH',
      integrityOk: 'no error',
      notString: 'INVALID_INPUT',
      tooLarge: 'INPUT_TOO_LARGE',
      tenMegabytes: 'no error',
      loadIntegrity: 'INTEGRITY_MISMATCH',
    });
    assert.equal(out.load.last, bytes.length);
    assertVerdicts(assert, out.verdicts); // Model.load of bytes: WebCrypto's Ed25519 and the wasm's
  } finally {
    await new Promise((r) => server.close(r));
  }
});
