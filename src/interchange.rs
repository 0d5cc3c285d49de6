//! The interchange (FORMAT.md §1): the exporter's JSON, and its conversion into the artifact body.
//! Python describes the fitted pipeline; only this crate writes artifact bytes.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::artifact::schema::{
    self, AnalyzerKind, Body, Calibrated, CalibratedIsotonic, CalibratedMember, Classes, Classifier, Counts,
    FeatureBlock, IsotonicMember, LinearProba, Matrix, Metadata, Norm, Pipeline, Precision, StripAccents,
    TokenPattern, Voting, VotingEstimator,
};
use crate::error::{Error, Quoted, Result};

/// The top-level interchange document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interchange {
    /// Always `"skedge-interchange"`.
    pub format: String,
    /// Interchange version, 1.
    pub version: u32,
    /// Metadata.
    pub metadata: IMetadata,
    /// The pipeline.
    pub pipeline: IPipeline,
}

/// Interchange metadata.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct IMetadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    pub created: String,
    pub sklearn_version: String,
    pub python_version: String,
    pub numpy_version: String,
    pub unicode_version: String,
    #[serde(default)]
    pub source_sha256: String,
    pub precision: String,
    #[serde(default)]
    pub provenance: BTreeMap<String, String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Drift baseline (FORMAT.md §4), in the JSON shape of a snapshot's `stats`.
    #[serde(default)]
    pub baseline: Option<crate::monitor::Stats>,
    /// Agreement with scikit-learn measured by the exporter (for `compact`).
    #[serde(default)]
    pub agreement: Option<schema::Agreement>,
}

/// Interchange pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct IPipeline {
    /// What the pipeline takes: absent for texts.
    #[serde(default)]
    pub input: Option<IInput>,
    pub features: Vec<IFeatureBlock>,
    #[serde(default)]
    pub transforms: Vec<ITransform>,
    pub classifier: IClassifier,
}

/// A pipeline fitted on a DataFrame: the one column holding the texts.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum IInput {
    Column { column: String },
}

/// One vectorizer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct IFeatureBlock {
    pub analyzer: IAnalyzer,
    pub counts: ICounts,
    pub binary: bool,
    #[serde(default)]
    pub transforms: Vec<ITransform>,
}

/// Analyzer parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct IAnalyzer {
    pub kind: String,
    pub ngram_range: (u32, u32),
    pub lowercase: bool,
    pub strip_accents: Option<String>,
    #[serde(default)]
    pub token_pattern: Option<String>,
    #[serde(default)]
    pub stop_words: Vec<String>,
}

/// Counting.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum ICounts {
    Vocabulary { vocabulary: Vec<String> },
    Hashing { n_features: u32, alternate_sign: bool },
}

/// A transform.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum ITransform {
    Tfidf {
        sublinear_tf: bool,
        idf: Option<Vec<f64>>,
        #[serde(default)]
        log_exceptions: Vec<(u32, f64)>,
    },
    Normalize {
        norm: String,
    },
    Scale {
        factor: f64,
    },
    Select {
        n_features_in: u32,
        support: Vec<u32>,
    },
    ColumnScale {
        scale: Vec<f64>,
    },
    Clip {
        min: f64,
        max: f64,
    },
}

/// Labels: all integers or all strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum IClasses {
    Int(Vec<i64>),
    Str(Vec<String>),
}

/// A linear classifier.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ILinear {
    #[serde(default)]
    pub kind: Option<String>,
    pub estimator: String,
    pub classes: IClasses,
    pub coef: Vec<Vec<f64>>,
    pub intercept: Vec<f64>,
    pub proba: String,
}

/// A calibrated member.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct IMember {
    pub base: ILinear,
    pub class_indices: Vec<u32>,
    pub calibrators: Vec<(f64, f64)>,
}

/// A calibrated member with isotonic calibrators.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct IIsotonicMember {
    pub base: ILinear,
    pub class_indices: Vec<u32>,
    pub calibrators: Vec<IIsotonic>,
}

/// `IsotonicRegression`: `X_thresholds_` and `y_thresholds_`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct IIsotonic {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// The classifier.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum IClassifier {
    Linear {
        estimator: String,
        classes: IClasses,
        coef: Vec<Vec<f64>>,
        intercept: Vec<f64>,
        proba: String,
    },
    NaiveBayes {
        estimator: String,
        classes: IClasses,
        coef: Vec<Vec<f64>>,
        intercept: Option<Vec<f64>>,
        binarize: Option<f64>,
    },
    CalibratedSigmoid {
        #[serde(default)]
        estimator: Option<String>,
        classes: IClasses,
        members: Vec<IMember>,
    },
    CalibratedIsotonic {
        #[serde(default)]
        estimator: Option<String>,
        classes: IClasses,
        members: Vec<IIsotonicMember>,
    },
    Voting {
        #[serde(default)]
        estimator: Option<String>,
        classes: IClasses,
        voting: String,
        weights: Option<Vec<f64>>,
        estimators: Vec<IClassifier>,
    },
}

