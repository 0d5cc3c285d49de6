//! Compact wire encodings of the large arrays (FORMAT.md §2, "Compact encodings"). They change
//! bytes, never values: every decoder rebuilds exactly what the encoder was given, and checks
//! what it reads before allocating from it.
//!
//! - `values`: a vector of f64 as one byte string of little-endian f64, or of f16 when every value
//!   is exactly a binary16 number (weights of the `compact` precision): one bulk pass at load.
//! - `idf`: distinct values (most frequent first) and, per column, a varint index into them:
//!   a fitted `idf_` has a few hundred distinct values for tens of thousands of columns.
//! - `vocabulary`: front coding in column order: each term is the first `prefix` bytes of the
//!   previous term plus its own `suffix` (sklearn's columns are sorted, so prefixes are long).
//!   Both lengths share one byte when they are below 15, as for nearly every term of a sorted
//!   vocabulary.
//! - `log_exceptions`: (k − previous k, numpy's bits − `libm::log(k)` bits), zigzag varints: numpy
//!   and libm differ by an ulp or two, so each exception costs about three bytes.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::layout::{push_varint, varint};

fn f64s_to_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_to_f64s<E: serde::de::Error>(b: &[u8]) -> Result<Vec<f64>, E> {
    if !b.len().is_multiple_of(8) {
        return Err(E::custom(format!(
            "{} bytes is not a whole number of f64",
            b.len()
        )));
    }
    Ok(b.chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// A byte string borrowed from the input when the format allows it (postcard does).
struct Bytes<'a>(std::borrow::Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Bytes<'a>;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Bytes(v.into()))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(Bytes(v.to_vec().into()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                Ok(Bytes(v.into()))
            }
        }
        d.deserialize_bytes(V(core::marker::PhantomData))
    }
}

#[derive(Serialize, Deserialize)]
enum ValuesWire<'a> {
    F64(#[serde(borrow)] Bytes<'a>),
    F16(#[serde(borrow)] Bytes<'a>),
}

/// The value as binary16 when that is exact (same bits back, so -0.0 stays -0.0).
fn exact_f16(x: f64) -> Option<u16> {
    let h = half::f16::from_f64(x);
    (h.to_f64().to_bits() == x.to_bits()).then(|| h.to_bits())
}

/// `Vec<f64>` as little-endian f64, or f16 when that loses nothing.
pub mod values {
    use super::*;

    /// Encodes.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let halves: Option<Vec<u16>> = if v.is_empty() {
            None
        } else {
            v.iter().map(|&x| exact_f16(x)).collect()
        };
        match halves {
            Some(h) => ValuesWire::F16(Bytes(
                h.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>().into(),
            )),
            None => ValuesWire::F64(Bytes(f64s_to_bytes(v).into())),
        }
        .serialize(s)
    }

    /// Decodes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        match ValuesWire::deserialize(d)? {
            ValuesWire::F64(b) => bytes_to_f64s(&b.0),
            ValuesWire::F16(b) => {
                if b.0.len() % 2 != 0 {
                    return Err(D::Error::custom(format!(
                        "{} bytes is not a whole number of f16",
                        b.0.len()
                    )));
                }
                Ok(b.0
                    .chunks_exact(2)
                    .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64())
                    .collect())
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct IdfWire<'a> {
    #[serde(borrow)]
    values: Bytes<'a>,
    index: Vec<u32>,
}

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// `idf_` as distinct values plus one index per column.
pub mod idf {
    use super::*;

    /// Encodes: distinct values ordered by frequency (ties by bits), so common values get
    /// one-byte indices.
    pub fn serialize<S: Serializer>(idf: &Option<Vec<f64>>, s: S) -> Result<S::Ok, S::Error> {
        let Some(idf) = idf else {
            return s.serialize_none();
        };
        let mut counts = std::collections::BTreeMap::<u64, u32>::new();
        for x in idf {
            *counts.entry(x.to_bits()).or_default() += 1;
        }
        let mut distinct: Vec<(u64, u32)> = counts.into_iter().collect();
        distinct.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let position: std::collections::BTreeMap<u64, u32> = distinct
            .iter()
            .enumerate()
            .map(|(i, &(bits, _))| (bits, i as u32))
            .collect();
        let values: Vec<f64> = distinct.iter().map(|&(bits, _)| f64::from_bits(bits)).collect();
        let wire = IdfWire {
            values: Bytes(f64s_to_bytes(&values).into()),
            index: idf.iter().map(|x| position[&x.to_bits()]).collect(),
        };
        s.serialize_some(&wire)
    }

