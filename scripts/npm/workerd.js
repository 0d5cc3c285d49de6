// Cloudflare Workers (`workerd` / `worker` conditions): Workers may not compile fetched bytes, so
// the .wasm is imported as a module (wrangler bundles it as CompiledWasm) and instantiated
// synchronously at startup. `init()` exists for code shared with browsers and does nothing here.
// Artifacts are hashed by WebCrypto in `Model.load` (node:crypto needs the nodejs_compat flag).
import module from './skedge_bg.wasm';
import * as core from './core.js';
import { SkedgeError } from './errors.js';
import { extend, warmUp } from './extend.js';

core.initSync({ module });
const { Model, Experiment } = extend(core);

// The global scope runs at isolate start-up, outside any request's CPU limit: warming the load
// and predict paths here (extend.js) spares the first request compiling them (its CPU time fell
// from 8.4 to 4.3 ms on the 74k-term SST-2 model, benches/PROFILE.md).
warmUp(Model);

export async function init() {}
export function initSync() {}
export { Experiment, Model, SkedgeError };
export default init;
