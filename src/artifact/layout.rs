//! The format 3 body (FORMAT.md §2): a postcard manifest, then a data area of 8-aligned
//! little-endian sections that the engine reads in place.
//!
//! ```text
//! body := manifest_len (u32 LE) ‖ manifest (postcard, schema::v3::Manifest) ‖ zero padding to a
//!         multiple of 8 ‖ data area (sections, each starting at a multiple of 8)
//! ```
//!
//! Format 4 is the same with `schema::Input` after the manifest, counted in `manifest_len`.
//!
//! Loading decodes the manifest (small: metadata, parameters, section offsets) and checks every
//! section against the data area once; nothing proportional to the vocabulary is decoded or
//! built. [`encode`] is the one writer: `skedge pack`, `skedge repack`, and the conversion of a
//! format 2 body at load all go through it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::schema::{self, v3, Body};
use crate::error::{Error, Result};

/// The bytes a loaded model reads from: the artifact (or its decrypted plaintext), shared by
/// every component, and where the data area starts in it.
#[derive(Clone)]
pub struct Data {
    buf: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

/// A checked range of the model's bytes.
#[derive(Clone)]
pub struct Slice {
    buf: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl std::fmt::Debug for Slice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slice({} bytes)", self.end - self.start)
    }
}

impl Slice {
    /// The bytes (checked against the buffer when the slice was made).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// The little-endian u32 at element `i` of `b`.
#[inline]
pub fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    u32_at_byte(b, i.checked_mul(4)?)
}

/// The little-endian u32 at byte `at` of `b` (any alignment).
#[inline]
pub fn u32_at_byte(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Appends `x` as LEB128: the escaped lengths of front-coded terms (FORMAT.md §2; the compact
/// vocabulary of format 2 too).
pub fn push_varint(out: &mut Vec<u8>, mut x: u32) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// The LEB128 u32 at the front of `b` (five bytes at most), `b` advanced past it.
#[inline]
pub fn varint(b: &mut &[u8]) -> Option<u32> {
    let mut x: u32 = 0;
    for shift in (0..35).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        x |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(x);
        }
    }
    None
}

