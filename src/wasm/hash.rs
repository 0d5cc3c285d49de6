//! Digests of artifact bytes computed by the host where it has native code: a synchronous hasher
//! the Node entries register (`node:crypto`), or WebCrypto's `crypto.subtle.digest` on the async
//! `Model.load` path. Where neither exists (a browser's synchronous `fromBytes`) the wasm hashes.
//! The SRI `sha256` and the signature's SHA-512 prehash cost milliseconds per MB in baseline wasm
//! code, microseconds natively. The Node entries also register node:crypto's Ed25519 verification
//! (`setVerifier`): in cold, baseline wasm code one verification costs about 10 ms.

use std::cell::RefCell;

use js_sys::{Function, Promise, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

thread_local! {
    static HOST: RefCell<Option<Function>> = const { RefCell::new(None) };
    static VERIFY: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Registers `verify(publicKey, message, signature) -> boolean` (Ed25519, RFC 8032 pure, each a
/// `Uint8Array` view of wasm memory), called synchronously; `null` unregisters it. A throw or a
/// non-boolean result leaves the verdict to the wasm (`crypto::verify_with`).
#[wasm_bindgen(js_name = setVerifier, skip_typescript)]
pub fn set_verifier(verify: Option<Function>) {
    VERIFY.with(|v| *v.borrow_mut() = verify);
}

/// The registered verifier's verdict, `None` without one (a `crypto::HostVerify`).
#[cfg(feature = "crypto")]
pub(super) fn ed25519(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Option<bool> {
    let f = VERIFY.with(|v| v.borrow().clone())?;
    f.unchecked_ref::<HostVerify>()
        .verify(&JsValue::UNDEFINED, public, message, signature)
        .ok()?
        .as_bool()
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

/// SHA-512 of `bytes` by the host's synchronous hasher, `None` without one.
#[cfg(feature = "crypto")]
pub(super) fn sha512(bytes: &[u8]) -> Option<[u8; 64]> {
    host("sha512", bytes)
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
