//! `Model`: loading (bytes, integrity, keys), predictions, explanations and metadata.

use std::cell::RefCell;
#[cfg(feature = "monitor")]
use std::rc::Rc;

use js_sys::{Array, ArrayBuffer, Float64Array, Function, Object, Reflect, Uint32Array, Uint8Array};
#[cfg(feature = "explain")]
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::fetch::{download, MAX_BODY_BYTES};
use super::hash;
#[cfg(feature = "monitor")]
use super::monitor::{performance_now, Live};
#[cfg(feature = "explain")]
use super::to_js;
use super::{
    core_error, error, invalid, label, option, option_string, options_object, put, text_of, type_name, Label,
    Plain,
};
#[cfg(feature = "crypto")]
use crate::artifact::crypto::{decode_key, KeyKind, KEY_LEN};
use crate::artifact::schema::Classes;
use crate::artifact::LoadOptions;
use crate::classify::n_classes;
use crate::error::{Cut, Quoted};
use crate::hex;
use crate::integrity::{self, base64, unbase64};
use crate::{Field, Prediction, TextClassifier, MAX_TEXT_BYTES};

#[cfg(feature = "explain")]
#[derive(Serialize)]
pub(super) struct PredictionOut<'a> {
    label: Label<'a>,
    decision: &'a [f64],
    proba: Option<&'a [f64]>,
}

#[cfg(feature = "explain")]
impl<'a> PredictionOut<'a> {
    pub(super) fn new(p: &'a Prediction, classes: &'a Classes) -> Self {
        PredictionOut {
            label: label(classes, p.label),
            decision: &p.decision,
            proba: p.proba.as_deref(),
        }
    }
}

#[cfg(feature = "explain")]
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

#[cfg(feature = "explain")]
#[derive(Serialize)]
struct ExplanationOut<'a> {
    #[serde(flatten)]
    prediction: PredictionOut<'a>,
    row: usize,
    features: Vec<FeatureOut<'a>>,
}

/// The keys `Model.fromBytes`'s options may have.
const FROM_BYTES_OPTIONS: &[&str] = &["integrity", "publicKey", "decryptionKey"];
/// The keys `Model.load`'s options may have.
const LOAD_OPTIONS: &[&str] = &[
    "integrity",
    "publicKey",
    "decryptionKey",
    "onProgress",
    "init",
    "maxBytes",
];

/// A loaded skedge model. `free()` releases its memory; `[Symbol.dispose]()` (`using`) calls it,
/// and is set only where the runtime defines `Symbol.dispose` (Node ≥ 18.18 does; an older
/// browser may not: call `free()` there).
#[wasm_bindgen]
pub struct Model {
    /// Owns the artifact (`inner.artifact()`), so its sha256 is computed only when asked for
    /// (`info()`, `monitor()`): hashing was half of `fromBytes`.
    pub(super) inner: TextClassifier,
    sha256: std::cell::OnceCell<[u8; 32]>,
    bytes: usize,
    /// The last `predictString`'s decision, then its probabilities, for `predicted`.
    last: RefCell<Vec<f64>>,
    #[cfg(feature = "monitor")]
    pub(super) monitor: Option<Rc<RefCell<Live>>>,
}

/// Digests the host already computed (`Model.load`'s WebCrypto path).
#[derive(Default)]
struct Known {
    sha256: Option<[u8; 32]>,
    #[cfg_attr(not(feature = "crypto"), allow(dead_code))]
    body_digest: Option<Vec<u8>>,
    /// WebCrypto's Ed25519 verdicts on the signature, per pinned key.
    #[cfg(feature = "crypto")]
    verdicts: Option<hash::Verdicts>,
}

