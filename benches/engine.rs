//! criterion benches of the engine, one group per pipeline stage, each with `Throughput::Bytes`:
//!
//! - `tokenize` — the analyzer alone (`str.lower`, `\w\w+` tokens, word (1,2)-grams);
//! - `vectorize` — analyzer + vocabulary lookup + tf·idf + l2 norm (`pipeline[:-1].transform`);
//! - `predict` — the whole pipeline: decision, label and `predict_proba`;
//! - `load` — `TextClassifier::from_bytes`: envelope, checksum, postcard decode, vocabulary index.
//!
//! Inputs come from the bundled SST-2 sample in `benches/data` (never from `../shared`). The model is
//! built here, in Rust, the way `TfidfVectorizer(ngram_range=(1, 2), min_df=2)` +
//! `LogisticRegression` would shape it: the vocabulary is every (1,2)-gram of the training sample
//! that occurs in at least two texts, sorted; `idf` is the smooth idf of those counts; the weights are
//! deterministic pseudo-random numbers (speed does not depend on their values). The interchange goes
//! through `Interchange::into_body` and `artifact::to_bytes`, the same path as `skedge pack`.
//!
//! ```sh
//! cargo bench --bench engine                 # all groups
//! cargo bench --bench engine -- predict      # one group
//! ```
//!
//! **Native mode** (used by `scripts/bench.py`, no criterion): with `SKEDGE_BENCH_MODEL=MODEL.skedge`
//! and `SKEDGE_BENCH_TEXTS=FILE` (one text per line) the binary measures that model on those texts and
//! prints one JSON object: load median/p99, first-prediction time, single-text latency p50/p99 and
//! batch throughput. `SKEDGE_BENCH_ONLY=load|single|batch` restricts it to one measurement and
//! `SKEDGE_BENCH_REPS=N` sets the repetitions (for profiling under callgrind).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use skedge::interchange::Interchange;
use skedge::text::Scratch;
use skedge::TextClassifier;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data");

/// The `text` column of a `text<TAB>label` TSV with a header (no quote handling).
fn read_tsv(path: &Path) -> Vec<String> {
    let raw = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    raw.lines()
        .skip(1)
        .filter_map(|line| line.rsplit_once('\t').map(|(text, _)| text.to_owned()))
        .collect()
}

/// xorshift64*: deterministic weights without a dependency.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn interchange(vocabulary: &[&str], idf: &[f64], coef: &[f64]) -> serde_json::Value {
    serde_json::json!({
        "format": "skedge-interchange",
        "version": 1,
        "metadata": {
            "name": "bench", "version": "", "created": "2026-01-01T00:00:00Z",
            "sklearn_version": "1.9.1", "python_version": "3.11.7", "numpy_version": "2.4.6",
            "unicode_version": skedge::text::unicode::UNICODE_VERSION,
            "source_sha256": "", "precision": "exact", "provenance": {}, "metrics": {}
        },
        "pipeline": {
            "features": [{
                "analyzer": {
                    "kind": "word", "ngram_range": [1, 2], "lowercase": true, "strip_accents": null,
                    "token_pattern": "(?u)\\b\\w\\w+\\b", "stop_words": []
                },
                "counts": { "kind": "vocabulary", "vocabulary": vocabulary },
                "binary": false,
                "transforms": [
                    { "kind": "tfidf", "sublinear_tf": false, "idf": idf, "log_exceptions": [] },
                    { "kind": "normalize", "norm": "l2" }
                ]
            }],
            "transforms": [],
            "classifier": {
                "kind": "linear", "estimator": "LogisticRegression", "classes": [0, 1],
                "coef": [coef], "intercept": [0.125], "proba": "logistic"
            }
        }
    })
}

fn pack(value: serde_json::Value) -> Vec<u8> {
    let ix: Interchange = serde_json::from_value(value).expect("bench interchange parses");
    let body = ix.into_body().expect("bench interchange is valid");
    skedge::artifact::to_bytes(&body).expect("bench artifact encodes")
}

