//! The artifact envelope (FORMAT.md §2, §3): a fixed header, the body (postcard, or its
//! XChaCha20-Poly1305 ciphertext), then an Ed25519 signature when the header says so.
//!
//! The header's first [`AAD_LEN`] bytes (magic, version, flags, body length) are what signature
//! and encryption authenticate; the checksum covers everything after the header (body and
//! signature), so even without keys every accidental change is caught. It is XXH3-64 when the
//! header has [`FLAG_XXH3`] (every artifact this build writes), else xxHash64 (artifacts written
//! before it, still read).
//!
//! Reading checks, in order (FORMAT.md §3, "Reading order"): the keys given; the length of the
//! header, magic, version, flags; what the loader demands (a pinned key needs a signed artifact, a
//! decryption key an encrypted one); the declared lengths against the buffer; the signature; the
//! checksum; decryption; then decodes the body. Nothing is allocated before the declared lengths
//! have been checked against the buffer; decryption allocates the ciphertext's size, once, and
//! postcard never trusts a declared length beyond the bytes left.

pub mod compact;
pub mod crypto;
pub mod example;
pub mod layout;
pub mod manifest;
pub mod schema;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use sha2::{Digest, Sha256, Sha512};
use xxhash_rust::xxh3::xxh3_64;
use xxhash_rust::xxh64::xxh64;

use crate::error::{Error, Result};
use crypto::{KEY_LEN, NONCE_LEN, SIGNATURE_LEN, TAG_LEN};
use schema::Body;

/// `\x89SKEDGE\n`: a non-ASCII first byte and a newline catch text-mode transfers.
pub const MAGIC: [u8; 8] = [0x89, b'S', b'K', b'E', b'D', b'G', b'E', b'\n'];
/// The format version this build writes for a model that takes texts (and reads, with
/// [`COLUMN_FORMAT_VERSION`] and [`LEGACY_FORMAT_VERSION`]).
pub const FORMAT_VERSION: u16 = 3;
/// Format 3 with the manifest followed by [`schema::Input`]: written only for a model fitted on a
/// DataFrame column, so every other artifact stays format 3, which older readers load (FORMAT.md
/// §2, versioning rule).
pub const COLUMN_FORMAT_VERSION: u16 = 4;
/// The older format this build still reads, converting its body to format 3 at load (FORMAT.md
/// §2, "Format 2"); never written.
pub const LEGACY_FORMAT_VERSION: u16 = 2;
/// Header size in bytes.
pub const HEADER_LEN: usize = 24;
/// Header flag: a 64-byte Ed25519 signature of the header (but its checksum) and the body's
/// SHA-512 follows the body. Artifacts signed before [`FLAG_SIGNED_SHA256`]; still read.
pub const FLAG_SIGNED: u16 = 1 << 0;
/// Header flag: the body is `nonce ‖ XChaCha20-Poly1305 ciphertext ‖ tag`.
pub const FLAG_ENCRYPTED: u16 = 1 << 1;
/// Header flag: the checksum is XXH3-64 (seed 0), not xxHash64. Every writer sets it: XXH3 has a
/// SIMD path in wasm (simd128), so a cold load's checksum costs less in baseline (Liftoff) code
/// (FORMAT.md §3). Readers older than it refuse the artifact (unknown flag), as they must.
pub const FLAG_XXH3: u16 = 1 << 2;
/// Header flag, instead of [`FLAG_SIGNED`] (never both): signed the same way, over the body's
/// SHA-256. Every signing writer sets it: hosts hash with native code (node:crypto, WebCrypto),
/// and CPUs have SHA-256 instructions (x86 SHA-NI, Armv8) where most have none for SHA-512, so a
/// 1 MB body costs 0.8 ms instead of 2.2 in Node (FORMAT.md §3). A second bit rather than a
/// modifier of the first: a flip of either changes the length the header declares or sets both
/// (refused). Readers older than it refuse the artifact (unknown flag), as they must.
pub const FLAG_SIGNED_SHA256: u16 = 1 << 3;
/// Every flag this build understands; any other bit is refused.
pub const KNOWN_FLAGS: u16 = FLAG_SIGNED | FLAG_ENCRYPTED | FLAG_XXH3 | FLAG_SIGNED_SHA256;
/// The header bytes that signature and encryption authenticate: magic, version, flags and body
/// length. The checksum after them is derived from the rest (body and signature).
pub const AAD_LEN: usize = 16;

