//! The JavaScript surface (npm package `skedge`): the one module that knows it runs in JS.
//!
//! `Model.fromBytes(bytes, { integrity })`, `await Model.load(url | Request, { integrity,
//! onProgress, maxBytes })`, `model.predict(text)`, `model.predictBatch(texts)`, `model.explain(text, k)`,
//! `model.info()`, `model.free()` / `Symbol.dispose`. Results cross as plain objects
//! (`serde_wasm_bindgen`'s JSON-compatible serializer); labels as a JS number or string, as in
//! `classes`. Every failure is a real `Error` with `name = "SkedgeError"` and a stable `code`
//! ([`crate::Error::code`], plus `INTEGRITY_MISMATCH` and `LOAD_FAILED` from here and
//! `NOT_INITIALIZED` and `MODEL_FREED` from the package's JS, scripts/npm/). Options objects are
//! checked: anything but an object, and a key the function does not know, is `INVALID_INPUT`.
//!
//! Text crosses as UTF-8, which `TextEncoder` makes from the JS string: a lone UTF-16 surrogate
//! becomes U+FFFD, which takes one code unit as well, so spans still index the caller's string.

#[cfg(feature = "monitor")]
mod experiment;
mod fetch;
mod follow;
mod hash;
mod model;
#[cfg(feature = "monitor")]
mod monitor;

use js_sys::{Array, JsString, Object, Reflect};
#[cfg(any(feature = "explain", feature = "monitor"))]
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::artifact::schema::Classes;
use crate::error::Cut;
use crate::MAX_TEXT_BYTES;

pub use hash::{set_hasher, set_verifier};

/// talc instead of std's dlmalloc: 4.7 KB less wasm code, less for the first call to compile,
/// and no slower (benches/PROFILE.md, "Wasm size").
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
pub use model::Model;
#[cfg(feature = "monitor")]
pub use monitor::MonitorHandle;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A label of `classes`: a number for integer classes, else a string. */
export type Label = number | string;

/** What `predict` takes: a text, or for a model fitted on a DataFrame column
 * (`info().inputColumn`) also the record `{ [inputColumn]: text }`, holding that one key. */
export type TextInput = string | Record<string, string>;

/** `predict`'s result: the same meaning as a line of `skedge predict`. */
export interface Prediction {
  /** The predicted class (an element of `info().classes`). */
  label: Label;
  /** `decision_function` flattened: one value for binary linear models (it scores `classes[1]`),
   * else one per class; naive Bayes: the joint log likelihood; calibrated and soft voting: the
   * probabilities; hard voting: the weighted votes per class. */
  decision: number[];
  /** `predict_proba`, one per class, or `null` when the estimator has none. */
  proba: number[] | null;
}

/** `predictBatch(texts, { columnar: true })`: every prediction in typed arrays, row-major. */
export interface Columnar {
  /** The classes (`info().classes`): row `i`'s label is `labels[labelIndex[i]]`. */
  labels: Label[];
  /** Index in `labels` of each text's predicted class. */
  labelIndex: Uint32Array;
  /** `width` decision values per text (`decision.subarray(i * width, (i + 1) * width)`). */
  decision: Float64Array;
  /** `labels.length` probabilities per text, or `null` when the estimator has none. */
  proba: Float64Array | null;
  /** Decision values per text: 1 for binary linear models, else one per class. */
  width: number;
}

export interface PredictBatchOptions {
  /** Return one `Columnar` object of typed arrays instead of `Prediction[]`. */
  columnar?: boolean;
}

// Written in JS (scripts/npm/extend.js): a text crosses into wasm as UTF-8, numbers come back.
export interface Model {
  /** `predict`, `decision_function` and `predict_proba` of one text (or record `{ column: text }`). */
  predict(text: TextInput): Prediction;
  /** `predict` of each text (or record) of an array, in order (the array is only read: a
   * `readonly` or frozen one will do). */
  predictBatch(texts: readonly TextInput[], options?: { columnar?: false }): Prediction[];
  /** `predict` of each text (or record) of an array, in order, as typed arrays. */
  predictBatch(texts: readonly TextInput[], options: { columnar: true }): Columnar;
  predictBatch(texts: readonly TextInput[], options?: PredictBatchOptions): Prediction[] | Columnar;
}

