//! The wire contract of the artifact body (FORMAT.md §2). Types only, no logic.
//!
//! Postcard is not self-describing: field order is the byte order, enum variant order is the
//! discriminant. Append variants at the end; any other change bumps `FORMAT_VERSION`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole model: a format 2 body is the postcard of its first two fields; `input` is
/// [`Input::Text`] there and in format 3, and what format 4 adds (FORMAT.md §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body {
    /// Who made the model, from what, when.
    pub metadata: Metadata,
    /// What runs on a text.
    pub pipeline: Pipeline,
    /// What the pipeline was fitted on: texts, or one column of a DataFrame.
    pub input: Input,
}

/// What a pipeline takes (format 4's manifest ends with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A sequence of texts: a `Pipeline` whose first step is a vectorizer or a `FeatureUnion`.
    Text,
    /// A DataFrame of which one column holds the texts: `ColumnTransformer([(name, vectorizer,
    /// column), ...], remainder="drop")`. Records are `{column: text}`.
    Column(String),
}

/// Artifact metadata, shown by `skedge inspect` and `model.info()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Model name (e.g. the registered MLflow name), may be empty.
    pub name: String,
    /// Model version (e.g. the registry version), may be empty.
    pub version: String,
    /// skedge version that packed the artifact.
    pub skedge_version: String,
    /// scikit-learn version the model was exported from.
    pub sklearn_version: String,
    /// Python version of the exporter.
    pub python_version: String,
    /// numpy version of the exporter.
    pub numpy_version: String,
    /// `unicodedata.unidata_version` of the exporter.
    pub unicode_version: String,
    /// Hex sha256 of the exported model file.
    pub source_sha256: String,
    /// RFC 3339 export time.
    pub created: String,
    /// Numeric precision of the stored parameters.
    pub precision: Precision,
    /// Registry provenance (run id, model URI, alias, ...).
    pub provenance: BTreeMap<String, String>,
    /// Training metrics of the source run.
    pub metrics: BTreeMap<String, f64>,
    /// Drift baseline: the monitoring statistics of the validation texts (FORMAT.md §4).
    pub baseline: Option<Baseline>,
    /// Agreement with scikit-learn measured by the exporter; present for `Precision::Compact`.
    pub agreement: Option<Agreement>,
}

/// How closely a non-exact artifact reproduces scikit-learn, measured by the exporter on its gate
/// texts (validation, adversarial and random texts). Also the interchange's `metadata.agreement`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// Texts compared.
    pub texts: u64,
    /// Texts where the label differs from scikit-learn's.
    pub label_changes: u64,
    /// Largest absolute difference of a decision value.
    pub max_abs_decision_diff: f64,
    /// Largest absolute difference of a probability (0 without `predict_proba`).
    pub max_abs_proba_diff: f64,
}

/// The statistics `skedge::monitor` collects at the edge, computed by the exporter on the
/// validation texts with the same bins (FORMAT.md §4), for drift comparisons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Number of validation texts.
    pub count: u64,
    /// Texts per predicted class, in `classes` order.
    pub label_counts: Vec<u64>,
    /// Confidence histogram (`max(predict_proba)`, 10 bins); absent without `predict_proba`.
    pub confidence: Option<Vec<u64>>,
    /// Out-of-vocabulary statistics; absent for models without a vocabulary.
    pub oov: Option<OovCounts>,
    /// Text length histogram (16 power-of-two bins of characters).
    pub length: Vec<u64>,
}

/// Out-of-vocabulary statistics of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OovCounts {
    /// Texts per OOV-rate bin (10 bins).
    pub counts: Vec<u64>,
    /// Texts without any analyzer feature.
    pub no_features: u64,
    /// Analyzer features not in the vocabulary, summed over the texts.
    pub oov_features: u64,
    /// Analyzer features, summed over the texts.
    pub total_features: u64,
}

/// Numeric precision mode (FORMAT.md, tolerance per precision mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    /// f64 parameters as fitted: bit-identical to scikit-learn.
    Exact,
    /// Classifier weights rounded to IEEE binary16 (2 bytes each on the wire); everything else
    /// exact. Agreement measured by the exporter and recorded in `Metadata::agreement`.
    Compact,
}

impl Precision {
    /// The name used by the exporter, `skedge inspect` and `info()`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Exact => "exact",
            Precision::Compact => "compact",
        }
    }
}

