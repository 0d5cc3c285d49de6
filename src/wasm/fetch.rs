//! Host I/O for `Model.load`: `fetch` and the body, read whole when its length is framed and
//! within `maxBytes`, else chunk by chunk, refused as soon as it passes `maxBytes`.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::error;
use super::invalid;
use super::put;
use crate::error::Cut;

// A `Response`, a body reader, an error and what they resolve to come from outside: a script can
// build or subclass a `Response`, patch `fetch`, error a stream with anything. Their properties
// and methods are read and called through `Reflect` and the catching imports below, never through
// imports that do not catch: a throw through this module's frames skips their clean-up (inside a
// future: an uncaught exception, a promise that never settles; a few hundred of them break the
// instance for good).
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch, catch)]
    pub(super) fn fetch(input: &JsValue, init: &JsValue) -> Result<Promise, JsValue>;

    /// Only for `instanceof`: every property is read with [`call`] or `Reflect::get`.
    type Response;

    /// `Promise.race([value])`: a fresh promise, settled as `value` is, which calls `value`'s
    /// `then` (a thenable's, a promise's own, or one whose `constructor` getter throws) in a
    /// promise job, where a throw rejects it.
    #[wasm_bindgen(js_namespace = Promise, js_name = race, catch)]
    fn promise_race(values: &Array) -> Result<Promise, JsValue>;

    /// `new Uint8Array(v)`: a view of an `ArrayBuffer`, or a copy of a typed array made from its
    /// internal slots, whatever getters `v` shows (its `length` is then the runtime's own).
    #[wasm_bindgen(extends = Uint8Array, js_name = Uint8Array)]
    type Bytes;
    #[wasm_bindgen(constructor, js_class = "Uint8Array", catch)]
    fn new(v: &JsValue) -> Result<Bytes, JsValue>;
}

/// What `value` resolves to (itself when it is no promise or thenable), or its error, awaited
/// without anything of it called from this module.
pub(super) fn settle(value: Result<JsValue, JsValue>) -> JsFuture {
    JsFuture::from(match value.and_then(|v| promise_race(&Array::of1(&v))) {
        Ok(p) => p,
        Err(e) => Promise::reject(&e),
    })
}

/// `target[name](arg)` (an extra `undefined` for a method without arguments): a throwing getter,
/// a missing method or a throwing one is an `Err`.
pub(super) fn call(target: &JsValue, name: &str, arg: &JsValue) -> Result<JsValue, JsValue> {
    let method = Reflect::get(target, &name.into())?;
    method.unchecked_ref::<Function>().call1(target, arg)
}

/// The next chunk of a body's reader: `read()` settled, then this; `None` at the end.
pub(super) fn read(reader: &JsValue) -> JsFuture {
    settle(call(reader, "read", &JsValue::UNDEFINED))
}

/// A chunk `read()` gave, `None` at the end: copied by the runtime, so no getter of the chunk's
/// can lie about its length.
pub(super) fn chunk_of(chunk: JsValue) -> Result<Option<Uint8Array>, JsValue> {
    let get = |key: &str| Reflect::get(&chunk, &key.into()).unwrap_or_default();
    if get("done").is_truthy() {
        return Ok(None);
    }
    let value = get("value");
    match value.is_instance_of::<Uint8Array>() {
        true => Ok(Some(Bytes::new(&value)?.unchecked_into())),
        false => Err("the response body is not a byte stream".into()),
    }
}

/// Cancels the rest of a body (to await: its rejection, a stream that errored meanwhile, left
/// unhandled would end a Node process).
pub(super) fn cancel(reader: &JsValue) -> JsFuture {
    settle(call(reader, "cancel", &JsValue::UNDEFINED))
}

/// The `message` of a thrown value (an `Error`'s, or any object's with a string one), or the
/// value itself when it is a string; read through `Reflect`, which catches a throwing getter.
pub(super) fn message_of(e: &JsValue) -> Option<String> {
    e.as_string()
        .or_else(|| Reflect::get(e, &"message".into()).ok()?.as_string())
}

/// The largest body a wasm32 `Vec` holds (2 GiB - 1): `maxBytes`' default and largest value.
pub(super) const MAX_BODY_BYTES: u32 = i32::MAX as u32;

/// What `input` names: the string, a `URL`'s `href`, a `Request`'s or `Response`'s `url` (a
/// `Response` a script built has none).
fn name_of(input: &JsValue) -> String {
    let get = |key: &str| Reflect::get(input, &key.into()).ok().and_then(|u| u.as_string());
    input
        .as_string()
        .or_else(|| get("href"))
        .or_else(|| {
            get("url").map(|u| {
                if u.is_empty() {
                    "a Response without a URL".into()
                } else {
                    u
                }
            })
        })
        .or_else(|| js_sys::JSON::stringify(input).ok().and_then(|s| s.as_string()))
        .unwrap_or_default()
}