fn bad(why: impl Into<String>) -> Error {
    Error::Interchange(why.into())
}

fn classes(c: IClasses) -> Classes {
    match c {
        IClasses::Int(v) => Classes::Int(v),
        IClasses::Str(v) => Classes::Str(v),
    }
}

fn matrix(rows: Vec<Vec<f64>>, what: &str) -> Result<Matrix> {
    let cols = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|r| r.len() != cols) {
        return Err(bad(format!("{what} rows have different lengths")));
    }
    let n_rows = u32::try_from(rows.len()).map_err(|_| bad(format!("{what} has too many rows")))?;
    let n_cols = u32::try_from(cols).map_err(|_| bad(format!("{what} has too many columns")))?;
    Ok(Matrix {
        rows: n_rows,
        cols: n_cols,
        data: rows.into_iter().flatten().collect(),
    })
}

fn isotonic(i: IIsotonic) -> Result<schema::Isotonic> {
    if i.x.is_empty()
        || i.x.len() != i.y.len()
        || !i.x.windows(2).all(|w| w[0] < w[1])
        || !i.x.iter().chain(&i.y).all(|v| v.is_finite())
    {
        return Err(bad(format!(
            "isotonic calibrator: {} x and {} y; x must be finite, strictly ascending and as many as y",
            i.x.len(),
            i.y.len()
        )));
    }
    Ok(schema::Isotonic { x: i.x, y: i.y })
}

fn linear(l: ILinear) -> Result<schema::Linear> {
    if l.kind.as_deref().is_some_and(|k| k != "linear") {
        return Err(bad("a calibrated member's base must be a linear classifier"));
    }
    linear_parts(l.estimator, l.classes, l.coef, l.intercept, &l.proba)
}

fn linear_parts(
    estimator: String,
    c: IClasses,
    coef: Vec<Vec<f64>>,
    intercept: Vec<f64>,
    proba: &str,
) -> Result<schema::Linear> {
    Ok(schema::Linear {
        estimator,
        classes: classes(c),
        coef: matrix(coef, "coef")?,
        intercept,
        proba: match proba {
            "none" => LinearProba::None,
            "logistic" => LinearProba::Logistic,
            "softmax" => LinearProba::Softmax,
            "modified_huber" => LinearProba::ModifiedHuber,
            "one_vs_rest" => LinearProba::OneVsRest,
            other => return Err(bad(format!("unknown proba {}", Quoted(other)))),
        },
    })
}

fn naive_bayes_parts(
    estimator: String,
    c: IClasses,
    coef: Vec<Vec<f64>>,
    intercept: Option<Vec<f64>>,
    binarize: Option<f64>,
) -> Result<schema::NaiveBayes> {
    Ok(schema::NaiveBayes {
        estimator,
        classes: classes(c),
        coef: matrix(coef, "coef")?,
        intercept,
        binarize,
    })
}

fn transform(t: ITransform) -> Result<schema::Transform> {
    Ok(match t {
        ITransform::Tfidf {
            sublinear_tf,
            idf,
            mut log_exceptions,
        } => {
            log_exceptions.sort_by_key(|&(k, _)| k);
            schema::Transform::Tfidf {
                sublinear_tf,
                idf,
                log_exceptions,
            }
        }
        ITransform::Normalize { norm } => schema::Transform::Normalize {
            norm: match norm.as_str() {
                "l1" => Norm::L1,
                "l2" => Norm::L2,
                other => return Err(bad(format!("norm {} is not supported", Quoted(other)))),
            },
        },
        ITransform::Scale { factor } => schema::Transform::Scale { factor },
        ITransform::Select {
            n_features_in,
            support,
        } => {
            if !support.windows(2).all(|w| w[0] < w[1]) || support.last().is_some_and(|&c| c >= n_features_in)
            {
                return Err(bad(format!(
                    "select: support must be strictly ascending columns below n_features_in {n_features_in}"
                )));
            }
            schema::Transform::Select {
                n_features_in,
                support,
            }
        }
        ITransform::ColumnScale { scale } => {
            if let Some(i) = scale
                .iter()
                .position(|&x| !(1.0 / x).is_finite() || !x.is_finite())
            {
                return Err(bad(format!(
                    "column_scale: scale[{i}] = {} has no finite reciprocal",
                    scale[i]
                )));
            }
            schema::Transform::ColumnScale { scale }
        }
        ITransform::Clip { min, max } => {
            if crate::vectorize::check_clip(min, max).is_err() {
                return Err(bad(format!(
                    "clip: bounds [{min}, {max}] must be finite with min <= max"
                )));
            }
            schema::Transform::Clip { min, max }
        }
    })
}

