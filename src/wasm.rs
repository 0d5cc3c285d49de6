//! The JavaScript surface (npm package `skedge`): the one module that knows it runs in JS.
//!
//! `Model.fromBytes(bytes, { integrity })`, `await Model.load(url | Request, { integrity,
//! onProgress })`, `model.predict(text)`, `model.predictBatch(texts)`, `model.explain(text, k)`,
//! `model.info()`, `model.free()` / `Symbol.dispose`. Results cross as plain objects
//! (`serde_wasm_bindgen`'s JSON-compatible serializer); labels as a JS number or string, as in
//! `classes`. Every failure is a real `Error` with `name = "SkedgeError"` and a stable `code`
//! ([`crate::Error::code`], plus `INTEGRITY_MISMATCH` and `LOAD_FAILED` from here and
//! `NOT_INITIALIZED` from the package's JS entry points).
//!
//! Text crosses as UTF-8, which `TextEncoder` makes from the JS string: a lone UTF-16 surrogate
//! becomes U+FFFD, which takes one code unit as well, so spans still index the caller's string.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use js_sys::{Array, ArrayBuffer, Function, JsString, Object, Promise, Reflect, Uint8Array};
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::artifact::crypto::{decode_key, KeyKind, KEY_LEN};
use crate::artifact::schema::Classes;
use crate::artifact::LoadOptions;
use crate::classify::n_classes;
use crate::monitor::{Monitor, MonitorConfig, Snapshot};
use crate::{Prediction, TextClassifier, MAX_TEXT_BYTES};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A label of `classes`: a number for integer classes, else a string. */
export type Label = number | string;

/** `predict`'s result: the same meaning as a line of `skedge predict`. */
export interface Prediction {
  /** The predicted class (an element of `info().classes`). */
  label: Label;
  /** `decision_function` flattened: one value for binary linear models (it scores `classes[1]`),
   * else one per class; naive Bayes: the joint log likelihood; calibrated: the probabilities. */
  decision: number[];
  /** `predict_proba`, one per class, or `null` when the estimator has none. */
  proba: number[] | null;
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

/** Artifact metadata, as `skedge inspect` prints it (camelCase). */
export interface ModelInfo {
  name: string;
  version: string;
  classes: Label[];
  estimator: string;
  nFeatures: number;
  /** Hex sha256 of the artifact bytes. */
  sha256: string;
  /** `sha256-<base64>`: pass it as `integrity` to pin this artifact. */
  integrity: string;
  bytes: number;
  formatVersion: number;
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
  publicKey?: Key | Key[];
  /** XChaCha20-Poly1305 key (`skedge keygen --encryption`): the artifact must be encrypted with
   * it, else `ENCRYPTION_MISSING` / `DECRYPTION_FAILED`. Keep it server-side (a Worker secret). */
  decryptionKey?: Key;
}

export interface LoadProgress {
  /** Bytes received so far. */
  loaded: number;
  /** `Content-Length`, or `null` when unknown (or the response is content-encoded). */
  total: number | null;
}

export interface LoadOptions extends FromBytesOptions {
  /** Called after each chunk of the body. */
  onProgress?: (progress: LoadProgress) => void;
  /** Passed to `fetch` as its second argument (headers, credentials, signal, ...). */
  init?: RequestInit;
}

/** `model.monitor()`'s options (FORMAT.md §4). */
export interface MonitorOptions {
  /** Probability that a prediction is sampled, in [0, 1] (default 1). */
  sampleRate?: number;
  /** Length of a window in seconds; by default a window lasts until `snapshot()` or `flush()`. */
  windowSeconds?: number;
  /** Seed of the sampler (an integer below 2^53, or a bigint below 2^64); by default 64 bits
   * from `crypto.getRandomValues`. It also makes snapshot ids unique: give each instance its own. */
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
  /** The collector's token, sent as `Authorization: Bearer <token>` (`?token=` with `beacon`). */
  token?: string;
  /** Send with `navigator.sendBeacon` (delivered even while the page unloads; a snapshot counts
   * as sent once the browser queued it). Falls back to `fetch` where there is no sendBeacon. */
  beacon?: boolean;
}

/** What `flush()` did. */
export interface FlushResult {
  /** Snapshots the collector stored (201), or already had (409). */
  sent: number;
  /** Snapshots the collector refused for good (another 4xx): dropped, not retried. */
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
  /* signed and encrypted artifacts (FORMAT.md §3) */
  | "DECRYPTION_KEY_MISSING"
  | "SIGNATURE_MISSING"
  | "SIGNATURE_INVALID"
  | "ENCRYPTION_MISSING"
  | "DECRYPTION_FAILED"
  | "KEY_INVALID";

/** Every error skedge throws: `err.name === "SkedgeError"`, `err.code` is stable. */
export interface SkedgeError extends Error {
  name: "SkedgeError";
  code: SkedgeErrorCode;
  /** `predictBatch`: index of the text that failed. */
  index?: number;
}
"#;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// A real JS `Error` with `name = "SkedgeError"` and `code`.
fn error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("SkedgeError");
    let _ = Reflect::set(&e, &JsValue::from_str("code"), &JsValue::from_str(code));
    e.into()
}

fn core_error(e: crate::Error) -> JsValue {
    error(e.code(), &e.to_string())
}

fn invalid(message: &str) -> JsValue {
    error("INVALID_INPUT", message)
}

fn type_name(v: &JsValue) -> String {
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
fn text_of(v: &JsValue, what: &str) -> Result<String, JsValue> {
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

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| error("INVALID_INPUT", &e.to_string()))
}

/// A label as a JS number (integer classes) or string.
enum Label<'a> {
    Int(i64),
    Str(&'a str),
}

impl Serialize for Label<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // JS numbers: integers beyond 2^53 lose precision, as in JSON.parse of the CLI output.
            Label::Int(v) => s.serialize_f64(*v as f64),
            Label::Str(v) => s.serialize_str(v),
        }
    }
}