/// What a loader pins or holds. `LoadOptions::default()` loads unsigned and signed artifacts
/// without checking signatures and refuses encrypted ones.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// Pinned Ed25519 public keys. When not empty, the artifact must be signed by one of them
    /// (several keys let a key rotation overlap); unsigned artifacts are refused.
    pub public_keys: Vec<[u8; KEY_LEN]>,
    /// XChaCha20-Poly1305 key. When set, the artifact must be encrypted with it; plain
    /// artifacts are refused.
    pub decryption_key: Option<[u8; KEY_LEN]>,
    /// The signature's prehash of the stored body (the bytes after the header, up to the
    /// signature; [`Envelope::prehash`] says which hash), computed by the host (WebCrypto,
    /// node:crypto: native and fast). When set, signature verification uses it instead of
    /// hashing the body in wasm. The host must compute it from the very bytes it loads: a digest
    /// of other bytes (or by another hash) only ever fails verification.
    pub body_digest: Option<Vec<u8>>,
    /// Ed25519 verification by the host's native code (the JS package's Node entries:
    /// `node:crypto`), on the same key, message ([`signed_message`]) and signature; where it gives
    /// no verdict, the crate's own (`crypto::verify`) decides. See `crypto::verify_with`.
    pub host_verify: Option<crypto::HostVerify>,
}

impl LoadOptions {
    /// Pins one more Ed25519 public key.
    pub fn public_key(mut self, key: [u8; KEY_LEN]) -> Self {
        self.public_keys.push(key);
        self
    }

    /// Sets the decryption key.
    pub fn decryption_key(mut self, key: [u8; KEY_LEN]) -> Self {
        self.decryption_key = Some(key);
        self
    }
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("public_keys", &self.public_keys.len())
            .field("decryption_key", &self.decryption_key.map(|_| "<redacted>"))
            .field("body_digest", &self.body_digest.is_some())
            .field("host_verify", &self.host_verify.is_some())
            .finish()
    }
}

/// The hash of the stored body that a signature signs ([`signed_message`]): SHA-256 with
/// [`FLAG_SIGNED_SHA256`] (every signature this build makes), SHA-512 with [`FLAG_SIGNED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prehash {
    /// SHA-256 ([`FLAG_SIGNED_SHA256`]).
    Sha256,
    /// SHA-512 ([`FLAG_SIGNED`]).
    Sha512,
}

impl Prehash {
    /// The prehash of a signed artifact with these header flags.
    pub fn of(flags: u16) -> Prehash {
        match flags & FLAG_SIGNED_SHA256 {
            0 => Prehash::Sha512,
            _ => Prehash::Sha256,
        }
    }

    /// Its name for hosts, as node:crypto spells it: `"sha256"`, `"sha512"`.
    pub fn name(self) -> &'static str {
        match self {
            Prehash::Sha256 => "sha256",
            Prehash::Sha512 => "sha512",
        }
    }

    /// The digest of `bytes`.
    pub fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Prehash::Sha256 => Sha256::digest(bytes).to_vec(),
            Prehash::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }
}

/// How to write: sign, encrypt, both or neither (the default). Every artifact written has
/// [`FLAG_XXH3`].
#[derive(Clone, Default)]
pub struct SealOptions {
    /// Ed25519 secret key (32-byte seed) that signs header and body.
    pub signing_key: Option<[u8; KEY_LEN]>,
    /// Key and nonce that encrypt the body.
    pub encryption: Option<Encryption>,
}

