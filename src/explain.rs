//! Explanations: which features moved a decision, and where they are in the text.
//!
//! Every decision skedge computes is a sum over the row the classifier sees:
//! `decision[r] = Σ_j x_j · w[r][j] + b[r]` (linear models, naive Bayes' joint log likelihood).
//! The contribution of column `j` to row `r` is `x_j · w[r][j]`; [`TextClassifier::explain`]
//! returns the columns with the largest `|contribution|` to the row of the predicted class (the
//! one row of a binary linear model, which scores `classes[1]`), with the term behind each column
//! and every place in the input it was found.

use crate::classify::Classifier;
use crate::error::Result;
use crate::pipeline::TextClassifier;
use crate::vectorize::murmurhash3_32;

/// One column of the row and what it did to the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Column in the row the classifier sees (vectorizers concatenated in `FeatureUnion` order).
    pub column: u32,
    /// Index of the vectorizer (the `FeatureUnion` member) the column belongs to.
    pub block: usize,
    /// The feature behind the column: the vocabulary term; for a hashing vectorizer every distinct
    /// analyzer feature of this text that hashed to the column, in order of first occurrence.
    pub terms: Vec<String>,
    /// `x_j`, the value the classifier sees (after tf-idf and norms; binarized for BernoulliNB).
    pub value: f64,
    /// `w[r][j]` for each decision row `r` (one row for binary linear models, else one per
    /// class). Calibrated models: the mean over their members' base estimators.
    pub weights: Vec<f64>,
    /// `value × weights[r]` for each decision row.
    pub contributions: Vec<f64>,
    /// Every occurrence in the input: `[start, end)` in UTF-16 code units of the original text,
    /// ascending. `char_wb` padding is not in the input (a padding-only feature has zero-width spans).
    pub spans: Vec<(u32, u32)>,
}

impl TextClassifier {
    /// The `k` columns that moved the decision of the predicted class most (largest
    /// `|x_j · w[r][j]|` for that class's row `r`; ties by column), columns contributing exactly
    /// 0 left out, with their terms and spans in `text`.
    pub fn explain(&self, text: &str, k: usize) -> Result<Vec<Contribution>> {
        let row = self.transform(text)?;
        let label = self.predict(text)?.label;
        let classifier = self.classifier();
        let bernoulli = matches!(classifier, Classifier::NaiveBayes(nb) if nb.estimator == "BernoulliNB");
        let mut picked: Vec<Contribution> = row
            .iter()
            .map(|&(column, x)| {
                // FORMAT.md: BernoulliNB binarizes at 0.0 before the dot product.
                let value = if bernoulli {
                    f64::from(u8::from(x > 0.0))
                } else {
                    x
                };
                let weights = weights(classifier, column);
                let contributions = weights.iter().map(|w| value * w).collect();
                Contribution {
                    column,
                    block: 0,
                    terms: Vec::new(),
                    value,
                    weights,
                    contributions,
                    spans: Vec::new(),
                }
            })
            .collect();
        let r = self.explained_row(label);
        let key = |c: &Contribution| c.contributions.get(r).copied().unwrap_or(0.0).abs();
        picked.retain(|c| key(c) != 0.0);
        picked.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.column.cmp(&b.column)));
        picked.truncate(k);
        self.locate(text, &mut picked);
        Ok(picked)
    }

    /// The decision row [`TextClassifier::explain`] ranks by for a predicted class: the one row of
    /// a model with a single row (binary linear, which scores `classes[1]`), else the class's row.
    pub fn explained_row(&self, label: usize) -> usize {
        if self.classifier().weight_rows() == 1 {
            0
        } else {
            label
        }
    }

    /// Fills `block`, `terms` and `spans` by analysing `text` again with spans. Columns go back
    /// through the selections (after the union, then in the block) to the counter's column.
    fn locate(&self, text: &str, picked: &mut [Contribution]) {
        let concatenated: Vec<Option<u64>> = picked
            .iter()
            .map(|c| self.concatenated_column(c.column).map(u64::from))
            .collect();
        let mut offset = 0u64;
        for (block, v) in self.vectorizers().iter().enumerate() {
            let width = v.n_features();
            let mine = |i: usize| concatenated[i].is_some_and(|c| (offset..offset + width).contains(&c));
            if (0..picked.len()).any(mine) {
                for (i, c) in picked.iter_mut().enumerate().filter(|(i, _)| mine(*i)) {
                    c.block = block;
                    let source = concatenated[i].and_then(|col| v.source_column((col - offset) as u32));
                    if let (Some(vocab), Some(col)) = (v.vocabulary(), source) {
                        if let Some(term) = vocab.term(col as usize) {
                            c.terms.push(String::from_utf8_lossy(&term).into_owned());
                        }
                    }
                }
                let vocab = v.vocabulary();
                let n_columns = v.n_columns() as u32;
                v.analyzer.for_each_feature_span(text, |f, span| {
                    let col = match vocab {
                        Some(vocab) => vocab.get(f),
                        None => Some(hashed_column(f, n_columns)),
                    };
                    let Some(col) = col
                        .and_then(|c| v.column(c))
                        .and_then(|c| self.output_column(c + offset as u32))
                    else {
                        return;
                    };
                    for c in picked.iter_mut().filter(|c| c.column == col) {
                        if vocab.is_none() && !c.terms.iter().any(|t| t == f) {
                            c.terms.push(f.to_owned());
                        }
                        c.spans.push(span);
                    }
                });
            }
            offset += width;
        }
        for c in picked.iter_mut() {
            c.spans.sort_unstable();
            c.spans.dedup();
        }
    }
}