fn label(classes: &Classes, i: usize) -> Label<'_> {
    match classes {
        Classes::Int(v) => Label::Int(v.get(i).copied().unwrap_or_default()),
        Classes::Str(v) => Label::Str(v.get(i).map_or("", String::as_str)),
    }
}

#[derive(Serialize)]
struct PredictionOut<'a> {
    label: Label<'a>,
    decision: &'a [f64],
    proba: Option<&'a [f64]>,
}

impl<'a> PredictionOut<'a> {
    fn new(p: &'a Prediction, classes: &'a Classes) -> Self {
        PredictionOut {
            label: label(classes, p.label),
            decision: &p.decision,
            proba: p.proba.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct FeatureOut<'a> {
    term: &'a str,
    terms: &'a [String],
    column: u32,
    block: usize,
    value: f64,
    weights: &'a [f64],
    contributions: &'a [f64],
    spans: &'a [(u32, u32)],
}

#[derive(Serialize)]
struct ExplanationOut<'a> {
    #[serde(flatten)]
    prediction: PredictionOut<'a>,
    row: usize,
    features: Vec<FeatureOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InfoOut<'a> {
    name: &'a str,
    version: &'a str,
    classes: Vec<Label<'a>>,
    estimator: &'a str,
    n_features: u64,
    sha256: &'a str,
    integrity: String,
    bytes: usize,
    format_version: u16,
    skedge_version: &'a str,
    sklearn_version: &'a str,
    python_version: &'a str,
    numpy_version: &'a str,
    unicode_version: &'a str,
    source_sha256: &'a str,
    created: &'a str,
    precision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agreement: Option<AgreementOut>,
    metrics: &'a BTreeMap<String, f64>,
    provenance: &'a BTreeMap<String, String>,
    max_text_bytes: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AgreementOut {
    texts: u64,
    label_changes: u64,
    max_abs_decision_diff: f64,
    max_abs_proba_diff: f64,
}

/// A loaded skedge model.
#[wasm_bindgen]
pub struct Model {
    /// Owns the artifact (`inner.artifact()`), so its sha256 is computed only when asked for
    /// (`info()`, `monitor()`): hashing was half of `fromBytes`.
    inner: TextClassifier,
    sha256: std::cell::OnceCell<[u8; 32]>,
    bytes: usize,
    monitor: Option<Rc<RefCell<Live>>>,
}

/// A monitor and how it times predictions; shared by the `Model` that feeds it and the
/// `Monitor` handle that flushes it (which outlives neither's borrow across an `await`).
struct Live {
    monitor: Monitor,
    timing: bool,
}

#[wasm_bindgen]
impl Model {
    /// Loads an artifact from its bytes (`Uint8Array`, `ArrayBuffer` or any `ArrayBufferView`),
    /// checking `options.integrity` (`sha256-<base64>`) first when given, then the signature
    /// (`options.publicKey`) and decrypting (`options.decryptionKey`) as FORMAT.md §3 says.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer | ArrayBufferView")] bytes: &JsValue,
        #[wasm_bindgen(unchecked_param_type = "FromBytesOptions")] options: Option<Object>,
    ) -> Result<Model, JsValue> {
        let bytes = bytes_of(bytes)?;
        let integrity = option_string(options.as_ref(), "integrity")?;
        let keys = load_options(options.as_ref())?;
        Model::new(bytes, integrity.as_deref(), &keys)
    }

    /// Fetches an artifact (`fetch(input, options.init)`), reporting progress, checks its
    /// integrity and loads it.
    pub async fn load(
        #[wasm_bindgen(unchecked_param_type = "string | URL | Request")] input: JsValue,
        #[wasm_bindgen(unchecked_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Model, JsValue> {
        let integrity = option_string(options.as_ref(), "integrity")?;
        let keys = load_options(options.as_ref())?;
        let on_progress = match options.as_ref().map(|o| Reflect::get(o, &"onProgress".into())) {
            Some(Ok(f)) if f.is_function() => Some(f.unchecked_into::<Function>()),
            Some(Ok(f)) if f.is_undefined() || f.is_null() => None,
            None => None,
            _ => return Err(invalid("options.onProgress must be a function")),
        };
        let init = match options.as_ref().map(|o| Reflect::get(o, &"init".into())) {
            Some(Ok(v)) => v,
            _ => JsValue::UNDEFINED,
        };
        let bytes = download(&input, &init, on_progress.as_ref()).await?;
        Model::new(bytes, integrity.as_deref(), &keys)
    }

    fn new(bytes: Vec<u8>, integrity: Option<&str>, keys: &LoadOptions) -> Result<Model, JsValue> {
        let sha256 = std::cell::OnceCell::new();
        if let Some(integrity) = integrity {
            check_integrity(integrity, sha256.get_or_init(|| Sha256::digest(&bytes).into()))?;
        }
        let len = bytes.len();
        // The buffer becomes the model's storage: format 3 is read in place, never copied.
        let inner = TextClassifier::from_vec_with(bytes, keys).map_err(core_error)?;
        Ok(Model {
            inner,
            sha256,
            bytes: len,
            monitor: None,
        })
    }

    /// Sha256 of the artifact bytes, computed on first use.
    fn digest(&self) -> &[u8; 32] {
        self.sha256
            .get_or_init(|| Sha256::digest(self.inner.artifact()).into())
    }

    /// `predict` of the core, recorded by the monitor when one is on.
    fn predict_text(&self, text: &str) -> Result<Prediction, crate::Error> {
        let Some(live) = &self.monitor else {
            return self.inner.predict(text);
        };
        let timing = live.try_borrow().is_ok_and(|l| l.timing);
        let t0 = if timing { performance_now().ok() } else { None };
        let p = self.inner.predict(text)?;
        let latency = t0.and_then(|t0| Some((performance_now().ok()? - t0).max(0.0)));
        if let Ok(mut l) = live.try_borrow_mut() {
            l.monitor
                .record(&self.inner, text, &p, latency, js_sys::Date::now());
        }
        Ok(p)
    }

    /// Starts monitoring this model's `predict` and `predictBatch` calls (FORMAT.md §4) and
    /// returns the monitor. A monitor started before stops recording (it can still be flushed).
    #[wasm_bindgen(unchecked_return_type = "Monitor")]
    pub fn monitor(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "MonitorOptions")] options: Option<Object>,
    ) -> Result<MonitorHandle, JsValue> {
        let o = options.as_ref();
        let seed = match option(o, "seed") {
            None => random_seed(),
            Some(v) => seed_of(&v)?,
        };
        // Checked here too, so the messages show the value (formatted by JS: the core leaves
        // floats out of its messages in wasm, see `monitor::Got`).
        let number = |key: &str, ok: fn(f64) -> bool, what: &str| -> Result<Option<f64>, JsValue> {
            match option_number(o, key)? {
                Some(n) if !ok(n) => Err(invalid(&format!(
                    "options.{key} must be {what}, got {}",
                    js_number(n)
                ))),
                n => Ok(n),
            }
        };
        let sample_rate = number("sampleRate", |n| (0.0..=1.0).contains(&n), "in [0, 1]")?;
        let window_seconds = number("windowSeconds", |n| n.is_finite() && n >= 0.001, "≥ 0.001")?;
        let max_texts = number("maxTexts", |n| n >= 0.0 && n.fract() == 0.0, "a count")?;
        let config = MonitorConfig {
            sample_rate: sample_rate.unwrap_or(1.0),
            window_seconds,
            seed,
            max_texts: max_texts.map_or(0, |n| n.min(1e9) as usize),
        };
        let timing = match option(o, "timing") {
            None => !in_workers(),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| invalid("options.timing must be a boolean"))?,
        };
        let monitor = Monitor::new(&self.inner, &hex(self.digest()), config, js_sys::Date::now())
            .map_err(core_error)?;
        let live = Rc::new(RefCell::new(Live { monitor, timing }));
        self.monitor = Some(live.clone());
        Ok(MonitorHandle { live })
    }

    /// Stops recording predictions (the monitor keeps its snapshots: flush it once more).
    #[wasm_bindgen(js_name = stopMonitoring)]
    pub fn stop_monitoring(&mut self) {
        self.monitor = None;
    }

    /// `predict`, `decision_function` and `predict_proba` of one text: `{ label, decision, proba }`.
    #[wasm_bindgen(unchecked_return_type = "Prediction")]
    pub fn predict(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] text: &JsValue,
    ) -> Result<JsValue, JsValue> {
        let text = text_of(text, "text")?;
        let p = self.predict_text(&text).map_err(core_error)?;
        to_js(&PredictionOut::new(&p, self.inner.classes()))
    }

    /// `predict` of each text of an array, in order.
    #[wasm_bindgen(js_name = predictBatch, unchecked_return_type = "Prediction[]")]
    pub fn predict_batch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string[]")] texts: &JsValue,
    ) -> Result<JsValue, JsValue> {
        let Some(texts) = texts.dyn_ref::<Array>() else {
            return Err(invalid(&format!(
                "texts must be an array of strings, got {}",
                type_name(texts)
            )));
        };
        let out = Array::new_with_length(texts.length());
        for (i, t) in texts.iter().enumerate() {
            // Errors name the failing element: `err.index`.
            let at = |e: JsValue| {
                let _ = Reflect::set(&e, &"index".into(), &JsValue::from(i as u32));
                e
            };
            let text = text_of(&t, &format!("texts[{i}]")).map_err(at)?;
            let p = self
                .predict_text(&text)
                .map_err(|e| at(error(e.code(), &format!("texts[{i}]: {e}"))))?;
            out.set(i as u32, to_js(&PredictionOut::new(&p, self.inner.classes()))?);
        }
        Ok(out.into())
    }

    /// The prediction and the `k` features (default 10) that moved the predicted class's decision
    /// most, each with its term, value, weights, contributions and spans in `text`.
    #[wasm_bindgen(unchecked_return_type = "Explanation")]
    pub fn explain(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] text: &JsValue,
        k: Option<u32>,
    ) -> Result<JsValue, JsValue> {
        let text = text_of(text, "text")?;
        let p = self.inner.predict(&text).map_err(core_error)?;
        let features = self
            .inner
            .explain(&text, k.unwrap_or(10) as usize)
            .map_err(core_error)?;
        let row = self.inner.explained_row(p.label);
        to_js(&ExplanationOut {
            prediction: PredictionOut::new(&p, self.inner.classes()),
            row,
            features: features
                .iter()
                .map(|c| FeatureOut {
                    term: c.terms.first().map_or("", String::as_str),
                    terms: &c.terms,
                    column: c.column,
                    block: c.block,
                    value: c.value,
                    weights: &c.weights,
                    contributions: &c.contributions,
                    spans: &c.spans,
                })
                .collect(),
        })
    }

    /// Artifact metadata: name, version, classes, sha256, metrics, provenance, ...
    #[wasm_bindgen(unchecked_return_type = "ModelInfo")]
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let m = self.inner.metadata();
        let classes = self.inner.classes();
        let sha256 = hex(self.digest());
        to_js(&InfoOut {
            name: &m.name,
            version: &m.version,
            classes: (0..n_classes(classes)).map(|i| label(classes, i)).collect(),
            estimator: self.inner.classifier().estimator(),
            n_features: self.inner.vectorizers().iter().map(|v| v.n_features()).sum(),
            sha256: &sha256,
            integrity: format!("sha256-{}", base64(self.digest())),
            bytes: self.bytes,
            format_version: self.inner.format_version(),
            skedge_version: &m.skedge_version,
            sklearn_version: &m.sklearn_version,
            python_version: &m.python_version,
            numpy_version: &m.numpy_version,
            unicode_version: &m.unicode_version,
            source_sha256: &m.source_sha256,
            created: &m.created,
            precision: m.precision.name(),
            agreement: m.agreement.as_ref().map(|a| AgreementOut {
                texts: a.texts,
                label_changes: a.label_changes,
                max_abs_decision_diff: a.max_abs_decision_diff,
                max_abs_proba_diff: a.max_abs_proba_diff,
            }),
            metrics: &m.metrics,
            provenance: &m.provenance,
            max_text_bytes: MAX_TEXT_BYTES,
        })
    }
}

