// Bun (npm package `bun` ships the binary) against the installed package: parity on every fixture
// case, error codes, Model.load from a server on 127.0.0.1, and signature verdicts (lib/runtimes.mjs).
// Bun takes the package's `node` entry, so signatures are verified with node:crypto (Bun's own).
import { test } from 'node:test';
import { join } from 'node:path';
import { assertRuntime } from './lib/runtimes.mjs';

const bun = join(process.env.SKEDGE_ROOT, 'node_modules', '.bin', 'bun');

test('bun: parity, error codes, load()', async (t) => {
  const env = { BUN_DISABLE_TELEMETRY: '1' };
  await assertRuntime(t, 'Bun', { bin: bun, args: ['run', 'bun/run.mjs'], entry: 'node.mjs', webcrypto: false, env });
});
