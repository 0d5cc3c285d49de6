//! Sampled production metrics and drift statistics (FORMAT.md §4).
//!
//! A [`Monitor`] watches the predictions of one model. For a deterministic sample of them (a
//! seeded SplitMix64 stream: no OS randomness, the same draws in native and WebAssembly builds) it
//! counts, in fixed-size histograms whatever the traffic:
//!
//! - the predicted label (`label_counts`, one per class of `classes_`);
//! - the confidence, `max(predict_proba)`, in [`CONFIDENCE_BINS`] bins of width 0.1
//!   (`min(floor(p · 10), 9)`); `null` for estimators without `predict_proba`;
//! - the out-of-vocabulary rate: analyzer features (`build_analyzer()(text)`, stop words removed)
//!   absent from `vocabulary_`, over all features, summed over the vocabulary vectorizers of the
//!   model, in [`OOV_BINS`] bins (`min(oov · 10 / total, 9)`, integer division); texts without any
//!   feature are counted apart; `null` for hashing-only models;
//! - the text length in characters (Unicode scalar values, Python's `len(text)`), in
//!   [`LENGTH_BINS`] power-of-two bins (`0` for empty, else `min(bit_length(n), 15)`: bin k holds
//!   `2^(k-1) ≤ n < 2^k`);
//! - the latency in milliseconds when the caller can time the prediction, in bins bounded by
//!   [`LATENCY_EDGES_MS`].
//!
//! Observations accumulate in a window; [`Monitor::snapshot`] (or the end of a `window_seconds`
//! window, noticed by the next observation) closes it into a [`Snapshot`], a JSON document with a
//! unique id, queued (at most [`MAX_PENDING`]) until the caller delivers it. No text is kept
//! unless [`MonitorConfig::max_texts`] opts in.
//!
//! Drift compares a window (or an aggregate of windows) with the baseline the exporter computed
//! on the validation texts with the same bins (`Metadata::baseline`): the population stability
//! index ([`psi`]) of the label distribution, the confidence, OOV and length histograms, and the
//! shift of the pooled OOV rate ([`drift`]).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh64::xxh64;

use crate::artifact::schema::{Baseline, Classes, OovCounts};
use crate::error::{Error, Quoted, Result};
use crate::hex;
use crate::text::Scratch;
use crate::{Prediction, TextClassifier};

/// `format` of a snapshot.
pub const SNAPSHOT_FORMAT: &str = "skedge-monitor-snapshot";
/// `version` of the snapshot format.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Confidence histogram bins: `[0, 0.1), [0.1, 0.2), …, [0.9, 1.0]`.
pub const CONFIDENCE_BINS: usize = 10;
/// OOV-rate histogram bins: `[0, 0.1), …, [0.9, 1.0]`.
pub const OOV_BINS: usize = 10;
/// Text length histogram bins: `0`, `1`, `2–3`, `4–7`, …, `8192–16383`, `≥ 16384` characters.
pub const LENGTH_BINS: usize = 16;
/// Upper bounds (exclusive) of the latency bins in milliseconds; the last bin is `≥ 500`.
pub const LATENCY_EDGES_MS: [f64; 15] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0,
];
/// Latency histogram bins.
pub const LATENCY_BINS: usize = LATENCY_EDGES_MS.len() + 1;
/// Largest snapshot [`Snapshot::parse`] (and the collector) accepts, in bytes.
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 20;
/// Most classes a monitored model may have (an experiment's, fewer:
/// [`crate::experiment::Mode::max_classes`]).
pub const MAX_CLASSES: usize = 1024;
/// Most UTF-8 bytes of all class labels together.
pub const MAX_CLASS_BYTES: usize = 64 << 10;
/// Largest `latency.sum_ms` and `latency.max_ms` of a snapshot, in ms (31,700 years): a larger one
/// measures nothing, and a few of them (1.7e308) add up to infinity in a sum of windows.
pub const MAX_LATENCY_MS: f64 = 1e15;

/// Relative room a sum of floats gets over its bound (`sum ≤ n × max`): each addition rounds by
/// at most 2^-53 of the partial sum, so 1e-6 covers a billion terms (the collector's `SUM_SLACK`).
pub(crate) const SUM_SLACK: f64 = 1e-6;

/// A snapshot's `classes` as a monitor writes them: 1 to [`MAX_CLASSES`] distinct labels of at
/// most [`MAX_CLASS_BYTES`] in all (the collector refuses the same).
pub(crate) fn check_classes(classes: &[String]) -> Result<()> {
    if classes.is_empty() || classes.len() > MAX_CLASSES {
        return Err(invalid(format!("classes must have 1 to {MAX_CLASSES} labels")));
    }
    if classes.iter().map(String::len).sum::<usize>() > MAX_CLASS_BYTES {
        return Err(invalid(format!(
            "classes hold more than {MAX_CLASS_BYTES} bytes of labels"
        )));
    }
    let mut sorted: Vec<&str> = classes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid("classes repeat a label"));
    }
    Ok(())
}
/// Most characters of `model.name` and `model.version` in a snapshot.
pub const MAX_NAME_CHARS: usize = 256;
/// Most sampled texts a snapshot may carry (when the caller opts in).
pub const MAX_TEXTS: usize = 64;
/// Texts kept are cut to this many characters.
pub const MAX_TEXT_CHARS: usize = 1024;
/// Most closed snapshots kept for delivery; older ones are dropped (and counted) beyond it.
pub const MAX_PENDING: usize = 64;
/// Proportions below this are raised to it in [`psi`] (empty bins).
pub const PSI_EPSILON: f64 = 1e-4;

/// What to sample and how long a window lasts.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Probability that a prediction is sampled, in `[0, 1]`.
    pub sample_rate: f64,
    /// Length of a window; `None`: a window lasts until [`Monitor::snapshot`].
    pub window_seconds: Option<f64>,
    /// Seed of the sampler: the same seed draws the same sample (the JS package draws one from
    /// `crypto.getRandomValues` by default). Snapshot ids never derive from it (see
    /// [`Monitor::new`]'s `id_key`).
    pub seed: u64,
    /// Sampled texts kept per window (at most [`MAX_TEXTS`], each cut to [`MAX_TEXT_CHARS`]
    /// characters). 0, the default: no text ever leaves the device.
    pub max_texts: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            sample_rate: 1.0,
            window_seconds: None,
            seed: 0,
            max_texts: 0,
        }
    }
}

/// Which model a snapshot is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// `Metadata::name` (the registered model name).
    pub name: String,
    /// `Metadata::version` (the registry version).
    pub version: String,
    /// Hex sha256 of the artifact bytes (64 lowercase hex digits).
    pub sha256: String,
}

/// The time span of a snapshot, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Number of snapshots this monitor produced before this one.
    pub index: u64,
    /// Start, inclusive.
    pub start_ms: u64,
    /// End, exclusive.
    pub end_ms: u64,
}

/// Out-of-vocabulary counts of one text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Oov {
    /// Analyzer features not in the vocabulary.
    pub oov: u64,
    /// All analyzer features.
    pub total: u64,
}

