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
        let encoded = layout::encode_with(&body, load, block, block).unwrap();
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

/// Layout (b), a prototype measured against the stored table: a PtrHash/PTHash-style minimal
/// perfect hash. Buckets of about `LAMBDA` keys (skewed: 60 % of the keys in 30 % of the buckets),
/// one 16-bit pilot per bucket (PtrHash's one byte needs its evictions, not prototyped), placed largest bucket first; a key's slot is
/// `reduce(h ^ mix(pilot), slots)` with `slots = n / ALPHA`; a slot holds `tag | (column + 1)` as in
/// layout (a), and a hit is confirmed against the stored term the same way.
struct Mph {
    seed: u64,
    buckets: u32,
    slots: u32,
    col_mask: u32,
    pilots: Vec<u16>,
    table: Vec<u32>,
}

const LAMBDA: f64 = 3.5;
// PtrHash reaches 0.99 by remapping the slots past n; not prototyped here.
const ALPHA: f64 = 0.95;

/// The key hash of the prototype: xxh64. `term_hash` (layout (a)) has three 64-bit collisions among
/// the SST-2 model's 74,055 terms: harmless for a table that compares term bytes on a tag match,
/// fatal for a perfect hash, which must separate every key by its hash.
fn key_hash(term: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(term, 0)
}

fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn reduce(h: u64, n: u32) -> usize {
    (((h & 0xffff_ffff) * u64::from(n)) >> 32) as usize
}

impl Mph {
    fn bucket(&self, h: u64) -> usize {
        // Skewed split: 60 % of the keys (h's high half below 0.6) into the first 30 % of buckets.
        let x = (h >> 32) as u32;
        let p1 = (u64::from(self.buckets) * 3 / 10).max(1) as u32;
        if u64::from(x) < (u64::from(u32::MAX) * 6 / 10) {
            reduce(mix(h ^ self.seed), p1)
        } else {
            p1 as usize + reduce(mix(h ^ self.seed), self.buckets - p1)
        }
    }

    fn slot(&self, h: u64, pilot: u16) -> usize {
        reduce(
            mix(h ^ mix(u64::from(pilot) ^ self.seed)).rotate_left(17),
            self.slots,
        )
    }

    fn build(hashes: &[u64]) -> Mph {
        let n = hashes.len();
        let col_mask = u32::MAX >> (n as u32 + 1).leading_zeros();
        for seed in 0u64..64 {
            let mut m = Mph {
                seed: mix(seed + 1),
                buckets: ((n as f64 / LAMBDA).ceil() as u32).max(1),
                slots: ((n as f64 / ALPHA).ceil() as u32).max(1),
                col_mask,
                pilots: Vec::new(),
                table: Vec::new(),
            };
            m.pilots = vec![0; m.buckets as usize];
            m.table = vec![0; m.slots as usize];
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); m.buckets as usize];
            for (col, &h) in hashes.iter().enumerate() {
                members[m.bucket(h)].push(col);
            }
            let mut order: Vec<usize> = (0..members.len()).collect();
            order.sort_by_key(|&b| (std::cmp::Reverse(members[b].len()), b));
            let placed = order.iter().all(|&b| {
                (0..=u16::MAX).any(|pilot| {
                    let slots: Vec<usize> = members[b].iter().map(|&c| m.slot(hashes[c], pilot)).collect();
                    let mut sorted = slots.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    if sorted.len() != slots.len() || slots.iter().any(|&s| m.table[s] != 0) {
                        return false;
                    }
                    for (&c, &s) in members[b].iter().zip(&slots) {
                        m.table[s] = ((hashes[c] >> 32) as u32 & !col_mask) | (c as u32 + 1);
                    }
                    m.pilots[b] = pilot;
                    true
                })
            });
            if placed {
                return m;
            }
        }
        panic!("no seed placed every bucket")
    }

    fn get(&self, vocab: &skedge::vectorize::Vocabulary, q: &str) -> Option<u32> {
        let h = key_hash(q.as_bytes());
        let slot = self.table[self.slot(h, self.pilots[self.bucket(h)])];
        let tag = (h >> 32) as u32 & !self.col_mask;
        if slot == 0 || slot & !self.col_mask != tag {
            return None;
        }
        let col = (slot & self.col_mask) - 1;
        vocab.holds(col, q.as_bytes()).then_some(col)
    }
}

#[test]
#[ignore]
fn minimal_perfect_hash_prototype() {
    let (Ok(model), Ok(texts)) = (
        std::env::var("SKEDGE_LAYOUT_MODEL"),
        std::env::var("SKEDGE_LAYOUT_TEXTS"),
    ) else {
        eprintln!("set SKEDGE_LAYOUT_MODEL and SKEDGE_LAYOUT_TEXTS");
        return;
    };
    let reference = TextClassifier::from_body(body(&model)).unwrap();
    let vocab = reference.vectorizers()[0].vocabulary().unwrap();
    let hashes: Vec<u64> = (0..vocab.len())
        .map(|c| key_hash(&vocab.term(c).unwrap()))
        .collect();
    let t = Instant::now();
    let mph = Mph::build(&hashes);
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let texts = std::fs::read_to_string(texts).unwrap();
    let mut scratch = Scratch::default();
    let mut features = Vec::new();
    for t in texts.lines() {
        reference.vectorizers()[0]
            .analyzer
            .for_each_feature(t, &mut scratch, |f| features.push(f.to_owned()));
    }
    assert!(features.iter().all(|f| mph.get(vocab, f) == vocab.get(f)));
    for c in 0..vocab.len() {
        let term = String::from_utf8(vocab.term(c).unwrap()).unwrap();
        assert_eq!(mph.get(vocab, &term), Some(c as u32));
    }
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for f in &features {
            std::hint::black_box(vocab.get(f));
        }
        a.push(t.elapsed().as_secs_f64() * 1e9 / features.len() as f64);
        let t = Instant::now();
        for f in &features {
            std::hint::black_box(mph.get(vocab, f));
        }
        b.push(t.elapsed().as_secs_f64() * 1e9 / features.len() as f64);
    }
    println!(
        "mph: {} keys, {} buckets (λ {LAMBDA}), {} slots (α {ALPHA}), index {} bytes \
         (pilots {} + slots {}), built in {build_ms:.0} ms; probe ns/feature: table {:.1}, mph {:.1}",
        vocab.len(),
        mph.buckets,
        mph.slots,
        mph.pilots.len() * 2 + mph.table.len() * 4,
        mph.pilots.len() * 2,
        mph.table.len() * 4,
        median(a),
        median(b)
    );
}
