// Node.js, ESM (`node` + `import` conditions): the .wasm is read from disk and instantiated
// synchronously on import. `init()` exists for code shared with browsers and does nothing here.
// Artifacts are hashed by node:crypto (integrity, signature prehash), not in wasm.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as core from './core.js';
import { extend } from './extend.js';

core.initSync({ module: readFileSync(new URL('./skedge_bg.wasm', import.meta.url)) });
const Model = extend(core, (algorithm, bytes) => createHash(algorithm).update(bytes).digest());

export async function init() {}
export function initSync() {}
export { Model };
export default init;
