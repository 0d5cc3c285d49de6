// Node.js, ESM (`node` + `import` conditions). scripts/build.sh bundles this file with the
// wasm-bindgen glue, extend.js and errors.js into one module: each module Node's loader resolves,
// reads and compiles costs about half a millisecond of a cold import.
// The .wasm is read, compiled and instantiated synchronously by the first call that needs it
// (`Model.fromBytes`, `Model.load`, `Model.follow`, or `init()` / `initSync()` to pay it up
// front), not on import: V8 validates the whole module when it compiles it (about 7 ms of CPU for
// the full build, 4 for lite), which a process that imports skedge but loads no model never needs.
// Artifacts are hashed by node:crypto (integrity, signature prehash), and signatures verified by
// it (SECURITY.md), not in wasm. node:crypto is required on first use, or by `init()`, which
// warms a signed load: importing it costs milliseconds that most loads never need.
import * as core from './core.js';
import { SkedgeError, skedgeError } from './errors.js';
import { ed25519Verifier, extend, warmSigned, warmUp } from './extend.js';

// Built-ins through `process.getBuiltinModule` (Node >= 20.16), not `import`: Node's ESM facade of
// node:fs reads every export, `fs.promises` too, which compiles internal/fs/promises (2-3 ms of a
// cold import). Older Node takes node:module's `createRequire`.
const builtin = process.getBuiltinModule
  ? (name) => process.getBuiltinModule(name)
  : (await import('node:module')).createRequire(import.meta.url);
let nodeCrypto;
const crypto = () => (nodeCrypto ??= builtin('node:crypto'));
let ready = false;

const wasmBytes = () => builtin('node:fs').readFileSync(new URL('./skedge_bg.wasm', import.meta.url));

// `module`: compiled by `init()`; otherwise the bytes are compiled here, synchronously.
const loadFailed = (e) =>
  skedgeError('LOAD_FAILED', `could not load skedge's WebAssembly: ${e && e.message ? e.message : e}`, e);

function instantiate(module) {
  if (ready) return;
  try {
    core.initSync({ module: module ?? wasmBytes() });
  } catch (e) {
    throw loadFailed(e);
  }
  core.setHasher((algorithm, bytes) => crypto().createHash(algorithm).update(bytes).digest());
  core.setVerifier(ed25519Verifier(crypto));
  ready = true;
}
const { Model, Experiment } = extend(core, instantiate);

/**
 * Compiles and instantiates skedge's WebAssembly now rather than on first use (once), and warms
 * the load and predict paths (extend.js's `warmUp`): a server calling it at start-up serves its
 * first request without those one-time costs. The compile runs on V8's background threads
 * (`WebAssembly.compile`), not holding the event loop for the whole compile; a synchronous first
 * use meanwhile compiles on its own and instantiates; this call then finds the wasm ready.
 */
export async function init() {
  if (ready) return;
  let module;
  try {
    module = await WebAssembly.compile(wasmBytes());
  } catch (e) {
    throw loadFailed(e);
  }
  if (ready) return;
  instantiate(module);
  warmUp(core);
  warmSigned(core);
}
export function initSync() {
  if (ready) return;
  instantiate();
  warmUp(core);
  warmSigned(core);
}
export { Experiment, Model, SkedgeError };
export default init;
