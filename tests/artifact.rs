//! The artifact envelope: byte-golden encoding and a rejection test for every way bytes can be wrong.

use skedge::artifact::example::tiny;
use skedge::artifact::schema::*;
use skedge::artifact::{self, FORMAT_VERSION, HEADER_LEN, MAGIC};
use skedge::{Error, TextClassifier};

#[test]
fn encoding_is_byte_golden() {
    let bytes = artifact::to_bytes(&tiny()).unwrap();
    if std::env::var_os("SKEDGE_BLESS").is_some() {
        std::fs::write("tests/golden/tiny.skedge", &bytes).unwrap();
    }
    let golden = std::fs::read("tests/golden/tiny.skedge").unwrap();
    assert_eq!(
        bytes, golden,
        "the encoding changed: if deliberate, bump FORMAT_VERSION and regenerate tests/golden/tiny.skedge"
    );
    assert_eq!(artifact::from_bytes(&golden).unwrap(), tiny());
}

#[test]
fn tiny_model_predicts() {
    let model = TextClassifier::from_bytes(&artifact::to_bytes(&tiny()).unwrap()).unwrap();
    let p = model.predict("GOOD, great!").unwrap();
    assert_eq!(p.label, 1);
    let p = model.predict("bad").unwrap();
    assert_eq!(p.label, 0);
    assert_eq!(p.decision, vec![-2.0 + 0.25]);
    let p = model.predict("").unwrap();
    assert_eq!(p.decision, vec![0.25]);
}

fn bytes() -> Vec<u8> {
    artifact::to_bytes(&tiny()).unwrap()
}

#[test]
fn rejects_short_header() {
    for n in [0, 1, 8, HEADER_LEN - 1] {
        assert_eq!(
            TextClassifier::from_bytes(&bytes()[..n]).unwrap_err(),
            Error::Truncated {
                expected: HEADER_LEN as u64,
                found: n as u64
            }
        );
    }
}

#[test]
fn rejects_bad_magic() {
    let mut b = bytes();
    b[1] = b's';
    assert_eq!(TextClassifier::from_bytes(&b).unwrap_err(), Error::BadMagic);
    assert_eq!(
        TextClassifier::from_bytes(b"{\"format\": 1}").unwrap_err().code(),
        "ARTIFACT_CORRUPT"
    );
}

#[test]
fn rejects_future_version() {
    let mut b = bytes();
    b[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let e = TextClassifier::from_bytes(&b).unwrap_err();
    assert_eq!(
        e,
        Error::UnsupportedFormatVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    assert_eq!(e.code(), "ARTIFACT_VERSION_UNSUPPORTED");
}

#[test]
fn rejects_unknown_flags() {
    let mut b = bytes();
    b[11] = 0x80;
    assert_eq!(
        TextClassifier::from_bytes(&b).unwrap_err(),
        Error::UnsupportedFlags { found: 0x8000 }
    );
}

#[test]
fn rejects_truncated_body_and_trailing_bytes() {
    let b = bytes();
    let e = TextClassifier::from_bytes(&b[..b.len() - 1]).unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e:?}");
    let mut longer = b.clone();
    longer.push(0);
    assert_eq!(
        TextClassifier::from_bytes(&longer).unwrap_err(),
        Error::TrailingBytes { extra: 1 }
    );
}

#[test]
fn rejects_huge_declared_length_without_allocating() {
    let mut b = bytes();
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        TextClassifier::from_bytes(&b).unwrap_err(),
        Error::Truncated { .. }
    ));
}

#[test]
fn rejects_checksum_mismatch() {
    let mut b = bytes();
    let last = b.len() - 1;
    b[last] ^= 0x40;
    assert!(matches!(
        TextClassifier::from_bytes(&b).unwrap_err(),
        Error::ChecksumMismatch { .. }
    ));
}

