//! The format 3 manifest's reader: postcard's wire rules (FORMAT.md §2) for exactly the types of
//! [`v3::Manifest`](super::schema::v3::Manifest), without serde.
//!
//! Why not `postcard::take_from_bytes`: a model's first load in a fresh JS isolate compiles, on
//! first call, every wasm function it runs, and serde's generic visitors for these types were
//! 25 KB of the 60 KB compiled before the first `fromBytes` returned (benches/PROFILE.md, "The
//! cold start that is left"). This reader is a few KB. It accepts and refuses exactly the bytes
//! postcard 1 does, and builds the same values: `tests/artifact.rs` and the `artifact_body` fuzz
//! target compare the two. The serde derives stay the writer and the reference.
//!
//! A change to the manifest's types (a field, a variant) is made here too, in wire order.

use std::collections::BTreeMap;

use super::schema::v3::{
    Calibrated, CalibratedIsotonic, CalibratedMember, Classifier, Counts, Dtype, FeatureBlock, Idf, Isotonic,
    IsotonicMember, Linear, Manifest, Matrix, NaiveBayes, Pairs, Pipeline, Section, Transform, Vocabulary,
    Voting, VotingEstimator,
};
use super::schema::{
    Agreement, Analyzer, AnalyzerKind, Baseline, Classes, LinearProba, Metadata, Norm, OovCounts, Precision,
    StripAccents, TokenPattern,
};
use crate::error::{Error, Result};

/// Decodes a manifest from the start of `bytes`, returning it and the bytes after it (postcard's
/// `take_from_bytes`).
pub fn take_from_bytes(bytes: &[u8]) -> Result<(Manifest, &[u8])> {
    let (m, rest) = take_unmapped(bytes)?;
    Ok((
        Manifest {
            metadata: m.maps.into_metadata(m.metadata),
            pipeline: m.pipeline,
        },
        rest,
    ))
}

/// A manifest as the engine loads it: decoded and checked, but the metadata's two maps are kept
/// as the pairs on the wire until someone asks for the metadata ([`Maps::into_metadata`]).
/// Inserting into a `BTreeMap` is 6 KB of wasm code (one copy per value type) that a model's
/// first `fromBytes` compiled for a metadata nobody reads on the prediction path.
#[derive(Debug)]
pub struct Unmapped {
    /// The metadata, its `provenance` and `metrics` empty.
    pub metadata: Metadata,
    /// Its `provenance` and `metrics`.
    pub maps: Maps,
    /// The pipeline.
    pub pipeline: Pipeline,
}

/// The metadata's maps as sequences of pairs, in wire order.
#[derive(Debug, Default, Clone)]
pub struct Maps {
    provenance: Vec<(String, String)>,
    metrics: Vec<(String, f64)>,
}

impl Maps {
    /// `provenance`'s pairs.
    pub fn provenance(&self) -> &[(String, String)] {
        &self.provenance
    }

    /// `metrics`' pairs.
    pub fn metrics(&self) -> &[(String, f64)] {
        &self.metrics
    }

    /// `metadata` with its maps: a repeated key keeps its last value (serde's `BTreeMap`).
    pub fn into_metadata(self, mut metadata: Metadata) -> Metadata {
        metadata.provenance.extend(self.provenance);
        metadata.metrics.extend(self.metrics);
        metadata
    }
}

/// [`take_from_bytes`] without building the metadata's maps: accepts and refuses the same bytes.
pub fn take_unmapped(bytes: &[u8]) -> Result<(Unmapped, &[u8])> {
    let mut r = Reader {
        b: bytes,
        error: None,
    };
    let (metadata, maps) = r.metadata();
    let m = Unmapped {
        metadata,
        maps,
        pipeline: Pipeline {
            features: r.seq(Reader::feature_block),
            transforms: r.seq(Reader::transform),
            classifier: r.classifier(),
        },
    };
    match r.error {
        None => Ok((m, r.b)),
        Some(what) => Err(bad(what)),
    }
}

