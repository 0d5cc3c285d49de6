// Node.js, CommonJS (`node` + `require` conditions): wasm-bindgen's nodejs glue reads the .wasm
// beside it and instantiates it synchronously on require.
'use strict';
const { Model } = require('./core.cjs');

async function init() {}
function initSync() {}

module.exports = { Model, init, initSync, default: init };