/// An encryption key and the nonce of one artifact.
#[derive(Clone)]
pub struct Encryption {
    /// XChaCha20-Poly1305 key.
    pub key: [u8; KEY_LEN],
    /// Must never repeat under one key: the CLI draws 24 random bytes per artifact.
    pub nonce: [u8; NONCE_LEN],
}

impl fmt::Debug for SealOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealOptions")
            .field("signed", &self.signing_key.is_some())
            .field("encrypted", &self.encryption.is_some())
            .finish()
    }
}

/// Encodes a model into plain artifact bytes (neither signed nor encrypted), format 3 (4 for a
/// model that takes a DataFrame column).
pub fn to_bytes(body: &Body) -> Result<Vec<u8>> {
    to_bytes_with(body, &SealOptions::default())
}

/// Encodes a model into artifact bytes, signed and/or encrypted as `options` say.
pub fn to_bytes_with(body: &Body, options: &SealOptions) -> Result<Vec<u8>> {
    seal_version(&layout::encode(body)?, options, format_version(&body.input))
}

/// The version a model is written in: the lowest that holds its input.
pub fn format_version(input: &schema::Input) -> u16 {
    match input {
        schema::Input::Text => FORMAT_VERSION,
        schema::Input::Column(_) => COLUMN_FORMAT_VERSION,
    }
}

/// Wraps an encoded format 3 body (not checked) in the envelope: encrypts it with the
/// header as associated data, signs the header and the stored body, then checksums body and
/// signature.
pub fn seal(encoded: &[u8], options: &SealOptions) -> Result<Vec<u8>> {
    seal_version(encoded, options, FORMAT_VERSION)
}

/// [`seal`] with the version the header declares: [`LEGACY_FORMAT_VERSION`] for a format 2
/// postcard body (tests of the legacy reader only; `skedge` never writes one).
pub fn seal_version(encoded: &[u8], options: &SealOptions, version: u16) -> Result<Vec<u8>> {
    let mut flags = FLAG_XXH3;
    if options.signing_key.is_some() {
        flags |= FLAG_SIGNED_SHA256;
    }
    let stored_len = match options.encryption {
        Some(_) => {
            flags |= FLAG_ENCRYPTED;
            encoded.len() as u64 + (NONCE_LEN + TAG_LEN) as u64
        }
        None => encoded.len() as u64,
    };
    let body_len = u32::try_from(stored_len)
        .map_err(|_| Error::Corrupt(format!("body of {stored_len} bytes exceeds 4 GiB")))?;
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&version.to_le_bytes());
    header[10..12].copy_from_slice(&flags.to_le_bytes());
    header[12..16].copy_from_slice(&body_len.to_le_bytes());
    // header[16..24], the checksum, once everything after it is known.
    let mut out = Vec::with_capacity(HEADER_LEN + stored_len as usize + SIGNATURE_LEN);
    out.extend_from_slice(&header);
    match &options.encryption {
        Some(e) => out.extend_from_slice(&crypto::seal(&e.key, &e.nonce, &header[..AAD_LEN], encoded)?),
        None => out.extend_from_slice(encoded),
    }
    if let Some(secret) = &options.signing_key {
        #[cfg(not(feature = "crypto"))]
        {
            let _ = secret;
            return Err(Error::FeatureUnavailable { feature: "signing" });
        }
        #[cfg(feature = "crypto")]
        {
            let signature = crypto::sign(secret, &signed_message(&header, &out[HEADER_LEN..]));
            out.extend_from_slice(&signature);
        }
    }
    let checksum = checksum(flags, &out[HEADER_LEN..]);
    out[AAD_LEN..HEADER_LEN].copy_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// The checksum of `checked` (everything after the header) for an artifact with these header
/// flags: XXH3-64 with [`FLAG_XXH3`], else xxHash64, both with seed 0.
pub fn checksum(flags: u16, checked: &[u8]) -> u64 {
    if flags & FLAG_XXH3 != 0 {
        xxh3_64(checked)
    } else {
        xxh64(checked, 0)
    }
}