/// The OOV statistics of many texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OovStats {
    /// Texts per OOV-rate bin ([`OOV_BINS`]).
    pub counts: Vec<u64>,
    /// Texts without any analyzer feature (not in `counts`).
    pub no_features: u64,
    /// Sum of the OOV features of all texts.
    pub oov_features: u64,
    /// Sum of the features of all texts.
    pub total_features: u64,
}

/// The latency statistics of many predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyStats {
    /// Predictions per latency bin ([`LATENCY_BINS`]).
    pub counts: Vec<u64>,
    /// Sum of the latencies, in milliseconds.
    pub sum_ms: f64,
    /// Largest latency, in milliseconds.
    pub max_ms: f64,
}

/// The aggregate statistics of a window (or of the baseline: then `latency` is `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// Observations (sampled predictions, or validation texts for a baseline).
    pub count: u64,
    /// Predictions per class, in `classes_` order.
    pub label_counts: Vec<u64>,
    /// Confidence histogram ([`CONFIDENCE_BINS`]); `None` without `predict_proba`. Always
    /// written (`null`), and required when read, as by the collector.
    #[serde(deserialize_with = "present")]
    pub confidence: Option<Vec<u64>>,
    /// OOV-rate histogram and sums; `None` for models without a vocabulary. Always written, and
    /// required when read.
    #[serde(deserialize_with = "present")]
    pub oov: Option<OovStats>,
    /// Text length histogram ([`LENGTH_BINS`]).
    pub length: Vec<u64>,
    /// Latency histogram; `None` when no observation had a latency.
    #[serde(default)]
    pub latency: Option<LatencyStats>,
}

/// An `Option` field that must be present, `null` or not: serde's derive takes a missing
/// `Option` field for `None` unless its field has a `deserialize_with`.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// One closed window: what [`Monitor::snapshot`] returns and the collector stores (FORMAT.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// Always [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// 32 lowercase hex digits, unique per monitor instance and window: the deduplication key.
    pub id: String,
    /// The model.
    pub model: ModelRef,
    /// The window.
    pub window: Window,
    /// The sampling probability.
    pub sample_rate: f64,
    /// Predictions seen in the window, sampled or not.
    pub seen: u64,
    /// Snapshots this monitor dropped (queue full) before this one, cumulative.
    pub dropped: u64,
    /// `classes_` as strings (integers in decimal).
    pub classes: Vec<String>,
    /// The statistics of the sampled predictions.
    pub stats: Stats,
    /// Sampled texts, only when the caller opted in (`max_texts`); else empty.
    pub texts: Vec<String>,
}

/// Drift of a window against the baseline: PSI per distribution and the OOV-rate shift.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// PSI of the predicted-label distribution.
    pub label_psi: Option<f64>,
    /// PSI of the confidence histogram.
    pub confidence_psi: Option<f64>,
    /// PSI of the OOV-rate histogram.
    pub oov_psi: Option<f64>,
    /// Pooled OOV rate (`oov_features / total_features`) of the window minus the baseline's.
    pub oov_shift: Option<f64>,
    /// PSI of the text length histogram.
    pub length_psi: Option<f64>,
}

/// `", got <value>"` in an error message, natively. WebAssembly builds leave the value out:
/// printing an `f64` links core's float formatting (about 7 KB of gzip), and the JS binding
/// checks these options first, with the value (formatted by JS) in its own message.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
struct Got(f64);

impl std::fmt::Display for Got {
    #[cfg(not(target_arch = "wasm32"))]
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, ", got {}", self.0)
    }

    #[cfg(target_arch = "wasm32")]
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

pub(crate) fn invalid(why: impl Into<String>) -> Error {
    Error::InvalidInput(why.into())
}

/// Confidence bin of `max(predict_proba)`: `min(floor(p · 10), 9)`, 0 for NaN or negatives.
pub fn confidence_bin(p: f64) -> usize {
    let b = (p * CONFIDENCE_BINS as f64).floor();
    if b >= 0.0 {
        (b as usize).min(CONFIDENCE_BINS - 1)
    } else {
        0
    }
}

/// OOV bin of a text with features: `min(oov · 10 / total, 9)` in integers; `None` when `total == 0`.
pub fn oov_bin(oov: u64, total: u64) -> Option<usize> {
    if total == 0 {
        return None;
    }
    let b = (u128::from(oov.min(total)) * OOV_BINS as u128 / u128::from(total)) as usize;
    Some(b.min(OOV_BINS - 1))
}

/// Length bin of a text of `chars` characters: 0 for empty, else `min(bit_length(chars), 15)`.
pub fn length_bin(chars: u64) -> usize {
    ((u64::BITS - chars.leading_zeros()) as usize).min(LENGTH_BINS - 1)
}

/// Latency bin: the first edge of [`LATENCY_EDGES_MS`] above `ms`, else the last bin.
pub fn latency_bin(ms: f64) -> usize {
    LATENCY_EDGES_MS
        .iter()
        .position(|&edge| ms < edge)
        .unwrap_or(LATENCY_BINS - 1)
}

/// OOV counts of `text` over the vocabulary vectorizers of `model` (hashing ones are skipped);
/// `None` when the model has no vocabulary.
pub fn oov_count(model: &TextClassifier, text: &str) -> Option<Oov> {
    let mut scratch = Scratch::default();
    let mut out: Option<Oov> = None;
    for v in model.vectorizers() {
        let Some(vocab) = v.vocabulary() else { continue };
        let o = out.get_or_insert_with(Oov::default);
        v.analyzer.for_each_feature(text, &mut scratch, |feature| {
            o.total += 1;
            if vocab.get(feature).is_none() {
                o.oov += 1;
            }
        });
    }
    out
}

/// The class labels as strings.
pub fn class_names(classes: &Classes) -> Vec<String> {
    match classes {
        Classes::Int(v) => v.iter().map(i64::to_string).collect(),
        Classes::Str(v) => v.clone(),
    }
}

impl Stats {
    /// Empty statistics for `n_classes` classes.
    pub fn new(n_classes: usize, confidence: bool, oov: bool) -> Self {
        Stats {
            count: 0,
            label_counts: vec![0; n_classes],
            confidence: confidence.then(|| vec![0; CONFIDENCE_BINS]),
            oov: oov.then(|| OovStats {
                counts: vec![0; OOV_BINS],
                no_features: 0,
                oov_features: 0,
                total_features: 0,
            }),
            length: vec![0; LENGTH_BINS],
            latency: None,
        }
    }