/// `LOAD_FAILED` of what a read threw (out of line: called from many places of `download`).
#[inline(never)]
fn thrown(input: &JsValue, e: JsValue) -> JsValue {
    load_failed(input, &describe(&e))
}

fn load_failed(input: &JsValue, why: &str) -> JsValue {
    failed("LOAD_FAILED", input, why)
}

fn failed(code: &str, input: &JsValue, why: &str) -> JsValue {
    error(code, &format!("could not load {}: {why}", Cut(&name_of(input))))
}

/// `INPUT_TOO_LARGE` of a body over `max` bytes: `declared` is its `Content-Length`, refused
/// unread; `None` when it was read past the limit.
fn too_large(input: &JsValue, declared: Option<u64>, max: u32) -> JsValue {
    let why = match declared {
        Some(n) => format!("its Content-Length, {n} bytes, is over maxBytes ({max} bytes)"),
        None => format!("its body is over maxBytes ({max} bytes)"),
    };
    failed("INPUT_TOO_LARGE", input, &why)
}

/// Whether a `Response`'s `Content-Length` is the length of the body it gives: a fetch framed the
/// body by it, and every header is shown, `Content-Encoding` included (`type` `"basic"`). A
/// cross-origin response's (`"cors"`) may be the compressed length of a body that inflates past it.
/// `Model.follow`'s reads, in JS, apply the same rule (scripts/npm/extend.js `bodyLength`).
fn framed(kind: &JsValue) -> bool {
    kind.as_string().is_some_and(|k| k == "basic")
}

/// Why `fetch` itself failed (with its `cause`: Node's "fetch failed" says no more), and what to
/// do instead where the reason is known: Node's `fetch` reads neither `file:` URLs nor paths.
fn fetch_failed(input: &JsValue, e: &JsValue) -> JsValue {
    let mut why = describe(e);
    if let Some(cause) = Reflect::get(e, &"cause".into()).ok().filter(|c| c.is_object()) {
        why = format!("{why} ({})", describe(&cause));
    }
    let name = name_of(input);
    let file = name.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("file:"));
    if in_node() && (file || contains(&why, "Failed to parse URL")) {
        why.push_str(
            ". Node's fetch cannot read files (no file: URLs, no paths): read the bytes and use \
             Model.fromBytes(readFileSync(path)) instead (import { readFileSync } from 'node:fs')",
        );
    } else if file {
        why.push_str(". fetch cannot read file: URLs here: serve the artifact over http(s), or pass its bytes to Model.fromBytes");
    }
    load_failed(input, &why)
}

