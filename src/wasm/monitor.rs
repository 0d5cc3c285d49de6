//! `model.monitor()` and the `Monitor` handle: sampled statistics of predictions, snapshots
//! and their delivery to a collector (FORMAT.md §4).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::fetch::{call, cancel, chunk_of, fetch, message_of, read, settle};
use super::{core_error, invalid, option, option_string, options_object, put, to_js, type_name, Model};
use crate::hex;
use crate::monitor::{Monitor, MonitorConfig, Snapshot};

/// A monitor and how it times predictions; shared by the `Model` that feeds it and the
/// `Monitor` handle that flushes it (which outlives neither's borrow across an `await`).
pub(super) struct Live {
    pub(super) monitor: Monitor,
    pub(super) timing: bool,
}

#[wasm_bindgen]
impl Model {
    /// Starts monitoring this model's `predict` and `predictBatch` calls (FORMAT.md §4) and
    /// returns the monitor. A monitor started before stops recording (it can still be flushed).
    // `options` as a JS value rather than `Option<Object>`: the export then has `predict`'s
    // signature, and V8 compiles one wrapper per distinct export signature with the module
    // (benches/PROFILE.md, "Compile and instantiate").
    #[wasm_bindgen(unchecked_return_type = "Monitor")]
    pub fn monitor(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "MonitorOptions")] options: JsValue,
    ) -> Result<MonitorHandle, JsValue> {
        let options =
            (!options.is_undefined() && !options.is_null()).then(|| options.unchecked_into::<Object>());
        let options = options_object(options, "monitor", MONITOR_OPTIONS)?;
        let o = options.as_ref();
        let seed = match option(o, "seed") {
            None => random_seed(),
            Some(v) => seed_of(&v)?,
        };
        // Checked here too, so the messages show the value.
        let number = |key: &str, ok: fn(f64) -> bool, what: &str| checked_number(o, key, ok, what);
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
        let sha256 = hex::encode(self.digest());
        // The ids' key: crypto.getRandomValues, whatever the seed (a seed reproduces the sampling,
        // never the ids: isolates given one seed and started in the same millisecond keep theirs).
        let mut id_key = [0u8; 16];
        id_key[..8].copy_from_slice(&random_seed().to_le_bytes());
        id_key[8..].copy_from_slice(&random_seed().to_le_bytes());
        let monitor =
            Monitor::new(&self.inner, &sha256, config, js_sys::Date::now(), id_key).map_err(core_error)?;
        let live = Rc::new(RefCell::new(Live { monitor, timing }));
        self.monitor = Some(live.clone());
        Ok(MonitorHandle { live })
    }

    /// Stops recording predictions (the monitor keeps its snapshots: flush it once more).
    #[wasm_bindgen(js_name = stopMonitoring)]
    pub fn stop_monitoring(&mut self) {
        self.monitor = None;
    }
}