/** One feature of an explanation. */
export interface Feature {
  /** The vocabulary term (hashing vectorizers: the first feature of the text that hashed here). */
  term: string;
  /** Every distinct feature behind the column (one for vocabularies; hashing can collide). */
  terms: string[];
  /** Column in the row the classifier sees. */
  column: number;
  /** Index of the vectorizer (FeatureUnion member). */
  block: number;
  /** Value of the column after tf-idf and norms (binarized for BernoulliNB). */
  value: number;
  /** Weight of the column in each decision row. */
  weights: number[];
  /** `value * weights[r]`: what the feature added to each decision row. */
  contributions: number[];
  /** Every occurrence as `[start, end)` in UTF-16 code units of the input (`text.slice(start, end)`). */
  spans: [number, number][];
}

/** `explain`'s result: the prediction and the features that moved it most. */
export interface Explanation extends Prediction {
  /** Decision row the features are ranked by (the predicted class's, or 0 for one-row models). */
  row: number;
  /** Largest `|contribution|` to `row` first. */
  features: Feature[];
}

/** `model.info()`: the artifact's metadata as the loaded model holds it. `skedge inspect` prints
 * the same fields in snake case, less `integrity` and `maxTextBytes` and plus the envelope's
 * (`signed`, `signature_prehash`, `signature_verified`, `encrypted`, `checksum`); Python's
 * `Model.info()` is this in snake case, less `integrity`. */
export interface ModelInfo {
  name: string;
  version: string;
  classes: Label[];
  estimator: string;
  /** Columns of the row the classifier sees (`n_features_in_`), after any feature selection. */
  nFeatures: number;
  /** Hex sha256 of the artifact bytes. */
  sha256: string;
  /** `sha256-<base64>`: pass it as `integrity` to pin this artifact. */
  integrity: string;
  bytes: number;
  formatVersion: number;
  /** The DataFrame column a `ColumnTransformer` pipeline was fitted on (records are
   * `{ [inputColumn]: text }`), or `null` for a pipeline fitted on texts. */
  inputColumn: string | null;
  skedgeVersion: string;
  sklearnVersion: string;
  pythonVersion: string;
  numpyVersion: string;
  unicodeVersion: string;
  sourceSha256: string;
  created: string;
  /** `"exact"` (bit-identical to scikit-learn) or `"compact"` (f16 weights). */
  precision: string;
  /** For `compact`: agreement with scikit-learn measured by the exporter. */
  agreement?: {
    texts: number;
    labelChanges: number;
    maxAbsDecisionDiff: number;
    maxAbsProbaDiff: number;
  };
  metrics: Record<string, number>;
  provenance: Record<string, string>;
  /** Largest text accepted, in UTF-8 bytes. */
  maxTextBytes: number;
}

/** A 32-byte key: the bytes, or its text (the key file line `skedge-…:<64 hex>`, or 64 hex digits). */
export type Key = Uint8Array | ArrayBuffer | string;

export interface FromBytesOptions {
  /** Subresource-Integrity string `sha256-<base64>` (several space-separated: any may match). */
  integrity?: string;
  /** Pinned Ed25519 public key(s) (`skedge keygen`'s `.pub`): the artifact must be signed by one
   * of them, else `SIGNATURE_MISSING` / `SIGNATURE_INVALID`. Several overlap a key rotation. */
  publicKey?: Key | readonly Key[];
  /** XChaCha20-Poly1305 key (`skedge keygen --encryption`): the artifact must be encrypted with
   * it, else `ENCRYPTION_MISSING` / `DECRYPTION_FAILED`. Keep it server-side (a Worker secret). */
  decryptionKey?: Key;
}

export interface LoadProgress {
  /** Bytes received so far. */
  loaded: number;
  /** `Content-Length`, or `null` when unknown (or the response is content-encoded); cross-origin,
   * the one shown, which may be the compressed size (`loaded` can pass it). */
  total: number | null;
}