/// The column `HashingVectorizer` gives a feature: `abs(murmurhash3_32(f)) % n_features`, with
/// scikit-learn's value for `abs(i32::MIN)`.
fn hashed_column(feature: &str, n_features: u32) -> u32 {
    let h = murmurhash3_32(feature.as_bytes(), 0);
    if h == i32::MIN {
        (i32::MAX as u32 - (n_features - 1)) % n_features
    } else {
        h.unsigned_abs() % n_features
    }
}

/// Weight of `column` in each decision row; for calibrated models the mean over the members.
fn weights(classifier: &Classifier, column: u32) -> Vec<f64> {
    match classifier {
        Classifier::Calibrated(c) => {
            let mut sum = c.members[0].base.coef.column(column);
            for m in &c.members[1..] {
                for (s, w) in sum.iter_mut().zip(m.base.coef.column(column)) {
                    *s += w;
                }
            }
            let n = c.members.len() as f64;
            sum.iter_mut().for_each(|s| *s /= n);
            sum
        }
        other => other.weights(column),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::schema::{
        Analyzer, AnalyzerKind, Body, Classes, Classifier as ClassifierParams, Counts, FeatureBlock, Input,
        Linear, LinearProba, Matrix, Metadata, NaiveBayes, Norm, Pipeline, Precision, StripAccents,
        TokenPattern, Transform,
    };

    fn metadata() -> Metadata {
        Metadata {
            name: "t".into(),
            version: String::new(),
            skedge_version: String::new(),
            sklearn_version: String::new(),
            python_version: String::new(),
            numpy_version: String::new(),
            unicode_version: "14.0.0".into(),
            source_sha256: String::new(),
            created: String::new(),
            precision: Precision::Exact,
            provenance: Default::default(),
            metrics: Default::default(),
            baseline: None,
            agreement: None,
        }
    }

    fn analyzer(kind: AnalyzerKind, ngram_range: (u32, u32)) -> Analyzer {
        Analyzer {
            kind,
            ngram_range,
            lowercase: true,
            strip_accents: StripAccents::None,
            token_pattern: TokenPattern::TwoOrMoreWordChars,
            stop_words: vec![],
        }
    }

    fn vocabulary(terms: &[&str]) -> Counts {
        Counts::Vocabulary {
            terms: terms.concat().into_bytes(),
            lengths: terms.iter().map(|t| t.len() as u32).collect(),
        }
    }

    fn model(features: Vec<FeatureBlock>, classifier: ClassifierParams) -> TextClassifier {
        TextClassifier::from_body(Body {
            metadata: metadata(),
            pipeline: Pipeline {
                features,
                transforms: vec![],
                classifier,
            },
            input: Input::Text,
        })
        .unwrap()
    }

    fn linear(classes: Classes, rows: u32, data: Vec<f64>) -> ClassifierParams {
        let cols = data.len() as u32 / rows;
        ClassifierParams::Linear(Linear {
            estimator: "LogisticRegression".into(),
            classes,
            coef: Matrix { rows, cols, data },
            intercept: vec![0.5; rows as usize],
            proba: LinearProba::Logistic,
        })
    }

    #[test]
    fn binary_linear_ranks_by_contribution_with_spans() {
        let terms = ["bad", "good", "not", "not good"];
        let m = model(
            vec![FeatureBlock {
                analyzer: analyzer(AnalyzerKind::Word, (1, 2)),
                counts: vocabulary(&terms),
                binary: false,
                transforms: vec![],
            }],
            linear(
                Classes::Str(vec!["neg".into(), "pos".into()]),
                1,
                vec![-2.0, 1.5, -0.25, -3.0],
            ),
        );
        let text = "Good? NOT good. 😀 Good!";
        let got = m.explain(text, 3).unwrap();
        type Summary<'a> = (&'a str, f64, Vec<(u32, u32)>);
        let summary: Vec<Summary> = got
            .iter()
            .map(|c| (c.terms[0].as_str(), c.contributions[0], c.spans.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("good", 4.5, vec![(0, 4), (10, 14), (19, 23)]),
                ("not good", -3.0, vec![(6, 14)]),
                ("not", -0.25, vec![(6, 9)]),
            ]
        );
        assert_eq!(got[0].value, 3.0);
        assert_eq!(got[0].weights, [1.5]);
        assert_eq!(got[0].column, 1);
        assert_eq!(m.explain(text, 1).unwrap().len(), 1);
        assert!(m.explain("nothing known here", 5).unwrap().is_empty());
    }

    #[test]
    fn selections_map_columns_back_to_their_terms() {
        // Block: 5 terms, l2 over all of them, then keep columns 1, 3, 4 and scale them; over
        // the union, keep the block's columns 0 and 2 (terms "bb" and "ee") and the second block.
        let terms = ["aa", "bb", "cc", "dd", "ee"];
        let block = FeatureBlock {
            analyzer: analyzer(AnalyzerKind::Word, (1, 1)),
            counts: vocabulary(&terms),
            binary: false,
            transforms: vec![
                Transform::Normalize { norm: Norm::L2 },
                Transform::Select {
                    n_features_in: 5,
                    support: vec![1, 3, 4],
                },
                Transform::ColumnScale {
                    scale: vec![0.5, 3.0, 0.25],
                },
            ],
        };
        let other = FeatureBlock {
            counts: vocabulary(&["zz"]),
            transforms: vec![],
            ..block.clone()
        };
        let m = TextClassifier::from_body(Body {
            metadata: metadata(),
            pipeline: Pipeline {
                features: vec![block, other],
                transforms: vec![Transform::Select {
                    n_features_in: 4,
                    support: vec![0, 2, 3],
                }],
                classifier: linear(Classes::Int(vec![0, 1]), 1, vec![1.0, -2.0, 4.0]),
            },
            input: Input::Text,
        })
        .unwrap();
        let text = "aa bb dd ee ee zz";
        // l2 counts the dropped "aa": norm sqrt(1 + 1 + 1 + 4) = sqrt(7).
        let n = 7f64.sqrt();
        let row = m.transform(text).unwrap();
        assert_eq!(
            row,
            [
                (0, (1.0 / n) * (1.0 / 0.5)),
                (1, (2.0 / n) * (1.0 / 0.25)),
                (2, 1.0)
            ]
        );
        let got = m.explain(text, 5).unwrap();
        type Summary<'a> = (u32, usize, &'a str, Vec<(u32, u32)>);
        let summary: Vec<Summary> = got
            .iter()
            .map(|c| (c.column, c.block, c.terms[0].as_str(), c.spans.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (1, 0, "ee", vec![(9, 11), (12, 14)]),
                (2, 1, "zz", vec![(15, 17)]),
                (0, 0, "bb", vec![(3, 5)]),
            ]
        );
    }

    #[test]
    fn multiclass_ranks_the_predicted_class_row() {
        let terms = ["aa", "bb", "cc"];
        // Rows = classes; "bb" wins class 1 with one strong feature.
        let coef = vec![
            0.1, 0.0, 0.2, //
            0.0, 5.0, -0.1, //
            0.3, -0.2, 0.0,
        ];
        let m = model(
            vec![FeatureBlock {
                analyzer: analyzer(AnalyzerKind::Word, (1, 1)),
                counts: vocabulary(&terms),
                binary: false,
                transforms: vec![Transform::Normalize { norm: Norm::L2 }],
            }],
            linear(Classes::Int(vec![3, 7, 9]), 3, coef),
        );
        let text = "aa bb cc";
        assert_eq!(m.predict(text).unwrap().label, 1);
        let got = m.explain(text, 10).unwrap();
        let x = 1.0 / 3f64.sqrt();
        assert_eq!(got.len(), 2, "aa has weight 0 for class 1: left out");
        assert_eq!(got[0].terms, ["bb"]);
        assert_eq!(got[0].weights, [0.0, 5.0, -0.2]);
        assert_eq!(got[0].contributions, [0.0, x * 5.0, x * -0.2]);
        assert_eq!(got[1].terms, ["cc"]);
        assert_eq!(got[1].spans, [(6, 8)]);
    }

    #[test]
    fn hashing_lists_the_features_that_hashed_there_and_char_spans() {
        let n_features = 8;
        let block = |kind| FeatureBlock {
            analyzer: analyzer(kind, (2, 2)),
            counts: Counts::Hashing {
                n_features,
                alternate_sign: false,
            },
            binary: true,
            transforms: vec![],
        };
        let coef: Vec<f64> = (0..2 * n_features).map(|j| f64::from(j) + 1.0).collect();
        let m = model(
            vec![block(AnalyzerKind::Char), block(AnalyzerKind::CharWb)],
            ClassifierParams::NaiveBayes(NaiveBayes {
                estimator: "BernoulliNB".into(),
                classes: Classes::Int(vec![0, 1]),
                coef: Matrix {
                    rows: 2,
                    cols: 2 * n_features,
                    data: [coef.clone(), coef.iter().map(|w| -w).collect()].concat(),
                },
                intercept: None,
                binarize: Some(0.0),
            }),
        );
        let text = "Ab  ab";
        let got = m.explain(text, 100).unwrap();
        let row = m.transform(text).unwrap();
        assert_eq!(got.len(), row.len());
        for c in &got {
            assert_eq!(c.value, 1.0);
            assert_eq!(c.block, (c.column / n_features) as usize);
            let units: Vec<u16> = text.encode_utf16().collect();
            for &(a, b) in &c.spans {
                let orig = String::from_utf16(&units[a as usize..b as usize]).unwrap();
                let norm = orig
                    .to_lowercase()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                assert!(
                    c.terms
                        .iter()
                        .any(|t| t.trim() == norm.trim() || t.contains(&norm)),
                    "{:?} span {orig:?}",
                    c.terms
                );
            }
            for t in &c.terms {
                assert_eq!(
                    hashed_column(t, n_features) + n_features * c.block as u32,
                    c.column
                );
            }
        }
        // "ab" occurs twice in the char block: one column, two spans.
        let ab = got
            .iter()
            .find(|c| c.block == 0 && c.terms.iter().any(|t| t == "ab"))
            .unwrap();
        assert!(ab.spans.contains(&(0, 2)) && ab.spans.contains(&(4, 6)));
        // The run of two spaces became one; " a" spans it whole.
        let sp = got
            .iter()
            .find(|c| c.block == 0 && c.terms.iter().any(|t| t == " a"))
            .unwrap();
        assert!(sp.spans.contains(&(2, 5)), "{:?}", sp.spans);
    }

    #[test]
    fn too_large_input_is_refused() {
        let m = model(
            vec![FeatureBlock {
                analyzer: analyzer(AnalyzerKind::Word, (1, 1)),
                counts: vocabulary(&["aa"]),
                binary: false,
                transforms: vec![],
            }],
            linear(Classes::Int(vec![0, 1]), 1, vec![1.0]),
        );
        let big = "a".repeat(crate::MAX_TEXT_BYTES + 1);
        assert_eq!(m.explain(&big, 1).unwrap_err().code(), "INPUT_TOO_LARGE");
    }
}