/// A seed: a non-negative integer number below 2^53 or a bigint below 2^64.
pub(super) fn seed_of(v: &JsValue) -> Result<u64, JsValue> {
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
pub(super) fn random_seed() -> u64 {
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
    pub(super) fn performance_now() -> Result<f64, JsValue>;
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
    // A number (f64) like `dropped` and `seen`: one export signature for the three, and V8
    // compiles one wrapper per distinct export signature (benches/PROFILE.md, "Compile and
    // instantiate").
    #[wasm_bindgen(getter)]
    pub fn pending(&self) -> f64 {
        self.live.borrow().monitor.pending().count() as f64
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

    /// Closes the open window (when it saw a prediction, and not with `closedOnly`) and POSTs
    /// every queued snapshot, oldest first, to `endpoint` (`fetch`, or `navigator.sendBeacon` with `beacon: true`), or hands
    /// it to `endpoint` when that is a function (a `SnapshotSink`). Snapshots that could not be
    /// delivered (network error, 401, 403, 408, 429, 5xx, a sink that threw, unless what it threw
    /// says `rejected: true`) stay queued for the
    /// next flush, in order, at most 64 (older ones are dropped and counted). The result's
    /// `lastError` says why the last snapshot not delivered was not (a wrong token, say). An
    /// endpoint that is not an http(s) URL, absolute or relative to the page, rejects with
    /// `INVALID_INPUT` before anything is taken from the queue (checked in scripts/npm/extend.js).
    #[wasm_bindgen(unchecked_return_type = "Promise<FlushResult>")]
    pub fn flush(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | URL | SnapshotSink")] endpoint: JsValue,
        #[wasm_bindgen(unchecked_param_type = "FlushOptions")] options: Option<Object>,
    ) -> Promise {
        let live = self.live.clone();
        wasm_bindgen_futures::future_to_promise(flush(live, endpoint, options))
    }
}

/// Why a snapshot was not delivered (`lastError` of `flush()`): the HTTP status (0 when there
/// was no answer) and a code, the collector's own (`TOKEN_INVALID`, …) when it sent one.
struct Failure {
    status: u16,
    code: String,
    message: String,
}

impl Failure {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    fn to_js(&self) -> JsValue {
        let out = Object::new();
        put(&out, "status", &JsValue::from(self.status));
        put(&out, "code", &self.code.as_str().into());
        put(&out, "message", &self.message.as_str().into());
        out.into()
    }
}

enum Delivery {
    Sent,
    /// Refused for good: dropped.
    Rejected(Failure),
    /// Not delivered now: kept for the next flush.
    Retry(Failure),
}

/// A queue of snapshots that `flush` delivers: a monitor's, or an experiment's
/// (src/wasm/experiment.rs). Only taking and giving back differ; the delivery is one code.
pub(super) trait Outbox {
    type Item: Serialize;
    /// Closes the windows due at `now_ms`, and the open one too unless `closed_only` or it saw
    /// nothing, then takes every queued snapshot, oldest first.
    fn take(&mut self, now_ms: f64, closed_only: bool) -> Vec<Self::Item>;
    /// Gives back the undelivered ones (bounded, drops counted).
    fn requeue(&mut self, undelivered: Vec<Self::Item>);
    fn pending(&self) -> usize;
    fn dropped(&self) -> u64;
}

impl Outbox for Live {
    type Item = Snapshot;

    fn take(&mut self, now_ms: f64, closed_only: bool) -> Vec<Snapshot> {
        // Expired windows first: otherwise closing an expired window here would also queue an
        // empty snapshot of the window that replaced it.
        self.monitor.tick(now_ms);
        if !closed_only && self.monitor.seen() > 0 {
            self.monitor.snapshot(now_ms);
        }
        self.monitor.take_pending()
    }

    fn requeue(&mut self, undelivered: Vec<Snapshot>) {
        self.monitor.requeue(undelivered);
    }

    fn pending(&self) -> usize {
        self.monitor.pending().count()
    }

    fn dropped(&self) -> u64 {
        self.monitor.dropped()
    }
}

/// Where `flush` delivers, read from its arguments before anything is taken from the queue.
struct Target {
    sink: Option<Function>,
    url: String,
    token: Option<String>,
    beacon: bool,
}

const MONITOR_OPTIONS: &[&str] = &["sampleRate", "windowSeconds", "seed", "maxTexts", "timing"];
const FLUSH_OPTIONS: &[&str] = &["token", "beacon", "closedOnly"];

/// `flush(endpoint, options)` of a monitor or an experiment (the `FlushResult`).
pub(super) async fn flush<Q: Outbox>(
    live: Rc<RefCell<Q>>,
    endpoint: JsValue,
    options: Option<Object>,
) -> Result<JsValue, JsValue> {
    let options = options_object(options, "flush", FLUSH_OPTIONS)?;
    let sink = endpoint.dyn_ref::<Function>().cloned();
    let url = match sink {
        Some(_) => String::new(),
        None => endpoint
            .as_string()
            .or_else(|| {
                endpoint
                    .is_object()
                    .then(|| Reflect::get(&endpoint, &"href".into()).ok()?.as_string())
                    .flatten()
            })
            .ok_or_else(|| invalid("flush() needs the collector's URL, or a function"))?,
    };
    let o = options.as_ref();
    let flag = |key: &str| match option(o, key) {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid(&format!("options.{key} must be a boolean, got {}", type_name(&v)))),
    };
    let token = option_string(o, "token")?;
    // A token that cannot be a header value would fail every flush as a network error and hold
    // the queue for ever (a long one: 431, dropped); refused here, before anything is taken.
    if token.as_ref().is_some_and(|t| {
        !(1..=MAX_TOKEN_BYTES).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_graphic())
    }) {
        return Err(invalid(&format!(
            "options.token must be 1 to {MAX_TOKEN_BYTES} visible ASCII characters (no spaces or control characters)"
        )));
    }
    let target = Target {
        sink,
        url,
        token,
        beacon: flag("beacon")?,
    };
    let closed_only = flag("closedOnly")?;
    let mut batch = live.borrow_mut().take(js_sys::Date::now(), closed_only);
    // Converted here, so the delivery loop below exists once in the wasm, not once per queue.
    let values: Vec<Option<JsValue>> = batch.iter().map(|s| to_js(s).ok()).collect();
    let (sent, rejected, done, last_error) = send_all(&target, &values).await;
    let mut l = live.borrow_mut();
    l.requeue(batch.split_off(done));
    let out = Object::new();
    put(&out, "sent", &sent.into());
    put(&out, "rejected", &rejected.into());
    put(&out, "pending", &(l.pending() as f64).into());
    put(&out, "dropped", &(l.dropped() as f64).into());
    let last_error = last_error.map_or(JsValue::NULL, |why| why.to_js());
    put(&out, "lastError", &last_error);
    Ok(out.into())
}

