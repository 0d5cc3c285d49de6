//! The artifact envelope: byte-golden encoding and a rejection test for every way bytes can be wrong.

use skedge::artifact::example::tiny;
use skedge::artifact::schema::v3;
use skedge::artifact::schema::*;
use skedge::artifact::{
    self, COLUMN_FORMAT_VERSION, FLAG_XXH3, FORMAT_VERSION, HEADER_LEN, LEGACY_FORMAT_VERSION, MAGIC,
};
use skedge::vectorize::{BLOCK_TERMS, LOAD_PERCENT, LOG_CHECKED, RECENT_BUDGET, WORD_BLOCK_TERMS};
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
    assert_eq!(golden[8..10], FORMAT_VERSION.to_le_bytes());
    assert_eq!(golden[10..12], FLAG_XXH3.to_le_bytes());
    assert_eq!(
        golden[16..24],
        xxhash_rust::xxh3::xxh3_64(&golden[HEADER_LEN..]).to_le_bytes()
    );
    let model = TextClassifier::from_bytes(&golden).unwrap();
    assert_eq!(model.format_version(), FORMAT_VERSION);
    assert_eq!(model.metadata(), &tiny().metadata);
}

/// The golden as written before `FLAG_XXH3` (flags 0, checksum xxHash64; never regenerated):
/// deployed artifacts keep loading, with the same body, and `skedge repack` gives today's bytes.
#[test]
fn xxh64_golden_loads_and_predicts_as_the_xxh3_one() {
    let old = std::fs::read("tests/golden/xxh64/tiny.skedge").unwrap();
    assert_eq!(old[10..12], [0, 0]);
    assert_eq!(
        old[16..24],
        xxhash_rust::xxh64::xxh64(&old[HEADER_LEN..], 0).to_le_bytes()
    );
    assert_eq!(old[HEADER_LEN..], bytes()[HEADER_LEN..]);
    let (a, b) = (
        TextClassifier::from_bytes(&old).unwrap(),
        TextClassifier::from_bytes(&bytes()).unwrap(),
    );
    assert_eq!(a.format_version(), FORMAT_VERSION);
    assert_eq!(a.metadata(), b.metadata());
    for t in TEXTS {
        assert_eq!(a.predict(t).unwrap(), b.predict(t).unwrap(), "{t:?}");
    }
    let (body, version) = artifact::body_v3(&old, &Default::default()).unwrap();
    assert_eq!(
        artifact::seal_version(&body, &Default::default(), version).unwrap(),
        bytes()
    );
}

const TEXTS: [&str; 6] = [
    "GOOD, great!",
    "bad",
    "",
    "good bad great ΟΔΟΣ",
    "Great great GOOD",
    "nothing",
];

#[test]
fn format_2_golden_loads_and_predicts_as_format_3() {
    let v2 = std::fs::read("tests/golden/v2/tiny.skedge").unwrap();
    assert_eq!(v2[8..10], LEGACY_FORMAT_VERSION.to_le_bytes());
    let old = TextClassifier::from_bytes(&v2).unwrap();
    let new = TextClassifier::from_bytes(&bytes()).unwrap();
    assert_eq!(old.format_version(), LEGACY_FORMAT_VERSION);
    assert_eq!(old.metadata(), new.metadata());
    for t in TEXTS {
        assert_eq!(old.predict(t).unwrap(), new.predict(t).unwrap(), "{t:?}");
        assert_eq!(old.transform(t).unwrap(), new.transform(t).unwrap(), "{t:?}");
    }
    // Repacking a format 2 artifact gives exactly what packing the model gives.
    let (body, version) = artifact::body_v3(&v2, &Default::default()).unwrap();
    assert_eq!(version, FORMAT_VERSION);
    let repacked = artifact::seal(&body, &Default::default()).unwrap();
    assert_eq!(repacked, bytes());
    // A format 2 body is decoded as format 2 only: sealed as format 3 it is refused.
    let body = artifact::open(&v2).unwrap().body.into_owned();
    assert_eq!(reseal_version(&body, LEGACY_FORMAT_VERSION), v2);
    assert_eq!(
        TextClassifier::from_bytes(&reseal(&body)).unwrap_err().code(),
        "ARTIFACT_CORRUPT"
    );
}

#[test]
fn vocabulary_reads_terms_in_place() {
    let model = TextClassifier::from_bytes(&bytes()).unwrap();
    let vocab = model.vectorizers()[0].vocabulary().unwrap();
    assert_eq!(vocab.len(), 3);
    for (col, term) in ["bad", "good", "great"].iter().enumerate() {
        assert_eq!(vocab.get(term), Some(col as u32));
        assert_eq!(vocab.term(col).unwrap(), term.as_bytes());
    }
    for miss in ["", "b", "ba", "badd", "goo", "goods", "gre", "greatly", "Good"] {
        assert_eq!(vocab.get(miss), None, "{miss:?}");
    }
    assert_eq!(vocab.term(3), None);
}

/// `tiny()` with `words` (sorted) as its vocabulary, its weights the column numbers, no transforms.
fn body_with_terms(words: &[String]) -> Body {
    let mut body = tiny();
    body.pipeline.features[0].counts = Counts::Vocabulary {
        terms: words.concat().into_bytes(),
        lengths: words.iter().map(|w| w.len() as u32).collect(),
    };
    body.pipeline.features[0].transforms.clear();
    if let Classifier::Linear(l) = &mut body.pipeline.classifier {
        l.coef = Matrix {
            rows: 1,
            cols: words.len() as u32,
            data: (0..words.len()).map(|i| i as f64).collect(),
        };
    }
    body
}

/// A model of `tiny()` whose vocabulary is `words` (sorted), laid out in blocks of `block` terms.
fn with_terms(words: &[String], block: u32) -> TextClassifier {
    let body = body_with_terms(words);
    let encoded = artifact::layout::encode_with(&body, 75, block, block).unwrap();
    TextClassifier::from_bytes(&artifact::seal(&encoded, &Default::default()).unwrap()).unwrap()
}

#[test]
fn recent_terms_match_exactly() {
    // More terms than the recent table has entries: entries are overwritten by terms of the
    // same index; a lookup through it must answer as the vocabulary does, for every term,
    // near miss and long term, in any order and again.
    let mut words: Vec<String> = (0..20_000).map(|i| format!("w{i}")).collect();
    words.push("a term longer than a recent entry holds".into());
    words.sort();
    let model = with_terms(&words, 16);
    let vocab = model.vectorizers()[0].vocabulary().unwrap();
    let mut recent = model.vectorizers()[0].recent(&mut { RECENT_BUDGET });
    for pass in 0..3 {
        for i in 0..words.len() {
            let w = &words[(i * 7919 + pass) % words.len()];
            for q in [
                w.clone(),
                format!("{w}x"),
                w[..w.len() - 1].to_string(),
                w.to_uppercase(),
            ] {
                assert_eq!(vocab.get_recent(&q, &mut recent), vocab.get(&q), "{q:?}");
            }
        }
    }
}