/// Copies bytes from a `Uint8Array`, an `ArrayBuffer` or another `ArrayBufferView`.
fn bytes_of(v: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    if ArrayBuffer::is_view(v) {
        let get = |k: &str| Reflect::get(v, &k.into()).unwrap_or(JsValue::UNDEFINED);
        if let Some(buffer) = get("buffer").dyn_ref::<ArrayBuffer>() {
            let offset = get("byteOffset").as_f64().unwrap_or(0.0) as u32;
            let len = get("byteLength").as_f64().unwrap_or(0.0) as u32;
            return Ok(Uint8Array::new_with_byte_offset_and_length(buffer, offset, len).to_vec());
        }
    }
    Err(invalid(&format!(
        "bytes must be a Uint8Array or an ArrayBuffer, got {}",
        type_name(v)
    )))
}

fn option_string(options: Option<&Object>, key: &str) -> Result<Option<String>, JsValue> {
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
        Err(_) => Ok(None),
    }
}

/// `options[key]`, `None` when absent, `undefined` or `null`.
fn option(options: Option<&Object>, key: &str) -> Option<JsValue> {
    let v = Reflect::get(options?, &key.into()).ok()?;
    (!v.is_undefined() && !v.is_null()).then_some(v)
}

fn option_number(options: Option<&Object>, key: &str) -> Result<Option<f64>, JsValue> {
    match option(options, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) => Ok(Some(n)),
            None => Err(invalid(&format!(
                "options.{key} must be a number, got {}",
                type_name(&v)
            ))),
        },
    }
}

