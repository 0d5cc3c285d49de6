//! Host I/O for `Model.load`: `fetch` and the body, read whole when its length is framed and
//! within `maxBytes`, else chunk by chunk, refused as soon as it passes `maxBytes`.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::error;
use super::invalid;
use super::put;
use crate::error::Cut;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch, catch)]
    pub(super) fn fetch(input: &JsValue, init: &JsValue) -> Result<Promise, JsValue>;

    #[derive(Clone)]
    pub(super) type Response;
    #[wasm_bindgen(method, getter)]
    pub(super) fn ok(this: &Response) -> bool;
    #[wasm_bindgen(method, getter)]
    pub(super) fn status(this: &Response) -> u16;
    #[wasm_bindgen(method, getter)]
    pub(super) fn url(this: &Response) -> String;
    #[wasm_bindgen(method, getter)]
    fn redirected(this: &Response) -> bool;
    /// `"basic"`: fetched, every header shown (same-origin, Node); `"cors"`: a browser's
    /// cross-origin response, which hides `Content-Encoding` unless the server exposes it;
    /// `"default"`: built by a script, its `Content-Length` a header like any other.
    #[wasm_bindgen(method, getter, js_name = type)]
    fn kind(this: &Response) -> JsValue;
    #[wasm_bindgen(method, getter)]
    pub(super) fn headers(this: &Response) -> Headers;
    #[wasm_bindgen(method, getter)]
    pub(super) fn body(this: &Response) -> Option<ReadableStream>;
    #[wasm_bindgen(method, js_name = arrayBuffer)]
    pub(super) fn array_buffer(this: &Response) -> Promise;

    type Headers;
    /// A string or `null`. Taking and returning JS values keeps this import's signature one that
    /// others share (one compiled wrapper per signature: benches/PROFILE.md, "Compile and instantiate").
    #[wasm_bindgen(method)]
    fn get(this: &Headers, name: &JsValue) -> JsValue;

    type ReadableStream;
    /// Throws for a body another reader holds.
    #[wasm_bindgen(method, catch, js_name = getReader)]
    fn get_reader(this: &ReadableStream) -> Result<Reader, JsValue>;

    type Reader;
    #[wasm_bindgen(method)]
    fn read(this: &Reader) -> Promise;
    #[wasm_bindgen(method)]
    fn cancel(this: &Reader) -> Promise;
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
    let message = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into());
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
    let fail = |e: JsValue| load_failed(input, &describe(&e));
    let response: Response = match input.dyn_ref::<Response>() {
        Some(r) => r.clone(),
        None => {
            let failed = |e: JsValue| fetch_failed(input, &e);
            JsFuture::from(fetch(input, init).map_err(failed)?)
                .await
                .map_err(failed)?
                .unchecked_into()
        }
    };
    if !response.ok() {
        // The URL once: the response's only when a redirect made it another.
        let redirected = match response.redirected() {
            true => format!(" (redirected to {})", Cut(&response.url())),
            false => String::new(),
        };
        return Err(load_failed(
            input,
            &format!("HTTP {}{redirected}", response.status()),
        ));
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(&name.into()).as_string();
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
    let framed = framed(&response.kind());
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
    let body = if whole { None } else { response.body() };
    let reader = match body {
        Some(b) => Some(b.get_reader().map_err(fail)?),
        None => None,
    };
    let Some(reader) = reader else {
        if let Some(e) = refused {
            return Err(e);
        }
        let buf = JsFuture::from(response.array_buffer()).await.map_err(fail)?;
        let buf = Uint8Array::new(&buf);
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
            let chunk = match JsFuture::from(reader.read()).await {
                Ok(chunk) => chunk,
                Err(e) => break Err(fail(e)),
            };
            if Reflect::get(&chunk, &"done".into()).is_ok_and(|d| d.is_truthy()) {
                break Ok(());
            }
            let Some(value) = Reflect::get(&chunk, &"value".into())
                .ok()
                .and_then(|v| v.dyn_into::<Uint8Array>().ok())
            else {
                break Err(load_failed(input, "the response body is not a byte stream"));
            };
            loaded += u64::from(value.length());
            if loaded > u64::from(max) {
                break Err(too_large(input, None, max));
            }
            chunks.push(value);
        },
    };
    // Whatever stopped the read, the rest of the body is cancelled, and the cancel awaited: its
    // rejection (a stream that errored meanwhile) left unhandled would end a Node process.
    if let Err(e) = read {
        let _ = JsFuture::from(reader.cancel()).await;
        return Err(e);
    }
    // Each chunk copied once, straight into wasm memory.
    let mut bytes = vec![0; loaded as usize];
    let mut at = 0;
    for c in &chunks {
        let n = c.length() as usize;
        c.copy_to(&mut bytes[at..at + n]);
        at += n;
    }
    Ok(bytes)
}
