// Deno (`deno` condition): the .wasm is read from disk (needs --allow-read for the package
// directory) and instantiated synchronously on import. `init()` only warms the first calls (once).
// Artifacts are hashed by WebCrypto in `Model.load`. scripts/build.sh bundles it with the glue,
// extend.js and errors.js into one module.
import * as core from './core.js';
import { SkedgeError } from './errors.js';
import { extend, warmUp } from './extend.js';

core.initSync({ module: Deno.readFileSync(new URL('./skedge_bg.wasm', import.meta.url)) });
const { Model, Experiment } = extend(core);

let warmed = false;
export function initSync() {
  if (!warmed) warmUp(core);
  warmed = true;
}
export async function init() {
  initSync();
}
export { Experiment, Model, SkedgeError };
export default init;
