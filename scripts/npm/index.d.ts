// Public types of the `skedge` package. `Model` and the result types are generated from the Rust
// source (src/wasm/) by wasm-bindgen into core.d.ts (`skedge/lite`: lite.d.ts, derived from this
// file by scripts/build.sh, without the monitoring types).
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
  SkedgeError,
} from './core.js';

/** Where the .wasm comes from for `init()` in browsers. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/**
 * Initialises skedge's WebAssembly. Needed once in browsers before `Model.fromBytes()`
 * (`Model.load()` does it by itself); does nothing in Node, Deno and Workers, which initialise
 * on import.
 */
export function init(input?: InitInput): Promise<void>;

/** Initialises synchronously from the bytes of `skedge_bg.wasm` or a compiled module. */
export function initSync(module: BufferSource | WebAssembly.Module): void;

export default init;
