// Node.js, CommonJS (`node` + `require` conditions): wasm-bindgen's nodejs glue reads the .wasm
// beside it and instantiates it synchronously on require.
// Artifacts are hashed by node:crypto (integrity, signature prehash), not in wasm. node:crypto is
// required on the first hash: loading it costs milliseconds that most loads never need.
'use strict';
const { SkedgeError } = require('./errors.cjs');
const { extend } = require('./extend.cjs');

let createHash;
const Model = extend(require('./core.cjs'), (algorithm, bytes) =>
  (createHash ??= require('node:crypto').createHash)(algorithm).update(bytes).digest());

async function init() {}
function initSync() {}

module.exports = { Model, SkedgeError, init, initSync, default: init };