    /// Decodes, checking every index.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
        let Some(wire) = Option::<IdfWire>::deserialize(d)? else {
            return Ok(None);
        };
        let values = bytes_to_f64s::<D::Error>(&wire.values.0)?;
        wire.index
            .iter()
            .map(|&i| {
                values
                    .get(i as usize)
                    .copied()
                    .ok_or_else(|| D::Error::custom(format!("idf index {i} out of range")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[derive(Serialize, Deserialize)]
struct VocabularyWire<'a> {
    /// Number of terms.
    count: u32,
    /// Bytes of all terms: the decoder reserves the blob once.
    term_bytes: u32,
    /// Per term: `prefix << 4 | suffix length`, a nibble of 15 meaning "too long, read it next":
    /// then the prefix as one byte and/or the suffix length as a LEB128 varint follow.
    #[serde(borrow)]
    lengths: Bytes<'a>,
    #[serde(borrow)]
    suffixes: Bytes<'a>,
}

const ESCAPE: u8 = 15;

/// Front-coded terms, read sequentially.
struct Lengths<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Lengths<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u32> {
        let mut rest = self.bytes.get(self.at..)?;
        let x = varint(&mut rest)?;
        self.at = self.bytes.len() - rest.len();
        Some(x)
    }

    /// `(prefix, suffix length)` of the next term.
    fn next(&mut self) -> Option<(usize, usize)> {
        let b = self.byte()?;
        let prefix = match b >> 4 {
            ESCAPE => self.byte()?,
            p => p,
        };
        let suffix = match b & 0xf {
            ESCAPE => self.varint()?,
            n => u32::from(n),
        };
        Some((prefix as usize, suffix as usize))
    }
}

/// `Counts::Vocabulary { terms, lengths }`, front-coded.
pub mod vocabulary {
    use super::*;

    /// Encodes the variant's fields.
    pub fn serialize<S: Serializer>(terms: &[u8], lengths: &[u32], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        if lengths.iter().map(|&l| l as u64).sum::<u64>() != terms.len() as u64 {
            return Err(S::Error::custom(
                "vocabulary lengths do not add up to the term bytes",
            ));
        }
        let mut packed = Vec::with_capacity(lengths.len());
        let mut suffixes = Vec::new();
        let mut start = 0usize;
        let mut previous: &[u8] = &[];
        for &len in lengths {
            let end = start + len as usize;
            let term = &terms[start..end];
            let shared = previous
                .iter()
                .zip(term)
                .take(255)
                .take_while(|(a, b)| a == b)
                .count();
            let suffix = (term.len() - shared) as u32;
            let p = (shared as u8).min(ESCAPE);
            let n = suffix.min(u32::from(ESCAPE)) as u8;
            packed.push(p << 4 | n);
            if p == ESCAPE {
                packed.push(shared as u8);
            }
            if n == ESCAPE {
                push_varint(&mut packed, suffix);
            }
            suffixes.extend_from_slice(&term[shared..]);
            previous = term;
            start = end;
        }
        VocabularyWire {
            count: u32::try_from(lengths.len()).map_err(|_| S::Error::custom("too many terms"))?,
            term_bytes: u32::try_from(terms.len()).map_err(|_| S::Error::custom("too many term bytes"))?,
            lengths: Bytes(packed.into()),
            suffixes: Bytes(suffixes.into()),
        }
        .serialize(s)
    }

    /// Decodes into `(terms, lengths)`. The rebuilt blob is at most 256 times the bytes read,
    /// and `count` is checked against the bytes before anything is reserved from it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(Vec<u8>, Vec<u32>), D::Error> {
        let w = VocabularyWire::deserialize(d)?;
        let suffixes = &w.suffixes.0;
        let count = w.count as usize;
        if count > w.lengths.0.len() {
            return Err(D::Error::custom("vocabulary term count exceeds its length bytes"));
        }
        let term_bytes = w.term_bytes as usize;
        if term_bytes > 255usize.saturating_mul(count).saturating_add(suffixes.len()) {
            return Err(D::Error::custom(
                "vocabulary term bytes exceed what the prefixes can rebuild",
            ));
        }
        let mut it = Lengths {
            bytes: &w.lengths.0,
            at: 0,
        };
        // Up to 256 times the bytes read: a failed reservation is an error, not an abort.
        let mut terms = Vec::new();
        let mut lengths = Vec::new();
        if terms.try_reserve_exact(term_bytes).is_err() || lengths.try_reserve_exact(count).is_err() {
            return Err(D::Error::custom(format!(
                "vocabulary of {term_bytes} bytes does not fit in memory"
            )));
        }
        let (mut previous_start, mut previous_len, mut at) = (0usize, 0usize, 0usize);
        for _ in 0..count {
            let (shared, suffix_len) = it
                .next()
                .ok_or_else(|| D::Error::custom("vocabulary lengths truncated"))?;
            let suffix = suffixes
                .get(at..at.saturating_add(suffix_len))
                .ok_or_else(|| D::Error::custom("vocabulary suffixes truncated"))?;
            if shared > previous_len {
                return Err(D::Error::custom(
                    "vocabulary prefix longer than the previous term",
                ));
            }
            let start = terms.len();
            terms.extend_from_within(previous_start..previous_start + shared);
            terms.extend_from_slice(suffix);
            at += suffix.len();
            previous_start = start;
            previous_len = terms.len() - start;
            lengths.push(previous_len as u32);
        }
        if at != suffixes.len() || it.at != w.lengths.0.len() || terms.len() != term_bytes {
            return Err(D::Error::custom("vocabulary has unused bytes"));
        }
        Ok((terms, lengths))
    }
}

/// numpy's log values as differences from `libm::log`.
pub mod log_exceptions {
    use super::*;

    /// Encodes sorted `(k, numpy log k)` pairs.
    pub fn serialize<S: Serializer>(v: &[(u32, f64)], s: S) -> Result<S::Ok, S::Error> {
        let mut previous = 0u32;
        let wire: Vec<(u32, i64)> = v
            .iter()
            .map(|&(k, x)| {
                let delta = (x.to_bits() as i64).wrapping_sub(libm::log(f64::from(k)).to_bits() as i64);
                let step = k.wrapping_sub(previous);
                previous = k;
                (step, delta)
            })
            .collect();
        wire.serialize(s)
    }

    /// Decodes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u32, f64)>, D::Error> {
        let wire = Vec::<(u32, i64)>::deserialize(d)?;
        let mut k = 0u32;
        wire.into_iter()
            .map(|(step, delta)| {
                k = k
                    .checked_add(step)
                    .ok_or_else(|| D::Error::custom("log exception k overflows"))?;
                let bits = (libm::log(f64::from(k)).to_bits() as i64).wrapping_add(delta);
                Ok((k, f64::from_bits(bits as u64)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Values(#[serde(with = "values")] Vec<f64>);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Vocab {
        #[serde(with = "vocabulary")]
        V { terms: Vec<u8>, lengths: Vec<u32> },
    }

    #[test]
    fn values_use_f16_only_when_lossless() {
        let halves = vec![0.5, -0.0, 65504.0, 2f64.powi(-24), -1.5, 0.0];
        let wire = postcard::to_allocvec(&Values(halves.clone())).unwrap();
        assert_eq!(
            wire.len(),
            1 + 1 + 2 * halves.len(),
            "f16 tag, length, 2 bytes each"
        );
        let back: Values = postcard::from_bytes(&wire).unwrap();
        assert_eq!(
            back.0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            halves.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        for v in [vec![0.1], vec![0.5, 1e-300], vec![]] {
            let wire = postcard::to_allocvec(&Values(v.clone())).unwrap();
            assert_eq!(wire[0], 0, "f64 tag for {v:?}");
            assert_eq!(postcard::from_bytes::<Values>(&wire).unwrap().0, v);
        }
    }

    #[test]
    fn vocabulary_round_trips_long_prefixes_and_suffixes() {
        let words: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"abcdefghijklmnopqrstuvwxyz".to_vec(),
            [b"abcdefghijklmnopqrstuvwxyz".as_slice(), &[b'q'; 300]].concat(),
            [&[b'q'; 300][..], b"x"].concat(),
            [&[b'q'; 300][..], b"y"].concat(),
            "ééé".as_bytes().to_vec(),
        ];
        let terms: Vec<u8> = words.concat();
        let lengths: Vec<u32> = words.iter().map(|w| w.len() as u32).collect();
        let vocab = Vocab::V { terms, lengths };
        let wire = postcard::to_allocvec(&vocab).unwrap();
        assert_eq!(postcard::from_bytes::<Vocab>(&wire).unwrap(), vocab);
        // A declared blob larger than the prefixes can rebuild is refused before any reservation.
        let declared = |term_bytes| {
            let w = VocabularyWire {
                count: 1,
                term_bytes,
                lengths: Bytes(vec![0x01].into()),
                suffixes: Bytes(b"a".to_vec().into()),
            };
            postcard::to_allocvec(&(0u32, w)).unwrap()
        };
        assert!(postcard::from_bytes::<Vocab>(&declared(1)).is_ok());
        assert!(postcard::from_bytes::<Vocab>(&declared(u32::MAX)).is_err());
        // Every truncation is refused, never a panic.
        for n in 0..wire.len() {
            assert!(postcard::from_bytes::<Vocab>(&wire[..n]).is_err());
        }
    }
}
