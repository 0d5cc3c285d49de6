//! The final estimators: a closed set, each `decision` → `predict` → `predict_proba` as
//! scikit-learn computes them on one sparse row.

pub mod calibration;
pub mod linear;
pub mod naive_bayes;
pub mod voting;

use crate::artifact::layout::{self, Data, Slice};
use crate::artifact::schema::v3::{Classifier as Params, Dtype, Matrix};
use crate::artifact::schema::Classes;
use crate::error::{Error, Result};
use crate::vectorize::Row;

pub use calibration::Calibrated;
pub use linear::Linear;
pub use naive_bayes::NaiveBayes;
pub use voting::Voting;

/// What a classifier says about one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Index of the predicted label in `classes`.
    pub label: usize,
    /// The scores the label comes from, in scikit-learn's shape flattened: binary linear one value,
    /// multiclass one per class, naive Bayes the joint log likelihood, calibrated the probabilities.
    pub decision: Vec<f64>,
    /// `predict_proba`, when the estimator has it.
    pub proba: Option<Vec<f64>>,
}

/// A validated classifier.
#[derive(Debug, Clone)]
pub enum Classifier {
    /// Linear models.
    Linear(Linear),
    /// Naive Bayes.
    NaiveBayes(NaiveBayes),
    /// `CalibratedClassifierCV(method="sigmoid" | "isotonic")`.
    Calibrated(Calibrated),
    /// `VotingClassifier`.
    Voting(Voting),
}

impl Classifier {
    /// Checks a classifier read from an artifact against the number of input columns.
    pub fn new(p: Params, n_features: u64, data: &Data) -> Result<Self> {
        Ok(match p {
            Params::Linear(l) => Classifier::Linear(Linear::new(l, n_features, data)?),
            Params::NaiveBayes(nb) => Classifier::NaiveBayes(NaiveBayes::new(nb, n_features, data)?),
            Params::CalibratedSigmoid(c) => Classifier::Calibrated(Calibrated::sigmoid(c, n_features, data)?),
            Params::CalibratedIsotonic(c) => {
                Classifier::Calibrated(Calibrated::isotonic(c, n_features, data)?)
            }
            Params::Voting(v) => Classifier::Voting(Voting::new(v, n_features, data)?),
        })
    }

    /// `classes_`.
    pub fn classes(&self) -> &Classes {
        match self {
            Classifier::Linear(c) => &c.classes,
            Classifier::NaiveBayes(c) => &c.classes,
            Classifier::Calibrated(c) => &c.classes,
            Classifier::Voting(c) => &c.classes,
        }
    }

    /// scikit-learn class name of the estimator.
    pub fn estimator(&self) -> &str {
        match self {
            Classifier::Linear(c) => &c.estimator,
            Classifier::NaiveBayes(c) => &c.estimator,
            Classifier::Calibrated(_) => "CalibratedClassifierCV",
            Classifier::Voting(_) => "VotingClassifier",
        }
    }

    /// Number of decision rows of the weights behind the decision (for explanations).
    pub fn weight_rows(&self) -> usize {
        match self {
            Classifier::Linear(c) => c.coef.rows(),
            Classifier::NaiveBayes(c) => c.coef.rows(),
            Classifier::Calibrated(c) => c.members[0].base.coef.rows(),
            Classifier::Voting(c) => c.estimators[0].weight_rows(),
        }
    }

    /// Weight of column `col` for each decision row (for explanations).
    pub fn weights(&self, col: u32) -> Vec<f64> {
        match self {
            Classifier::Linear(c) => c.coef.column(col),
            Classifier::NaiveBayes(c) => c.coef.column(col),
            Classifier::Calibrated(c) => c.members[0].base.coef.column(col),
            // No one linear score behind a vote: the first estimator's weights stand in.
            Classifier::Voting(c) => c.estimators[0].weights(col),
        }
    }

    /// Predicts one row.
    pub fn predict(&self, x: &Row) -> Prediction {
        match self {
            Classifier::Linear(c) => c.predict(x),
            Classifier::NaiveBayes(c) => c.predict(x),
            Classifier::Calibrated(c) => c.predict(x),
            Classifier::Voting(c) => c.predict(x),
        }
    }
}