export interface LoadOptions extends FromBytesOptions {
  /** Called after each chunk of the body; bytes given to `Model.load` arrive in one piece: one
   * call, `{ loaded: n, total: n }`, before they are checked. What it throws rejects the load. */
  onProgress?: (progress: LoadProgress) => void;
  /** Passed to `fetch` as its second argument (headers, credentials, signal, ...). */
  init?: RequestInit;
  /** The largest artifact accepted, in bytes: an integer from 1 to 2^31 − 1 (the default: what
   * WebAssembly holds). A `Content-Length` over it is refused before the body is read where it is
   * the body's length (a same-origin or Node `fetch`, not content-encoded), and any other body (no
   * length, content-encoded, cross-origin, a `Response` built by a script) as soon as it passes
   * it: `INPUT_TOO_LARGE`. */
  maxBytes?: number;
}

/** `model.monitor()`'s options (FORMAT.md §4). */
export interface MonitorOptions {
  /** Probability that a prediction is sampled, in [0, 1] (default 1). */
  sampleRate?: number;
  /** Length of a window in seconds; by default a window lasts until `snapshot()` or `flush()`. */
  windowSeconds?: number;
  /** Seed of the sampler (an integer below 2^53, or a bigint below 2^64); by default 64 bits
   * from `crypto.getRandomValues`. The same seed draws the same sample; snapshot ids never derive
   * from it (each instance keys them with `crypto.getRandomValues`). */
  seed?: number | bigint;
  /** Sampled texts kept per window (at most 64, each cut to 1024 characters). Default 0: no text
   * ever leaves the device. */
  maxTexts?: number;
  /** Time predictions with `performance.now()`. Default: true, except in Cloudflare Workers,
   * whose timers do not advance during CPU work. */
  timing?: boolean;
}

/** `monitor.flush()`'s options. */
export interface FlushOptions {
  /** The collector's token, sent as `Authorization: Bearer <token>` (`?token=` with `beacon`):
   * 1 to 4096 visible ASCII characters (no spaces or control characters), else `INVALID_INPUT`
   * before anything is taken from the queue. Each POST is aborted after 30 s (where the runtime
   * has `AbortSignal.timeout`) and its snapshot kept for the next flush. */
  token?: string;
  /** Send with `navigator.sendBeacon` (delivered even while the page unloads; a snapshot counts
   * as sent once the browser queued it). Falls back to `fetch` where there is no sendBeacon. */
  beacon?: boolean;
  /** Send only windows that have closed (by `windowSeconds`), leaving the open one open: for a
   * server flushing after each response, which would otherwise cut a short window each time. */
  closedOnly?: boolean;
}

/** What `flush(sink)` hands each snapshot to instead of POSTing it to a collector (a Worker
 * writing it to an R2 bucket, say): the snapshot and its JSON text. Resolving means the snapshot
 * is stored (or already was: a retry of the same `id`); throwing or rejecting keeps it, and the
 * ones after it, queued for the next flush (`lastError.code` `SINK_FAILED`), unless what is thrown
 * has `rejected: true`: a snapshot the sink can never store is then dropped and counted in
 * `rejected` (`lastError.code` `SINK_REJECTED`), as a collector's 4xx is. */
export type SnapshotSink = (snapshot: Snapshot, json: string) => unknown;

/** What `flush()` did. */
export interface FlushResult {
  /** Snapshots the collector stored (201), or already had (409). */
  sent: number;
  /** Snapshots the collector refused for good (another 4xx), or the sink did (it threw an error
   * with `rejected: true`): dropped, not retried. */
  rejected: number;
  /** Snapshots still queued for the next flush (network errors, 401, 403, 408, 429, 5xx). */
  pending: number;
  /** Snapshots dropped since the monitor started because the queue (64) was full. */
  dropped: number;
}

