// Ed25519 verification by node:crypto (the Node entries register it, SECURITY.md "Signature"):
// the same verdicts as the wasm's own verifier (ed25519-dalek's verify_strict) on
// lib/signatures.mjs's cases, run once with node:crypto verifying and once with it throwing (the
// wasm then decides), in ESM and CJS; and `Model.load` leaves WebCrypto alone where node:crypto
// verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Model as EsmModel } from 'skedge';
import { cases, message, publicKey, signed, smallOrderR } from './lib/signatures.mjs';

const require = createRequire(import.meta.url);
const nodeCrypto = require('node:crypto');
const { Model: CjsModel } = require('skedge');

const n = signed.length;

function code(fn) {
  try {
    fn().free();
    return 'OK';
  } catch (e) {
    assert.equal(e.name, 'SkedgeError');
    return e.code;
  }
}

// OpenSSL 3.0 (Node 20) accepts the small-order R case, whose equation holds; OpenSSL 3.5 (Node 22
// and later) refuses it. Either way skedge must refuse it: the wasm checks R and the key itself
// after the host's verdict, shown here with a host that accepts every signature.
test('the small-order R case is refused even by a host that accepts it', () => {
  const forged = smallOrderR(signed);
  const key = nodeCrypto.createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKey]),
    format: 'der',
    type: 'spki',
  });
  assert.equal(nodeCrypto.verify(null, message(signed), key, signed.subarray(n - 64)), true);
  if (process.versions.openssl.startsWith('3.0.')) {
    assert.equal(nodeCrypto.verify(null, message(forged), key, forged.subarray(n - 64)), true);
  }
  const verify = nodeCrypto.verify;
  let calls = 0;
  nodeCrypto.verify = () => (calls++, true);
  try {
    for (const Model of [EsmModel, CjsModel]) {
      const before = calls;
      assert.equal(code(() => Model.fromBytes(forged, { publicKey })), 'SIGNATURE_INVALID');
      assert.ok(calls > before, 'node:crypto was asked');
    }
  } finally {
    nodeCrypto.verify = verify;
  }
});

for (const [entry, Model] of [['ESM', EsmModel], ['CJS', CjsModel]]) {
  test(`${entry}: node:crypto verifies, with the wasm's verdicts`, () => {
    const verify = nodeCrypto.verify;
    let calls = 0;
    let wasmOnly = false;
    nodeCrypto.verify = function (...args) {
      calls++;
      if (wasmOnly) throw new Error('no host verification: the wasm decides');
      return verify.apply(this, args);
    };
    try {
      for (const [name, [bytes, key, expected]] of Object.entries(cases)) {
        wasmOnly = false;
        const before = calls;
        assert.equal(code(() => Model.fromBytes(bytes, { publicKey: key })), expected, `${name} (node:crypto)`);
        assert.ok(calls > before, `${name}: node:crypto was asked`);
        wasmOnly = true;
        assert.equal(code(() => Model.fromBytes(bytes, { publicKey: key })), expected, `${name} (wasm)`);
      }
    } finally {
      nodeCrypto.verify = verify;
    }
  });
}

test('Model.load of bytes: node:crypto verifies, WebCrypto is not asked', async () => {
  const subtle = globalThis.crypto.subtle;
  const [verify, subtleVerify] = [nodeCrypto.verify, subtle.verify];
  let [host, web] = [0, 0];
  nodeCrypto.verify = function (...args) {
    host++;
    return verify.apply(this, args);
  };
  subtle.verify = function (...args) {
    web++;
    return subtleVerify.apply(this, args);
  };
  try {
    for (const [name, [bytes, key, expected]] of Object.entries(cases)) {
      let got = 'OK';
      try {
        (await EsmModel.load(bytes, { publicKey: key })).free();
      } catch (e) {
        got = e.code;
      }
      assert.equal(got, expected, name);
    }
    assert.ok(host >= Object.keys(cases).length, `node:crypto verified ${host} times`);
    assert.equal(web, 0);
  } finally {
    nodeCrypto.verify = verify;
    delete subtle.verify;
  }
});

for (const [entry, Model] of [['ESM', EsmModel], ['CJS', CjsModel]]) {
  test(`${entry}: a pinned key is parsed once, not at every load; 20 other keys are refused and evict nothing wrongly`, () => {
    const create = nodeCrypto.createPublicKey;
    let parsed = 0;
    nodeCrypto.createPublicKey = function (...args) {
      parsed++;
      return create.apply(this, args);
    };
    const der = (k) => k.export({ format: 'der', type: 'spki' }).subarray(12);
    const others = Array.from({ length: 20 }, () => der(nodeCrypto.generateKeyPairSync('ed25519').publicKey));
    try {
      assert.equal(code(() => Model.fromBytes(signed, { publicKey })), 'OK');
      const before = parsed;
      for (let i = 0; i < 3; i++) assert.equal(code(() => Model.fromBytes(signed, { publicKey })), 'OK');
      assert.equal(parsed, before, 'the same key again: not parsed again');
      for (const key of others) assert.equal(code(() => Model.fromBytes(signed, { publicKey: key })), 'SIGNATURE_INVALID');
      assert.equal(parsed, before + others.length);
      assert.equal(code(() => Model.fromBytes(signed, { publicKey: [...others, publicKey] })), 'OK');
      const [changed, , refused] = cases['a body byte changed'];
      assert.equal(code(() => Model.fromBytes(changed, { publicKey })), refused);
    } finally {
      nodeCrypto.createPublicKey = create;
    }
  });
}