/// Delivers snapshots in order until one must be retried: `(sent, rejected, done, last
/// error)`, where the first `done` are settled (sent or dropped) and the rest stay queued.
async fn send_all(target: &Target, values: &[Option<JsValue>]) -> (u32, u32, usize, Option<Failure>) {
    let (mut sent, mut rejected, mut done) = (0u32, 0u32, 0);
    let mut last_error = None;
    for s in values {
        let delivery = match &target.sink {
            Some(sink) => hand_to(sink, s.as_ref()).await,
            None => deliver(&target.url, target.token.as_deref(), target.beacon, s.as_ref()).await,
        };
        match delivery {
            Delivery::Sent => sent += 1,
            Delivery::Rejected(why) => {
                rejected += 1;
                last_error = Some(why);
            }
            Delivery::Retry(why) => {
                last_error = Some(why);
                break;
            }
        }
        done += 1;
    }
    (sent, rejected, done, last_error)
}

#[wasm_bindgen(typescript_custom_section)]
const FLUSH_ERROR_TS: &str = r#"
/** Why `flush()` did not deliver a snapshot (the last one it could not deliver). */
export interface FlushError {
  /** The collector's HTTP status; 0 when it did not answer (network error, beacon refused, sink). */
  status: number;
  /** `scripts/report.py serve`'s code (`TOKEN_MISSING`, `TOKEN_INVALID`, `SNAPSHOT_INVALID`,
   * `SNAPSHOT_TOO_LARGE`, …), else `HTTP_<status>`, `NETWORK_ERROR`, `BEACON_REFUSED` or
   * `SINK_FAILED` (a `SnapshotSink` threw: kept) or `SINK_REJECTED` (it threw an error with
   * `rejected: true`: dropped). */
  code: string;
  /** The collector's explanation, or the network error's or the sink's message (at most 300 characters). */
  message: string;
}

// Declaration merging: FlushResult is declared with the other option and result types.
export interface FlushResult {
  /** Why the last snapshot not delivered by this flush was not; `null` when all were. */
  lastError: FlushError | null;
}
"#;