/// The envelope of a signed artifact whose signature will be verified (a key is pinned); `None`
/// when nothing will be verified.
#[cfg(feature = "crypto")]
fn signed<'a>(bytes: &'a [u8], keys: &LoadOptions) -> Option<crate::artifact::Envelope<'a>> {
    if keys.public_keys.is_empty() {
        return None;
    }
    let envelope = crate::artifact::parse(bytes).ok()?;
    envelope.is_signed().then_some(envelope)
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
        match options {
            // Without options nothing of their parsing runs, so a cold load does not compile it
            // (V8 compiles each wasm function on its first call).
            None => Model::new(bytes_of(bytes)?, None, LoadOptions::default(), Known::default()),
            Some(o) => Model::from_bytes_with(bytes, o),
        }
    }

    #[inline(never)]
    fn from_bytes_with(bytes: &JsValue, options: Object) -> Result<Model, JsValue> {
        let options = options_object(Some(options), "Model.fromBytes", FROM_BYTES_OPTIONS)?;
        let bytes = bytes_of(bytes)?;
        let integrity = option_string(options.as_ref(), "integrity")?;
        let keys = load_options(options.as_ref())?;
        Model::new(bytes, integrity.as_deref(), keys, Known::default())
    }

    /// Fetches an artifact (`fetch(input, options.init)`; a `Response`, e.g. from the Cache API,
    /// is read as it is; bytes are loaded as they are, held to `options.maxBytes` by the package's
    /// JS) of at most `options.maxBytes` bytes, reporting progress (`options.onProgress`: after
    /// each chunk; for bytes, once, by the package's JS), checks its integrity and signature
    /// with WebCrypto where the host has it, and loads it.
    pub async fn load(
        #[wasm_bindgen(
            unchecked_param_type = "string | URL | Request | Response | Uint8Array | ArrayBuffer | ArrayBufferView"
        )]
        input: JsValue,
        #[wasm_bindgen(unchecked_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Model, JsValue> {
        let options = options_object(options, "Model.load", LOAD_OPTIONS)?;
        let integrity = option_string(options.as_ref(), "integrity")?;
        // A malformed token is refused before the download, not after it.
        if let Some(integrity) = &integrity {
            integrity_digests(integrity)?;
        }
        let keys = load_options(options.as_ref())?;
        let max = max_bytes(options.as_ref());
        let on_progress = match options.as_ref().map(|o| Reflect::get(o, &"onProgress".into())) {
            Some(Ok(f)) if f.is_function() => Some(f.unchecked_into::<Function>()),
            Some(Ok(f)) if f.is_undefined() || f.is_null() => None,
            None => None,
            _ => return Err(invalid("options.onProgress must be a function")),
        };
        // `fetch`'s own refusal would come back as a `LOAD_FAILED` naming the Request constructor.
        let init = match options.as_ref().map(|o| Reflect::get(o, &"init".into())) {
            Some(Ok(v)) if v.is_object() || v.is_undefined() || v.is_null() => v,
            Some(Ok(v)) => {
                return Err(invalid(&format!(
                    "options.init must be an object (fetch's RequestInit), got {}",
                    type_name(&v)
                )))
            }
            _ => JsValue::UNDEFINED,
        };
        // Bytes already in hand (a Worker's Data module, an R2 object's body read) are loaded as
        // they are: this path verifies with WebCrypto, which the synchronous `fromBytes` cannot.
        let bytes = match input.is_instance_of::<ArrayBuffer>() || ArrayBuffer::is_view(&input) {
            true => bytes_of(&input)?,
            false => download(&input, &init, on_progress.as_ref(), max).await?,
        };
        // The async path can use WebCrypto, which has no synchronous form.
        let mut known = Known::default();
        if integrity.is_some() {
            known.sha256 = hash::digest("sha256", &bytes).await;
        }
        #[cfg(feature = "crypto")]
        if let Some(envelope) = signed(&bytes, &keys) {
            known.body_digest = hash::prehash_async(envelope.prehash(), envelope.body).await;
            if let (Some(digest), Some(signature)) = (&known.body_digest, envelope.signature) {
                let message = crate::artifact::signed_message_of_digest(envelope.header, digest);
                known.verdicts = hash::verdicts(&keys.public_keys, &message, signature).await;
            }
        }
        Model::new(bytes, integrity.as_deref(), keys, known)
    }

    fn new(
        bytes: Vec<u8>,
        integrity: Option<&str>,
        #[allow(unused_mut)] mut keys: LoadOptions,
        known: Known,
    ) -> Result<Model, JsValue> {
        let sha256 = std::cell::OnceCell::new();
        if let Some(d) = known.sha256 {
            let _ = sha256.set(d);
        }
        if let Some(integrity) = integrity {
            check_integrity(integrity, sha256.get_or_init(|| hash::sha256(&bytes)))?;
        }
        // skedge/lite cannot decrypt: say so, rather than ask for a key it could not use.
        #[cfg(not(feature = "crypto"))]
        if crate::artifact::parse(&bytes).is_ok_and(|e| e.is_encrypted()) {
            return Err(core_error(crate::Error::FeatureUnavailable {
                feature: "decryption",
            }));
        }
        #[cfg(feature = "crypto")]
        let _verdicts = {
            keys.host_verify = Some(hash::ed25519);
            keys.body_digest = known
                .body_digest
                .or_else(|| signed(&bytes, &keys).and_then(|e| hash::prehash(e.prehash(), e.body)));
            hash::Held::new(known.verdicts)
        };
        let len = bytes.len();
        // The buffer becomes the model's storage: format 3 is read in place, never copied.
        let inner = TextClassifier::from_vec_with(bytes, &keys).map_err(core_error)?;
        Ok(Model {
            inner,
            sha256,
            bytes: len,
            last: RefCell::default(),
            #[cfg(feature = "monitor")]
            monitor: None,
        })
    }

    /// Sha256 of the artifact bytes, computed on first use.
    pub(super) fn digest(&self) -> &[u8; 32] {
        self.sha256.get_or_init(|| hash::sha256(self.inner.artifact()))
    }

    /// `predict` of the core.
    #[cfg(not(feature = "monitor"))]
    fn predict_text(&self, text: &str) -> Result<Prediction, crate::Error> {
        self.inner.predict(text)
    }

    /// `predict` of the core, recorded by the monitor when one is on.
    #[cfg(feature = "monitor")]
    fn predict_text(&self, text: &str) -> Result<Prediction, crate::Error> {
        match &self.monitor {
            None => self.inner.predict(text),
            Some(live) => self.predict_monitored(live, text),
        }
    }

    #[cfg(feature = "monitor")]
    #[inline(never)]
    fn predict_monitored(&self, live: &Rc<RefCell<Live>>, text: &str) -> Result<Prediction, crate::Error> {
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

    /// The text of an input: a string, or a record `{ column: text }` for a model fitted on a
    /// DataFrame column (the core decides what a record must hold). `what` names it in errors.
    pub(super) fn text_of_input(&self, v: &JsValue, what: &str) -> Result<String, JsValue> {
        match v.is_string() {
            true => text_of(v, what),
            false => self.record_text_of(v, what),
        }
    }

    /// [`Model::text_of_input`] of anything but a string: out of line, a string's first
    /// `predict` does not compile it.
    #[inline(never)]
    fn record_text_of(&self, v: &JsValue, what: &str) -> Result<String, JsValue> {
        if !v.is_object() || Array::is_array(v) {
            return Err(invalid(&match self.inner.input_column() {
                Some(column) => format!(
                    "{what} must be a string or a record {{{}: text}}, got {}",
                    Quoted(column),
                    type_name(v)
                ),
                None => format!("{what} must be a string, got {}", type_name(v)),
            }));
        }
        let entries: Vec<(String, Result<String, String>)> = Object::entries(v.unchecked_ref())
            .iter()
            .map(|kv| {
                let kv: Array = kv.unchecked_into();
                let key = kv.get(0).as_string().unwrap_or_default();
                let value = kv.get(1);
                Ok((
                    key.clone(),
                    match value.is_string() {
                        // Only a text over the limit is refused here, with no name in the message.
                        true => Ok(text_of(&value, what)?),
                        false => Err(type_name(&value)),
                    },
                ))
            })
            .collect::<Result<_, JsValue>>()?;
        let fields: Vec<(String, Field)> = entries
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Ok(t) => Field::Text(t),
                    Err(kind) => Field::Other(kind),
                };
                (k.clone(), value)
            })
            .collect();
        self.inner
            .record_text(&fields)
            .map(str::to_owned)
            .map_err(|e| invalid(&format!("{what}: {e}")))
    }

    /// `predictBatch`'s conversion of an item that is not a string (the package's JS packs the
    /// texts it returns).
    // JS values in and out: the export then shares `explain`'s signature (one compiled wrapper
    // per distinct export signature: benches/PROFILE.md, "Compile and instantiate").
    #[wasm_bindgen(js_name = inputText, skip_typescript, unchecked_return_type = "string")]
    pub fn input_text(&self, v: &JsValue, what: &JsValue) -> Result<JsValue, JsValue> {
        let what = what.as_string().unwrap_or_default();
        self.text_of_input(v, &what).map(|t| JsValue::from_str(&t))
    }

    /// `predict` of one text, written in JS (scripts/npm/extend.js, which gives a record's text or
    /// a coded error through `inputText` first): the label's index; the decision and probabilities
    /// wait in the model for [`Model::predicted`]. Only numbers cross back: a result object built
    /// here cost a crossing per value (benches/PROFILE.md, "The crossing of one prediction").
    #[wasm_bindgen(js_name = predictString, skip_typescript)]
    pub fn predict_string(&self, text: &str) -> Result<u32, JsValue> {
        let p = self.predict_text(text).map_err(core_error)?;
        let mut last = self.last.borrow_mut();
        last.clear();
        last.extend_from_slice(&p.decision);
        last.extend_from_slice(p.proba.as_deref().unwrap_or_default());
        Ok(p.label as u32)
    }

    /// Value `i` of the last `predictString`: its decision, then its probabilities.
    #[wasm_bindgen(skip_typescript)]
    pub fn predicted(&self, i: u32) -> f64 {
        self.last.borrow().get(i as usize).copied().unwrap_or(f64::NAN)
    }

    /// What `predict`'s results hold, asked once per model by scripts/npm/extend.js:
    /// `[labels, width, hasProba]` (the classes, decision values per text, probabilities or not).
    #[wasm_bindgen(skip_typescript)]
    pub fn shape(&self) -> Result<Array, JsValue> {
        let p = self.inner.predict("").map_err(core_error)?;
        Ok(Array::of3(
            &labels_array(self.inner.classes()),
            &JsValue::from(p.decision.len() as u32),
            &JsValue::from_bool(p.proba.is_some()),
        ))
    }

    /// Largest text accepted, in UTF-8 bytes (the package's JS checks it before copying a text).
    #[wasm_bindgen(js_name = maxTextBytes, skip_typescript)]
    pub fn max_text_bytes() -> u32 {
        MAX_TEXT_BYTES as u32
    }

    /// `predictBatch`'s one crossing (the package's JS packs the texts, scripts/npm/extend.js):
    /// every text as UTF-8 in `utf8`, text `i` ending at byte `ends[i]`. Returns `[labelIndex,
    /// decision, proba]`, typed arrays, row-major (`proba` empty when the model has none; the
    /// widths are [`Model::shape`]'s).
    #[wasm_bindgen(js_name = predictPacked, skip_typescript)]
    pub fn predict_packed(&self, utf8: &[u8], ends: &[u32]) -> Result<Array, JsValue> {
        let n = ends.len();
        let mut label_index = Vec::with_capacity(n);
        let (mut decision, mut proba) = (Vec::new(), Vec::new());
        let mut start = 0usize;
        for (i, &end) in ends.iter().enumerate() {
            let at = |e: JsValue| {
                put(&e, "index", &JsValue::from(i as u32));
                e
            };
            let text = utf8
                .get(start..end as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or_else(|| {
                    at(invalid(&format!(
                        "texts[{i}]: bytes {start}..{end} are not UTF-8"
                    )))
                })?;
            start = end as usize;
            let p = self
                .predict_text(text)
                .map_err(|e| at(error(e.code(), &format!("texts[{i}]: {e}"))))?;
            if i == 0 {
                decision.reserve_exact(n * p.decision.len());
                proba.reserve_exact(n * p.proba.as_ref().map_or(0, Vec::len));
            }
            label_index.push(p.label as u32);
            decision.extend_from_slice(&p.decision);
            proba.extend_from_slice(p.proba.as_deref().unwrap_or_default());
        }
        Ok(Array::of3(
            &Uint32Array::from(&label_index[..]),
            &Float64Array::from(&decision[..]),
            &Float64Array::from(&proba[..]),
        ))
    }

    /// The prediction and the `k` features (default 10; an integer from 1 to 2^32 - 1) that moved
    /// the predicted class's decision most, each with its term, value, weights, contributions and
    /// spans in `text` (each taking in the combining marks right after it).
    #[cfg(feature = "explain")]
    #[wasm_bindgen(unchecked_return_type = "Explanation")]
    pub fn explain(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TextInput")] text: &JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "number")] k: JsValue,
    ) -> Result<JsValue, JsValue> {
        let text = self.text_of_input(text, "text")?;
        let k = explain_k(&k)?;
        let p = self.inner.predict(&text).map_err(core_error)?;
        let mut features = self.inner.explain(&text, k).map_err(core_error)?;
        with_combining_marks(&text, self.inner.unicode(), &mut features);
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

    /// Artifact metadata: name, version, classes, sha256, metrics, provenance, ... Built directly,
    /// keys in the order serde_wasm_bindgen gave them: its serializer was 6 KB of `skedge/lite`
    /// for this call and `predictBatch`'s labels alone.
    #[wasm_bindgen(unchecked_return_type = "ModelInfo")]
    pub fn info(&self) -> Result<JsValue, JsValue> {
        // The maps' pairs in the artifact's order, a key's last pair winning, as in the map the
        // CLI prints: a writer stores them sorted and once each.
        let (m, maps) = self.inner.metadata_unmapped();
        let classes = self.inner.classes();
        let out: Plain = Object::new().unchecked_into();
        let put = |k: &str, v: JsValue| out.set(&JsValue::from_str(k), &v);
        let text = |v: &str| JsValue::from_str(v);
        let number = JsValue::from_f64;
        put("name", text(&m.name));
        put("version", text(&m.version));
        put("classes", labels_array(classes).into());
        put("estimator", text(self.inner.classifier().estimator()));
        put("nFeatures", number(self.inner.n_features() as f64));
        put("sha256", text(&hex::encode(self.digest())));
        put("integrity", text(&integrity::of_sha256(self.digest())));
        put("bytes", number(self.bytes as f64));
        put("formatVersion", number(f64::from(self.inner.format_version())));
        put(
            "inputColumn",
            self.inner.input_column().map_or(JsValue::NULL, text),
        );
        put("skedgeVersion", text(&m.skedge_version));
        put("sklearnVersion", text(&m.sklearn_version));
        put("pythonVersion", text(&m.python_version));
        put("numpyVersion", text(&m.numpy_version));
        put("unicodeVersion", text(&m.unicode_version));
        put("sourceSha256", text(&m.source_sha256));
        put("created", text(&m.created));
        put("precision", text(m.precision.name()));
        if let Some(a) = &m.agreement {
            let o: Plain = Object::new().unchecked_into();
            let put = |k: &str, v: f64| o.set(&JsValue::from_str(k), &number(v));
            put("texts", a.texts as f64);
            put("labelChanges", a.label_changes as f64);
            put("maxAbsDecisionDiff", a.max_abs_decision_diff);
            put("maxAbsProbaDiff", a.max_abs_proba_diff);
            super::put(&out, "agreement", &o);
        }
        let metrics: Plain = Object::new().unchecked_into();
        for (k, v) in maps.metrics() {
            metrics.set(&text(k), &number(*v));
        }
        super::put(&out, "metrics", &metrics);
        let provenance: Plain = Object::new().unchecked_into();
        for (k, v) in maps.provenance() {
            provenance.set(&text(k), &text(v));
        }
        super::put(&out, "provenance", &provenance);
        put("maxTextBytes", number(MAX_TEXT_BYTES as f64));
        Ok(out.into())
    }
}

/// A label as `Label`'s serializer makes it: JS numbers (integers beyond 2^53 lose precision)
/// or strings.
fn label_value(l: Label) -> JsValue {
    match l {
        Label::Int(v) => JsValue::from_f64(v as f64),
        Label::Str(v) => JsValue::from_str(v),
    }
}

/// The classes as JS labels, in order.
fn labels_array(classes: &Classes) -> Array {
    (0..n_classes(classes))
        .map(|i| label_value(label(classes, i)))
        .collect()
}

/// `explain`'s `k`: 10 when absent, else an integer from 1 to 2^32 - 1 (no coercion: `-1`, `NaN`,
/// `2.5`, `"3"` and `2**32 + 1` are refused, not read as something else).
#[cfg(feature = "explain")]
fn explain_k(k: &JsValue) -> Result<usize, JsValue> {
    if k.is_undefined() || k.is_null() {
        return Ok(10);
    }
    match k.as_f64() {
        Some(n) if n.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(&format!(
            "k must be an integer from 1 to {}, got {n}",
            u32::MAX
        ))),
        None => Err(invalid(&format!("k must be a number, got {}", type_name(k)))),
    }
}

