//! Arbitrary bytes as an artifact: `from_bytes`, and `from_bytes_with` under every key policy,
//! must return a model or a coded error, never panic; a model that loads must predict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skedge::TextClassifier;
use skedge_fuzz::{check_predict, test_options, PROBES};

fuzz_target!(|data: &[u8]| {
    let loaded = std::iter::once(TextClassifier::from_bytes(data)).chain(
        test_options()
            .iter()
            .map(|o| TextClassifier::from_bytes_with(data, o)),
    );
    for model in loaded {
        match model {
            Ok(model) => PROBES.iter().for_each(|t| check_predict(&model, t, false)),
            Err(e) => assert!(!e.code().is_empty()),
        }
    }
});