/// `publicKey` (one key or an array of keys) and `decryptionKey` of the options.
fn load_options(options: Option<&Object>) -> Result<LoadOptions, JsValue> {
    let mut keys = LoadOptions::default();
    if let Some(v) = option(options, "publicKey") {
        match v.dyn_ref::<Array>() {
            Some(list) => {
                if list.length() == 0 {
                    return Err(invalid("options.publicKey is an empty array"));
                }
                for k in list.iter() {
                    keys.public_keys
                        .push(key_of(&k, KeyKind::SigningPublic, "publicKey")?);
                }
            }
            None => keys
                .public_keys
                .push(key_of(&v, KeyKind::SigningPublic, "publicKey")?),
        }
    }
    if let Some(v) = option(options, "decryptionKey") {
        keys.decryption_key = Some(key_of(&v, KeyKind::Encryption, "decryptionKey")?);
    }
    Ok(keys)
}

/// A key from its bytes (`Uint8Array`, `ArrayBuffer`) or its text (`crypto::decode_key`).
fn key_of(v: &JsValue, kind: KeyKind, what: &str) -> Result<[u8; KEY_LEN], JsValue> {
    if let Some(text) = v.as_string() {
        return decode_key(&text, kind).map_err(core_error);
    }
    let bytes = if let Some(a) = v.dyn_ref::<Uint8Array>() {
        a.to_vec()
    } else if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
        Uint8Array::new(b).to_vec()
    } else {
        return Err(invalid(&format!(
            "options.{what} must be a Uint8Array or a string, got {}",
            type_name(v)
        )));
    };
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        core_error(crate::Error::KeyInvalid(format!(
            "options.{what} must be {KEY_LEN} bytes, got {}",
            bytes.len()
        )))
    })
}

