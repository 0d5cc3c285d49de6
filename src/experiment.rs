//! Champion and challenger on production text (FORMAT.md §4, "Experiment snapshots").
//!
//! An [`Experiment`] serves one of two models and gathers the evidence a team needs to decide
//! whether the challenger should replace the champion, with bounded memory whatever the traffic:
//!
//! - **shadow**: the champion serves every text; a seeded sample of them (`sample_rate`) is also
//!   scored by the challenger, and the pair is compared: label agreement, the champion ×
//!   challenger confusion matrix, `|Δ proba|` (the largest difference over the classes);
//! - **canary**: a stable share of keys is served by the challenger. The assignment is sticky: a
//!   hash of the experiment's salt and the key (xxh64), the same in every runtime and instance,
//!   never a random draw per call;
//! - **feedback**: a prediction's id with the true label, later or never. Ids are matched against
//!   a ring of the last `feedback_capacity` predictions; an older id is counted as expired, an id
//!   the experiment never gave as unknown, a second label for the same id as a duplicate. An id
//!   is the prediction's sequence number and a keyed hash of it (SipHash-2-4 under a key the host
//!   draws at random): no id can be guessed from another, so a client can label only the
//!   predictions it was given. A label is counted only for an arm that still runs the artifact
//!   that made the prediction: the window of an older artifact is closed (its label is expired).
//!
//! Per arm, each window carries the monitoring statistics of [`crate::monitor`] over the texts
//! that arm scored, the feedback count, correct count and confusion matrix (true × predicted).
//! Texts never leave the device. The models themselves are passed to each call, so a binding can
//! swap an arm (a followed alias moved): a new artifact in either arm closes the window, so that a
//! window's statistics always belong to one pair of versions.

use std::collections::VecDeque;
#[allow(deprecated)] // SipHash-2-4 itself, keyed: std's only keyed hasher (DefaultHasher has no key).
use std::hash::{Hasher, SipHasher};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh64::xxh64;

use crate::error::{Quoted, QuotedList, Result};
use crate::hex;
use crate::monitor::{
    class_names, invalid, ms, oov_count, ModelRef, Outbox, SplitMix64, Stats, Window, MAX_CLASSES,
    MAX_SNAPSHOT_BYTES,
};
use crate::{Prediction, TextClassifier};

/// `format` of an experiment snapshot.
pub const EXPERIMENT_FORMAT: &str = "skedge-experiment-snapshot";
/// `version` of the experiment snapshot format.
pub const EXPERIMENT_VERSION: u32 = 1;
/// Predictions remembered for feedback when the caller does not say.
pub const DEFAULT_FEEDBACK_CAPACITY: usize = 10_000;
/// Most predictions an experiment remembers for feedback (about 24 bytes each).
pub const MAX_FEEDBACK_CAPACITY: usize = 1 << 20;
/// Seed of the canary assignment hash: part of the contract (FORMAT.md), never change it.
const ASSIGN_SEED: u64 = 0x736b_6564_6765_6361; // "skedgeca"
/// Most classes a shadow experiment accepts ([`Mode::max_classes`]): beyond it, a window's
/// snapshot (three `n × n` confusion matrices) could exceed [`MAX_SNAPSHOT_BYTES`].
pub const MAX_SHADOW_CLASSES: usize = fitting_classes(Mode::Shadow);
/// Most classes a canary experiment accepts ([`Mode::max_classes`]; two `n × n` matrices).
pub const MAX_CANARY_CLASSES: usize = fitting_classes(Mode::Canary);

/// Decimal digits of the largest `u64`.
const U64_DIGITS: usize = 20;
/// Longest `f64` as JSON (serde_json's ryu, `JSON.stringify`, Python's `repr`):
/// `-2.2250738585072014e-308`.
const F64_CHARS: usize = 24;
/// Most bytes one byte of a label takes in compact JSON written with non-ASCII characters as they
/// are (serde_json, `JSON.stringify`, Python's `ensure_ascii=False`): a control character is
/// `\u0001`.
const ESCAPED: usize = 6;
/// Most bytes one character of a valid model name or version takes there: 4 (UTF-8); names hold
/// no control character or backslash, and `"` takes 2.
const NAME_CHAR: usize = 4;

/// Most decimal digits `len` integers take in all when they add up to at most `u64::MAX` (as
/// every histogram and confusion matrix of a valid snapshot must): each extra digit of one count
/// costs more than the one before (1, 9, 90, …), so the most digits are had by raising all the
/// counts a digit at a time (all at `k` digits, as many as the rest allows at `k + 1`).
const fn max_digits(len: usize) -> usize {
    let (len, budget) = (len as u128, u64::MAX as u128);
    if len == 0 {
        return 0;
    }
    let mut k = 1;
    while k < U64_DIGITS as u32 && len * cost(k + 1) <= budget {
        k += 1;
    }
    let step = cost(k + 1) - cost(k);
    let mut wider = (budget - len * cost(k)) / step;
    if wider > len {
        wider = len;
    }
    (len * k as u128 + wider) as usize
}

/// The least count with `k` digits (0 for one digit).
const fn cost(k: u32) -> u128 {
    if k <= 1 {
        0
    } else {
        10u128.pow(k - 1)
    }
}

/// A JSON array of `len` counts that add up to at most `u64::MAX`.
const fn counts_json(len: usize) -> usize {
    2 + max_digits(len) + len.saturating_sub(1)
}

/// A JSON `n × n` matrix of counts that add up to at most `u64::MAX`.
const fn matrix_json(n: usize) -> usize {
    2 + n.saturating_sub(1) + 2 * n + n * n.saturating_sub(1) + max_digits(n * n)
}

/// A JSON object of these keys and value sizes.
const fn object_json(fields: &[(&str, usize)]) -> usize {
    let mut size = 2 + fields.len().saturating_sub(1);
    let mut i = 0;
    while i < fields.len() {
        size += fields[i].0.len() + 3 + fields[i].1; // "key":value
        i += 1;
    }
    size
}

/// A model's `name`, `version` and `sha256`, names at their longest.
const MODEL_REF_JSON: usize = {
    let name = 2 + NAME_CHAR * crate::monitor::MAX_NAME_CHARS;
    object_json(&[("name", name), ("version", name), ("sha256", 2 + 64)])
};

/// A window's `stats` with every optional part present.
const fn stats_json(n: usize) -> usize {
    let oov = object_json(&[
        ("counts", counts_json(crate::monitor::OOV_BINS)),
        ("no_features", U64_DIGITS),
        ("oov_features", U64_DIGITS),
        ("total_features", U64_DIGITS),
    ]);
    let latency = object_json(&[
        ("counts", counts_json(crate::monitor::LATENCY_BINS)),
        ("sum_ms", F64_CHARS),
        ("max_ms", F64_CHARS),
    ]);
    object_json(&[
        ("count", U64_DIGITS),
        ("label_counts", counts_json(n)),
        ("confidence", counts_json(crate::monitor::CONFIDENCE_BINS)),
        ("oov", oov),
        ("length", counts_json(crate::monitor::LENGTH_BINS)),
        ("latency", latency),
    ])
}

/// One arm's part of a window.
const fn arm_json(arm: Arm, n: usize) -> usize {
    let feedback = object_json(&[
        ("count", U64_DIGITS),
        ("correct", U64_DIGITS),
        ("confusion", matrix_json(n)),
    ]);
    object_json(&[
        ("arm", 2 + arm.as_str().len()),
        ("model", MODEL_REF_JSON),
        ("served", U64_DIGITS),
        ("stats", stats_json(n)),
        ("feedback", feedback),
    ])
}

/// Largest serialized size (compact JSON, as [`ExperimentSnapshot::to_json`], `JSON.stringify`
/// and the Python package write it) of a valid experiment snapshot with `n` classes in `mode`:
/// every count as many digits as a valid snapshot allows (each histogram and matrix adds up to
/// at most `u64::MAX`), every float at its longest, labels of [`MAX_CLASS_BYTES`] control
/// characters (6 bytes each in JSON), names of [`MAX_NAME_CHARS`] 4-byte characters, every
/// optional field present. Shadow windows carry three `n × n` matrices, canary windows two.
///
/// [`MAX_CLASS_BYTES`]: crate::monitor::MAX_CLASS_BYTES
/// [`MAX_NAME_CHARS`]: crate::monitor::MAX_NAME_CHARS
pub const fn max_snapshot_bytes(mode: Mode, n: usize) -> usize {
    let shadow = match mode {
        Mode::Shadow => object_json(&[
            ("pairs", U64_DIGITS),
            ("agree", U64_DIGITS),
            ("confusion", matrix_json(n)),
            ("proba_pairs", U64_DIGITS),
            ("sum_abs_dproba", F64_CHARS),
            ("max_abs_dproba", F64_CHARS),
        ]),
        Mode::Canary => "null".len(),
    };
    let classes = 2 + n.saturating_sub(1) + 2 * n + ESCAPED * crate::monitor::MAX_CLASS_BYTES;
    let window = object_json(&[
        ("index", U64_DIGITS),
        ("start_ms", U64_DIGITS),
        ("end_ms", U64_DIGITS),
    ]);
    object_json(&[
        ("format", 2 + EXPERIMENT_FORMAT.len()),
        ("version", U64_DIGITS),
        ("id", 2 + 32),
        ("mode", 2 + "shadow".len()),
        ("sample_rate", F64_CHARS),
        ("share", F64_CHARS),
        ("window", window),
        ("seen", U64_DIGITS),
        ("dropped", U64_DIGITS),
        ("classes", classes),
        (
            "arms",
            3 + arm_json(Arm::Champion, n) + arm_json(Arm::Challenger, n),
        ),
        ("shadow", shadow),
        ("feedback_expired", U64_DIGITS),
        ("feedback_unknown", U64_DIGITS),
        ("feedback_duplicate", U64_DIGITS),
    ])
}

