//! Arbitrary bytes as a monitoring snapshot posted to the collector: `Snapshot::parse` returns a
//! validated snapshot or a coded error, never panics; what it accepts survives a round trip and a
//! drift computation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skedge::monitor::Snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(snapshot) = Snapshot::parse(data) else {
        return;
    };
    snapshot.validate().expect("parse validates");
    let again = Snapshot::parse(snapshot.to_json().as_bytes()).expect("a parsed snapshot round-trips");
    assert_eq!(again, snapshot);
    let _ = snapshot.drift(&snapshot.stats);
});
