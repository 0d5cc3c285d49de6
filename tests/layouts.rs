//! Layout measurements for benches/PROFILE.md ("Layouts"), not a correctness test: ignored, run
//! with a format 2 or 3 artifact and a text file (one text per line), in release mode:
//!
//! `SKEDGE_LAYOUT_MODEL=m.skedge SKEDGE_LAYOUT_TEXTS=texts.txt cargo test --release --test layouts -- --ignored --nocapture`

use std::time::Instant;

use skedge::artifact::{self, layout, schema::Body, SealOptions};
use skedge::text::Scratch;
use skedge::TextClassifier;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The model as data: decoded from format 2 (format 3 bodies are not decoded back to data).
fn body(path: &str) -> Body {
    let bytes = std::fs::read(path).unwrap();
    let opened = artifact::open(&bytes).unwrap();
    assert_eq!(
        opened.version,
        artifact::LEGACY_FORMAT_VERSION,
        "give a format 2 artifact"
    );
    artifact::decode_legacy(&opened.body).unwrap()
}

#[test]
#[ignore]
fn vocabulary_layouts() {
    let (Ok(model), Ok(texts)) = (
        std::env::var("SKEDGE_LAYOUT_MODEL"),
        std::env::var("SKEDGE_LAYOUT_TEXTS"),
    ) else {
        eprintln!("set SKEDGE_LAYOUT_MODEL and SKEDGE_LAYOUT_TEXTS");
        return;
    };
    let body = body(&model);
    let texts = std::fs::read_to_string(texts).unwrap();
    let reference = TextClassifier::from_body(body.clone()).unwrap();
    let mut scratch = Scratch::default();
    let mut features = Vec::new();
    let analyzer = &reference.vectorizers()[0].analyzer;
    for t in texts.lines() {
        analyzer.for_each_feature(t, &mut scratch, |f| features.push(f.to_owned()));
    }
    println!("{} features from {} texts", features.len(), texts.lines().count());
    println!(
        "| load % | block terms | artifact bytes | gzip | pack ms | load µs | probe ns/feature | hits |"
    );
    for (load, block) in [
        (50, 16),
        (70, 16),
        (75, 8),
        (75, 16),
        (75, 32),
        (80, 16),
        (90, 16),
    ] {
        let t = Instant::now();
        let encoded = layout::encode_with(&body, load, block).unwrap();
        let pack_ms = t.elapsed().as_secs_f64() * 1e3;
        let bytes = artifact::seal(&encoded, &SealOptions::default()).unwrap();
        let gz = gzip_len(&bytes);
        let mut loads = Vec::new();
        for _ in 0..20 {
            let copy = bytes.clone();
            let t = Instant::now();
            let m = TextClassifier::from_vec_with(copy, &Default::default()).unwrap();
            loads.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(m);
        }
        let m = TextClassifier::from_vec_with(bytes.clone(), &Default::default()).unwrap();
        let vocab = m.vectorizers()[0].vocabulary().unwrap();
        let mut probes = Vec::new();
        let mut hits = 0;
        for _ in 0..7 {
            hits = 0;
            let t = Instant::now();
            for f in &features {
                hits += usize::from(std::hint::black_box(vocab.get(f)).is_some());
            }
            probes.push(t.elapsed().as_secs_f64() * 1e9 / features.len() as f64);
        }
        let want = reference.vectorizers()[0].vocabulary().unwrap();
        assert!(features.iter().all(|f| vocab.get(f) == want.get(f)));
        println!(
            "| {load} | {block} | {} | {gz} | {pack_ms:.1} | {:.1} | {:.1} | {hits} |",
            bytes.len(),
            median(loads),
            median(probes)
        );
    }
}

fn gzip_len(bytes: &[u8]) -> usize {
    let path = std::env::temp_dir().join(format!("skedge-layouts-{}.bin", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("gzip")
        .arg("-9c")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    out.stdout.len()
}