    /// Adds one observation. A label outside `label_counts` is not counted there; a confidence
    /// or OOV value is only counted when its histogram exists.
    pub fn add(&mut self, p: &Prediction, oov: Option<Oov>, text_chars: u64, latency_ms: Option<f64>) {
        self.count += 1;
        if let Some(c) = self.label_counts.get_mut(p.label) {
            *c += 1;
        }
        if let (Some(hist), Some(proba)) = (self.confidence.as_mut(), p.proba.as_ref()) {
            let top = proba.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            hist[confidence_bin(top)] += 1;
        }
        if let (Some(stats), Some(o)) = (self.oov.as_mut(), oov) {
            match oov_bin(o.oov, o.total) {
                Some(b) => stats.counts[b] += 1,
                None => stats.no_features += 1,
            }
            stats.oov_features += o.oov.min(o.total);
            stats.total_features += o.total;
        }
        self.length[length_bin(text_chars)] += 1;
        // A latency that would take the window's sum past MAX_LATENCY_MS (a host clock gone
        // wrong) is left out: the snapshot stays one that validates.
        let sum = self.latency.as_ref().map_or(0.0, |l| l.sum_ms);
        if let Some(ms) = latency_ms.filter(|ms| ms.is_finite() && *ms >= 0.0 && sum + ms <= MAX_LATENCY_MS) {
            let l = self.latency.get_or_insert_with(|| LatencyStats {
                counts: vec![0; LATENCY_BINS],
                sum_ms: 0.0,
                max_ms: 0.0,
            });
            l.counts[latency_bin(ms)] += 1;
            l.sum_ms += ms;
            l.max_ms = l.max_ms.max(ms);
        }
    }

    /// Adds the counts of `other` (same shape) to these: the aggregate of two windows.
    pub fn merge(&mut self, other: &Stats) -> Result<()> {
        other.check_shape(self.label_counts.len())?;
        if self.confidence.is_some() != other.confidence.is_some()
            || self.oov.is_some() != other.oov.is_some()
        {
            return Err(invalid("statistics of different kinds cannot be merged"));
        }
        self.count = self.count.saturating_add(other.count);
        add_into(&mut self.label_counts, &other.label_counts);
        if let (Some(a), Some(b)) = (self.confidence.as_mut(), other.confidence.as_ref()) {
            add_into(a, b);
        }
        if let (Some(a), Some(b)) = (self.oov.as_mut(), other.oov.as_ref()) {
            add_into(&mut a.counts, &b.counts);
            a.no_features = a.no_features.saturating_add(b.no_features);
            a.oov_features = a.oov_features.saturating_add(b.oov_features);
            a.total_features = a.total_features.saturating_add(b.total_features);
        }
        add_into(&mut self.length, &other.length);
        if let Some(b) = &other.latency {
            let a = self.latency.get_or_insert_with(|| LatencyStats {
                counts: vec![0; LATENCY_BINS],
                sum_ms: 0.0,
                max_ms: 0.0,
            });
            add_into(&mut a.counts, &b.counts);
            a.sum_ms += b.sum_ms;
            a.max_ms = a.max_ms.max(b.max_ms);
        }
        Ok(())
    }

    /// Pooled OOV rate, `oov_features / total_features`.
    pub fn oov_rate(&self) -> Option<f64> {
        self.oov
            .as_ref()
            .filter(|o| o.total_features > 0)
            .map(|o| o.oov_features as f64 / o.total_features as f64)
    }

    /// Checks every length and sum: histograms have their fixed sizes and add up to `count`.
    pub fn check_shape(&self, n_classes: usize) -> Result<()> {
        let sum = |v: &[u64]| v.iter().try_fold(0u64, |a, &b| a.checked_add(b));
        let equal = |what: &str, v: &[u64], len: usize, total: Option<u64>| -> Result<()> {
            if v.len() != len {
                return Err(invalid(format!("{what} has {} bins, expected {len}", v.len())));
            }
            let s = sum(v).ok_or_else(|| invalid(format!("{what} overflows")))?;
            match total {
                Some(t) if s != t => Err(invalid(format!("{what} adds up to {s}, expected {t}"))),
                _ => Ok(()),
            }
        };
        equal("label_counts", &self.label_counts, n_classes, Some(self.count))?;
        if let Some(c) = &self.confidence {
            equal("confidence", c, CONFIDENCE_BINS, Some(self.count))?;
        }
        if let Some(o) = &self.oov {
            let rest = self
                .count
                .checked_sub(o.no_features)
                .ok_or_else(|| invalid("oov.no_features exceeds count"))?;
            equal("oov.counts", &o.counts, OOV_BINS, Some(rest))?;
            if o.oov_features > o.total_features {
                return Err(invalid("oov.oov_features exceeds oov.total_features"));
            }
        }
        equal("length", &self.length, LENGTH_BINS, Some(self.count))?;
        if let Some(l) = &self.latency {
            equal("latency.counts", &l.counts, LATENCY_BINS, None)?;
            if !matches!(sum(&l.counts), Some(s) if s <= self.count) {
                return Err(invalid("latency.counts adds up to more than count"));
            }
            let ok = |ms: f64| (0.0..=MAX_LATENCY_MS).contains(&ms);
            if !(ok(l.sum_ms) && ok(l.max_ms)) {
                return Err(invalid(
                    "latency.sum_ms and latency.max_ms must be in [0, 1e15] (ms)",
                ));
            }
            let timed = sum(&l.counts).unwrap_or(0) as f64;
            if l.sum_ms > timed * l.max_ms * (1.0 + SUM_SLACK) {
                return Err(invalid("latency.sum_ms exceeds the timed count × latency.max_ms"));
            }
        }
        Ok(())
    }

    /// The statistics of an artifact baseline.
    pub fn from_baseline(b: &Baseline) -> Self {
        Stats {
            count: b.count,
            label_counts: b.label_counts.clone(),
            confidence: b.confidence.clone(),
            oov: b.oov.as_ref().map(|o| OovStats {
                counts: o.counts.clone(),
                no_features: o.no_features,
                oov_features: o.oov_features,
                total_features: o.total_features,
            }),
            length: b.length.clone(),
            latency: None,
        }
    }

    /// These statistics as an artifact baseline (latency is not part of a baseline).
    pub fn to_baseline(&self) -> Baseline {
        Baseline {
            count: self.count,
            label_counts: self.label_counts.clone(),
            confidence: self.confidence.clone(),
            oov: self.oov.as_ref().map(|o| OovCounts {
                counts: o.counts.clone(),
                no_features: o.no_features,
                oov_features: o.oov_features,
                total_features: o.total_features,
            }),
            length: self.length.clone(),
        }
    }
}

fn add_into(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.saturating_add(*y);
    }
}

/// Population stability index of two histograms over the same bins:
/// `Σ (a_i − e_i) · ln(a_i / e_i)` with `e_i`, `a_i` the proportions of `expected` and `actual`,
/// each raised to at least [`PSI_EPSILON`]. `None` when the lengths differ or a histogram is empty.
pub fn psi(expected: &[u64], actual: &[u64]) -> Option<f64> {
    if expected.len() != actual.len() || expected.is_empty() {
        return None;
    }
    let ne: u128 = expected.iter().map(|&c| u128::from(c)).sum();
    let na: u128 = actual.iter().map(|&c| u128::from(c)).sum();
    if ne == 0 || na == 0 {
        return None;
    }
    let mut total = 0.0;
    for (&e, &a) in expected.iter().zip(actual) {
        let pe = (e as f64 / ne as f64).max(PSI_EPSILON);
        let pa = (a as f64 / na as f64).max(PSI_EPSILON);
        total += (pa - pe) * libm::log(pa / pe);
    }
    Some(total)
}

