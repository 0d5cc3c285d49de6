// Deno (`deno` condition): the .wasm is read from disk (needs --allow-read for the package
// directory) and instantiated synchronously on import. `init()` does nothing here.
import { initSync as initWasmSync, Model } from './core.js';

initWasmSync({ module: Deno.readFileSync(new URL('./skedge_bg.wasm', import.meta.url)) });

export async function init() {}
export function initSync() {}
export { Model };
export default init;