/// What the Ed25519 signature signs (FORMAT.md §3): the header's first [`AAD_LEN`] bytes (its
/// checksum is left out), then the stored body's [`Prehash`] (the header's flags say which); 48
/// or 80 bytes, so verifying never copies the body.
pub fn signed_message(header: &[u8; HEADER_LEN], stored_body: &[u8]) -> Vec<u8> {
    let flags = u16::from_le_bytes([header[10], header[11]]);
    signed_message_of_digest(header, &Prehash::of(flags).digest(stored_body))
}

/// [`signed_message`] from the stored body's digest computed elsewhere
/// ([`LoadOptions::body_digest`]).
pub fn signed_message_of_digest(header: &[u8; HEADER_LEN], body_digest: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(AAD_LEN + body_digest.len());
    message.extend_from_slice(&header[..AAD_LEN]);
    message.extend_from_slice(body_digest);
    message
}

/// The parts of an artifact, located by [`parse`] (structure only: nothing verified yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Format version: [`FORMAT_VERSION`] or [`LEGACY_FORMAT_VERSION`].
    pub version: u16,
    /// Header flags ([`KNOWN_FLAGS`]).
    pub flags: u16,
    /// The header.
    pub header: &'a [u8; HEADER_LEN],
    /// The body as stored (ciphertext when encrypted).
    pub body: &'a [u8],
    /// The signature, when signed.
    pub signature: Option<&'a [u8; SIGNATURE_LEN]>,
    /// The checksum the header declares for the stored body and the signature.
    pub checksum: u64,
    /// Body and signature: what the checksum covers.
    pub checked: &'a [u8],
}

impl Envelope<'_> {
    /// Whether the header says the artifact is signed (either signing flag).
    pub fn is_signed(&self) -> bool {
        self.flags & (FLAG_SIGNED | FLAG_SIGNED_SHA256) != 0
    }

    /// The hash of the stored body that the signature signs.
    pub fn prehash(&self) -> Prehash {
        Prehash::of(self.flags)
    }

    /// Whether the header says the body is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }

    /// Whether the checksum is XXH3-64 (else xxHash64, an artifact from before [`FLAG_XXH3`]).
    pub fn is_xxh3(&self) -> bool {
        self.flags & FLAG_XXH3 != 0
    }
}

/// The largest artifact read from a stream (a pipe, a FIFO, a device: a file with no size to hold
/// its header to), header, body and signature, 256 MiB as `skedge pack`'s streamed interchange: a
/// header declaring more is refused ([`Error::ArtifactTooLarge`]) before its body is read, so a
/// forged one (a body length of 4 GiB) cannot make a reader buffer an endless stream. A regular file
/// is read up to its own size, at most the format's `24 + (2^32 - 1) + 64` bytes (FORMAT.md §3).
pub const MAX_STREAMED_ARTIFACT_BYTES: u64 = 256 << 20;

/// Reads the artifact at `path` no further than its header says it extends, plus one byte to show
/// a trailing one: a regular file as much as a FIFO or a device, so that neither `/dev/zero` nor a
/// file longer than its header declares (`truncate -s 1G m.skedge`) is read whole before it is
/// refused (`parse` finds the extra byte: `TrailingBytes`). A file that is not an artifact is read
/// no further than the header. A stream whose header declares more than
/// [`MAX_STREAMED_ARTIFACT_BYTES`] is refused after its header, as an `InvalidData` error holding
/// [`Error::ArtifactTooLarge`] ([`read_error`] takes it out). The buffer grows with the bytes that
/// arrive, never reserved from the header's claim.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    read_file_sized(path).map(|(bytes, _)| bytes)
}