/** A monitoring snapshot (FORMAT.md §4), as the collector receives it. */
export interface Snapshot {
  format: "skedge-monitor-snapshot";
  version: 1;
  id: string;
  model: { name: string; version: string; sha256: string };
  window: { index: number; start_ms: number; end_ms: number };
  sample_rate: number;
  seen: number;
  dropped: number;
  classes: string[];
  stats: {
    count: number;
    label_counts: number[];
    confidence: number[] | null;
    oov: { counts: number[]; no_features: number; oov_features: number; total_features: number } | null;
    length: number[];
    latency: { counts: number[]; sum_ms: number; max_ms: number } | null;
  };
  texts: string[];
}

/** Drift of the open window against the artifact's baseline (`null` entries: no data). */
export interface Drift {
  label_psi: number | null;
  confidence_psi: number | null;
  oov_psi: number | null;
  oov_shift: number | null;
  length_psi: number | null;
}

/** The stable `code` of a `SkedgeError`. */
export type SkedgeErrorCode =
  | "ARTIFACT_CORRUPT"
  | "ARTIFACT_VERSION_UNSUPPORTED"
  | "INTEGRITY_MISMATCH"
  | "NOT_INITIALIZED"
  | "INPUT_TOO_LARGE"
  | "INVALID_INPUT"
  | "LOAD_FAILED"
  /* Model.follow (FORMAT.md §5) */
  | "POINTER_INVALID"
  | "POINTER_STALE"
  /* signed and encrypted artifacts (FORMAT.md §3) */
  | "DECRYPTION_KEY_MISSING"
  | "SIGNATURE_MISSING"
  | "SIGNATURE_INVALID"
  | "ENCRYPTION_MISSING"
  | "DECRYPTION_FAILED"
  | "KEY_INVALID"
  /* skedge/lite: signatures, encryption and experiments (`new Experiment`) are left out */
  | "FEATURE_UNAVAILABLE"
  /* a method of a model after `free()` (or made with `new Model()`), of an experiment after
   * `free()`, of a `Model.follow` handle after `dispose()` */
  | "MODEL_FREED";
"#;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Readies a first load of up to `bytes` bytes (every entry's `init()` warm-up, extend.js): fills
/// that much wasm memory once and checksums it as a load does. The artifact's copy then lands on
/// pages the kernel has already mapped (a fresh page faults on first touch: about 1 ms per MB in
/// Node), and V8 has the checksum loop compiled by its optimising tier before the load runs it
/// (benches/PROFILE.md, "A warm-up that readies memory and the checksum"). The memory stays with
/// the allocator, which hands it to the next allocation.
#[wasm_bindgen(js_name = warmMemory, skip_typescript)]
pub fn warm_memory(bytes: usize) {
    let mut filled = Vec::new();
    if filled.try_reserve_exact(bytes).is_ok() {
        filled.resize(bytes, 1u8);
        std::hint::black_box(crate::artifact::checksum(crate::artifact::FLAG_XXH3, &filled));
    }
}

/// A real JS `Error` with `name = "SkedgeError"` and `code`.
pub(crate) fn error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    put(&e, "name", &"SkedgeError".into());
    put(&e, "code", &code.into());
    e.into()
}

#[wasm_bindgen]
extern "C" {
    /// An object this module made, written with `o[key] = value`. Rather than `Reflect.set`,
    /// `Error.name` and `Array` index setters: V8 compiles one wrapper per distinct import
    /// signature when it compiles the module, whether or not the import is called (benches/PROFILE.md,
    /// "Compile and instantiate").
    #[wasm_bindgen(extends = Object)]
    pub(crate) type Plain;
    #[wasm_bindgen(method, indexing_setter)]
    pub(crate) fn set(this: &Plain, key: &JsValue, value: &JsValue);
}

/// `o[key] = value` on an object this module made (a fresh object or `Error`: never throws).
pub(crate) fn put(o: &JsValue, key: &str, value: &JsValue) {
    o.unchecked_ref::<Plain>().set(&JsValue::from_str(key), value);
}

pub(crate) fn core_error(e: crate::Error) -> JsValue {
    error(e.code(), &e.to_string())
}

pub(crate) fn invalid(message: &str) -> JsValue {
    error("INVALID_INPUT", message)
}