/// The token patterns implemented exactly, and the minimum token length each means.
pub fn token_pattern(pattern: &str) -> Option<TokenPattern> {
    match pattern {
        r"(?u)\b\w\w+\b" | r"\b\w\w+\b" | r"\w\w+" => Some(TokenPattern::TwoOrMoreWordChars),
        r"(?u)\b\w+\b" | r"\b\w+\b" | r"\w+" => Some(TokenPattern::OneOrMoreWordChars),
        _ => None,
    }
}

fn block(b: IFeatureBlock) -> Result<FeatureBlock> {
    let a = b.analyzer;
    let kind = match a.kind.as_str() {
        "word" => AnalyzerKind::Word,
        "char" => AnalyzerKind::Char,
        "char_wb" => AnalyzerKind::CharWb,
        other => return Err(bad(format!("analyzer {} is not supported", Quoted(other)))),
    };
    let token_pattern = match (kind, a.token_pattern.as_deref()) {
        (AnalyzerKind::Word, Some(p)) => {
            token_pattern(p).ok_or_else(|| bad(format!("token_pattern {} is not supported", Quoted(p))))?
        }
        (AnalyzerKind::Word, None) => return Err(bad("a word analyzer needs a token_pattern")),
        _ => TokenPattern::TwoOrMoreWordChars,
    };
    let mut stop_words = if kind == AnalyzerKind::Word {
        a.stop_words
    } else {
        Vec::new()
    };
    stop_words.sort();
    stop_words.dedup();
    let counts = match b.counts {
        ICounts::Vocabulary { vocabulary } => {
            let lengths = vocabulary
                .iter()
                .map(|t| u32::try_from(t.len()).map_err(|_| bad("term too long")))
                .collect::<Result<Vec<_>>>()?;
            Counts::Vocabulary {
                terms: vocabulary.concat().into_bytes(),
                lengths,
            }
        }
        ICounts::Hashing {
            n_features,
            alternate_sign,
        } => Counts::Hashing {
            n_features,
            alternate_sign,
        },
    };
    Ok(FeatureBlock {
        analyzer: schema::Analyzer {
            kind,
            ngram_range: a.ngram_range,
            lowercase: a.lowercase,
            strip_accents: match a.strip_accents.as_deref() {
                None => StripAccents::None,
                Some("ascii") => StripAccents::Ascii,
                Some("unicode") => StripAccents::Unicode,
                Some(other) => return Err(bad(format!("strip_accents {} is not supported", Quoted(other)))),
            },
            token_pattern,
            stop_words,
        },
        counts,
        binary: b.binary,
        transforms: b.transforms.into_iter().map(transform).collect::<Result<_>>()?,
    })
}