/// The little-endian f64 at element `i` of `b`.
#[inline]
pub fn f64_at(b: &[u8], i: usize) -> Option<f64> {
    let at = i.checked_mul(8)?;
    Some(f64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The little-endian binary16 at element `i` of `b`, widened.
#[inline]
pub fn f16_at(b: &[u8], i: usize) -> Option<f64> {
    let at = i.checked_mul(2)?;
    let bits = u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?);
    Some(half::f16::from_bits(bits).to_f64())
}

impl Data {
    /// Splits a format 3 or 4 body (`buf[body]`) into its manifest, input and data area.
    pub fn open(
        buf: Arc<Vec<u8>>,
        body: std::ops::Range<usize>,
        version: u16,
    ) -> Result<(super::manifest::Unmapped, schema::Input, Data)> {
        let bytes = buf
            .get(body.clone())
            .ok_or_else(|| Error::Corrupt("body out of range".into()))?;
        let len = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| Error::Corrupt("body shorter than its manifest length".into()))?
            as usize;
        let manifest_bytes = bytes
            .get(4..4 + len.min(bytes.len()))
            .filter(|m| m.len() == len)
            .ok_or_else(|| Error::Corrupt(format!("manifest of {len} bytes exceeds the body")))?;
        let (manifest, rest) = super::manifest::take_unmapped(manifest_bytes)?;
        let (input, rest) = match version {
            super::COLUMN_FORMAT_VERSION => postcard::take_from_bytes::<schema::Input>(rest)?,
            _ => (schema::Input::Text, rest),
        };
        if !rest.is_empty() {
            return Err(Error::Corrupt(format!(
                "{} bytes left after the manifest",
                rest.len()
            )));
        }
        let data_at = align8(4 + len);
        if data_at > bytes.len() {
            return Err(Error::Corrupt("body ends inside the manifest's padding".into()));
        }
        let data = Data {
            start: body.start + data_at,
            end: body.end,
            buf,
        };
        Ok((manifest, input, data))
    }

    /// Checks a section against the data area: in bounds, 8-aligned, a whole number of
    /// `elem`-byte elements.
    pub fn slice(&self, s: v3::Section, elem: usize, what: &str) -> Result<Slice> {
        let (offset, len) = (s.offset as usize, s.len as usize);
        let area = self.end - self.start;
        if offset % 8 != 0 || len % elem != 0 || offset > area || len > area - offset {
            return Err(Error::Corrupt(format!(
                "{what}: section of {len} bytes at {offset} does not fit the {area}-byte data area \
                 in whole {elem}-byte elements at an 8-aligned offset"
            )));
        }
        Ok(Slice {
            buf: self.buf.clone(),
            start: self.start + offset,
            end: self.start + offset + len,
        })
    }
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Builds the data area: each section appended at the next multiple of 8.
#[derive(Default)]
struct Writer {
    data: Vec<u8>,
    load_percent: u64,
    block_terms: u32,
    word_block_terms: u32,
}

impl Writer {
    fn section(&mut self, bytes: &[u8]) -> Result<v3::Section> {
        self.data.resize(align8(self.data.len()), 0);
        let offset = u32::try_from(self.data.len());
        let len = u32::try_from(bytes.len());
        self.data.extend_from_slice(bytes);
        match (offset, len) {
            (Ok(offset), Ok(len)) if self.data.len() <= u32::MAX as usize => Ok(v3::Section { offset, len }),
            _ => Err(Error::Corrupt("the data area exceeds 4 GiB".into())),
        }
    }

    /// `pairs`: whether the analyzer's features are at most word pairs, which the word pairs
    /// layout reads from its tokens; it is written when it is the smaller.
    fn counts(&mut self, c: &schema::Counts, pairs: bool) -> Result<v3::Counts> {
        Ok(match c {
            schema::Counts::Vocabulary { terms, lengths } => {
                let (load, block) = (self.load_percent, self.block_terms);
                let plain = crate::vectorize::pack_vocabulary_with(terms, lengths, load, block)?;
                let packed = match pairs {
                    true => crate::vectorize::pack_pairs(terms, lengths, load, self.word_block_terms)?,
                    false => None,
                };
                match packed {
                    Some(p) if p.size() < plain.size() => v3::Counts::Pairs(v3::Pairs {
                        count: p.count,
                        words: self.vocabulary(&p.words)?,
                        columns: self.section(&p.columns)?,
                        seconds: self.section(&p.seconds)?,
                        width: 2, // u16 ranks: `pack_pairs` keeps the plain layout beyond them
                    }),
                    _ => v3::Counts::Vocabulary(self.vocabulary(&plain)?),
                }
            }
            schema::Counts::Hashing {
                n_features,
                alternate_sign,
            } => v3::Counts::Hashing {
                n_features: *n_features,
                alternate_sign: *alternate_sign,
            },
        })
    }

    fn vocabulary(&mut self, v: &crate::vectorize::PackedVocabulary) -> Result<v3::Vocabulary> {
        Ok(v3::Vocabulary {
            count: v.count,
            table: self.section(&v.table)?,
            max_probe: v.max_probe,
            block_terms: v.block_terms,
            block_offsets: self.section(&v.block_offsets)?,
            blocks: self.section(&v.blocks)?,
        })
    }

    fn transform(&mut self, t: &schema::Transform) -> Result<v3::Transform> {
        Ok(match t {
            schema::Transform::Tfidf {
                sublinear_tf,
                idf,
                log_exceptions,
            } => v3::Transform::Tfidf {
                sublinear_tf: *sublinear_tf,
                idf: idf.as_deref().map(|v| self.idf(v)).transpose()?,
                log_exceptions: log_exceptions.clone(),
            },
            schema::Transform::Normalize { norm } => v3::Transform::Normalize { norm: *norm },
            schema::Transform::Scale { factor } => v3::Transform::Scale { factor: *factor },
            schema::Transform::Select {
                n_features_in,
                support,
            } => v3::Transform::Select {
                n_features_in: *n_features_in,
                support: self.section(&support.iter().flat_map(|c| c.to_le_bytes()).collect::<Vec<_>>())?,
            },
            schema::Transform::ColumnScale { scale } => {
                crate::classify::check_finite(scale, "scale")?;
                v3::Transform::ColumnScale {
                    scale: self.section(&scale.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>())?,
                }
            }
            schema::Transform::Clip { min, max } => {
                crate::vectorize::check_clip(*min, *max)?;
                v3::Transform::Clip { min: *min, max: *max }
            }
        })
    }

    /// Distinct values, most frequent first (ties by bits), and the narrowest index that holds
    /// them: a fitted `idf_` has a few hundred distinct values for tens of thousands of columns.
    fn idf(&mut self, idf: &[f64]) -> Result<v3::Idf> {
        crate::classify::check_finite(idf, "idf")?;
        let mut counts = BTreeMap::<u64, u32>::new();
        for x in idf {
            *counts.entry(x.to_bits()).or_default() += 1;
        }
        let mut distinct: Vec<(u64, u32)> = counts.into_iter().collect();
        distinct.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let position: BTreeMap<u64, u32> = distinct
            .iter()
            .enumerate()
            .map(|(i, &(bits, _))| (bits, i as u32))
            .collect();
        let values: Vec<u8> = distinct
            .iter()
            .flat_map(|&(bits, _)| bits.to_le_bytes())
            .collect();
        // Past 256 distinct values, indices of `bits` bits, packed, unless that is two bytes:
        // SST-2's 483 distinct values take 9 bits a column instead of 16. (Up to 256, one byte:
        // the artifacts of small models stay as they were.)
        let bits = usize::BITS - distinct.len().saturating_sub(1).leading_zeros();
        let (width, index) = match bits {
            9..=15 | 17..=24 => {
                let mut index = vec![0u8; (idf.len() * bits as usize).div_ceil(8) + 3];
                for (col, x) in idf.iter().enumerate() {
                    let (at, shift) = ((col * bits as usize) / 8, (col * bits as usize) % 8);
                    let word = position[&x.to_bits()] << shift;
                    for (k, byte) in word.to_le_bytes().iter().enumerate() {
                        index[at + k] |= byte;
                    }
                }
                (v3::IDF_PACKED | bits as u8, index)
            }
            _ => {
                let width: u8 = match bits {
                    0..=8 => 1,
                    16 => 2,
                    _ => 4,
                };
                let mut index = Vec::with_capacity(idf.len() * width as usize);
                for x in idf {
                    index.extend_from_slice(&position[&x.to_bits()].to_le_bytes()[..width as usize]);
                }
                (width, index)
            }
        };
        Ok(v3::Idf {
            values: self.section(&values)?,
            index_width: width,
            index: self.section(&index)?,
        })
    }

    /// f16 when every value is exactly a binary16 number (the `compact` weights), else f64.
    fn matrix(&mut self, m: &schema::Matrix) -> Result<v3::Matrix> {
        crate::classify::check_finite(&m.data, "coef")?;
        let halves: Option<Vec<u16>> = if m.data.is_empty() {
            None
        } else {
            m.data.iter().map(|&x| exact_f16(x)).collect()
        };
        let (dtype, data) = match halves {
            Some(h) => (
                v3::Dtype::F16,
                self.section(&h.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>())?,
            ),
            None => (
                v3::Dtype::F64,
                self.section(&m.data.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>())?,
            ),
        };
        Ok(v3::Matrix {
            rows: m.rows,
            cols: m.cols,
            dtype,
            data,
        })
    }

    fn linear(&mut self, l: &schema::Linear) -> Result<v3::Linear> {
        Ok(v3::Linear {
            estimator: l.estimator.clone(),
            classes: l.classes.clone(),
            coef: self.matrix(&l.coef)?,
            intercept: l.intercept.clone(),
            proba: l.proba,
        })
    }

    fn naive_bayes(&mut self, nb: &schema::NaiveBayes) -> Result<v3::NaiveBayes> {
        Ok(v3::NaiveBayes {
            estimator: nb.estimator.clone(),
            classes: nb.classes.clone(),
            coef: self.matrix(&nb.coef)?,
            intercept: nb.intercept.clone(),
            binarize: nb.binarize,
        })
    }

    fn classifier(&mut self, c: &schema::Classifier) -> Result<v3::Classifier> {
        Ok(match c {
            schema::Classifier::Linear(l) => v3::Classifier::Linear(self.linear(l)?),
            schema::Classifier::NaiveBayes(nb) => v3::Classifier::NaiveBayes(self.naive_bayes(nb)?),
            schema::Classifier::Voting(v) => v3::Classifier::Voting(v3::Voting {
                classes: v.classes.clone(),
                soft: v.soft,
                weights: v.weights.clone(),
                estimators: v
                    .estimators
                    .iter()
                    .map(|e| {
                        Ok(match e {
                            schema::VotingEstimator::Linear(l) => {
                                v3::VotingEstimator::Linear(self.linear(l)?)
                            }
                            schema::VotingEstimator::NaiveBayes(nb) => {
                                v3::VotingEstimator::NaiveBayes(self.naive_bayes(nb)?)
                            }
                        })
                    })
                    .collect::<Result<_>>()?,
            }),
            schema::Classifier::CalibratedSigmoid(c) => v3::Classifier::CalibratedSigmoid(v3::Calibrated {
                classes: c.classes.clone(),
                members: c
                    .members
                    .iter()
                    .map(|m| {
                        Ok(v3::CalibratedMember {
                            base: self.linear(&m.base)?,
                            class_indices: m.class_indices.clone(),
                            calibrators: m.calibrators.clone(),
                        })
                    })
                    .collect::<Result<_>>()?,
            }),
            schema::Classifier::CalibratedIsotonic(c) => {
                v3::Classifier::CalibratedIsotonic(v3::CalibratedIsotonic {
                    classes: c.classes.clone(),
                    members: c
                        .members
                        .iter()
                        .map(|m| {
                            Ok(v3::IsotonicMember {
                                base: self.linear(&m.base)?,
                                class_indices: m.class_indices.clone(),
                                calibrators: m
                                    .calibrators
                                    .iter()
                                    .map(|i| {
                                        Ok(v3::Isotonic {
                                            x: self.section(&f64_bytes(&i.x))?,
                                            y: self.section(&f64_bytes(&i.y))?,
                                        })
                                    })
                                    .collect::<Result<_>>()?,
                            })
                        })
                        .collect::<Result<_>>()?,
                })
            }
        })
    }
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The value as binary16 when that is exact (same bits back, so -0.0 stays -0.0).
fn exact_f16(x: f64) -> Option<u16> {
    let h = half::f16::from_f64(x);
    (h.to_f64().to_bits() == x.to_bits()).then(|| h.to_bits())
}

/// Encodes a model into a format 3 body, or 4 when it takes a column (the plaintext the envelope
/// seals, with the version of [`super::format_version`]). Refuses what a
/// loader would refuse later only where the layout depends on it (duplicate terms, non-finite
/// bulk values, sizes beyond u32); shapes are checked by loading.
pub fn encode(body: &Body) -> Result<Vec<u8>> {
    encode_with(
        body,
        crate::vectorize::LOAD_PERCENT,
        crate::vectorize::BLOCK_TERMS,
        crate::vectorize::WORD_BLOCK_TERMS,
    )
}

/// [`encode`] with another vocabulary table load factor (percent) and block sizes (of a plain
/// vocabulary, of a word pairs vocabulary's words): for measuring layouts (benches/PROFILE.md)
/// and for tests of the layouts older writers chose; `skedge` writes the defaults.
#[doc(hidden)]
pub fn encode_with(
    body: &Body,
    load_percent: u64,
    block_terms: u32,
    word_block_terms: u32,
) -> Result<Vec<u8>> {
    let mut w = Writer {
        load_percent,
        block_terms,
        word_block_terms,
        ..Writer::default()
    };
    let p = &body.pipeline;
    let features = p
        .features
        .iter()
        .map(|f| {
            Ok(v3::FeatureBlock {
                analyzer: f.analyzer.clone(),
                counts: w.counts(&f.counts, crate::text::word_pairs(&f.analyzer).is_some())?,
                binary: f.binary,
                transforms: f
                    .transforms
                    .iter()
                    .map(|t| w.transform(t))
                    .collect::<Result<_>>()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let transforms = p
        .transforms
        .iter()
        .map(|t| w.transform(t))
        .collect::<Result<_>>()?;
    let classifier = w.classifier(&p.classifier)?;
    let manifest = v3::Manifest {
        metadata: body.metadata.clone(),
        pipeline: v3::Pipeline {
            features,
            transforms,
            classifier,
        },
    };
    let mut m = postcard::to_allocvec(&manifest).map_err(|e| Error::Corrupt(format!("encode: {e}")))?;
    if let schema::Input::Column(_) = &body.input {
        m.extend(postcard::to_allocvec(&body.input).map_err(|e| Error::Corrupt(format!("encode: {e}")))?);
    }
    let m_len = u32::try_from(m.len()).map_err(|_| Error::Corrupt("manifest exceeds 4 GiB".into()))?;
    let mut out = Vec::with_capacity(align8(4 + m.len()) + w.data.len());
    out.extend_from_slice(&m_len.to_le_bytes());
    out.extend_from_slice(&m);
    out.resize(align8(out.len()), 0);
    out.extend_from_slice(&w.data);
    Ok(out)
}

/// The model of a format 3 or 4 body as [`encode`] takes it: what `skedge repack` lays out again
/// with this version's writer (a vocabulary as word pairs, idf indices packed, when smaller).
/// Every term and value comes back bit for bit (`tests/artifact.rs`: every fixture's body
/// decodes and encodes to the same bytes); a section that does not fit is `ARTIFACT_CORRUPT`.
pub fn decode(body: &[u8], version: u16) -> Result<Body> {
    // A pair's text is stored as two bytes: a hand-made vocabulary of a million pairs of a long
    // word would decode to terabytes. No real one comes near 64 bytes of terms per body byte.
    let mut budget = body.len().saturating_mul(64);
    let (m, input, data) = Data::open(Arc::new(body.to_vec()), 0..body.len(), version)?;
    let mut total = 0;
    let mut features = Vec::with_capacity(m.pipeline.features.len());
    for f in m.pipeline.features {
        let (counts, mut width) = match f.counts {
            v3::Counts::Vocabulary(v) => terms(&crate::vectorize::Vocabulary::new(v, &data)?, &mut budget)?,
            v3::Counts::Pairs(p) => {
                let words = crate::text::word_pairs(&f.analyzer).is_some();
                terms(
                    &crate::vectorize::Vocabulary::with_pairs(p, words, &data)?,
                    &mut budget,
                )?
            }
            v3::Counts::Hashing {
                n_features,
                alternate_sign,
            } => (
                schema::Counts::Hashing {
                    n_features,
                    alternate_sign,
                },
                u64::from(n_features),
            ),
        };
        let transforms = f
            .transforms
            .into_iter()
            .map(|t| decode_transform(t, &data, &mut width))
            .collect::<Result<_>>()?;
        total += width;
        features.push(schema::FeatureBlock {
            analyzer: f.analyzer,
            counts,
            binary: f.binary,
            transforms,
        });
    }
    let transforms = m
        .pipeline
        .transforms
        .into_iter()
        .map(|t| decode_transform(t, &data, &mut total))
        .collect::<Result<_>>()?;
    Ok(Body {
        metadata: m.maps.into_metadata(m.metadata),
        pipeline: schema::Pipeline {
            features,
            transforms,
            classifier: decode_classifier(m.pipeline.classifier, &data)?,
        },
        input,
    })
}

/// A vocabulary's terms in column order, and their number; at most `budget` bytes of terms
/// (what is left of it is left in `budget`). Each term must be UTF-8 and found at its column:
/// loading checks sizes only, and a hand-made table or pair run that disagrees with the stored
/// terms would otherwise predict one way before a repack and another after it.
fn terms(v: &crate::vectorize::Vocabulary, budget: &mut usize) -> Result<(schema::Counts, u64)> {
    let (mut terms, mut lengths) = (Vec::new(), Vec::with_capacity(v.len()));
    for col in 0..v.len() {
        let term = v
            .term(col)
            .filter(|t| std::str::from_utf8(t).ok().and_then(|t| v.get(t)) == Some(col as u32))
            .ok_or_else(|| Error::Corrupt(format!("vocabulary: column {col}'s term is not found there")))?;
        *budget = budget.checked_sub(term.len()).ok_or_else(|| {
            Error::Corrupt("vocabulary: its terms decode to more than 64 bytes per body byte".into())
        })?;
        lengths.push(term.len() as u32);
        terms.extend(term);
    }
    Ok((schema::Counts::Vocabulary { terms, lengths }, v.len() as u64))
}

/// A transform of rows `width` columns wide (a selection narrows them).
fn decode_transform(t: v3::Transform, data: &Data, width: &mut u64) -> Result<schema::Transform> {
    Ok(match t {
        v3::Transform::Tfidf {
            sublinear_tf,
            idf,
            log_exceptions,
        } => schema::Transform::Tfidf {
            sublinear_tf,
            idf: match idf {
                // An index past the distinct values reads as NaN, which `encode` refuses.
                Some(i) => {
                    let idf = crate::vectorize::Idf::new(i, *width, data)?;
                    Some((0..*width as usize).map(|col| idf.get(col)).collect())
                }
                None => None,
            },
            log_exceptions,
        },
        v3::Transform::Normalize { norm } => schema::Transform::Normalize { norm },
        v3::Transform::Scale { factor } => schema::Transform::Scale { factor },
        v3::Transform::Select {
            n_features_in,
            support,
        } => {
            let support: Vec<u32> = data
                .slice(support, 4, "support")?
                .bytes()
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            *width = support.len() as u64;
            schema::Transform::Select {
                n_features_in,
                support,
            }
        }
        v3::Transform::ColumnScale { scale } => schema::Transform::ColumnScale {
            scale: f64s(data, scale, "scale")?,
        },
        v3::Transform::Clip { min, max } => schema::Transform::Clip { min, max },
    })
}

fn f64s(data: &Data, s: v3::Section, what: &str) -> Result<Vec<f64>> {
    Ok(data
        .slice(s, 8, what)?
        .bytes()
        .chunks_exact(8)
        .filter_map(|c| f64_at(c, 0))
        .collect())
}

fn decode_matrix(m: v3::Matrix, data: &Data) -> Result<schema::Matrix> {
    let elem = match m.dtype {
        v3::Dtype::F64 => 8,
        v3::Dtype::F16 => 2,
    };
    let bytes = data.slice(m.data, elem, "coef")?;
    let b = bytes.bytes();
    Ok(schema::Matrix {
        rows: m.rows,
        cols: m.cols,
        data: (0..b.len() / elem)
            .filter_map(|i| match m.dtype {
                v3::Dtype::F64 => f64_at(b, i),
                v3::Dtype::F16 => f16_at(b, i),
            })
            .collect(),
    })
}

fn decode_linear(l: v3::Linear, data: &Data) -> Result<schema::Linear> {
    Ok(schema::Linear {
        estimator: l.estimator,
        classes: l.classes,
        coef: decode_matrix(l.coef, data)?,
        intercept: l.intercept,
        proba: l.proba,
    })
}

fn decode_naive_bayes(nb: v3::NaiveBayes, data: &Data) -> Result<schema::NaiveBayes> {
    Ok(schema::NaiveBayes {
        estimator: nb.estimator,
        classes: nb.classes,
        coef: decode_matrix(nb.coef, data)?,
        intercept: nb.intercept,
        binarize: nb.binarize,
    })
}

fn decode_classifier(c: v3::Classifier, data: &Data) -> Result<schema::Classifier> {
    Ok(match c {
        v3::Classifier::Linear(l) => schema::Classifier::Linear(decode_linear(l, data)?),
        v3::Classifier::NaiveBayes(nb) => schema::Classifier::NaiveBayes(decode_naive_bayes(nb, data)?),
        v3::Classifier::Voting(v) => schema::Classifier::Voting(schema::Voting {
            classes: v.classes,
            soft: v.soft,
            weights: v.weights,
            estimators: v
                .estimators
                .into_iter()
                .map(|e| {
                    Ok(match e {
                        v3::VotingEstimator::Linear(l) => {
                            schema::VotingEstimator::Linear(decode_linear(l, data)?)
                        }
                        v3::VotingEstimator::NaiveBayes(nb) => {
                            schema::VotingEstimator::NaiveBayes(decode_naive_bayes(nb, data)?)
                        }
                    })
                })
                .collect::<Result<_>>()?,
        }),
        v3::Classifier::CalibratedSigmoid(c) => schema::Classifier::CalibratedSigmoid(schema::Calibrated {
            classes: c.classes,
            members: c
                .members
                .into_iter()
                .map(|m| {
                    Ok(schema::CalibratedMember {
                        base: decode_linear(m.base, data)?,
                        class_indices: m.class_indices,
                        calibrators: m.calibrators,
                    })
                })
                .collect::<Result<_>>()?,
        }),
        v3::Classifier::CalibratedIsotonic(c) => {
            schema::Classifier::CalibratedIsotonic(schema::CalibratedIsotonic {
                classes: c.classes,
                members: c
                    .members
                    .into_iter()
                    .map(|m| {
                        Ok(schema::IsotonicMember {
                            base: decode_linear(m.base, data)?,
                            class_indices: m.class_indices,
                            calibrators: m
                                .calibrators
                                .into_iter()
                                .map(|i| {
                                    Ok(schema::Isotonic {
                                        x: f64s(data, i.x, "isotonic x")?,
                                        y: f64s(data, i.y, "isotonic y")?,
                                    })
                                })
                                .collect::<Result<_>>()?,
                        })
                    })
                    .collect::<Result<_>>()?,
            })
        }
    })
}