/// Re-seals a tampered body with a valid checksum, as a hostile (not a damaged) artifact would be.
fn reseal(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh64::xxh64(body, 0).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn every_bit_flip_and_truncation_is_an_error_not_a_panic() {
    let b = bytes();
    for i in 0..b.len() * 8 {
        let mut f = b.clone();
        f[i / 8] ^= 1 << (i % 8);
        assert!(
            TextClassifier::from_bytes(&f).is_err(),
            "bit {i} flipped was accepted"
        );
    }
    for n in 0..b.len() {
        assert!(
            TextClassifier::from_bytes(&b[..n]).is_err(),
            "truncation to {n} accepted"
        );
    }
}

#[test]
fn hostile_resealed_bodies_never_panic() {
    // With a valid checksum, a flipped bit reaches the decoder and the validator: each must either
    // load a consistent model or fail with a coded error.
    let body = bytes()[HEADER_LEN..].to_vec();
    for i in 0..body.len() * 8 {
        let mut f = body.clone();
        f[i / 8] ^= 1 << (i % 8);
        if let Ok(model) = TextClassifier::from_bytes(&reseal(&f)) {
            let _ = model.predict("good bad great ΟΔΟΣ");
        }
    }
    for n in 0..body.len() {
        assert!(TextClassifier::from_bytes(&reseal(&body[..n])).is_err());
    }
}

#[test]
fn rejects_inconsistent_models() {
    type Tamper = Box<dyn Fn(&mut Body)>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "coef columns",
            Box::new(|b| {
                if let Classifier::Linear(l) = &mut b.pipeline.classifier {
                    l.coef.cols = 4;
                }
            }),
        ),
        (
            "coef data",
            Box::new(|b| {
                if let Classifier::Linear(l) = &mut b.pipeline.classifier {
                    l.coef.data.pop();
                }
            }),
        ),
        (
            "intercept",
            Box::new(|b| {
                if let Classifier::Linear(l) = &mut b.pipeline.classifier {
                    l.intercept.push(1.0);
                }
            }),
        ),
        (
            "idf",
            Box::new(|b| {
                b.pipeline.features[0].transforms[0] = Transform::Tfidf {
                    sublinear_tf: false,
                    idf: Some(vec![1.0]),
                    log_exceptions: vec![],
                }
            }),
        ),
        (
            "lengths",
            Box::new(|b| {
                if let Counts::Vocabulary { lengths, .. } = &mut b.pipeline.features[0].counts {
                    lengths[0] += 1;
                }
            }),
        ),
        (
            "duplicate term",
            Box::new(|b| {
                b.pipeline.features[0].counts = Counts::Vocabulary {
                    terms: b"goodgoodbad".to_vec(),
                    lengths: vec![4, 4, 3],
                };
            }),
        ),
        (
            "ngram_range",
            Box::new(|b| b.pipeline.features[0].analyzer.ngram_range = (2, 1)),
        ),
        (
            "stop words order",
            Box::new(|b| b.pipeline.features[0].analyzer.stop_words = vec!["b".into(), "a".into()]),
        ),
        ("no features", Box::new(|b| b.pipeline.features.clear())),
        (
            "hashing n_features",
            Box::new(|b| {
                b.pipeline.features[0].counts = Counts::Hashing {
                    n_features: 0,
                    alternate_sign: true,
                }
            }),
        ),
    ];
    for (what, tamper) in cases {
        let mut body = tiny();
        tamper(&mut body);
        // Refused when encoding (the writer checks too) or when loading.
        let e = artifact::to_bytes(&body)
            .and_then(|b| TextClassifier::from_bytes(&b))
            .unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{what}: {e:?}");
        assert_eq!(e.code(), "ARTIFACT_CORRUPT");
    }
}

#[test]
fn rejects_oversized_text() {
    let model = TextClassifier::from_bytes(&bytes()).unwrap();
    let big = "a".repeat(skedge::MAX_TEXT_BYTES + 1);
    assert_eq!(
        model.predict(&big).unwrap_err(),
        Error::InputTooLarge {
            bytes: big.len(),
            limit: skedge::MAX_TEXT_BYTES
        }
    );
}
