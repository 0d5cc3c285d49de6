//! Checks `skedge::text::unicode` against CPython's own behaviour, for every Unicode version it
//! reads.
//!
//! `tests/fixtures/unicode/digests.json` (and `digests-VERSION.json` of each later version, from
//! its own Python) is written by `scripts/gen_unicode.py` from Python's functions (`re` `\w`, `str.isspace`, `str.lower`, and
//! scikit-learn's `strip_accents_unicode` / `strip_accents_ascii`), not from the
//! generated tables. Each per-code-point test rebuilds the same byte stream
//! from the Rust functions and compares SHA-256 digests, block by block, so a
//! mismatch names the 4096-code-point blocks that differ.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;
use sha2::{Digest, Sha256};
use skedge::text::unicode::{is_space, Unicode, UNICODE_VERSION};

/// The largest code point.
const MAX_CP: u32 = 0x10_FFFF;

/// Appends one code point's contribution to a digest stream, with a version's tables.
type PerChar = fn(Unicode, char, &mut String);

/// Loads the fixture written by `scripts/gen_unicode.py` for `version`.
fn fixture(version: &str) -> Value {
    let name = match version {
        UNICODE_VERSION => "digests.json".to_owned(),
        v => format!("digests-{v}.json"),
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/unicode")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

/// Rebuilds the stream for `name` with `f` and compares it with each version's fixture.
fn check_per_code_point(name: &str, f: PerChar) {
    for unicode in Unicode::all() {
        check_version(unicode, name, f);
    }
}

fn check_version(unicode: Unicode, name: &str, f: PerChar) {
    let version = unicode.version();
    let data = fixture(version);
    assert_eq!(data["unicode_version"], version);
    let entry = &data["per_code_point"][name];
    let block_size = data["block_size"].as_u64().expect("block_size") as u32;
    let want_blocks: Vec<&str> = entry["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|v| v.as_str().expect("block digest"))
        .collect();
    let want_total = entry["sha256"].as_str().expect("sha256");
    assert_eq!(want_blocks.len() as u32, (MAX_CP + 1) / block_size);

    let started = Instant::now();
    let mut total = Sha256::new();
    let mut buf = String::new();
    let mut bad = Vec::new();
    for (b, want) in want_blocks.iter().enumerate() {
        let first = b as u32 * block_size;
        buf.clear();
        for cp in first..first + block_size {
            if let Some(c) = char::from_u32(cp) {
                f(unicode, c, &mut buf);
            }
        }
        total.update(buf.as_bytes());
        let got = skedge::hex::encode(&Sha256::digest(buf.as_bytes()));
        if !got.starts_with(want) {
            bad.push(first);
        }
    }
    let got_total = skedge::hex::encode(&total.finalize());
    eprintln!("{name} ({version}): {:?} for all code points", started.elapsed());

    if bad.is_empty() && got_total == want_total {
        return;
    }
    // Python is not available here: write Rust's outputs for the first bad
    // blocks so that `gen_unicode.py --explain` can name the code points.
    let mut outputs = Vec::new();
    for &first in bad.iter().take(5) {
        for c in (first..first + block_size).filter_map(char::from_u32) {
            let mut out = String::new();
            f(unicode, c, &mut out);
            outputs.push(serde_json::json!([u32::from(c), out]));
        }
    }
    let dump = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("unicode-{name}-{version}.json"));
    let written = std::fs::write(
        &dump,
        serde_json::json!({ "function": name, "outputs": outputs }).to_string(),
    );
    let mut msg = format!(
        "{name} differs from Python {} (Unicode {version}) in {} block(s) of {block_size} code points:\n",
        unicode.python(),
        bad.len()
    );
    for &first in bad.iter().take(10) {
        msg += &format!("  U+{first:04X}..U+{:04X}\n", first + block_size - 1);
    }
    msg += &format!("  total sha256: got {got_total}, want {want_total}\n");
    msg += &match written {
        Ok(()) => format!(
            "  to list the code points: python{} scripts/gen_unicode.py --explain {}",
            unicode.python(),
            dump.display()
        ),
        Err(e) => format!("  (could not write {}: {e})", dump.display()),
    };
    panic!("{msg}");
}

/// Encodes `c` as a one-char `&str` in `tmp`.
fn one(c: char, tmp: &mut [u8; 4]) -> &str {
    c.encode_utf8(tmp)
}

#[test]
fn unicode_versions_match_their_fixtures() {
    for unicode in Unicode::all() {
        let data = fixture(unicode.version());
        assert_eq!(data["unicode_version"], unicode.version());
        assert_eq!(data["python"], unicode.python());
    }
    assert_eq!(Unicode::BASE.version(), UNICODE_VERSION);
}

#[test]
fn is_word_every_code_point() {
    check_per_code_point("is_word", |u, c, out| {
        out.push(if u.is_word(c) { '1' } else { '0' })
    });
}

#[test]
fn is_space_every_code_point() {
    check_per_code_point("is_space", |_, c, out| {
        out.push(if is_space(c) { '1' } else { '0' })
    });
}

#[test]
fn lower_every_code_point() {
    check_per_code_point("lower", |u, c, out| {
        u.lower_into(one(c, &mut [0; 4]), out);
        out.push('\n');
    });
}

#[test]
fn strip_accents_unicode_every_code_point() {
    check_per_code_point("strip_accents_unicode", |u, c, out| {
        u.strip_accents_unicode_into(one(c, &mut [0; 4]), out);
        out.push('\n');
    });
}

#[test]
fn strip_accents_ascii_every_code_point() {
    check_per_code_point("strip_accents_ascii", |u, c, out| {
        u.strip_accents_ascii_into(one(c, &mut [0; 4]), out);
        out.push('\n');
    });
}

/// Runs `f` on every `[input, expected...]` case in `key` of each version's fixture; `f` returns
/// the Rust outputs in the same order as the expected values.
fn check_cases(key: &str, f: fn(Unicode, &str) -> Vec<String>) {
    for unicode in Unicode::all() {
        check_cases_of(unicode, key, f);
    }
}

fn check_cases_of(unicode: Unicode, key: &str, f: fn(Unicode, &str) -> Vec<String>) {
    let version = unicode.version();
    let data = fixture(version);
    let cases = data[key].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases {
        let items: Vec<&str> = case
            .as_array()
            .expect("case")
            .iter()
            .map(|v| v.as_str().expect("string"))
            .collect();
        let (input, want) = items.split_first().expect("input");
        let got = f(unicode, input);
        if got != want {
            failures.push(format!("  {input:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {key} differ from Python (Unicode {version}):\n{}",
        failures.len(),
        cases.len(),
        failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn lower_cases_match_python() {
    check_cases("lower_cases", |u, s| {
        let mut out = String::new();
        u.lower_into(s, &mut out);
        vec![out]
    });
}

#[test]
fn strip_cases_match_python() {
    check_cases("strip_cases", |unicode, s| {
        let mut u = String::new();
        unicode.strip_accents_unicode_into(s, &mut u);
        let mut a = String::new();
        unicode.strip_accents_ascii_into(s, &mut a);
        vec![u, a]
    });
}