/// `Pipeline`: feature blocks (a `FeatureUnion` when several), transforms, a classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// One block per vectorizer, in union order; columns are concatenated.
    pub features: Vec<FeatureBlock>,
    /// Transforms applied to the concatenated row.
    pub transforms: Vec<Transform>,
    /// The final estimator.
    pub classifier: Classifier,
}

/// One vectorizer and the transformers after it in its branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBlock {
    /// `build_analyzer()`.
    pub analyzer: Analyzer,
    /// How features become columns.
    pub counts: Counts,
    /// `binary=True`: every stored count becomes 1.
    pub binary: bool,
    /// Transforms applied to this block's row, in order.
    pub transforms: Vec<Transform>,
}

/// The analyzer parameters of a scikit-learn vectorizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analyzer {
    /// `analyzer`.
    pub kind: AnalyzerKind,
    /// `ngram_range` (min_n, max_n).
    pub ngram_range: (u32, u32),
    /// `lowercase`.
    pub lowercase: bool,
    /// `strip_accents`.
    pub strip_accents: StripAccents,
    /// `token_pattern` (word analyzer only).
    pub token_pattern: TokenPattern,
    /// `get_stop_words()`, sorted; empty for none.
    pub stop_words: Vec<String>,
}

/// `analyzer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnalyzerKind {
    /// `"word"`.
    Word,
    /// `"char"`.
    Char,
    /// `"char_wb"`.
    CharWb,
}

/// `strip_accents`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StripAccents {
    /// `None`.
    None,
    /// `"ascii"`.
    Ascii,
    /// `"unicode"`.
    Unicode,
}

/// The token patterns skedge implements exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenPattern {
    /// `(?u)\b\w\w+\b`: runs of two or more word characters.
    TwoOrMoreWordChars,
    /// `(?u)\b\w+\b`: runs of one or more word characters.
    OneOrMoreWordChars,
}

/// How analyzer features map to columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Counts {
    /// `vocabulary_`: column i is the i-th term of `terms` (front-coded on the wire).
    #[serde(with = "super::compact::vocabulary")]
    Vocabulary {
        /// UTF-8 terms concatenated in column order.
        terms: Vec<u8>,
        /// Byte length of each term, in column order.
        lengths: Vec<u32>,
    },
    /// `HashingVectorizer`'s `FeatureHasher`: signed MurmurHash3 x86_32, seed 0, of the UTF-8 feature.
    Hashing {
        /// `n_features`.
        n_features: u32,
        /// `alternate_sign`.
        alternate_sign: bool,
    },
}

/// A transform of the sparse row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Transform {
    /// `TfidfTransformer.transform` without its norm.
    Tfidf {
        /// `sublinear_tf`: x = log(x) + 1.
        sublinear_tf: bool,
        /// `idf_`, absent when `use_idf=False` (distinct values + indices on the wire).
        #[serde(with = "super::compact::idf")]
        idf: Option<Vec<f64>>,
        /// numpy's log(k) where it differs from the engine's, sorted by k (as deltas on the wire).
        #[serde(with = "super::compact::log_exceptions")]
        log_exceptions: Vec<(u32, f64)>,
    },
    /// `normalize(X, norm)`.
    Normalize {
        /// `norm`.
        norm: Norm,
    },
    /// Multiply by a constant (`FeatureUnion.transformer_weights`).
    Scale {
        /// The weight.
        factor: f64,
    },
    /// A column mask (`SelectKBest`, `VarianceThreshold`, `SelectFromModel`, ...): keeps the
    /// columns of `get_support(indices=True)`, renumbered 0..k in that order.
    Select {
        /// Columns of the input (`n_features_in_`).
        n_features_in: u32,
        /// The kept input columns, strictly ascending.
        support: Vec<u32>,
    },
    /// `x_j · (1 / scale[j])`: `MaxAbsScaler` and `StandardScaler(with_mean=False)` on sparse input
    /// (`inplace_column_scale(X, 1 / scale_)`).
    ColumnScale {
        /// `scale_`, one per column.
        scale: Vec<f64>,
    },
    /// `np.clip(X.data, min, max)`: every stored value bounded to `[min, max]` (a NaN stays NaN;
    /// the zeros that are not stored stay 0): `MaxAbsScaler(clip=True)` after its `ColumnScale`,
    /// with `min = -1`, `max = 1`. Both finite, `min <= max`.
    Clip {
        /// The lower bound (`a_min`).
        min: f64,
        /// The upper bound (`a_max`).
        max: f64,
    },
}

/// `norm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Norm {
    /// Sum of absolute values.
    L1,
    /// Euclidean.
    L2,
}