/// Widens each span over the combining marks that follow it in `text` (`cafe\u0301`: the accent
/// of the `e`), so a highlight never splits a character from its accent. The analyzer leaves them
/// out: they are not word characters, and `strip_accents` drops them. A mark is what
/// `strip_accents='unicode'` removes.
#[cfg(feature = "explain")]
fn with_combining_marks(
    text: &str,
    unicode: crate::text::unicode::Unicode,
    features: &mut [crate::explain::Contribution],
) {
    if text.is_ascii() {
        return;
    }
    let mut ends: Vec<u32> = features
        .iter()
        .flat_map(|c| c.spans.iter().map(|&(_, e)| e))
        .collect();
    ends.sort_unstable();
    ends.dedup();
    // One pass over the text: where each end moves to (ends are at character boundaries).
    let mut moved = Vec::with_capacity(ends.len());
    let mut next = ends.iter().copied().peekable();
    let (mut at, mut pending) = (0u32, Vec::new());
    let mut stripped = String::new();
    for c in text.chars() {
        while let Some(end) = next.next_if(|&end| end <= at) {
            pending.push(end);
        }
        stripped.clear();
        if !c.is_ascii() {
            unicode.strip_accents_unicode_into(c.encode_utf8(&mut [0; 4]), &mut stripped);
        }
        if c.is_ascii() || !stripped.is_empty() {
            moved.extend(pending.drain(..).map(|from| (from, at)));
        }
        at += c.len_utf16() as u32;
    }
    moved.extend(pending.drain(..).map(|from| (from, at)));
    for c in features.iter_mut() {
        for span in &mut c.spans {
            if let Ok(i) = moved.binary_search_by_key(&span.1, |&(from, _)| from) {
                span.1 = moved[i].1;
            }
        }
    }
}