/// The largest `n` (at most [`MAX_CLASSES`]) whose snapshots in `mode` all fit.
const fn fitting_classes(mode: Mode) -> usize {
    let mut n = 0;
    while n < MAX_CLASSES && max_snapshot_bytes(mode, n + 1) <= MAX_SNAPSHOT_BYTES {
        n += 1;
    }
    n
}

/// How the two arms share the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The champion serves; sampled texts are also scored by the challenger.
    Shadow,
    /// The arm a key is assigned to serves.
    Canary,
}

impl Mode {
    /// Most classes an experiment in this mode accepts: the largest `n` whose every window's
    /// snapshot fits [`MAX_SNAPSHOT_BYTES`] whatever its counts ([`max_snapshot_bytes`]), so that
    /// neither [`ExperimentSnapshot::parse`] nor a collector refuses one for its size.
    pub const fn max_classes(self) -> usize {
        match self {
            Mode::Shadow => MAX_SHADOW_CLASSES,
            Mode::Canary => MAX_CANARY_CLASSES,
        }
    }

    /// `"shadow"` or `"canary"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Shadow => "shadow",
            Mode::Canary => "canary",
        }
    }
}

/// One of the two models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// The model in production.
    Champion,
    /// The candidate.
    Challenger,
}

impl Arm {
    /// `"champion"` or `"challenger"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Arm::Champion => "champion",
            Arm::Challenger => "challenger",
        }
    }
}

/// What the experiment does and remembers.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentConfig {
    /// Shadow or canary.
    pub mode: Mode,
    /// Shadow: probability that a served text is also scored by the challenger, in `[0, 1]`.
    /// Canary: ignored (every served prediction is counted).
    pub sample_rate: f64,
    /// Canary: share of keys assigned to the challenger, in `[0, 1]`. Shadow: ignored.
    pub share: f64,
    /// Canary: mixed into the assignment hash, so that two experiments split keys differently.
    pub salt: String,
    /// Length of a window; `None`: a window lasts until [`Experiment::snapshot`].
    pub window_seconds: Option<f64>,
    /// Seed of the shadow sampler and of the snapshots' ids; give each instance its own. The
    /// prediction ids are keyed by the host's random key, whatever the seed.
    pub seed: u64,
    /// Predictions remembered for feedback (1 … [`MAX_FEEDBACK_CAPACITY`]).
    pub feedback_capacity: usize,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            mode: Mode::Shadow,
            sample_rate: 1.0,
            share: 0.0,
            salt: String::new(),
            window_seconds: None,
            seed: 0,
            feedback_capacity: DEFAULT_FEEDBACK_CAPACITY,
        }
    }
}

/// One arm's model for a call: the loaded model and the sha256 of its artifact bytes.
#[derive(Clone, Copy)]
pub struct ArmModel<'a> {
    /// The model.
    pub model: &'a TextClassifier,
    /// Sha256 of its artifact bytes (the bindings cache it): a new one starts a new window.
    pub sha256: &'a [u8; 32],
}

/// What [`Experiment::predict`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// The arm whose prediction is served.
    pub arm: Arm,
    /// The prediction's id for [`Experiment::feedback`]: 32 lowercase hex digits, the sequence
    /// number then its keyed hash.
    pub id: String,
    /// The served prediction.
    pub prediction: Prediction,
    /// Shadow mode, sampled texts: the challenger's prediction (not served).
    pub shadow: Option<Prediction>,
}

/// What became of a label given to [`Experiment::feedback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// Counted for the arm(s) that predicted.
    Counted,
    /// The prediction is older than the feedback ring, or was made by an artifact that no arm
    /// which scored it runs any more (its window is closed): counted as expired, not kept.
    Expired,
    /// The id was not given by this experiment instance (or was altered).
    Unknown,
    /// This id already had its label.
    Duplicate,
}

/// Feedback statistics of one arm in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackStats {
    /// Predictions of this arm that received a true label.
    pub count: u64,
    /// Of which the predicted label was the true one.
    pub correct: u64,
    /// `confusion[true][predicted]`, in `classes` order.
    pub confusion: Vec<Vec<u64>>,
}

impl FeedbackStats {
    fn new(n: usize) -> Self {
        FeedbackStats {
            count: 0,
            correct: 0,
            confusion: vec![vec![0; n]; n],
        }
    }

    fn add(&mut self, truth: usize, predicted: usize) {
        self.count += 1;
        self.correct += u64::from(truth == predicted);
        self.confusion[truth][predicted] += 1;
    }
}

/// One arm's part of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmWindow {
    /// `"champion"` or `"challenger"`.
    pub arm: Arm,
    /// The model version the arm ran.
    pub model: ModelRef,
    /// Predictions of this arm that were served.
    pub served: u64,
    /// Monitoring statistics of the texts this arm scored (served or shadow).
    pub stats: Stats,
    /// Feedback on this arm's predictions.
    pub feedback: FeedbackStats,
}

/// Comparison of the pairs scored by both arms (shadow mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowStats {
    /// Texts scored by both arms.
    pub pairs: u64,
    /// Of which both predicted the same label.
    pub agree: u64,
    /// `confusion[champion label][challenger label]`.
    pub confusion: Vec<Vec<u64>>,
    /// Pairs where both have `predict_proba` (the `|Δ proba|` statistics' count).
    pub proba_pairs: u64,
    /// Sum over those pairs of `max_i |p_champion[i] − p_challenger[i]|` (the mean is
    /// `sum_abs_dproba / proba_pairs`; a sum so that windows add up).
    pub sum_abs_dproba: f64,
    /// The largest of them.
    pub max_abs_dproba: f64,
}

/// One closed window of an experiment (FORMAT.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSnapshot {
    /// Always [`EXPERIMENT_FORMAT`].
    pub format: String,
    /// Always [`EXPERIMENT_VERSION`].
    pub version: u32,
    /// 32 lowercase hex digits, unique per experiment instance and window.
    pub id: String,
    /// Shadow or canary.
    pub mode: Mode,
    /// Shadow sampling probability (canary: 1).
    pub sample_rate: f64,
    /// Canary share of the challenger (shadow: 0).
    pub share: f64,
    /// The window.
    pub window: Window,
    /// Predictions served in the window.
    pub seen: u64,
    /// Snapshots dropped (queue full) before this one, cumulative.
    pub dropped: u64,
    /// `classes_` as strings, the same for both arms.
    pub classes: Vec<String>,
    /// Champion first, then challenger.
    pub arms: Vec<ArmWindow>,
    /// Shadow mode: the pair comparison; canary: `None`.
    pub shadow: Option<ShadowStats>,
    /// Labels for predictions older than the ring, or made by an artifact the arms no longer run.
    pub feedback_expired: u64,
    /// Labels for ids this instance never gave.
    pub feedback_unknown: u64,
    /// Second labels for the same id.
    pub feedback_duplicate: u64,
}

/// A remembered prediction: the labels each arm predicted (`u32::MAX`: that arm did not score it).
#[derive(Debug, Clone, Copy)]
struct Remembered {
    champion: u32,
    challenger: u32,
    labelled: bool,
}

const NONE: u32 = u32::MAX;

/// Champion and challenger, their windows and the feedback ring.
#[derive(Debug, Clone)]
pub struct Experiment {
    config: ExperimentConfig,
    classes: Vec<String>,
    has_proba: bool,
    has_vocabulary: bool,
    rng: SplitMix64,
    /// The arms' artifact sha256, compared on every call.
    digests: [[u8; 32]; 2],
    instance: u64,
    /// SipHash-2-4 key of the ids' hashes.
    id_key: (u64, u64),
    /// Per arm, the sequence number of the first prediction made with its current artifact:
    /// labels of earlier ones are not counted for it (that artifact's window is closed).
    since: [u64; 2],
    index: u64,
    start_ms: u64,
    seen: u64,
    arms: [ArmWindow; 2],
    shadow: Option<ShadowStats>,
    expired: u64,
    unknown: u64,
    duplicate: u64,
    /// Sequence number of `ring[0]`; ids are a sequence number and its keyed hash.
    first_seq: u64,
    ring: VecDeque<Remembered>,
    outbox: Outbox<ExperimentSnapshot>,
}

