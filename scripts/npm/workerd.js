// Cloudflare Workers (`workerd` / `worker` conditions): Workers may not compile fetched bytes, so
// the .wasm is imported as a module (wrangler bundles it as CompiledWasm) and instantiated
// synchronously at startup. `init()` exists for code shared with browsers and does nothing here.
// Artifacts are hashed by WebCrypto in `Model.load` (node:crypto needs the nodejs_compat flag).
import module from './skedge_bg.wasm';
import * as core from './core.js';
import { SkedgeError } from './errors.js';
import { extend } from './extend.js';

core.initSync({ module });
const { Model, Experiment } = extend(core);

// V8 compiles each wasm function on its first call, and that call runs in baseline code. The
// global scope runs at isolate start-up, outside any request's CPU limit: loading a 286-byte model
// (tests/golden/tiny.skedge, inlined by scripts/build.sh) and predicting once here compiles the
// load and predict paths, so the first request no longer pays for it (its CPU time fell from 8.4
// to 4.3 ms on the 74k-term SST-2 model, benches/PROFILE.md). A warm-up must never break start-up.
try {
  const tiny = Uint8Array.from(atob('@TINY_SKEDGE_BASE64@'), (c) => c.charCodeAt(0));
  const model = Model.fromBytes(tiny);
  model.predict('warm up');
  model.free();
} catch {}

export async function init() {}
export function initSync() {}
export { Experiment, Model, SkedgeError };
export default init;
