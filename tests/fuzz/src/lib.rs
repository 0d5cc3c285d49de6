//! Shared by the fuzz targets: the test keys of tests/golden, the parity fixture models, and the
//! invariants every loaded model must keep on any text.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use skedge::artifact::crypto::{self, KeyKind};
use skedge::artifact::schema::Classes;
use skedge::artifact::LoadOptions;
use skedge::interchange::Interchange;
use skedge::TextClassifier;

/// The main crate's directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_key(name: &str, kind: KeyKind) -> [u8; crypto::KEY_LEN] {
    let text = std::fs::read_to_string(root().join("tests/golden").join(name)).expect("test key");
    crypto::decode_key(&text, kind).expect("valid test key")
}

/// The public key of tests/golden's signing key (`test-signing.key`).
pub fn test_public_key() -> [u8; crypto::KEY_LEN] {
    static KEY: OnceLock<[u8; crypto::KEY_LEN]> = OnceLock::new();
    *KEY.get_or_init(|| read_key("test-signing.pub", KeyKind::SigningPublic))
}

/// Load options with the test keys of tests/golden (pinned public key and/or decryption key).
pub fn test_options() -> &'static [LoadOptions; 3] {
    static OPTIONS: OnceLock<[LoadOptions; 3]> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let public = test_public_key();
        let key = read_key("test-encryption.key", KeyKind::Encryption);
        [
            LoadOptions::default().public_key(public),
            LoadOptions::default().decryption_key(key),
            LoadOptions::default().public_key(public).decryption_key(key),
        ]
    })
}

thread_local! {
    // `TextClassifier` keeps scratch buffers in a RefCell: one set of models per thread, loaded
    // once (libFuzzer runs the target on one thread).
    static MODELS: &'static [TextClassifier] = Box::leak(load_models().into_boxed_slice());
}

/// Every parity fixture model (tests/fixtures/cases/*.interchange.json) and the golden tiny one:
/// word, char and char_wb analyzers, accents, hashing, unions, every classifier.
pub fn models() -> &'static [TextClassifier] {
    MODELS.with(|m| *m)
}

fn load_models() -> Vec<TextClassifier> {
    {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/cases"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.retain(|p| p.to_string_lossy().ends_with(".interchange.json"));
        paths.sort();
        let mut models = vec![TextClassifier::from_bytes(
            &std::fs::read(root().join("tests/golden/tiny.skedge")).expect("golden"),
        )
        .expect("golden loads")];
        for p in paths {
            let doc: Interchange =
                serde_json::from_str(&std::fs::read_to_string(&p).expect("fixture")).expect("interchange");
            let body = doc.into_body().expect("valid interchange");
            models.push(TextClassifier::from_body(body).expect("fixture loads"));
        }
        models
    }
}

fn n_classes(c: &Classes) -> usize {
    match c {
        Classes::Int(v) => v.len(),
        Classes::Str(v) => v.len(),
    }
}

/// Predicts `text` and checks what must hold for any model and any text: a label among the
/// classes and the same bits when asked again (the scratch buffers carry nothing from one call to
/// the next). For a `sane` model (the real fixtures, not fuzzer-made parameters, which may be NaN
/// or overflow to infinity) also probabilities in [0, 1] that sum to 1.
pub fn check_predict(model: &TextClassifier, text: &str, sane: bool) {
    let Ok(p) = model.predict(text) else { return };
    assert!(
        p.label < n_classes(model.classes()),
        "label {} out of range",
        p.label
    );
    if let Some(proba) = p.proba.as_ref().filter(|_| sane) {
        assert_eq!(proba.len(), n_classes(model.classes()));
        for &v in proba {
            assert!((0.0..=1.0 + 1e-9).contains(&v), "probability {v}");
        }
        let sum: f64 = proba.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "probabilities sum to {sum}");
    }
    let _ = model.predict("an unrelated text in between, ΣΊΣΥΦΟΣ");
    let again = model.predict(text).expect("second call");
    assert_eq!(p.label, again.label);
    assert_eq!(p.decision.len(), again.decision.len());
    assert!(p
        .decision
        .iter()
        .zip(&again.decision)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

/// Texts the artifact targets predict with whatever they loaded.
pub const PROBES: [&str; 3] = ["good, not bad at all", "", "Ünïcödé ΟΔΟΣ çà et là — 😀"];
