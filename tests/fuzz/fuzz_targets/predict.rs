//! Arbitrary bytes as text (`predict` on bytes-as-text): the first byte picks one of the parity
//! fixture models, the rest is the text (invalid UTF-8 replaced, as a JS string would arrive).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skedge_fuzz::{check_predict, models};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let models = models();
    let model = &models[usize::from(pick) % models.len()];
    let text = String::from_utf8_lossy(text);
    let _ = model.analyze(&text);
    let _ = model.transform(&text);
    check_predict(model, &text, true);
});