#[test]
fn front_coded_blocks_match_exactly() {
    // Long shared prefixes, escapes (≥ 15 bytes), several blocks, terms that are prefixes of
    // others: every term is found at its column, every near miss is not.
    let mut words: Vec<String> = Vec::new();
    for i in 0..70 {
        words.push(format!("{}{i:03}", "x".repeat(i % 23)));
        words.push(format!("shared prefix of some length {i:03}"));
    }
    words.push("a".into());
    words.push("ab".into());
    words.push("abc".into());
    words.push("é".repeat(40));
    words.sort();
    words.dedup();
    for block in [1, 2, 7, 16, 17, 40, 256] {
        let model = with_terms(&words, block);
        let vocab = model.vectorizers()[0].vocabulary().unwrap();
        for (col, w) in words.iter().enumerate() {
            assert_eq!(vocab.get(w), Some(col as u32), "block {block}: {w:?}");
            assert_eq!(vocab.term(col).unwrap(), w.as_bytes());
            let mut shorter = w.clone();
            shorter.pop();
            for miss in [format!("{w}x"), shorter, format!("{w} ")] {
                if !words.contains(&miss) {
                    assert_eq!(vocab.get(&miss), None, "block {block}: {miss:?}");
                }
            }
            // The block walk itself, without the table's tags in front of it: column `col` holds
            // its own term only, not its neighbours' (in its block and around it) nor near misses.
            let near = words[col.saturating_sub(20)..(col + 20).min(words.len())].iter();
            for q in near
                .cloned()
                .chain([format!("{w}x"), format!("{w} "), w[..w.len() / 2].into()])
            {
                assert_eq!(
                    vocab.holds(col as u32, q.as_bytes()),
                    q == *w,
                    "block {block}: {col} {q:?}"
                );
            }
        }
    }
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
    b[8..10].copy_from_slice(&(COLUMN_FORMAT_VERSION + 1).to_le_bytes());
    let e = TextClassifier::from_bytes(&b).unwrap_err();
    assert_eq!(
        e,
        Error::UnsupportedFormatVersion {
            found: u32::from(COLUMN_FORMAT_VERSION + 1),
            supported: COLUMN_FORMAT_VERSION
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
        Error::UnsupportedFlags { found: 0x8004 }
    );
    let mut b = bytes();
    b[10] |= 0x10;
    let e = TextClassifier::from_bytes(&b).unwrap_err();
    assert_eq!(e, Error::UnsupportedFlags { found: 0x0014 });
    assert_eq!(e.code(), "ARTIFACT_VERSION_UNSUPPORTED");
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

/// A file longer than its header declares (sparse, 1 GiB): read one byte past the artifact, its
/// error names the file's true number of trailing bytes.
#[test]
fn a_files_trailing_bytes_are_counted_in_the_file_unread() {
    let golden = std::fs::read("tests/golden/tiny.skedge").unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("trailing-1g.skedge");
    std::fs::write(&path, &golden).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let (bytes, len) = artifact::read_file_sized(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!((bytes.len(), len), (golden.len() + 1, 1 << 30));
    let e = TextClassifier::from_bytes(&bytes).unwrap_err();
    assert_eq!(e, Error::TrailingBytes { extra: 1 });
    assert_eq!(
        artifact::in_file(e, bytes.len(), len),
        Error::TrailingBytes {
            extra: (1 << 30) - golden.len() as u64
        }
    );
    // other errors pass unchanged
    assert_eq!(
        artifact::in_file(Error::BadMagic, bytes.len(), len),
        Error::BadMagic
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
    for mut b in [bytes(), std::fs::read("tests/golden/xxh64/tiny.skedge").unwrap()] {
        let last = b.len() - 1;
        b[last] ^= 0x40;
        let e = TextClassifier::from_bytes(&b).unwrap_err();
        assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e:?}");
        assert_eq!(e.code(), "ARTIFACT_CORRUPT");
    }
}

/// Re-seals a tampered body with a valid checksum, as a hostile (not a damaged) artifact would be.
fn reseal(body: &[u8]) -> Vec<u8> {
    reseal_version(body, FORMAT_VERSION)
}

/// Format 2 artifacts were written with flags 0 and an xxHash64 checksum; later ones with the
/// XXH3 flag and checksum.
fn reseal_version(body: &[u8], version: u16) -> Vec<u8> {
    let (flags, checksum) = match version {
        LEGACY_FORMAT_VERSION => (0, xxhash_rust::xxh64::xxh64(body, 0)),
        _ => (FLAG_XXH3, xxhash_rust::xxh3::xxh3_64(body)),
    };
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum.to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn every_bit_flip_and_truncation_is_an_error_not_a_panic() {
    for b in [bytes(), std::fs::read("tests/golden/xxh64/tiny.skedge").unwrap()] {
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
}

#[test]
fn hostile_resealed_bodies_never_panic() {
    // With a valid checksum, a flipped bit reaches the decoder and the validator: each must either
    // load a consistent model or fail with a coded error.
    let v2 = std::fs::read("tests/golden/v2/tiny.skedge").unwrap();
    for (version, body) in [
        (FORMAT_VERSION, bytes()[HEADER_LEN..].to_vec()),
        (LEGACY_FORMAT_VERSION, v2[HEADER_LEN..].to_vec()),
    ] {
        for i in 0..body.len() * 8 {
            let mut f = body.clone();
            f[i / 8] ^= 1 << (i % 8);
            if let Ok(model) = TextClassifier::from_bytes(&reseal_version(&f, version)) {
                for t in TEXTS {
                    let _ = model.predict(t);
                }
                let vocab = model.vectorizers()[0].vocabulary();
                for col in 0..4 {
                    let _ = vocab.map(|v| v.term(col));
                }
            }
        }
        for n in 0..body.len() {
            assert!(TextClassifier::from_bytes(&reseal_version(&body[..n], version)).is_err());
        }
    }
}

/// The tiny golden's body with its manifest replaced (sections kept where they are).
fn with_manifest(edit: impl Fn(&mut v3::Manifest)) -> Vec<u8> {
    let body = &bytes()[HEADER_LEN..];
    let len = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
    let mut manifest: v3::Manifest = postcard::from_bytes(&body[4..4 + len]).unwrap();
    let data = &body[(4 + len).div_ceil(8) * 8..];
    edit(&mut manifest);
    let m = postcard::to_allocvec(&manifest).unwrap();
    let mut out = (m.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&m);
    out.resize((4 + m.len()).div_ceil(8) * 8, 0);
    out.extend_from_slice(data);
    reseal(&out)
}

#[test]
fn rejects_hostile_sections() {
    use v3::{Classifier as C3, Counts as C, Transform as T};
    assert!(TextClassifier::from_bytes(&with_manifest(|_| {})).is_ok());
    type Edit = Box<dyn Fn(&mut v3::Manifest)>;
    let edit_vocab = |f: fn(&mut v3::Vocabulary)| -> Edit {
        Box::new(move |m| {
            if let C::Vocabulary(v) = &mut m.pipeline.features[0].counts {
                f(v)
            }
        })
    };
    let cases: Vec<(&str, Edit)> = vec![
        (
            "table past the end",
            edit_vocab(|v| v.table.offset = u32::MAX - 7),
        ),
        (
            "table length past the end",
            edit_vocab(|v| v.table.len = u32::MAX),
        ),
        ("table unaligned", edit_vocab(|v| v.table.offset += 4)),
        ("table not whole slots", edit_vocab(|v| v.table.len -= 1)),
        ("more terms than slots", edit_vocab(|v| v.count = v.table.len / 4)),
        ("count near u32::MAX", edit_vocab(|v| v.count = u32::MAX)),
        ("block_terms 0", edit_vocab(|v| v.block_terms = 0)),
        ("block_terms huge", edit_vocab(|v| v.block_terms = u32::MAX)),
        (
            "max_probe beyond the table",
            edit_vocab(|v| v.max_probe = u32::MAX),
        ),
        ("block offsets short", edit_vocab(|v| v.block_offsets.len = 4)),
        ("blocks past the end", edit_vocab(|v| v.blocks.len = u32::MAX - 1)),
        (
            "coef section length",
            Box::new(|m| {
                if let C3::Linear(l) = &mut m.pipeline.classifier {
                    l.coef.data.len -= 2; // one binary16 value fewer
                }
            }),
        ),
        (
            "coef rows",
            Box::new(|m| {
                if let C3::Linear(l) = &mut m.pipeline.classifier {
                    l.coef.rows = u32::MAX;
                }
            }),
        ),
        (
            "idf index width",
            Box::new(|m| {
                if let T::Tfidf { idf: Some(i), .. } = &mut m.pipeline.features[0].transforms[0] {
                    i.index_width = 3;
                }
            }),
        ),
        (
            "idf index length",
            Box::new(|m| {
                if let T::Tfidf { idf: Some(i), .. } = &mut m.pipeline.features[0].transforms[0] {
                    i.index.len += 1;
                }
            }),
        ),
    ];
    for (what, edit) in cases {
        let e = TextClassifier::from_bytes(&with_manifest(edit)).unwrap_err();
        assert_eq!(e.code(), "ARTIFACT_CORRUPT", "{what}: {e:?}");
    }
    // A manifest length past the body.
    let mut body = bytes()[HEADER_LEN..].to_vec();
    body[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        TextClassifier::from_bytes(&reseal(&body)).unwrap_err().code(),
        "ARTIFACT_CORRUPT"
    );
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
        (
            "select n_features_in",
            Box::new(|b| {
                b.pipeline.features[0].transforms.push(Transform::Select {
                    n_features_in: 4,
                    support: vec![0],
                })
            }),
        ),
        (
            "select keeps more than it receives",
            Box::new(|b| {
                b.pipeline.features[0].transforms.push(Transform::Select {
                    n_features_in: 3,
                    support: vec![0, 1, 2, 3],
                })
            }),
        ),
        (
            "classifier wider than the selection",
            Box::new(|b| {
                b.pipeline.transforms.push(Transform::Select {
                    n_features_in: 3,
                    support: vec![0, 2],
                })
            }),
        ),
        (
            "column scale length",
            Box::new(|b| {
                b.pipeline.transforms.push(Transform::ColumnScale {
                    scale: vec![1.0, 2.0],
                })
            }),
        ),
        (
            "column scale not finite",
            Box::new(|b| {
                b.pipeline.transforms.push(Transform::ColumnScale {
                    scale: vec![1.0, f64::NAN, 2.0],
                })
            }),
        ),
        (
            "clip bounds crossed",
            Box::new(|b| {
                b.pipeline
                    .transforms
                    .push(Transform::Clip { min: 1.0, max: -1.0 })
            }),
        ),
        (
            "clip bound NaN",
            Box::new(|b| {
                b.pipeline.features[0].transforms.push(Transform::Clip {
                    min: f64::NAN,
                    max: 1.0,
                })
            }),
        ),
        (
            "clip bound infinite",
            Box::new(|b| {
                b.pipeline.transforms.push(Transform::Clip {
                    min: -1.0,
                    max: f64::INFINITY,
                })
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

#[test]
fn selection_and_column_scale_round_trip() {
    // tiny: "bad", "good", "great" (tf-idf, l2), coef [-2.0, 1.5, 2.5].
    let mut body = tiny();
    body.pipeline.transforms = vec![
        Transform::Select {
            n_features_in: 3,
            support: vec![1, 2],
        },
        Transform::ColumnScale {
            scale: vec![0.5, 4.0],
        },
    ];
    if let Classifier::Linear(l) = &mut body.pipeline.classifier {
        l.coef = Matrix {
            rows: 1,
            cols: 2,
            data: vec![1.5, 2.5],
        };
    }
    let full = TextClassifier::from_body(tiny()).unwrap();
    let model = TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap()).unwrap();
    let text = "bad good great great";
    let before = full.transform(text).unwrap();
    let after = model.transform(text).unwrap();
    assert_eq!(
        after,
        [(0, before[1].1 * (1.0 / 0.5)), (1, before[2].1 * (1.0 / 4.0))],
        "the l2 norm before the selection counts the dropped column"
    );
    assert_eq!(
        model.predict("bad").unwrap().decision,
        full.predict("").unwrap().decision
    );
}

#[test]
fn clip_bounds_every_stored_value() {
    // MaxAbsScaler(clip=True): inplace_column_scale, then np.clip(X.data, -1, 1). tiny's l2-normed
    // tf-idf values are below 1; scaled by 1 / 0.25 some pass it.
    let scaled = |clip: Option<(f64, f64)>| {
        let mut body = tiny();
        body.pipeline.transforms = vec![Transform::ColumnScale {
            scale: vec![0.25, 0.25, -4.0],
        }];
        if let Some((min, max)) = clip {
            body.pipeline.transforms.push(Transform::Clip { min, max });
        }
        TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap()).unwrap()
    };
    let text = "bad good great great";
    let plain = scaled(None).transform(text).unwrap();
    let clipped = scaled(Some((-1.0, 1.0))).transform(text).unwrap();
    assert!(
        plain[0].1 > 1.0 && plain[1].1 > 1.0 && (-1.0..0.0).contains(&plain[2].1),
        "{plain:?}"
    );
    assert_eq!(clipped, [(0, 1.0), (1, 1.0), plain[2]]);
    let narrow = scaled(Some((-0.0625, 0.5))).transform(text).unwrap();
    assert_eq!(narrow, [(0, 0.5), (1, 0.5), (2, -0.0625)]);
    // The classifier sees the clipped row.
    let (p, c) = (
        scaled(None).predict(text).unwrap(),
        scaled(Some((-1.0, 1.0))).predict(text).unwrap(),
    );
    assert!(
        (c.decision[0] - (0.25 - 2.0 + 1.5 + 2.5 * plain[2].1)).abs() < 1e-12,
        "{c:?}"
    );
    assert_ne!(p.decision, c.decision);
}

#[test]
fn clip_is_an_appended_variant_that_older_readers_refuse() {
    // FORMAT.md's versioning rule: `Clip` is `Transform`'s variant 5, appended without a format
    // version, so every artifact without it keeps its bytes (the golden and every fixture) and a
    // reader that knows five variants meets a tag it cannot read. What that reader does is what
    // this one does with the next tag: ARTIFACT_CORRUPT, never a prediction.
    let mut body = tiny();
    body.pipeline.transforms = vec![Transform::Clip { min: -1.0, max: 1.0 }];
    let bytes = artifact::to_bytes(&body).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), FORMAT_VERSION);
    let mut wire = vec![5u8];
    wire.extend((-1.0f64).to_le_bytes());
    wire.extend(1.0f64.to_le_bytes());
    let manifest = postcard::to_allocvec(&v3::Transform::Clip { min: -1.0, max: 1.0 }).unwrap();
    assert_eq!(manifest, wire);
    let tampered =
        with_manifest(|m| m.pipeline.transforms = vec![v3::Transform::Clip { min: -1.0, max: 1.0 }]);
    let model = TextClassifier::from_bytes(&tampered).unwrap();
    assert_eq!(model.transform("great great").unwrap(), [(2, 1.0)]);
    let body = &tampered[HEADER_LEN..];
    let at = body.windows(wire.len()).position(|w| w == wire).unwrap();
    let mut next = body.to_vec();
    next[at] = 6;
    let e = TextClassifier::from_bytes(&reseal(&next)).unwrap_err();
    assert_eq!(e.code(), "ARTIFACT_CORRUPT", "{e}");
}

#[test]
fn hand_made_selection_lists_never_panic() {
    // Unsorted, duplicated and out-of-range columns are not read at load: they drop features.
    for support in [vec![2, 0, 1], vec![1, 1, 1], vec![u32::MAX, 7, 0], vec![]] {
        let mut body = tiny();
        let k = support.len() as u32;
        body.pipeline.transforms = vec![Transform::Select {
            n_features_in: 3,
            support,
        }];
        if let Classifier::Linear(l) = &mut body.pipeline.classifier {
            l.coef = Matrix {
                rows: 1,
                cols: k,
                data: vec![1.0; k as usize],
            };
        }
        let model = TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap()).unwrap();
        for text in ["bad good great", "", "great great"] {
            model.predict(text).unwrap();
            let _ = model.explain(text, 3).unwrap();
        }
    }
}

#[test]
fn interchange_selection_must_be_ascending_and_in_range() {
    let path = "tests/fixtures/cases/tfidf_l2_selectkbest_chi2_lr.interchange.json";
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let edits: [fn(&mut serde_json::Value); 4] = [
        |t| t["support"].as_array_mut().unwrap().swap(0, 1),
        |t| t["support"][299] = 1500.into(),
        |t| {
            let mut scale = vec![1.0; 1500];
            scale[3] = 0.0; // x * (1 / 0)
            *t = serde_json::json!({"kind": "column_scale", "scale": scale});
        },
        |t| *t = serde_json::json!({"kind": "clip", "min": 1.0, "max": -1.0}),
    ];
    for edit in edits {
        let mut doc = doc.clone();
        edit(&mut doc["pipeline"]["features"][0]["transforms"][2]);
        let ix: skedge::interchange::Interchange = serde_json::from_value(doc).unwrap();
        assert_eq!(ix.into_body().unwrap_err().code(), "INTERCHANGE_INVALID");
    }
}

/// A tiny model exported from a Python with Unicode `unicode`: `analyzer` ("word" or "char", 2-grams)
/// and a vocabulary after "bad" (coefficient -2) and "good" (1.5) whose terms weigh 2.5, 4 and 8.
fn model_of(unicode: &str, analyzer: &str, terms: [&str; 3]) -> skedge::Result<TextClassifier> {
    let ngrams = if analyzer == "word" { [1, 1] } else { [2, 2] };
    let doc = serde_json::json!({"format": "skedge-interchange", "version": 1,
      "metadata": {"name": "u", "version": "1", "created": "2000-01-01T00:00:00Z", "sklearn_version": "1.9.1",
        "python_version": "3.12.1", "numpy_version": "2.4.6", "unicode_version": unicode, "source_sha256": "",
        "precision": "exact", "provenance": {}, "metrics": {}},
      "pipeline": {"features": [{"analyzer": {"kind": analyzer, "ngram_range": ngrams, "lowercase": true,
          "strip_accents": null, "token_pattern": "(?u)\\b\\w\\w+\\b", "stop_words": []},
        "counts": {"kind": "vocabulary", "vocabulary": ["bad", "good", terms[0], terms[1], terms[2]]},
        "binary": false, "transforms": []}],
        "transforms": [],
        "classifier": {"kind": "linear", "estimator": "LogisticRegression", "classes": ["neg", "pos"],
          "coef": [[-2.0, 1.5, 2.5, 4.0, 8.0]], "intercept": [0.25], "proba": "logistic"}}});
    let ix: skedge::interchange::Interchange = serde_json::from_value(doc).unwrap();
    TextClassifier::from_body(ix.into_body()?)
}

/// Each model reads text with the Unicode of the Python it was exported from (`\w`, `str.lower()`
/// there): a word of Nag Mundari (a script of Unicode 15.0) is a token for a model from Python 3.12
/// or later, not for one from Python 3.11; an upper-case word of Garay (Unicode 16.0) is lowered and
/// a token only for one from Python 3.14 or later, where a capital sigma after U+1171E (a spacing
/// mark since 16.0, case-ignorable before) is no longer final; the same for Beria Erfe and U+0295
/// (an uncased letter since 17.0) from Python 3.15; a version skedge has no tables for (18.0.0) is
/// refused, naming those it has.
#[test]
fn each_model_reads_text_with_its_exporters_unicode() {
    let decision = |unicode, analyzer, terms, text| {
        let model = model_of(unicode, analyzer, terms).unwrap();
        model.predict(text).unwrap().decision[0]
    };
    let words = ["\u{1E4D0}\u{1E4D1}", "\u{10D70}\u{10D71}", "\u{10D70}\u{10D50}"];
    let text = "\u{1E4D0}\u{1E4D1} good \u{10D50}\u{10D51}";
    assert_eq!(decision("14.0.0", "word", words, text), 0.25 + 1.5);
    assert_eq!(decision("15.0.0", "word", words, text), 0.25 + 1.5 + 2.5);
    assert_eq!(decision("15.1.0", "word", words, text), 0.25 + 1.5 + 2.5);
    assert_eq!(decision("16.0.0", "word", words, text), 0.25 + 1.5 + 2.5 + 4.0);
    let bigrams = ["\u{1171E}\u{3C3}", "\u{1171E}\u{3C2}", "\u{3B1}\u{1171E}"];
    let text = "\u{391}\u{1171E}\u{3A3}";
    assert_eq!(decision("15.1.0", "char", bigrams, text), 0.25 + 8.0 + 4.0);
    assert_eq!(decision("16.0.0", "char", bigrams, text), 0.25 + 8.0 + 2.5);
    // BERIA ERFE CAPITAL LETTER ARKAB + SMALL LETTER BASIGNA lowers to the first term in 17.0 only.
    let words = ["\u{16EBB}\u{16EBC}", "\u{1E4D0}\u{1E4D1}", "\u{10D70}\u{10D71}"];
    let text = "\u{16EA0}\u{16EBC} \u{1E4D0}\u{1E4D1} \u{10D50}\u{10D51}";
    assert_eq!(decision("16.0.0", "word", words, text), 0.25 + 4.0 + 8.0);
    assert_eq!(decision("17.0.0", "word", words, text), 0.25 + 2.5 + 4.0 + 8.0);
    let bigrams = ["\u{295}\u{3C3}", "\u{295}\u{3C2}", "\u{3C3}\u{295}"];
    let text = "\u{295}\u{3A3}";
    assert_eq!(decision("16.0.0", "char", bigrams, text), 0.25 + 4.0);
    assert_eq!(decision("17.0.0", "char", bigrams, text), 0.25 + 2.5);

    let err = model_of("18.0.0", "word", words).unwrap_err();
    assert_eq!(err.code(), "INTERCHANGE_INVALID");
    let message = err.to_string();
    for part in [
        "Unicode 18.0.0",
        "14.0.0 (Python 3.11), 15.0.0 (Python 3.12), 15.1.0 (Python 3.13), 16.0.0 (Python 3.14), \
         17.0.0 (Python 3.15)",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    // An artifact of a later skedge, from such a Python: refused at load, with its code.
    let mut body = tiny();
    body.metadata.unicode_version = "18.0.0".into();
    let err = TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap()).unwrap_err();
    assert_eq!(err.code(), "ARTIFACT_VERSION_UNSUPPORTED");
    assert!(err.to_string().contains("Unicode \"18.0.0\""), "{err}");
}

#[test]
fn one_vs_rest_proba_divides_by_a_non_zero_sum() {
    let mut body = tiny();
    if let Classifier::Linear(l) = &mut body.pipeline.classifier {
        l.proba = LinearProba::OneVsRest;
    }
    let model = TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap()).unwrap();
    let p = model.predict("good great").unwrap();
    let e = 1.0 / (1.0 + libm::exp(-p.decision[0]));
    let s = (1.0 - e) + e;
    assert_eq!(p.proba.unwrap(), [(1.0 - e) / s, e / s]);

    // Three classes whose expit underflows to 0: scikit-learn leaves the row at zeros.
    if let Classifier::Linear(l) = &mut body.pipeline.classifier {
        l.classes = Classes::Int(vec![1, 2, 3]);
        l.coef = Matrix {
            rows: 3,
            cols: 3,
            data: vec![0.0; 9],
        };
        l.intercept = vec![-1000.0, -900.0, -800.0];
    }
    let model = TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap()).unwrap();
    let p = model.predict("good").unwrap();
    assert_eq!(p.label, 2);
    assert_eq!(p.proba.unwrap(), [0.0, 0.0, 0.0]);
}

#[test]
fn isotonic_and_voting_inconsistencies_are_refused_at_load() {
    let base = tiny();
    let Classifier::Linear(lr) = base.pipeline.classifier.clone() else {
        panic!("tiny is linear")
    };
    let load = |c: Classifier| {
        let mut body = base.clone();
        body.pipeline.classifier = c;
        TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap())
            .map(|m| m.predict("good great").unwrap())
    };
    let iso = |x: Vec<f64>, y: Vec<f64>| {
        Classifier::CalibratedIsotonic(CalibratedIsotonic {
            classes: lr.classes.clone(),
            members: vec![IsotonicMember {
                base: lr.clone(),
                class_indices: vec![0],
                calibrators: vec![Isotonic { x, y }],
            }],
        })
    };
    // Clipped to [x0, x_last] and interpolated: a decision far above the thresholds gives y_last.
    let p = load(iso(vec![-1e9, 1e9], vec![0.25, 0.75])).unwrap();
    assert!(p.proba.unwrap()[1] > 0.25);
    assert_eq!(
        load(iso(vec![5.0], vec![0.5])).unwrap().proba.unwrap(),
        [0.5, 0.5]
    );
    for (x, y) in [
        (vec![1.0, 0.0], vec![0.1, 0.2]),
        (vec![0.0, 1.0], vec![0.1]),
        (vec![], vec![]),
    ] {
        assert_eq!(load(iso(x, y)).unwrap_err().code(), "ARTIFACT_CORRUPT");
    }

    let voting = |soft: bool, weights: Option<Vec<f64>>, est: Vec<VotingEstimator>| {
        Classifier::Voting(Voting {
            classes: lr.classes.clone(),
            soft,
            weights,
            estimators: est,
        })
    };
    let est = |l: &Linear| VotingEstimator::Linear(l.clone());
    let p = load(voting(false, Some(vec![1.0, 0.0]), vec![est(&lr), est(&lr)])).unwrap();
    assert_eq!(p.decision.iter().sum::<f64>(), 1.0);
    assert!(p.proba.is_none());
    let mut no_proba = lr.clone();
    no_proba.proba = LinearProba::None;
    let mut three = lr.clone();
    three.classes = Classes::Int(vec![0, 1, 2]);
    for c in [
        voting(true, None, vec![est(&lr), est(&no_proba)]),
        voting(false, None, vec![est(&lr), est(&three)]),
        voting(false, Some(vec![1.0, -1.0]), vec![est(&lr), est(&lr)]),
        voting(true, Some(vec![0.0, 0.0]), vec![est(&lr), est(&lr)]),
        voting(false, Some(vec![1.0]), vec![est(&lr), est(&lr)]),
        voting(false, None, vec![]),
    ] {
        assert_eq!(load(c).unwrap_err().code(), "ARTIFACT_CORRUPT");
    }
}

fn tiny_column(column: &str) -> Body {
    Body {
        input: Input::Column(column.into()),
        ..tiny()
    }
}

#[test]
fn a_column_model_is_format_4_and_every_other_stays_format_3() {
    let plain = artifact::to_bytes(&tiny()).unwrap();
    assert_eq!(plain[8..10], FORMAT_VERSION.to_le_bytes());
    let bytes = artifact::to_bytes(&tiny_column("review")).unwrap();
    assert_eq!(bytes[8..10], COLUMN_FORMAT_VERSION.to_le_bytes());
    let model = TextClassifier::from_bytes(&bytes).unwrap();
    assert_eq!(model.format_version(), COLUMN_FORMAT_VERSION);
    assert_eq!(model.input_column(), Some("review"));
    assert_eq!(TextClassifier::from_bytes(&plain).unwrap().input_column(), None);
    // The same pipeline: the same predictions.
    let text_model = TextClassifier::from_bytes(&plain).unwrap();
    for t in TEXTS {
        assert_eq!(model.predict(t).unwrap(), text_model.predict(t).unwrap(), "{t:?}");
    }
    // Format 4 is format 3's body with `Input` after the manifest, counted in its length.
    let (p, c) = (&plain[HEADER_LEN..], &bytes[HEADER_LEN..]);
    let len = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
    let tail = postcard::to_allocvec(&Input::Column("review".into())).unwrap();
    assert_eq!(len(c), len(p) + tail.len());
    assert_eq!(c[4..4 + len(p)], p[4..4 + len(p)]);
    assert_eq!(c[4 + len(p)..4 + len(c)], tail[..]);
    // Repacked, it stays format 4 (`skedge repack` seals with the version it read).
    let (body, version) = artifact::body_v3(&bytes, &Default::default()).unwrap();
    assert_eq!(version, COLUMN_FORMAT_VERSION);
    assert_eq!(
        artifact::seal_version(&body, &Default::default(), version).unwrap(),
        bytes
    );
}

#[test]
fn format_4_headers_and_bodies_must_agree() {
    // A format 3 body under a format 4 header lacks its input; a format 4 body under a format 3
    // header has bytes left after the manifest.
    let plain = bytes();
    let column = artifact::to_bytes(&tiny_column("text")).unwrap();
    for (body, version) in [
        (&plain[HEADER_LEN..], COLUMN_FORMAT_VERSION),
        (&column[HEADER_LEN..], FORMAT_VERSION),
    ] {
        let e = TextClassifier::from_bytes(&reseal_version(body, version)).unwrap_err();
        assert_eq!(e.code(), "ARTIFACT_CORRUPT", "{e}");
    }
    // An unknown `Input` variant is ARTIFACT_CORRUPT (enums are append-only).
    let mut body = column[HEADER_LEN..].to_vec();
    let len = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
    let tail = postcard::to_allocvec(&Input::Column("text".into())).unwrap();
    body[4 + len - tail.len()] = 7;
    let e = TextClassifier::from_bytes(&reseal_version(&body, COLUMN_FORMAT_VERSION)).unwrap_err();
    assert_eq!(e.code(), "ARTIFACT_CORRUPT", "{e}");
}

#[test]
fn records_hold_exactly_the_models_column() {
    use skedge::Field;
    let column = TextClassifier::from_bytes(&artifact::to_bytes(&tiny_column("review")).unwrap()).unwrap();
    let rec = |fields: &[(&str, Field<'static>)]| -> Vec<(String, Field<'static>)> {
        fields.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    assert_eq!(
        column.record_text(&rec(&[("review", Field::Text("good"))])),
        Ok("good")
    );
    for bad in [
        rec(&[]),
        rec(&[("text", Field::Text("good"))]),
        rec(&[("review", Field::Text("good")), ("id", Field::Text("1"))]),
        rec(&[("review", Field::Other("a number"))]),
    ] {
        let e = column.record_text(&bad).unwrap_err();
        assert_eq!(e.code(), "INVALID_INPUT");
        assert!(e.to_string().contains("\"review\""), "{e}");
    }
    let plain = TextClassifier::from_bytes(&bytes()).unwrap();
    let e = plain
        .record_text(&rec(&[("text", Field::Text("good"))]))
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_INPUT");
}

/// `artifact::manifest` (the loader's reader, without serde) against postcard: the same values
/// and the same leftover bytes, or both refuse (issue #12: the reader is hand-written so that a
/// cold wasm load compiles less code).
fn same_as_postcard(bytes: &[u8]) {
    let ours = artifact::manifest::take_from_bytes(bytes);
    let theirs = postcard::take_from_bytes::<v3::Manifest>(bytes);
    match (ours, theirs) {
        (Ok((a, rest_a)), Ok((b, rest_b))) => {
            // Compared as bytes: NaN metrics are not equal to themselves.
            assert_eq!(
                postcard::to_allocvec(&a).unwrap(),
                postcard::to_allocvec(&b).unwrap()
            );
            assert_eq!(rest_a, rest_b);
        }
        (Err(e), Err(_)) => assert_eq!(e.code(), "ARTIFACT_CORRUPT"),
        (a, b) => panic!(
            "the manifest reader and postcard disagree on {bytes:?}: {:?} vs {:?}",
            a.map(|_| "ok"),
            b.map(|_| "ok")
        ),
    }
}

#[test]
fn manifest_reader_matches_postcard() {
    let mut bodies = vec![tiny()];
    let mut full = tiny();
    full.metadata.baseline = Some(Baseline {
        count: 300,
        label_counts: vec![100, 200],
        confidence: Some(vec![1; 10]),
        oov: Some(OovCounts {
            counts: vec![u64::MAX, 0, 1 << 40],
            no_features: 3,
            oov_features: 4,
            total_features: 5,
        }),
        length: vec![7; 16],
    });
    full.metadata.agreement = Some(Agreement {
        texts: 10,
        label_changes: 0,
        max_abs_decision_diff: 1e-3,
        max_abs_proba_diff: f64::NAN,
    });
    full.metadata.metrics.insert("f1".into(), -0.0);
    full.metadata.provenance.insert("run".into(), "é😀".into());
    full.metadata.precision = Precision::Compact;
    bodies.push(full);
    let mut clip = tiny();
    clip.pipeline.features[0]
        .transforms
        .push(Transform::Clip { min: -1.0, max: 0.5 });
    bodies.push(clip);
    for entry in std::fs::read_dir("tests/fixtures/cases").unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".interchange.json") {
            let doc: skedge::interchange::Interchange =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            bodies.push(doc.into_body().unwrap());
        }
    }
    for (k, body) in bodies.iter().enumerate() {
        let encoded = artifact::layout::encode(body).unwrap();
        let len = u32::from_le_bytes(encoded[..4].try_into().unwrap()) as usize;
        // The manifest and a few bytes after it (the padding and the data area's start).
        let m = &encoded[4..(4 + len + 9).min(encoded.len())];
        same_as_postcard(m);
        // Every byte of the three hand-made manifests; a spread of 40 positions of each fixture's
        // (the artifact_body fuzz target covers the rest).
        let step = if k < 3 { 1 } else { (len / 40).max(1) };
        for i in (0..len).step_by(step) {
            same_as_postcard(&m[..i]);
            for v in [m[i] ^ 0x01, m[i] ^ 0x80, m[i] ^ 0x10, 0x00, 0x02, 0x7f, 0xff] {
                let mut f = m.to_vec();
                f[i] = v;
                same_as_postcard(&f);
            }
        }
    }
    // Varints at and past their width, lengths past the input, bad tags.
    for m in [
        &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
        &[0xff, 0xff, 0xff, 0xff, 0x10],
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02],
        &[0xff; 11],
        &[0x05, b'a'],
        &[0x01, 0xc3],
    ] {
        same_as_postcard(m);
    }
}

