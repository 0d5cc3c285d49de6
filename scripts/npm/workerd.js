// Cloudflare Workers (`workerd` / `worker` conditions): Workers may not compile fetched bytes, so
// the .wasm is imported as a module (wrangler bundles it as CompiledWasm) and instantiated
// synchronously at startup. `init()` exists for code shared with browsers and does nothing here.
// Artifacts are hashed by WebCrypto in `Model.load` (node:crypto needs the nodejs_compat flag).
import module from './skedge_bg.wasm';
import * as core from './core.js';
import { SkedgeError } from './errors.js';
import { extend } from './extend.js';

core.initSync({ module });
const Model = extend(core);

export async function init() {}
export function initSync() {}
export { Model, SkedgeError };
export default init;
