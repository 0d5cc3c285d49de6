// The signature verdict cases every verifier must agree on (the wasm's verify_strict, node:crypto,
// WebCrypto in Chromium, workerd and Deno): the signed golden, tampered signatures and bodies,
// another key, a non-canonical S, and a signature that OpenSSL and BoringSSL accept but
// verify_strict refuses (a small-order R, made with the test signing key).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const golden = join(process.env.SKEDGE_ROOT, 'tests', 'golden');
const hexOf = (name) => readFileSync(join(golden, name), 'utf8').trim().split(':')[1];
const bytesOf = (hex) => Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));

export const signed = new Uint8Array(readFileSync(join(golden, 'tiny.signed.skedge')));
export const publicKey = bytesOf(hexOf('test-signing.pub'));
const otherPublic = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'; // RFC 8032 test 1

export const HEADER = 24; // FORMAT.md §3: header, stored body, then the 64-byte signature
const hash = (algorithm, ...parts) => {
  const h = createHash(algorithm);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const sha512 = (...parts) => hash('sha512', ...parts);
/**
 * What the signature signs: the header's first 16 bytes, then the hash of the stored body its
 * signing flag names (`0x8`: SHA-256, what every writer signs now; `0x1`: SHA-512, before it).
 */
export const message = (bytes) =>
  new Uint8Array([
    ...bytes.subarray(0, 16),
    ...hash(bytes[10] & 0x8 ? 'sha256' : 'sha512', bytes.subarray(HEADER, bytes.length - 64)),
  ]);
// Signed over its body's SHA-512 (flag 0x1), as every signature was before flag 0x8: deployed.
const signedSha512 = new Uint8Array(readFileSync(join(golden, 'xxh64', 'tiny.signed.skedge')));

// A signature with R = the identity (a point of order 1) that satisfies [s]B = R + [k]A: s = k·a.
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const le = (b) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
const toLe = (n) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
export function smallOrderR(bytes) {
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

const flip = (bytes, at) => {
  const out = bytes.slice();
  out[at] ^= 1;
  return out;
};
const n = signed.length;

/** `{ name: [artifact bytes, publicKey option, expected code or 'OK'] }`. */
export const cases = {
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
  // Accepted by OpenSSL (host-verify.test.mjs checks it), refused by verify_strict before the
  // checksum (which the new signature breaks: accepting it would give ARTIFACT_CORRUPT instead).
  'small-order R': [smallOrderR(signed), publicKey, 'SIGNATURE_INVALID'],
  'signed over SHA-512 (flag 0x1)': [signedSha512, publicKey, 'OK'],
  'signed over SHA-512, a body byte changed': [flip(signedSha512, HEADER + 5), publicKey, 'SIGNATURE_INVALID'],
  'the other prehash flag': [(() => {
    const out = signed.slice();
    out[10] = (out[10] & ~0x8) | 0x1;
    return out;
  })(), publicKey, 'SIGNATURE_INVALID'],
};

const hex = (b) => Buffer.from(b).toString('hex');
/** The cases as JSON for another runtime: `[{ name, artifact (base64), publicKey (hex), expected }]`. */
export const casesJson = () =>
  Object.entries(cases).map(([name, [bytes, key, expected]]) => ({
    name,
    artifact: Buffer.from(bytes).toString('base64'),
    publicKey: Array.isArray(key) ? key.map((k) => (typeof k === 'string' ? k : hex(k))) : typeof key === 'string' ? key : hex(key),
    expected,
  }));

/**
 * Asserts what `verdictsIn` returned: every verdict as expected, WebCrypto asked for each (`asked`:
 * false for an entry that verifies with node:crypto instead, as the Node entry does in Bun).
 */
export function assertVerdicts(assert, got, asked = true) {
  for (const { name, expected } of casesJson()) {
    assert.deepEqual(got[name], { webcrypto: expected, wasm: expected, asked }, name);
  }
}
