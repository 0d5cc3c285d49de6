//! Digests of artifact bytes computed by the host where it has native code: a synchronous hasher
//! the Node entries register (`node:crypto`), or WebCrypto's `crypto.subtle.digest` on the async
//! `Model.load` path. Where neither exists (a browser's synchronous `fromBytes`) the wasm hashes.
//! The SRI `sha256` and the signature's prehash (SHA-256; SHA-512 before flag `0x8`) cost
//! milliseconds per MB in baseline wasm code, microseconds natively. The Node entries also
//! register node:crypto's Ed25519 verification (`setVerifier`), and elsewhere `Model.load` asks
//! WebCrypto's Ed25519 before loading (its verdicts are held for that load, [`Held`]): in cold,
//! baseline wasm code one verification costs about 10 ms.

use std::cell::RefCell;

#[cfg(feature = "crypto")]
use crate::artifact::Prehash;
#[cfg(feature = "crypto")]
use js_sys::Array;
use js_sys::{Function, Promise, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

thread_local! {
    static HOST: RefCell<Option<Function>> = const { RefCell::new(None) };
    static VERIFY: RefCell<Option<Function>> = const { RefCell::new(None) };
    #[cfg(feature = "crypto")]
    static VERDICTS: RefCell<Option<Verdicts>> = const { RefCell::new(None) };
}

/// Registers `verify(publicKey, message, signature) -> boolean` (Ed25519, RFC 8032 pure, each a
/// `Uint8Array` view of wasm memory), called synchronously; `null` unregisters it. A throw or a
/// non-boolean result leaves the verdict to the wasm (`crypto::verify_with`).
#[wasm_bindgen(js_name = setVerifier, skip_typescript)]
pub fn set_verifier(verify: Option<Function>) {
    VERIFY.with(|v| *v.borrow_mut() = verify);
}

/// The host's verdict (a `crypto::HostVerify`): the registered verifier's, else one WebCrypto
/// gave on these very bytes for the load in progress ([`Held`]), else `None` (the wasm decides).
#[cfg(feature = "crypto")]
pub(super) fn ed25519(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Option<bool> {
    let Some(f) = VERIFY.with(|v| v.borrow().clone()) else {
        return VERDICTS.with(|v| {
            let v = v.borrow();
            let v = v
                .as_ref()
                .filter(|v| v.message == message && v.signature == *signature)?;
            v.by_key
                .iter()
                .find(|(key, _)| key == public)
                .map(|&(_, valid)| valid)
        });
    };
    f.unchecked_ref::<HostVerify>()
        .verify(&JsValue::UNDEFINED, public, message, signature)
        .ok()?
        .as_bool()
}

/// WebCrypto's Ed25519 verdicts on one signature over one message, per pinned key.
#[cfg(feature = "crypto")]
pub(super) struct Verdicts {
    message: Vec<u8>,
    signature: [u8; 64],
    by_key: Vec<([u8; 32], bool)>,
}

/// WebCrypto's verdicts (`crypto.subtle.verify`, "Ed25519") on `signature` over `message` for each
/// of `keys`, for `Model.load` to hold while it loads; none where a verifier is registered (it
/// decides) or where WebCrypto has no Ed25519 (older browsers, insecure contexts: the wasm decides).
#[cfg(feature = "crypto")]
pub(super) async fn verdicts(keys: &[[u8; 32]], message: &[u8], signature: &[u8; 64]) -> Option<Verdicts> {
    if VERIFY.with(|v| v.borrow().is_some()) {
        return None;
    }
    let mut by_key = Vec::new();
    for public in keys {
        let Some(valid) = subtle_ed25519(public, message, signature).await else {
            break;
        };
        by_key.push((*public, valid));
    }
    Some(Verdicts {
        message: message.to_vec(),
        signature: *signature,
        by_key,
    })
}

#[cfg(feature = "crypto")]
async fn subtle_ed25519(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Option<bool> {
    let ed25519 = JsValue::from("Ed25519");
    let usages = Array::of1(&"verify".into());
    let import = subtle_import_key(
        &"raw".into(),
        &Uint8Array::from(&public[..]),
        &ed25519,
        false,
        &usages,
    );
    let key = JsFuture::from(import.ok()?).await.ok()?;
    let verify = subtle_verify(
        &ed25519,
        &key,
        &Uint8Array::from(&signature[..]),
        &Uint8Array::from(message),
    );
    JsFuture::from(verify.ok()?).await.ok()?.as_bool()
}

/// Holds WebCrypto's verdicts for [`ed25519`] during one synchronous load, and drops them after
/// it, whatever its outcome (a later load never sees them).
#[cfg(feature = "crypto")]
pub(super) struct Held;

#[cfg(feature = "crypto")]
impl Held {
    pub(super) fn new(verdicts: Option<Verdicts>) -> Held {
        VERDICTS.with(|v| *v.borrow_mut() = verdicts);
        Held
    }
}

#[cfg(feature = "crypto")]
impl Drop for Held {
    fn drop(&mut self) {
        VERDICTS.with(|v| *v.borrow_mut() = None);
    }
}

/// Registers `hash(algorithm, bytes) -> Uint8Array` (`algorithm`: "sha256" or "sha512", node's
/// names), called synchronously on a view of the bytes; `null` unregisters it.
#[wasm_bindgen(js_name = setHasher, skip_typescript)]
pub fn set_hasher(hash: Option<Function>) {
    HOST.with(|h| *h.borrow_mut() = hash);
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(extends = Function)]
    type HostHash;
    /// `&[u8]` crosses as a view of wasm memory: the host hashes in place, no copy.
    #[wasm_bindgen(method, js_name = call, catch)]
    fn hash(this: &HostHash, this_arg: &JsValue, algorithm: &str, data: &[u8]) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(extends = Function)]
    type HostVerify;
    #[wasm_bindgen(method, js_name = call, catch)]
    fn verify(
        this: &HostVerify,
        this_arg: &JsValue,
        public: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<JsValue, JsValue>;

    /// `algorithm` as a JS string: `(externref, externref) -> externref` is a signature other
    /// imports share (one compiled wrapper per signature: benches/PROFILE.md, "Compile and instantiate").
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = digest, catch)]
    fn subtle_digest(algorithm: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;
}

#[cfg(feature = "crypto")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
    fn subtle_import_key(
        format: &JsValue,
        key: &Uint8Array,
        algorithm: &JsValue,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = verify, catch)]
    fn subtle_verify(
        algorithm: &JsValue,
        key: &JsValue,
        signature: &Uint8Array,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;
}

