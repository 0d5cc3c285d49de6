//! `new Experiment(champion, challenger, options)`'s core (FORMAT.md §4, experiment snapshots).
//! The JS class (scripts/npm/extend.js) resolves each arm's current model — a `Model`, or the
//! version a `Model.follow` handle serves — and passes both to every call, so an alias move
//! replaces an arm in place; the core closes the window when an arm's artifact changes.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Object, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::model::PredictionOut;
use super::monitor::{checked_number, flush, random_seed, seed_of, Outbox};
use super::{core_error, invalid, option, option_string, options_object, to_js, type_name, Model};
use crate::error::Quoted;
use crate::experiment::{
    ArmModel, Experiment, ExperimentConfig, ExperimentSnapshot, Feedback, Mode, DEFAULT_FEEDBACK_CAPACITY,
    MAX_FEEDBACK_CAPACITY,
};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
export interface ExperimentOptions {
  /** "shadow" (default): the champion serves, a sample is also scored by the challenger;
   * "canary": the challenger serves a sticky `share` of keys. */
  mode?: "shadow" | "canary";
  /** Shadow: probability that a text is also scored by the challenger (default 1). */
  sampleRate?: number;
  /** Canary (required there): share of keys served by the challenger, in [0, 1]. */
  share?: number;
  /** Canary: mixed into the key hash, so experiments split keys differently (default ""). */
  salt?: string;
  /** Window length; without it a window lasts until `snapshot()`. */
  windowSeconds?: number;
  /** Seed of the shadow sampler and of the snapshots' ids (default: crypto.getRandomValues).
   * Prediction ids are keyed by crypto.getRandomValues whatever the seed. */
  seed?: number | bigint;
  /** Predictions remembered for feedback (default 10,000; at most 1,048,576). */
  feedbackCapacity?: number;
}

/** `Experiment.predict`'s result: the served prediction, its arm and its id. */
export interface Served extends Prediction {
  arm: "champion" | "challenger";
  /** 32 hex digits (a sequence number and its keyed hash: not guessable from another id): give it
   * to `feedback` with the true label. */
  id: string;
  /** Shadow mode, sampled texts: the challenger's prediction (not served); else null. */
  shadow: Prediction | null;
}

export type FeedbackOutcome = "counted" | "expired" | "unknown" | "duplicate";

/** One arm of an experiment window. */
export interface ExperimentArm {
  arm: "champion" | "challenger";
  model: { name: string; version: string; sha256: string };
  served: number;
  stats: Snapshot["stats"];
  /** `confusion[true][predicted]` in `classes` order. */
  feedback: { count: number; correct: number; confusion: number[][] };
}

/** A closed experiment window (FORMAT.md §4). */
export interface ExperimentSnapshot {
  format: "skedge-experiment-snapshot";
  version: 1;
  id: string;
  mode: "shadow" | "canary";
  sample_rate: number;
  share: number;
  window: { index: number; start_ms: number; end_ms: number };
  seen: number;
  dropped: number;
  classes: string[];
  /** [champion, challenger]. */
  arms: ExperimentArm[];
  /** Shadow mode: `confusion[champion][challenger]`, mean |Δ proba| = sum_abs_dproba / proba_pairs. */
  shadow: {
    pairs: number;
    agree: number;
    confusion: number[][];
    proba_pairs: number;
    sum_abs_dproba: number;
    max_abs_dproba: number;
  } | null;
  feedback_expired: number;
  feedback_unknown: number;
  feedback_duplicate: number;
}
"#;

const OPTIONS: &[&str] = &[
    "mode",
    "sampleRate",
    "share",
    "salt",
    "windowSeconds",
    "seed",
    "feedbackCapacity",
];

#[derive(Serialize)]
struct ServedOut<'a> {
    #[serde(flatten)]
    prediction: PredictionOut<'a>,
    arm: &'static str,
    id: &'a str,
    /// Shadow mode, sampled texts: what the challenger predicted (not served).
    shadow: Option<PredictionOut<'a>>,
}

/// The experiment of two models; every call takes the arms' current models. Shared with a
/// `flush` in progress, which gives back what it could not deliver after its `await`s.
#[wasm_bindgen(js_name = ExperimentCore, skip_typescript)]
pub struct ExperimentCore {
    inner: Rc<RefCell<Experiment>>,
}