/// `tiny()` with a word (1, `max_n`) analyzer and `terms` (sorted) as its vocabulary, encoded.
fn encoded_with_ngrams(terms: &[String], max_n: u32) -> Vec<u8> {
    let mut body = body_with_terms(terms);
    body.pipeline.features[0].analyzer.ngram_range = (1, max_n);
    artifact::seal(&artifact::layout::encode(&body).unwrap(), &Default::default()).unwrap()
}

/// `n` words `w0`, `w1`, ... and, sorted, the vocabulary of them and of the pairs `wi wj` that
/// `keep(i, j)`: what CountVectorizer(ngram_range=(1, 2)) fits.
fn words_and_pairs(n: usize, keep: impl Fn(usize, usize) -> bool) -> (Vec<String>, Vec<String>) {
    let words: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
    let mut terms = words.clone();
    for (i, a) in words.iter().enumerate() {
        for (_, b) in words.iter().enumerate().filter(|&(j, _)| keep(i, j)) {
            terms.push(format!("{a} {b}"));
        }
    }
    terms.sort();
    (words, terms)
}

#[test]
fn repack_lays_a_format_3_body_out_again() {
    // A word (1, 2)-gram model written before the word pairs layout: the plain layout over every
    // term (made here by writing the model as (1, 3) and setting its manifest back to (1, 2)).
    // `skedge repack` decodes it and writes it with today's writer: exactly the bytes of packing
    // the model now, the word pairs layout, with the same predictions.
    let (_, terms) = words_and_pairs(300, |i, j| (i * 7 + j * 13) % 5 == 0);
    let plain = encoded_with_ngrams(&terms, 3);
    let body = artifact::open(&plain).unwrap().body.into_owned();
    let len = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
    let (mut manifest, rest) = artifact::manifest::take_from_bytes(&body[4..4 + len]).unwrap();
    assert!(rest.is_empty());
    manifest.pipeline.features[0].analyzer.ngram_range = (1, 2);
    let m = postcard::to_allocvec(&manifest).unwrap();
    assert_eq!(
        m.len(),
        len,
        "the same manifest length: the data area stays where it is"
    );
    let old = reseal(&[&body[..4], &m, &body[4 + len..]].concat());
    let now = encoded_with_ngrams(&terms, 2);
    assert!(now.len() < old.len(), "{} vs {}", now.len(), old.len());

    let (repacked, version) = artifact::body_v3(&old, &Default::default()).unwrap();
    assert_eq!(version, FORMAT_VERSION);
    assert_eq!(artifact::seal(&repacked, &Default::default()).unwrap(), now);
    let (old, now) = (
        TextClassifier::from_bytes(&old).unwrap(),
        TextClassifier::from_bytes(&now).unwrap(),
    );
    for t in ["w1 w2 w3", "W10 w5, w299 w0", "", "w1  w2 x w7"] {
        assert_eq!(old.transform(t).unwrap(), now.transform(t).unwrap(), "{t:?}");
        assert_eq!(old.predict(t).unwrap(), now.predict(t).unwrap(), "{t:?}");
    }
}