/// Drift of `current` against `baseline` (same classes and bins).
pub fn drift(baseline: &Stats, current: &Stats) -> Drift {
    let both = |a: Option<&Vec<u64>>, b: Option<&Vec<u64>>| match (a, b) {
        (Some(a), Some(b)) => psi(a, b),
        _ => None,
    };
    Drift {
        label_psi: psi(&baseline.label_counts, &current.label_counts),
        confidence_psi: both(baseline.confidence.as_ref(), current.confidence.as_ref()),
        oov_psi: both(
            baseline.oov.as_ref().map(|o| &o.counts),
            current.oov.as_ref().map(|o| &o.counts),
        ),
        oov_shift: match (baseline.oov_rate(), current.oov_rate()) {
            (Some(b), Some(c)) => Some(c - b),
            _ => None,
        },
        length_psi: psi(&baseline.length, &current.length),
    }
}

/// Checks a baseline against a model with `n_classes` classes (the exporter's output).
pub fn check_baseline(b: &Baseline, n_classes: usize) -> Result<()> {
    Stats::from_baseline(b).check_shape(n_classes)
}

/// SplitMix64 (Steele, Lea, Flood 2014): the sampler's deterministic stream.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw in `[0, 1)` with 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A host's clock reading as a window time: within `0 ..= MAX_TIME_MS` whatever the host says
/// (`Date.now()` of a clock gone wrong, a test's fake timer returning NaN or 1e300), so that no
/// window time makes a snapshot the validator refuses.
pub(crate) fn ms(now_ms: f64) -> u64 {
    if now_ms > 0.0 {
        // NaN is not > 0; +inf is clamped too
        now_ms.min(MAX_TIME_MS as f64) as u64
    } else {
        0
    }
}

/// Sampled monitoring of one model's predictions, with bounded memory.
#[derive(Debug, Clone)]
pub struct Monitor {
    config: MonitorConfig,
    model: ModelRef,
    classes: Vec<String>,
    has_proba: bool,
    has_vocabulary: bool,
    baseline: Option<Stats>,
    rng: SplitMix64,
    instance: [u8; 16],
    index: u64,
    start_ms: u64,
    seen: u64,
    stats: Stats,
    texts: Vec<String>,
    outbox: Outbox<Snapshot>,
}

impl Monitor {
    /// Starts monitoring `model`, whose artifact bytes have the hex sha256 `artifact_sha256`, at
    /// `now_ms` (milliseconds since the Unix epoch). `id_key`: 16 bytes the host draws from its
    /// cryptographic random source for each instance (never from `config.seed`), which make its
    /// snapshot ids unique: monitors of one model given the same seed and started in the same
    /// millisecond (a fleet of Workers isolates, whose `Date.now()` is coarse) would otherwise
    /// share ids, and the collector would keep one snapshot of each pair.
    pub fn new(
        model: &TextClassifier,
        artifact_sha256: &str,
        config: MonitorConfig,
        now_ms: f64,
        id_key: [u8; 16],
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.sample_rate) {
            return Err(invalid(format!(
                "sampleRate must be in [0, 1]{}",
                Got(config.sample_rate)
            )));
        }
        if let Some(w) = config.window_seconds {
            if !(w.is_finite() && w >= 0.001) {
                return Err(invalid(format!(
                    "windowSeconds must be a number ≥ 0.001{}",
                    Got(w)
                )));
            }
        }
        if config.max_texts > MAX_TEXTS {
            return Err(invalid(format!(
                "maxTexts must be at most {MAX_TEXTS}, got {}",
                config.max_texts
            )));
        }
        let sha256 = artifact_sha256.to_ascii_lowercase();
        if !hex::is_lower(&sha256, 64) {
            return Err(invalid("the artifact sha256 must be 64 hex digits"));
        }
        let classes = class_names(model.classes());
        if classes.len() > MAX_CLASSES || classes.iter().map(String::len).sum::<usize>() > MAX_CLASS_BYTES {
            return Err(invalid(format!(
                "a model with {} classes ({} bytes of labels) is too large to monitor (limits: {MAX_CLASSES} classes, {MAX_CLASS_BYTES} bytes)",
                classes.len(),
                classes.iter().map(String::len).sum::<usize>()
            )));
        }
        let m = model.metadata();
        let cut = |s: &str| s.chars().take(MAX_NAME_CHARS).collect::<String>();
        let has_proba = model.predict("")?.proba.is_some();
        let has_vocabulary = model.vectorizers().iter().any(|v| v.vocabulary().is_some());
        let baseline = match &m.baseline {
            Some(b) => {
                let s = Stats::from_baseline(b);
                s.check_shape(classes.len()).map_err(|e| {
                    Error::Corrupt(format!("the artifact's drift baseline is inconsistent: {e}"))
                })?;
                Some(s)
            }
            None => None,
        };
        // A name no collector takes (a hand-packed artifact named `team/model`) would lose every
        // window: refused here, as the collector would refuse each snapshot.
        let model = ModelRef {
            name: cut(&m.name),
            version: cut(&m.version),
            sha256,
        };
        model.check("the model")?;
        let created = ms(now_ms);
        let mut key = Vec::with_capacity(96);
        key.extend_from_slice(model.sha256.as_bytes());
        key.extend_from_slice(&id_key);
        key.extend_from_slice(&now_ms.to_bits().to_le_bytes());
        let mut instance = [0u8; 16];
        instance[..8].copy_from_slice(&xxh64(&key, 0x736b_6564_6765).to_le_bytes());
        instance[8..].copy_from_slice(&xxh64(&key, 0x006d_6f6e_6974_6f72).to_le_bytes());
        Ok(Monitor {
            stats: Stats::new(classes.len(), has_proba, has_vocabulary),
            rng: SplitMix64::new(config.seed),
            config,
            model,
            classes,
            has_proba,
            has_vocabulary,
            baseline,
            instance,
            index: 0,
            start_ms: created,
            seen: 0,
            texts: Vec::new(),
            outbox: Outbox::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// The model snapshots refer to.
    pub fn model(&self) -> &ModelRef {
        &self.model
    }

    /// The statistics of the open window.
    pub fn current(&self) -> &Stats {
        &self.stats
    }

    /// Predictions seen in the open window.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The artifact's drift baseline, when the exporter stored one.
    pub fn baseline(&self) -> Option<&Stats> {
        self.baseline.as_ref()
    }

    /// Drift of the open window against the baseline (`None` without a baseline).
    pub fn drift(&self) -> Option<Drift> {
        self.baseline.as_ref().map(|b| drift(b, &self.stats))
    }

    /// Closes the window if `window_seconds` have passed at `now_ms` (queued when it saw
    /// anything) and opens the one `now_ms` falls in.
    pub fn tick(&mut self, now_ms: f64) {
        let Some(w) = self.config.window_seconds else {
            return;
        };
        let width = ((w * 1000.0).round() as u64).max(1);
        let now = ms(now_ms);
        if now < self.start_ms.saturating_add(width) {
            return;
        }
        let end = self.start_ms.saturating_add(width);
        if self.seen > 0 {
            let s = self.close(end);
            self.outbox.push(s);
        }
        // the window `now` falls in, aligned on the monitor's first window
        let skipped = (now - end) / width;
        self.start_ms = end.saturating_add(skipped.saturating_mul(width));
    }

    /// Counts one prediction as seen (after [`Monitor::tick`]) and draws whether it is sampled.
    pub fn sample(&mut self, now_ms: f64) -> bool {
        self.tick(now_ms);
        self.seen += 1;
        self.config.sample_rate > 0.0 && self.rng.next_f64() < self.config.sample_rate
    }

    /// Adds a sampled prediction to the open window. `oov` is ignored for models without a
    /// vocabulary; `latency_ms` is `None` where the runtime cannot time the prediction.
    pub fn observe(
        &mut self,
        prediction: &Prediction,
        oov: Option<Oov>,
        text_chars: u64,
        latency_ms: Option<f64>,
    ) {
        let oov = if self.has_vocabulary { oov } else { None };
        self.stats.add(prediction, oov, text_chars, latency_ms);
    }

    /// [`Monitor::sample`], then for a sampled prediction its OOV counts, length and latency
    /// ([`Monitor::observe`]), and the text when the caller opted in. Returns whether it was
    /// sampled.
    pub fn record(
        &mut self,
        model: &TextClassifier,
        text: &str,
        prediction: &Prediction,
        latency_ms: Option<f64>,
        now_ms: f64,
    ) -> bool {
        if !self.sample(now_ms) {
            return false;
        }
        let oov = if self.has_vocabulary {
            oov_count(model, text)
        } else {
            None
        };
        self.observe(prediction, oov, text.chars().count() as u64, latency_ms);
        if self.texts.len() < self.config.max_texts {
            self.texts.push(text.chars().take(MAX_TEXT_CHARS).collect());
        }
        true
    }

    fn close(&mut self, end_ms: u64) -> Snapshot {
        let stats = std::mem::replace(
            &mut self.stats,
            Stats::new(self.classes.len(), self.has_proba, self.has_vocabulary),
        );
        let mut key = self.instance.to_vec();
        key.extend_from_slice(&self.index.to_le_bytes());
        let id = format!("{:016x}{:016x}", xxh64(&key, 1), xxh64(&key, 2));
        let s = Snapshot {
            format: SNAPSHOT_FORMAT.into(),
            version: SNAPSHOT_VERSION,
            id,
            model: self.model.clone(),
            window: Window {
                index: self.index,
                start_ms: self.start_ms,
                end_ms: end_ms.max(self.start_ms),
            },
            sample_rate: self.config.sample_rate,
            seen: std::mem::take(&mut self.seen),
            dropped: self.outbox.dropped,
            classes: self.classes.clone(),
            stats,
            texts: std::mem::take(&mut self.texts),
        };
        self.index += 1;
        self.start_ms = s.window.end_ms;
        s
    }

    /// Closes the open window at `now_ms` (first any finished `window_seconds` window), queues
    /// it for delivery and returns it.
    pub fn snapshot(&mut self, now_ms: f64) -> Snapshot {
        self.tick(now_ms);
        let s = self.close(ms(now_ms));
        self.outbox.push(s.clone());
        s
    }

    /// Snapshots waiting for delivery, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Snapshot> {
        self.outbox.queue.iter()
    }

    /// Takes every snapshot waiting for delivery (give back the undelivered ones with
    /// [`Monitor::requeue`]).
    pub fn take_pending(&mut self) -> Vec<Snapshot> {
        self.outbox.queue.drain(..).collect()
    }

    /// Puts undelivered snapshots back at the front of the queue, in order; beyond
    /// [`MAX_PENDING`] the oldest are dropped (and counted).
    pub fn requeue(&mut self, undelivered: Vec<Snapshot>) {
        self.outbox.requeue(undelivered);
    }

    /// Snapshots dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.outbox.dropped
    }
}