/// `String(n)` of JS: no float formatting code in the wasm.
fn js_number(n: f64) -> String {
    js_sys::Number::from(n)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// A seed: a non-negative integer number below 2^53 or a bigint below 2^64.
fn seed_of(v: &JsValue) -> Result<u64, JsValue> {
    if let Some(n) = v.as_f64() {
        if n >= 0.0 && n.fract() == 0.0 && n < 9_007_199_254_740_992.0 {
            return Ok(n as u64);
        }
    } else if v.is_bigint() {
        if let Ok(n) = u64::try_from(v.clone()) {
            return Ok(n);
        }
    }
    Err(invalid(
        "options.seed must be an integer in [0, 2^53) or a bigint in [0, 2^64)",
    ))
}

/// 64 bits from `crypto.getRandomValues` (every runtime here has it), else from the clocks.
fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let buf = Uint8Array::new_with_length(8);
    if get_random_values(&buf).is_ok() {
        buf.copy_to(&mut bytes);
        return u64::from_le_bytes(bytes);
    }
    js_sys::Date::now().to_bits() ^ performance_now().unwrap_or(0.0).to_bits().rotate_left(32)
}

/// Cloudflare Workers (`navigator.userAgent === "Cloudflare-Workers"`): timers do not advance
/// during CPU work there, so a prediction cannot be timed.
fn in_workers() -> bool {
    Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| Reflect::get(&n, &"userAgent".into()))
        .is_ok_and(|ua| ua.as_string().as_deref() == Some("Cloudflare-Workers"))
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now, catch)]
    fn performance_now() -> Result<f64, JsValue>;
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &Uint8Array) -> Result<JsValue, JsValue>;
}

/// The monitor of a model (`model.monitor()`): sampled statistics of its predictions in windows,
/// closed into snapshots (FORMAT.md §4) and sent to a collector by `flush`.
#[wasm_bindgen(js_name = Monitor)]
pub struct MonitorHandle {
    live: Rc<RefCell<Live>>,
}

#[wasm_bindgen(js_class = Monitor)]
impl MonitorHandle {
    /// Closes the open window now, queues its snapshot for the next `flush` and returns it.
    #[wasm_bindgen(unchecked_return_type = "Snapshot")]
    pub fn snapshot(&self) -> Result<JsValue, JsValue> {
        let s = self.live.borrow_mut().monitor.snapshot(js_sys::Date::now());
        to_js(&s)
    }

    /// Drift of the open window against the artifact's baseline; `null` when the exporter stored
    /// no baseline.
    #[wasm_bindgen(unchecked_return_type = "Drift | null")]
    pub fn drift(&self) -> Result<JsValue, JsValue> {
        match self.live.borrow().monitor.drift() {
            Some(d) => to_js(&d),
            None => Ok(JsValue::NULL),
        }
    }

    /// Snapshots waiting for delivery.
    #[wasm_bindgen(getter)]
    pub fn pending(&self) -> u32 {
        self.live.borrow().monitor.pending().count() as u32
    }