/// Artifact bytes of a word (1,2)-gram tf-idf + logistic regression model fitted on `train`.
fn build_model(train: &[String]) -> Vec<u8> {
    // An analyzer with the same parameters, from a one-term placeholder model.
    let probe = TextClassifier::from_bytes(&pack(interchange(&["placeholder"], &[1.0], &[0.0])))
        .expect("placeholder model loads");
    let mut df: BTreeMap<String, u32> = BTreeMap::new();
    for text in train {
        let mut features = probe.analyze(text).swap_remove(0);
        features.sort_unstable();
        features.dedup();
        for f in features {
            *df.entry(f).or_default() += 1;
        }
    }
    let n = train.len() as f64;
    let kept: Vec<(&str, u32)> = df
        .iter()
        .filter(|(_, &d)| d >= 2)
        .map(|(t, &d)| (t.as_str(), d))
        .collect();
    let vocabulary: Vec<&str> = kept.iter().map(|(t, _)| *t).collect();
    let idf: Vec<f64> = kept
        .iter()
        .map(|(_, d)| ((1.0 + n) / (1.0 + f64::from(*d))).ln() + 1.0)
        .collect();
    let mut rng = Rng(0x5EED_5EED_5EED_5EED);
    let coef: Vec<f64> = kept.iter().map(|_| rng.next_f64() * 4.0 - 2.0).collect();
    pack(interchange(&vocabulary, &idf, &coef))
}

struct Inputs {
    model: Vec<u8>,
    n_terms: usize,
    /// A tweet-length text (the test text whose length is nearest 120 bytes).
    short: String,
    /// The first 1,000 SST-2 test sentences.
    corpus: Vec<String>,
}

fn inputs() -> Inputs {
    let train = read_tsv(&Path::new(DATA).join("sst2_train_every20th.tsv"));
    let corpus = read_tsv(&Path::new(DATA).join("sst2_test_first1000.tsv"));
    let model = build_model(&train);
    let clf = TextClassifier::from_bytes(&model).expect("bench model loads");
    let n_terms = clf.vectorizers()[0].n_features() as usize;
    let short = corpus
        .iter()
        .min_by_key(|t| (t.len() as i64 - 120).abs())
        .cloned()
        .unwrap_or_default();
    Inputs {
        model,
        n_terms,
        short,
        corpus,
    }
}

fn bytes_of(texts: &[String]) -> u64 {
    texts.iter().map(|t| t.len() as u64).sum()
}

fn bench_tokenize(c: &mut Criterion, inp: &Inputs, clf: &TextClassifier) {
    let analyzer = &clf.vectorizers()[0].analyzer;
    let mut g = c.benchmark_group("tokenize");
    let mut scratch = Scratch::default();
    g.throughput(Throughput::Bytes(inp.short.len() as u64));
    g.bench_function("word_1_2/short", |b| {
        b.iter(|| {
            let mut n = 0usize;
            analyzer.for_each_feature(black_box(&inp.short), &mut scratch, |f| n += f.len());
            n
        })
    });
    g.throughput(Throughput::Bytes(bytes_of(&inp.corpus)));
    g.bench_function("word_1_2/sst2_test_1000", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for t in &inp.corpus {
                analyzer.for_each_feature(black_box(t), &mut scratch, |f| n += f.len());
            }
            n
        })
    });
    g.finish();
}

fn bench_vectorize(c: &mut Criterion, inp: &Inputs, clf: &TextClassifier) {
    let mut g = c.benchmark_group("vectorize");
    g.throughput(Throughput::Bytes(inp.short.len() as u64));
    g.bench_function("tfidf_l2/short", |b| {
        b.iter(|| clf.transform(black_box(&inp.short)))
    });
    g.throughput(Throughput::Bytes(bytes_of(&inp.corpus)));
    g.bench_function("tfidf_l2/sst2_test_1000", |b| {
        b.iter(|| {
            for t in &inp.corpus {
                black_box(clf.transform(black_box(t)).ok());
            }
        })
    });
    g.finish();
}

fn bench_predict(c: &mut Criterion, inp: &Inputs, clf: &TextClassifier) {
    let mut g = c.benchmark_group("predict");
    g.throughput(Throughput::Bytes(inp.short.len() as u64));
    g.bench_function("logistic/short", |b| {
        b.iter(|| clf.predict(black_box(&inp.short)))
    });
    g.throughput(Throughput::Bytes(bytes_of(&inp.corpus)));
    g.bench_function("logistic/sst2_test_1000", |b| {
        b.iter(|| {
            for t in &inp.corpus {
                black_box(clf.predict(black_box(t)).ok());
            }
        })
    });
    g.finish();
}