/// Closed snapshots waiting for delivery, oldest first (a monitor's or an experiment's): at most
/// [`MAX_PENDING`], so an endpoint that stays down costs bounded memory; beyond it the oldest are
/// dropped and counted, and the count travels in the next snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Outbox<S> {
    pub(crate) queue: VecDeque<S>,
    pub(crate) dropped: u64,
}

impl<S> Default for Outbox<S> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            dropped: 0,
        }
    }
}

impl<S> Outbox<S> {
    pub(crate) fn push(&mut self, s: S) {
        if self.queue.len() == MAX_PENDING {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(s);
    }

    /// Undelivered snapshots back at the front, in order; going from newest to oldest, the ones
    /// that no longer fit are the oldest.
    pub(crate) fn requeue(&mut self, undelivered: Vec<S>) {
        for s in undelivered.into_iter().rev() {
            if self.queue.len() == MAX_PENDING {
                self.dropped += 1;
                continue;
            }
            self.queue.push_front(s);
        }
    }
}

/// Latest window time a snapshot may carry, in ms since the epoch: 9999-12-31T23:59:59.999Z,
/// the last instant a date (and MLflow's timestamps) can show.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Why `name` cannot name a registered model in MLflow (its `_validate_model_name`: not blank, no
/// `/` or `:`, not `.`, not starting with `..`), nor go into a search filter (no `\\`, no control
/// characters); `None` when it can. `may_be_empty`: an artifact without a version has `""`.
fn name_problem(name: &str, may_be_empty: bool) -> Option<&'static str> {
    if name.is_empty() && may_be_empty {
        return None;
    }
    if name.trim().is_empty() {
        return Some("cannot be empty");
    }
    if name
        .chars()
        .any(|c| matches!(c, '/' | ':' | '\\') || c.is_ascii_control())
    {
        return Some("cannot hold '/', ':', '\\' or control characters");
    }
    if name == "." || name.starts_with("..") {
        return Some("cannot be '.' or start with '..'");
    }
    None
}

impl ModelRef {
    /// The sha256's shape, and names MLflow accepts (`what` names the field in the error).
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        if !hex::is_lower(&self.sha256, 64) {
            return Err(invalid(format!("{what}.sha256 must be 64 lowercase hex digits")));
        }
        if self.name.chars().count() > MAX_NAME_CHARS || self.version.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(format!(
                "{what}.name and {what}.version are limited to {MAX_NAME_CHARS} characters"
            )));
        }
        if let Some(why) = name_problem(&self.name, false) {
            return Err(invalid(format!("{what}.name {why}")));
        }
        if let Some(why) = name_problem(&self.version, true) {
            return Err(invalid(format!("{what}.version {why}")));
        }
        Ok(())
    }
}