    /// Snapshots dropped so far because the queue (64) was full.
    #[wasm_bindgen(getter)]
    pub fn dropped(&self) -> f64 {
        self.live.borrow().monitor.dropped() as f64
    }

    /// Predictions seen in the open window, sampled or not.
    #[wasm_bindgen(getter)]
    pub fn seen(&self) -> f64 {
        self.live.borrow().monitor.seen() as f64
    }

    /// Closes the open window (when it saw a prediction) and POSTs every queued snapshot, oldest
    /// first, to `endpoint` (`fetch`, or `navigator.sendBeacon` with `beacon: true`). Snapshots
    /// that could not be delivered (network error, 401, 403, 408, 429, 5xx) stay queued for the
    /// next flush, in order, at most 64 (older ones are dropped and counted).
    #[wasm_bindgen(unchecked_return_type = "Promise<FlushResult>")]
    pub fn flush(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL")] endpoint: JsValue,
        #[wasm_bindgen(unchecked_param_type = "FlushOptions")] options: Option<Object>,
    ) -> Promise {
        let live = self.live.clone();
        wasm_bindgen_futures::future_to_promise(flush(live, endpoint, options))
    }
}

enum Delivery {
    Sent,
    Rejected,
    Retry,
}

async fn flush(
    live: Rc<RefCell<Live>>,
    endpoint: JsValue,
    options: Option<Object>,
) -> Result<JsValue, JsValue> {
    let url = endpoint
        .as_string()
        .or_else(|| {
            endpoint
                .is_object()
                .then(|| Reflect::get(&endpoint, &"href".into()).ok()?.as_string())
                .flatten()
        })
        .ok_or_else(|| invalid("flush() needs the collector's URL"))?;
    let token = option_string(options.as_ref(), "token")?;
    let beacon = option(options.as_ref(), "beacon").is_some_and(|b| b.is_truthy());
    let mut batch = {
        let mut l = live.borrow_mut();
        let now = js_sys::Date::now();
        if l.monitor.seen() > 0 {
            l.monitor.snapshot(now);
        } else {
            l.monitor.tick(now);
        }
        l.monitor.take_pending()
    };
    let (mut sent, mut rejected, mut done) = (0u32, 0u32, 0);
    for s in &batch {
        match deliver(&url, token.as_deref(), beacon, s).await {
            Delivery::Sent => sent += 1,
            Delivery::Rejected => rejected += 1,
            Delivery::Retry => break,
        }
        done += 1;
    }
    let mut l = live.borrow_mut();
    l.monitor.requeue(batch.split_off(done));
    let out = Object::new();
    let set = |k: &str, v: f64| Reflect::set(&out, &k.into(), &JsValue::from(v));
    set("sent", sent.into())?;
    set("rejected", rejected.into())?;
    set("pending", l.monitor.pending().count() as f64)?;
    set("dropped", l.monitor.dropped() as f64)?;
    Ok(out.into())
}

/// POSTs one snapshot as JSON; 201 (stored) and 409 (already stored) are delivered.
async fn deliver(url: &str, token: Option<&str>, beacon: bool, s: &Snapshot) -> Delivery {
    let Some(body) = to_js(s).ok().and_then(|v| js_sys::JSON::stringify(&v).ok()) else {
        return Delivery::Rejected;
    };
    if beacon {
        let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or_default();
        let send = Reflect::get(&navigator, &"sendBeacon".into()).unwrap_or_default();
        if let Some(send) = send.dyn_ref::<Function>() {
            // sendBeacon cannot set headers: the token goes in the query; a string body is
            // text/plain, which needs no CORS preflight.
            let mut target = url.to_owned();
            if let Some(token) = token {
                target.push(if url.contains('?') { '&' } else { '?' });
                target.push_str("token=");
                target.push_str(&String::from(js_sys::encode_uri_component(token)));
            }
            return match send.call2(&navigator, &target.into(), &body) {
                Ok(queued) if queued.is_truthy() => Delivery::Sent,
                _ => Delivery::Retry,
            };
        }
    }
    let headers = Object::new();
    let _ = Reflect::set(&headers, &"content-type".into(), &"application/json".into());
    if let Some(token) = token {
        let _ = Reflect::set(
            &headers,
            &"authorization".into(),
            &format!("Bearer {token}").into(),
        );
    }
    let init = Object::new();
    let _ = Reflect::set(&init, &"method".into(), &"POST".into());
    let _ = Reflect::set(&init, &"headers".into(), &headers);
    let _ = Reflect::set(&init, &"body".into(), &body);
    let Ok(promise) = fetch(&url.into(), &init) else {
        return Delivery::Retry;
    };
    let Ok(response) = JsFuture::from(promise).await else {
        return Delivery::Retry;
    };
    let response: Response = response.unchecked_into();
    let status = response.status();
    // Read the answer, so the connection can be reused (and Workers do not warn).
    let _ = JsFuture::from(response.array_buffer()).await;
    match status {
        200..=299 | 409 => Delivery::Sent,
        401 | 403 | 408 | 429 | 500..=599 => Delivery::Retry,
        _ => Delivery::Rejected,
    }
}

