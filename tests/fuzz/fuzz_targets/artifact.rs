//! Arbitrary bytes as an artifact: `from_bytes`, and `from_bytes_with` under every key policy,
//! must return a model or a coded error, never panic; a model that loads must predict. Each input
//! is tried as is and with its checksum recomputed (XXH3-64 or xxHash64, as its flags say), so
//! mutations also reach what the checksum guards (decryption, decoding) instead of stopping at it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skedge::artifact::{FLAG_XXH3, HEADER_LEN};
use skedge::TextClassifier;
use skedge_fuzz::{check_predict, test_options, PROBES};
use xxhash_rust::xxh3::xxh3_64;
use xxhash_rust::xxh64::xxh64;

fuzz_target!(|data: &[u8]| {
    load_all(data);
    if data.len() >= HEADER_LEN {
        let mut fixed = data.to_vec();
        let sum = match u16::from_le_bytes([data[10], data[11]]) & FLAG_XXH3 {
            0 => xxh64(&fixed[HEADER_LEN..], 0),
            _ => xxh3_64(&fixed[HEADER_LEN..]),
        };
        fixed[16..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
        load_all(&fixed);
    }
});

fn load_all(data: &[u8]) {
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
}
