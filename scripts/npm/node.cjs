// Node.js, CommonJS (`node` + `require` conditions): wasm-bindgen's nodejs glue reads the .wasm
// beside it and instantiates it synchronously on require.
// Artifacts are hashed by node:crypto (integrity, signature prehash), not in wasm.
'use strict';
const { createHash } = require('node:crypto');
const { extend } = require('./extend.cjs');

const Model = extend(require('./core.cjs'), (algorithm, bytes) => createHash(algorithm).update(bytes).digest());

async function init() {}
function initSync() {}

module.exports = { Model, init, initSync, default: init };