/// Out of line: the success path never formats.
#[cold]
#[inline(never)]
fn bad(what: &str) -> Error {
    Error::Corrupt(format!("body does not decode: {what}"))
}

/// Reads without `?`: the first error is kept and every read after it gives a default value
/// and consumes nothing, so the caller checks once. (With `?` in every field of every struct,
/// rustc emits the drops of each partly built value: the reader tripled in size.)
struct Reader<'a> {
    b: &'a [u8],
    error: Option<&'static str>,
}

impl<'a> Reader<'a> {
    #[cold]
    #[inline(never)]
    fn fail(&mut self, what: &'static str) {
        self.error.get_or_insert(what);
        self.b = &[];
    }

    #[inline(never)]
    fn take(&mut self, n: usize) -> &'a [u8] {
        if self.error.is_some() || n > self.b.len() {
            self.fail("the manifest ends early");
            return &[];
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        head
    }

    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or_default()
    }

    /// LEB128 of a `bits`-bit integer as postcard reads it: at most `ceil(bits / 7)` bytes, the
    /// last of which may not carry bits beyond the type (non-minimal encodings are accepted).
    #[inline(never)]
    fn varint(&mut self, bits: u32) -> u64 {
        let max = bits.div_ceil(7);
        let last_max = (1u8 << (bits % 7)) - 1;
        let mut out = 0u64;
        for i in 0..max {
            let v = self.byte();
            out |= u64::from(v & 0x7f) << (7 * i);
            if v & 0x80 == 0 {
                if i == max - 1 && v > last_max {
                    break;
                }
                return out;
            }
        }
        self.fail("a varint is out of range");
        0
    }

    fn u32(&mut self) -> u32 {
        self.varint(32) as u32
    }

    fn u64(&mut self) -> u64 {
        self.varint(64)
    }

    /// A length: a varint of the platform's `usize`, as postcard reads it.
    fn len(&mut self) -> usize {
        self.varint(usize::BITS) as usize
    }

    fn i64(&mut self) -> i64 {
        let z = self.u64();
        (z >> 1) as i64 ^ -((z & 1) as i64)
    }

    #[inline(never)]
    fn f64(&mut self) -> f64 {
        let mut a = [0u8; 8];
        if let Ok(b) = <[u8; 8]>::try_from(self.take(8)) {
            a = b;
        }
        f64::from_le_bytes(a)
    }

    /// 0 or 1.
    #[inline(never)]
    fn flag(&mut self, what: &'static str) -> bool {
        match self.byte() {
            0 => false,
            1 => true,
            _ => {
                self.fail(what);
                false
            }
        }
    }

    fn bool(&mut self) -> bool {
        self.flag("a bool is neither 0 nor 1")
    }

    #[inline(never)]
    fn string(&mut self) -> String {
        let n = self.len();
        let b = self.take(n);
        match std::str::from_utf8(b) {
            Ok(s) => String::from(s),
            Err(_) => {
                self.fail("a string is not UTF-8");
                String::new()
            }
        }
    }

    /// An enum's variant index, below `n`.
    #[inline(never)]
    fn variant(&mut self, n: u32) -> u32 {
        let v = self.u32();
        if v >= n {
            self.fail("unknown enum variant");
        }
        v
    }

    fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        self.flag("an option tag is neither 0 nor 1").then(|| f(self))
    }

    /// A sequence: its length, then the elements. Every element takes at least one byte or
    /// fails, so the bytes left bound the allocation and the loop whatever length is declared.
    fn seq<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let n = self.len();
        let mut out = Vec::with_capacity(n.min(self.b.len()));
        for _ in 0..n {
            if self.error.is_some() {
                break;
            }
            out.push(f(self));
        }
        out
    }

    /// A map: as a sequence of pairs (made a `BTreeMap` by [`Maps::into_metadata`]).
    fn map<V>(&mut self, mut f: impl FnMut(&mut Self) -> V) -> Vec<(String, V)> {
        self.seq(|r| (r.string(), f(r)))
    }

    #[inline(never)]
    fn metadata(&mut self) -> (Metadata, Maps) {
        let mut maps = Maps::default();
        let metadata = Metadata {
            name: self.string(),
            version: self.string(),
            skedge_version: self.string(),
            sklearn_version: self.string(),
            python_version: self.string(),
            numpy_version: self.string(),
            unicode_version: self.string(),
            source_sha256: self.string(),
            created: self.string(),
            precision: match self.variant(2) {
                0 => Precision::Exact,
                _ => Precision::Compact,
            },
            provenance: {
                maps.provenance = self.map(Reader::string);
                BTreeMap::new()
            },
            metrics: {
                maps.metrics = self.map(Reader::f64);
                BTreeMap::new()
            },
            baseline: self.option(|r| Baseline {
                count: r.u64(),
                label_counts: r.seq(Reader::u64),
                confidence: r.option(|r| r.seq(Reader::u64)),
                oov: r.option(|r| OovCounts {
                    counts: r.seq(Reader::u64),
                    no_features: r.u64(),
                    oov_features: r.u64(),
                    total_features: r.u64(),
                }),
                length: r.seq(Reader::u64),
            }),
            agreement: self.option(|r| Agreement {
                texts: r.u64(),
                label_changes: r.u64(),
                max_abs_decision_diff: r.f64(),
                max_abs_proba_diff: r.f64(),
            }),
        };
        (metadata, maps)
    }

    #[inline(never)]
    fn section(&mut self) -> Section {
        Section {
            offset: self.u32(),
            len: self.u32(),
        }
    }

    #[inline(never)]
    fn feature_block(&mut self) -> FeatureBlock {
        FeatureBlock {
            analyzer: Analyzer {
                kind: match self.variant(3) {
                    0 => AnalyzerKind::Word,
                    1 => AnalyzerKind::Char,
                    _ => AnalyzerKind::CharWb,
                },
                ngram_range: (self.u32(), self.u32()),
                lowercase: self.bool(),
                strip_accents: match self.variant(3) {
                    0 => StripAccents::None,
                    1 => StripAccents::Ascii,
                    _ => StripAccents::Unicode,
                },
                token_pattern: match self.variant(2) {
                    0 => TokenPattern::TwoOrMoreWordChars,
                    _ => TokenPattern::OneOrMoreWordChars,
                },
                stop_words: self.seq(Reader::string),
            },
            counts: match self.variant(3) {
                0 => Counts::Vocabulary(self.vocabulary()),
                1 => Counts::Hashing {
                    n_features: self.u32(),
                    alternate_sign: self.bool(),
                },
                _ => Counts::Pairs(Pairs {
                    count: self.u32(),
                    words: self.vocabulary(),
                    columns: self.section(),
                    seconds: self.section(),
                    width: self.byte(),
                }),
            },
            binary: self.bool(),
            transforms: self.seq(Reader::transform),
        }
    }

    #[inline(never)]
    fn vocabulary(&mut self) -> Vocabulary {
        Vocabulary {
            count: self.u32(),
            table: self.section(),
            max_probe: self.u32(),
            block_terms: self.u32(),
            block_offsets: self.section(),
            blocks: self.section(),
        }
    }

    #[inline(never)]
    fn transform(&mut self) -> Transform {
        match self.variant(6) {
            0 => Transform::Tfidf {
                sublinear_tf: self.bool(),
                idf: self.option(|r| Idf {
                    values: r.section(),
                    index_width: r.byte(),
                    index: r.section(),
                }),
                log_exceptions: self.log_exceptions(),
            },
            1 => Transform::Normalize {
                norm: match self.variant(2) {
                    0 => Norm::L1,
                    _ => Norm::L2,
                },
            },
            2 => Transform::Scale { factor: self.f64() },
            3 => Transform::Select {
                n_features_in: self.u32(),
                support: self.section(),
            },
            4 => Transform::ColumnScale {
                scale: self.section(),
            },
            _ => Transform::Clip {
                min: self.f64(),
                max: self.f64(),
            },
        }
    }

    /// `compact::log_exceptions`: (k − previous k, numpy's bits − `libm::log(k)`'s bits) pairs.
    #[inline(never)]
    fn log_exceptions(&mut self) -> Vec<(u32, f64)> {
        let wire = self.seq(|r| (r.u32(), r.i64()));
        let mut k = 0u32;
        let mut out = Vec::with_capacity(wire.len());
        for (step, delta) in wire {
            let Some(next) = k.checked_add(step) else {
                self.fail("log exception k overflows");
                break;
            };
            k = next;
            let bits = (libm::log(f64::from(k)).to_bits() as i64).wrapping_add(delta);
            out.push((k, f64::from_bits(bits as u64)));
        }
        out
    }

    #[inline(never)]
    fn classes(&mut self) -> Classes {
        match self.variant(2) {
            0 => Classes::Int(self.seq(Reader::i64)),
            _ => Classes::Str(self.seq(Reader::string)),
        }
    }

    #[inline(never)]
    fn matrix(&mut self) -> Matrix {
        Matrix {
            rows: self.u32(),
            cols: self.u32(),
            dtype: match self.variant(2) {
                0 => Dtype::F64,
                _ => Dtype::F16,
            },
            data: self.section(),
        }
    }

    #[inline(never)]
    fn linear(&mut self) -> Linear {
        Linear {
            estimator: self.string(),
            classes: self.classes(),
            coef: self.matrix(),
            intercept: self.seq(Reader::f64),
            proba: match self.variant(5) {
                0 => LinearProba::None,
                1 => LinearProba::Logistic,
                2 => LinearProba::Softmax,
                3 => LinearProba::ModifiedHuber,
                _ => LinearProba::OneVsRest,
            },
        }
    }

    #[inline(never)]
    fn naive_bayes(&mut self) -> NaiveBayes {
        NaiveBayes {
            estimator: self.string(),
            classes: self.classes(),
            coef: self.matrix(),
            intercept: self.option(|r| r.seq(Reader::f64)),
            binarize: self.option(Reader::f64),
        }
    }

    /// The classifier; each kind read out of line, so a load compiles only its model's kind.
    #[inline(never)]
    fn classifier(&mut self) -> Classifier {
        match self.variant(5) {
            0 => Classifier::Linear(self.linear()),
            1 => Classifier::NaiveBayes(self.naive_bayes()),
            2 => self.calibrated_sigmoid(),
            3 => self.calibrated_isotonic(),
            _ => self.voting(),
        }
    }

    #[inline(never)]
    fn calibrated_sigmoid(&mut self) -> Classifier {
        Classifier::CalibratedSigmoid(Calibrated {
            classes: self.classes(),
            members: self.seq(|r| CalibratedMember {
                base: r.linear(),
                class_indices: r.seq(Reader::u32),
                calibrators: r.seq(|r| (r.f64(), r.f64())),
            }),
        })
    }

    #[inline(never)]
    fn calibrated_isotonic(&mut self) -> Classifier {
        Classifier::CalibratedIsotonic(CalibratedIsotonic {
            classes: self.classes(),
            members: self.seq(|r| IsotonicMember {
                base: r.linear(),
                class_indices: r.seq(Reader::u32),
                calibrators: r.seq(|r| Isotonic {
                    x: r.section(),
                    y: r.section(),
                }),
            }),
        })
    }

    #[inline(never)]
    fn voting(&mut self) -> Classifier {
        Classifier::Voting(Voting {
            classes: self.classes(),
            soft: self.bool(),
            weights: self.option(|r| r.seq(Reader::f64)),
            estimators: self.seq(|r| match r.variant(2) {
                0 => VotingEstimator::Linear(r.linear()),
                _ => VotingEstimator::NaiveBayes(r.naive_bayes()),
            }),
        })
    }
}
