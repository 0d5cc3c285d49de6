// Deno (`deno` condition): the .wasm is read from disk (needs --allow-read for the package
// directory) and instantiated synchronously on import. `init()` does nothing here.
// Artifacts are hashed by WebCrypto in `Model.load`. scripts/build.sh bundles it with the glue,
// extend.js and errors.js into one module.
import * as core from './core.js';
import { SkedgeError } from './errors.js';
import { extend } from './extend.js';

core.initSync({ module: Deno.readFileSync(new URL('./skedge_bg.wasm', import.meta.url)) });
const { Model, Experiment } = extend(core);

export async function init() {}
export function initSync() {}
export { Experiment, Model, SkedgeError };
export default init;