impl Snapshot {
    /// Checks everything [`Snapshot::parse`] checks after decoding: format and version, id and
    /// sha256 shapes, window order, sample rate, sizes, and that every histogram adds up.
    pub fn validate(&self) -> Result<()> {
        if self.format != SNAPSHOT_FORMAT || self.version != SNAPSHOT_VERSION {
            return Err(invalid(format!(
                "expected format {SNAPSHOT_FORMAT} version {SNAPSHOT_VERSION}, found {} version {}",
                Quoted(&self.format),
                self.version
            )));
        }
        if !hex::is_lower(&self.id, 32) {
            return Err(invalid("id must be 32 lowercase hex digits"));
        }
        self.model.check("model")?;
        if self.window.end_ms < self.window.start_ms {
            return Err(invalid("window.end_ms is before window.start_ms"));
        }
        if self.window.end_ms > MAX_TIME_MS {
            return Err(invalid(format!(
                "window.end_ms is after {MAX_TIME_MS} (9999-12-31)"
            )));
        }
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err(invalid("sample_rate must be in [0, 1]"));
        }
        if self.stats.count > self.seen {
            return Err(invalid("stats.count exceeds seen"));
        }
        check_classes(&self.classes)?;
        if self.texts.len() > MAX_TEXTS || self.texts.len() as u64 > self.stats.count {
            return Err(invalid(format!(
                "at most {MAX_TEXTS} texts, and no more than stats.count"
            )));
        }
        if self.texts.iter().any(|t| t.chars().count() > MAX_TEXT_CHARS) {
            return Err(invalid(format!(
                "texts are limited to {MAX_TEXT_CHARS} characters"
            )));
        }
        self.stats.check_shape(self.classes.len())
    }

    /// Decodes and validates a snapshot from JSON (at most [`MAX_SNAPSHOT_BYTES`]; unknown fields
    /// are refused).
    #[cfg(feature = "cli")]
    pub fn parse(bytes: &[u8]) -> Result<Snapshot> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(Error::SnapshotTooLarge {
                bytes: Some(bytes.len()),
                limit: MAX_SNAPSHOT_BYTES,
            });
        }
        let s: Snapshot = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not a snapshot: {}", crate::error::Cut(&e.to_string()))))?;
        s.validate()?;
        Ok(s)
    }

    /// The snapshot as compact JSON.
    #[cfg(feature = "cli")]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Drift of this snapshot against `baseline`.
    pub fn drift(&self, baseline: &Stats) -> Drift {
        drift(baseline, &self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::schema::*;

    /// The crate's tiny model with "the" as a stop word and no idf.
    fn body(baseline: Option<Baseline>) -> Body {
        let mut b = crate::artifact::example::tiny();
        b.metadata.provenance.clear();
        b.metadata.metrics.clear();
        b.metadata.baseline = baseline;
        let block = &mut b.pipeline.features[0];
        block.analyzer.stop_words = vec!["the".into()];
        block.transforms = vec![Transform::Normalize { norm: Norm::L2 }];
        b
    }

    fn model() -> TextClassifier {
        TextClassifier::from_body(body(None)).unwrap()
    }

    const SHA: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const T0: f64 = 1_767_225_600_000.0;
    /// A fixed `id_key`, for ids the tests can compare.
    const KEY: [u8; 16] = *b"skedge-monitor-k";

    fn monitor(config: MonitorConfig) -> (TextClassifier, Monitor) {
        let m = model();
        let mon = Monitor::new(&m, SHA, config, T0, KEY).unwrap();
        (m, mon)
    }

    fn feed(m: &TextClassifier, mon: &mut Monitor, texts: &[&str], t: f64) {
        for text in texts {
            let p = m.predict(text).unwrap();
            mon.record(m, text, &p, Some(0.3), t);
        }
    }

    #[test]
    fn bins() {
        assert_eq!(confidence_bin(0.5), 5);
        assert_eq!(confidence_bin(0.99999), 9);
        assert_eq!(confidence_bin(1.0), 9);
        assert_eq!(confidence_bin(0.0), 0);
        assert_eq!(confidence_bin(f64::NAN), 0);
        assert_eq!(oov_bin(0, 0), None);
        assert_eq!(oov_bin(1, 3), Some(3));
        assert_eq!(oov_bin(3, 3), Some(9));
        assert_eq!(oov_bin(0, 7), Some(0));
        assert_eq!(length_bin(0), 0);
        assert_eq!(length_bin(1), 1);
        assert_eq!(length_bin(3), 2);
        assert_eq!(length_bin(4), 3);
        assert_eq!(length_bin(16_383), 14);
        assert_eq!(length_bin(16_384), 15);
        assert_eq!(length_bin(u64::MAX), 15);
        assert_eq!(latency_bin(0.0), 0);
        assert_eq!(latency_bin(0.01), 1);
        assert_eq!(latency_bin(0.7), 6);
        assert_eq!(latency_bin(1e9), LATENCY_BINS - 1);
    }

    #[test]
    fn oov_counts_use_the_analyzer_and_vocabulary() {
        let m = model();
        // "the" is a stop word (not a feature), "is" and "not" are out of the vocabulary
        assert_eq!(
            oov_count(&m, "The GOOD is not bad"),
            Some(Oov { oov: 2, total: 4 })
        );
        assert_eq!(oov_count(&m, "!!"), Some(Oov { oov: 0, total: 0 }));
    }

    #[test]
    fn sampler_is_deterministic_and_near_its_rate() {
        let draws = |seed| {
            let (_, mut mon) = monitor(MonitorConfig {
                sample_rate: 0.25,
                seed,
                ..MonitorConfig::default()
            });
            (0..4000).map(|_| mon.sample(T0)).collect::<Vec<_>>()
        };
        let a = draws(7);
        assert_eq!(a, draws(7));
        assert_ne!(a, draws(8));
        let n = a.iter().filter(|&&s| s).count();
        assert!((900..1100).contains(&n), "{n} sampled of 4000 at rate 0.25");
        // SplitMix64's published first output for seed 0
        assert_eq!(SplitMix64::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn memory_is_bounded_whatever_the_traffic() {
        let (m, mut mon) = monitor(MonitorConfig {
            window_seconds: Some(1.0),
            max_texts: 2,
            ..MonitorConfig::default()
        });
        let long = "good ".repeat(400);
        for i in 0..3_000u32 {
            let text = if i % 2 == 0 { long.as_str() } else { "bad" };
            let p = m.predict(text).unwrap();
            mon.record(&m, text, &p, Some(f64::from(i)), T0 + f64::from(i) * 500.0);
        }
        // one window per second: 1,499 closed, only the last MAX_PENDING kept
        assert_eq!(mon.pending().count(), MAX_PENDING);
        assert_eq!(mon.dropped(), 1499 - MAX_PENDING as u64);
        for s in mon.pending() {
            assert_eq!(s.stats.label_counts.len(), 2);
            assert_eq!(s.stats.length.len(), LENGTH_BINS);
            assert!(s.texts.len() <= 2 && s.texts.iter().all(|t| t.chars().count() <= MAX_TEXT_CHARS));
            s.validate().unwrap();
        }
        assert!(mon.current().count <= 2);
    }

    #[test]
    fn snapshots_close_windows_and_round_trip() {
        let (m, mut mon) = monitor(MonitorConfig {
            seed: 3,
            ..MonitorConfig::default()
        });
        feed(
            &m,
            &mut mon,
            &["good great", "bad", "", "zzz qqq good"],
            T0 + 10.0,
        );
        let s = mon.snapshot(T0 + 1000.0);
        assert_eq!(
            s.window,
            Window {
                index: 0,
                start_ms: T0 as u64,
                end_ms: T0 as u64 + 1000
            }
        );
        assert_eq!((s.seen, s.stats.count), (4, 4));
        assert_eq!(s.stats.label_counts, vec![1, 3]);
        let oov = s.stats.oov.as_ref().unwrap();
        assert_eq!((oov.no_features, oov.oov_features, oov.total_features), (1, 2, 6));
        assert_eq!(oov.counts.iter().sum::<u64>(), 3);
        assert_eq!(s.stats.latency.as_ref().unwrap().counts[latency_bin(0.3)], 4);
        assert!(s.texts.is_empty(), "no text leaves without opting in");
        s.validate().unwrap();
        #[cfg(feature = "cli")]
        assert_eq!(Snapshot::parse(s.to_json().as_bytes()).unwrap(), s);
        // the next window starts where this one ended, with a new id
        feed(&m, &mut mon, &["good"], T0 + 2000.0);
        let t = mon.snapshot(T0 + 3000.0);
        assert_eq!(
            (t.window.index, t.window.start_ms, t.seen),
            (1, T0 as u64 + 1000, 1)
        );
        assert_ne!(s.id, t.id);
        assert_eq!(mon.take_pending().len(), 2);
        // same key, same start: same ids (deterministic), whatever the seed
        let (_, mut again) = monitor(MonitorConfig {
            seed: 4,
            ..MonitorConfig::default()
        });
        assert_eq!(again.snapshot(T0 + 1000.0).id, s.id);
    }

    #[test]
    fn ids_come_from_the_hosts_key_never_from_the_seed() {
        // A fleet of isolates all configured with `seed: 42`, started in the same millisecond:
        // each draws its own key, so their snapshots keep distinct ids (the collector and push
        // count one snapshot per id).
        let m = model();
        let config = MonitorConfig {
            seed: 42,
            sample_rate: 0.5,
            ..MonitorConfig::default()
        };
        let ids = |key: [u8; 16]| {
            let mut mon = Monitor::new(&m, SHA, config.clone(), T0, key).unwrap();
            feed(
                &m,
                &mut mon,
                &["good", "bad", "great good", "good bad"].repeat(8),
                T0,
            );
            let first = mon.snapshot(T0 + 1.0);
            feed(&m, &mut mon, &["great"], T0 + 2.0);
            let second = mon.snapshot(T0 + 3.0);
            (first.id, second.id, first.stats)
        };
        let (a0, a1, a_stats) = ids([1; 16]);
        let (b0, b1, b_stats) = ids([2; 16]);
        for a in [&a0, &a1] {
            for b in [&b0, &b1] {
                assert_ne!(a, b);
            }
        }
        // the seed still reproduces the sample
        assert_eq!(a_stats, b_stats);
        // one key: the same ids again
        assert_eq!(ids([1; 16]), (a0, a1, a_stats));
    }

    #[test]
    fn timed_windows_roll_and_skip_idle_ones() {
        let (m, mut mon) = monitor(MonitorConfig {
            window_seconds: Some(60.0),
            ..MonitorConfig::default()
        });
        feed(&m, &mut mon, &["good"], T0 + 1.0);
        feed(&m, &mut mon, &["bad"], T0 + 59_999.0);
        feed(&m, &mut mon, &["bad"], T0 + 3.0 * 60_000.0 + 5.0); // two idle windows skipped
        let closed = mon.take_pending();
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (closed[0].window.start_ms, closed[0].window.end_ms),
            (T0 as u64, T0 as u64 + 60_000)
        );
        assert_eq!(closed[0].seen, 2);
        let s = mon.snapshot(T0 + 3.0 * 60_000.0 + 10.0);
        assert_eq!(s.window.start_ms, T0 as u64 + 180_000);
        assert_eq!(s.seen, 1);
    }

    #[test]
    fn requeue_keeps_order_and_bound() {
        let (_, mut mon) = monitor(MonitorConfig::default());
        for i in 0..3 {
            mon.snapshot(T0 + f64::from(i));
        }
        let taken = mon.take_pending();
        mon.snapshot(T0 + 10.0);
        mon.requeue(taken.clone());
        let ids: Vec<_> = mon.pending().map(|s| s.window.index).collect();
        assert_eq!(ids, vec![0, 1, 2, 3]);
        mon.take_pending();
        for i in 0..MAX_PENDING {
            mon.snapshot(T0 + 100.0 + i as f64);
        }
        mon.requeue(taken);
        assert_eq!(mon.pending().count(), MAX_PENDING);
        assert_eq!(mon.dropped(), 3);
    }

    #[cfg(feature = "cli")]
    #[test]
    fn parse_rejects_garbage_and_oversize() {
        let (m, mut mon) = monitor(MonitorConfig::default());
        feed(&m, &mut mon, &["good", "bad"], T0);
        let good: serde_json::Value = serde_json::from_str(&mon.snapshot(T0 + 1.0).to_json()).unwrap();
        let with = |path: &[&str], v: serde_json::Value| {
            let mut doc = good.clone();
            let mut at = &mut doc;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = v;
            serde_json::to_vec(&doc).unwrap()
        };
        let without = |path: &[&str]| {
            let mut doc = good.clone();
            let mut at = &mut doc;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at.as_object_mut().unwrap().remove(path[path.len() - 1]).unwrap();
            serde_json::to_vec(&doc).unwrap()
        };
        use serde_json::json;
        let latency = |sum_ms: f64, max_ms: f64| {
            let mut counts = vec![0; LATENCY_BINS];
            counts[LATENCY_BINS - 1] = 2;
            json!({"counts": counts, "sum_ms": sum_ms, "max_ms": max_ms})
        };
        assert!(good["stats"]["confidence"].is_array() && good["stats"]["oov"].is_object());
        let bad: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"not json".to_vec(),
            b"[]".to_vec(),
            b"{}".to_vec(),
            with(&["format"], json!("other")),
            with(&["version"], json!(2)),
            with(&["id"], json!("xyz")),
            with(&["id"], json!("00112233445566778899AABBCCDDEEFF")),
            with(&["model", "sha256"], json!("abc")),
            with(&["sample_rate"], json!(1.5)),
            with(&["seen"], json!(-1)),
            with(&["seen"], json!(1)),
            with(&["window", "end_ms"], json!(0)),
            with(&["stats", "label_counts"], json!([1, 2])),
            with(&["stats", "label_counts"], json!([2])),
            with(&["stats", "confidence"], json!([0, 0, 0])),
            with(&["stats", "length"], json!(vec![0; LENGTH_BINS + 1])),
            with(&["stats", "oov", "oov_features"], json!(1_000_000)),
            with(&["stats", "unknown"], json!(1)),
            with(&["extra"], json!(1)),
            with(&["texts"], json!(["a", "b", "c"])),
            with(&["classes"], json!([])),
            // The collector's schema requires them (every monitor ever wrote them, `null` or not).
            without(&["stats", "confidence"]),
            without(&["stats", "oov"]),
            // Each at most 1e15 ms (sum_ms ≤ timed × max_ms holds in both).
            with(&["stats", "latency"], latency(2e15, 1.1e15)),
            with(&["stats", "latency"], latency(1.0, 2e15)),
            with(&["stats", "latency"], latency(f64::MAX, f64::MAX)),
        ];
        for (i, b) in bad.iter().enumerate() {
            assert!(
                matches!(Snapshot::parse(b), Err(Error::InvalidInput(_))),
                "case {i} accepted: {}",
                String::from_utf8_lossy(b)
            );
        }
        let mut huge = serde_json::to_vec(&good).unwrap();
        huge.resize(MAX_SNAPSHOT_BYTES + 1, b' ');
        assert!(matches!(
            Snapshot::parse(&huge),
            Err(Error::SnapshotTooLarge { .. })
        ));
        assert!(Snapshot::parse(&serde_json::to_vec(&good).unwrap()).is_ok());
        assert!(Snapshot::parse(&with(&["stats", "latency"], latency(1e15, 1e15))).is_ok());
        // `null` is present; only latency may be left out.
        assert!(Snapshot::parse(&with(&["stats", "oov"], serde_json::Value::Null)).is_ok());
        assert!(Snapshot::parse(&without(&["stats", "latency"])).is_ok());
    }

    #[cfg(feature = "cli")]
    #[test]
    fn a_host_clock_or_latency_gone_wrong_still_makes_valid_snapshots() {
        let m = model();
        for (start, times) in [
            (f64::NAN, [1e300, f64::INFINITY, f64::NAN]),
            (1e300, [T0, -1.0, f64::NEG_INFINITY]),
            (T0, [3e14, 1e16, f64::MAX]),
        ] {
            let config = MonitorConfig {
                window_seconds: Some(60.0),
                ..MonitorConfig::default()
            };
            let mut mon = Monitor::new(&m, SHA, config, start, KEY).unwrap();
            for (i, t) in times.iter().enumerate() {
                let p = m.predict("good").unwrap();
                // 1.7e308 ms twice (a clock polyfill's performance.now()) then a plausible one
                let latency = if i < 2 { f64::MAX } else { 0.3 };
                mon.record(&m, "good", &p, Some(latency), *t);
                mon.record(&m, "good", &p, Some(9e14), *t);
            }
            mon.snapshot(times[2]);
            for s in mon.take_pending() {
                assert!(s.window.end_ms <= MAX_TIME_MS, "{:?}", s.window);
                Snapshot::parse(s.to_json().as_bytes()).unwrap();
                if let Some(l) = &s.stats.latency {
                    assert!(l.sum_ms <= MAX_LATENCY_MS, "{l:?}");
                }
            }
        }
    }

    #[test]
    fn psi_and_drift() {
        assert_eq!(psi(&[10, 10], &[10, 10]), Some(0.0));
        assert_eq!(psi(&[1, 2], &[1]), None);
        assert_eq!(psi(&[0, 0], &[1, 1]), None);
        // 50/50 against 90/10: 0.4·ln(1.8) + 0.4·ln(5) ... computed by hand
        let p = psi(&[50, 50], &[90, 10]).unwrap();
        let want = (0.9 - 0.5) * (0.9f64 / 0.5).ln() + (0.1 - 0.5) * (0.1f64 / 0.5).ln();
        assert!((p - want).abs() < 1e-15);
        // empty bins are smoothed, not infinite
        assert!(psi(&[10, 0], &[0, 10]).unwrap().is_finite());

        let (m, mut mon) = monitor(MonitorConfig::default());
        feed(&m, &mut mon, &["good", "great good", "bad", "good bad"], T0);
        let base = mon.snapshot(T0 + 1.0).stats;
        let b = base.to_baseline();
        check_baseline(&b, 2).unwrap();
        assert!(check_baseline(&b, 3).is_err());
        let with_baseline = TextClassifier::from_body(body(Some(b))).unwrap();
        let mut mon = Monitor::new(&with_baseline, SHA, MonitorConfig::default(), T0, KEY).unwrap();
        feed(
            &with_baseline,
            &mut mon,
            &["good", "great good", "bad", "good bad"],
            T0,
        );
        let same = mon.drift().unwrap();
        assert_eq!(same.label_psi, Some(0.0));
        assert_eq!(same.oov_shift, Some(0.0));
        mon.snapshot(T0 + 1.0);
        feed(
            &with_baseline,
            &mut mon,
            &["ceci est tout autre", "vraiment bon", "mauvais"],
            T0 + 2.0,
        );
        let d = mon.drift().unwrap();
        assert!(d.oov_shift.unwrap() > 0.9, "{d:?}");
        assert!(d.oov_psi.unwrap() > 1.0, "{d:?}");
    }

    #[test]
    fn merge_adds_counts() {
        let (m, mut mon) = monitor(MonitorConfig::default());
        feed(&m, &mut mon, &["good", "bad"], T0);
        let a = mon.snapshot(T0 + 1.0).stats;
        feed(&m, &mut mon, &["great"], T0 + 2.0);
        let b = mon.snapshot(T0 + 3.0).stats;
        let mut sum = a.clone();
        sum.merge(&b).unwrap();
        assert_eq!(sum.count, 3);
        assert_eq!(sum.label_counts, vec![1, 2]);
        sum.check_shape(2).unwrap();
        let mut wrong = Stats::new(3, true, true);
        assert!(wrong.merge(&a).is_err());
    }

    #[test]
    fn config_is_checked() {
        let m = model();
        let bad = [
            MonitorConfig {
                sample_rate: 1.5,
                ..MonitorConfig::default()
            },
            MonitorConfig {
                sample_rate: f64::NAN,
                ..MonitorConfig::default()
            },
            MonitorConfig {
                window_seconds: Some(0.0),
                ..MonitorConfig::default()
            },
            MonitorConfig {
                max_texts: MAX_TEXTS + 1,
                ..MonitorConfig::default()
            },
        ];
        for c in bad {
            assert!(Monitor::new(&m, SHA, c, T0, KEY).is_err());
        }
        assert!(Monitor::new(&m, "abc", MonitorConfig::default(), T0, KEY).is_err());
    }

    #[test]
    fn a_model_named_as_no_collector_takes_is_refused_at_the_start() {
        // Every snapshot of such a monitor would be refused by the validator: lost windows.
        let named = |name: &str, version: &str| {
            let mut b = body(None);
            b.metadata.name = name.into();
            b.metadata.version = version.into();
            TextClassifier::from_body(b).unwrap()
        };
        for (name, version) in [
            ("team/model", "1"),
            ("m", "1:2"),
            ("", "1"),
            ("..m", "1"),
            ("a\u{7}b", ""),
        ] {
            let err =
                Monitor::new(&named(name, version), SHA, MonitorConfig::default(), T0, KEY).unwrap_err();
            assert_eq!(err.code(), "INVALID_INPUT", "{name:?} {version:?}: {err}");
            assert!(err.to_string().contains("the model."), "{err}");
        }
        let (m, version) = (named("sentiment é", ""), "");
        let mut mon = Monitor::new(&m, SHA, MonitorConfig::default(), T0, KEY).unwrap();
        let p = m.predict("good").unwrap();
        mon.record(&m, "good", &p, Some(0.1), T0 + 1.0);
        let s = mon.snapshot(T0 + 2.0);
        assert_eq!(
            (s.model.name.as_str(), s.model.version.as_str()),
            ("sentiment é", version)
        );
        s.validate().unwrap();
    }
}
