//! Compact wire encodings of the large arrays (FORMAT.md §2, "Compact encodings"). They change
//! bytes, never values: every decoder rebuilds exactly what the encoder was given, and checks
//! what it reads before allocating from it.
//!
//! - `f64s`: a vector of f64 as one byte string of little-endian values (one bulk copy at load).
//! - `idf`: distinct values (most frequent first) and, per column, a varint index into them:
//!   a fitted `idf_` has a few hundred distinct values for tens of thousands of columns.
//! - `vocabulary`: front coding in column order: each term is the first `prefix` bytes of the
//!   previous term plus its own `suffix` (sklearn's columns are sorted, so prefixes are long).
//! - `log_exceptions`: (k − previous k, numpy's bits − `libm::log(k)` bits), zigzag varints: numpy
//!   and libm differ by an ulp or two, so each exception costs about three bytes.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn f64s_to_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_to_f64s<E: serde::de::Error>(b: &[u8]) -> Result<Vec<f64>, E> {
    if b.len() % 8 != 0 {
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

/// `Vec<f64>` as little-endian bytes.
pub mod f64s {
    use super::*;

    /// Encodes.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&f64s_to_bytes(v))
    }

    /// Decodes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        bytes_to_f64s(&Bytes::deserialize(d)?.0)
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
    #[serde(borrow)]
    prefix: Bytes<'a>,
    suffix_lengths: Vec<u32>,
    #[serde(borrow)]
    suffixes: Bytes<'a>,
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
        let mut prefix = Vec::with_capacity(lengths.len());
        let mut suffix_lengths = Vec::with_capacity(lengths.len());
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
            prefix.push(shared as u8);
            suffix_lengths.push((term.len() - shared) as u32);
            suffixes.extend_from_slice(&term[shared..]);
            previous = term;
            start = end;
        }
        VocabularyWire {
            prefix: Bytes(prefix.into()),
            suffix_lengths,
            suffixes: Bytes(suffixes.into()),
        }
        .serialize(s)
    }

    /// Decodes into `(terms, lengths)`. The rebuilt blob is at most 256 times the bytes read.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(Vec<u8>, Vec<u32>), D::Error> {
        let w = VocabularyWire::deserialize(d)?;
        let (prefix, suffixes) = (&w.prefix.0, &w.suffixes.0);
        if prefix.len() != w.suffix_lengths.len() {
            return Err(D::Error::custom("vocabulary prefix and suffix counts differ"));
        }
        let mut terms = Vec::with_capacity(suffixes.len());
        let mut lengths = Vec::with_capacity(prefix.len());
        let (mut previous_start, mut previous_len, mut at) = (0usize, 0usize, 0usize);
        for (&shared, &suffix_len) in prefix.iter().zip(&w.suffix_lengths) {
            let shared = shared as usize;
            let suffix = suffixes
                .get(at..at + suffix_len as usize)
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
        if at != suffixes.len() {
            return Err(D::Error::custom("vocabulary has unused suffix bytes"));
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
