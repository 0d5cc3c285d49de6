//! Parity with scikit-learn on the committed fixtures (written by scripts/make_fixtures.py from
//! scikit-learn itself): tokens, feature values, decision values and labels bit for bit,
//! probabilities within 1e-12. Each interchange goes through the real encoder and decoder first.

use std::fs;
use std::path::Path;

use serde_json::Value;
use skedge::artifact::{self, schema::Classes};
use skedge::classify::Classifier;
use skedge::interchange::Interchange;
use skedge::TextClassifier;

const PROBA_TOLERANCE: f64 = 1e-12;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().expect("a number")).collect())
        .unwrap_or_default()
}

fn label(classes: &Classes, i: usize) -> Value {
    match classes {
        Classes::Int(v) => Value::from(v[i]),
        Classes::Str(v) => Value::from(v[i].clone()),
    }
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= PROBA_TOLERANCE)
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Checks one case; returns (texts checked, mismatch descriptions).
fn check_case(interchange: &Path) -> (usize, Vec<String>) {
    let doc: Interchange = serde_json::from_str(&fs::read_to_string(interchange).unwrap()).unwrap();
    let bytes = artifact::to_bytes(&doc.into_body().unwrap()).unwrap();
    let model = TextClassifier::from_bytes(&bytes).unwrap();
    let expected = interchange
        .to_str()
        .unwrap()
        .replace(".interchange.json", ".expected.jsonl");
    let mut bad = Vec::new();
    let mut n = 0;
    for line in fs::read_to_string(&expected).unwrap().lines() {
        let want: Value = serde_json::from_str(line).unwrap();
        let text = want["text"].as_str().unwrap();
        n += 1;
        let short: String = text.chars().take(60).collect();
        // Long texts carry no token list (fixture size); their features still pin the analyzer.
        let tokens: Option<Vec<Vec<String>>> = serde_json::from_value(want["tokens"].clone()).unwrap();
        if tokens.is_some_and(|t| model.analyze(text) != t) {
            bad.push(format!(
                "tokens differ for {short:?}: got {:?}",
                model.analyze(text)
            ));
            continue;
        }
        let row = model.transform(text).unwrap();
        let want_row: Vec<(u32, f64)> = serde_json::from_value(want["features"].clone()).unwrap();
        if row.len() != want_row.len()
            || row
                .iter()
                .zip(&want_row)
                .any(|(a, b)| a.0 != b.0 || a.1.to_bits() != b.1.to_bits())
        {
            bad.push(format!("features differ for {short:?}"));
            continue;
        }
        let p = model.predict(text).unwrap();
        // A calibrated or soft voting classifier's scores are probabilities (exp inside): proba
        // tolerance.
        let calibrated = matches!(model.classifier(), Classifier::Calibrated(_))
            || matches!(model.classifier(), Classifier::Voting(_)) && p.proba.is_some();
        let want_decision = floats(&want["decision"]);
        let decision_ok = if calibrated {
            close(&p.decision, &want_decision)
        } else {
            same_bits(&p.decision, &want_decision)
        };
        if !decision_ok {
            bad.push(format!(
                "decision differs for {short:?}: {:?} vs {}",
                p.decision, want["decision"]
            ));
        }
        if label(model.classes(), p.label) != want["label"] {
            bad.push(format!("label differs for {short:?}"));
        }
        match (&p.proba, want["proba"].is_null()) {
            (None, true) => {}
            (Some(got), false) => {
                let w = floats(&want["proba"]);
                if !close(got, &w) {
                    bad.push(format!("proba differs for {short:?}: {got:?} vs {w:?}"));
                }
            }
            _ => bad.push(format!("proba presence differs for {short:?}")),
        }
    }
    (n, bad)
}

