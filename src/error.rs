//! The one error type of the crate. Every variant has a stable [`Error::code`] that crosses into JS
//! and the CLI unchanged.

use core::fmt;

/// Result alias used across the crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong in skedge.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not start with the skedge magic.
    BadMagic,
    /// The artifact's format version is not one this build reads.
    UnsupportedFormatVersion {
        /// Version found in the header, or named by a publish pointer.
        found: u32,
        /// Newest version this build reads.
        supported: u16,
    },
    /// Header flags this build does not understand (signatures, encryption from a later version).
    UnsupportedFlags {
        /// Flags found in the header.
        found: u16,
    },
    /// The artifact's text follows a Unicode version (its exporter's Python) this build has no
    /// tables for.
    UnsupportedUnicode {
        /// `unicode_version` of the artifact's metadata.
        found: String,
    },
    /// The buffer is shorter than the header or the declared body.
    Truncated {
        /// Bytes the header declares or requires.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// An artifact read from a stream (a pipe, a FIFO, a device: nothing whose size a header can
    /// be checked against) whose header declares more than
    /// [`crate::artifact::MAX_STREAMED_ARTIFACT_BYTES`]: refused before its body is read.
    ArtifactTooLarge {
        /// Bytes the header declares (header, body and signature).
        declared: u64,
        /// The limit.
        limit: u64,
    },
    /// Bytes after the declared body.
    TrailingBytes {
        /// Number of unexpected bytes.
        extra: u64,
    },
    /// The body checksum does not match: the artifact was altered or damaged.
    ChecksumMismatch {
        /// Checksum in the header.
        expected: u64,
        /// Checksum of the body as read.
        found: u64,
    },
    /// The body does not decode, or decodes to an inconsistent model.
    Corrupt(String),
    /// An interchange document (the exporter's JSON) is invalid.
    Interchange(String),
    /// The text is larger than [`crate::MAX_TEXT_BYTES`].
    InputTooLarge {
        /// Size of the text in bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A monitoring or experiment snapshot is larger than
    /// [`crate::monitor::MAX_SNAPSHOT_BYTES`]: the code of [`Error::InputTooLarge`].
    SnapshotTooLarge {
        /// Its size in bytes, when it was read whole (`None`: reading stopped past the limit).
        bytes: Option<usize>,
        /// The limit.
        limit: usize,
    },
    /// A feature occurs in one text more often than the counts whose `log` the exporter checked
    /// against numpy's for `sublinear_tf` (FORMAT.md §1, `log_exceptions`): beyond them its value
    /// could differ from scikit-learn's in the last bit, so the text is refused, not approximated.
    CountTooLarge {
        /// The feature's count in the text (an integer; no float formatting in `skedge/lite`).
        count: u64,
        /// The largest count checked ([`crate::vectorize::LOG_CHECKED`]).
        limit: u32,
    },
    /// The input is not valid (not a string, malformed JSON line, ...).
    InvalidInput(String),
    /// An I/O error in the CLI.
    Io(String),
    /// A publish pointer (FORMAT.md §5) whose fields are malformed or contradict each other.
    PointerInvalid(String),
    /// A followed pointer whose generation is not above the one being served (FORMAT.md §5):
    /// an older or replayed pointer never replaces a newer version.
    PointerStale {
        /// The generation of the pointer read.
        generation: u64,
        /// The generation being served.
        current: u64,
    },
    /// A public key is pinned but the artifact carries no signature (FORMAT.md §3).
    SignatureMissing,
    /// The signature does not verify with any pinned public key: signed by another key, or a
    /// byte of the header or body was changed after signing.
    SignatureInvalid {
        /// Number of pinned keys tried.
        keys: usize,
    },
    /// A public key is pinned but the publish pointer (FORMAT.md §5) carries no signature: the
    /// code of [`Error::SignatureMissing`], a message that names the pointer.
    #[cfg(feature = "crypto")]
    PointerSignatureMissing,
    /// The publish pointer's signature does not verify with any pinned public key: the code of
    /// [`Error::SignatureInvalid`], a message that names the pointer.
    #[cfg(feature = "crypto")]
    PointerSignatureInvalid {
        /// Number of pinned keys tried.
        keys: usize,
    },
    /// The artifact is encrypted and no decryption key was given.
    DecryptionKeyMissing,
    /// A decryption key was given but the artifact is not encrypted: refused, because a plain
    /// artifact could have been swapped in for the encrypted one by anyone.
    EncryptionMissing,
    /// Authenticated decryption failed: wrong key, or the ciphertext, nonce or header changed.
    DecryptionFailed,
    /// A key (bytes or key file text) is malformed, of the wrong kind, or unusable.
    KeyInvalid(String),
    /// This build leaves a feature out (the npm package's `skedge/lite` entry: no signatures, no
    /// encryption) and the artifact or the options need it: refused, never loaded unchecked.
    FeatureUnavailable {
        /// What is missing, e.g. "signature verification".
        feature: &'static str,
    },
}

impl Error {
    /// Stable machine-readable code, shared by the CLI, the JS package and the docs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadMagic
            | Error::Truncated { .. }
            | Error::TrailingBytes { .. }
            | Error::ChecksumMismatch { .. }
            | Error::Corrupt(_) => "ARTIFACT_CORRUPT",
            Error::UnsupportedFormatVersion { .. }
            | Error::UnsupportedFlags { .. }
            | Error::UnsupportedUnicode { .. } => "ARTIFACT_VERSION_UNSUPPORTED",
            Error::Interchange(_) => "INTERCHANGE_INVALID",
            Error::InputTooLarge { .. }
            | Error::SnapshotTooLarge { .. }
            | Error::CountTooLarge { .. }
            | Error::ArtifactTooLarge { .. } => "INPUT_TOO_LARGE",
            Error::InvalidInput(_) => "INVALID_INPUT",
            Error::Io(_) => "IO",
            Error::PointerInvalid(_) => "POINTER_INVALID",
            Error::PointerStale { .. } => "POINTER_STALE",
            Error::SignatureMissing => "SIGNATURE_MISSING",
            Error::SignatureInvalid { .. } => "SIGNATURE_INVALID",
            #[cfg(feature = "crypto")]
            Error::PointerSignatureMissing => "SIGNATURE_MISSING",
            #[cfg(feature = "crypto")]
            Error::PointerSignatureInvalid { .. } => "SIGNATURE_INVALID",
            Error::DecryptionKeyMissing => "DECRYPTION_KEY_MISSING",
            Error::EncryptionMissing => "ENCRYPTION_MISSING",
            Error::DecryptionFailed => "DECRYPTION_FAILED",
            Error::KeyInvalid(_) => "KEY_INVALID",
            Error::FeatureUnavailable { .. } => "FEATURE_UNAVAILABLE",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadMagic => write!(f, "not a skedge artifact (bad magic bytes)"),
            Error::UnsupportedFormatVersion { found, supported } => write!(
                f,
                "artifact format version {found} is not supported (this build reads versions 2 to {supported})"
            ),
            Error::UnsupportedFlags { found } => {
                write!(f, "artifact header flags {found:#06x} are not supported by this build")
            }
            Error::UnsupportedUnicode { found } => write!(
                f,
                "the artifact's text follows Unicode \"{found}\" (its exporter's Python), which this build \
                 has no tables for (it reads {}): use a newer skedge",
                crate::text::unicode::Unicode::supported()
            ),
            Error::Truncated { expected, found } => {
                write!(f, "artifact truncated: expected {expected} bytes, found {found}")
            }
            Error::ArtifactTooLarge { declared, limit } => write!(
                f,
                "artifact of {declared} bytes (as its header declares) is larger than the {limit} bytes \
                 read from a stream (a pipe, a FIFO, a device): give it as a file"
            ),
            Error::TrailingBytes { extra } => {
                write!(f, "artifact has {extra} unexpected bytes after its body")
            }
            Error::ChecksumMismatch { expected, found } => write!(
                f,
                "artifact checksum mismatch (header {expected:016x}, body {found:016x}): the file is damaged or was altered"
            ),
            Error::Corrupt(why) => write!(f, "artifact corrupt: {why}"),
            Error::Interchange(why) => write!(f, "invalid interchange: {why}"),
            Error::InputTooLarge { bytes, limit } => {
                write!(f, "input text of {bytes} bytes exceeds the limit of {limit} bytes")
            }
            Error::SnapshotTooLarge { bytes: Some(bytes), limit } => {
                write!(f, "snapshot of {bytes} bytes exceeds the limit of {limit} bytes")
            }
            Error::SnapshotTooLarge { bytes: None, limit } => {
                write!(f, "snapshot exceeds the limit of {limit} bytes")
            }
            Error::CountTooLarge { count, limit } => write!(
                f,
                "a feature occurs {count} times in this text: sublinear_tf's log matches numpy's \
                 only for counts up to {limit}, as checked at export"
            ),
            Error::InvalidInput(why) => write!(f, "invalid input: {why}"),
            Error::Io(why) => write!(f, "{why}"),
            Error::PointerInvalid(why) => write!(f, "invalid pointer: {why}"),
            Error::PointerStale {
                generation,
                current,
            } => write!(
                f,
                "pointer generation {generation} is not above the served generation {current}: refused"
            ),
            Error::SignatureMissing => {
                write!(f, "artifact is not signed, but a public key is pinned: refusing to load it")
            }
            Error::SignatureInvalid { keys } => write!(
                f,
                "artifact signature does not verify with the {keys} pinned public key(s): \
                 it was signed with another key or altered after signing"
            ),
            #[cfg(feature = "crypto")]
            Error::PointerSignatureMissing => {
                write!(f, "pointer is not signed, but a public key is pinned: refusing it")
            }
            #[cfg(feature = "crypto")]
            Error::PointerSignatureInvalid { keys } => write!(
                f,
                "pointer signature does not verify with the {keys} pinned public key(s): \
                 it was signed with another key or altered after signing"
            ),
            Error::DecryptionKeyMissing => write!(f, "artifact is encrypted: a decryption key is needed"),
            Error::EncryptionMissing => write!(
                f,
                "a decryption key was given but the artifact is not encrypted: refusing a plain artifact"
            ),
            Error::DecryptionFailed => write!(
                f,
                "artifact decryption failed: wrong key, or the artifact was altered after encryption"
            ),
            Error::KeyInvalid(why) => write!(f, "invalid key: {why}"),
            Error::FeatureUnavailable { feature } => write!(
                f,
                "{feature} is not in this build (skedge/lite): load this artifact with the full `skedge` entry"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<postcard::Error> for Error {
    fn from(e: postcard::Error) -> Self {
        Error::Corrupt(format!("body does not decode: {e}"))
    }
}

/// Characters of a caller's string that a message shows: a message must not grow with the input
/// (a 10 MB option key would make a 10 MB message, which a server may send back to its client).
pub(crate) const SHOWN_CHARS: usize = 200;

/// A string in a message as `{:?}` shows it (quoted; `\`, `"` and control chars escaped), without
/// core's `Debug` for `str`: its printable-char tables and escaping were 4 KB of `skedge/lite`.
/// Other non-ASCII chars are shown as they are. Past [`SHOWN_CHARS`] characters it is cut, and its
/// length said: `"abc…" (10485760 bytes)`.
pub(crate) struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bounded(f, self.0, true)
    }
}

/// A string in a message as it is, cut as [`Quoted`] cuts it: `abc… (10485760 bytes)`.
// Its users: the JS binding and the snapshot parsers of the CLI.
#[cfg_attr(not(any(target_arch = "wasm32", feature = "cli")), allow(dead_code))]
pub(crate) struct Cut<'a>(pub &'a str);