/// `options.maxBytes`, [`MAX_BODY_BYTES`] when absent. The package's JS refuses anything but an
/// integer from 1 to it first, naming the value (scripts/npm/extend.js, `maxBytesOf`: a float
/// formatted here would grow `skedge/lite`); here a value it let through is only kept in range.
fn max_bytes(options: Option<&Object>) -> u32 {
    option(options, "maxBytes")
        .and_then(|v| v.as_f64())
        .map_or(MAX_BODY_BYTES, |n| (n as u32).min(MAX_BODY_BYTES))
}

/// Copies bytes from a `Uint8Array`, an `ArrayBuffer` or another `ArrayBufferView` (the
/// package's JS hands over a plain `Uint8Array` of a buffer it checked: scripts/npm/extend.js).
fn bytes_of(v: &JsValue) -> Result<Vec<u8>, JsValue> {
    match v.dyn_ref::<Uint8Array>() {
        Some(a) => copy_in(a),
        None => bytes_of_other(v),
    }
}

/// The bytes of `a` in wasm memory.
#[inline(never)]
pub(super) fn copy_in(a: &Uint8Array) -> Result<Vec<u8>, JsValue> {
    let mut bytes = zeroed(a.length() as usize)?;
    a.copy_to(&mut bytes);
    Ok(bytes)
}

