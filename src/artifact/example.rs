//! The smallest complete model: word unigrams, tf-idf, l2, binary logistic regression. It is the
//! golden artifact (`tests/golden/tiny.skedge`) and the model of the crate's own tests.

use std::collections::BTreeMap;

use super::schema::*;

/// The model; `baseline` is `None`.
pub fn tiny() -> Body {
    let terms = ["bad", "good", "great"];
    Body {
        metadata: Metadata {
            name: "tiny".into(),
            version: "1".into(),
            skedge_version: "0.1.0".into(),
            sklearn_version: "1.9.1".into(),
            python_version: "3.11.7".into(),
            numpy_version: "2.4.6".into(),
            unicode_version: "14.0.0".into(),
            source_sha256: String::new(),
            created: "2000-01-01T00:00:00Z".into(),
            precision: Precision::Exact,
            provenance: BTreeMap::from([("source".into(), "test".into())]),
            metrics: BTreeMap::from([("accuracy".into(), 0.5)]),
            baseline: None,
            agreement: None,
        },
        pipeline: Pipeline {
            features: vec![FeatureBlock {
                analyzer: Analyzer {
                    kind: AnalyzerKind::Word,
                    ngram_range: (1, 1),
                    lowercase: true,
                    strip_accents: StripAccents::None,
                    token_pattern: TokenPattern::TwoOrMoreWordChars,
                    stop_words: vec![],
                },
                counts: Counts::Vocabulary {
                    terms: terms.concat().into_bytes(),
                    lengths: terms.iter().map(|t| t.len() as u32).collect(),
                },
                binary: false,
                transforms: vec![
                    Transform::Tfidf {
                        sublinear_tf: false,
                        idf: Some(vec![1.5, 1.25, 2.0]),
                        log_exceptions: vec![],
                    },
                    Transform::Normalize { norm: Norm::L2 },
                ],
            }],
            transforms: vec![],
            classifier: Classifier::Linear(Linear {
                estimator: "LogisticRegression".into(),
                classes: Classes::Str(vec!["neg".into(), "pos".into()]),
                coef: Matrix {
                    rows: 1,
                    cols: 3,
                    data: vec![-2.0, 1.5, 2.5],
                },
                intercept: vec![0.25],
                proba: LinearProba::Logistic,
            }),
        },
        input: Input::Text,
    }
}
