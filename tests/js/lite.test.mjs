// `skedge/lite` (no signatures, encryption, monitoring, explanations) through the installed
// package in Node (ESM and CommonJS): the same predictions as
// `skedge` on every fixture case (predict, predictBatch, columnar), unsigned artifacts load, and
// what needs the left-out features (or a format 2 artifact) is refused with FEATURE_UNAVAILABLE,
// never loaded unchecked. Artifacts written before the XXH3 checksum (tests/golden/xxh64) load in
// both and predict the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Model } from 'skedge/lite';
import { Model as Full } from 'skedge';
import { loadCases, assertParity, fromColumnar } from './lib/cases.mjs';
import { code } from './lib/errors.mjs';

const golden = join(process.env.SKEDGE_ROOT, 'tests', 'golden');
const read = (name) => new Uint8Array(readFileSync(join(golden, name)));
const publicKey = readFileSync(join(golden, 'test-signing.pub'), 'utf8');
const decryptionKey = readFileSync(join(golden, 'test-encryption.key'), 'utf8');

test('lite: parity with scikit-learn on every case (predict, predictBatch, columnar)', (t) => {
  let n = 0;
  for (const c of loadCases()) {
    const model = Model.fromBytes(c.bytes);
    try {
      const texts = c.expected.map((e) => e.text);
      const got = texts.map((x) => model.predict(x));
      n += assertParity(c, got);
      assert.deepEqual(model.predictBatch(texts), got, `${c.name}: predictBatch = predict`);
      assert.deepEqual(fromColumnar(model.predictBatch(texts, { columnar: true }), texts.length), got, c.name);
    } finally {
      model.free();
    }
  }
  t.diagnostic(`${n} predictions equal scikit-learn's with skedge/lite`);
});

test('lite: unsigned loads; a signed artifact loads unverified without a key, as in skedge', () => {
  const plain = Model.fromBytes(read('tiny.skedge'));
  const signed = Model.fromBytes(read('tiny.signed.skedge'));
  assert.deepEqual(signed.predict('good'), plain.predict('good'));
  assert.deepEqual(plain.predict('good'), Full.fromBytes(read('tiny.skedge')).predict('good'));
  assert.equal(plain.info().integrity, Full.fromBytes(read('tiny.skedge')).info().integrity);
  assert.equal(typeof plain.monitor, 'undefined', 'no monitor() in lite');
  assert.equal(typeof plain.explain, 'undefined', 'no explain() in lite');
});

test('lite: a pinned key, a decryption key or an encrypted artifact is FEATURE_UNAVAILABLE', () => {
  assert.equal(code(() => Model.fromBytes(read('tiny.signed.skedge'), { publicKey })), 'FEATURE_UNAVAILABLE');
  assert.equal(code(() => Model.fromBytes(read('tiny.skedge'), { publicKey })), 'FEATURE_UNAVAILABLE');
  assert.equal(code(() => Model.fromBytes(read('tiny.encrypted.skedge'))), 'FEATURE_UNAVAILABLE');
  assert.equal(code(() => Model.fromBytes(read('tiny.encrypted.skedge'), { decryptionKey })), 'FEATURE_UNAVAILABLE');
  assert.equal(
    code(() => Model.fromBytes(read('tiny.signed-encrypted.skedge'), { publicKey, decryptionKey })),
    'FEATURE_UNAVAILABLE',
  );
  // A key lite could not use is refused unread, malformed or not: the key decoders are not in it.
  for (const options of [{ publicKey: 'not a key' }, { publicKey: new Uint8Array(3) }, { publicKey: [] },
    { decryptionKey: 'not a key' }]) {
    assert.equal(code(() => Model.fromBytes(read('tiny.skedge'), options)), 'FEATURE_UNAVAILABLE', JSON.stringify(options));
  }
  const e = (() => { try { Model.fromBytes(read('tiny.encrypted.skedge')); } catch (err) { return err; } })();
  assert.match(e.message, /skedge\/lite/);
});

test('lite: format 2 is FEATURE_UNAVAILABLE (skedge repack converts it); the full entry reads it', () => {
  const v2 = new Uint8Array(readFileSync(join(golden, 'v2', 'tiny.skedge')));
  assert.equal(code(() => Model.fromBytes(v2)), 'FEATURE_UNAVAILABLE');
  const e = (() => { try { Model.fromBytes(v2); } catch (err) { return err; } })();
  assert.match(e.message, /skedge repack/);
  assert.deepEqual(Full.fromBytes(v2).predict('good'), Full.fromBytes(read('tiny.skedge')).predict('good'));
});

test('xxHash64 artifacts (written before the XXH3 flag) load in skedge and skedge/lite, same predictions', () => {
  const old = (name) => new Uint8Array(readFileSync(join(golden, 'xxh64', name)));
  const flags = (b) => b[10] | (b[11] << 8);
  assert.equal(flags(old('tiny.skedge')), 0);
  assert.equal(flags(read('tiny.skedge')), 0x4, 'every artifact written now has the XXH3 flag (FORMAT.md §3)');
  const texts = ['good', 'bad great', '', 'GOOD bad bad'];
  const require = createRequire(import.meta.url);
  const entries = { lite: Model, full: Full, 'lite (CJS)': require('skedge/lite').Model, 'full (CJS)': require('skedge').Model };
  for (const [entry, M] of Object.entries(entries)) {
    const now = M.fromBytes(read('tiny.skedge'));
    for (const name of ['tiny.skedge', 'tiny.signed.skedge']) {
      const m = M.fromBytes(old(name));
      assert.deepEqual(texts.map((t) => m.predict(t)), texts.map((t) => now.predict(t)), `${entry}: ${name}`);
      m.free();
    }
    for (const b of [old('tiny.skedge'), read('tiny.skedge')]) {
      const damaged = b.slice();
      damaged[damaged.length - 1] ^= 1;
      assert.equal(code(() => M.fromBytes(damaged)), 'ARTIFACT_CORRUPT', `${entry}: flags ${flags(b)}`);
      const swapped = b.slice();
      swapped[10] ^= 0x4; // the other checksum kind than the one stored
      assert.equal(code(() => M.fromBytes(swapped)), 'ARTIFACT_CORRUPT', `${entry}: flags ${flags(b)} swapped`);
    }
    const unknown = read('tiny.skedge');
    unknown[10] |= 0x10;
    assert.equal(code(() => M.fromBytes(unknown)), 'ARTIFACT_VERSION_UNSUPPORTED', entry);
    now.free();
  }
  const plain = Full.fromBytes(read('tiny.skedge'));
  for (const [name, options] of [['tiny.signed.skedge', { publicKey }], ['tiny.encrypted.skedge', { decryptionKey }],
    ['tiny.signed-encrypted.skedge', { publicKey, decryptionKey }]]) {
    const m = Full.fromBytes(old(name), options);
    assert.deepEqual(texts.map((t) => m.predict(t)), texts.map((t) => plain.predict(t)), name);
  }
});

test('lite: CommonJS entry', () => {
  const require = createRequire(import.meta.url);
  const { Model: Cjs } = require('skedge/lite');
  const m = Cjs.fromBytes(read('tiny.skedge'));
  assert.deepEqual(m.predictBatch(['good', 'bad']), ['good', 'bad'].map((x) => m.predict(x)));
  assert.equal(code(() => Cjs.fromBytes(read('tiny.signed.skedge'), { publicKey })), 'FEATURE_UNAVAILABLE');
});