/// [`read_file`], and the length of the file: a regular file's size, which is more than the bytes
/// read when the file extends past the artifact (a caller reports the true number of trailing
/// bytes with it), else the number of bytes read.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file_sized(path: &std::path::Path) -> std::io::Result<(Vec<u8>, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let mut bytes = Vec::new();
    (&mut file).take(HEADER_LEN as u64).read_to_end(&mut bytes)?;
    if bytes.len() == HEADER_LEN && bytes[..8] == MAGIC {
        let flags = u16::from_le_bytes([bytes[10], bytes[11]]);
        let body_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let trailer = match flags & (FLAG_SIGNED | FLAG_SIGNED_SHA256) {
            0 => 0,
            _ => SIGNATURE_LEN as u64,
        };
        let rest = u64::from(body_len) + trailer;
        let declared = HEADER_LEN as u64 + rest;
        if !meta.is_file() && declared > MAX_STREAMED_ARTIFACT_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                Error::ArtifactTooLarge {
                    declared,
                    limit: MAX_STREAMED_ARTIFACT_BYTES,
                },
            ));
        }
        // `read_to_end` grows the buffer as bytes arrive: a stream that declares 200 MB and ends
        // after 1 KB costs 1 KB.
        file.take(rest + 1).read_to_end(&mut bytes)?;
    }
    // Otherwise `parse` says what is wrong from the header alone.
    let len = match meta.is_file() {
        true => meta.len().max(bytes.len() as u64),
        false => bytes.len() as u64,
    };
    Ok((bytes, len))
}

/// The error of a failed [`read_file_sized`]: its refusal of a stream too large as it is
/// (`INPUT_TOO_LARGE`), any other as [`Error::Io`] after `path` (as the caller shows paths).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_error(e: std::io::Error, path: impl fmt::Display) -> Error {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(refused) => refused.clone(),
        None => Error::Io(format!("{path}: {e}")),
    }
}

/// `e`, an error of loading the `read` bytes that [`read_file_sized`] returned for a file of `len`
/// bytes, with the file's true number of trailing bytes (it was read one byte past the artifact).
#[cfg(not(target_arch = "wasm32"))]
pub fn in_file(e: Error, read: usize, len: u64) -> Error {
    match e {
        Error::TrailingBytes { extra } => Error::TrailingBytes {
            extra: extra.saturating_add(len.saturating_sub(read as u64)),
        },
        e => e,
    }
}

/// A small text file (a key): a regular file of at most `limit` bytes (a longer one is an error).
/// Anything else is refused before a byte is read, `InvalidInput` "not a regular file": a device
/// (`/dev/zero`), a directory, and a FIFO, which is opened without waiting for a writer (the wait
/// would hold a caller, and the Python interpreter's lock with it, until one came).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_small_text(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer, unless non-blocking; a regular file's reads
    // ignore the flag.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", file_kind(kind)),
        ));
    }
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {limit} bytes"),
        ));
    }
    Ok(text)
}

/// What a file that is not a regular one is, in a message.
#[cfg(not(target_arch = "wasm32"))]
fn file_kind(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    match kind.is_dir() {
        true => "a directory",
        false => "another kind of file",
    }
}

/// Locates header, body and signature, checking magic, version, flags and that the declared
/// lengths match the buffer exactly. Verifies nothing and allocates nothing.
pub fn parse(bytes: &[u8]) -> Result<Envelope<'_>> {
    parse_header(bytes, &LoadOptions::default())
}

/// [`parse`] with the policy checks of `options` (a pinned key needs `SIGNED`, a decryption key
/// `ENCRYPTED`; FORMAT.md §3, reading order steps 1–4). Allocates nothing.
pub fn parse_with<'a>(bytes: &'a [u8], options: &LoadOptions) -> Result<Envelope<'a>> {
    for key in &options.public_keys {
        crypto::check_public_key(key)?;
    }
    let envelope = parse_header(bytes, options)?;
    if envelope.is_encrypted() && options.decryption_key.is_none() {
        return Err(Error::DecryptionKeyMissing);
    }
    Ok(envelope)
}