#[test]
fn repack_bounds_what_word_pairs_decode_to() {
    // A pair is stored as two bytes whatever its words' length: decoding is bounded by the body
    // (64 bytes of terms per body byte), so a hand-made vocabulary cannot make a repack allocate
    // without bound. This one (a hundred pairs with an 8 KB word) would decode to 800 KB.
    let long = "x".repeat(8 << 10);
    let mut terms: Vec<String> = (0..100).map(|i| format!("w{i:03}")).collect();
    terms.extend((0..100).map(|i| format!("w{i:03} {long}")));
    terms.push(long.clone());
    terms.sort();
    let bytes = encoded_with_ngrams(&terms, 2);
    assert!(bytes.len() * 64 < 100 * long.len(), "{} bytes", bytes.len());
    let model = TextClassifier::from_bytes(&bytes).unwrap();
    assert_eq!(model.transform(&format!("w007 {long}")).unwrap().len(), 3);
    let e = artifact::body_v3(&bytes, &Default::default()).unwrap_err();
    assert_eq!(e.code(), "ARTIFACT_CORRUPT");
    assert!(e.to_string().contains("64 bytes per body byte"), "{e}");
}

#[test]
fn word_pairs_match_exactly() {
    // A vocabulary as CountVectorizer(ngram_range=(1, 2)) fits it: words, and pairs of them
    // joined by a space, sorted. Stored as word pairs (smaller than the plain layout, which a
    // (1, 3) analyzer gets), every term is found at its column and read back, and nothing else:
    // with the words in blocks of 4 (what `skedge pack` writes), of 16 (what it wrote before
    // 2026-12-05: deployed artifacts) and of 1 and 256 (the sizes a reader takes).
    let (words, terms) = words_and_pairs(700, |i, j| (i * 31 + j * 17) % 11 == 0);
    let plain = encoded_with_ngrams(&terms, 3);
    let plain_model = TextClassifier::from_bytes(&plain).unwrap();
    let plain_vocab = plain_model.vectorizers()[0].vocabulary().unwrap();
    for word_block in [WORD_BLOCK_TERMS, 16, 1, 256] {
        let mut body = body_with_terms(&terms);
        body.pipeline.features[0].analyzer.ngram_range = (1, 2);
        let encoded = artifact::layout::encode_with(&body, LOAD_PERCENT, BLOCK_TERMS, word_block).unwrap();
        let pairs = artifact::seal(&encoded, &Default::default()).unwrap();
        assert!(pairs.len() < plain.len(), "{} vs {}", pairs.len(), plain.len());
        word_pairs_answer_as_plain(&pairs, word_block, plain_vocab, &plain_model, &words, &terms);
        // `skedge repack` writes any of them as `skedge pack` does now.
        let (repacked, _) = artifact::body_v3(&pairs, &Default::default()).unwrap();
        assert_eq!(
            repacked,
            artifact::layout::encode(&body).unwrap(),
            "blocks of {word_block}"
        );
    }
}