#[test]
fn every_fixture_case_matches_scikit_learn() {
    let dir = Path::new("tests/fixtures/cases");
    let mut cases: Vec<_> = fs::read_dir(dir)
        .expect("tests/fixtures/cases: run scripts/make_fixtures.py")
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".interchange.json"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixture cases found");
    let mut failures = Vec::new();
    let mut total = 0;
    for case in &cases {
        let (n, bad) = check_case(case);
        total += n;
        let name = case
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace(".interchange.json", "");
        eprintln!("{name}: {n} texts, {} mismatches", bad.len());
        for b in bad.iter().take(5) {
            failures.push(format!("{name}: {b}"));
        }
    }
    eprintln!("{} cases, {total} texts", cases.len());
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn word_pairs_fixture_is_stored_as_word_pairs() {
    // The case every runtime checks the word pairs layout with (FORMAT.md §2, "Word pairs"): its
    // artifact must be the word pairs one, smaller than the plain layout an analyzer of n-grams
    // up to 3 gets for the same vocabulary.
    let path = "tests/fixtures/cases/word12_mindf2_tfidf_lr_pairs.interchange.json";
    let doc: Interchange = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let body = doc.into_body().unwrap();
    let mut plain = body.clone();
    plain.pipeline.features[0].analyzer.ngram_range = (1, 3);
    let (pairs, plain) = (
        artifact::to_bytes(&body).unwrap(),
        artifact::to_bytes(&plain).unwrap(),
    );
    assert!(
        pairs.len() + 5_000 < plain.len(),
        "{} vs {}",
        pairs.len(),
        plain.len()
    );
}

#[test]
fn every_fixture_body_decodes_to_its_model() {
    // `skedge repack` lays a format 3 body out again through `layout::decode`: every term and
    // value must come back bit for bit, and encoding it again must give the same bytes.
    let mut n = 0;
    for entry in fs::read_dir("tests/fixtures/cases").unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".interchange.json") {
            continue;
        }
        let doc: Interchange = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let body = doc.into_body().unwrap();
        let encoded = artifact::layout::encode(&body).unwrap();
        let version = artifact::format_version(&body.input);
        let decoded = artifact::layout::decode(&encoded, version).unwrap();
        assert!(decoded == body, "{}", path.display());
        assert_eq!(
            artifact::layout::encode(&decoded).unwrap(),
            encoded,
            "{}",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 44, "{n} cases");
}

#[test]
fn clip_fixture_differs_without_its_clip() {
    // The MaxAbsScaler(clip=True) case has texts whose counts pass the training maximum, in both
    // signs (alternate_sign hashing): without the clip, labels and decisions differ from
    // scikit-learn's, so the fixture pins the clip, not only the scale.
    let path = Path::new("tests/fixtures/cases/union_count_hashing_maxabs_clip_lr.interchange.json");
    let mut doc: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let transforms = doc["pipeline"]["transforms"].as_array_mut().unwrap();
    assert_eq!(transforms.len(), 2);
    assert_eq!(
        transforms[1],
        serde_json::json!({"kind": "clip", "min": -1.0, "max": 1.0})
    );
    transforms.pop();
    let doc: Interchange = serde_json::from_value(doc).unwrap();
    let model = TextClassifier::from_bytes(&artifact::to_bytes(&doc.into_body().unwrap()).unwrap()).unwrap();
    let (mut labels, mut decisions, mut clipped) = (0, 0, [0, 0]);
    let expected = path
        .to_str()
        .unwrap()
        .replace(".interchange.json", ".expected.jsonl");
    for line in fs::read_to_string(expected).unwrap().lines() {
        let want: Value = serde_json::from_str(line).unwrap();
        let text = want["text"].as_str().unwrap();
        for (_, x) in model.transform(text).unwrap() {
            clipped[0] += usize::from(x > 1.0);
            clipped[1] += usize::from(x < -1.0);
        }
        let p = model.predict(text).unwrap();
        labels += usize::from(label(model.classes(), p.label) != want["label"]);
        decisions += usize::from(!same_bits(&p.decision, &floats(&want["decision"])));
    }
    assert!(
        clipped[0] > 0 && clipped[1] > 0,
        "values past 1 and -1: {clipped:?}"
    );
    assert!(
        labels > 0 && decisions > labels,
        "{labels} labels, {decisions} decisions differ"
    );
}
