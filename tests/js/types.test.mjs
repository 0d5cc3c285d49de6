// The package's TypeScript declarations, type-checked as users' projects see them: `tsc --noEmit`
// on the four projects of types/ (README there), against the installed package, without
// `skipLibCheck`. TypeScript and @types/node are the repository's pinned dev dependencies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = process.env.SKEDGE_ROOT;
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const typeRoots = join(root, 'node_modules', '@types');

for (const project of ['node-esm', 'node-cjs', 'browser', 'bundler']) {
  test(`tsc --noEmit: types/${project}`, () => {
    assert.ok(existsSync(tsc), `${tsc} missing: run scripts/setup.sh (npm ci)`);
    const dir = fileURLToPath(new URL(`./types/${project}/`, import.meta.url));
    const r = spawnSync(process.execPath, [tsc, '-p', dir, '--typeRoots', typeRoots, '--pretty', 'false'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `tsc reported errors in types/${project}:\n${r.stdout}${r.stderr}`);
  });
}