fn host<const N: usize>(algorithm: &str, bytes: &[u8]) -> Option<[u8; N]> {
    let f = HOST.with(|h| h.borrow().clone())?;
    let out = f
        .unchecked_ref::<HostHash>()
        .hash(&JsValue::UNDEFINED, algorithm, bytes)
        .ok()?;
    let out = out.dyn_into::<Uint8Array>().ok()?;
    let mut digest = [0u8; N];
    (out.length() as usize == N).then(|| out.copy_to(&mut digest))?;
    Some(digest)
}

/// SHA-256 of `bytes`: the host's when registered, else computed here.
pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    host("sha256", bytes).unwrap_or_else(|| Sha256::digest(bytes).into())
}

/// A signature's prehash of a stored body by the host's synchronous hasher, `None` without one.
#[cfg(feature = "crypto")]
pub(super) fn prehash(prehash: Prehash, body: &[u8]) -> Option<Vec<u8>> {
    match prehash {
        Prehash::Sha256 => host::<32>("sha256", body).map(|d| d.to_vec()),
        Prehash::Sha512 => host::<64>("sha512", body).map(|d| d.to_vec()),
    }
}

/// [`prehash`] by the synchronous hasher, else WebCrypto.
#[cfg(feature = "crypto")]
pub(super) async fn prehash_async(prehash: Prehash, body: &[u8]) -> Option<Vec<u8>> {
    match prehash {
        Prehash::Sha256 => digest::<32>("sha256", body).await.map(|d| d.to_vec()),
        Prehash::Sha512 => digest::<64>("sha512", body).await.map(|d| d.to_vec()),
    }
}

/// A digest by the host: the synchronous hasher, else WebCrypto (`"SHA-256"`, `"SHA-512"`);
/// `None` where there is neither (WebCrypto is missing from insecure browser contexts).
pub(super) async fn digest<const N: usize>(algorithm: &str, bytes: &[u8]) -> Option<[u8; N]> {
    let name = if algorithm == "sha256" {
        "SHA-256"
    } else {
        "SHA-512"
    };
    if let Some(d) = host(algorithm, bytes) {
        return Some(d);
    }
    // A copy: the digest runs after this call returns, when wasm memory may have grown.
    let promise = subtle_digest(&name.into(), &Uint8Array::from(bytes)).ok()?;
    let buffer = JsFuture::from(promise).await.ok()?;
    let out = Uint8Array::new(&buffer);
    let mut digest = [0u8; N];
    (out.length() as usize == N).then(|| out.copy_to(&mut digest))?;
    Some(digest)
}
