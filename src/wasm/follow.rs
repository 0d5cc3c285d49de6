//! `Model.follow`'s one step in Rust (FORMAT.md §5): reading a publish pointer and checking its
//! fields, its Ed25519 signature over [`Pointer::signed_message`] and its generation, so the
//! signed bytes have one encoder. Polling, fetching and swapping are host I/O, written in JS
//! (scripts/npm/extend.js).

use js_sys::{JsString, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::model::load_options;
use super::{core_error, option, option_string, options_object, type_name};
use crate::error::Quoted;
use crate::pointer::Pointer;
use crate::Error;

/// `Follower.explain`, merged into the interface where models explain (not in `skedge/lite`).
#[cfg(feature = "explain")]
#[wasm_bindgen(typescript_custom_section)]
const FOLLOWER_EXPLAIN: &'static str = r#"
export interface Follower {
  explain(text: TextInput, k?: number): Explanation;
}
"#;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A publish pointer (FORMAT.md §5), with its JSON field names. */
export interface Pointer {
  pointer_version: number;
  model: string;
  alias: string;
  version: string;
  run_id: string;
  /** Hex sha256 of the artifact the pointer names. */
  sha256: string;
  size: number;
  integrity: string;
  /** `blobs/sha256/<sha256>.skedge`, under the same root as `pointers/`. */
  blob: string;
  manifest: string;
  format_version: number;
  /** Grows by one at each publish: a lower one is refused (`POINTER_STALE`). */
  generation: number;
  previous_sha256: string;
  previous_generation: number;
  published_at: string;
  signature: string | null;
}

/** A Workers R2 binding (strongly consistent; never KV) and the key of a pointer in it. */
export interface R2PointerSource {
  bucket: { get(key: string, options?: unknown): Promise<unknown> };
  /** `[<prefix>/]pointers/<model>/<alias>.json`: the pointer must name that model and alias;
   * blobs are read under `<prefix>/`. */
  key: string;
}

export interface FollowOptions {
  /** Pinned Ed25519 public key(s): the pointer and the artifact must both be signed by one,
   * else `SIGNATURE_MISSING` / `SIGNATURE_INVALID`. */
  publicKey?: Key | readonly Key[];
  /** Seconds between two reads of the pointer (default 60): a number in (0, 2147483] (a timer's
   * range, 2^31 − 1 ms, in seconds; fractions allowed), else `INVALID_INPUT`. */
  intervalSeconds?: number;
  /** Seconds a read (the pointer's, the blob's: a URL's request, or an R2 `get`), its body
   * included, may take before it fails as `LOAD_FAILED` (default 60): as `intervalSeconds`, a
   * number in (0, 2147483], else `INVALID_INPUT`. */
  timeoutSeconds?: number;
  /** The largest blob fetched, in bytes: an integer from 1 to 2^31 − 1 (the default: what
   * WebAssembly holds). A pointer naming a larger one is refused (`INPUT_TOO_LARGE`) before its
   * blob is requested; a blob is never read past the size its pointer names. */
  maxBytes?: number;
  /** Called after a new version was verified and swapped in. */
  onUpdate?: (info: ModelInfo, pointer: Pointer) => void;
  /** Called with each refusal (a coded `SkedgeError`) or failed read (`LOAD_FAILED`); the served
   * version stays. Also with what `onUpdate` threw: an `Error` as it is, anything else (a string,
   * `undefined`) wrapped in an `Error` whose `cause` it is, so that `error` is always an `Error`.
   * What `onError` itself throws is dropped. */
  onError?: (error: Error) => void;
  /** The model followed: the first pointer must name it, else `POINTER_INVALID`. Default: the
   * `<model>` of a source whose path or key ends in `pointers/<model>/<alias>.json` (URL path
   * segments percent-decoded), else any; one contradicting the source's is `INVALID_INPUT`.
   * Later pointers must name the first one's model. */
  model?: string;
  /** The alias followed (`production`), as `model`: the first pointer must name it, default the
   * source's `<alias>`; later pointers must name the first one's. */
  alias?: string;
}

/** `Model.follow`'s handle: every call uses the version being served (the methods of `Model`). */
export interface Follower {
  predict(text: TextInput): Prediction;
  predictBatch(texts: readonly TextInput[], options?: { columnar?: false }): Prediction[];
  predictBatch(texts: readonly TextInput[], options: { columnar: true }): Columnar;
  predictBatch(texts: readonly TextInput[], options?: PredictBatchOptions): Prediction[] | Columnar;
  info(): ModelInfo;
  /** The pointer being served. */
  readonly pointer: Pointer;
  /** Reads the pointer now (in Workers, from `ctx.waitUntil`: timers stop between requests);
   * resolves to whether the version changed, rejects with the refusal. */
  refresh(): Promise<boolean>;
  /** Stops polling and frees the served model; later calls throw `MODEL_FREED` (twice: a no-op). */
  dispose(): void;
  /** `dispose()`, for `using`: set only where the runtime defines `Symbol.dispose` (Node ≥ 18.18
   * does; an older browser may not: call `dispose()` there). */
  [Symbol.dispose](): void;
}

// Written in JS (scripts/npm/extend.js).
export declare namespace Model {
  /** Serves the version a publish pointer names and follows it: read every `intervalSeconds`
   * (ETag / If-None-Match), a new version is fetched by its blob key, verified (size, sha256,
   * signatures, generation) and swapped between two predictions. A pointer of another model or
   * alias than the one followed (`model`, `alias`, the source's key, then the first pointer's) is
   * `POINTER_INVALID`. Rejects when the first version is refused. */
  function follow(source: string | URL | R2PointerSource, options?: FollowOptions): Promise<Follower>;
}
"#;

/// Larger than any pointer (a few hundred bytes): refused before parsing.
const MAX_POINTER_CHARS: u32 = 64 * 1024;

const CHECK_POINTER_OPTIONS: &[&str] = &["publicKey", "generation", "sha256", "model", "alias"];

fn pointer_invalid(why: String) -> JsValue {
    core_error(Error::PointerInvalid(why))
}

/// The JSON's fields, in [`Pointer`]'s order; any other key is refused, as the CLI's serde does.
const FIELDS: [&str; 16] = [
    "pointer_version",
    "model",
    "alias",
    "version",
    "run_id",
    "sha256",
    "size",
    "integrity",
    "blob",
    "manifest",
    "format_version",
    "generation",
    "previous_sha256",
    "previous_generation",
    "published_at",
    "signature",
];

/// Read field by field rather than through serde_wasm_bindgen's deserializer: that one alone
/// would add about 8 KB gzip to the package for a 16-field document.
fn pointer_of(value: &JsValue) -> Result<Pointer, JsValue> {
    let Some(o) = value
        .dyn_ref::<Object>()
        .filter(|_| !js_sys::Array::is_array(value))
    else {
        return Err(pointer_invalid("not a JSON object".into()));
    };
    for key in Object::keys(o).iter() {
        let key = key.as_string().unwrap_or_default();
        if !FIELDS.contains(&key.as_str()) {
            return Err(pointer_invalid(format!("unknown field {}", Quoted(&key))));
        }
    }
    let get = |name: &str| Reflect::get(o, &name.into()).unwrap_or(JsValue::UNDEFINED);
    let string = |name: &str| {
        get(name)
            .as_string()
            .ok_or_else(|| pointer_invalid(format!("{name} must be a string")))
    };
    let uint = |name: &str| {
        get(name)
            .as_f64()
            .filter(|v| v.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(v))
            .map(|v| v as u64)
            .ok_or_else(|| pointer_invalid(format!("{name} must be an integer from 0 to 2^53 - 1")))
    };
    let small =
        |name: &str| u32::try_from(uint(name)?).map_err(|_| pointer_invalid(format!("{name} is too large")));
    let signature = get("signature");
    Ok(Pointer {
        pointer_version: small("pointer_version")?,
        model: string("model")?,
        alias: string("alias")?,
        version: string("version")?,
        run_id: string("run_id")?,
        sha256: string("sha256")?,
        size: uint("size")?,
        integrity: string("integrity")?,
        blob: string("blob")?,
        manifest: string("manifest")?,
        format_version: small("format_version")?,
        generation: uint("generation")?,
        previous_sha256: string("previous_sha256")?,
        previous_generation: uint("previous_generation")?,
        published_at: string("published_at")?,
        signature: if signature.is_null() || signature.is_undefined() {
            None
        } else {
            Some(string("signature")?)
        },
    })
}

/// `checkPointer(text, { publicKey, generation, sha256, model, alias })`: the pointer as a plain
/// object (the JSON's field names), or a coded error: `POINTER_INVALID` (not a pointer, fields
/// contradict, or it names another `model` / `alias` than the ones followed),
/// `SIGNATURE_MISSING` / `SIGNATURE_INVALID` when `publicKey` is pinned, `POINTER_STALE` when
/// its generation is below `generation` (the one served), or equal to it for another `sha256`.
#[wasm_bindgen(js_name = checkPointer)]
pub fn check_pointer(text: &JsValue, options: Option<Object>) -> Result<JsValue, JsValue> {
    let options = options_object(options, "checkPointer", CHECK_POINTER_OPTIONS)?;
    let options = options.as_ref();
    let Some(s) = text.dyn_ref::<JsString>() else {
        return Err(pointer_invalid(format!(
            "a pointer is JSON text, got {}",
            type_name(text)
        )));
    };
    if s.length() > MAX_POINTER_CHARS {
        return Err(pointer_invalid(format!(
            "{} characters (at most {MAX_POINTER_CHARS})",
            s.length()
        )));
    }
    let value = js_sys::JSON::parse(&String::from(s)).map_err(|_| pointer_invalid("not JSON".into()))?;
    let pointer = pointer_of(&value)?;
    let keys = load_options(options)?.public_keys;
    if keys.is_empty() {
        pointer.check().map_err(core_error)?;
    } else {
        #[cfg(feature = "crypto")]
        pointer.verify(&keys).map_err(core_error)?;
        #[cfg(not(feature = "crypto"))]
        return Err(core_error(Error::FeatureUnavailable {
            feature: "pointer signature verification",
        }));
    }
    // Before the generation: another model's pointer is not an older or newer one of this.
    let [model, alias] = [option_string(options, "model")?, option_string(options, "alias")?];
    pointer
        .check_names(model.as_deref(), alias.as_deref())
        .map_err(core_error)?;
    if let Some(current) = option(options, "generation").and_then(|v| v.as_f64()) {
        let served = option(options, "sha256").and_then(|v| v.as_string());
        let current = current as u64;
        if pointer.generation < current
            || (pointer.generation == current && served.is_some_and(|s| s != pointer.sha256))
        {
            return Err(core_error(Error::PointerStale {
                generation: pointer.generation,
                current,
            }));
        }
    }
    // The checked JSON itself: every key is a field and every field was read.
    Ok(value)
}

#[cfg(all(test, feature = "crypto"))]
mod tests {
    use super::super::to_js;
    use super::*;
    use crate::artifact::crypto::public_key;
    use wasm_bindgen_test::*;

    fn signed(generation: u64) -> String {
        let sha = "ab".repeat(32);
        let mut p = Pointer {
            pointer_version: 1,
            model: "m".into(),
            alias: "production".into(),
            version: "1".into(),
            run_id: String::new(),
            blob: format!("blobs/sha256/{sha}.skedge"),
            manifest: format!("blobs/sha256/{sha}.manifest.json"),
            sha256: sha,
            size: 24,
            integrity: crate::integrity::of_sha256(&[0xab; 32]),
            format_version: 3,
            generation,
            previous_sha256: if generation > 1 {
                "cd".repeat(32)
            } else {
                String::new()
            },
            previous_generation: generation - 1,
            published_at: "2026-12-03T00:00:00Z".into(),
            signature: None,
        };
        p.sign(&[7u8; 32]).unwrap();
        String::from(js_sys::JSON::stringify(&to_js(&p).unwrap()).unwrap())
    }

    fn check(text: &str, generation: Option<f64>) -> Result<JsValue, String> {
        let o = Object::new();
        let key = crate::hex::encode(&public_key(&[7u8; 32]));
        Reflect::set(&o, &"publicKey".into(), &key.into()).unwrap();
        if let Some(g) = generation {
            Reflect::set(&o, &"generation".into(), &g.into()).unwrap();
        }
        check_pointer(&text.into(), Some(o))
            .map_err(|e| Reflect::get(&e, &"code".into()).unwrap().as_string().unwrap())
    }

    #[wasm_bindgen_test]
    fn pointers_are_checked_with_the_core_encoder() {
        let text = signed(2);
        let p = check(&text, Some(1.0)).unwrap();
        assert_eq!(
            Reflect::get(&p, &"generation".into()).unwrap().as_f64(),
            Some(2.0)
        );
        assert_eq!(check(&text, Some(3.0)).unwrap_err(), "POINTER_STALE");
        let tampered = text.replace("\"version\":\"1\"", "\"version\":\"9\"");
        assert_ne!(tampered, text);
        assert_eq!(check(&tampered, None).unwrap_err(), "SIGNATURE_INVALID");
        let unsigned = text.replace(
            &format!("\"{}\"", &text[text.len() - 130..text.len() - 2]),
            "null",
        );
        assert_eq!(check(&unsigned, None).unwrap_err(), "SIGNATURE_MISSING");
        assert_eq!(check("{}", None).unwrap_err(), "POINTER_INVALID");
        assert_eq!(check("nope", None).unwrap_err(), "POINTER_INVALID");
        assert_eq!(check("[1]", None).unwrap_err(), "POINTER_INVALID");
        let fraction = text.replace("\"generation\":2", "\"generation\":2.5");
        assert_ne!(fraction, text);
        assert_eq!(check(&fraction, None).unwrap_err(), "POINTER_INVALID");
        let extra = text.replacen('{', "{\"x\":1,", 1);
        assert_eq!(check(&extra, None).unwrap_err(), "POINTER_INVALID");
    }

    #[wasm_bindgen_test]
    fn pointers_of_another_model_or_alias_are_refused() {
        let text = signed(2);
        let named = |model: Option<&str>, alias: Option<&str>| {
            let o = Object::new();
            for (k, v) in [("model", model), ("alias", alias)] {
                if let Some(v) = v {
                    Reflect::set(&o, &k.into(), &v.into()).unwrap();
                }
            }
            check_pointer(&text.as_str().into(), Some(o)).map_err(|e| {
                let get = |k: &str| Reflect::get(&e, &k.into()).unwrap().as_string().unwrap();
                (get("code"), get("message"))
            })
        };
        named(Some("m"), Some("production")).unwrap();
        named(Some("m"), None).unwrap();
        named(None, Some("production")).unwrap();
        let (code, message) = named(Some("m"), Some("staging")).unwrap_err();
        assert_eq!(code, "POINTER_INVALID");
        assert!(
            message
                .contains(r#"model "m" alias "production", not of the followed model "m" alias "staging""#),
            "{message}"
        );
        assert_eq!(named(Some("other"), None).unwrap_err().0, "POINTER_INVALID");
        // Checked before the generation: another model's pointer is not a stale one of this.
        let o = Object::new();
        Reflect::set(&o, &"alias".into(), &"staging".into()).unwrap();
        Reflect::set(&o, &"generation".into(), &9.into()).unwrap();
        let e = check_pointer(&text.as_str().into(), Some(o)).unwrap_err();
        assert_eq!(
            Reflect::get(&e, &"code".into()).unwrap().as_string().unwrap(),
            "POINTER_INVALID"
        );
        let o = Object::new();
        Reflect::set(&o, &"model".into(), &1.into()).unwrap();
        let e = check_pointer(&text.as_str().into(), Some(o)).unwrap_err();
        assert_eq!(
            Reflect::get(&e, &"code".into()).unwrap().as_string().unwrap(),
            "INVALID_INPUT"
        );
    }
}
