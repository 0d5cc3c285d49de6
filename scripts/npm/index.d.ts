// Public types of the `skedge` package. `Model` and the result types are generated from the Rust
// source (src/wasm/) by wasm-bindgen into core.d.ts (`skedge/lite`: lite.d.ts, derived from this
// file by scripts/build.sh, without the monitoring and experiment types: lite's runtime exports
// an `Experiment` whose constructor only throws `FEATURE_UNAVAILABLE`, left undeclared so that a
// lite project using it fails to compile; CommonJS: index.d.cts and lite.d.cts,
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
  SnapshotSink,
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
// experiments: begin (scripts/build.sh leaves this block out of skedge/lite)
export type { ExperimentOptions, Served, ExperimentSnapshot, FeedbackOutcome } from './core.js';
import type {
  Model,
  Follower,
  Label,
  TextInput,
  ExperimentOptions,
  Served,
  ExperimentSnapshot,
  FeedbackOutcome,
  FlushOptions,
  FlushResult,
} from './core.js';

/** What `Experiment.flush(sink)` hands each window to instead of POSTing it (an R2 bucket, say). */
export type ExperimentSink = (snapshot: ExperimentSnapshot, json: string) => unknown;

/**
 * Champion and challenger on the same production text (FORMAT.md §4): `mode: "shadow"` serves the
 * champion and scores a sample with both; `mode: "canary"` serves the challenger to a sticky
 * `share` of keys. Each arm is a `Model` or a `Model.follow` handle (an alias move replaces the
 * arm in place). Not in `skedge/lite`.
 */
export declare class Experiment {
  constructor(champion: Model | Follower, challenger: Model | Follower, options?: ExperimentOptions);
  /** The served prediction with its `arm` and `id`; `options.key` assigns the canary arm. A text,
   * or as `Model.predict` takes it the record `{ [inputColumn]: text }` when both arms were fitted
   * on that DataFrame column (arms fitted on different columns take texts only). */
  predict(text: TextInput, options?: { key?: string }): Served;
  /** The true label of prediction `id`, when it arrives. */
  feedback(id: string, label: Label): FeedbackOutcome;
  /** Closes the open window, queues its snapshot and returns it. */
  snapshot(): ExperimentSnapshot;
  /** The closed windows waiting for delivery, oldest first. */
  takePending(): ExperimentSnapshot[];
  /**
   * POSTs every queued window, oldest first (closing the open one first unless `closedOnly`), to
   * `endpoint` (`scripts/report.py serve`'s `/v1/snapshots`), or hands it to `endpoint` when that
   * is a function; as `Monitor.flush`: 201/409 sent, another 4xx dropped, network errors, 401,
   * 403, 408, 429, 5xx and a sink that threw keep it queued, in order, at most 64. An endpoint
   * that is not an http(s) URL (absolute, or relative to the page) rejects with `INVALID_INPUT`,
   * and nothing is taken from the queue.
   */
  flush(endpoint: string | URL | ExperimentSink, options?: FlushOptions): Promise<FlushResult>;
  /** Windows waiting for delivery. */
  readonly pending: number;
  /** Windows dropped so far because the queue (64) was full. */
  readonly dropped: number;
  /** Frees the experiment (not its models); later calls throw `MODEL_FREED` (twice: a no-op). */
  free(): void;
  /** `free()`, for `using`: set only where the runtime defines `Symbol.dispose` (Node ≥ 18.18
   * does; an older browser may not: call `free()` there). */
  [Symbol.dispose](): void;
}
// experiments: end

declare global {
  // `Model` and `Monitor` are disposable (`using model = Model.fromBytes(…)`); the symbol is
  // declared here for projects whose `lib` predates it (as @types/node does). Declared is not
  // defined: a runtime without `Symbol.dispose` has no such method (call `free()` there).
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
 * (`Model.load()` does it by itself); in Node it compiles the package's own .wasm now instead of
 * on the first `Model.fromBytes()` (`input` ignored); Deno and Workers instantiate on import.
 * It also warms the first load and prediction (Workers do at isolate start-up): the code of the
 * load and predict paths, and 2 MiB of wasm memory filled and checksummed once, so that a first
 * load of an artifact up to that size pays neither page faults nor baseline-compiled hashing.
 * In Node (the full build) it also warms a signed load: node:crypto's load, its SHA-256, Ed25519.
 */
export function init(input?: InitInput): Promise<void>;

/**
 * Initialises synchronously. In browsers `module` is required: the bytes of `skedge_bg.wasm` or
 * a compiled module (without it, `INVALID_INPUT`; `await init()` fetches it). In Node it compiles
 * the package's own .wasm now, and in Deno and Workers (instantiated on import) it only warms the
 * first calls: there `module` is ignored and may be left out.
 */
export function initSync(module?: ArrayBuffer | ArrayBufferView | WasmModule): void;

export default init;