impl Outbox for Experiment {
    type Item = ExperimentSnapshot;

    fn take(&mut self, now_ms: f64, closed_only: bool) -> Vec<ExperimentSnapshot> {
        self.tick(now_ms);
        if !closed_only && self.window_active() {
            self.snapshot(now_ms);
        }
        self.take_pending()
    }

    fn requeue(&mut self, undelivered: Vec<ExperimentSnapshot>) {
        Experiment::requeue(self, undelivered);
    }

    fn pending(&self) -> usize {
        Experiment::pending(self).count()
    }

    fn dropped(&self) -> u64 {
        Experiment::dropped(self)
    }
}

fn arm(m: &Model) -> ArmModel<'_> {
    ArmModel {
        model: &m.inner,
        sha256: m.digest(),
    }
}

/// The text of an experiment's input, as `Model.predict` reads it: a string, or a record
/// `{ column: text }` of the arms' input column. The core scores one text with both arms, so
/// arms fitted on different columns (or one on texts) take strings only.
fn input_text(champion: &Model, challenger: &Model, v: &JsValue) -> Result<String, JsValue> {
    let (a, b) = (champion.inner.input_column(), challenger.inner.input_column());
    if a == b || v.is_string() {
        return champion.text_of_input(v, "text");
    }
    let column = |c: Option<&str>| match c {
        Some(c) => format!("column {}", Quoted(c)),
        None => "texts".to_owned(),
    };
    Err(invalid(&format!(
        "text must be a string, got {}: the champion was fitted on {}, the challenger on {}, so no \
         record fits both",
        type_name(v),
        column(a),
        column(b)
    )))
}

#[wasm_bindgen(js_class = ExperimentCore)]
impl ExperimentCore {
    /// Checks the options (unknown keys refused, values shown in messages) and starts.
    #[wasm_bindgen(constructor)]
    pub fn new(
        champion: &Model,
        challenger: &Model,
        options: Option<Object>,
    ) -> Result<ExperimentCore, JsValue> {
        let o = options_object(options, "new Experiment", OPTIONS)?;
        let o = o.as_ref();
        let mode = match option_string(o, "mode")?.as_deref() {
            None | Some("shadow") => Mode::Shadow,
            Some("canary") => Mode::Canary,
            Some(other) => {
                return Err(invalid(&format!(
                    "options.mode must be \"shadow\" or \"canary\", got {}",
                    Quoted(other)
                )))
            }
        };
        let number = |key: &str, ok: fn(f64) -> bool, what: &str| checked_number(o, key, ok, what);
        let unit = |n: f64| (0.0..=1.0).contains(&n);
        let sample_rate = number("sampleRate", unit, "in [0, 1]")?;
        let share = number("share", unit, "in [0, 1]")?;
        match (mode, sample_rate, share) {
            (Mode::Shadow, _, Some(_)) => return Err(invalid("options.share is for mode \"canary\"")),
            (Mode::Canary, Some(_), _) => return Err(invalid("options.sampleRate is for mode \"shadow\"")),
            (Mode::Canary, _, None) => return Err(invalid("mode \"canary\" needs options.share in [0, 1]")),
            _ => {}
        }
        let window_seconds = number("windowSeconds", |n| n.is_finite() && n >= 0.001, "≥ 0.001")?;
        let capacity = number(
            "feedbackCapacity",
            |n| n >= 1.0 && n.fract() == 0.0 && n <= MAX_FEEDBACK_CAPACITY as f64,
            "an integer in [1, 1048576]",
        )?;
        let seed = match option(o, "seed") {
            None => random_seed(),
            Some(v) => seed_of(&v)?,
        };
        let config = ExperimentConfig {
            mode,
            sample_rate: sample_rate.unwrap_or(1.0),
            share: share.unwrap_or(0.0),
            salt: option_string(o, "salt")?.unwrap_or_default(),
            window_seconds,
            seed,
            feedback_capacity: capacity.map_or(DEFAULT_FEEDBACK_CAPACITY, |n| n as usize),
        };
        // The ids' key: crypto.getRandomValues, whatever the seed (a seed reproduces the sampling,
        // never the ids, which a client must not be able to guess from one it was given).
        let mut id_key = [0u8; 16];
        id_key[..8].copy_from_slice(&random_seed().to_le_bytes());
        id_key[8..].copy_from_slice(&random_seed().to_le_bytes());
        let inner = Experiment::new(
            arm(champion),
            arm(challenger),
            config,
            js_sys::Date::now(),
            id_key,
        )
        .map_err(core_error)?;
        Ok(ExperimentCore {
            inner: Rc::new(RefCell::new(inner)),
        })
    }