/// The final estimator: a closed set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Classifier {
    /// Linear models with `coef_`/`intercept_`.
    Linear(Linear),
    /// MultinomialNB, ComplementNB, BernoulliNB.
    NaiveBayes(NaiveBayes),
    /// `CalibratedClassifierCV(method="sigmoid")`.
    CalibratedSigmoid(Calibrated),
    /// `CalibratedClassifierCV(method="isotonic")`.
    CalibratedIsotonic(CalibratedIsotonic),
    /// `VotingClassifier`.
    Voting(Voting),
}

/// `VotingClassifier` over linear and naive Bayes estimators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voting {
    /// `classes_` (`le_.classes_`).
    pub classes: Classes,
    /// `voting="soft"` (else hard).
    pub soft: bool,
    /// `_weights_not_none`: one non-negative weight per estimator, or none (all 1).
    pub weights: Option<Vec<f64>>,
    /// `estimators_`, each fitted on the encoded labels `0..k`.
    pub estimators: Vec<VotingEstimator>,
}

/// One estimator of a `VotingClassifier`: not a [`Classifier`], so the wire type stays flat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VotingEstimator {
    /// Linear models.
    Linear(Linear),
    /// Naive Bayes.
    NaiveBayes(NaiveBayes),
}

/// A dense matrix, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    /// Number of rows.
    pub rows: u32,
    /// Number of columns.
    pub cols: u32,
    /// `rows * cols` values (little-endian f64 or, when every value is one, f16 on the wire).
    #[serde(with = "super::compact::values")]
    pub data: Vec<f64>,
}

/// `classes_`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Classes {
    /// Integer labels.
    Int(Vec<i64>),
    /// String labels.
    Str(Vec<String>),
}

/// A linear classifier (`LinearClassifierMixin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// scikit-learn class name.
    pub estimator: String,
    /// `classes_`.
    pub classes: Classes,
    /// `coef_`: one row for binary problems, else one per class.
    pub coef: Matrix,
    /// `intercept_`, one per row.
    pub intercept: Vec<f64>,
    /// How `predict_proba` is computed.
    pub proba: LinearProba,
}

/// `predict_proba` of a linear classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinearProba {
    /// No `predict_proba`.
    None,
    /// `_predict_proba_lr`: expit, one-vs-rest normalisation.
    Logistic,
    /// `softmax` of the decision (multinomial LogisticRegression).
    Softmax,
    /// `SGDClassifier(loss="modified_huber")`.
    ModifiedHuber,
    /// `OneVsRestClassifier` over estimators whose `predict_proba` is `expit(decision)`: each
    /// class's expit divided by the row sum (a zero sum stays zero); binary `[1-p, p]` divided
    /// by `(1-p) + p`.
    OneVsRest,
}

/// A naive Bayes classifier as a joint log likelihood `x · coef + intercept`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NaiveBayes {
    /// scikit-learn class name.
    pub estimator: String,
    /// `classes_`.
    pub classes: Classes,
    /// One row per class.
    pub coef: Matrix,
    /// Added after the dot product when present.
    pub intercept: Option<Vec<f64>>,
    /// `BernoulliNB.binarize`.
    pub binarize: Option<f64>,
}

/// `CalibratedClassifierCV(method="sigmoid")`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrated {
    /// `classes_`.
    pub classes: Classes,
    /// `calibrated_classifiers_`.
    pub members: Vec<CalibratedMember>,
}

/// One `_CalibratedClassifier`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibratedMember {
    /// The fitted base estimator.
    pub base: Linear,
    /// `pos_class_indices`: class of each decision column.
    pub class_indices: Vec<u32>,
    /// `(a_, b_)` of each `_SigmoidCalibration`.
    pub calibrators: Vec<(f64, f64)>,
}

/// `CalibratedClassifierCV(method="isotonic")`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibratedIsotonic {
    /// `classes_`.
    pub classes: Classes,
    /// `calibrated_classifiers_`.
    pub members: Vec<IsotonicMember>,
}

/// One `_CalibratedClassifier` with `IsotonicRegression(out_of_bounds="clip")` calibrators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsotonicMember {
    /// The fitted base estimator.
    pub base: Linear,
    /// `pos_class_indices`: class of each decision column.
    pub class_indices: Vec<u32>,
    /// One per decision column.
    pub calibrators: Vec<Isotonic>,
}