/// The checks of [`word_pairs_match_exactly`] on one word pairs artifact.
fn word_pairs_answer_as_plain(
    pairs: &[u8],
    word_block: u32,
    plain_vocab: &skedge::vectorize::Vocabulary,
    plain_model: &TextClassifier,
    words: &[String],
    terms: &[String],
) {
    let model = TextClassifier::from_bytes(pairs).unwrap();
    let vocab = model.vectorizers()[0].vocabulary().unwrap();
    assert_eq!(vocab.len(), terms.len());
    let mut recent = model.vectorizers()[0].recent(&mut { RECENT_BUDGET });
    for (col, t) in terms.iter().enumerate() {
        assert_eq!(vocab.get(t), Some(col as u32), "blocks of {word_block}: {t:?}");
        assert_eq!(
            vocab.get_recent(t, &mut recent),
            Some(col as u32),
            "blocks of {word_block}: {t:?}"
        );
        assert_eq!(vocab.term(col).unwrap(), t.as_bytes());
        assert!(vocab.holds(col as u32, t.as_bytes()));
    }
    assert_eq!(vocab.term(terms.len()), None);
    let (a, b) = (&words[1], &words[2]);
    for q in [
        format!("{a}  {b}"),
        format!(" {a}"),
        format!("{a} "),
        format!("{a} {b} {a}"),
        format!("{a} x{b}"),
        format!("x{a} {b}"),
        format!("{a}{b}"),
        String::new(),
        " ".into(),
    ]
    .into_iter()
    .chain(
        words
            .iter()
            .flat_map(|a| words.iter().take(40).map(move |b| format!("{a} {b}"))),
    ) {
        assert_eq!(
            vocab.get(&q),
            plain_vocab.get(&q),
            "blocks of {word_block}: {q:?}"
        );
    }
    // Predictions: the tokens' path against the plain layout's features, on texts of words,
    // unknown words and pairs in and out of the vocabulary.
    for i in 0..300 {
        let text: Vec<String> = (0..12)
            .map(|k| match (i * 7 + k * 13) % 9 {
                0 => format!("unknown{k}"),
                _ => words[(i * 37 + k * 101) % words.len()].to_uppercase(),
            })
            .collect();
        let text = text.join(if i % 2 == 0 { " " } else { ", " });
        assert_eq!(
            model.transform(&text).unwrap(),
            plain_model.transform(&text).unwrap(),
            "blocks of {word_block}: {text:?}"
        );
    }
}

