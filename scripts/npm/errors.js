// Errors thrown by the JS side of skedge: the same shape as the ones made in Rust (src/wasm/).
export function skedgeError(code, message, cause) {
  const e = new Error(message, cause === undefined ? undefined : { cause });
  e.name = 'SkedgeError';
  e.code = code;
  return e;
}
