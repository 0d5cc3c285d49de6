// The installed package under Node through `require` (entry `node.cjs`, wasm-bindgen's nodejs
// glue): parity on every fixture case and error codes.
'use strict';
const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const { Model, init } = require('skedge');

describe('node cjs', () => {
  let cases;
  test('require() gives the API', async () => {
    ({ loadCases: cases } = await import('./lib/cases.mjs'));
    assert.equal(typeof Model.fromBytes, 'function');
    assert.equal(typeof Model.load, 'function');
    await init();
  });

  test('parity with scikit-learn on every case', async () => {
    const { loadCases, assertParity } = await import('./lib/cases.mjs');
    let n = 0;
    for (const c of loadCases()) {
      const model = Model.fromBytes(c.bytes);
      n += assertParity(c, model.predictBatch(c.expected.map((e) => e.text)));
      model.free();
    }
    assert.ok(n > 0);
  });

  test('errors carry codes', async () => {
    const { loadCases } = await import('./lib/cases.mjs');
    const [c] = loadCases();
    const bad = c.bytes.slice();
    bad[bad.length - 1] ^= 1;
    const codeOf = (fn) => { try { fn(); } catch (e) { assert.equal(e.name, 'SkedgeError'); return e.code; } return 'no error'; };
    assert.equal(codeOf(() => Model.fromBytes(bad)), 'ARTIFACT_CORRUPT');
    const m = Model.fromBytes(c.bytes);
    assert.equal(codeOf(() => m.predict(7)), 'INVALID_INPUT');
    assert.equal(codeOf(() => Model.fromBytes(c.bytes, { integrity: `sha256-${Buffer.alloc(32).toString('base64')}` })), 'INTEGRITY_MISMATCH');
    m.free();
  });
});
