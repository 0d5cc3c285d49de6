//! Arbitrary bytes as the body of a well-formed envelope (valid checksum), the way a hostile
//! artifact reaches the decoder and the model validation: as a format 3 body (manifest and
//! sections: hostile offsets, lengths and table parameters) and as a format 2 body (postcard,
//! converted at load). A model or an error, never a panic or an allocation out of proportion to
//! the input; a model that loads must predict. The loader's manifest reader (without serde) and
//! postcard's must agree on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skedge::artifact::{self, SealOptions, COLUMN_FORMAT_VERSION, FORMAT_VERSION, LEGACY_FORMAT_VERSION};
use skedge::TextClassifier;
use skedge_fuzz::{check_predict, PROBES};

fuzz_target!(|data: &[u8]| {
    if let Some(m) = data.get(4..) {
        let ours = artifact::manifest::take_from_bytes(m);
        let theirs = postcard::take_from_bytes::<artifact::schema::v3::Manifest>(m);
        match (ours, theirs) {
            (Ok((a, rest_a)), Ok((b, rest_b))) => {
                let bytes = |m: &artifact::schema::v3::Manifest| postcard::to_allocvec(m).expect("encodes");
                assert_eq!(bytes(&a), bytes(&b), "the manifest readers disagree");
                assert_eq!(rest_a, rest_b);
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("the manifest readers disagree: {:?} vs {:?}", a.is_ok(), b.is_ok()),
        }
    }
    for version in [FORMAT_VERSION, COLUMN_FORMAT_VERSION, LEGACY_FORMAT_VERSION] {
        let Ok(bytes) = artifact::seal_version(data, &SealOptions::default(), version) else {
            return;
        };
        let Ok(model) = TextClassifier::from_bytes(&bytes) else {
            continue;
        };
        PROBES.iter().for_each(|t| check_predict(&model, t, false));
        // What loaded repacks (decoded and laid out again) into an artifact that loads and
        // predicts the same. Format 2 was converted at load, so it converts again; a format 3
        // body is read lazily at load, and repack may refuse what loading did not decode (a
        // damaged block, an idf index past its values, a repeated term): a coded error.
        let (body, version) = match artifact::body_v3(&bytes, &Default::default()) {
            Ok(repacked) => repacked,
            Err(e) if version != LEGACY_FORMAT_VERSION => {
                assert_eq!(e.code(), "ARTIFACT_CORRUPT", "{e}");
                continue;
            }
            Err(e) => panic!("a loaded format 2 body must convert again: {e}"),
        };
        let again = artifact::seal_version(&body, &SealOptions::default(), version).expect("seal");
        let repacked = TextClassifier::from_bytes(&again).expect("repacked body loads");
        for t in PROBES {
            let (a, b) = (model.predict(t), repacked.predict(t));
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{t:?}");
        }
    }
});
