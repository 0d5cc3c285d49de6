// The code of the SkedgeError a call throws (failing the test when it does not throw, or throws
// something else): one helper for every JS test that checks refusals.
import assert from 'node:assert/strict';

export function code(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, 'a real Error');
    assert.equal(e.name, 'SkedgeError');
    assert.equal(typeof e.message, 'string');
    return e.code;
  }
  assert.fail('did not throw');
}
