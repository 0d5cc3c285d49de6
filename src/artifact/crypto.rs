//! Signatures (Ed25519) and encryption (XChaCha20-Poly1305) of the artifact envelope (FORMAT.md §3),
//! and the text encoding of key files.
//!
//! Pure Rust (`ed25519-dalek`, `chacha20poly1305`): the same synchronous code in the CLI, Node,
//! browsers, Workers and Deno. Nothing here draws random bytes: the caller (the CLI's `keygen` and
//! `pack`) supplies secret seeds and nonces, so the loader has no randomness dependency at all.

#[cfg(feature = "crypto")]
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
#[cfg(feature = "crypto")]
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
#[cfg(feature = "crypto")]
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
#[cfg(not(feature = "crypto"))]
pub use unavailable::*;

use crate::error::{Error, Result};
use crate::hex;

/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes of every key: Ed25519 secret seed, Ed25519 public key, XChaCha20-Poly1305 key.
pub const KEY_LEN: usize = 32;

/// What a 32-byte key is for; key files name it so one is never used as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Ed25519 secret key (the RFC 8032 32-byte seed): signs artifacts. Keep it off clients.
    SigningSecret,
    /// Ed25519 public key: pinned by loaders to verify signatures. Public by design.
    SigningPublic,
    /// XChaCha20-Poly1305 key: encrypts and decrypts artifact bodies. Secret.
    Encryption,
}

impl KeyKind {
    /// The prefix of the key file line, before the 64 lowercase hex digits.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::SigningSecret => "skedge-ed25519-secret:",
            KeyKind::SigningPublic => "skedge-ed25519-public:",
            KeyKind::Encryption => "skedge-xchacha20poly1305-key:",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            KeyKind::SigningSecret => "an Ed25519 secret (signing) key",
            KeyKind::SigningPublic => "an Ed25519 public key",
            KeyKind::Encryption => "an XChaCha20-Poly1305 encryption key",
        }
    }

    const ALL: [KeyKind; 3] = [
        KeyKind::SigningSecret,
        KeyKind::SigningPublic,
        KeyKind::Encryption,
    ];
}

/// The key file text: one line, `PREFIX` + 64 lowercase hex digits + `\n`.
pub fn encode_key(kind: KeyKind, key: &[u8; KEY_LEN]) -> String {
    let mut s = String::with_capacity(kind.prefix().len() + 2 * KEY_LEN + 1);
    s.push_str(kind.prefix());
    s.push_str(&hex::encode(key));
    s.push('\n');
    s
}

/// Parses key file text written by [`encode_key`] (surrounding whitespace ignored). A line with
/// another kind's prefix is refused, so a secret key is never taken for a public one; 64 bare hex
/// digits (any case) are accepted as the expected kind.
pub fn decode_key(text: &str, expected: KeyKind) -> Result<[u8; KEY_LEN]> {
    let text = text.trim();
    let digits = match text.strip_prefix(expected.prefix()) {
        Some(digits) => digits,
        None => {
            if let Some(other) = KeyKind::ALL.iter().find(|k| text.starts_with(k.prefix())) {
                return Err(Error::KeyInvalid(format!(
                    "this is {}, but {} is needed here",
                    other.describe(),
                    expected.describe()
                )));
            }
            text
        }
    };
    if digits.len() != 2 * KEY_LEN {
        return Err(Error::KeyInvalid(format!(
            "expected {} as `{}` followed by 64 hex digits, found {} characters",
            expected.describe(),
            expected.prefix(),
            text.chars().count()
        )));
    }
    hex::decode(digits).ok_or_else(|| Error::KeyInvalid("key text holds a non-hex character".into()))
}