pub(crate) fn type_name(v: &JsValue) -> String {
    if v.is_null() {
        "null".into()
    } else if Array::is_array(v) {
        "an array".into()
    } else {
        v.js_typeof().as_string().unwrap_or_default()
    }
}

/// The text of a JS value that must be a string, refusing anything else and refusing texts over
/// the limit before copying them into wasm memory when their length already says so.
pub(crate) fn text_of(v: &JsValue, what: &str) -> Result<String, JsValue> {
    let Some(s) = v.dyn_ref::<JsString>() else {
        return Err(invalid(&format!("{what} must be a string, got {}", type_name(v))));
    };
    // Each UTF-16 code unit is at least one UTF-8 byte.
    let units = s.length() as usize;
    if units > MAX_TEXT_BYTES {
        return Err(core_error(crate::Error::InputTooLarge {
            bytes: units,
            limit: MAX_TEXT_BYTES,
        }));
    }
    Ok(String::from(s))
}

#[cfg(any(feature = "explain", feature = "monitor"))]
pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| error("INVALID_INPUT", &e.to_string()))
}

/// A label as a JS number (integer classes) or string.
pub(crate) enum Label<'a> {
    Int(i64),
    Str(&'a str),
}

#[cfg(any(feature = "explain", feature = "monitor"))]
impl Serialize for Label<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // JS numbers: integers beyond 2^53 lose precision, as in JSON.parse of the CLI output.
            Label::Int(v) => s.serialize_f64(*v as f64),
            Label::Str(v) => s.serialize_str(v),
        }
    }
}

pub(crate) fn label(classes: &Classes, i: usize) -> Label<'_> {
    match classes {
        Classes::Int(v) => Label::Int(v.get(i).copied().unwrap_or_default()),
        Classes::Str(v) => Label::Str(v.get(i).map_or("", String::as_str)),
    }
}

/// The options object of `what` (`Model.fromBytes`, say): `None` when absent (`undefined`,
/// `null`); anything but a plain object, and any key not in `known`, is refused, so a misspelt
/// option (`{ integrty }`) or a string in its place never loads an artifact unchecked.
pub(crate) fn options_object(
    options: Option<Object>,
    what: &str,
    known: &[&str],
) -> Result<Option<Object>, JsValue> {
    let Some(o) = options else { return Ok(None) };
    if !o.is_object() || Array::is_array(&o) {
        return Err(invalid(&format!(
            "the options of {what} must be an object, got {}",
            type_name(&o)
        )));
    }
    for key in Object::keys(&o).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(invalid(&format!(
                "options.{} is not an option of {what} (known: {})",
                Cut(&key),
                known.join(", ")
            )));
        }
    }
    Ok(Some(o))
}

pub(crate) fn option_string(options: Option<&Object>, key: &str) -> Result<Option<String>, JsValue> {
    let Some(o) = options else { return Ok(None) };
    match Reflect::get(o, &key.into()) {
        Ok(v) if v.is_undefined() || v.is_null() => Ok(None),
        Ok(v) => match v.as_string() {
            Some(s) => Ok(Some(s)),
            None => Err(invalid(&format!(
                "options.{key} must be a string, got {}",
                type_name(&v)
            ))),
        },
        Err(e) => Err(e),
    }
}

/// `options[key]`, `None` when absent, `undefined` or `null`.
pub(crate) fn option(options: Option<&Object>, key: &str) -> Option<JsValue> {
    let v = Reflect::get(options?, &key.into()).ok()?;
    (!v.is_undefined() && !v.is_null()).then_some(v)
}

#[cfg(test)]
mod tests {
    //! `wasm-bindgen-test`: the binding itself, in Node and in a browser.
    use super::*;
    use crate::artifact::crypto::{decode_key, KeyKind};
    use crate::artifact::schema::{Classifier, Counts};
    use crate::integrity::base64;
    use js_sys::Uint8Array;
    use wasm_bindgen_test::*;

