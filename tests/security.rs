//! Signatures, encryption and hostile bytes (FORMAT.md §3, SECURITY.md): every way a signed or
//! encrypted artifact can be wrong is refused with the exact error, every bit flip and truncation
//! of every fixture artifact is an error and not a panic, and declared lengths never make the
//! loader allocate more than the input implies.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

use skedge::artifact::crypto::{self, KeyKind, KEY_LEN, NONCE_LEN, SIGNATURE_LEN, TAG_LEN};
use skedge::artifact::{
    self, Encryption, LoadOptions, SealOptions, AAD_LEN, FLAG_ENCRYPTED, FLAG_SIGNED, FLAG_SIGNED_SHA256,
    FLAG_XXH3, HEADER_LEN,
};
use skedge::interchange::Interchange;
use skedge::{Error, TextClassifier};

// ---------------------------------------------------------------------------------------------
// An allocator that records the peak of live bytes allocated by the current thread while armed.

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let live = LIVE.with(|l| {
                l.set(l.get() + delta);
                l.get()
            });
            PEAK.with(|p| p.set(p.get().max(live)));
        }
    });
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated (and still live at that moment) on this thread while `f` runs.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, PEAK.with(|p| p.get()).max(0) as usize)
}

// ---------------------------------------------------------------------------------------------
// Fixtures: the golden tiny model, plain, signed, encrypted and both, with fixed test keys.

const SIGNING_SEED: [u8; KEY_LEN] = [0x5e; KEY_LEN];
const ENCRYPTION_KEY: [u8; KEY_LEN] = [0xec; KEY_LEN];
const NONCE: [u8; NONCE_LEN] = [0x0e; NONCE_LEN];

fn golden() -> Vec<u8> {
    fs::read("tests/golden/tiny.skedge").unwrap()
}

/// The goldens as written before `FLAG_XXH3` (checksum xxHash64): deployed artifacts, which must
/// keep loading. Never regenerated.
fn xxh64_golden(name: &str) -> Vec<u8> {
    fs::read(format!("tests/golden/xxh64/{name}.skedge")).unwrap()
}

/// The checksum FORMAT.md §3 defines for these bytes' flags, computed here from the hash crate.
fn expected_checksum(bytes: &[u8]) -> u64 {
    let flags = u16::from_le_bytes([bytes[10], bytes[11]]);
    if flags & FLAG_XXH3 != 0 {
        xxhash_rust::xxh3::xxh3_64(&bytes[HEADER_LEN..])
    } else {
        xxhash_rust::xxh64::xxh64(&bytes[HEADER_LEN..], 0)
    }
}

fn encoded_body() -> Vec<u8> {
    golden()[HEADER_LEN..].to_vec()
}

fn public() -> [u8; KEY_LEN] {
    crypto::public_key(&SIGNING_SEED)
}

fn seal(sign: bool, encrypt: bool) -> Vec<u8> {
    artifact::seal(
        &encoded_body(),
        &SealOptions {
            signing_key: sign.then_some(SIGNING_SEED),
            encryption: encrypt.then_some(Encryption {
                key: ENCRYPTION_KEY,
                nonce: NONCE,
            }),
        },
    )
    .unwrap()
}

fn signed() -> Vec<u8> {
    seal(true, false)
}
fn encrypted() -> Vec<u8> {
    seal(false, true)
}
fn both() -> Vec<u8> {
    seal(true, true)
}

fn pinned() -> LoadOptions {
    LoadOptions::default().public_key(public())
}
fn keyed() -> LoadOptions {
    LoadOptions::default().decryption_key(ENCRYPTION_KEY)
}
fn pinned_keyed() -> LoadOptions {
    pinned().decryption_key(ENCRYPTION_KEY)
}

fn load(bytes: &[u8], options: &LoadOptions) -> skedge::Result<TextClassifier> {
    TextClassifier::from_bytes_with(bytes, options)
}

fn err(bytes: &[u8], options: &LoadOptions) -> Error {
    load(bytes, options).unwrap_err()
}

/// Recomputes the checksum after a deliberate change, as an attacker (not a damaged disk) would.
fn rechecksum(bytes: &mut [u8]) {
    let sum = expected_checksum(bytes);
    bytes[16..24].copy_from_slice(&sum.to_le_bytes());
}

/// The committed signed and encrypted goldens and their test keys, for the JS tests and other
/// readers. Regenerate with SKEDGE_BLESS=1 after a deliberate format change.
#[test]
fn sealed_goldens_are_byte_stable() {
    let files: [(&str, Vec<u8>); 3] = [
        ("tests/golden/tiny.signed.skedge", signed()),
        ("tests/golden/tiny.encrypted.skedge", encrypted()),
        ("tests/golden/tiny.signed-encrypted.skedge", both()),
    ];
    let keys = [
        (
            "tests/golden/test-signing.key",
            crypto::encode_key(KeyKind::SigningSecret, &SIGNING_SEED),
        ),
        (
            "tests/golden/test-signing.pub",
            crypto::encode_key(KeyKind::SigningPublic, &public()),
        ),
        (
            "tests/golden/test-encryption.key",
            crypto::encode_key(KeyKind::Encryption, &ENCRYPTION_KEY),
        ),
    ];
    if std::env::var_os("SKEDGE_BLESS").is_some() {
        for (path, bytes) in &files {
            fs::write(path, bytes).unwrap();
        }
        for (path, text) in &keys {
            fs::write(path, text).unwrap();
        }
    }
    for (path, bytes) in &files {
        assert_eq!(&fs::read(path).unwrap(), bytes, "{path} changed");
    }
    for (path, text) in &keys {
        assert_eq!(&fs::read_to_string(path).unwrap(), text, "{path} changed");
    }
}

