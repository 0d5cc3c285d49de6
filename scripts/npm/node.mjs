// Node.js, ESM (`node` + `import` conditions): the .wasm is read from disk and instantiated
// synchronously on import. `init()` exists for code shared with browsers and does nothing here.
// Artifacts are hashed by node:crypto (integrity, signature prehash), not in wasm. node:crypto is
// required on the first hash: importing it costs milliseconds that most loads never need.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as core from './core.js';
import { SkedgeError } from './errors.js';
import { extend } from './extend.js';

core.initSync({ module: readFileSync(new URL('./skedge_bg.wasm', import.meta.url)) });
let createHash;
const Model = extend(core, (algorithm, bytes) =>
  (createHash ??= createRequire(import.meta.url)('node:crypto').createHash)(algorithm).update(bytes).digest());

export async function init() {}
export function initSync() {}
export { Model, SkedgeError };
export default init;