/// Subresource Integrity: `sha256-<base64>` tokens separated by white space, any of which may
/// match (`?options` suffixes ignored). Other algorithms are refused rather than ignored.
fn check_integrity(integrity: &str, sha256: &[u8; 32]) -> Result<(), JsValue> {
    let mut any = false;
    for token in integrity.split_ascii_whitespace() {
        let token = token.split('?').next().unwrap_or_default();
        let Some(digest) = token.strip_prefix("sha256-").and_then(unbase64) else {
            return Err(invalid(&format!(
                "integrity token \"{token}\" is not sha256-<base64 of 32 bytes> (other algorithms are not supported)"
            )));
        };
        any |= digest == sha256[..];
    }
    if integrity.trim().is_empty() {
        return Err(invalid("integrity is empty"));
    }
    if !any {
        return Err(error(
            "INTEGRITY_MISMATCH",
            &format!(
                "artifact integrity mismatch: expected {integrity}, got sha256-{}",
                base64(sha256)
            ),
        ));
    }
    Ok(())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64 (standard or URL alphabet, padding optional); `None` unless 32 bytes result.
fn unbase64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(32);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (out.len() == 32).then_some(out)
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch, catch)]
    fn fetch(input: &JsValue, init: &JsValue) -> Result<Promise, JsValue>;

    type Response;
    #[wasm_bindgen(method, getter)]
    fn ok(this: &Response) -> bool;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Response) -> u16;
    #[wasm_bindgen(method, getter)]
    fn url(this: &Response) -> String;
    #[wasm_bindgen(method, getter)]
    fn headers(this: &Response) -> Headers;
    #[wasm_bindgen(method, getter)]
    fn body(this: &Response) -> Option<ReadableStream>;
    #[wasm_bindgen(method, js_name = arrayBuffer)]
    fn array_buffer(this: &Response) -> Promise;

    type Headers;
    #[wasm_bindgen(method)]
    fn get(this: &Headers, name: &str) -> Option<String>;

    type ReadableStream;
    #[wasm_bindgen(method, js_name = getReader)]
    fn get_reader(this: &ReadableStream) -> Reader;

    type Reader;
    #[wasm_bindgen(method)]
    fn read(this: &Reader) -> Promise;
}

fn load_failed(input: &JsValue, why: &str) -> JsValue {
    let what = input
        .as_string()
        .or_else(|| {
            Reflect::get(input, &"url".into())
                .ok()
                .and_then(|u| u.as_string())
        })
        .or_else(|| js_sys::JSON::stringify(input).ok().and_then(|s| s.as_string()))
        .unwrap_or_default();
    error("LOAD_FAILED", &format!("could not load {what}: {why}"))
}

fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

