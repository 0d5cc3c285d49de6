// Node.js, ESM (`node` + `import` conditions): the .wasm is read from disk and instantiated
// synchronously on import. `init()` exists for code shared with browsers and does nothing here.
// Artifacts are hashed by node:crypto (integrity, signature prehash), and signatures verified by
// it (SECURITY.md), not in wasm. node:crypto is required on first use: importing it costs
// milliseconds that most loads never need.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as core from './core.js';
import { SkedgeError } from './errors.js';
import { extend } from './extend.js';

core.initSync({ module: readFileSync(new URL('./skedge_bg.wasm', import.meta.url)) });
let nodeCrypto;
const crypto = () => (nodeCrypto ??= createRequire(import.meta.url)('node:crypto'));
// An Ed25519 public key as SPKI DER (RFC 8410): this prefix, then the 32 key bytes.
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const { Model, Experiment } = extend(
  core,
  (algorithm, bytes) => crypto().createHash(algorithm).update(bytes).digest(),
  (key, message, signature) =>
    crypto().verify(null, message, { key: Buffer.concat([SPKI_ED25519, key]), format: 'der', type: 'spki' }, signature),
);

export async function init() {}
export function initSync() {}
export { Experiment, Model, SkedgeError };
export default init;
