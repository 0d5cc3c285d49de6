// Node.js, CommonJS (`node` + `require` conditions): wasm-bindgen's nodejs glue, whose reading and
// instantiating of the .wasm beside it scripts/build.sh defers to `__instantiate()`: the first call
// that needs the wasm (`Model.fromBytes`, `Model.load`, `Model.follow`, `init()` / `initSync()`)
// makes it, not `require` (node.mjs says why). scripts/build.sh bundles this file, the glue,
// extend.cjs and errors.cjs into one file.
// Artifacts are hashed by node:crypto (integrity, signature prehash), and signatures verified by
// it (SECURITY.md), not in wasm. node:crypto is required on first use: loading it costs
// milliseconds that most loads never need.
'use strict';
const { SkedgeError, skedgeError } = require('./errors.cjs');
const { ed25519Verifier, extend, warmSigned, warmUp } = require('./extend.cjs');
const core = require('./core.cjs');

let nodeCrypto;
const crypto = () => (nodeCrypto ??= require('node:crypto'));
let ready = false;

// `module`: compiled by `init()`; otherwise the glue compiles the .wasm, synchronously.
const loadFailed = (e) =>
  skedgeError('LOAD_FAILED', `could not load skedge's WebAssembly: ${e && e.message ? e.message : e}`, e);

function instantiate(module) {
  if (ready) return;
  try {
    core.__instantiate(module);
  } catch (e) {
    throw loadFailed(e);
  }
  core.setHasher((algorithm, bytes) => crypto().createHash(algorithm).update(bytes).digest());
  core.setVerifier(ed25519Verifier(crypto));
  ready = true;
}
const { Model, Experiment } = extend(core, instantiate);

// As node.mjs's: compiled on V8's background threads, then the first calls warmed.
async function init() {
  if (ready) return;
  let module;
  try {
    module = await WebAssembly.compile(require('node:fs').readFileSync(`${__dirname}/skedge_bg.wasm`));
  } catch (e) {
    throw loadFailed(e);
  }
  if (ready) return;
  instantiate(module);
  warmUp(core);
  warmSigned(core);
}
function initSync() {
  if (ready) return;
  instantiate();
  warmUp(core);
  warmSigned(core);
}

module.exports = { Experiment, Model, SkedgeError, init, initSync, default: init };
