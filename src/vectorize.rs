//! From analyzer features to the sparse row scikit-learn feeds its classifier.
//!
//! counts (`CountVectorizer` vocabulary or `HashingVectorizer`'s `FeatureHasher`) → `binary` →
//! transforms (`TfidfTransformer`, `normalize`, `FeatureUnion` weights). Rows are kept as scipy's
//! CSR rows are: ascending columns, explicit zeros kept (a hashing collision of +1 and -1 leaves a
//! stored 0, which `binary=True` turns into 1).

use crate::artifact::schema::{Counts as CountsParams, FeatureBlock, Norm, Transform as TransformParams};
use crate::error::{Error, Result};
use crate::text::{Analyzer, Scratch};

/// A sparse row: `(column, value)` in ascending column order.
pub type Row = Vec<(u32, f64)>;

/// `vocabulary_` without one allocation per term: one byte blob, offsets, and an open-addressing
/// table built at load ([`term_hash`], linear probing, load factor ≤ 1/2). A slot holds the
/// column + 1 in its low `col_bits` and high bits of the term's hash above them, so a probe reads
/// the term bytes only when those match: misses (most bigrams) never touch them.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    terms: Vec<u8>,
    offsets: Vec<u32>,
    table: Vec<u32>,
    col_mask: u32,
}

impl Vocabulary {
    /// Checks and indexes the wire form.
    pub fn new(terms: Vec<u8>, lengths: &[u32]) -> Result<Self> {
        let mut offsets = Vec::with_capacity(lengths.len() + 1);
        let mut end: u64 = 0;
        offsets.push(0);
        for &len in lengths {
            end += u64::from(len);
            offsets
                .push(u32::try_from(end).map_err(|_| Error::Corrupt("vocabulary offsets overflow".into()))?);
        }
        if end != terms.len() as u64 {
            return Err(Error::Corrupt(format!(
                "vocabulary lengths add up to {end} bytes but the term blob has {}",
                terms.len()
            )));
        }
        let n = lengths.len();
        let slots = u32::try_from(n + 1).map_err(|_| Error::Corrupt("too many vocabulary terms".into()))?;
        let col_mask = u32::MAX >> slots.leading_zeros();
        let size = (n.max(1) * 2).next_power_of_two();
        let mut vocab = Vocabulary {
            terms,
            offsets,
            table: vec![0u32; size],
            col_mask,
        };
        // In chunks, each a call: V8 runs a wasm function's first calls in baseline code and
        // switches to optimised code only between calls, so one long loop would stay slow.
        for start in (0..n).step_by(2048) {
            vocab.insert(start..n.min(start + 2048))?;
        }
        Ok(vocab)
    }

    #[inline(never)]
    fn insert(&mut self, cols: std::ops::Range<usize>) -> Result<()> {
        for col in cols {
            match self.probe(self.term(col)) {
                Ok(_) => {
                    return Err(Error::Corrupt(format!(
                        "vocabulary term at column {col} is duplicated"
                    )))
                }
                Err((slot, tag)) => self.table[slot] = tag | (col as u32 + 1),
            }
        }
        Ok(())
    }

