// The Node side of the tests of JS runtimes other than Node (deno.test.mjs, bun.test.mjs): runs
// lib/run_checks.mjs there through the runtime's own script (deno/run.mjs, bun/run.mjs), with every
// parity case, a model server on 127.0.0.1 for Model.load and the signature cases, and compares
// what it prints with scikit-learn's outputs and the expected error codes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCases, assertParity, fromColumnar } from './cases.mjs';
import { assertVerdicts, casesJson } from './signatures.mjs';

const app = fileURLToPath(new URL('..', import.meta.url));

/** Runs `bin args` in the test app with `stdin`; resolves to its stdout, rejects on a non-zero exit. */
export function run(bin, args, stdin = '', env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { cwd: app, env: { ...process.env, NO_COLOR: '1', ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${bin} exited ${code}: ${err}`))));
    // A runtime may close its stdin before the last write is flushed (Bun 1.4 does, at times): what
    // it printed and its exit code decide, not an EPIPE on a pipe it no longer reads.
    p.stdin.on('error', () => {});
    p.stdin.end(stdin);
  });
}

/**
 * `bin args` runs lib/run_checks.mjs in the runtime (its script reads the input from stdin and
 * prints the result); `entry` is the file of the package its export conditions must pick, and
 * `webcrypto` whether that entry verifies signatures with WebCrypto (the Node entry uses node:crypto).
 */
export async function assertRuntime(t, name, { bin, args, entry, webcrypto = true, env = {} }) {
  const cases = loadCases();
  const bytes = readFileSync(cases[0].artifact);
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/model.skedge`;
  try {
    t.diagnostic((await run(bin, ['--version'], '', env)).split('\n')[0]);
    const input = JSON.stringify({ url, cases: cases.map((c) => ({ name: c.name, artifact: c.artifact, texts: c.expected.map((e) => e.text) })), signatures: casesJson() });
    const out = JSON.parse(await run(bin, args, input, env));
    assert.ok(out.resolved.endsWith(`skedge/${entry}`), `${name} resolves skedge to ${out.resolved}, not ${entry}`);
    let n = 0;
    for (const c of cases) {
      n += assertParity(c, out.predictions[c.name]);
      const columnar = out.columnar[c.name];
      assertParity(c, fromColumnar(columnar, c.expected.length));
      assert.deepEqual(columnar.types.slice(0, 2), ['Uint32Array', 'Float64Array'], c.name);
    }
    t.diagnostic(`${n} predictions of ${cases.length} cases equal scikit-learn's in ${name}`);
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
    assertVerdicts(assert, out.verdicts, webcrypto); // Model.load of bytes: the host's Ed25519 and the wasm's
  } finally {
    await new Promise((r) => server.close(r));
  }
}