    /// `{ label, decision, proba, arm, id, shadow }` of the arm that serves `text` (a string, or
    /// a record `{ column: text }` when both arms were fitted on that DataFrame column).
    pub fn predict(
        &mut self,
        champion: &Model,
        challenger: &Model,
        text: &JsValue,
        key: &JsValue,
    ) -> Result<JsValue, JsValue> {
        let text = input_text(champion, challenger, text)?;
        let key =
            if key.is_undefined() || key.is_null() {
                None
            } else {
                Some(key.as_string().ok_or_else(|| {
                    invalid(&format!("options.key must be a string, got {}", type_name(key)))
                })?)
            };
        let served = self
            .inner
            .borrow_mut()
            .predict(
                arm(champion),
                arm(challenger),
                &text,
                key.as_deref(),
                js_sys::Date::now(),
            )
            .map_err(core_error)?;
        let classes = champion.inner.classes();
        to_js(&ServedOut {
            prediction: PredictionOut::new(&served.prediction, classes),
            arm: served.arm.as_str(),
            id: &served.id,
            shadow: served.shadow.as_ref().map(|s| PredictionOut::new(s, classes)),
        })
    }

    /// The true label (a number or string of `classes`) of the prediction `id`:
    /// `"counted"`, `"expired"` (older than the ring, or made by an artifact the arms no longer
    /// run), `"unknown"` or `"duplicate"`.
    // Returned as a JS value: the export then shares `Model.explain`'s signature (one compiled
    // wrapper per distinct export signature: benches/PROFILE.md, "Compile and instantiate").
    #[wasm_bindgen(unchecked_return_type = "string")]
    pub fn feedback(&mut self, id: &JsValue, truth: &JsValue) -> Result<JsValue, JsValue> {
        let id = id.as_string().ok_or_else(|| {
            invalid(&format!(
                "the prediction id must be a string, got {}",
                type_name(id)
            ))
        })?;
        let truth = match (truth.as_string(), truth.as_f64()) {
            (Some(s), _) => s,
            (None, Some(n)) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
                (n as i64).to_string()
            }
            _ => {
                return Err(invalid(&format!(
                    "the true label must be one of the classes (a string or an integer), got {}",
                    type_name(truth)
                )))
            }
        };
        let outcome = self
            .inner
            .borrow_mut()
            .feedback(&id, &truth, js_sys::Date::now())
            .map_err(core_error)?;
        Ok(JsValue::from_str(match outcome {
            Feedback::Counted => "counted",
            Feedback::Expired => "expired",
            Feedback::Unknown => "unknown",
            Feedback::Duplicate => "duplicate",
        }))
    }

    /// Closes the open window now, queues its snapshot and returns it.
    pub fn snapshot(&mut self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.borrow_mut().snapshot(js_sys::Date::now()))
    }

    /// Takes the closed windows waiting for delivery, oldest first.
    #[wasm_bindgen(js_name = takePending)]
    pub fn take_pending(&mut self) -> Result<Array, JsValue> {
        let mut inner = self.inner.borrow_mut();
        inner.tick(js_sys::Date::now());
        let out = Array::new();
        for s in inner.take_pending() {
            out.push(&to_js(&s)?);
        }
        Ok(out)
    }

    /// Delivers the queued windows as `Monitor.flush` does (src/wasm/monitor.rs).
    pub fn flush(&self, endpoint: JsValue, options: Option<Object>) -> Promise {
        wasm_bindgen_futures::future_to_promise(flush(self.inner.clone(), endpoint, options))
    }

    /// Snapshots waiting for delivery.
    // A number (f64) like `dropped`: one export signature for both (see `Monitor.pending`).
    #[wasm_bindgen(getter)]
    pub fn pending(&self) -> f64 {
        self.inner.borrow().pending().count() as f64
    }

    /// Snapshots dropped so far because the queue (64) was full.
    #[wasm_bindgen(getter)]
    pub fn dropped(&self) -> f64 {
        self.inner.borrow().dropped() as f64
    }
}
