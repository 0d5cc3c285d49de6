// Node.js, CommonJS (`node` + `require` conditions): wasm-bindgen's nodejs glue reads the .wasm
// beside it and instantiates it synchronously on require.
// Artifacts are hashed by node:crypto (integrity, signature prehash), and signatures verified by
// it (SECURITY.md), not in wasm. node:crypto is required on first use: loading it costs
// milliseconds that most loads never need.
'use strict';
const { SkedgeError } = require('./errors.cjs');
const { extend } = require('./extend.cjs');

let nodeCrypto;
const crypto = () => (nodeCrypto ??= require('node:crypto'));
// An Ed25519 public key as SPKI DER (RFC 8410): this prefix, then the 32 key bytes.
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const { Model, Experiment } = extend(
  require('./core.cjs'),
  (algorithm, bytes) => crypto().createHash(algorithm).update(bytes).digest(),
  (key, message, signature) =>
    crypto().verify(null, message, { key: Buffer.concat([SPKI_ED25519, key]), format: 'der', type: 'spki' }, signature),
);

async function init() {}
function initSync() {}

module.exports = { Experiment, Model, SkedgeError, init, initSync, default: init };