/// A fitted `IsotonicRegression`: linear interpolation over the thresholds, the input clipped to
/// `[x[0], x[last]]` (`X_min_`, `X_max_`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// `X_thresholds_`, strictly ascending, at least one.
    pub x: Vec<f64>,
    /// `y_thresholds_`, one per threshold.
    pub y: Vec<f64>,
}

/// The manifest of a format 3 body (FORMAT.md §2): the same pipeline as [`Body`], with every
/// bulk array replaced by a [`Section`](v3::Section) of the data area, read in place at load.
pub mod v3 {
    use serde::{Deserialize, Serialize};

    pub use super::{Analyzer, Classes, LinearProba, Metadata, Norm};

    /// A byte range of the data area: `offset` is a multiple of 8, relative to the data area's
    /// start.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Section {
        /// Start, in bytes from the start of the data area.
        pub offset: u32,
        /// Length in bytes.
        pub len: u32,
    }

    /// The postcard part of a format 3 body.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Manifest {
        /// Who made the model, from what, when.
        pub metadata: Metadata,
        /// What runs on a text.
        pub pipeline: Pipeline,
    }

    /// `Pipeline`: feature blocks, transforms, a classifier.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Pipeline {
        /// One block per vectorizer, in union order.
        pub features: Vec<FeatureBlock>,
        /// Transforms applied to the concatenated row.
        pub transforms: Vec<Transform>,
        /// The final estimator.
        pub classifier: Classifier,
    }

    /// One vectorizer and the transformers after it in its branch.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct FeatureBlock {
        /// `build_analyzer()`.
        pub analyzer: Analyzer,
        /// How features become columns.
        pub counts: Counts,
        /// `binary=True`.
        pub binary: bool,
        /// Transforms applied to this block's row, in order.
        pub transforms: Vec<Transform>,
    }

    /// How analyzer features map to columns.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Counts {
        /// `vocabulary_` as a stored hash table and front-coded terms.
        Vocabulary(Vocabulary),
        /// `HashingVectorizer`'s `FeatureHasher`.
        Hashing {
            /// `n_features`.
            n_features: u32,
            /// `alternate_sign`.
            alternate_sign: bool,
        },
        /// `vocabulary_` whose terms with a space are pairs of its words (FORMAT.md §2, "Word
        /// pairs"): an index of the words, and each pair as its second word's rank.
        Pairs(Pairs),
    }

    /// A vocabulary stored as words and word pairs (FORMAT.md §2, "Word pairs").
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Pairs {
        /// Number of terms (= columns).
        pub count: u32,
        /// The terms without a space (the words), ranked in column order: their index.
        pub words: Vocabulary,
        /// Each word's column: u32 per rank.
        pub columns: Section,
        /// Per column, `width` bytes: a word's number of pairs (the columns after it), a pair's
        /// second word's rank.
        pub seconds: Section,
        /// 2 or 4.
        pub width: u8,
    }

    /// `vocabulary_`, ready to query (FORMAT.md §2, "Vocabulary").
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Vocabulary {
        /// Number of terms (= columns).
        pub count: u32,
        /// Open-addressing table of u32 slots: 0 empty, else `tag | (column + 1)`.
        pub table: Section,
        /// Longest distance of a term from its home slot: a probe stops after this many steps.
        pub max_probe: u32,
        /// Terms per front-coded block.
        pub block_terms: u32,
        /// Start of each block in `blocks`, then the end: u32 each.
        pub block_offsets: Section,
        /// The front-coded blocks, in column order.
        pub blocks: Section,
    }

    /// A transform of the sparse row.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Transform {
        /// `TfidfTransformer.transform` without its norm.
        Tfidf {
            /// `sublinear_tf`.
            sublinear_tf: bool,
            /// `idf_`, absent when `use_idf=False`.
            idf: Option<Idf>,
            /// numpy's log(k) where it differs from the engine's, sorted by k.
            #[serde(with = "crate::artifact::compact::log_exceptions")]
            log_exceptions: Vec<(u32, f64)>,
        },
        /// `normalize(X, norm)`.
        Normalize {
            /// `norm`.
            norm: Norm,
        },
        /// Multiply by a constant.
        Scale {
            /// The weight.
            factor: f64,
        },
        /// A column mask: keeps the listed input columns, renumbered 0..k.
        Select {
            /// Columns of the input.
            n_features_in: u32,
            /// The kept input columns, u32 little-endian, strictly ascending.
            support: Section,
        },
        /// `x_j · (1 / scale[j])`.
        ColumnScale {
            /// `scale_`, f64 little-endian, one per column.
            scale: Section,
        },
        /// `np.clip(X.data, min, max)` (variant 5; readers before it refuse it).
        Clip {
            /// The lower bound.
            min: f64,
            /// The upper bound.
            max: f64,
        },
    }

    /// `idf_` as distinct values and one index per column.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Idf {
        /// Distinct values, little-endian f64.
        pub values: Section,
        /// Bytes per index: 1, 2 or 4 (little-endian); or [`IDF_PACKED`] `| b`: `b` bits per
        /// index (1..=24, not 8 or 16), packed (FORMAT.md §2).
        pub index_width: u8,
        /// One index into `values` per column.
        pub index: Section,
    }

    /// The flag of [`Idf::index_width`] for bit-packed indices.
    pub const IDF_PACKED: u8 = 0x80;

    /// The final estimator.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum Classifier {
        /// Linear models.
        Linear(Linear),
        /// Naive Bayes.
        NaiveBayes(NaiveBayes),
        /// `CalibratedClassifierCV(method="sigmoid")`.
        CalibratedSigmoid(Calibrated),
        /// `CalibratedClassifierCV(method="isotonic")`.
        CalibratedIsotonic(CalibratedIsotonic),
        /// `VotingClassifier`.
        Voting(Voting),
    }

    /// `VotingClassifier`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Voting {
        /// `classes_`.
        pub classes: Classes,
        /// `voting="soft"`.
        pub soft: bool,
        /// `_weights_not_none`.
        pub weights: Option<Vec<f64>>,
        /// `estimators_`.
        pub estimators: Vec<VotingEstimator>,
    }

    /// One estimator of a `VotingClassifier`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum VotingEstimator {
        /// Linear models.
        Linear(Linear),
        /// Naive Bayes.
        NaiveBayes(NaiveBayes),
    }

    /// How a matrix's values are stored.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Dtype {
        /// Little-endian IEEE binary64.
        F64,
        /// Little-endian IEEE binary16 (every value exactly a binary16 number).
        F16,
    }

    /// A dense matrix, row-major, in place.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Matrix {
        /// Number of rows.
        pub rows: u32,
        /// Number of columns.
        pub cols: u32,
        /// Value encoding.
        pub dtype: Dtype,
        /// `rows * cols` values.
        pub data: Section,
    }

    /// A linear classifier.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Linear {
        /// scikit-learn class name.
        pub estimator: String,
        /// `classes_`.
        pub classes: Classes,
        /// `coef_`.
        pub coef: Matrix,
        /// `intercept_`.
        pub intercept: Vec<f64>,
        /// How `predict_proba` is computed.
        pub proba: LinearProba,
    }

    /// A naive Bayes classifier.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct NaiveBayes {
        /// scikit-learn class name.
        pub estimator: String,
        /// `classes_`.
        pub classes: Classes,
        /// One row per class.
        pub coef: Matrix,
        /// Added after the dot product when present.
        pub intercept: Option<Vec<f64>>,
        /// `BernoulliNB.binarize`.
        pub binarize: Option<f64>,
    }

    /// `CalibratedClassifierCV(method="sigmoid")`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Calibrated {
        /// `classes_`.
        pub classes: Classes,
        /// `calibrated_classifiers_`.
        pub members: Vec<CalibratedMember>,
    }

    /// One `_CalibratedClassifier`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct CalibratedMember {
        /// The fitted base estimator.
        pub base: Linear,
        /// `pos_class_indices`.
        pub class_indices: Vec<u32>,
        /// `(a_, b_)` of each `_SigmoidCalibration`.
        pub calibrators: Vec<(f64, f64)>,
    }

    /// `CalibratedClassifierCV(method="isotonic")`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct CalibratedIsotonic {
        /// `classes_`.
        pub classes: Classes,
        /// `calibrated_classifiers_`.
        pub members: Vec<IsotonicMember>,
    }

    /// One `_CalibratedClassifier` with isotonic calibrators.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct IsotonicMember {
        /// The fitted base estimator.
        pub base: Linear,
        /// `pos_class_indices`.
        pub class_indices: Vec<u32>,
        /// One per decision column.
        pub calibrators: Vec<Isotonic>,
    }

    /// A fitted `IsotonicRegression`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Isotonic {
        /// `X_thresholds_`, f64 little-endian, strictly ascending.
        pub x: Section,
        /// `y_thresholds_`, f64 little-endian, as many as `x`.
        pub y: Section,
    }
}
