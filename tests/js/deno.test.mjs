// Deno (npm package `deno` ships the binary) against the installed package: parity on every
// fixture case, error codes, Model.load from a server on 127.0.0.1, and signature verdicts with
// WebCrypto's Ed25519 (lib/runtimes.mjs).
import { test } from 'node:test';
import { join } from 'node:path';
import { assertRuntime, run } from './lib/runtimes.mjs';

const deno = join(process.env.SKEDGE_ROOT, 'node_modules', '.bin', 'deno');
const env = { DENO_NO_UPDATE_CHECK: '1' };

test('deno: the generated TypeScript types check (deno check)', async () => {
  await run(deno, ['check', '--quiet', 'deno/types.ts'], '', env);
});

test('deno: parity, error codes, load()', async (t) => {
  const args = ['run', '--quiet', '--allow-read', '--allow-net=127.0.0.1', 'deno/run.mjs'];
  await assertRuntime(t, 'Deno', { bin: deno, args, entry: 'deno.js', env });
});
