// The WebCrypto side of lib/signatures.mjs's cases, run inside the runtime under test.
/**
 * Runs inside a runtime with WebCrypto (a page, a Worker, Deno): loads each case with
 * `Model.load(bytes, { publicKey })` twice, once with `crypto.subtle.verify` asked (and counted)
 * and once with it throwing (the wasm decides), and returns `{ name: { webcrypto, wasm, asked } }`.
 * Imports nothing: workerd embeds this file as a module, Chromium gets its source as text.
 */
export async function verdictsIn(Model, cases) {
  const subtle = crypto.subtle;
  const verify = subtle.verify;
  let calls = 0;
  let wasmOnly = false;
  subtle.verify = function (...args) {
    calls++;
    if (wasmOnly) throw new Error('no WebCrypto verification: the wasm decides');
    return verify.apply(this, args);
  };
  const codeOf = async (fn) => {
    try {
      (await fn()).free();
      return 'OK';
    } catch (e) {
      return e instanceof Error && e.name === 'SkedgeError' ? e.code : `not a SkedgeError: ${e}`;
    }
  };
  const out = {};
  try {
    for (const c of cases) {
      const bytes = Uint8Array.from(atob(c.artifact), (ch) => ch.charCodeAt(0));
      wasmOnly = false;
      const before = calls;
      const webcrypto = await codeOf(() => Model.load(bytes, { publicKey: c.publicKey }));
      const asked = calls > before;
      wasmOnly = true;
      const wasm = await codeOf(() => Model.load(bytes, { publicKey: c.publicKey }));
      out[c.name] = { webcrypto, wasm, asked };
    }
  } finally {
    delete subtle.verify;
    if (subtle.verify !== verify) subtle.verify = verify;
  }
  return out;
}
