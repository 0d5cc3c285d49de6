//! Arbitrary bytes as the postcard body of a well-formed envelope (valid checksum), the way a
//! hostile artifact reaches the decoder and the model validation: a model or an error, never a
//! panic or an allocation out of proportion to the input; a model that loads must predict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skedge::artifact::{self, SealOptions};
use skedge::TextClassifier;
use skedge_fuzz::{check_predict, PROBES};

fuzz_target!(|data: &[u8]| {
    let Ok(bytes) = artifact::seal(data, &SealOptions::default()) else {
        return;
    };
    if let Ok(model) = TextClassifier::from_bytes(&bytes) {
        PROBES.iter().for_each(|t| check_predict(&model, t, false));
        // The body decoded: encoding it again must give a loadable artifact too.
        let body = artifact::from_bytes(&bytes).expect("decoded once");
        let again = artifact::to_bytes(&body).expect("re-encode");
        TextClassifier::from_bytes(&again).expect("re-encoded body loads");
    }
});
