//! Host I/O for `Model.load`: `fetch` and the body read chunk by chunk with progress.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::error;
use super::invalid;

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
    pub(super) fn headers(this: &Response) -> Headers;
    #[wasm_bindgen(method, getter)]
    pub(super) fn body(this: &Response) -> Option<ReadableStream>;
    #[wasm_bindgen(method, js_name = arrayBuffer)]
    pub(super) fn array_buffer(this: &Response) -> Promise;

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

/// `fetch` the body chunk by chunk, calling `on_progress({ loaded, total })` after each. A
/// `Response` (from the Cache API, say) is read as it is.
pub(super) async fn download(
    input: &JsValue,
    init: &JsValue,
    on_progress: Option<&Function>,
) -> Result<Vec<u8>, JsValue> {
    if input.is_undefined() || input.is_null() {
        return Err(invalid("load() needs a URL, a Request or a Response"));
    }
    let fail = |e: JsValue| load_failed(input, &describe(&e));
    let response: Response = match input.dyn_ref::<Response>() {
        Some(r) => r.clone(),
        None => JsFuture::from(fetch(input, init).map_err(fail)?)
            .await
            .map_err(fail)?
            .unchecked_into(),
    };
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