/// `n` zero bytes in wasm memory, refused past what a wasm32 `Vec` holds (2 GiB - 1) or what the
/// memory can still grow to, instead of a capacity overflow or an abort (`vec![0; n]` and
/// `to_vec` allocate infallibly: an artifact of 2 GiB - 1 bytes trapped).
pub(super) fn zeroed(n: usize) -> Result<Vec<u8>, JsValue> {
    let mut bytes = Vec::new();
    if n > i32::MAX as usize || bytes.try_reserve_exact(n).is_err() {
        return Err(error(
            "INPUT_TOO_LARGE",
            &format!("{n} bytes do not fit in WebAssembly memory"),
        ));
    }
    bytes.resize(n, 0);
    Ok(bytes)
}

/// [`bytes_of`] of anything but a `Uint8Array` (what Node's `readFileSync` and `fetch`'s bytes
/// are): out of line, a first load of those does not compile it.
#[inline(never)]
fn bytes_of_other(v: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
        return copy_in(&Uint8Array::new(b));
    }
    if ArrayBuffer::is_view(v) {
        let get = |k: &str| Reflect::get(v, &k.into()).unwrap_or(JsValue::UNDEFINED);
        if let Some(buffer) = get("buffer").dyn_ref::<ArrayBuffer>() {
            let offset = get("byteOffset").as_f64().unwrap_or(0.0) as u32;
            let len = get("byteLength").as_f64().unwrap_or(0.0) as u32;
            return copy_in(&Uint8Array::new_with_byte_offset_and_length(buffer, offset, len));
        }
    }
    Err(invalid(&format!(
        "bytes must be a Uint8Array or an ArrayBuffer, got {}",
        type_name(v)
    )))
}

