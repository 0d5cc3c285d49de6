// Node.js, ESM (`node` + `import` conditions): the .wasm is read from disk and instantiated
// synchronously on import. `init()` exists for code shared with browsers and does nothing here.
import { readFileSync } from 'node:fs';
import { initSync as initWasmSync, Model } from './core.js';

initWasmSync({ module: readFileSync(new URL('./skedge_bg.wasm', import.meta.url)) });

export async function init() {}
export function initSync() {}
export { Model };
export default init;