fn parse_header<'a>(bytes: &'a [u8], options: &LoadOptions) -> Result<Envelope<'a>> {
    let header: &[u8; HEADER_LEN] =
        bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Error::Truncated {
                expected: HEADER_LEN as u64,
                found: bytes.len() as u64,
            })?;
    let field = |at: usize, n: usize| -> u64 {
        header[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b))
    };
    if header[..8] != MAGIC {
        return Err(Error::BadMagic);
    }
    let version = field(8, 2) as u16;
    if ![FORMAT_VERSION, COLUMN_FORMAT_VERSION, LEGACY_FORMAT_VERSION].contains(&version) {
        return Err(Error::UnsupportedFormatVersion {
            found: version.into(),
            supported: COLUMN_FORMAT_VERSION,
        });
    }
    let flags = field(10, 2) as u16;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(Error::UnsupportedFlags { found: flags });
    }
    let signing = flags & (FLAG_SIGNED | FLAG_SIGNED_SHA256);
    if signing == FLAG_SIGNED | FLAG_SIGNED_SHA256 {
        return Err(Error::Corrupt(format!(
            "flags {flags:#06x}: two signing flags (0x0001 and 0x0008); an artifact has one signature"
        )));
    }
    let signed = signing != 0;
    let encrypted = flags & FLAG_ENCRYPTED != 0;
    if !options.public_keys.is_empty() && !signed {
        return Err(Error::SignatureMissing);
    }
    if options.decryption_key.is_some() && !encrypted {
        return Err(Error::EncryptionMissing);
    }
    let body_len = field(12, 4);
    let checksum = field(16, 8);
    let trailer = if signed { SIGNATURE_LEN as u64 } else { 0 };
    // u64 throughout: on wasm32, HEADER_LEN + a u32 length can overflow usize.
    let expected = HEADER_LEN as u64 + body_len + trailer;
    let found = bytes.len() as u64;
    if found < expected {
        return Err(Error::Truncated { expected, found });
    }
    if found > expected {
        return Err(Error::TrailingBytes {
            extra: found - expected,
        });
    }
    // expected == bytes.len(), so every offset below is in bounds.
    let (signed_part, signature) = bytes.split_at(HEADER_LEN + body_len as usize);
    let body = &signed_part[HEADER_LEN..];
    if encrypted && body.len() < NONCE_LEN + TAG_LEN {
        return Err(Error::Corrupt(format!(
            "encrypted body of {} bytes is shorter than its nonce and tag ({} bytes)",
            body.len(),
            NONCE_LEN + TAG_LEN
        )));
    }
    Ok(Envelope {
        version,
        flags,
        header,
        body,
        signature: signature.try_into().ok(),
        checksum,
        checked: &bytes[HEADER_LEN..],
    })
}

/// A body the envelope vouches for: borrowed from the artifact, or the decrypted plaintext.
#[derive(Debug)]
pub struct Opened<'a> {
    /// The header's format version.
    pub version: u16,
    /// The body (plaintext), in that version's layout.
    pub body: Cow<'a, [u8]>,
}

/// Checks the envelope and returns the body it vouches for: [`open_with`] without keys
/// (unsigned or signed accepted without verification, encrypted refused).
pub fn open(bytes: &[u8]) -> Result<Opened<'_>> {
    open_with(bytes, &LoadOptions::default())
}

/// Checks the envelope as `options` demand and returns the body: borrowed from `bytes`, or the
/// decrypted plaintext.
pub fn open_with<'a>(bytes: &'a [u8], options: &LoadOptions) -> Result<Opened<'a>> {
    let envelope = parse_with(bytes, options)?;
    if !options.public_keys.is_empty() {
        let message = match &options.body_digest {
            Some(digest) => signed_message_of_digest(envelope.header, digest),
            None => signed_message(envelope.header, envelope.body),
        };
        let verified = envelope.signature.is_some_and(|signature| {
            options
                .public_keys
                .iter()
                .any(|key| crypto::verify_with(options.host_verify, key, &message, signature))
        });
        if !verified {
            return Err(Error::SignatureInvalid {
                keys: options.public_keys.len(),
            });
        }
    }
    let found = checksum(envelope.flags, envelope.checked);
    if found != envelope.checksum {
        return Err(Error::ChecksumMismatch {
            expected: envelope.checksum,
            found,
        });
    }
    let body = if !envelope.is_encrypted() {
        Cow::Borrowed(envelope.body)
    } else {
        match &options.decryption_key {
            Some(key) => Cow::Owned(crypto::open(key, &envelope.header[..AAD_LEN], envelope.body)?),
            None => return Err(Error::DecryptionKeyMissing),
        }
    };
    Ok(Opened {
        version: envelope.version,
        body,
    })
}