/// skedge/lite cannot verify or decrypt: a key is refused as such, without reading it (nothing is
/// accepted unchecked, and the key decoders stay out of the smaller build).
#[cfg(not(feature = "crypto"))]
pub(super) fn load_options(options: Option<&Object>) -> Result<LoadOptions, JsValue> {
    for (name, feature) in [
        ("publicKey", "signature verification"),
        ("decryptionKey", "decryption"),
    ] {
        if option(options, name).is_some() {
            return Err(core_error(crate::Error::FeatureUnavailable { feature }));
        }
    }
    Ok(LoadOptions::default())
}

/// `publicKey` (one key or an array of keys) and `decryptionKey` of the options.
#[cfg(feature = "crypto")]
pub(super) fn load_options(options: Option<&Object>) -> Result<LoadOptions, JsValue> {
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
#[cfg(feature = "crypto")]
fn key_of(v: &JsValue, kind: KeyKind, what: &str) -> Result<[u8; KEY_LEN], JsValue> {
    if let Some(text) = v.as_string() {
        return decode_key(&text, kind).map_err(core_error);
    }
    let bytes = if let Some(a) = v.dyn_ref::<Uint8Array>() {
        a.clone()
    } else if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
        Uint8Array::new(b)
    } else {
        return Err(invalid(&format!(
            "options.{what} must be a Uint8Array or a string, got {}",
            type_name(v)
        )));
    };
    // The length first: a key's bytes are copied only when they can be one.
    if bytes.length() as usize != KEY_LEN {
        return Err(core_error(crate::Error::KeyInvalid(format!(
            "options.{what} must be {KEY_LEN} bytes, got {}",
            bytes.length()
        ))));
    }
    let mut key = [0; KEY_LEN];
    bytes.copy_to(&mut key);
    Ok(key)
}

