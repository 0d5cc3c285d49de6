// Browsers and bundlers (`browser` / `import` conditions): the .wasm is fetched next to this file
// (`new URL('skedge_bg.wasm', import.meta.url)`, which Vite, webpack 5 and Rollup understand), so
// initialisation is async: `await init()` once, or `await Model.load(url)` / `Model.follow(url)`,
// which initialise.
// scripts/build.sh bundles it with the glue, extend.js and errors.js: one request, not four.
import * as core from './core.js';
import { SkedgeError, skedgeError } from './errors.js';
import { extend, warmUp } from './extend.js';

// No synchronous native hash in browsers: `Model.load` hashes with WebCrypto, `fromBytes` in wasm.
const { Model, Experiment } = extend(core);
const { default: initWasm, initSync: initWasmSync } = core;

let ready = false;

// `init()` warms the first calls (extend.js's `warmUp`), and also `Model.load` of a `Response`,
// whose reading and promise glue are code of their own (about 5 ms of a first cached load in
// Chromium, benches/PROFILE.md "Chromium: whose time a cached load is"). A cached load reads its
// body whole (a fetched response of a known length, `type` "basic"); a `Response` built here is
// read chunk by chunk, its Content-Length being only a header (src/wasm/fetch.rs): this one, whose
// length is true, says "basic" so that the warm-up takes the cached load's path.
async function warmUpLoad() {
  const tiny = warmUp(core);
  try {
    if (tiny) {
      const response = new Response(tiny, { headers: { 'content-length': String(tiny.length) } });
      Object.defineProperty(response, 'type', { value: 'basic' });
      (await load.call(Model, response)).free();
    }
  } catch {}
}

/**
 * Compiles and instantiates skedge's WebAssembly (once; later calls return at once).
 * `input`: where the .wasm is (URL, Request, Response, bytes or a WebAssembly.Module); by default
 * `skedge_bg.wasm` beside this module.
 */
export async function init(input) {
  if (ready) return;
  try {
    await initWasm(input === undefined ? undefined : { module_or_path: input });
  } catch (e) {
    throw skedgeError('LOAD_FAILED', `could not load skedge's WebAssembly: ${e && e.message ? e.message : e}`, e);
  }
  ready = true;
  await warmUpLoad();
}

/** Instantiates skedge synchronously from the bytes of `skedge_bg.wasm` or a compiled module,
 * which a page must give (it cannot read a file synchronously); once initialised, a no-op. */
export function initSync(module) {
  if (ready) return;
  // The types let every entry's `initSync()` go without it (Node, Deno and Workers ignore it):
  // here its absence is a coded error, not the glue's TypeError from `new WebAssembly.Module()`.
  if (module === undefined || module === null) {
    throw skedgeError('INVALID_INPUT', 'initSync() in a browser needs the bytes of skedge_bg.wasm or a compiled WebAssembly.Module: `await init()` fetches it');
  }
  initWasmSync({ module });
  ready = true;
  warmUpLoad();
}

const fromBytes = Model.fromBytes;
const load = Model.load;
Model.fromBytes = function (bytes, options) {
  if (!ready) {
    throw skedgeError(
      'NOT_INITIALIZED',
      'skedge is not initialized: `await init()` before `Model.fromBytes()` (`Model.load()` initializes by itself)',
    );
  }
  return fromBytes.call(Model, bytes, options);
};
Model.load = async function (input, options) {
  await init();
  return load.call(Model, input, options);
};
// Its pointer is checked in wasm before any load, so it initialises first too.
const follow = Model.follow;
Model.follow = async function (source, options) {
  await init();
  return follow.call(Model, source, options);
};

export { Experiment, Model, SkedgeError };
export default init;
