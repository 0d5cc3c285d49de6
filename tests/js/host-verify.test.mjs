// Ed25519 verification by node:crypto (the Node entries register it, SECURITY.md "Signature"):
// the same verdicts as the wasm's own verifier (ed25519-dalek's verify_strict) on the signed
// golden, on tampered signatures and bodies, on another key, and on a signature that OpenSSL
// accepts but verify_strict refuses (a small-order R, made with the test signing key): run once
// with node:crypto verifying and once with it throwing (the wasm then decides), in ESM and CJS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Model as EsmModel } from 'skedge';

const require = createRequire(import.meta.url);
const nodeCrypto = require('node:crypto');
const { Model: CjsModel } = require('skedge');

const golden = join(process.env.SKEDGE_ROOT, 'tests', 'golden');
const signed = new Uint8Array(readFileSync(join(golden, 'tiny.signed.skedge')));
const hexOf = (name) => readFileSync(join(golden, name), 'utf8').trim().split(':')[1];
const bytesOf = (hex) => Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
const publicKey = bytesOf(hexOf('test-signing.pub'));
const otherPublic = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'; // RFC 8032 test 1

const HEADER = 24; // FORMAT.md §3: header, stored body, then the 64-byte signature
const sha512 = (...parts) => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
// What the signature signs: the header's first 16 bytes, then the SHA-512 of the stored body.
const message = (bytes) => new Uint8Array([...bytes.subarray(0, 16), ...sha512(bytes.subarray(HEADER, bytes.length - 64))]);

// A signature with R = the identity (a point of order 1) that satisfies [s]B = R + [k]A: s = k·a.
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const le = (b) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
const toLe = (n) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
function smallOrderR(bytes) {
  const seed = bytesOf(hexOf('test-signing.key'));
  const a = sha512(seed).slice(0, 32);
  a[0] &= 248;
  a[31] = (a[31] & 127) | 64;
  const R = new Uint8Array(32);
  R[0] = 1;
  const k = le(sha512(R, publicKey, message(bytes))) % L;
  const out = bytes.slice();
  out.set(R, bytes.length - 64);
  out.set(toLe((k * le(a)) % L), bytes.length - 32);
  return out;
}

function code(fn) {
  try {
    fn().free();
    return 'OK';
  } catch (e) {
    assert.equal(e.name, 'SkedgeError');
    return e.code;
  }
}

const flip = (bytes, at) => {
  const out = bytes.slice();
  out[at] ^= 1;
  return out;
};
const n = signed.length;
const cases = {
  'the signing key': [signed, publicKey, 'OK'],
  'another key': [signed, otherPublic, 'SIGNATURE_INVALID'],
  'both keys (rotation)': [signed, [otherPublic, publicKey], 'OK'],
  'a body byte changed': [flip(signed, HEADER + 5), publicKey, 'SIGNATURE_INVALID'],
  'R changed': [flip(signed, n - 64), publicKey, 'SIGNATURE_INVALID'],
  'S changed': [flip(signed, n - 1), publicKey, 'SIGNATURE_INVALID'],
  'S + L (not canonical)': [(() => {
    const out = signed.slice();
    out.set(toLe(le(signed.subarray(n - 32)) + L), n - 32);
    return out;
  })(), publicKey, 'SIGNATURE_INVALID'],
  // Accepted by OpenSSL (checked below), refused by verify_strict before the checksum (which
  // the new signature breaks: accepting it would give ARTIFACT_CORRUPT instead).
  'small-order R': [smallOrderR(signed), publicKey, 'SIGNATURE_INVALID'],
};

test('the small-order R case is one OpenSSL accepts', () => {
  const forged = smallOrderR(signed);
  const key = nodeCrypto.createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKey]),
    format: 'der',
    type: 'spki',
  });
  assert.equal(nodeCrypto.verify(null, message(forged), key, forged.subarray(n - 64)), true);
  assert.equal(nodeCrypto.verify(null, message(signed), key, signed.subarray(n - 64)), true);
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