    /// The crate's tiny model with bigrams, a "not good" term and no tf-idf.
    fn artifact() -> Vec<u8> {
        let mut body = crate::artifact::example::tiny();
        body.metadata.metrics = [("accuracy".to_string(), 0.75)].into();
        let block = &mut body.pipeline.features[0];
        block.analyzer.ngram_range = (1, 2);
        let terms = ["bad", "good", "not good"];
        block.counts = Counts::Vocabulary {
            terms: terms.concat().into_bytes(),
            lengths: terms.iter().map(|t| t.len() as u32).collect(),
        };
        block.transforms.clear();
        let Classifier::Linear(linear) = &mut body.pipeline.classifier else {
            unreachable!("tiny() is a logistic regression")
        };
        linear.coef.data = vec![-2.0, 1.5, -4.0];
        crate::artifact::to_bytes(&body).unwrap()
    }

    fn model() -> Model {
        Model::from_bytes(&Uint8Array::from(&artifact()[..]).into(), None).unwrap()
    }

    fn get(v: &JsValue, key: &str) -> JsValue {
        Reflect::get(v, &key.into()).unwrap()
    }

    fn code(e: JsValue) -> String {
        assert_eq!(get(&e, "name").as_string().as_deref(), Some("SkedgeError"));
        assert!(e.is_instance_of::<js_sys::Error>());
        get(&e, "code").as_string().unwrap()
    }

    #[wasm_bindgen_test]
    fn predicts_a_label_index_and_its_values() {
        let m = model();
        assert_eq!(m.predict_string("good, good").unwrap(), 1, "pos");
        let d = 2.0 * 1.5 + 0.25;
        assert_eq!(m.predicted(0), d);
        assert_eq!(m.predicted(2), 1.0 / (1.0 + (-d).exp()));
        assert_eq!(m.predicted(1) + m.predicted(2), 1.0);
        assert!(m.predicted(3).is_nan(), "past the last value");
        assert_eq!(m.predict_string("bad").unwrap(), 0, "neg");
        assert_eq!(m.predicted(0), -2.0 + 0.25);
    }

    #[wasm_bindgen_test]
    fn batch_explain_info() {
        let m = model();
        let out = m.predict_packed(b"badnot good", &[3, 11]).unwrap();
        let index: Vec<u32> = js_sys::Uint32Array::new(&out.get(0)).to_vec();
        assert_eq!(index, [0, 0], "\"not good\" is negative");
        let decision = js_sys::Float64Array::new(&out.get(1)).to_vec();
        assert_eq!(decision, [-2.0 + 0.25, -4.0 + 1.5 + 0.25]);
        assert_eq!(js_sys::Float64Array::new(&out.get(2)).length(), 4);
        let empty = m.predict_packed(b"", &[]).unwrap();
        assert_eq!(js_sys::Float64Array::new(&empty.get(2)).length(), 0);
        let shape = m.shape().unwrap();
        let labels: Array = shape.get(0).unchecked_into();
        assert_eq!(labels.get(0).as_string().as_deref(), Some("neg"));
        assert_eq!(shape.get(1).as_f64(), Some(1.0), "width");
        assert_eq!(shape.get(2).as_bool(), Some(true), "probabilities");

        let e = m.explain(&"Not good 😀 GOOD".into(), JsValue::from(2)).unwrap();
        let features: Array = get(&e, "features").unchecked_into();
        assert_eq!(features.length(), 2);
        let first = features.get(0);
        assert_eq!(get(&first, "term").as_string().as_deref(), Some("not good"));
        let spans: Vec<(u32, u32)> = serde_wasm_bindgen::from_value(get(&first, "spans")).unwrap();
        assert_eq!(spans, [(0, 8)]);
        let second: Vec<(u32, u32)> = serde_wasm_bindgen::from_value(get(&features.get(1), "spans")).unwrap();
        assert_eq!(second, [(4, 8), (12, 16)]);

        let info = m.info().unwrap();
        assert_eq!(get(&info, "name").as_string().as_deref(), Some("tiny"));
        assert_eq!(get(&get(&info, "metrics"), "accuracy").as_f64(), Some(0.75));
        let sha = get(&info, "sha256").as_string().unwrap();
        assert_eq!(sha.len(), 64);
        let integrity = get(&info, "integrity").as_string().unwrap();
        let opts = Object::new();
        Reflect::set(&opts, &"integrity".into(), &integrity.into()).unwrap();
        assert!(Model::from_bytes(&Uint8Array::from(&artifact()[..]).into(), Some(opts)).is_ok());
    }