/// `fetch` the body chunk by chunk, calling `on_progress({ loaded, total })` after each.
async fn download(
    input: &JsValue,
    init: &JsValue,
    on_progress: Option<&Function>,
) -> Result<Vec<u8>, JsValue> {
    if input.is_undefined() || input.is_null() {
        return Err(invalid("load() needs a URL or a Request"));
    }
    let fail = |e: JsValue| load_failed(input, &describe(&e));
    let response: Response = JsFuture::from(fetch(input, init).map_err(fail)?)
        .await
        .map_err(fail)?
        .unchecked_into();
    if !response.ok() {
        return Err(load_failed(
            input,
            &format!("HTTP {} from {}", response.status(), response.url()),
        ));
    }
    let headers = response.headers();
    let encoded = headers
        .get("content-encoding")
        .is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let total = match headers.get("content-length") {
        Some(n) if !encoded => n.trim().parse::<u64>().ok().map(|n| n as f64),
        _ => None,
    };
    let progress = |loaded: usize| -> Result<(), JsValue> {
        if let Some(f) = on_progress {
            let p = Object::new();
            let _ = Reflect::set(&p, &"loaded".into(), &JsValue::from(loaded as f64));
            let _ = Reflect::set(&p, &"total".into(), &total.map_or(JsValue::NULL, JsValue::from));
            f.call1(&JsValue::UNDEFINED, &p)?;
        }
        Ok(())
    };
    let Some(body) = response.body() else {
        let buf = JsFuture::from(response.array_buffer()).await.map_err(fail)?;
        let bytes = Uint8Array::new(&buf).to_vec();
        progress(bytes.len())?;
        return Ok(bytes);
    };
    let reader = body.get_reader();
    let mut bytes = Vec::with_capacity(total.map_or(0, |t| t.min(1e9) as usize));
    progress(0)?;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(fail)?;
        if Reflect::get(&chunk, &"done".into()).is_ok_and(|d| d.is_truthy()) {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(fail)?;
        let Some(value) = value.dyn_ref::<Uint8Array>() else {
            return Err(load_failed(input, "the response body is not a byte stream"));
        };
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        progress(bytes.len())?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    //! `wasm-bindgen-test`: the binding itself, in Node and in a browser.
    use super::*;
    use crate::artifact::schema::{Classifier, Counts};
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
    fn predicts_plain_objects() {
        let p = model().predict(&"good, good".into()).unwrap();
        assert_eq!(get(&p, "label").as_string().as_deref(), Some("pos"));
        let decision: Vec<f64> = serde_wasm_bindgen::from_value(get(&p, "decision")).unwrap();
        assert_eq!(decision, [2.0 * 1.5 + 0.25]);
        assert!(Array::is_array(&get(&p, "proba")));
        assert_eq!(
            Object::get_prototype_of(&p),
            Object::get_prototype_of(&Object::new())
        );
    }

    #[wasm_bindgen_test]
    fn batch_explain_info() {
        let m = model();
        let texts = Array::of2(&"bad".into(), &"not good".into());
        let out: Array = m.predict_batch(&texts.into()).unwrap().unchecked_into();
        assert_eq!(out.length(), 2);
        assert_eq!(get(&out.get(0), "label").as_string().as_deref(), Some("neg"));

        let e = m.explain(&"Not good 😀 GOOD".into(), Some(2)).unwrap();
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
        assert_eq!(code(m.predict(&JsValue::from(42)).unwrap_err()), "INVALID_INPUT");
        assert_eq!(code(m.predict(&JsValue::NULL).unwrap_err()), "INVALID_INPUT");
        assert_eq!(code(m.predict_batch(&"x".into()).unwrap_err()), "INVALID_INPUT");
        let big = "a".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(
            code(m.predict(&big.as_str().into()).unwrap_err()),
            "INPUT_TOO_LARGE"
        );
    }

    #[wasm_bindgen_test]
    fn lone_surrogates_become_replacement_characters() {
        let m = model();
        let s: JsValue = js_sys::JSON::parse(r#""good \ud800 good""#).unwrap();
        let e = m.explain(&s, Some(1)).unwrap();
        let spans: Vec<(u32, u32)> = serde_wasm_bindgen::from_value(get(
            &get(&e, "features").unchecked_into::<Array>().get(0),
            "spans",
        ))
        .unwrap();
        assert_eq!(spans, [(0, 4), (7, 11)]);
    }

    #[wasm_bindgen_test]
    fn keys_from_text_and_bytes() {
        let sealed = include_bytes!("../tests/golden/tiny.signed-encrypted.skedge");
        let public = include_str!("../tests/golden/test-signing.pub");
        let secret = include_str!("../tests/golden/test-encryption.key");
        let load = |public: JsValue, key: JsValue| {
            let opts = Object::new();
            Reflect::set(&opts, &"publicKey".into(), &public).unwrap();
            Reflect::set(&opts, &"decryptionKey".into(), &key).unwrap();
            Model::from_bytes(&Uint8Array::from(&sealed[..]).into(), Some(opts))
        };
        let key = decode_key(secret, KeyKind::Encryption).unwrap();
        let m = load(public.into(), Uint8Array::from(&key[..]).into()).unwrap();
        let p = m.predict(&"good, good".into()).unwrap();
        assert_eq!(get(&p, "label").as_string().as_deref(), Some("pos"));
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
        let mon = m.monitor(Some(opts)).unwrap();
        m.predict(&"good".into()).unwrap();
        m.predict_batch(&Array::of2(&"bad".into(), &"not good".into()).into())
            .unwrap();
        assert_eq!(mon.seen(), 3.0);
        let s = mon.snapshot().unwrap();
        assert_eq!(get(&get(&s, "stats"), "count").as_f64(), Some(3.0));
        assert_eq!(
            get(&s, "format").as_string().as_deref(),
            Some("skedge-monitor-snapshot")
        );
        assert_eq!(mon.pending(), 1);
        assert!(mon.drift().unwrap().is_null(), "no baseline in this artifact");
        m.stop_monitoring();
        m.predict(&"good".into()).unwrap();
        assert_eq!(mon.seen(), 0.0);
        let bad = Object::new();
        Reflect::set(&bad, &"sampleRate".into(), &JsValue::from(1.5)).unwrap();
        let e = m.monitor(Some(bad)).err().unwrap();
        assert_eq!(code(e.clone()), "INVALID_INPUT");
        let message = e.unchecked_into::<js_sys::Error>().message();
        assert!(String::from(message).contains("got 1.5"));
    }

    #[wasm_bindgen_test]
    fn base64_round_trips() {
        let d: [u8; 32] = core::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(unbase64(&base64(&d)).unwrap(), d);
        assert_eq!(base64(b"ab"), "YWI=");
        assert!(unbase64("YWI=").is_none());
    }
}