/// Longest collector answer read for its `code` and `error` (the collector's are ~100 bytes): the
/// rest of a longer one is cancelled unread.
const MAX_ANSWER_BYTES: usize = 4096;
/// Longest `token` (a bearer token is far shorter; servers refuse headers past 8 to 16 KB).
const MAX_TOKEN_BYTES: usize = 4096;
/// How long one snapshot's POST may take, answer included, before it is aborted and the snapshot
/// kept for the next flush: a collector that never answers would otherwise hold the flush (and
/// the snapshots it took) for ever in browsers and workerd, 300 s in Node. 30 s is what Workers
/// give a `waitUntil` after the response, and far more than a ~100-byte answer needs.
const POST_TIMEOUT_MS: u32 = 30_000;
/// Characters of an explanation kept in `lastError.message`.
const MAX_MESSAGE_CHARS: usize = 300;

/// Hands one snapshot and its JSON to a sink: delivered once what it returns resolves; kept for
/// the next flush if it throws or rejects, dropped if what it throws says `rejected: true` (a
/// snapshot the sink can never store, which would otherwise hold the queue behind it for ever).
async fn hand_to(sink: &Function, snapshot: Option<&JsValue>) -> Delivery {
    let Some((snapshot, json)) = snapshot.and_then(|v| Some((v, js_sys::JSON::stringify(v).ok()?))) else {
        return Delivery::Rejected(Failure::new(0, "INVALID_INPUT", "the snapshot is not JSON"));
    };
    let thrown = match sink.call2(&JsValue::UNDEFINED, snapshot, &json) {
        Ok(v) => match settle(Ok(v)).await {
            Ok(_) => return Delivery::Sent,
            Err(e) => e,
        },
        Err(e) => e,
    };
    // Reflect::get of a primitive throws: a thrown string is a failure to retry.
    if thrown.is_object() && Reflect::get(&thrown, &"rejected".into()).is_ok_and(|r| r == JsValue::TRUE) {
        Delivery::Rejected(Failure::new(0, "SINK_REJECTED", describe(&thrown)))
    } else {
        Delivery::Retry(Failure::new(0, "SINK_FAILED", describe(&thrown)))
    }
}

/// POSTs one snapshot as JSON; 201 (stored) and 409 (already stored) are delivered.
async fn deliver(url: &str, token: Option<&str>, beacon: bool, snapshot: Option<&JsValue>) -> Delivery {
    let Some(body) = snapshot.and_then(|v| js_sys::JSON::stringify(v).ok()) else {
        return Delivery::Rejected(Failure::new(0, "INVALID_INPUT", "the snapshot is not JSON"));
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
                Ok(_) => Delivery::Retry(Failure::new(
                    0,
                    "BEACON_REFUSED",
                    "navigator.sendBeacon did not queue the snapshot",
                )),
                Err(e) => Delivery::Retry(Failure::new(0, "BEACON_REFUSED", describe(&e))),
            };
        }
    }
    let headers = Object::new();
    put(&headers, "content-type", &"application/json".into());
    if let Some(token) = token {
        put(&headers, "authorization", &format!("Bearer {token}").into());
    }
    let init = Object::new();
    put(&init, "method", &"POST".into());
    put(&init, "headers", &headers);
    put(&init, "body", &body);
    // AbortSignal.timeout: Node 17.3+, Deno, Bun, workerd, browsers since 2022; without it
    // (older browsers) the POST is not bounded.
    let timeout = Reflect::get(&js_sys::global(), &"AbortSignal".into())
        .and_then(|a| call(&a, "timeout", &POST_TIMEOUT_MS.into()));
    if let Ok(signal) = timeout {
        put(&init, "signal", &signal);
    }
    let response = match settle(fetch(&url.into(), &init).map(Into::into)).await {
        Ok(r) => r,
        Err(e) => return Delivery::Retry(Failure::new(0, "NETWORK_ERROR", describe(&e))),
    };
    // An application's own `fetch` may resolve to anything: without an HTTP status, the snapshot
    // was not delivered.
    let Some(status) = Reflect::get(&response, &"status".into())
        .ok()
        .and_then(|s| s.as_f64())
        .filter(|s| (100.0..600.0).contains(s))
    else {
        return Delivery::Retry(Failure::new(
            0,
            "NETWORK_ERROR",
            "fetch did not resolve to a Response",
        ));
    };
    let status = status as u16;
    // Read the answer, so the connection can be reused (and Workers do not warn).
    let answer = read_answer(&response).await;
    let failure = || failure_of(status, answer.as_deref());
    match status {
        200..=299 | 409 => Delivery::Sent,
        401 | 403 | 408 | 429 | 500..=599 => Delivery::Retry(failure()),
        _ => Delivery::Rejected(failure()),
    }
}

