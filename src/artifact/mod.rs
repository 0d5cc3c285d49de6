//! The artifact envelope (FORMAT.md §2): a fixed header, then the postcard body.
//!
//! Reading checks, in order: length of the header, magic, version, flags, declared body length
//! against the buffer, checksum, then decodes the body. Nothing is allocated before the checksum
//! has vouched for the body, and postcard never trusts a declared length beyond the bytes left.

pub mod schema;

use xxhash_rust::xxh64::xxh64;

use crate::error::{Error, Result};
use schema::Body;

/// `\x89SKEDGE\n`: a non-ASCII first byte and a newline catch text-mode transfers.
pub const MAGIC: [u8; 8] = [0x89, b'S', b'K', b'E', b'D', b'G', b'E', b'\n'];
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 24;

/// Encodes a body into artifact bytes.
pub fn to_bytes(body: &Body) -> Result<Vec<u8>> {
    let encoded = postcard::to_allocvec(body).map_err(|e| Error::Corrupt(format!("encode: {e}")))?;
    let body_len = u32::try_from(encoded.len())
        .map_err(|_| Error::Corrupt(format!("body of {} bytes exceeds 4 GiB", encoded.len())))?;
    let mut out = Vec::with_capacity(HEADER_LEN + encoded.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&xxh64(&encoded, 0).to_le_bytes());
    out.extend_from_slice(&encoded);
    Ok(out)
}

/// Checks the envelope and returns the body bytes it vouches for.
pub fn open(bytes: &[u8]) -> Result<&[u8]> {
    let header = bytes.get(..HEADER_LEN).ok_or(Error::Truncated {
        expected: HEADER_LEN as u64,
        found: bytes.len() as u64,
    })?;
    let (magic, rest) = header.split_at(8);
    if magic != MAGIC {
        return Err(Error::BadMagic);
    }
    let version = u16::from_le_bytes([rest[0], rest[1]]);
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let flags = u16::from_le_bytes([rest[2], rest[3]]);
    if flags != 0 {
        return Err(Error::UnsupportedFlags { found: flags });
    }
    let body_len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&rest[8..16]);
    let expected = u64::from_le_bytes(sum);
    let body = &bytes[HEADER_LEN..];
    if body.len() < body_len {
        return Err(Error::Truncated {
            expected: (HEADER_LEN + body_len) as u64,
            found: bytes.len() as u64,
        });
    }
    if body.len() > body_len {
        return Err(Error::TrailingBytes {
            extra: (body.len() - body_len) as u64,
        });
    }
    let found = xxh64(body, 0);
    if found != expected {
        return Err(Error::ChecksumMismatch { expected, found });
    }
    Ok(body)
}

/// Decodes artifact bytes into the wire body (no validation of the model's consistency).
pub fn from_bytes(bytes: &[u8]) -> Result<Body> {
    let body = open(bytes)?;
    let (decoded, rest) = postcard::take_from_bytes::<Body>(body)?;
    if !rest.is_empty() {
        return Err(Error::Corrupt(format!(
            "{} bytes left after the body",
            rest.len()
        )));
    }
    Ok(decoded)
}
