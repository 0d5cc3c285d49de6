// Public types of the `skedge` package. `Model` and the result types are generated from the Rust
// source (src/wasm/) by wasm-bindgen into core.d.ts (`skedge/lite`: lite.d.ts, derived from this
// file by scripts/build.sh, without the monitoring types; CommonJS: index.d.cts and lite.d.cts,
// the same pointing at core.d.cts). Only ECMAScript's own types and those every runtime's types
// declare (`URL`, `Request`, `Response`, `RequestInit`: lib.dom, @types/node, Deno, Workers) are
// used, so the package type-checks in a Node-only project and in a browser one alike.
export { Model } from './core.js';
export type {
  Monitor,
  Key,
  MonitorOptions,
  FlushOptions,
  FlushResult,
  Snapshot,
  Drift,
  Label,
  TextInput,
  Prediction,
  Columnar,
  PredictBatchOptions,
  Feature,
  Explanation,
  ModelInfo,
  FromBytesOptions,
  LoadOptions,
  LoadProgress,
  SkedgeErrorCode,
  Pointer,
  R2PointerSource,
  FollowOptions,
  Follower,
} from './core.js';
import type { SkedgeErrorCode } from './core.js';

declare global {
  // `Model` and `Monitor` are disposable (`using model = Model.fromBytes(…)`); the symbol is
  // declared here for projects whose `lib` predates it (as @types/node does).
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

/**
 * Every error skedge throws: `err.name === "SkedgeError"` and a stable `err.code`.
 * `err instanceof SkedgeError` holds for all of them, whichever entry (`skedge`, `skedge/lite`,
 * ESM or CommonJS) threw.
 */
export declare class SkedgeError extends Error {
  constructor(code: SkedgeErrorCode, message: string, options?: { cause?: unknown });
  name: 'SkedgeError';
  code: SkedgeErrorCode;
  /** `predictBatch`: index of the text that failed. */
  index?: number;
  static [Symbol.hasInstance](value: unknown): value is SkedgeError;
}

/** A compiled `WebAssembly.Module` where the project's types declare one (lib.dom does). */
export type WasmModule = typeof globalThis extends {
  WebAssembly: { Module: abstract new (...args: any[]) => infer M };
}
  ? M
  : never;

/** Where the .wasm comes from for `init()` in browsers: a URL, a response, its bytes, a module. */
export type InitInput = string | URL | Request | Response | ArrayBuffer | ArrayBufferView | WasmModule;

/**
 * Initialises skedge's WebAssembly. Needed once in browsers before `Model.fromBytes()`
 * (`Model.load()` does it by itself); does nothing in Node, Deno and Workers, which initialise
 * on import.
 */
export function init(input?: InitInput): Promise<void>;

/** Initialises synchronously from the bytes of `skedge_bg.wasm` or a compiled module. */
export function initSync(module: ArrayBuffer | ArrayBufferView | WasmModule): void;

export default init;