/// The answer's body through its reader, `None` past [`MAX_ANSWER_BYTES`] (the rest cancelled
/// unread: a collector's endless answer was read whole) or when it cannot be read.
async fn read_answer(response: &JsValue) -> Option<Vec<u8>> {
    let body = Reflect::get(response, &"body".into())
        .ok()
        .filter(|b| b.is_object())?;
    let reader = call(&body, "getReader", &JsValue::UNDEFINED).ok()?;
    let mut answer = Vec::new();
    while answer.len() <= MAX_ANSWER_BYTES {
        match read(&reader).await.and_then(chunk_of) {
            Ok(Some(chunk)) => {
                // At most one byte past the limit is kept: enough to know it was passed.
                let n = (chunk.length() as usize).min(MAX_ANSWER_BYTES + 1 - answer.len());
                let at = answer.len();
                answer.resize(at + n, 0);
                chunk.subarray(0, n as u32).copy_to(&mut answer[at..]);
            }
            Ok(None) => return Some(answer),
            Err(_) => return None,
        }
    }
    let _ = cancel(&reader).await;
    None
}

/// The failure a non-2xx answer describes: `{"code", "error"}` of a small JSON body (the
/// collector's), else `HTTP_<status>`.
fn failure_of(status: u16, body: Option<&[u8]>) -> Failure {
    let doc = body
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .filter(|doc| doc.is_object());
    let field = |key: &str| {
        doc.as_ref()
            .and_then(|d| Reflect::get(d, &key.into()).ok())
            .and_then(|v| v.as_string())
    };
    let code = field("code")
        .filter(|c| {
            (1..=64).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
        .unwrap_or_else(|| format!("HTTP_{status}"));
    let message = field("error").unwrap_or_else(|| format!("the collector answered {status}"));
    Failure::new(
        status,
        &code,
        message.chars().take(MAX_MESSAGE_CHARS).collect::<String>(),
    )
}

/// The message of a thrown JS value (an `Error`'s, with its cause's: Node's fetch says only
/// "fetch failed", its cause "connect ECONNREFUSED …"), cut to `MAX_MESSAGE_CHARS`.
// `message` and `cause` read through `Reflect` (fetch.rs `message_of`): a getter of either may throw.
fn describe(e: &JsValue) -> String {
    let cause = Reflect::get(e, &"cause".into()).ok().filter(|c| c.is_object());
    let text = match (message_of(e), cause.as_ref().and_then(message_of)) {
        (Some(m), Some(c)) => format!("{m}: {c}"),
        (m, _) => m.unwrap_or_else(|| "unknown error".into()),
    };
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

/// [`option_number`] that `ok` accepts, refused as `options.KEY must be WHAT, got VALUE` with the
/// value as JS writes it (the core leaves floats out of its messages in wasm, see `monitor::Got`).
pub(super) fn checked_number(
    options: Option<&Object>,
    key: &str,
    ok: fn(f64) -> bool,
    what: &str,
) -> Result<Option<f64>, JsValue> {
    match option_number(options, key)? {
        Some(n) if !ok(n) => Err(invalid(&format!(
            "options.{key} must be {what}, got {}",
            js_number(n)
        ))),
        n => Ok(n),
    }
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

/// `String(n)` of JS: no float formatting code in the wasm.
fn js_number(n: f64) -> String {
    js_sys::Number::from(n)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_default()
}
