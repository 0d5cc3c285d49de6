// Errors thrown by the JS side of skedge: the same shape as the ones made in Rust (src/wasm/).
// scripts/build.sh derives errors.cjs from this file for the CommonJS entry.

/**
 * Every error skedge throws is an `Error` named `SkedgeError` with a stable `code`. Those made in
 * WebAssembly are plain `Error`s, and `skedge/lite` or a CommonJS copy has its own class, so
 * `instanceof` tests the shape (name and code), not the prototype: `e instanceof SkedgeError`
 * holds for every error any copy of skedge threw.
 */
export class SkedgeError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'SkedgeError';
    this.code = code;
  }

  static [Symbol.hasInstance](e) {
    return e instanceof Error && e.name === 'SkedgeError' && typeof e.code === 'string';
  }
}

export function skedgeError(code, message, cause) {
  return new SkedgeError(code, message, cause === undefined ? undefined : { cause });
}