/// Format 2 artifacts are deployed: the committed sealed goldens of format 2 load with their keys
/// (signature checked over their stored body, decrypted, converted) and predict as format 3 does.
#[test]
fn format_2_sealed_goldens_load_and_predict_as_format_3() {
    let plain = load(&golden(), &LoadOptions::default()).unwrap();
    for (path, options) in [
        ("tests/golden/v2/tiny.skedge", LoadOptions::default()),
        ("tests/golden/v2/tiny.signed.skedge", pinned()),
        ("tests/golden/v2/tiny.encrypted.skedge", keyed()),
        ("tests/golden/v2/tiny.signed-encrypted.skedge", pinned_keyed()),
    ] {
        let bytes = fs::read(path).unwrap();
        assert_eq!(
            u16::from_le_bytes([bytes[8], bytes[9]]),
            artifact::LEGACY_FORMAT_VERSION
        );
        let old = load(&bytes, &options).unwrap();
        assert_eq!(old.format_version(), artifact::LEGACY_FORMAT_VERSION, "{path}");
        for text in ["good", "bad great", "", "GOOD bad bad"] {
            assert_eq!(old.predict(text).unwrap(), plain.predict(text).unwrap(), "{path}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(load(&flipped, &options).is_err(), "{path}");
    }
    let e = err(
        &fs::read("tests/golden/v2/tiny.signed.skedge").unwrap(),
        &LoadOptions::default().public_key(crypto::public_key(&[7; KEY_LEN])),
    );
    assert_eq!(e.code(), "SIGNATURE_INVALID");
}

/// `LoadOptions::body_digest`: the host's digest of the stored body replaces hashing it in wasm;
/// a digest of other bytes, or by the other hash, does not verify.
#[test]
fn a_host_computed_body_digest_verifies_the_signature() {
    for (bytes, options) in [
        (signed(), pinned()),
        (both(), pinned_keyed()),
        (xxh64_golden("tiny.signed"), pinned()),
        (xxh64_golden("tiny.signed-encrypted"), pinned_keyed()),
    ] {
        let header: &[u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().unwrap();
        let body_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let body = &bytes[HEADER_LEN..HEADER_LEN + body_len];
        let sha256 = sha2::Sha256::digest(body).to_vec();
        let sha512 = sha2::Sha512::digest(body).to_vec();
        let (digest, other) = match artifact::parse(&bytes).unwrap().prehash() {
            artifact::Prehash::Sha256 => (sha256, sha512),
            artifact::Prehash::Sha512 => (sha512, sha256),
        };
        assert_eq!(
            artifact::signed_message_of_digest(header, &digest),
            artifact::signed_message(header, body)
        );
        let by_the_other_hash = LoadOptions {
            body_digest: Some(other),
            ..options.clone()
        };
        assert_eq!(
            err(&bytes, &by_the_other_hash),
            Error::SignatureInvalid { keys: 1 }
        );
        let with = LoadOptions {
            body_digest: Some(digest.clone()),
            ..options.clone()
        };
        let model = load(&bytes, &with).unwrap();
        assert_eq!(
            model.predict("good").unwrap(),
            load(&bytes, &options).unwrap().predict("good").unwrap()
        );
        let mut wrong = digest;
        wrong[0] ^= 1;
        let e = err(
            &bytes,
            &LoadOptions {
                body_digest: Some(wrong),
                ..options.clone()
            },
        );
        assert_eq!(e, Error::SignatureInvalid { keys: 1 });
    }
    // Without a pinned key the digest is not used (nothing to verify).
    let unused = LoadOptions {
        body_digest: Some(vec![0; 32]),
        ..LoadOptions::default()
    };
    assert!(load(&signed(), &unused).is_ok());
}

#[test]
fn plain_artifacts_are_unchanged_by_the_envelope_extension() {
    assert_eq!(
        artifact::seal(&encoded_body(), &SealOptions::default()).unwrap(),
        golden()
    );
    assert_eq!(
        golden()[10..12],
        FLAG_XXH3.to_le_bytes(),
        "plain artifacts have one flag: the XXH3 checksum"
    );
}

/// Artifacts written before `FLAG_XXH3` (flags without it, checksum xxHash64; signed with
/// `FLAG_SIGNED`, over the body's SHA-512, where a writer now sets `FLAG_SIGNED_SHA256`) load with
/// their keys, predict as the new ones do and hold the very same body bytes; a bad xxHash64 is
/// ARTIFACT_CORRUPT, and switching the flag without the checksum is too.
#[test]
fn xxh64_goldens_still_load_and_predict_the_same() {
    let plain = load(&golden(), &LoadOptions::default()).unwrap();
    for (name, new, options) in [
        ("tiny", golden(), LoadOptions::default()),
        ("tiny.signed", signed(), pinned()),
        ("tiny.encrypted", encrypted(), keyed()),
        ("tiny.signed-encrypted", both(), pinned_keyed()),
    ] {
        let old = xxh64_golden(name);
        let flags = u16::from_le_bytes([old[10], old[11]]);
        assert_eq!(flags & FLAG_XXH3, 0, "{name}");
        let signing_now = match flags & FLAG_SIGNED {
            0 => 0,
            _ => FLAG_SIGNED ^ FLAG_SIGNED_SHA256,
        };
        assert_eq!(
            flags ^ signing_now | FLAG_XXH3,
            u16::from_le_bytes([new[10], new[11]]),
            "{name}"
        );
        assert_eq!(
            old[16..24],
            xxhash_rust::xxh64::xxh64(&old[HEADER_LEN..], 0).to_le_bytes()
        );
        assert!(!artifact::parse(&old).unwrap().is_xxh3());
        assert!(artifact::parse(&new).unwrap().is_xxh3());
        let model = load(&old, &options).unwrap();
        for text in ["good", "bad great", "", "GOOD bad bad"] {
            assert_eq!(
                model.predict(text).unwrap(),
                plain.predict(text).unwrap(),
                "{name}"
            );
        }
        // The plain body is the same bytes (the sealed ones authenticate the flags too).
        if name == "tiny" {
            assert_eq!(old[HEADER_LEN..], new[HEADER_LEN..]);
        }
        // Unpinned, so the checksum (not the signature) is what refuses the changes below.
        let unpinned = LoadOptions {
            public_keys: vec![],
            ..options.clone()
        };
        let mut damaged = old.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        let e = err(&damaged, &unpinned);
        assert!(matches!(e, Error::ChecksumMismatch { .. }), "{name}: {e:?}");
        assert_eq!(e.code(), "ARTIFACT_CORRUPT");
        // The flag names the hash: setting it on an xxHash64 artifact (or clearing it on an XXH3
        // one) leaves a checksum of the other kind, which does not match.
        let mut flagged = old.clone();
        flagged[10] |= FLAG_XXH3 as u8;
        let e = err(&flagged, &unpinned);
        assert!(matches!(e, Error::ChecksumMismatch { .. }), "{name}: {e:?}");
        let mut unflagged = new.clone();
        unflagged[10] &= !(FLAG_XXH3 as u8);
        let e = err(&unflagged, &unpinned);
        assert!(matches!(e, Error::ChecksumMismatch { .. }), "{name}: {e:?}");
        if !options.public_keys.is_empty() {
            // Re-checksummed, the changed flag still fails the signature (it is in the AD).
            rechecksum(&mut flagged);
            assert_eq!(
                err(&flagged, &options),
                Error::SignatureInvalid { keys: 1 },
                "{name}"
            );
        }
    }
}

#[test]
fn layout_is_as_documented() {
    let body = encoded_body();
    let s = signed();
    assert_eq!(u16::from_le_bytes([s[10], s[11]]), FLAG_SIGNED_SHA256 | FLAG_XXH3);
    assert_eq!(s.len(), HEADER_LEN + body.len() + SIGNATURE_LEN);
    assert_eq!(s[HEADER_LEN..HEADER_LEN + body.len()], body[..]);
    let sig: [u8; SIGNATURE_LEN] = s[s.len() - SIGNATURE_LEN..].try_into().unwrap();
    // Signed: header bytes 0..16 and the SHA-256 of the body (any Ed25519 tool can check it).
    let mut message = s[..AAD_LEN].to_vec();
    message.extend_from_slice(&sha2::Sha256::digest(&body));
    let header: &[u8; HEADER_LEN] = s[..HEADER_LEN].try_into().unwrap();
    assert_eq!(message[..], artifact::signed_message(header, &body)[..]);
    assert!(crypto::verify(&public(), &message, &sig));
    // The checksum, XXH3-64 (seed 0), covers body and signature.
    assert_eq!(
        s[16..24],
        xxhash_rust::xxh3::xxh3_64(&s[HEADER_LEN..]).to_le_bytes()
    );
    assert_eq!(
        s[16..24],
        artifact::checksum(FLAG_XXH3, &s[HEADER_LEN..]).to_le_bytes()
    );

    let e = encrypted();
    assert_eq!(u16::from_le_bytes([e[10], e[11]]), FLAG_ENCRYPTED | FLAG_XXH3);
    assert_eq!(e.len(), HEADER_LEN + NONCE_LEN + body.len() + TAG_LEN);
    assert_eq!(e[HEADER_LEN..HEADER_LEN + NONCE_LEN], NONCE);
    assert_eq!(
        crypto::open(&ENCRYPTION_KEY, &e[..AAD_LEN], &e[HEADER_LEN..]).unwrap(),
        body
    );

    let b = both();
    assert_eq!(
        u16::from_le_bytes([b[10], b[11]]),
        FLAG_SIGNED_SHA256 | FLAG_ENCRYPTED | FLAG_XXH3
    );
    assert_eq!(
        b.len(),
        HEADER_LEN + NONCE_LEN + body.len() + TAG_LEN + SIGNATURE_LEN
    );
}

#[test]
fn sealed_artifacts_load_and_predict_like_the_plain_one() {
    let plain = TextClassifier::from_bytes(&golden()).unwrap();
    let want = plain.predict("good, not bad").unwrap();
    for (bytes, options) in [
        (signed(), pinned()),
        (signed(), LoadOptions::default()),
        (encrypted(), keyed()),
        (both(), pinned_keyed()),
        (both(), keyed()),
    ] {
        let model = load(&bytes, &options).unwrap();
        assert_eq!(model.predict("good, not bad").unwrap(), want);
        assert_eq!(model.metadata(), plain.metadata());
    }
    // A rotation: any of several pinned keys.
    let other = crypto::public_key(&[1; KEY_LEN]);
    let rotating = LoadOptions::default().public_key(other).public_key(public());
    assert!(load(&signed(), &rotating).is_ok());
}

#[test]
fn pinned_key_refuses_unsigned_wrong_key_and_stripped_signatures() {
    let e = err(&golden(), &pinned());
    assert_eq!(e, Error::SignatureMissing);
    assert_eq!(e.code(), "SIGNATURE_MISSING");
    assert_eq!(err(&encrypted(), &pinned_keyed()), Error::SignatureMissing);

    let wrong = LoadOptions::default().public_key(crypto::public_key(&[1; KEY_LEN]));
    let e = err(&signed(), &wrong);
    assert_eq!(e, Error::SignatureInvalid { keys: 1 });
    assert_eq!(e.code(), "SIGNATURE_INVALID");

    // Stripped: flag cleared and signature cut off gives a plain artifact, refused when pinned.
    let mut stripped = signed();
    stripped.truncate(stripped.len() - SIGNATURE_LEN);
    stripped[10] = FLAG_XXH3 as u8;
    rechecksum(&mut stripped);
    assert_eq!(err(&stripped, &pinned()), Error::SignatureMissing);
    assert!(
        TextClassifier::from_bytes(&stripped).is_ok(),
        "without a pin it is a plain artifact"
    );

    // The signature signs the prehash its flag names: the other signing flag (SHA-512 instead of
    // SHA-256) fails, and both flags at once are refused before any hashing.
    let mut other_prehash = signed();
    other_prehash[10] = (FLAG_SIGNED | FLAG_XXH3) as u8;
    assert_eq!(
        err(&other_prehash, &pinned()),
        Error::SignatureInvalid { keys: 1 }
    );
    let mut two = signed();
    two[10] |= FLAG_SIGNED as u8;
    assert!(matches!(err(&two, &pinned()), Error::Corrupt(m) if m.contains("two signing flags")));
    assert!(matches!(err(&two, &LoadOptions::default()), Error::Corrupt(_)));

    // A signature moved onto another body (a different model signed by the same key).
    let mut other_body = encoded_body();
    let name_at = 5; // manifest length (u32), then postcard: length of `metadata.name`, its bytes
    other_body[name_at] = b'T';
    let mut forged = artifact::seal(&other_body, &SealOptions::default()).unwrap();
    forged[10] = (FLAG_SIGNED_SHA256 | FLAG_XXH3) as u8;
    forged.extend_from_slice(&signed()[signed().len() - SIGNATURE_LEN..]);
    rechecksum(&mut forged);
    assert_eq!(err(&forged, &pinned()), Error::SignatureInvalid { keys: 1 });
}

#[test]
fn with_a_pinned_key_every_changed_byte_is_refused_with_a_coded_error() {
    for (bytes, options) in [
        (signed(), pinned()),
        (both(), pinned_keyed()),
        (xxh64_golden("tiny.signed"), pinned()),
        (xxh64_golden("tiny.signed-encrypted"), pinned_keyed()),
    ] {
        for i in 0..bytes.len() * 8 {
            let mut f = bytes.clone();
            f[i / 8] ^= 1 << (i % 8);
            let e = err(&f, &options);
            let byte = i / 8;
            // Magic, version, flags and length are structure; body and signature fail the
            // signature, the checksum (checked after the signature) fails the checksum.
            if byte >= HEADER_LEN {
                assert_eq!(e, Error::SignatureInvalid { keys: 1 }, "bit {i}");
            } else if byte >= AAD_LEN {
                assert!(matches!(e, Error::ChecksumMismatch { .. }), "bit {i}: {e:?}");
            } else {
                assert!(
                    matches!(
                        e.code(),
                        "ARTIFACT_CORRUPT"
                            | "ARTIFACT_VERSION_UNSUPPORTED"
                            // Version 3 → 2 is a version this build reads: the signature
                            // (over these bytes) refuses it.
                            | "SIGNATURE_INVALID"
                            | "SIGNATURE_MISSING"
                            | "ENCRYPTION_MISSING"
                            | "DECRYPTION_KEY_MISSING"
                    ),
                    "bit {i}: {e:?}"
                );
            }
            // Even a re-checksummed change fails.
            if !(AAD_LEN..HEADER_LEN).contains(&byte) {
                rechecksum(&mut f);
                assert!(load(&f, &options).is_err(), "bit {i} re-checksummed was accepted");
            }
        }
    }
}

#[test]
fn encryption_refuses_missing_wrong_and_unneeded_keys() {
    let e = TextClassifier::from_bytes(&encrypted()).unwrap_err();
    assert_eq!(e, Error::DecryptionKeyMissing);
    assert_eq!(e.code(), "DECRYPTION_KEY_MISSING");
    assert_eq!(err(&both(), &pinned()), Error::DecryptionKeyMissing);

    let wrong = LoadOptions::default().decryption_key([1; KEY_LEN]);
    let e = err(&encrypted(), &wrong);
    assert_eq!(e, Error::DecryptionFailed);
    assert_eq!(e.code(), "DECRYPTION_FAILED");

    let e = err(&golden(), &keyed());
    assert_eq!(e, Error::EncryptionMissing);
    assert_eq!(e.code(), "ENCRYPTION_MISSING");
    assert_eq!(err(&signed(), &keyed()), Error::EncryptionMissing);
}

#[test]
fn every_change_to_ciphertext_nonce_or_tag_fails_decryption_never_gives_garbage() {
    let e = encrypted();
    for i in HEADER_LEN * 8..e.len() * 8 {
        let mut f = e.clone();
        f[i / 8] ^= 1 << (i % 8);
        rechecksum(&mut f);
        assert_eq!(err(&f, &keyed()), Error::DecryptionFailed, "bit {i}");
    }
}

#[test]
fn the_header_is_authenticated_by_the_encryption() {
    // Set the SIGNED flag on an encrypted-only artifact and append a junk "signature": the
    // structure is valid and the checksum still matches, but the associated data changed.
    let mut f = encrypted();
    f[10] |= FLAG_SIGNED_SHA256 as u8;
    f.extend_from_slice(&[0; SIGNATURE_LEN]);
    rechecksum(&mut f);
    assert_eq!(err(&f, &keyed()), Error::DecryptionFailed);

    // Strip the signature of a signed+encrypted artifact: refused by decryption even unpinned.
    let mut f = both();
    f.truncate(f.len() - SIGNATURE_LEN);
    f[10] &= !(FLAG_SIGNED_SHA256 as u8);
    rechecksum(&mut f);
    assert_eq!(err(&f, &keyed()), Error::DecryptionFailed);
}

#[test]
fn invalid_keys_are_refused_before_reading_the_artifact() {
    let mut identity = [0u8; KEY_LEN];
    identity[0] = 1;
    let e = err(&signed(), &LoadOptions::default().public_key(identity));
    assert!(matches!(e, Error::KeyInvalid(_)), "{e:?}");
    assert_eq!(e.code(), "KEY_INVALID");
    let secret_text = crypto::encode_key(KeyKind::SigningSecret, &SIGNING_SEED);
    let e = crypto::decode_key(&secret_text, KeyKind::SigningPublic).unwrap_err();
    assert!(e.to_string().contains("secret"), "{e}");
}

#[test]
fn load_options_never_print_the_decryption_key() {
    let text = format!("{:?}", pinned_keyed());
    assert!(!text.contains("236"), "{text}"); // 0xec
    assert!(text.contains("redacted"));
}

// ---------------------------------------------------------------------------------------------
// Hostile bytes: every bit flip and every truncation of every fixture artifact.

/// Every artifact the property tests attack: the goldens and the packed parity fixtures
/// (tests/fixtures/cases/*.interchange.json).
fn fixture_artifacts() -> Vec<(String, Vec<u8>, LoadOptions)> {
    let mut out = vec![
        ("tiny".to_string(), golden(), LoadOptions::default()),
        ("tiny.signed".to_string(), signed(), pinned()),
        ("tiny.encrypted".to_string(), encrypted(), keyed()),
        ("tiny.signed-encrypted".to_string(), both(), pinned_keyed()),
    ];
    for (name, options) in [
        ("tiny", LoadOptions::default()),
        ("tiny.signed", pinned()),
        ("tiny.encrypted", keyed()),
        ("tiny.signed-encrypted", pinned_keyed()),
    ] {
        out.push((format!("xxh64/{name}"), xxh64_golden(name), options));
    }
    let mut paths: Vec<PathBuf> = fs::read_dir("tests/fixtures/cases")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".interchange.json") {
            let doc: Interchange = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            let bytes = artifact::to_bytes(&doc.into_body().unwrap()).unwrap();
            out.push((stem.to_string(), bytes, LoadOptions::default()));
        }
    }
    out
}

/// Bits to flip: all of them for small artifacts; for large ones every header bit and about 500
/// spread over the rest (the checksum makes every body bit alike; resealed body flips, which reach
/// the decoder, are tested on the tiny model in tests/artifact.rs and by the fuzzer).
fn bits(len: usize) -> Vec<usize> {
    if len <= 1 << 10 {
        return (0..len * 8).collect();
    }
    let rest = HEADER_LEN * 8..len * 8;
    let step = rest.len() / 512 + 1;
    (0..HEADER_LEN * 8)
        .chain(rest.step_by(step))
        .chain([len * 8 - 1])
        .collect()
}

/// Truncations: all for small artifacts, else the header, then about 500 spread over the rest.
fn cuts(len: usize) -> Vec<usize> {
    if len <= 1 << 10 {
        return (0..len).collect();
    }
    (0..HEADER_LEN + 1)
        .chain((HEADER_LEN + 1..len).step_by(len / 512 + 1))
        .chain([len - 1])
        .collect()
}

#[test]
fn every_bit_flip_and_truncation_of_every_fixture_is_an_error_not_a_panic() {
    for (name, bytes, options) in fixture_artifacts() {
        assert!(load(&bytes, &options).is_ok(), "{name} must load");
        for i in bits(bytes.len()) {
            let mut f = bytes.clone();
            f[i / 8] ^= 1 << (i % 8);
            assert!(
                load(&f, &options).is_err(),
                "{name}: bit {i} flipped was accepted"
            );
            assert!(
                load(&f, &LoadOptions::default()).is_err(),
                "{name}: bit {i} (no keys)"
            );
        }
        for n in cuts(bytes.len()) {
            assert!(load(&bytes[..n], &options).is_err(), "{name}: truncation to {n}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Declared lengths larger than the buffer never allocate.

/// The bound checked below: what the loader may hold at its peak for `n` bytes of input. The
/// loaded model itself is proportional to its bytes (a vocabulary table is 8 bytes per term and
/// each term costs at least one byte); the constant covers the fixed scratch buffers.
fn allowed(n: usize) -> usize {
    32 * n + (64 << 10)
}

fn check_bounded(what: &str, bytes: &[u8], options: &LoadOptions) {
    let (result, peak) = peak_allocation(|| load(bytes, options).map(|_| ()));
    assert!(
        peak <= allowed(bytes.len()),
        "{what}: {peak} bytes allocated at peak for {} bytes of input ({result:?})",
        bytes.len()
    );
}

#[test]
fn declared_lengths_larger_than_the_buffer_never_allocate() {
    // The header's body length, at every size up to u32::MAX, plain and sealed.
    for (bytes, options) in [
        (golden(), LoadOptions::default()),
        (signed(), pinned()),
        (encrypted(), keyed()),
        (both(), pinned_keyed()),
    ] {
        for len in [u32::MAX, u32::MAX - 23, 1 << 31, 1 << 24, bytes.len() as u32 + 1] {
            let mut f = bytes.clone();
            f[12..16].copy_from_slice(&len.to_le_bytes());
            let (e, peak) = peak_allocation(|| err(&f, &options));
            assert!(matches!(e, Error::Truncated { .. }), "{e:?}");
            assert_eq!(
                peak, 0,
                "allocated {peak} bytes before checking a declared length"
            );
        }
    }
    // Inside the body: a huge varint (a length or count) at every offset, re-checksummed so it
    // reaches postcard and the model validation; plain and encrypted (re-encrypted, so it also
    // reaches the decoder).
    let body = encoded_body();
    let huge_varints: [&[u8]; 4] = [
        &[0xff, 0xff, 0xff, 0xff, 0x0f],                         // u32::MAX
        &[0xff, 0xff, 0xff, 0xff, 0x07],                         // i32::MAX
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // 2^63 - 1
        &[0x80, 0x80, 0x80, 0x80, 0x01],                         // 2^28
    ];
    for at in 0..body.len() {
        for v in huge_varints {
            let mut hostile = body[..at].to_vec();
            hostile.extend_from_slice(v);
            hostile.extend_from_slice(&body[(at + 1).min(body.len())..]);
            let plain = artifact::seal(&hostile, &SealOptions::default()).unwrap();
            check_bounded(&format!("plain, varint at {at}"), &plain, &LoadOptions::default());
            let sealed = artifact::seal(
                &hostile,
                &SealOptions {
                    signing_key: None,
                    encryption: Some(Encryption {
                        key: ENCRYPTION_KEY,
                        nonce: NONCE,
                    }),
                },
            )
            .unwrap();
            check_bounded(&format!("encrypted, varint at {at}"), &sealed, &keyed());
        }
    }
    // Resealed bit flips of the body: each decodes to something or fails, within the bound.
    for i in 0..body.len() * 8 {
        let mut f = body.clone();
        f[i / 8] ^= 1 << (i % 8);
        let plain = artifact::seal(&f, &SealOptions::default()).unwrap();
        check_bounded(&format!("body bit {i}"), &plain, &LoadOptions::default());
    }
}

/// An artifact can declare any number of vectorizers, over the same sections even, and each
/// vocabulary gets a table of recent terms at load (128 KB from 4,096 terms on): a model's tables
/// share one budget, so 300 blocks over one vocabulary of 5,000 words allocate what two would.
#[test]
fn vectorizers_over_the_same_sections_allocate_within_the_bound() {
    use skedge::artifact::schema::{v3, Classifier, Counts, Matrix, Transform};
    let words: Vec<String> = (0..5000).map(|i| format!("w{i:04}")).collect();
    let mut body = artifact::example::tiny();
    body.pipeline.features[0].counts = Counts::Vocabulary {
        terms: words.concat().into_bytes(),
        lengths: vec![5; words.len()],
    };
    body.pipeline.features[0].transforms = vec![Transform::Select {
        n_features_in: words.len() as u32,
        support: vec![0],
    }];
    let Classifier::Linear(l) = &mut body.pipeline.classifier else {
        panic!("tiny() is linear")
    };
    l.coef = Matrix {
        rows: 1,
        cols: 1,
        data: vec![0.1],
    };
    let one = artifact::layout::encode(&body).unwrap();
    // The block 300 times in the manifest, over the same sections; 300 coefficients appended.
    let n = 300;
    let len = u32::from_le_bytes(one[..4].try_into().unwrap()) as usize;
    let mut manifest: v3::Manifest = postcard::from_bytes(&one[4..4 + len]).unwrap();
    let mut data = one[(4 + len).next_multiple_of(8)..].to_vec();
    data.resize(data.len().next_multiple_of(8), 0);
    manifest.pipeline.features = vec![manifest.pipeline.features[0].clone(); n];
    let v3::Classifier::Linear(l) = &mut manifest.pipeline.classifier else {
        panic!("tiny() is linear")
    };
    l.coef.cols = n as u32;
    l.coef.data = v3::Section {
        offset: data.len() as u32,
        len: 8 * n as u32,
    };
    for _ in 0..n {
        data.extend_from_slice(&0.1f64.to_le_bytes());
    }
    let m = postcard::to_allocvec(&manifest).unwrap();
    let mut hostile = (m.len() as u32).to_le_bytes().to_vec();
    hostile.extend_from_slice(&m);
    hostile.resize(hostile.len().next_multiple_of(8), 0);
    hostile.extend_from_slice(&data);
    let bytes = artifact::seal(&hostile, &SealOptions::default()).unwrap();
    let model = TextClassifier::from_bytes(&bytes).unwrap();
    assert_eq!(model.n_features(), n as u64);
    assert!(model.predict("w0000 w0001").is_ok());
    check_bounded("300 blocks over one vocabulary", &bytes, &LoadOptions::default());
}

/// Fuzzer find (tests/fuzz/regressions/artifact_body/nan-idf-probabilities): a re-checksummed
/// body whose parameters are NaN, infinite or huge loads (or is refused) without a panic, and
/// predicts without a panic; its outputs are then meaningless (SECURITY.md: the checksum is not
/// an authenticity check, a signature is).
#[test]
fn non_finite_parameters_never_panic() {
    let body = encoded_body();
    let idf0 = 1.5f64.to_le_bytes();
    let at = body
        .windows(8)
        .position(|w| w == idf0)
        .expect("idf[0] = 1.5 in the tiny body");
    for bad in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        -0.0,
        f64::MIN_POSITIVE,
    ] {
        let mut hostile = body.clone();
        hostile[at..at + 8].copy_from_slice(&bad.to_le_bytes());
        let bytes = artifact::seal(&hostile, &SealOptions::default()).unwrap();
        match TextClassifier::from_bytes(&bytes) {
            Ok(model) => {
                for text in ["bad bad good", "", "great"] {
                    let p = model.predict(text).unwrap();
                    assert!(p.label < 2);
                }
            }
            Err(e) => assert_eq!(e.code(), "ARTIFACT_CORRUPT"),
        }
    }
    let replay = fs::read("tests/fuzz/regressions/artifact_body/nan-idf-probabilities").unwrap();
    let bytes = artifact::seal(&replay, &SealOptions::default()).unwrap();
    if let Ok(model) = TextClassifier::from_bytes(&bytes) {
        assert!(model.predict("good bad great").is_ok());
    }
}

/// Fuzzer find (tests/fuzz/regressions/artifact_body/repack-table-disagrees): a re-checksummed
/// body whose table does not find a term its blocks store loads (loading checks sizes, not every
/// term) and never matches that term; `skedge repack` would have written a correct table, and
/// a model predicting differently. Repack refuses it instead.
#[test]
fn repack_refuses_a_table_that_disagrees_with_its_terms() {
    let replay = fs::read("tests/fuzz/regressions/artifact_body/repack-table-disagrees").unwrap();
    let bytes = artifact::seal(&replay, &SealOptions::default()).unwrap();
    let model = TextClassifier::from_bytes(&bytes).unwrap();
    assert!(model.predict("good, not bad at all").is_ok());
    let e = artifact::body_v3(&bytes, &LoadOptions::default()).unwrap_err();
    assert_eq!(e.code(), "ARTIFACT_CORRUPT");
    assert!(
        e.to_string().contains("column 1's term is not found there"),
        "{e}"
    );
    // The body it came from repacks to itself.
    let good = artifact::seal(&encoded_body(), &SealOptions::default()).unwrap();
    let (body, _) = artifact::body_v3(&good, &LoadOptions::default()).unwrap();
    assert_eq!(body, encoded_body());
}

#[test]
fn the_allocation_counter_counts() {
    let (_, peak) = peak_allocation(|| vec![0u8; 1 << 20]);
    assert!(peak >= 1 << 20);
    let (_, peak) = peak_allocation(|| TextClassifier::from_bytes(&golden()).unwrap());
    assert!(peak > 0 && peak <= allowed(golden().len()), "{peak}");
}

// ---------------------------------------------------------------------------------------------
// The CLI: keygen, pack --sign-key/--encrypt-key, predict --public-key/--decryption-key.

fn skedge(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_skedge"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Commands that do not read stdin may exit before it is written: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const INTERCHANGE: &str = r#"{"format":"skedge-interchange","version":1,
 "metadata":{"name":"tiny","version":"1","created":"2000-01-01T00:00:00Z","sklearn_version":"1.9.1",
   "python_version":"3.11.7","numpy_version":"2.4.6","unicode_version":"14.0.0","source_sha256":"",
   "precision":"exact","provenance":{},"metrics":{}},
 "pipeline":{"features":[{"analyzer":{"kind":"word","ngram_range":[1,1],"lowercase":true,
   "strip_accents":null,"token_pattern":"(?u)\\b\\w\\w+\\b","stop_words":[]},
   "counts":{"kind":"vocabulary","vocabulary":["bad","good","great"]},"binary":false,
   "transforms":[{"kind":"tfidf","sublinear_tf":false,"idf":[1.5,1.25,2.0],"log_exceptions":[]},
     {"kind":"normalize","norm":"l2"}]}],
  "transforms":[],
  "classifier":{"kind":"linear","estimator":"LogisticRegression","classes":["neg","pos"],
   "coef":[[-2.0,1.5,2.5]],"intercept":[0.25],"proba":"logistic"}}}"#;

#[test]
fn cli_keygen_pack_and_load_signed_and_encrypted() {
    let dir = std::env::temp_dir().join(format!("skedge-security-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("tiny.json"), INTERCHANGE).unwrap();
    let ok = |args: &[&str]| {
        let (code, out, err) = skedge(&dir, args, "good\n");
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let fails = |args: &[&str], code: &str| {
        let (status, _, err) = skedge(&dir, args, "good\n");
        assert_eq!(status, 2, "{args:?} should fail: {err}");
        assert!(err.contains(&format!("error[{code}]")), "{args:?}: {err}");
    };
    ok(&["keygen", "signer"]);
    ok(&["keygen", "other"]);
    ok(&["keygen", "--encryption", "enc"]);
    fails(&["keygen", "signer"], "IO");
    fails(&["keygen", "--encryption", "enc"], "IO");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["signer.key", "enc.key"] {
            let mode = fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{f} is readable by others: {mode:o}");
        }
    }
    let public = fs::read_to_string(dir.join("signer.pub")).unwrap();
    assert!(public.starts_with(KeyKind::SigningPublic.prefix()), "{public}");

    ok(&["pack", "tiny.json", "-o", "plain.skedge"]);
    ok(&["pack", "tiny.json", "-o", "s.skedge", "--sign-key", "signer.key"]);
    ok(&[
        "pack",
        "tiny.json",
        "-o",
        "se.skedge",
        "--sign-key",
        "signer.key",
        "--encrypt-key",
        "enc.key",
    ]);
    ok(&["pack", "tiny.json", "-o", "e1.skedge", "--encrypt-key", "enc.key"]);
    ok(&["pack", "tiny.json", "-o", "e2.skedge", "--encrypt-key", "enc.key"]);
    fails(
        &["pack", "tiny.json", "-o", "x.skedge", "--sign-key", "signer.pub"],
        "KEY_INVALID",
    );
    fails(
        &[
            "pack",
            "tiny.json",
            "-o",
            "x.skedge",
            "--encrypt-key",
            "signer.key",
        ],
        "KEY_INVALID",
    );
    assert!(!dir.join("x.skedge").exists());

    // A fresh nonce per artifact: the same model under the same key encrypts differently.
    let (e1, e2) = (
        fs::read(dir.join("e1.skedge")).unwrap(),
        fs::read(dir.join("e2.skedge")).unwrap(),
    );
    assert_ne!(
        e1[HEADER_LEN..HEADER_LEN + NONCE_LEN],
        e2[HEADER_LEN..HEADER_LEN + NONCE_LEN]
    );

    let plain = ok(&["predict", "plain.skedge"]);
    assert!(plain.contains("\"label\":\"pos\""), "{plain}");
    assert_eq!(ok(&["predict", "s.skedge", "--public-key", "signer.pub"]), plain);
    assert_eq!(
        ok(&[
            "predict",
            "s.skedge",
            "--public-key",
            "other.pub",
            "--public-key",
            "signer.pub"
        ]),
        plain
    );
    assert_eq!(
        ok(&[
            "predict",
            "se.skedge",
            "--public-key",
            "signer.pub",
            "--decryption-key",
            "enc.key"
        ]),
        plain
    );
    fails(
        &["predict", "plain.skedge", "--public-key", "signer.pub"],
        "SIGNATURE_MISSING",
    );
    fails(
        &["predict", "s.skedge", "--public-key", "other.pub"],
        "SIGNATURE_INVALID",
    );
    fails(
        &["predict", "se.skedge", "--public-key", "signer.pub"],
        "DECRYPTION_KEY_MISSING",
    );
    fails(
        &["verify", "e1.skedge", "--expected", "tiny.json"],
        "DECRYPTION_KEY_MISSING",
    );
    fails(
        &["predict", "plain.skedge", "--decryption-key", "enc.key"],
        "ENCRYPTION_MISSING",
    );
    fails(
        &["predict", "s.skedge", "--public-key", "signer.key"],
        "KEY_INVALID",
    );

    let info = ok(&[
        "inspect",
        "se.skedge",
        "--public-key",
        "signer.pub",
        "--decryption-key",
        "enc.key",
    ]);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["signed"], true);
    assert_eq!(info["signature_verified"], true);
    assert_eq!(info["encrypted"], true);
    assert_eq!(info["checksum"], "xxh3");
    assert_eq!(info["signature_prehash"], "sha256");
    assert_eq!(info["format_version"], artifact::FORMAT_VERSION);

    // repack: format 2 in, format 3 out; a signature is made again, never copied.
    let root = std::env::current_dir().unwrap();
    let v2 = |name: &str| {
        root.join("tests/golden/v2")
            .join(name)
            .to_string_lossy()
            .into_owned()
    };
    let test_key = |name: &str| {
        root.join("tests/golden")
            .join(name)
            .to_string_lossy()
            .into_owned()
    };
    let v2_info: serde_json::Value = serde_json::from_str(&ok(&["inspect", &v2("tiny.skedge")])).unwrap();
    assert_eq!(v2_info["format_version"], artifact::LEGACY_FORMAT_VERSION);
    assert_eq!(v2_info["checksum"], "xxh64");
    assert_eq!(v2_info["signature_prehash"], serde_json::Value::Null);
    let v2_signed: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", &v2("tiny.signed.skedge")])).unwrap();
    assert_eq!(v2_signed["signature_prehash"], "sha512");
    ok(&["repack", &v2("tiny.skedge"), "r.skedge"]);
    assert_eq!(fs::read(dir.join("r.skedge")).unwrap(), golden());
    ok(&[
        "repack",
        &v2("tiny.signed.skedge"),
        "r-unsigned.skedge",
        "--public-key",
        &test_key("test-signing.pub"),
        // Dropping the signature is asked for; without it, refused (tests/cli.rs).
        "--allow-unsigned",
    ]);
    assert_eq!(
        fs::read(dir.join("r-unsigned.skedge")).unwrap(),
        golden(),
        "the signature is not copied"
    );
    fails(
        &[
            "repack",
            &v2("tiny.signed.skedge"),
            "x.skedge",
            "--public-key",
            "signer.pub",
        ],
        "SIGNATURE_INVALID",
    );
    fails(
        &["repack", &v2("tiny.encrypted.skedge"), "x.skedge"],
        "DECRYPTION_KEY_MISSING",
    );
    assert!(!dir.join("x.skedge").exists());
    ok(&[
        "repack",
        &v2("tiny.signed-encrypted.skedge"),
        "r-se.skedge",
        "--public-key",
        &test_key("test-signing.pub"),
        "--decryption-key",
        &test_key("test-encryption.key"),
        "--sign-key",
        "signer.key",
        "--encrypt-key",
        "enc.key",
    ]);
    let repacked = ok(&[
        "predict",
        "r-se.skedge",
        "--public-key",
        "signer.pub",
        "--decryption-key",
        "enc.key",
    ]);
    assert_eq!(repacked, ok(&["predict", "r.skedge"]));
    fails(
        &[
            "predict",
            "r-se.skedge",
            "--public-key",
            &test_key("test-signing.pub"),
            "--decryption-key",
            "enc.key",
        ],
        "SIGNATURE_INVALID",
    );
    ok(&["repack", "r.skedge", "r-again.skedge"]);
    assert_eq!(
        fs::read(dir.join("r-again.skedge")).unwrap(),
        golden(),
        "format 3 in, same bytes out"
    );
    // An artifact from before the XXH3 flag (xxHash64) comes out with it, body unchanged.
    let old = root.join("tests/golden/xxh64/tiny.skedge");
    ok(&["repack", &old.to_string_lossy(), "r-xxh3.skedge"]);
    assert_eq!(fs::read(dir.join("r-xxh3.skedge")).unwrap(), golden());
    let _ = fs::remove_dir_all(&dir);
}