    #[wasm_bindgen_test]
    fn errors_carry_codes() {
        let mut bytes = artifact();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let corrupt = Model::from_bytes(&Uint8Array::from(&bytes[..]).into(), None);
        assert_eq!(code(corrupt.err().unwrap()), "ARTIFACT_CORRUPT");

        let mut bytes = artifact();
        bytes[8] = 9;
        let version = Model::from_bytes(&Uint8Array::from(&bytes[..]).into(), None);
        assert_eq!(code(version.err().unwrap()), "ARTIFACT_VERSION_UNSUPPORTED");

        let opts = Object::new();
        let wrong = format!("sha256-{}", base64(&[7; 32]));
        Reflect::set(&opts, &"integrity".into(), &wrong.into()).unwrap();
        let mismatch = Model::from_bytes(&Uint8Array::from(&artifact()[..]).into(), Some(opts));
        assert_eq!(code(mismatch.err().unwrap()), "INTEGRITY_MISMATCH");

        let m = model();
        let text = JsValue::from("text");
        assert_eq!(
            code(m.input_text(&JsValue::from(42), &text).unwrap_err()),
            "INVALID_INPUT"
        );
        assert_eq!(
            code(m.input_text(&JsValue::NULL, &text).unwrap_err()),
            "INVALID_INPUT"
        );
        let e = m.predict_packed(b"ok\xff", &[2, 3]).unwrap_err();
        assert_eq!(get(&e, "index").as_f64(), Some(1.0));
        assert_eq!(code(e), "INVALID_INPUT");
        assert_eq!(code(m.predict_packed(b"ok", &[3]).unwrap_err()), "INVALID_INPUT");
        let big = "a".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(
            code(m.input_text(&big.as_str().into(), &text).unwrap_err()),
            "INPUT_TOO_LARGE"
        );
        assert_eq!(code(m.predict_string(&big).unwrap_err()), "INPUT_TOO_LARGE");
    }

    #[wasm_bindgen_test]
    fn options_and_k_are_checked() {
        let bytes = || JsValue::from(Uint8Array::from(&artifact()[..]));
        let not_object: Object = JsValue::from("sha256-x").unchecked_into();
        assert_eq!(
            code(Model::from_bytes(&bytes(), Some(not_object)).err().unwrap()),
            "INVALID_INPUT"
        );
        let misspelt = Object::new();
        Reflect::set(&misspelt, &"integrty".into(), &"sha256-x".into()).unwrap();
        let e = Model::from_bytes(&bytes(), Some(misspelt)).err().unwrap();
        assert_eq!(code(e.clone()), "INVALID_INPUT");
        let message = String::from(e.unchecked_into::<js_sys::Error>().message());
        assert!(message.contains("options.integrty"), "{message}");

        let m = model();
        for k in [-1.0, 0.0, f64::NAN, 2.5, 4294967297.0, f64::INFINITY] {
            let e = m.explain(&"good".into(), JsValue::from(k)).unwrap_err();
            assert_eq!(code(e), "INVALID_INPUT", "k = {k}");
        }
        assert_eq!(
            code(m.explain(&"good".into(), "3".into()).unwrap_err()),
            "INVALID_INPUT"
        );
        assert!(m.explain(&"good".into(), JsValue::UNDEFINED).is_ok());
        // A decomposed accent stays with its letter: the analyzer reads "good", the span covers
        // "good" and the combining acute accent after it.
        let e = m.explain(&"good\u{301}, good".into(), JsValue::from(1)).unwrap();
        let first = get(&e, "features").unchecked_into::<Array>().get(0);
        let spans: Vec<(u32, u32)> = serde_wasm_bindgen::from_value(get(&first, "spans")).unwrap();
        assert_eq!(spans, [(0, 5), (7, 11)]);
    }

