// The package's TypeScript declarations, type-checked as users' projects see them: `tsc --noEmit`
// on the four projects of types/ (README there), against the installed package, without
// `skipLibCheck`, with the pinned TypeScript (a dev dependency, as @types/node) and TypeScript 7.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = process.env.SKEDGE_ROOT;
const typeRoots = join(root, 'node_modules', '@types');
// The pinned TypeScript, and the next major (7, the native compiler) where scripts/test_js.sh
// installed it (SKEDGE_NEXT).
const compilers = [join(root, 'node_modules', 'typescript')];
if (process.env.SKEDGE_NEXT) compilers.push(join(process.env.SKEDGE_NEXT, 'typescript'));

for (const typescript of compilers) {
  const tsc = join(typescript, 'bin', 'tsc');
  const version = existsSync(tsc) ? JSON.parse(readFileSync(join(typescript, 'package.json'), 'utf8')).version : '?';
  for (const project of ['node-esm', 'node-cjs', 'browser', 'bundler']) {
    test(`tsc ${version} --noEmit: types/${project}`, () => {
      assert.ok(existsSync(tsc), `${tsc} missing: run scripts/setup.sh (npm ci) or scripts/test_js.sh`);
      const dir = fileURLToPath(new URL(`./types/${project}/`, import.meta.url));
      const r = spawnSync(process.execPath, [tsc, '-p', dir, '--typeRoots', typeRoots, '--pretty', 'false'], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `tsc ${version} reported errors in types/${project}:\n${r.stdout}${r.stderr}`);
    });
  }
}