/// Subresource Integrity: `sha256-<base64>` tokens separated by white space, any of which may
/// match (`?options` suffixes ignored). Other algorithms are refused rather than ignored.
pub(super) fn check_integrity(integrity: &str, sha256: &[u8; 32]) -> Result<(), JsValue> {
    if !integrity_digests(integrity)?.iter().any(|d| d[..] == sha256[..]) {
        return Err(error(
            "INTEGRITY_MISMATCH",
            &format!(
                "artifact integrity mismatch: expected {}, got sha256-{}",
                Cut(integrity),
                base64(sha256)
            ),
        ));
    }
    Ok(())
}

/// The digests of an `integrity` string, refusing any token that is not `sha256-<base64 of 32
/// bytes>` and an empty string.
pub(super) fn integrity_digests(integrity: &str) -> Result<Vec<Vec<u8>>, JsValue> {
    let mut digests = Vec::new();
    for token in integrity.split_ascii_whitespace() {
        let token = token.split('?').next().unwrap_or_default();
        let Some(digest) = token.strip_prefix("sha256-").and_then(unbase64) else {
            return Err(invalid(&format!(
                "integrity token {} is not sha256-<base64 of 32 bytes> (other algorithms are not supported)",
                Quoted(token)
            )));
        };
        digests.push(digest);
    }
    if digests.is_empty() {
        return Err(invalid("integrity is empty"));
    }
    Ok(digests)
}