fn bench_load(c: &mut Criterion, inp: &Inputs) {
    let mut g = c.benchmark_group("load");
    g.throughput(Throughput::Bytes(inp.model.len() as u64));
    g.bench_function(format!("from_bytes/{}_terms", inp.n_terms), |b| {
        b.iter(|| TextClassifier::from_bytes(black_box(&inp.model)))
    });
    g.finish();
}

fn engine(c: &mut Criterion) {
    let inp = inputs();
    let clf = TextClassifier::from_bytes(&inp.model).expect("bench model loads");
    eprintln!(
        "bench model: {} terms, {} artifact bytes; short text {} bytes; corpus {} texts, {} bytes",
        inp.n_terms,
        inp.model.len(),
        inp.short.len(),
        inp.corpus.len(),
        bytes_of(&inp.corpus)
    );
    bench_tokenize(c, &inp, &clf);
    bench_vectorize(c, &inp, &clf);
    bench_predict(c, &inp, &clf);
    bench_load(c, &inp);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = engine
}

// ---------------------------------------------------------------------------------------------
// Native mode: one model, one text file, JSON out (for scripts/bench.py).
// ---------------------------------------------------------------------------------------------

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    serde_json::json!({
        "n": v.len(), "min": quantile(&v, 0.0), "p50": quantile(&v, 0.5), "p99": quantile(&v, 0.99),
        "max": quantile(&v, 1.0)
    })
}

fn native(model_path: &str) {
    let texts_path = std::env::var("SKEDGE_BENCH_TEXTS").expect("SKEDGE_BENCH_TEXTS is set");
    let only = std::env::var("SKEDGE_BENCH_ONLY").unwrap_or_default();
    let reps: Option<usize> = std::env::var("SKEDGE_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok());
    let want = |what: &str| only.is_empty() || only == what;

    let t0 = Instant::now();
    let bytes = std::fs::read(model_path).expect("model file is readable");
    let read_s = t0.elapsed().as_secs_f64();
    let texts: Vec<String> = std::fs::read_to_string(&texts_path)
        .expect("texts file is readable")
        .lines()
        .map(str::to_owned)
        .collect();
    let text_bytes = bytes_of(&texts);

    // First load and first prediction in this process (page faults, cold caches included).
    let t0 = Instant::now();
    let clf = TextClassifier::from_bytes(&bytes).expect("model loads");
    let first_load_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    black_box(clf.predict(&texts[0]).ok());
    let first_predict_s = t0.elapsed().as_secs_f64();
    let mut out = serde_json::json!({
        "model_bytes": bytes.len(), "texts": texts.len(), "text_bytes": text_bytes,
        "read_file_s": read_s, "first_load_s": first_load_s, "first_predict_s": first_predict_s,
    });

    if want("load") {
        let n = reps.unwrap_or(30);
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            black_box(TextClassifier::from_bytes(black_box(&bytes)).ok());
            v.push(t0.elapsed().as_secs_f64());
        }
        out["load_s"] = stats(v);
    }
    if want("single") {
        let rounds = reps.unwrap_or_else(|| (60_000 / texts.len().max(1)).max(3));
        let mut v = Vec::with_capacity(rounds * texts.len());
        for _ in 0..rounds {
            for t in &texts {
                let t0 = Instant::now();
                black_box(clf.predict(black_box(t)).ok());
                v.push(t0.elapsed().as_secs_f64());
            }
        }
        out["single_s"] = stats(v);
    }
    if want("batch") {
        let n = reps.unwrap_or(15);
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            for t in &texts {
                black_box(clf.predict(black_box(t)).ok());
            }
            v.push(t0.elapsed().as_secs_f64());
        }
        out["batch_s"] = stats(v);
    }
    println!("{out}");
}

fn main() {
    if let Ok(model) = std::env::var("SKEDGE_BENCH_MODEL") {
        native(&model);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