impl fmt::Display for Cut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bounded(f, self.0, false)
    }
}

fn bounded(f: &mut fmt::Formatter<'_>, s: &str, quoted: bool) -> fmt::Result {
    if quoted {
        f.write_str("\"")?;
    }
    let mut cut = false;
    for (i, c) in s.chars().enumerate() {
        if i == SHOWN_CHARS {
            cut = true;
            break;
        }
        match c {
            _ if !quoted => fmt::Write::write_char(f, c)?,
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\0' => f.write_str("\\0")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => fmt::Write::write_char(f, c)?,
        }
    }
    if cut {
        f.write_str("…")?;
    }
    if quoted {
        f.write_str("\"")?;
    }
    if cut {
        write!(f, " ({} bytes)", s.len())?;
    }
    Ok(())
}

/// Strings in a message as `{:?}` shows a slice of them: `["a", "b"]`, each cut as [`Quoted`]
/// cuts it, and past [`SHOWN_ITEMS`] strings the rest counted: `["a", "b", … 998 more]`.
pub(crate) struct QuotedList<'a>(pub &'a [&'a str]);

/// Strings of a [`QuotedList`] that a message shows.
pub(crate) const SHOWN_ITEMS: usize = 20;

impl fmt::Display for QuotedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if i == SHOWN_ITEMS {
                write!(f, "… {} more", self.0.len() - i)?;
                break;
            }
            write!(f, "{}", Quoted(s))?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod quoted_tests {
    use super::{Cut, Quoted, QuotedList, SHOWN_CHARS, SHOWN_ITEMS};

    #[test]
    fn quoted_is_debug_for_ascii_and_printable_text() {
        for s in [
            "",
            "text",
            "a \"b\" \\c",
            "tab\there\nnew\r\0",
            "\u{1b}[0m\u{7f}",
            "café ☕ 日本",
        ] {
            assert_eq!(Quoted(s).to_string(), format!("{s:?}"));
        }
        let keys = ["text", "other \"one\""];
        assert_eq!(QuotedList(&keys).to_string(), format!("{keys:?}"));
        assert_eq!(QuotedList(&[]).to_string(), "[]");
    }

    #[test]
    fn a_long_string_is_cut_on_a_char_boundary_and_its_length_said() {
        let exact = "é".repeat(SHOWN_CHARS);
        assert_eq!(
            Quoted(&exact).to_string(),
            format!("{exact:?}"),
            "at the bound: whole"
        );
        let long = format!("{exact}日{}", "x".repeat(10 << 20));
        let shown = format!("\"{exact}…\" ({} bytes)", long.len());
        assert_eq!(Quoted(&long).to_string(), shown);
        assert_eq!(Cut(&long).to_string(), format!("{exact}… ({} bytes)", long.len()));
        assert_eq!(Cut("as \"is\"\n").to_string(), "as \"is\"\n");
        // Escapes count as one character each: still bounded.
        let quotes = "\"".repeat(1000);
        assert_eq!(
            Quoted(&quotes).to_string().len(),
            2 * SHOWN_CHARS + "\"…\" (1000 bytes)".len()
        );
    }

    #[test]
    fn a_long_list_shows_its_first_strings_and_counts_the_rest() {
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(
            QuotedList(&keys[..SHOWN_ITEMS]).to_string(),
            format!("{:?}", &keys[..SHOWN_ITEMS])
        );
        let shown = format!("{:?}", &keys[..SHOWN_ITEMS]);
        let shown = format!("{}, … {} more]", &shown[..shown.len() - 1], 1000 - SHOWN_ITEMS);
        assert_eq!(QuotedList(&keys).to_string(), shown);
        let big = "k".repeat(10 << 20);
        assert!(QuotedList(&[big.as_str(); 1000]).to_string().len() < 10_000);
    }
}