/// An arm's model as its snapshots name it; refused when no collector would take that name (a
/// hand-packed artifact named `team/model`): else every window of the experiment would be lost.
fn model_ref(arm: ArmModel<'_>, what: &str) -> Result<ModelRef> {
    let m = arm.model.metadata();
    let cut = |s: &str| s.chars().take(crate::monitor::MAX_NAME_CHARS).collect::<String>();
    let model = ModelRef {
        name: cut(&m.name),
        version: cut(&m.version),
        sha256: hex::encode(arm.sha256),
    };
    model.check(what)?;
    Ok(model)
}

/// The arm a canary key is assigned to: `xxh64(salt ‖ 0x00 ‖ key, ASSIGN_SEED)`, its top 53 bits
/// as a fraction in `[0, 1)`, compared with `share`. The same in every runtime and instance.
pub fn assign(salt: &str, key: &str, share: f64) -> Arm {
    let mut bytes = Vec::with_capacity(salt.len() + 1 + key.len());
    bytes.extend_from_slice(salt.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(key.as_bytes());
    let u = (xxh64(&bytes, ASSIGN_SEED) >> 11) as f64 / (1u64 << 53) as f64;
    if u < share {
        Arm::Challenger
    } else {
        Arm::Champion
    }
}

impl Experiment {
    /// Starts an experiment of `champion` against `challenger` at `now_ms` (ms since the epoch).
    /// Both must have the same `classes_`, at most [`Mode::max_classes`] of them (112 in shadow
    /// mode, 137 in canary mode: a window must fit a snapshot). `id_key`: 16 bytes the host draws
    /// from its cryptographic random source for each instance (never from `config.seed`), the key
    /// of the prediction ids' hashes.
    pub fn new(
        champion: ArmModel<'_>,
        challenger: ArmModel<'_>,
        config: ExperimentConfig,
        now_ms: f64,
        id_key: [u8; 16],
    ) -> Result<Self> {
        // Named as [`ExperimentConfig`]'s fields: the bindings check their own options first, so
        // that their messages name them (`sampleRate` in JS, `sample_rate` in Python).
        if !(0.0..=1.0).contains(&config.sample_rate) {
            return Err(invalid("sample_rate must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&config.share) {
            return Err(invalid("share must be in [0, 1]"));
        }
        if let Some(w) = config.window_seconds {
            if !(w.is_finite() && w >= 0.001) {
                return Err(invalid("window_seconds must be a number ≥ 0.001"));
            }
        }
        if !(1..=MAX_FEEDBACK_CAPACITY).contains(&config.feedback_capacity) {
            return Err(invalid(format!(
                "feedback_capacity must be 1 … {MAX_FEEDBACK_CAPACITY}, got {}",
                config.feedback_capacity
            )));
        }
        let classes = class_names(champion.model.classes());
        let limit = config.mode.max_classes();
        if classes.len() > limit {
            let matrices = match config.mode {
                Mode::Shadow => "three",
                Mode::Canary => "two",
            };
            return Err(invalid(format!(
                "a model with {n} classes is too large for a {mode} experiment (at most {limit} \
                 classes): a window's snapshot holds {matrices} {n} × {n} confusion matrices, and \
                 with large counts it would exceed the {MAX_SNAPSHOT_BYTES} bytes a collector \
                 accepts",
                n = classes.len(),
                mode = config.mode.as_str(),
            )));
        }
        // What the validator checks of `classes` (labels' bytes, no repeated label): else every
        // window would be refused.
        crate::monitor::check_classes(&classes)?;
        let mut key = Vec::with_capacity(32);
        key.extend_from_slice(&config.seed.to_le_bytes());
        key.extend_from_slice(&now_ms.to_bits().to_le_bytes());
        key.extend_from_slice(champion.sha256);
        key.extend_from_slice(challenger.sha256);
        let instance = xxh64(&key, 0x6578_7065_7269_6d65); // "experime"
        let (champion_ref, challenger_ref) = (
            model_ref(champion, "the champion")?,
            model_ref(challenger, "the challenger")?,
        );
        let half = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&id_key[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let mut e = Experiment {
            rng: SplitMix64::new(config.seed),
            digests: [*champion.sha256, *challenger.sha256],
            has_proba: false,
            has_vocabulary: false,
            arms: [
                empty_arm(Arm::Champion, champion_ref, 0, false, false),
                empty_arm(Arm::Challenger, challenger_ref, 0, false, false),
            ],
            shadow: None,
            classes,
            instance,
            id_key: (half(0), half(8)),
            since: [0, 0],
            index: 0,
            start_ms: ms(now_ms),
            seen: 0,
            expired: 0,
            unknown: 0,
            duplicate: 0,
            first_seq: 0,
            ring: VecDeque::new(),
            outbox: Outbox::default(),
            config,
        };
        e.check_pair(champion, challenger)?;
        (e.has_proba, e.has_vocabulary) = capabilities(champion, challenger)?;
        e.reset_window();
        Ok(e)
    }

    /// The configuration.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// The models the open window is about: champion, challenger.
    pub fn models(&self) -> (&ModelRef, &ModelRef) {
        (&self.arms[0].model, &self.arms[1].model)
    }

    fn check_pair(&self, champion: ArmModel<'_>, challenger: ArmModel<'_>) -> Result<()> {
        for (arm, m) in [("champion", champion), ("challenger", challenger)] {
            if class_names(m.model.classes()) != self.classes {
                let classes: Vec<&str> = self.classes.iter().map(String::as_str).collect();
                return Err(invalid(format!(
                    "the {arm}'s classes_ differ from the experiment's {}: both arms must predict the same classes",
                    QuotedList(&classes)
                )));
            }
        }
        Ok(())
    }

    /// The id of prediction `seq`: its sequence number, then SipHash-2-4 of it (little-endian)
    /// under the instance's key, 16 hex digits each.
    fn id_of(&self, seq: u64) -> String {
        format!("{seq:016x}{:016x}", self.tag(seq))
    }

    fn tag(&self, seq: u64) -> u64 {
        #[allow(deprecated)]
        let mut h = SipHasher::new_with_keys(self.id_key.0, self.id_key.1);
        h.write(&seq.to_le_bytes());
        h.finish()
    }

    fn reset_window(&mut self) {
        let n = self.classes.len();
        for a in &mut self.arms {
            a.served = 0;
            a.stats = Stats::new(n, self.has_proba, self.has_vocabulary);
            a.feedback = FeedbackStats::new(n);
        }
        self.shadow = (self.config.mode == Mode::Shadow).then(|| ShadowStats {
            pairs: 0,
            agree: 0,
            confusion: vec![vec![0; n]; n],
            proba_pairs: 0,
            sum_abs_dproba: 0.0,
            max_abs_dproba: 0.0,
        });
        self.seen = 0;
        self.expired = 0;
        self.unknown = 0;
        self.duplicate = 0;
    }

    /// Closes the window if `window_seconds` have passed at `now_ms` (queued when it saw
    /// anything) and opens the one `now_ms` falls in.
    pub fn tick(&mut self, now_ms: f64) {
        let Some(w) = self.config.window_seconds else {
            return;
        };
        let width = ((w * 1000.0).round() as u64).max(1);
        let now = ms(now_ms);
        let end = self.start_ms.saturating_add(width);
        if now < end {
            return;
        }
        self.close_and_queue(end);
        let skipped = (now - end) / width;
        self.start_ms = end.saturating_add(skipped.saturating_mul(width));
    }

    fn active(&self) -> bool {
        self.seen > 0 || self.arms.iter().any(|a| a.feedback.count > 0)
    }

    fn close_and_queue(&mut self, end_ms: u64) {
        if self.window_active() {
            let s = self.close(end_ms);
            self.outbox.push(s);
        } else {
            self.start_ms = end_ms.max(self.start_ms);
        }
    }

    /// A new artifact in either arm: the open window closes (its statistics belong to the old
    /// pair) and the new pair starts one.
    fn follow(&mut self, champion: ArmModel<'_>, challenger: ArmModel<'_>, now_ms: f64) -> Result<()> {
        // Bytes, every call; the hex of a ModelRef is made only when an arm changed.
        if self.digests == [*champion.sha256, *challenger.sha256] {
            return Ok(());
        }
        self.check_pair(champion, challenger)?;
        let (has_proba, has_vocabulary) = capabilities(champion, challenger)?;
        let (c, h) = (
            model_ref(champion, "the champion")?,
            model_ref(challenger, "the challenger")?,
        );
        let next = self.first_seq + self.ring.len() as u64;
        for (slot, new) in [champion.sha256, challenger.sha256].into_iter().enumerate() {
            if self.digests[slot] != *new {
                self.since[slot] = next;
            }
        }
        self.digests = [*champion.sha256, *challenger.sha256];
        let now = ms(now_ms).max(self.start_ms);
        self.close_and_queue(now);
        self.start_ms = now;
        // The new pair's statistics have the histograms its models can fill (a model without
        // predict_proba has no confidence, a hashing-only one no OOV rate).
        (self.has_proba, self.has_vocabulary) = (has_proba, has_vocabulary);
        self.reset_window();
        self.arms[0].model = c;
        self.arms[1].model = h;
        Ok(())
    }

    /// Predicts `text` with the arm that serves it. `key` (canary) assigns the arm; without a key
    /// the text itself is the key (the same text always gets the same arm).
    pub fn predict(
        &mut self,
        champion: ArmModel<'_>,
        challenger: ArmModel<'_>,
        text: &str,
        key: Option<&str>,
        now_ms: f64,
    ) -> Result<Served> {
        // A window whose time is up closes first, at its end, with the pair that served it; a new
        // artifact then closes the partial window that follows.
        self.tick(now_ms);
        self.follow(champion, challenger, now_ms)?;
        let arm = match self.config.mode {
            Mode::Shadow => Arm::Champion,
            Mode::Canary => assign(&self.config.salt, key.unwrap_or(text), self.config.share),
        };
        let served_model = if arm == Arm::Champion {
            champion
        } else {
            challenger
        };
        let prediction = served_model.model.predict(text)?;
        let sampled = self.config.mode == Mode::Shadow
            && self.config.sample_rate > 0.0
            && self.rng.next_f64() < self.config.sample_rate;
        let shadow = if sampled {
            Some(challenger.model.predict(text)?)
        } else {
            None
        };

        self.seen += 1;
        let slot = arm as usize;
        self.arms[slot].served += 1;
        let chars = text.chars().count() as u64;
        let has_vocabulary = self.has_vocabulary;
        let oov = |m: &TextClassifier| if has_vocabulary { oov_count(m, text) } else { None };
        match (self.config.mode, &shadow) {
            (Mode::Canary, _) => {
                let o = oov(served_model.model);
                self.arms[slot].stats.add(&prediction, o, chars, None);
            }
            (Mode::Shadow, Some(s)) => {
                let (oc, oh) = (oov(champion.model), oov(challenger.model));
                self.arms[0].stats.add(&prediction, oc, chars, None);
                self.arms[1].stats.add(s, oh, chars, None);
                self.compare(&prediction, s);
            }
            (Mode::Shadow, None) => {}
        }

        let label = |p: &Prediction| p.label as u32;
        let remembered = match arm {
            Arm::Champion => Remembered {
                champion: label(&prediction),
                challenger: shadow.as_ref().map_or(NONE, label),
                labelled: false,
            },
            Arm::Challenger => Remembered {
                champion: NONE,
                challenger: label(&prediction),
                labelled: false,
            },
        };
        if self.ring.len() == self.config.feedback_capacity {
            self.ring.pop_front();
            self.first_seq += 1;
        }
        self.ring.push_back(remembered);
        let seq = self.first_seq + self.ring.len() as u64 - 1;
        Ok(Served {
            arm,
            id: self.id_of(seq),
            prediction,
            shadow,
        })
    }

    fn compare(&mut self, champion: &Prediction, challenger: &Prediction) {
        let Some(s) = self.shadow.as_mut() else {
            return;
        };
        s.pairs += 1;
        s.agree += u64::from(champion.label == challenger.label);
        if let Some(row) = s.confusion.get_mut(champion.label) {
            if let Some(c) = row.get_mut(challenger.label) {
                *c += 1;
            }
        }
        if let (Some(a), Some(b)) = (&champion.proba, &challenger.proba) {
            let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
            s.proba_pairs += 1;
            s.sum_abs_dproba += d;
            s.max_abs_dproba = s.max_abs_dproba.max(d);
        }
    }

    /// The true label of the prediction `id` (one of `classes`, as a string), counted in the
    /// open window (at `now_ms`) for each arm that scored the text.
    pub fn feedback(&mut self, id: &str, true_label: &str, now_ms: f64) -> Result<Feedback> {
        let truth = self.classes.iter().position(|c| c == true_label).ok_or_else(|| {
            let classes: Vec<&str> = self.classes.iter().map(String::as_str).collect();
            invalid(format!(
                "{} is not one of the classes {}",
                Quoted(true_label),
                QuotedList(&classes)
            ))
        })?;
        if !hex::is_lower(id, 32) {
            return Err(invalid("a prediction id is 32 lowercase hex digits"));
        }
        self.tick(now_ms);
        let seq = u64::from_str_radix(&id[..16], 16).ok();
        let tag = u64::from_str_radix(&id[16..], 16).ok();
        let (Some(seq), Some(tag)) = (seq, tag) else {
            return Err(invalid("a prediction id is 32 lowercase hex digits"));
        };
        let next = self.first_seq + self.ring.len() as u64;
        // The hash first: an id this instance did not give (another instance's, an altered or
        // guessed one) is unknown whatever its sequence number.
        let outcome = if tag != self.tag(seq) || seq >= next {
            self.unknown += 1;
            Feedback::Unknown
        } else if seq < self.first_seq {
            self.expired += 1;
            Feedback::Expired
        } else {
            let r = &mut self.ring[(seq - self.first_seq) as usize];
            if r.labelled {
                self.duplicate += 1;
                Feedback::Duplicate
            } else {
                r.labelled = true;
                let r = *r;
                let mut counted = false;
                for (slot, predicted) in [(0, r.champion), (1, r.challenger)] {
                    // Only for an arm that still runs the artifact that predicted: a label for
                    // an older artifact's prediction is not evidence about the new one.
                    if predicted != NONE && seq >= self.since[slot] {
                        self.arms[slot].feedback.add(truth, predicted as usize);
                        counted = true;
                    }
                }
                if counted {
                    Feedback::Counted
                } else {
                    self.expired += 1;
                    Feedback::Expired
                }
            }
        };
        Ok(outcome)
    }

    fn close(&mut self, end_ms: u64) -> ExperimentSnapshot {
        let mut key = self.instance.to_le_bytes().to_vec();
        key.extend_from_slice(&self.index.to_le_bytes());
        let id = format!("{:016x}{:016x}", xxh64(&key, 1), xxh64(&key, 2));
        let s = ExperimentSnapshot {
            format: EXPERIMENT_FORMAT.into(),
            version: EXPERIMENT_VERSION,
            id,
            mode: self.config.mode,
            sample_rate: match self.config.mode {
                Mode::Shadow => self.config.sample_rate,
                Mode::Canary => 1.0,
            },
            share: match self.config.mode {
                Mode::Shadow => 0.0,
                Mode::Canary => self.config.share,
            },
            window: Window {
                index: self.index,
                start_ms: self.start_ms,
                end_ms: end_ms.max(self.start_ms),
            },
            seen: self.seen,
            dropped: self.outbox.dropped,
            classes: self.classes.clone(),
            arms: self.arms.to_vec(),
            shadow: self.shadow.clone(),
            feedback_expired: self.expired,
            feedback_unknown: self.unknown,
            feedback_duplicate: self.duplicate,
        };
        self.index += 1;
        self.start_ms = s.window.end_ms;
        self.reset_window();
        s
    }

    /// Closes the open window at `now_ms` (first any finished `window_seconds` window), queues
    /// it for delivery and returns it.
    pub fn snapshot(&mut self, now_ms: f64) -> ExperimentSnapshot {
        let s = self.close_now(now_ms);
        self.outbox.push(s.clone());
        s
    }

    /// Closes the open window at `now_ms` and returns it without queueing it: for a host that
    /// hands the window to its caller and delivers nothing itself (Python). A finished
    /// `window_seconds` window closes first and is queued, as by [`Experiment::tick`].
    pub fn close_now(&mut self, now_ms: f64) -> ExperimentSnapshot {
        self.tick(now_ms);
        self.close(ms(now_ms))
    }

    /// Snapshots waiting for delivery, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &ExperimentSnapshot> {
        self.outbox.queue.iter()
    }

    /// Takes every snapshot waiting for delivery (give back the undelivered ones with
    /// [`Experiment::requeue`]).
    pub fn take_pending(&mut self) -> Vec<ExperimentSnapshot> {
        self.outbox.queue.drain(..).collect()
    }

    /// Puts undelivered snapshots back at the front of the queue, in order; beyond
    /// [`MAX_PENDING`](crate::monitor::MAX_PENDING) the oldest are dropped (and counted).
    pub fn requeue(&mut self, undelivered: Vec<ExperimentSnapshot>) {
        self.outbox.requeue(undelivered);
    }

    /// Snapshots dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.outbox.dropped
    }

    /// Whether the open window has anything to report (a prediction, feedback, or feedback
    /// that was counted and ignored): a flush closes it only then.
    pub fn window_active(&self) -> bool {
        self.active() || self.expired + self.unknown + self.duplicate > 0
    }
}

/// Whether both arms have `predict_proba` (the confidence histogram) and a vocabulary (the OOV
/// rate): the shape of a window's statistics.
fn capabilities(champion: ArmModel<'_>, challenger: ArmModel<'_>) -> Result<(bool, bool)> {
    let proba = champion.model.predict("")?.proba.is_some() && challenger.model.predict("")?.proba.is_some();
    let vocabulary = [champion, challenger]
        .iter()
        .all(|a| a.model.vectorizers().iter().any(|v| v.vocabulary().is_some()));
    Ok((proba, vocabulary))
}

fn empty_arm(arm: Arm, model: ModelRef, n: usize, proba: bool, vocabulary: bool) -> ArmWindow {
    ArmWindow {
        arm,
        model,
        served: 0,
        stats: Stats::new(n, proba, vocabulary),
        feedback: FeedbackStats::new(n),
    }
}

impl ExperimentSnapshot {
    /// This snapshot as JSON (FORMAT.md §4).
    #[cfg(any(feature = "cli", feature = "python"))]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an experiment snapshot always serializes")
    }

    /// Parses and validates a snapshot (at most [`crate::monitor::MAX_SNAPSHOT_BYTES`]; unknown
    /// fields are refused).
    #[cfg(feature = "cli")]
    pub fn parse(bytes: &[u8]) -> Result<ExperimentSnapshot> {
        if bytes.len() > crate::monitor::MAX_SNAPSHOT_BYTES {
            return Err(crate::Error::SnapshotTooLarge {
                bytes: Some(bytes.len()),
                limit: MAX_SNAPSHOT_BYTES,
            });
        }
        let s: ExperimentSnapshot = serde_json::from_slice(bytes).map_err(|e| {
            invalid(format!(
                "not an experiment snapshot: {}",
                crate::error::Cut(&e.to_string())
            ))
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Checks the format, the shapes and that every count adds up.
    pub fn validate(&self) -> Result<()> {
        if self.format != EXPERIMENT_FORMAT || self.version != EXPERIMENT_VERSION {
            return Err(invalid(format!(
                "expected format {EXPERIMENT_FORMAT} version {EXPERIMENT_VERSION}, found {} version {}",
                Quoted(&self.format),
                self.version
            )));
        }
        if !hex::is_lower(&self.id, 32) {
            return Err(invalid("id must be 32 lowercase hex digits"));
        }
        crate::monitor::check_classes(&self.classes)?;
        let n = self.classes.len();
        if !(0.0..=1.0).contains(&self.sample_rate) || !(0.0..=1.0).contains(&self.share) {
            return Err(invalid("sample_rate and share must be in [0, 1]"));
        }
        if self.window.start_ms > self.window.end_ms || self.window.end_ms > crate::monitor::MAX_TIME_MS {
            return Err(invalid("window must have start_ms ≤ end_ms ≤ 253402300799999"));
        }
        if self.arms.len() != 2 || self.arms[0].arm != Arm::Champion || self.arms[1].arm != Arm::Challenger {
            return Err(invalid("arms must be [champion, challenger]"));
        }
        let square = |what: &str, m: &[Vec<u64>]| -> Result<u64> {
            if m.len() != n || m.iter().any(|r| r.len() != n) {
                return Err(invalid(format!("{what} must be {n} × {n}")));
            }
            m.iter()
                .flatten()
                .try_fold(0u64, |a, &b| a.checked_add(b))
                .ok_or_else(|| invalid(format!("{what} overflows")))
        };
        let mut served = 0u64;
        for a in &self.arms {
            let what = a.arm.as_str();
            a.model.check(&format!("{what}.model"))?;
            a.stats
                .check_shape(n)
                .map_err(|e| invalid(format!("{what}.stats: {e}")))?;
            let f = &a.feedback;
            if square(&format!("{what}.feedback.confusion"), &f.confusion)? != f.count {
                return Err(invalid(format!("{what}.feedback.confusion must add up to count")));
            }
            let diagonal: u64 = (0..n).map(|i| f.confusion[i][i]).sum();
            if diagonal != f.correct {
                return Err(invalid(format!(
                    "{what}.feedback.correct must equal the confusion matrix's diagonal"
                )));
            }
            served = served
                .checked_add(a.served)
                .ok_or_else(|| invalid("served overflows"))?;
        }
        if served != self.seen {
            return Err(invalid("the arms' served counts must add up to seen"));
        }
        match (self.mode, &self.shadow) {
            (Mode::Shadow, Some(s)) => {
                if square("shadow.confusion", &s.confusion)? != s.pairs {
                    return Err(invalid("shadow.confusion must add up to pairs"));
                }
                let diagonal: u64 = (0..n).map(|i| s.confusion[i][i]).sum();
                if diagonal != s.agree || s.proba_pairs > s.pairs || s.pairs > self.seen {
                    return Err(invalid(
                        "shadow: agree must be the confusion's diagonal, proba_pairs ≤ pairs ≤ seen",
                    ));
                }
                let ok = |x: f64| x.is_finite() && x >= 0.0;
                let bound = s.proba_pairs as f64 * s.max_abs_dproba * (1.0 + crate::monitor::SUM_SLACK);
                if !(ok(s.sum_abs_dproba) && ok(s.max_abs_dproba) && s.max_abs_dproba <= 1.0)
                    || s.sum_abs_dproba > bound
                {
                    return Err(invalid(
                        "shadow: |Δ proba| statistics must be finite, in [0, 1] per pair, \
                         sum_abs_dproba ≤ proba_pairs × max_abs_dproba",
                    ));
                }
            }
            (Mode::Canary, None) => {}
            _ => return Err(invalid("shadow statistics are present exactly in shadow mode")),
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;
    use crate::monitor::MAX_PENDING;

    fn tiny() -> TextClassifier {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/tiny.skedge"))
            .expect("tests/golden/tiny.skedge");
        TextClassifier::from_bytes(&bytes).unwrap()
    }

    const A: &[u8; 32] = &[0xaa; 32];
    const KEY: [u8; 16] = *b"0123456789abcdef";
    const B: &[u8; 32] = &[0xbb; 32];

    /// The arms of most tests: one model under two digests.
    fn arms(m: &TextClassifier) -> (ArmModel<'_>, ArmModel<'_>) {
        (ArmModel { model: m, sha256: A }, ArmModel { model: m, sha256: B })
    }

    #[test]
    fn canary_assignment_is_sticky_and_near_the_share() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("user-{i}")).collect();
        let to_challenger = keys
            .iter()
            .filter(|k| assign("s", k, 0.05) == Arm::Challenger)
            .count();
        assert!((800..1200).contains(&to_challenger), "{to_challenger}");
        assert!(keys.iter().all(|k| assign("s", k, 0.0) == Arm::Champion));
        assert!(keys.iter().all(|k| assign("s", k, 1.0) == Arm::Challenger));
        // pinned: the assignment is a contract across runtimes and instances (FORMAT.md §4);
        // tests/js/experiment.test.mjs pins the same keys. "user-1" hashes to 0.21183, "" to 0.04993.
        assert_eq!(assign("salt", "user-1", 0.2119), Arm::Challenger);
        assert_eq!(assign("salt", "user-1", 0.2118), Arm::Champion);
        assert_eq!(assign("salt", "", 0.0500), Arm::Challenger);
        assert_eq!(assign("salt", "", 0.0499), Arm::Champion);
        assert_eq!(assign("salt", "é", 0.5543), Arm::Challenger);
        assert_eq!(assign("salt", "é", 0.5542), Arm::Champion);
    }

    #[test]
    fn shadow_compares_pairs_and_counts_feedback_per_arm() {
        let m = tiny();
        let (c, h) = arms(&m);
        let mut e = Experiment::new(c, h, ExperimentConfig::default(), 1000.0, KEY).unwrap();
        let r = e.predict(c, h, "good movie", None, 1001.0).unwrap();
        assert_eq!(r.arm, Arm::Champion);
        assert_eq!(r.shadow.as_ref().unwrap().label, r.prediction.label);
        let truth = e.classes[r.prediction.label].clone();
        assert_eq!(e.feedback(&r.id, &truth, 1002.0).unwrap(), Feedback::Counted);
        assert_eq!(e.feedback(&r.id, &truth, 1002.0).unwrap(), Feedback::Duplicate);
        let mut other = r.id.clone();
        other.replace_range(..1, if other.starts_with('0') { "1" } else { "0" });
        assert_eq!(e.feedback(&other, &truth, 1002.0).unwrap(), Feedback::Unknown);
        assert!(e.feedback(&r.id, "no such class", 1002.0).is_err());
        let s = e.snapshot(2000.0);
        s.validate().unwrap();
        assert_eq!(s.seen, 1);
        let sh = s.shadow.as_ref().unwrap();
        assert_eq!((sh.pairs, sh.agree), (1, 1));
        assert_eq!(s.arms[0].feedback.correct, 1);
        assert_eq!(s.arms[1].feedback.correct, 1);
        assert_eq!(s.feedback_duplicate, 1);
        assert_eq!(s.feedback_unknown, 1);
        let parsed = ExperimentSnapshot::parse(s.to_json().as_bytes()).unwrap();
        assert_eq!(parsed, s);
    }

    #[test]
    fn the_feedback_ring_is_bounded_and_old_ids_expire() {
        let m = tiny();
        let (c, h) = arms(&m);
        let config = ExperimentConfig {
            mode: Mode::Canary,
            share: 0.5,
            feedback_capacity: 3,
            ..ExperimentConfig::default()
        };
        let mut e = Experiment::new(c, h, config, 0.0, KEY).unwrap();
        let ids: Vec<Served> = (0..5)
            .map(|i| e.predict(c, h, "text", Some(&format!("k{i}")), 1.0).unwrap())
            .collect();
        assert_eq!(e.ring.len(), 3);
        let label = e.classes[0].clone();
        assert_eq!(e.feedback(&ids[0].id, &label, 2.0).unwrap(), Feedback::Expired);
        assert_eq!(e.feedback(&ids[4].id, &label, 2.0).unwrap(), Feedback::Counted);
        let s = e.snapshot(3.0);
        s.validate().unwrap();
        assert!(s.shadow.is_none());
        assert_eq!(s.arms[0].served + s.arms[1].served, 5);
        assert_eq!(s.arms[0].feedback.count + s.arms[1].feedback.count, 1);
        assert_eq!(s.feedback_expired, 1);
    }

    #[test]
    fn a_new_artifact_in_an_arm_closes_the_window() {
        let m = tiny();
        let (c, h) = arms(&m);
        let mut e = Experiment::new(c, h, ExperimentConfig::default(), 0.0, KEY).unwrap();
        e.predict(c, h, "a", None, 1.0).unwrap();
        let h2 = ArmModel {
            model: &m,
            sha256: &[0xcc; 32],
        };
        e.predict(c, h2, "b", None, 2.0).unwrap();
        let closed = e.take_pending();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].arms[1].model.sha256, "bb".repeat(32));
        assert_eq!(closed[0].seen, 1);
        assert_eq!(e.models().1.sha256, "cc".repeat(32));
    }

    #[test]
    fn a_label_counts_only_for_the_artifact_that_predicted() {
        let m = tiny();
        let (c, h) = arms(&m);
        let h2 = ArmModel {
            model: &m,
            sha256: &[0xcc; 32],
        };
        // Shadow: the challenger moves; a label for a pair scored before counts for the champion
        // (still the same artifact), not for the new challenger.
        let mut e = Experiment::new(c, h, ExperimentConfig::default(), 0.0, KEY).unwrap();
        let before = e.predict(c, h, "a", None, 1.0).unwrap();
        let after = e.predict(c, h2, "b", None, 2.0).unwrap();
        let truth = e.classes[before.prediction.label].clone();
        assert_eq!(e.feedback(&before.id, &truth, 3.0).unwrap(), Feedback::Counted);
        assert_eq!(e.feedback(&after.id, &truth, 3.0).unwrap(), Feedback::Counted);
        let s = e.snapshot(4.0);
        s.validate().unwrap();
        assert_eq!(s.arms[1].model.sha256, "cc".repeat(32));
        assert_eq!((s.arms[0].feedback.count, s.arms[1].feedback.count), (2, 1));
        assert_eq!(s.feedback_expired, 0);
        // The champion moves too: the label of its old prediction is not evidence about the new one.
        let c2 = ArmModel {
            model: &m,
            sha256: &[0xdd; 32],
        };
        let old = e.predict(c, h2, "c", None, 5.0).unwrap();
        e.predict(c2, h2, "d", None, 6.0).unwrap();
        assert_eq!(e.feedback(&old.id, &truth, 7.0).unwrap(), Feedback::Counted);
        let s = e.snapshot(8.0);
        assert_eq!((s.arms[0].feedback.count, s.arms[1].feedback.count), (0, 1));

        // Canary: the challenger served every prediction; after it moves, their labels are expired
        // (its window, which they belong to, is closed), then duplicates.
        let canary = ExperimentConfig {
            mode: Mode::Canary,
            share: 1.0,
            ..ExperimentConfig::default()
        };
        let mut e = Experiment::new(c, h, canary, 0.0, KEY).unwrap();
        let served: Vec<Served> = (0..3)
            .map(|i| e.predict(c, h, "text", Some(&format!("k{i}")), 1.0).unwrap())
            .collect();
        assert!(served.iter().all(|r| r.arm == Arm::Challenger));
        let fresh = e.predict(c, h2, "text", Some("k"), 2.0).unwrap();
        let closed = e.take_pending();
        assert_eq!(closed[0].arms[1].served, 3);
        for r in &served {
            assert_eq!(e.feedback(&r.id, &truth, 3.0).unwrap(), Feedback::Expired);
        }
        assert_eq!(
            e.feedback(&served[0].id, &truth, 3.0).unwrap(),
            Feedback::Duplicate
        );
        assert_eq!(e.feedback(&fresh.id, &truth, 3.0).unwrap(), Feedback::Counted);
        let s = e.snapshot(4.0);
        s.validate().unwrap();
        assert_eq!(
            s.arms[1].feedback.count, 1,
            "only the new artifact's own prediction"
        );
        assert_eq!((s.feedback_expired, s.feedback_duplicate), (3, 1));
    }

    #[test]
    fn a_window_whose_time_is_up_closes_at_its_end_before_a_new_artifact() {
        let m = tiny();
        let (c, h) = arms(&m);
        let h2 = ArmModel {
            model: &m,
            sha256: &[0xcc; 32],
        };
        let config = ExperimentConfig {
            window_seconds: Some(10.0),
            ..ExperimentConfig::default()
        };
        let mut e = Experiment::new(c, h, config, 0.0, KEY).unwrap();
        e.predict(c, h, "a", None, 1_000.0).unwrap();
        e.predict(c, h2, "b", None, 25_000.0).unwrap();
        let closed = e.take_pending();
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].window.start_ms, closed[0].window.end_ms), (0, 10_000));
        assert_eq!(closed[0].arms[1].model.sha256, "bb".repeat(32));
        let s = e.snapshot(30_000.0);
        assert_eq!((s.window.start_ms, s.seen), (25_000, 1));
        assert_eq!(s.arms[1].model.sha256, "cc".repeat(32));
    }

    /// A fixture of tests/fixtures/cases, packed.
    fn fixture(name: &str) -> TextClassifier {
        let path = format!(
            "{}/tests/fixtures/cases/{name}.interchange.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: crate::interchange::Interchange =
            serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap();
        let bytes = crate::artifact::to_bytes(&doc.into_body().unwrap()).unwrap();
        TextClassifier::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn a_new_artifact_gets_the_statistics_its_model_can_fill() {
        // predict_proba: logistic regressions, then a LinearSVC in the challenger's arm.
        let (lr, ovr, svc) = (
            fixture("lr_multinomial_3class_strings_fr"),
            fixture("ovr_lr_3class_fr"),
            fixture("linearsvc_multiclass_fr"),
        );
        // A vocabulary: char_wb TF-IDF, then a hashing-only model in the challenger's arm.
        let (words, hashing) = (
            fixture("charwb25_tfidf_linearsvc"),
            fixture("hashing_l2_then_tfidf_linearsvc"),
        );
        // (champion, challenger, the next challenger, (confidence, OOV) before, then after.)
        for (champion, challenger, next, was, is) in [
            (&lr, &ovr, &svc, (true, true), (false, true)),
            (&words, &words, &hashing, (false, true), (false, false)),
        ] {
            let c = ArmModel {
                model: champion,
                sha256: A,
            };
            let h = ArmModel {
                model: challenger,
                sha256: B,
            };
            let h2 = ArmModel {
                model: next,
                sha256: &[0xcc; 32],
            };
            for config in [
                ExperimentConfig::default(),
                ExperimentConfig {
                    mode: Mode::Canary,
                    share: 0.5,
                    ..ExperimentConfig::default()
                },
            ] {
                let mut e = Experiment::new(c, h, config, 0.0, KEY).unwrap();
                e.predict(c, h, "un film", Some("k0"), 1.0).unwrap();
                for i in 0..20 {
                    e.predict(c, h2, "un bon film", Some(&format!("k{i}")), 2.0)
                        .unwrap();
                }
                let before = e.take_pending().remove(0);
                before.validate().unwrap();
                let s = e.snapshot(3.0);
                s.validate().unwrap();
                ExperimentSnapshot::parse(s.to_json().as_bytes()).unwrap();
                let kinds = |s: &ExperimentSnapshot| {
                    s.arms
                        .iter()
                        .map(|a| (a.stats.confidence.is_some(), a.stats.oov.is_some()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(kinds(&before), vec![was; 2]);
                assert_eq!(kinds(&s), vec![is; 2]);
                assert_eq!(s.seen, 20);
            }
        }
    }

    #[test]
    fn ids_cannot_be_guessed_from_another() {
        let m = tiny();
        let (c, h) = arms(&m);
        let mut e = Experiment::new(c, h, ExperimentConfig::default(), 0.0, KEY).unwrap();
        let mine = e.predict(c, h, "a", None, 1.0).unwrap();
        let theirs = e.predict(c, h, "b", None, 1.0).unwrap();
        assert!(hex::is_lower(&mine.id, 32));
        assert_eq!(&mine.id[..16], "0000000000000000");
        assert_eq!(&theirs.id[..16], "0000000000000001");
        let truth = e.classes[0].clone();
        // The next sequence number with my hash, or with a hash one off, is nobody's id.
        let forged = format!("{}{}", &theirs.id[..16], &mine.id[16..]);
        assert_eq!(e.feedback(&forged, &truth, 2.0).unwrap(), Feedback::Unknown);
        let last = u64::from_str_radix(&theirs.id[16..], 16).unwrap();
        let off = format!("{}{:016x}", &theirs.id[..16], last ^ 1);
        assert_eq!(e.feedback(&off, &truth, 2.0).unwrap(), Feedback::Unknown);
        // Another instance with the same seed, at the same time, on the same models: another key.
        let mut other =
            Experiment::new(c, h, ExperimentConfig::default(), 0.0, *b"fedcba9876543210").unwrap();
        let its = other.predict(c, h, "a", None, 1.0).unwrap();
        assert_ne!(its.id, mine.id);
        assert_eq!(e.feedback(&its.id, &truth, 2.0).unwrap(), Feedback::Unknown);
        assert_eq!(e.feedback(&theirs.id, &truth, 2.0).unwrap(), Feedback::Counted);
        let s = e.snapshot(3.0);
        assert_eq!((s.feedback_unknown, s.arms[0].feedback.count), (3, 1));
        // A forged id below the ring is unknown, not expired: the counters stay honest.
        let mut small = Experiment::new(
            c,
            h,
            ExperimentConfig {
                feedback_capacity: 1,
                ..ExperimentConfig::default()
            },
            0.0,
            KEY,
        )
        .unwrap();
        let first = small.predict(c, h, "a", None, 1.0).unwrap();
        small.predict(c, h, "b", None, 1.0).unwrap();
        assert_eq!(small.feedback(&first.id, &truth, 2.0).unwrap(), Feedback::Expired);
        let fake = format!(
            "{}{:016x}",
            &first.id[..16],
            u64::from_str_radix(&first.id[16..], 16).unwrap() ^ 1
        );
        assert_eq!(small.feedback(&fake, &truth, 2.0).unwrap(), Feedback::Unknown);
    }

    #[test]
    fn close_now_hands_the_window_over_without_queueing_it() {
        let m = tiny();
        let (c, h) = arms(&m);
        let config = ExperimentConfig {
            window_seconds: Some(10.0),
            ..ExperimentConfig::default()
        };
        let mut e = Experiment::new(c, h, config, 0.0, KEY).unwrap();
        for i in 0..(MAX_PENDING as u32 + 3) {
            e.predict(c, h, "a", None, 1.0 + f64::from(i)).unwrap();
            let s = e.close_now(2.0 + f64::from(i));
            assert_eq!((s.window.index, s.dropped), (u64::from(i), 0));
        }
        assert_eq!(e.pending().count(), 0);
        // A window that the time closed is queued, once; the one close_now closes is not.
        e.predict(c, h, "a", None, 100.0).unwrap();
        e.predict(c, h, "b", None, 10_100.0).unwrap();
        let s = e.close_now(10_200.0);
        let queued = e.take_pending();
        assert_eq!(queued.len(), 1);
        let w = &queued[0].window;
        assert_eq!((w.end_ms - w.start_ms, queued[0].seen), (10_000, 1));
        assert_eq!((s.window.start_ms, s.seen), (w.end_ms, 1));
        assert!(e.take_pending().is_empty());
        assert_eq!(e.dropped(), 0);
        e.snapshot(10_300.0);
        assert_eq!(
            e.pending().count(),
            1,
            "snapshot queues (the npm package delivers it)"
        );
    }

    #[test]
    fn requeue_keeps_order_and_bound() {
        let m = tiny();
        let (c, h) = arms(&m);
        let mut e = Experiment::new(c, h, ExperimentConfig::default(), 0.0, KEY).unwrap();
        assert!(!e.window_active());
        e.feedback(&"0".repeat(32), &e.classes[0].clone(), 0.5).unwrap();
        assert!(e.window_active(), "ignored feedback is reported too");
        for i in 0..3 {
            e.snapshot(1.0 + f64::from(i));
        }
        let taken = e.take_pending();
        e.snapshot(10.0);
        e.requeue(taken.clone());
        let order: Vec<_> = e.pending().map(|s| s.window.index).collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
        e.take_pending();
        for i in 0..MAX_PENDING {
            e.snapshot(100.0 + i as f64);
        }
        e.requeue(taken);
        assert_eq!(e.pending().count(), MAX_PENDING);
        assert_eq!(e.dropped(), 3);
        assert_eq!(
            e.pending().next().unwrap().window.index,
            4,
            "the requeued (older) ones were dropped"
        );
    }

    /// The crate's tiny model with `n` classes (`c0`, `c1`, …).
    fn with_classes(n: usize) -> TextClassifier {
        use crate::artifact::schema::{Classes, Classifier, LinearProba, Matrix};
        let mut body = crate::artifact::example::tiny();
        let Classifier::Linear(linear) = &mut body.pipeline.classifier else {
            unreachable!("tiny is linear")
        };
        linear.classes = Classes::Str((0..n).map(|i| format!("c{i}")).collect());
        linear.coef = Matrix {
            rows: n as u32,
            cols: 3,
            data: (0..3 * n).map(|i| i as f64 / 7.0).collect(),
        };
        linear.intercept = vec![0.0; n];
        linear.proba = LinearProba::Softmax;
        TextClassifier::from_body(body).unwrap()
    }

    /// `len` counts adding up to at most `u64::MAX` with the most digits: all of `k` digits and as
    /// many as the rest allows of `k + 1` (what `max_digits` counts).
    fn widest(len: usize) -> Vec<u64> {
        let least = |k: u32| if k <= 1 { 0 } else { 10u128.pow(k - 1) };
        let (n, budget) = (len as u128, u128::from(u64::MAX));
        let mut k = 1;
        while k < 20 && n * least(k + 1) <= budget {
            k += 1;
        }
        let wider = ((budget - n * least(k)) / (least(k + 1) - least(k))).min(n) as usize;
        (0..len)
            .map(|i| least(if i < wider { k + 1 } else { k }) as u64)
            .collect()
    }

    /// `total` in `len` near-equal parts.
    fn spread(total: u64, len: usize) -> Vec<u64> {
        let (q, r) = (total / len as u64, (total % len as u64) as usize);
        (0..len).map(|i| q + u64::from(i < r)).collect()
    }

    /// The largest valid snapshot of `n` classes in `mode`: counts with the most digits their sums
    /// allow, 17-digit floats, labels of 64 KiB of control characters, names of 256 4-byte
    /// characters (the longest a valid name serializes to).
    fn worst_snapshot(mode: Mode, n: usize) -> ExperimentSnapshot {
        use crate::monitor::{
            LatencyStats, OovStats, CONFIDENCE_BINS, LATENCY_BINS, LENGTH_BINS, MAX_CLASS_BYTES,
            MAX_NAME_CHARS, MAX_TIME_MS, OOV_BINS,
        };
        // Control characters JSON spells in six bytes (not \b \t \n \f \r).
        let escaped: Vec<char> = (0u8..0x20)
            .filter(|b| ![8, 9, 10, 12, 13].contains(b))
            .map(char::from)
            .collect();
        let classes: Vec<String> = spread(MAX_CLASS_BYTES as u64, n)
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let base = escaped.len();
                let mut label: String = [i % base, i / base % base, i / base / base]
                    .iter()
                    .map(|&d| escaped[d])
                    .collect();
                label.extend(std::iter::repeat_n('\u{1}', len as usize - 3));
                label
            })
            .collect();
        let float = 1.234_567_890_123_456_7e-300;
        let matrix = |flat: Vec<u64>| -> (Vec<Vec<u64>>, u64, u64) {
            let total = flat.iter().sum();
            let diagonal = (0..n).map(|i| flat[i * n + i]).sum();
            (flat.chunks(n).map(<[u64]>::to_vec).collect(), total, diagonal)
        };
        let stats = || {
            let label_counts = widest(n);
            let count: u64 = label_counts.iter().sum();
            Stats {
                count,
                label_counts,
                confidence: Some(spread(count, CONFIDENCE_BINS)),
                oov: Some(OovStats {
                    counts: spread(count, OOV_BINS),
                    no_features: 0,
                    oov_features: u64::MAX,
                    total_features: u64::MAX,
                }),
                length: spread(count, LENGTH_BINS),
                latency: Some(LatencyStats {
                    counts: spread(count, LATENCY_BINS),
                    sum_ms: float,
                    max_ms: float,
                }),
            }
        };
        let name: String = "\u{1d4d0}".repeat(MAX_NAME_CHARS);
        let arm = |arm: Arm, served: u64| {
            let (confusion, count, correct) = matrix(widest(n * n));
            ArmWindow {
                arm,
                model: ModelRef {
                    name: name.clone(),
                    version: name.clone(),
                    sha256: "ab".repeat(32),
                },
                served,
                stats: stats(),
                feedback: FeedbackStats {
                    count,
                    correct,
                    confusion,
                },
            }
        };
        let shadow = (mode == Mode::Shadow).then(|| {
            let (confusion, pairs, agree) = matrix(widest(n * n));
            ShadowStats {
                pairs,
                agree,
                confusion,
                proba_pairs: pairs,
                sum_abs_dproba: float,
                max_abs_dproba: float,
            }
        });
        ExperimentSnapshot {
            format: EXPERIMENT_FORMAT.into(),
            version: EXPERIMENT_VERSION,
            id: "0123456789abcdef".repeat(2),
            mode,
            sample_rate: float,
            share: float,
            window: Window {
                index: u64::MAX,
                start_ms: MAX_TIME_MS,
                end_ms: MAX_TIME_MS,
            },
            seen: u64::MAX,
            dropped: u64::MAX,
            classes,
            arms: vec![
                arm(Arm::Champion, u64::MAX / 2 + 1),
                arm(Arm::Challenger, u64::MAX / 2),
            ],
            shadow,
            feedback_expired: u64::MAX,
            feedback_unknown: u64::MAX,
            feedback_duplicate: u64::MAX,
        }
    }

    #[test]
    fn the_largest_snapshot_at_the_class_bound_fits_and_one_class_more_is_refused() {
        // The documented bounds (FORMAT.md §4, README).
        assert_eq!((MAX_SHADOW_CLASSES, MAX_CANARY_CLASSES), (112, 137));
        for mode in [Mode::Shadow, Mode::Canary] {
            let n = mode.max_classes();
            let bound = max_snapshot_bytes(mode, n);
            let json = worst_snapshot(mode, n).to_json();
            assert!(
                json.len() <= bound && bound <= MAX_SNAPSHOT_BYTES,
                "{mode:?}: {} bytes, bound {bound}",
                json.len()
            );
            // The bound is an upper bound, and a close one.
            assert!(
                bound - json.len() < 512,
                "{mode:?}: {} bytes, bound {bound}",
                json.len()
            );
            ExperimentSnapshot::parse(json.as_bytes()).unwrap();
            // One class more: such a window would be refused for its size.
            let over = worst_snapshot(mode, n + 1).to_json();
            assert!(over.len() > MAX_SNAPSHOT_BYTES, "{mode:?}: {}", over.len());
            assert!(matches!(
                ExperimentSnapshot::parse(over.as_bytes()),
                Err(crate::Error::SnapshotTooLarge { .. })
            ));

            let config = ExperimentConfig {
                mode,
                share: 0.5,
                ..ExperimentConfig::default()
            };
            let (at, past) = (with_classes(n), with_classes(n + 1));
            for (m, fits) in [(&at, true), (&past, false)] {
                let (c, h) = arms(m);
                let result = Experiment::new(c, h, config.clone(), 0.0, KEY);
                if fits {
                    let mut e = result.unwrap();
                    e.predict(c, h, "good", Some("k"), 1.0).unwrap();
                    ExperimentSnapshot::parse(e.snapshot(2.0).to_json().as_bytes()).unwrap();
                    continue;
                }
                // (not expect_err: the experiment's Debug holds its matrices)
                let Err(e) = result else {
                    panic!("{} classes accepted in {mode:?} mode", n + 1)
                };
                assert_eq!(e.code(), "INVALID_INPUT");
                let message = e.to_string();
                for part in [
                    format!("{} classes", n + 1),
                    format!("{} experiment (at most {n} classes)", mode.as_str()),
                    format!("{MAX_SNAPSHOT_BYTES} bytes"),
                ] {
                    assert!(message.contains(&part), "{part} in {message}");
                }
            }
        }
        // The repro of the audit: 500 classes in shadow mode.
        let m = with_classes(500);
        let (c, h) = arms(&m);
        assert!(Experiment::new(c, h, ExperimentConfig::default(), 0.0, KEY).is_err());
    }

    #[test]
    fn classes_the_validator_refuses_are_refused_at_the_start() {
        let mut body = crate::artifact::example::tiny();
        let crate::artifact::schema::Classifier::Linear(linear) = &mut body.pipeline.classifier else {
            unreachable!("tiny is linear")
        };
        // Two labels of 40,000 bytes: 80,000 bytes of labels, more than a snapshot may hold.
        linear.classes = crate::artifact::schema::Classes::Str(vec!["a".repeat(40_000), "b".repeat(40_000)]);
        let m = TextClassifier::from_body(body).unwrap();
        let (c, h) = arms(&m);
        let Err(e) = Experiment::new(c, h, ExperimentConfig::default(), 0.0, KEY) else {
            panic!("80,000 bytes of labels accepted")
        };
        assert_eq!(e.code(), "INVALID_INPUT");
        assert!(e.to_string().contains("bytes of labels"), "{e}");
    }

    #[test]
    fn an_arm_named_as_no_collector_takes_is_refused() {
        // Its snapshots would all be refused by the validator: every window lost.
        let named = |name: &str| {
            let mut body = crate::artifact::example::tiny();
            body.metadata.name = name.into();
            TextClassifier::from_body(body).unwrap()
        };
        let (good, bad) = (named("sentiment"), named("team/sentiment"));
        let arm = |m, sha256| ArmModel { model: m, sha256 };
        let Err(e) = Experiment::new(arm(&bad, A), arm(&good, B), ExperimentConfig::default(), 0.0, KEY)
        else {
            panic!("a champion named team/sentiment accepted")
        };
        assert_eq!(e.code(), "INVALID_INPUT");
        assert!(e.to_string().contains("the champion.name"), "{e}");
        let mut e = Experiment::new(
            arm(&good, A),
            arm(&good, B),
            ExperimentConfig::default(),
            0.0,
            KEY,
        )
        .unwrap();
        e.predict(arm(&good, A), arm(&good, B), "a", None, 1.0).unwrap();
        let Err(err) = e.predict(arm(&good, A), arm(&bad, &[0xcc; 32]), "b", None, 2.0) else {
            panic!("a challenger named team/sentiment followed")
        };
        assert!(err.to_string().contains("the challenger.name"), "{err}");
        // The pair and its window are as they were.
        e.predict(arm(&good, A), arm(&good, B), "c", None, 3.0).unwrap();
        assert!(e.take_pending().is_empty());
    }

    #[test]
    fn bad_configurations_and_snapshots_are_refused() {
        let m = tiny();
        let (c, h) = arms(&m);
        for (field, config) in [
            (
                "sample_rate",
                ExperimentConfig {
                    sample_rate: 1.5,
                    ..Default::default()
                },
            ),
            (
                "share",
                ExperimentConfig {
                    share: -0.1,
                    ..Default::default()
                },
            ),
            (
                "feedback_capacity",
                ExperimentConfig {
                    feedback_capacity: 0,
                    ..Default::default()
                },
            ),
            (
                "window_seconds",
                ExperimentConfig {
                    window_seconds: Some(0.0),
                    ..Default::default()
                },
            ),
        ] {
            let e = Experiment::new(c, h, config, 0.0, KEY).unwrap_err();
            assert_eq!(e.code(), "INVALID_INPUT");
            // The field's name, not the npm package's option (`sampleRate`).
            assert!(
                e.to_string()
                    .starts_with(&format!("invalid input: {field} must be")),
                "{e}"
            );
        }
        let mut e = Experiment::new(c, h, ExperimentConfig::default(), 0.0, KEY).unwrap();
        e.predict(c, h, "x", None, 1.0).unwrap();
        let good = e.snapshot(2.0).to_json();
        for (from, to) in [
            ("\"agree\":1", "\"agree\":2"),
            ("\"seen\":1", "\"seen\":2"),
            ("\"mode\":\"shadow\"", "\"mode\":\"canary\""),
        ] {
            assert!(good.contains(from), "{from} in {good}");
            let bad = good.replacen(from, to, 1);
            assert!(ExperimentSnapshot::parse(bad.as_bytes()).is_err(), "{to}");
        }
    }
}