/// The Ed25519 public key of a secret seed.
#[cfg(feature = "crypto")]
pub fn public_key(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// Checks that 32 bytes are a usable Ed25519 public key: a canonical curve point that is not of
/// small order (a weak key would accept forged signatures under lax verification).
#[cfg(feature = "crypto")]
pub fn check_public_key(public: &[u8; KEY_LEN]) -> Result<()> {
    let key = VerifyingKey::from_bytes(public)
        .map_err(|_| Error::KeyInvalid("not an Ed25519 public key (not a curve point)".into()))?;
    if key.is_weak() {
        return Err(Error::KeyInvalid("weak Ed25519 public key (small order)".into()));
    }
    Ok(())
}

/// Ed25519 (RFC 8032, pure) signature of `message`.
#[cfg(feature = "crypto")]
pub fn sign(secret: &[u8; KEY_LEN], message: &[u8]) -> [u8; SIGNATURE_LEN] {
    SigningKey::from_bytes(secret).sign(message).to_bytes()
}

/// Whether `signature` is a valid strict Ed25519 signature of `message` by `public` (canonical
/// `R` and `S`, no small-order key): `verify_strict` of ed25519-dalek.
#[cfg(feature = "crypto")]
pub fn verify(public: &[u8; KEY_LEN], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    match VerifyingKey::from_bytes(public) {
        Ok(key) => key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok(),
        Err(_) => false,
    }
}

/// Ed25519 verification by the host's native code (`node:crypto` in the JS package's Node entries):
/// `Some(verdict)` on the very bytes given, or `None` when the host cannot (then [`verify`] decides).
/// See [`verify_with`].
pub type HostVerify =
    fn(public: &[u8; KEY_LEN], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Option<bool>;

/// Every 32-byte string that decodes to a point of small order (the eight-torsion), with bit 255
/// (the sign of x) ignored: y = 0, 1, the two order-8 y, p - 1, and the non-canonical p and p + 1
/// (libsodium's list; the test `small_order_list_is_the_eight_torsion` derives it from
/// curve25519-dalek).
const SMALL_ORDER: [[u8; 32]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5,
        0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a,
        0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
];

/// Whether a point encoding decodes to a point of small order (or is one of their non-canonical
/// encodings): a byte comparison, no curve arithmetic.
pub fn small_order(encoding: &[u8; 32]) -> bool {
    SMALL_ORDER
        .iter()
        .any(|s| s[..31] == encoding[..31] && s[31] == encoding[31] & 0x7f)
}

/// [`verify`], or the host's verdict on the same key, message and signature when `host` gives
/// one. A host's Ed25519 (OpenSSL's) is cofactorless like `verify_strict` and refuses what it
/// refuses but for a small-order `R` or key, which it accepts when the equation holds (only the
/// key's maker can produce such a signature): those are refused here first, so both paths give
/// the same verdict on every input.
pub fn verify_with(
    host: Option<HostVerify>,
    public: &[u8; KEY_LEN],
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> bool {
    let r: &[u8; 32] = signature.first_chunk().unwrap_or(&[0; 32]);
    if let Some(verdict) = host.and_then(|h| h(public, message, signature)) {
        return verdict && !small_order(public) && !small_order(r);
    }
    verify(public, message, signature)
}

/// XChaCha20-Poly1305 encryption: returns `nonce ‖ ciphertext ‖ tag`, `plaintext.len() + 40` bytes.
/// The nonce must never repeat under one key (the CLI draws 24 random bytes per artifact).
#[cfg(feature = "crypto")]
pub fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let tag = XChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, &mut out[NONCE_LEN..])
        .map_err(|_| {
            Error::Corrupt(format!(
                "body of {} bytes is too large to encrypt",
                plaintext.len()
            ))
        })?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Authenticated decryption of `nonce ‖ ciphertext ‖ tag`: the plaintext, or
/// [`Error::DecryptionFailed`] when the key, the associated data or any byte is wrong. The tag is
/// checked before any plaintext is released; the one allocation is the ciphertext's size.
#[cfg(feature = "crypto")]
pub fn open(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::Truncated {
            expected: (NONCE_LEN + TAG_LEN) as u64,
            found: sealed.len() as u64,
        });
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut plaintext = ciphertext.to_vec();
    XChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            aad,
            &mut plaintext,
            Tag::from_slice(tag),
        )
        .map_err(|_| Error::DecryptionFailed)?;
    Ok(plaintext)
}

/// Without the `crypto` feature: every operation that needs Ed25519 or XChaCha20-Poly1305 is
/// refused with [`Error::FeatureUnavailable`] (and key checks fail first, so nothing is accepted
/// unchecked).
#[cfg(not(feature = "crypto"))]
mod unavailable {
    use super::{KEY_LEN, SIGNATURE_LEN};
    use crate::error::{Error, Result};

    const SIGNATURES: Error = Error::FeatureUnavailable {
        feature: "signature verification",
    };
    const ENCRYPTION: Error = Error::FeatureUnavailable {
        feature: "decryption",
    };

    /// Refused: pinning a public key needs signature verification.
    pub fn check_public_key(_public: &[u8; KEY_LEN]) -> Result<()> {
        Err(SIGNATURES)
    }

    /// Never verifies.
    pub fn verify(_public: &[u8; KEY_LEN], _message: &[u8], _signature: &[u8; SIGNATURE_LEN]) -> bool {
        false
    }

    /// Refused.
    pub fn seal(
        _key: &[u8; KEY_LEN],
        _nonce: &[u8; super::NONCE_LEN],
        _aad: &[u8],
        _plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        Err(Error::FeatureUnavailable {
            feature: "encryption",
        })
    }