    #[wasm_bindgen_test]
    fn lone_surrogates_become_replacement_characters() {
        let m = model();
        let s: JsValue = js_sys::JSON::parse(r#""good \ud800 good""#).unwrap();
        let e = m.explain(&s, JsValue::from(1)).unwrap();
        let spans: Vec<(u32, u32)> = serde_wasm_bindgen::from_value(get(
            &get(&e, "features").unchecked_into::<Array>().get(0),
            "spans",
        ))
        .unwrap();
        assert_eq!(spans, [(0, 4), (7, 11)]);
    }

    #[wasm_bindgen_test]
    fn keys_from_text_and_bytes() {
        let sealed = include_bytes!("../../tests/golden/tiny.signed-encrypted.skedge");
        let public = include_str!("../../tests/golden/test-signing.pub");
        let secret = include_str!("../../tests/golden/test-encryption.key");
        let load = |public: JsValue, key: JsValue| {
            let opts = Object::new();
            Reflect::set(&opts, &"publicKey".into(), &public).unwrap();
            Reflect::set(&opts, &"decryptionKey".into(), &key).unwrap();
            Model::from_bytes(&Uint8Array::from(&sealed[..]).into(), Some(opts))
        };
        let key = decode_key(secret, KeyKind::Encryption).unwrap();
        let m = load(public.into(), Uint8Array::from(&key[..]).into()).unwrap();
        assert_eq!(m.predict_string("good, good").unwrap(), 1, "pos");
        assert!(load(Array::of1(&public.into()).into(), secret.into()).is_ok());
        let other = "ab".repeat(32);
        assert_eq!(
            code(load(public.into(), other.as_str().into()).err().unwrap()),
            "DECRYPTION_FAILED"
        );
        assert_eq!(
            code(load(other.as_str().into(), secret.into()).err().unwrap()),
            "KEY_INVALID"
        );
        assert_eq!(
            code(load(secret.into(), secret.into()).err().unwrap()),
            "KEY_INVALID"
        );
        assert_eq!(
            code(load(JsValue::from(1), secret.into()).err().unwrap()),
            "INVALID_INPUT"
        );
        let short = Uint8Array::new_with_length(31);
        assert_eq!(
            code(load(public.into(), short.into()).err().unwrap()),
            "KEY_INVALID"
        );
        let opts = Object::new();
        Reflect::set(&opts, &"publicKey".into(), &public.into()).unwrap();
        let plain = Model::from_bytes(&Uint8Array::from(&artifact()[..]).into(), Some(opts));
        assert_eq!(code(plain.err().unwrap()), "SIGNATURE_MISSING");
    }

    #[wasm_bindgen_test]
    fn monitor_counts_and_snapshots() {
        let mut m = model();
        let opts = Object::new();
        Reflect::set(&opts, &"seed".into(), &JsValue::from(3)).unwrap();
        let mon = m.monitor(opts.into()).unwrap();
        m.predict_string("good").unwrap();
        m.predict_packed(b"badnot good", &[3, 11]).unwrap();
        assert_eq!(mon.seen(), 3.0);
        let s = mon.snapshot().unwrap();
        assert_eq!(get(&get(&s, "stats"), "count").as_f64(), Some(3.0));
        assert_eq!(
            get(&s, "format").as_string().as_deref(),
            Some("skedge-monitor-snapshot")
        );
        assert_eq!(mon.pending(), 1.0);
        assert!(mon.drift().unwrap().is_null(), "no baseline in this artifact");
        m.stop_monitoring();
        m.predict_string("good").unwrap();
        assert_eq!(mon.seen(), 0.0);
        let bad = Object::new();
        Reflect::set(&bad, &"sampleRate".into(), &JsValue::from(1.5)).unwrap();
        let e = m.monitor(bad.into()).err().unwrap();
        assert_eq!(code(e.clone()), "INVALID_INPUT");
        let message = e.unchecked_into::<js_sys::Error>().message();
        assert!(String::from(message).contains("got 1.5"));
    }
}
