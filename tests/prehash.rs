//! `LoadOptions::body_digest`: the signature's prehash of the stored body (SHA-256) computed by
//! the host (the npm package's node:crypto or WebCrypto) replaces the loader's own hashing for
//! the signature, and is trusted only as far as the signature goes: a digest of other bytes, or
//! by another hash, fails verification.

use sha2::{Digest, Sha256, Sha512};

use skedge::artifact::crypto;
use skedge::artifact::{self, example, LoadOptions, SealOptions};
use skedge::{Error, TextClassifier};

const SEED: [u8; 32] = [0x42; 32];

fn signed() -> Vec<u8> {
    let options = SealOptions {
        signing_key: Some(SEED),
        ..SealOptions::default()
    };
    artifact::to_bytes_with(&example::tiny(), &options).unwrap()
}

fn pinned() -> LoadOptions {
    LoadOptions::default().public_key(crypto::public_key(&SEED))
}

#[test]
fn a_host_digest_of_the_body_verifies_like_the_loaders_own() {
    let bytes = signed();
    let body = artifact::parse(&bytes).unwrap().body;
    let options = LoadOptions {
        body_digest: Some(Sha256::digest(body).to_vec()),
        ..pinned()
    };
    let hosted = TextClassifier::from_bytes_with(&bytes, &options).unwrap();
    let own = TextClassifier::from_bytes_with(&bytes, &pinned()).unwrap();
    assert_eq!(hosted.predict("good").unwrap(), own.predict("good").unwrap());
}

#[test]
fn a_digest_of_other_bytes_is_a_signature_failure() {
    let bytes = signed();
    let body = artifact::parse(&bytes).unwrap().body;
    for digest in [
        vec![0u8; 32],
        Sha256::digest(&bytes).to_vec(),
        Sha512::digest(body).to_vec(),
        Vec::new(),
    ] {
        let options = LoadOptions {
            body_digest: Some(digest),
            ..pinned()
        };
        assert_eq!(
            TextClassifier::from_bytes_with(&bytes, &options).err(),
            Some(Error::SignatureInvalid { keys: 1 })
        );
    }
}

#[test]
fn without_a_pinned_key_the_digest_is_not_used() {
    let bytes = signed();
    let options = LoadOptions {
        body_digest: Some(vec![0u8; 32]),
        ..LoadOptions::default()
    };
    assert!(TextClassifier::from_bytes_with(&bytes, &options).is_ok());
}