    /// Refused.
    pub fn open(_key: &[u8; KEY_LEN], _aad: &[u8], _sealed: &[u8]) -> Result<Vec<u8>> {
        Err(ENCRYPTION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SMALL_ORDER` is exactly the set of encodings of the eight-torsion: every point of it,
    /// compressed, with either sign bit and, where one exists, the non-canonical y + p, is in
    /// the list; every entry decompresses (both sign bits) to a point of small order.
    #[cfg(feature = "crypto")]
    #[test]
    fn small_order_list_is_the_eight_torsion() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        use curve25519_dalek::traits::IsIdentity;
        let mut seen = std::collections::BTreeSet::new();
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let mut e = point.compress().to_bytes();
            assert!(small_order(&e));
            e[31] ^= 0x80;
            assert!(small_order(&e));
            e[31] &= 0x7f;
            seen.insert(e);
        }
        for entry in SMALL_ORDER {
            for sign in [0, 0x80] {
                let mut e = entry;
                e[31] |= sign;
                let point = CompressedEdwardsY(e).decompress().expect("a curve point");
                assert!(point.is_small_order() && (point.mul_by_cofactor().is_identity()));
            }
        }
        // The canonical y of the torsion: 0, 1, p - 1 and the two order-8 values.
        assert_eq!(seen.len(), 5);
        // Non-canonical y (p .. 2^255 - 1) that decode to torsion: y = p and p + 1 (0 and 1).
        for extra in 0..19u8 {
            let mut e = SMALL_ORDER[5];
            e[0] = 0xed + extra;
            let torsion = CompressedEdwardsY(e)
                .decompress()
                .is_some_and(|p| p.is_small_order());
            assert_eq!(torsion, small_order(&e), "y = p + {extra}");
        }
        // A real key is not on the list.
        assert!(!small_order(&public_key(&[7; 32])));
    }

    #[cfg(feature = "crypto")]
    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let secret = decode_key(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            KeyKind::SigningSecret,
        )
        .unwrap();
        let public = public_key(&secret);
        assert_eq!(
            encode_key(KeyKind::SigningPublic, &public),
            "skedge-ed25519-public:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n"
        );
        let sig = sign(&secret, b"");
        let expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        assert_eq!(hex::encode(&sig), expected);
        assert!(verify(&public, b"", &sig));
        assert!(!verify(&public, b"x", &sig));
    }

    #[test]
    fn key_text_round_trips_and_kinds_are_not_confused() {
        let key = [7u8; KEY_LEN];
        for kind in KeyKind::ALL {
            let text = encode_key(kind, &key);
            assert_eq!(decode_key(&text, kind).unwrap(), key);
            for other in KeyKind::ALL.into_iter().filter(|&k| k != kind) {
                assert!(matches!(decode_key(&text, other), Err(Error::KeyInvalid(_))));
            }
        }
        assert!(decode_key("abc", KeyKind::Encryption).is_err());
        assert!(decode_key(&"g".repeat(64), KeyKind::Encryption).is_err());
        assert!(decode_key(&"é".repeat(32), KeyKind::Encryption).is_err());
    }

    /// Without the feature (`skedge/lite`) every operation with a key is refused or fails: nothing
    /// is accepted unchecked.
    #[cfg(not(feature = "crypto"))]
    #[test]
    fn without_crypto_everything_is_refused() {
        let key = [7u8; KEY_LEN];
        fn refused<T>(r: Result<T>) -> bool {
            matches!(r, Err(Error::FeatureUnavailable { .. }))
        }
        assert!(refused(check_public_key(&key)));
        assert!(!verify(&key, b"", &[0; SIGNATURE_LEN]));
        assert!(refused(seal(&key, &[0; NONCE_LEN], b"", b"x")));
        assert!(refused(open(&key, b"", &[0; 64])));
    }

    #[cfg(feature = "crypto")]
    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = [1u8; KEY_LEN];
        let sealed = seal(&key, &[2u8; NONCE_LEN], b"aad", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + NONCE_LEN + TAG_LEN);
        assert_eq!(open(&key, b"aad", &sealed).unwrap(), b"hello");
        assert_eq!(
            open(&[3u8; KEY_LEN], b"aad", &sealed),
            Err(Error::DecryptionFailed)
        );
        assert_eq!(open(&key, b"aaD", &sealed), Err(Error::DecryptionFailed));
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert_eq!(open(&key, b"aad", &t), Err(Error::DecryptionFailed));
        }
        assert!(matches!(
            open(&key, b"aad", &sealed[..39]),
            Err(Error::Truncated { .. })
        ));
    }

    #[cfg(feature = "crypto")]
    #[test]
    fn weak_and_invalid_public_keys_are_refused() {
        // The identity point (small order), and y = 2, which has no x on the curve.
        let mut identity = [0u8; KEY_LEN];
        identity[0] = 1;
        assert!(matches!(check_public_key(&identity), Err(Error::KeyInvalid(_))));
        let mut off_curve = [0u8; KEY_LEN];
        off_curve[0] = 2;
        assert!(matches!(check_public_key(&off_curve), Err(Error::KeyInvalid(_))));
        assert!(check_public_key(&public_key(&[9; KEY_LEN])).is_ok());
    }
}
