//! Arbitrary bytes as a publish pointer (FORMAT.md §5), as `skedge verify-pointer` reads one and a
//! follower fetches one: the JSON, the field checks and the signature check give a pointer or a
//! coded error, never panic; a checked pointer has its signed bytes, and a JSON round trip changes
//! neither its checks nor its signature's verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skedge::pointer::Pointer;
use skedge::Error;

fuzz_target!(|data: &[u8]| {
    let Ok(pointer) = serde_json::from_slice::<Pointer>(data) else {
        return;
    };
    let keys = [skedge_fuzz::test_public_key()];
    let verdict = pointer.verify(&keys);
    match pointer.check() {
        Ok(()) => {
            let message = pointer
                .signed_message()
                .expect("a checked pointer has signed bytes");
            assert!(message.starts_with(b"skedge-pointer\npointer_version=1\n"));
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::PointerInvalid(_) | Error::UnsupportedFormatVersion { .. }
                ),
                "{e:?}"
            );
            assert_eq!(
                verdict,
                Err(e),
                "the signature is not looked at before the fields"
            );
        }
    }
    let again: Pointer = serde_json::from_str(&serde_json::to_string(&pointer).unwrap()).unwrap();
    assert_eq!(again, pointer);
    assert_eq!(again.verify(&keys), verdict);
});