/// `haystack.contains(needle)` without core's two-way `StrSearcher` (2.7 KB of `skedge/lite` with
/// its slice-error path) for the one short message searched here.
fn contains(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Whether this runs in Node (`process.versions.node`; Deno and Bun answer too, and their
/// fetch reads `file:` URLs, so they never get here with one).
fn in_node() -> bool {
    let get = |v: &JsValue, k: &str| Reflect::get(v, &k.into()).ok().filter(|v| v.is_object());
    get(&js_sys::global(), "process")
        .and_then(|p| get(&p, "versions"))
        .and_then(|v| Reflect::get(&v, &"node".into()).ok())
        .is_some_and(|n| n.is_string())
}

/// The message of a thrown JS value, cut: a runtime's may quote the whole URL ("Failed to parse
/// URL from …").
fn describe(e: &JsValue) -> String {
    let message = message_of(e).unwrap_or_else(|| "unknown error".into());
    Cut(&message).to_string()
}

/// `fetch` the body, of at most `max` bytes, with `on_progress` chunk by chunk, calling
/// `on_progress({ loaded, total })` after each. A `Response` (from the Cache API, say) is read as
/// it is. A declared length over `max` is refused before the body is read where it is the body's
/// own (`framed`); a body that passes `max` as it streams is cancelled there.
pub(super) async fn download(
    input: &JsValue,
    init: &JsValue,
    on_progress: Option<&Function>,
    max: u32,
) -> Result<Vec<u8>, JsValue> {
    if input.is_undefined() || input.is_null() {
        return Err(invalid("load() needs a URL, a Request, a Response or the bytes"));
    }
    let fail = |e: JsValue| thrown(input, e);
    let response = if input.is_instance_of::<Response>() {
        input.clone()
    } else {
        let failed = |e: JsValue| fetch_failed(input, &e);
        settle(fetch(input, init).map(Into::into)).await.map_err(failed)?
    };
    // A getter that throws reads as `undefined` (a Response-like object without it): `ok` then
    // refuses the load, a missing header or `type` reads the body chunk by chunk.
    let get = |key: &str| Reflect::get(&response, &key.into()).unwrap_or_default();
    if !get("ok").is_truthy() {
        // The URL once: the response's only when a redirect made it another.
        let redirected = match get("redirected").is_truthy() {
            true => format!(
                " (redirected to {})",
                Cut(&get("url").as_string().unwrap_or_default())
            ),
            false => String::new(),
        };
        let status = get("status").as_f64().unwrap_or(0.0) as u16;
        return Err(load_failed(input, &format!("HTTP {status}{redirected}")));
    }
    let headers = get("headers");
    let header = |name: &str| call(&headers, "get", &name.into()).ok()?.as_string();
    // A content-encoded body's length is the encoded one: what it inflates to is only counted.
    let encoded = header("content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let total = match header("content-length") {
        Some(n) if !encoded => n.trim().parse::<u64>().ok(),
        _ => None,
    };
    // Refused before the body is read only when the length is the body's own (`framed`): a
    // cross-origin one's may be the compressed length of a body that inflates to less than `max`
    // (and one under `max` proves nothing either: the read below is cut at `max`). Its reader is
    // cancelled (the connection closed) below.
    let framed = framed(&get("type"));
    let refused = total
        .filter(|&n| framed && n > u64::from(max))
        .map(|n| too_large(input, Some(n), max));
    let progress = |loaded: usize| -> Result<(), JsValue> {
        if let Some(f) = on_progress {
            let p = Object::new();
            put(&p, "loaded", &JsValue::from(loaded as f64));
            put(
                &p,
                "total",
                &total.map_or(JsValue::NULL, |n| JsValue::from(n as f64)),
            );
            f.call1(&JsValue::UNDEFINED, &p)?;
        }
        Ok(())
    };
    // Without a progress callback, a body of a known length (a same-origin or Node fetch, a Cache
    // API entry of one) is read whole by the host (`arrayBuffer()`: one native read, no promise per
    // chunk crossing into wasm) and copied into wasm memory once. Any other (no length,
    // content-encoded, cross-origin, built by a script, a runtime's without `type`) is read chunk
    // by chunk, so that it stops at `max`.
    let whole = refused.is_none() && on_progress.is_none() && total.is_some() && framed;
    // `body` is not even asked for a whole read: Blink makes its stream object on first access.
    let body = if whole { JsValue::NULL } else { get("body") };
    let reader = match body.is_undefined() || body.is_null() {
        true => None,
        false => Some(call(&body, "getReader", &JsValue::UNDEFINED).map_err(fail)?),
    };
    let Some(reader) = reader else {
        if let Some(e) = refused {
            return Err(e);
        }
        let buf = settle(call(&response, "arrayBuffer", &JsValue::UNDEFINED));
        let buf = Bytes::new(&buf.await.map_err(fail)?).map_err(fail)?;
        if buf.length() > max {
            return Err(too_large(input, None, max));
        }
        let bytes = super::model::copy_in(&buf)?;
        progress(bytes.len())?;
        return Ok(bytes);
    };
    // The chunks stay JS arrays until the end: joined by the host and copied into wasm memory
    // once, instead of a zero-filled `Vec` grown and written chunk by chunk.
    let mut chunks = Vec::new();
    let mut loaded = 0u64;
    let read: Result<(), JsValue> = match refused {
        Some(e) => Err(e),
        None => loop {
            if let Err(e) = progress(loaded as usize) {
                break Err(e);
            }
            let value = match read(&reader).await.and_then(chunk_of) {
                Ok(Some(value)) => value,
                Ok(None) => break Ok(()),
                Err(e) => break Err(fail(e)),
            };
            loaded += u64::from(value.length());
            if loaded > u64::from(max) {
                break Err(too_large(input, None, max));
            }
            chunks.push(value);
        },
    };
    // Whatever stopped the read, the rest of the body is cancelled.
    if let Err(e) = read {
        let _ = cancel(&reader).await;
        return Err(e);
    }
    // Each chunk copied once, straight into wasm memory.
    let mut bytes = super::model::zeroed(loaded as usize)?;
    let mut at = 0;
    for c in &chunks {
        let n = c.length() as usize;
        c.copy_to(&mut bytes[at..at + n]);
        at += n;
    }
    Ok(bytes)
}