    /// The column of `term`, or the empty slot where it would go and its hash tag.
    #[inline]
    fn probe(&self, term: &[u8]) -> std::result::Result<u32, (usize, u32)> {
        let h = term_hash(term);
        let tag = (h >> 32) as u32 & !self.col_mask;
        let mask = self.table.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let slot = self.table[i];
            if slot == 0 {
                return Err((i, tag));
            }
            if slot & !self.col_mask == tag {
                let col = (slot & self.col_mask) - 1;
                if same_bytes(self.term(col as usize), term) {
                    return Ok(col);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there are no terms.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of the term of column `col` (`col < len()`).
    pub fn term(&self, col: usize) -> &[u8] {
        &self.terms[self.offsets[col] as usize..self.offsets[col + 1] as usize]
    }

    /// `vocabulary_.get(term)`.
    #[inline]
    pub fn get(&self, term: &str) -> Option<u32> {
        self.probe(term.as_bytes()).ok()
    }
}

/// The vocabulary table's hash: FxHash over 8-byte little-endian words, then a final mix so the
/// low bits (the table index) depend on every byte. Terms are short, so this runs in a few
/// instructions where a general-purpose hash spends most of its time in setup. Only ever computed
/// at run time (the table is built at load), so it is not part of the format.
#[inline]
pub fn term_hash(term: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = term.len() as u64;
    let mut words = term.chunks_exact(8);
    for w in &mut words {
        h = (h.rotate_left(5) ^ word(w)).wrapping_mul(K);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        h = (h.rotate_left(5) ^ short_word(tail)).wrapping_mul(K);
    }
    h ^ (h >> 29) ^ (h >> 47)
}

/// The first 8 bytes as a little-endian word (one unaligned load).
#[inline]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Fewer than 8 bytes as a little-endian word, zero-padded: three loads at most, where a
/// variable-length copy is a call to a byte loop in wasm.
#[inline]
fn short_word(mut b: &[u8]) -> u64 {
    let (mut w, mut shift) = (0u64, 0);
    if let [x0, x1, x2, x3, rest @ ..] = b {
        w = u64::from(u32::from_le_bytes([*x0, *x1, *x2, *x3]));
        (b, shift) = (rest, 32);
    }
    if let [x0, x1, rest @ ..] = b {
        w |= u64::from(u16::from_le_bytes([*x0, *x1])) << shift;
        (b, shift) = (rest, shift + 16);
    }
    if let [x0, ..] = b {
        w |= u64::from(*x0) << shift;
    }
    w
}

/// `a == b` a word at a time: terms are a dozen bytes, and `memcmp` is a byte loop in wasm.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut a8).zip(&mut b8) {
        if word(x) != word(y) {
            return false;
        }
    }
    short_word(a8.remainder()) == short_word(b8.remainder())
}

/// MurmurHash3 x86_32, as `sklearn.utils.murmurhash3_32(..., positive=False)`.
pub fn murmurhash3_32(key: &[u8], seed: u32) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = key.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, &byte) in tail.iter().enumerate() {
            k |= u32::from(byte) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= key.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

/// How features become columns.
#[derive(Debug, Clone)]
enum Counter {
    Vocabulary(Vocabulary),
    Hashing { n_features: u32, alternate_sign: bool },
}

/// A transform of a sparse row (FORMAT.md, `TRANSFORM`).
#[derive(Debug, Clone)]
pub enum Transform {
    /// `TfidfTransformer.transform` without its norm.
    Tfidf {
        /// `sublinear_tf`.
        sublinear_tf: bool,
        /// `idf_`.
        idf: Option<Vec<f64>>,
        /// numpy's log where it differs from `libm::log`, sorted by argument.
        log_exceptions: Vec<(u32, f64)>,
    },
    /// `normalize`.
    Normalize(Norm),
    /// A constant weight.
    Scale(f64),
}

impl Transform {
    /// Checks a transform against the width of the row it applies to.
    pub fn new(p: TransformParams, width: u64) -> Result<Self> {
        Ok(match p {
            TransformParams::Tfidf {
                sublinear_tf,
                idf,
                log_exceptions,
            } => {
                if let Some(idf) = &idf {
                    if idf.len() as u64 != width {
                        return Err(Error::Corrupt(format!(
                            "idf has {} values for {width} columns",
                            idf.len()
                        )));
                    }
                    crate::classify::check_finite(idf, "idf")?;
                }
                if !log_exceptions.windows(2).all(|w| w[0].0 < w[1].0) {
                    return Err(Error::Corrupt("log_exceptions are not sorted".into()));
                }
                Transform::Tfidf {
                    sublinear_tf,
                    idf,
                    log_exceptions,
                }
            }
            TransformParams::Normalize { norm } => Transform::Normalize(norm),
            TransformParams::Scale { factor } => {
                crate::classify::check_finite(&[factor], "scale factor")?;
                Transform::Scale(factor)
            }
        })
    }

    /// Applies the transform in place; columns of `row` are shifted by `offset` from the ones
    /// `idf` is indexed by.
    pub fn apply(&self, row: &mut [(u32, f64)], offset: u32) {
        match self {
            Transform::Tfidf {
                sublinear_tf,
                idf,
                log_exceptions,
            } => {
                if *sublinear_tf {
                    for (_, x) in row.iter_mut() {
                        *x = log_count(*x, log_exceptions) + 1.0;
                    }
                }
                if let Some(idf) = idf {
                    for (j, x) in row.iter_mut() {
                        *x *= idf[(*j - offset) as usize];
                    }
                }
            }
            Transform::Normalize(Norm::L2) => {
                // sklearn's _inplace_csr_row_normalize_l2: sequential sum of squares, sqrt, divide.
                let mut sum = 0.0;
                for &(_, x) in row.iter() {
                    sum += x * x;
                }
                if sum != 0.0 {
                    let norm = sum.sqrt();
                    for (_, x) in row.iter_mut() {
                        *x /= norm;
                    }
                }
            }
            Transform::Normalize(Norm::L1) => {
                let mut sum = 0.0;
                for &(_, x) in row.iter() {
                    sum += x.abs();
                }
                if sum != 0.0 {
                    for (_, x) in row.iter_mut() {
                        *x /= sum;
                    }
                }
            }
            Transform::Scale(w) => {
                for (_, x) in row.iter_mut() {
                    *x *= w;
                }
            }
        }
    }
}

/// numpy's `log` of a count: the exporter recorded where numpy and `libm` disagree.
fn log_count(x: f64, exceptions: &[(u32, f64)]) -> f64 {
    if x >= 1.0 && x <= f64::from(u32::MAX) && x.fract() == 0.0 {
        let k = x as u32;
        if let Ok(i) = exceptions.binary_search_by_key(&k, |&(k, _)| k) {
            return exceptions[i].1;
        }
    }
    libm::log(x)
}

/// One vectorizer with the transforms of its branch.
#[derive(Debug, Clone)]
pub struct Vectorizer {
    /// The analyzer.
    pub analyzer: Analyzer,
    counter: Counter,
    binary: bool,
    transforms: Vec<Transform>,
}

impl Vectorizer {
    /// Checks a feature block read from an artifact.
    pub fn new(block: FeatureBlock) -> Result<Self> {
        let analyzer = Analyzer::new(&block.analyzer)?;
        let counter = match block.counts {
            CountsParams::Vocabulary { terms, lengths } => {
                Counter::Vocabulary(Vocabulary::new(terms, &lengths)?)
            }
            CountsParams::Hashing {
                n_features,
                alternate_sign,
            } => {
                if n_features == 0 || n_features > i32::MAX as u32 {
                    return Err(Error::Corrupt(format!("n_features {n_features} is out of range")));
                }
                Counter::Hashing {
                    n_features,
                    alternate_sign,
                }
            }
        };
        let mut v = Vectorizer {
            analyzer,
            counter,
            binary: block.binary,
            transforms: Vec::new(),
        };
        let width = v.n_features();
        v.transforms = block
            .transforms
            .into_iter()
            .map(|t| Transform::new(t, width))
            .collect::<Result<_>>()?;
        Ok(v)
    }

    /// Number of columns this vectorizer produces.
    pub fn n_features(&self) -> u64 {
        match &self.counter {
            Counter::Vocabulary(v) => v.len() as u64,
            Counter::Hashing { n_features, .. } => u64::from(*n_features),
        }
    }

    /// The vocabulary, when there is one.
    pub fn vocabulary(&self) -> Option<&Vocabulary> {
        match &self.counter {
            Counter::Vocabulary(v) => Some(v),
            Counter::Hashing { .. } => None,
        }
    }

    /// `transform([doc])`, appended to `row` with columns shifted by `offset`.
    pub fn transform_into(
        &self,
        doc: &str,
        scratch: &mut Scratch,
        hits: &mut Row,
        offset: u32,
        row: &mut Row,
    ) {
        hits.clear();
        match &self.counter {
            Counter::Vocabulary(vocab) => self.analyzer.for_each_feature(doc, scratch, |f| {
                if let Some(col) = vocab.get(f) {
                    hits.push((col, 1.0));
                }
            }),
            Counter::Hashing {
                n_features,
                alternate_sign,
            } => self.analyzer.for_each_feature(doc, scratch, |f| {
                let h = murmurhash3_32(f.as_bytes(), 0);
                // _hashing_transform: abs(h) % n_features, with abs(i32::MIN) defined by sklearn.
                let col = if h == i32::MIN {
                    (i32::MAX as u32 - (n_features - 1)) % n_features
                } else {
                    h.unsigned_abs() % n_features
                };
                let sign = if *alternate_sign && h < 0 { -1.0 } else { 1.0 };
                hits.push((col, sign));
            }),
        }
        // Counts and ±1 sums are small integers: exact in any order, so an unstable sort is fine.
        hits.sort_unstable_by_key(|&(col, _)| col);
        let start = row.len();
        let mut last = None;
        for &(col, v) in hits.iter() {
            match row.last_mut() {
                Some((_, x)) if last == Some(col) => *x += v,
                _ => row.push((col + offset, v)),
            }
            last = Some(col);
        }
        let block = &mut row[start..];
        if self.binary {
            for (_, x) in block.iter_mut() {
                *x = 1.0;
            }
        }
        for t in &self.transforms {
            t.apply(block, offset);
        }
    }
}

#[cfg(test)]
mod word_tests {
    use super::*;

    #[test]
    fn same_bytes_is_slice_equality() {
        let base: Vec<u8> = (1..=21).collect();
        for n in 0..=20 {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &base[..n + 1]), "a prefix is not equal");
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x80;
                assert!(!same_bytes(a, &b), "n={n} i={i}");
                assert_ne!(term_hash(a), term_hash(&b), "n={n} i={i}");
            }
        }
        assert_eq!(short_word(&[1, 2, 3, 4, 5, 6, 7]), 0x0007_0605_0403_0201);
        assert_eq!(short_word(&[]), 0);
    }
}