/// Decodes a format 2 body (postcard of [`Body`]'s metadata and pipeline, FORMAT.md §2 "Format
/// 2"): a model that takes texts.
pub fn decode_legacy(body: &[u8]) -> Result<Body> {
    let ((metadata, pipeline), rest) =
        postcard::take_from_bytes::<(schema::Metadata, schema::Pipeline)>(body)?;
    if !rest.is_empty() {
        return Err(Error::Corrupt(format!(
            "{} bytes left after the body",
            rest.len()
        )));
    }
    Ok(Body {
        metadata,
        pipeline,
        input: schema::Input::Text,
    })
}

/// A format 2 body laid out again as format 3.
#[cfg(feature = "format2")]
fn convert_legacy(body: &[u8]) -> Result<Vec<u8>> {
    layout::encode(&decode_legacy(body)?)
}

/// Without the `format2` feature (`skedge/lite`) a format 2 artifact is refused: the converter is
/// the biggest code in the module, and lite is newer than format 3.
#[cfg(not(feature = "format2"))]
fn convert_legacy(_: &[u8]) -> Result<Vec<u8>> {
    Err(Error::FeatureUnavailable {
        feature: "reading format 2 artifacts (`skedge repack OLD NEW` converts them to format 3)",
    })
}

/// The format 3 (or 4) body of a checked artifact and the version to seal it with: what `skedge
/// repack` seals again. Every body is decoded and laid out again by this version's writer: a
/// format 2 body becomes format 3, and a format 3 or 4 body gets the layouts added since it was
/// written (word pairs, packed idf indices) where they are smaller, the same model bit for bit.
pub fn body_v3(bytes: &[u8], options: &LoadOptions) -> Result<(Vec<u8>, u16)> {
    let opened = open_with(bytes, options)?;
    match opened.version {
        LEGACY_FORMAT_VERSION => Ok((convert_legacy(&opened.body)?, FORMAT_VERSION)),
        version => {
            let body = layout::decode(&opened.body, version)?;
            Ok((layout::encode(&body)?, format_version(&body.input)))
        }
    }
}

/// An artifact checked for the engine: the artifact's buffer and the format 3 body it reads.
#[derive(Debug)]
pub struct Owned {
    /// The artifact as given.
    pub artifact: Arc<Vec<u8>>,
    /// The buffer holding the format 3 body: the artifact itself when plain (the same `Arc`), the
    /// decrypted plaintext, or a converted format 2 body.
    pub buf: Arc<Vec<u8>>,
    /// Where the body is in `buf`.
    pub body: Range<usize>,
    /// The header's format version.
    pub version: u16,
}

/// Checks an artifact the engine takes ownership of (FORMAT.md §3, reading order) and locates its
/// format 3 body, copying nothing when the artifact is plain format 3.
pub fn open_owned(bytes: Vec<u8>, options: &LoadOptions) -> Result<Owned> {
    let opened = open_with(&bytes, options)?;
    let version = opened.version;
    let owned = match opened.body {
        body if version == LEGACY_FORMAT_VERSION => Ok(convert_legacy(&body)?),
        Cow::Owned(plaintext) => Ok(plaintext),
        Cow::Borrowed(body) => Err(body.len()),
    };
    let artifact = Arc::new(bytes);
    Ok(match owned {
        Ok(body) => Owned {
            artifact,
            body: 0..body.len(),
            buf: Arc::new(body),
            version,
        },
        // A plain body is read where it lies, after the header.
        Err(n) => Owned {
            buf: artifact.clone(),
            artifact,
            body: HEADER_LEN..HEADER_LEN + n,
            version,
        },
    })
}
