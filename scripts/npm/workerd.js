// Cloudflare Workers (`workerd` / `worker` conditions): Workers may not compile fetched bytes, so
// the .wasm is imported as a module (wrangler bundles it as CompiledWasm) and instantiated
// synchronously at startup. `init()` exists for code shared with browsers and does nothing here.
import module from './skedge_bg.wasm';
import { initSync as initWasmSync, Model } from './core.js';

initWasmSync({ module });

export async function init() {}
export function initSync() {}
export { Model };
export default init;