#[test]
fn packed_idf_indices_read_every_value() {
    // Past 256 distinct idf values the indices are packed in 9 to 24 bits (FORMAT.md §2): each
    // column must read its own value back, at every width the writer picks, across byte edges.
    for (columns, distinct) in [
        (300, 257),
        (2_000, 511),
        (2_000, 512),
        (2_000, 513),
        (40_000, 40_000),
        (70_000, 65_537),
    ] {
        let words: Vec<String> = (0..columns).map(|i| format!("w{i:05}")).collect();
        let idf: Vec<f64> = (0..columns)
            .map(|i| 1.0 + ((i * 7919) % distinct) as f64 / 4096.0)
            .collect();
        let mut body = body_with_terms(&words);
        body.pipeline.features[0].transforms = vec![Transform::Tfidf {
            sublinear_tf: false,
            idf: Some(idf.clone()),
            log_exceptions: vec![],
        }];
        let bytes = artifact::to_bytes(&body).unwrap();
        let model = TextClassifier::from_bytes(&bytes).unwrap();
        for (col, w) in words.iter().enumerate() {
            assert_eq!(
                model.transform(w).unwrap(),
                vec![(col as u32, idf[col])],
                "{columns} {distinct}: {w}"
            );
        }
    }
}

#[test]
fn sublinear_counts_past_the_checked_logs_are_refused() {
    // The exporter compares numpy's log with libm's for counts up to LOG_CHECKED only; past it
    // numpy's last bit is unknown, so a text with a larger count is refused, never approximated.
    let words = vec!["ab".to_string(), "cd".to_string()];
    let mut body = body_with_terms(&words);
    // numpy's value at the last checked count, as if it differed from libm's.
    let numpy = f64::from_bits(libm::log(f64::from(LOG_CHECKED)).to_bits() + 1);
    body.pipeline.features[0].transforms = vec![Transform::Tfidf {
        sublinear_tf: true,
        idf: None,
        log_exceptions: vec![(LOG_CHECKED, numpy)],
    }];
    let model = TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap()).unwrap();
    let text = |n: u32| format!("{}cd", "ab ".repeat(n as usize));
    assert_eq!(
        model.transform(&text(LOG_CHECKED)).unwrap(),
        vec![(0, numpy + 1.0), (1, 1.0)]
    );
    for n in [LOG_CHECKED + 1, 3 * LOG_CHECKED] {
        let err = model.predict(&text(n)).unwrap_err();
        assert_eq!(
            err,
            Error::CountTooLarge {
                count: u64::from(n),
                limit: LOG_CHECKED
            }
        );
        assert_eq!(err.code(), "INPUT_TOO_LARGE");
        assert!(err.to_string().contains(&format!("occurs {n} times")), "{err}");
        assert!(model.transform(&text(n)).is_err());
    }
    // The model still predicts after a refusal (its scratch buffers are reused).
    assert_eq!(model.transform("ab cd").unwrap(), vec![(0, 1.0), (1, 1.0)]);
    // Without sublinear_tf a count has no log: any count the text limit allows is fine.
    body.pipeline.features[0].transforms.clear();
    let model = TextClassifier::from_bytes(&artifact::to_bytes(&body).unwrap()).unwrap();
    let n = 3 * LOG_CHECKED;
    assert_eq!(
        model.transform(&text(n)).unwrap(),
        vec![(0, f64::from(n)), (1, 1.0)]
    );
}
