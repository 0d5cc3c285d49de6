//! Hexadecimal text of digests, keys, signatures and ids: one encoder and one decoder for the
//! crate, its bindings and its binaries, so every place writes the same lowercase digits.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Whether `s` is exactly `len` lowercase hex digits: the form of every digest, signature and id
/// skedge writes.
pub fn is_lower(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The `N` bytes of `2 * N` hex digits of either case; `None` for another length or any other
/// character. Callers that accept only lowercase check [`is_lower`] first.
pub fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lowercase_and_decodes_either_case() {
        let bytes = [0x00, 0x01, 0x7f, 0x80, 0xab, 0xff];
        assert_eq!(encode(&bytes), "00017f80abff");
        assert_eq!(encode(&[]), "");
        assert_eq!(decode::<6>("00017f80abff"), Some(bytes));
        assert_eq!(decode::<6>("00017F80ABFF"), Some(bytes));
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert!(is_lower(&text, 512));
        assert_eq!(decode::<256>(&text).map(|b| b.to_vec()), Some(all));
    }

    #[test]
    fn refuses_other_lengths_and_characters() {
        assert_eq!(decode::<2>("abc"), None);
        assert_eq!(decode::<2>("abcdef"), None);
        for bad in ["0g00", "00 0", "+100", "éa", "0x00", "\u{0}000"] {
            assert_eq!(decode::<2>(bad), None, "{bad:?}");
        }
        assert!(is_lower("09af", 4));
        assert!(!is_lower("09AF", 4));
        assert!(!is_lower("09af", 6));
        assert!(!is_lower("09ag", 4));
        assert!(!is_lower("", 2));
    }
}
