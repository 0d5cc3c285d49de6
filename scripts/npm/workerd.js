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
const tiny = warmUp(core);
// `Model.load` of bytes, and with a pinned key its WebCrypto checks (SHA-256, Ed25519), are code
// of their own: warmed too, with tests/golden/tiny.signed.skedge and its public test key (the
// model is freed at once; WebCrypto's promises settle before start-up ends). A signed model's
// first request: benches/PROFILE.md "Signatures with WebCrypto".
const signed = Uint8Array.from(atob('@TINY_SIGNED_SKEDGE_BASE64@'), (c) => c.charCodeAt(0));
(async () => {
  try {
    if (tiny) (await Model.load(tiny)).free();
    (await Model.load(signed, { publicKey: '@TEST_SIGNING_PUB@' })).free();
  } catch {} // skedge/lite has no signatures: its bytes path is warm, that is all it needs
})();

export async function init() {}
export function initSync() {}
export { Experiment, Model, SkedgeError };
export default init;