impl Interchange {
    /// Parses and converts into an artifact body. `skedge_version` is recorded in the metadata.
    pub fn into_body(self) -> Result<Body> {
        if self.format != "skedge-interchange" || self.version != 1 {
            return Err(bad(format!(
                "expected format skedge-interchange version 1, found {} version {}",
                self.format, self.version
            )));
        }
        let m = self.metadata;
        // Python's `\w`, `str.lower()` and NFKD follow its Unicode version: an artifact is read
        // with the tables of its exporter's, and one skedge has no tables for is refused.
        if crate::text::unicode::Unicode::of(&m.unicode_version).is_none() {
            return Err(bad(format!(
                "the exporter's Python has Unicode {}, which this skedge has no tables for: export \
                 from one of {}",
                m.unicode_version,
                crate::text::unicode::Unicode::supported()
            )));
        }
        let precision = match m.precision.as_str() {
            "exact" => Precision::Exact,
            "compact" => Precision::Compact,
            other => {
                return Err(bad(format!(
                    "precision {} is not supported (exact, compact)",
                    Quoted(other)
                )))
            }
        };
        let metadata = Metadata {
            name: m.name,
            version: m.version,
            skedge_version: env!("CARGO_PKG_VERSION").to_string(),
            sklearn_version: m.sklearn_version,
            python_version: m.python_version,
            numpy_version: m.numpy_version,
            unicode_version: m.unicode_version,
            source_sha256: m.source_sha256,
            created: m.created,
            precision,
            provenance: m.provenance,
            metrics: m.metrics,
            baseline: m.baseline.as_ref().map(crate::monitor::Stats::to_baseline),
            agreement: m.agreement,
        };
        let p = self.pipeline;
        let input = match p.input {
            None => schema::Input::Text,
            Some(IInput::Column { column }) => schema::Input::Column(column),
        };
        let mut classifier = match p.classifier {
            IClassifier::Linear {
                estimator,
                classes: c,
                coef,
                intercept,
                proba,
            } => Classifier::Linear(linear_parts(estimator, c, coef, intercept, &proba)?),
            IClassifier::NaiveBayes {
                estimator,
                classes: c,
                coef,
                intercept,
                binarize,
            } => Classifier::NaiveBayes(naive_bayes_parts(estimator, c, coef, intercept, binarize)?),
            IClassifier::CalibratedSigmoid {
                classes: c, members, ..
            } => Classifier::CalibratedSigmoid(Calibrated {
                classes: classes(c),
                members: members
                    .into_iter()
                    .map(|m| {
                        Ok(CalibratedMember {
                            base: linear(m.base)?,
                            class_indices: m.class_indices,
                            calibrators: m.calibrators,
                        })
                    })
                    .collect::<Result<_>>()?,
            }),
            IClassifier::Voting {
                classes: c,
                voting,
                weights,
                estimators,
                ..
            } => Classifier::Voting(Voting {
                classes: classes(c),
                soft: match voting.as_str() {
                    "soft" => true,
                    "hard" => false,
                    other => return Err(bad(format!("voting: unknown voting {}", Quoted(other)))),
                },
                weights,
                estimators: estimators
                    .into_iter()
                    .map(|e| {
                        Ok(match e {
                            IClassifier::Linear {
                                estimator,
                                classes: c,
                                coef,
                                intercept,
                                proba,
                            } => {
                                VotingEstimator::Linear(linear_parts(estimator, c, coef, intercept, &proba)?)
                            }
                            IClassifier::NaiveBayes {
                                estimator,
                                classes: c,
                                coef,
                                intercept,
                                binarize,
                            } => VotingEstimator::NaiveBayes(naive_bayes_parts(
                                estimator, c, coef, intercept, binarize,
                            )?),
                            _ => return Err(bad("a voting estimator must be linear or naive_bayes")),
                        })
                    })
                    .collect::<Result<_>>()?,
            }),
            IClassifier::CalibratedIsotonic {
                classes: c, members, ..
            } => Classifier::CalibratedIsotonic(CalibratedIsotonic {
                classes: classes(c),
                members: members
                    .into_iter()
                    .map(|m| {
                        Ok(IsotonicMember {
                            base: linear(m.base)?,
                            class_indices: m.class_indices,
                            calibrators: m.calibrators.into_iter().map(isotonic).collect::<Result<_>>()?,
                        })
                    })
                    .collect::<Result<_>>()?,
            }),
        };
        if precision == Precision::Compact {
            round_weights_to_f16(&mut classifier)?;
        }
        let body = Body {
            metadata,
            pipeline: Pipeline {
                features: p.features.into_iter().map(block).collect::<Result<_>>()?,
                transforms: p.transforms.into_iter().map(transform).collect::<Result<_>>()?,
                classifier,
            },
            input,
        };
        // Everything the loader checks, checked before any byte is written.
        let model = crate::TextClassifier::from_body(body.clone())?;
        if let Some(b) = &body.metadata.baseline {
            crate::monitor::check_baseline(b, crate::classify::n_classes(model.classes()))
                .map_err(|e| bad(format!("metadata.baseline: {e}")))?;
        }
        Ok(body)
    }
}

/// The `compact` precision: every classifier weight becomes the nearest binary16 number (round
/// to nearest, ties to even). Intercepts, idf and calibration stay exact: they are few or
/// already deduplicated.
fn round_weights_to_f16(c: &mut Classifier) -> Result<()> {
    let matrices: Vec<&mut Matrix> = match c {
        Classifier::Linear(l) => vec![&mut l.coef],
        Classifier::NaiveBayes(nb) => vec![&mut nb.coef],
        Classifier::CalibratedSigmoid(cal) => cal.members.iter_mut().map(|m| &mut m.base.coef).collect(),
        Classifier::CalibratedIsotonic(cal) => cal.members.iter_mut().map(|m| &mut m.base.coef).collect(),
        Classifier::Voting(v) => v
            .estimators
            .iter_mut()
            .map(|e| match e {
                VotingEstimator::Linear(l) => &mut l.coef,
                VotingEstimator::NaiveBayes(nb) => &mut nb.coef,
            })
            .collect(),
    };
    for m in matrices {
        for x in &mut m.data {
            let h = half::f16::from_f64(*x);
            if !h.is_finite() {
                return Err(bad(format!(
                    "precision compact: weight {x} is outside float16's range (±65504); export with precision exact"
                )));
            }
            *x = h.to_f64();
        }
    }
    Ok(())
}