/// Number of labels in `classes_`.
pub fn n_classes(classes: &Classes) -> usize {
    match classes {
        Classes::Int(v) => v.len(),
        Classes::Str(v) => v.len(),
    }
}

/// A checked dense matrix read in place: `rows × cols`, row-major like `coef_`, binary64 or
/// binary16 little-endian.
#[derive(Debug, Clone)]
pub struct Dense {
    rows: usize,
    cols: usize,
    dtype: Dtype,
    data: Slice,
}

impl Dense {
    /// Checks shape against the section and the expected number of columns. The values are not
    /// read: `skedge pack` refuses non-finite ones, and the checksum covers them.
    pub fn new(m: Matrix, cols: u64, data: &Data, what: &str) -> Result<Self> {
        if u64::from(m.cols) != cols {
            return Err(Error::Corrupt(format!(
                "{what} has {} columns, the features {cols}",
                m.cols
            )));
        }
        let elem = match m.dtype {
            Dtype::F64 => 8,
            Dtype::F16 => 2,
        };
        let slice = data.slice(m.data, elem, what)?;
        if u64::from(m.rows) * u64::from(m.cols) * elem as u64 != slice.len() as u64 || m.rows == 0 {
            return Err(Error::Corrupt(format!(
                "{what} declares {}x{} but holds {} values",
                m.rows,
                m.cols,
                slice.len() / elem
            )));
        }
        Ok(Dense {
            rows: m.rows as usize,
            cols: m.cols as usize,
            dtype: m.dtype,
            data: slice,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    #[inline]
    fn at(&self, b: &[u8], i: usize) -> f64 {
        match self.dtype {
            Dtype::F64 => layout::f64_at(b, i),
            Dtype::F16 => layout::f16_at(b, i),
        }
        .unwrap_or(f64::NAN)
    }

    /// `safe_sparse_dot(x, coef.T)`: for each row r, `Σ_j x_j · coef[r][j]` from 0.0 in ascending
    /// column order (scipy's `csr_matvecs`).
    pub fn dot(&self, x: &Row) -> Vec<f64> {
        let b = self.data.bytes();
        // One row (binary models): the element type matched once, not per value.
        if self.rows == 1 {
            fn sum(x: &Row, at: impl Fn(usize) -> Option<f64>) -> f64 {
                x.iter()
                    .fold(0.0, |a, &(j, v)| a + v * at(j as usize).unwrap_or(f64::NAN))
            }
            return vec![match self.dtype {
                Dtype::F64 => sum(x, |j| layout::f64_at(b, j)),
                Dtype::F16 => sum(x, |j| layout::f16_at(b, j)),
            }];
        }
        let mut acc = vec![0.0; self.rows];
        for &(j, v) in x {
            let j = j as usize;
            for (r, a) in acc.iter_mut().enumerate() {
                *a += v * self.at(b, r * self.cols + j);
            }
        }
        acc
    }

    /// Column `col`, one value per row.
    pub fn column(&self, col: u32) -> Vec<f64> {
        let b = self.data.bytes();
        (0..self.rows)
            .map(|r| self.at(b, r * self.cols + col as usize))
            .collect()
    }
}

/// `np.argmax`: the first maximum; a NaN wins at its first position, as in numpy.
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x.is_nan() {
            return i;
        }
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// `scipy.special.expit`: `1 / (1 + exp(-x))`.
pub fn expit(x: f64) -> f64 {
    1.0 / (1.0 + libm::exp(-x))
}

/// Checks that a per-row vector has one value per row.
pub(crate) fn check_len(v: &[f64], rows: usize, what: &str) -> Result<()> {
    if v.len() != rows {
        return Err(Error::Corrupt(format!(
            "{what} has {} values for {rows} rows",
            v.len()
        )));
    }
    check_finite(v, what)
}

/// Fitted parameters are finite (the exporter refuses others): a NaN or infinity in an artifact
/// is damage or an attack, refused at load rather than turned into NaN probabilities.
pub(crate) fn check_finite(v: &[f64], what: &str) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(Error::Corrupt(format!("{what}[{i}] is not finite"))),
        None => Ok(()),
    }
}
