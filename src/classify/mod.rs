//! The final estimators: a closed set, each `decision` → `predict` → `predict_proba` as
//! scikit-learn computes them on one sparse row.

pub mod calibration;
pub mod linear;
pub mod naive_bayes;

use crate::artifact::schema::{Classes, Classifier as Params, Matrix};
use crate::error::{Error, Result};
use crate::vectorize::Row;

pub use calibration::CalibratedSigmoid;
pub use linear::Linear;
pub use naive_bayes::NaiveBayes;

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
    /// `CalibratedClassifierCV(method="sigmoid")`.
    CalibratedSigmoid(CalibratedSigmoid),
}

impl Classifier {
    /// Checks a classifier read from an artifact against the number of input columns.
    pub fn new(p: Params, n_features: u64) -> Result<Self> {
        Ok(match p {
            Params::Linear(l) => Classifier::Linear(Linear::new(l, n_features)?),
            Params::NaiveBayes(nb) => Classifier::NaiveBayes(NaiveBayes::new(nb, n_features)?),
            Params::CalibratedSigmoid(c) => {
                Classifier::CalibratedSigmoid(CalibratedSigmoid::new(c, n_features)?)
            }
        })
    }

    /// `classes_`.
    pub fn classes(&self) -> &Classes {
        match self {
            Classifier::Linear(c) => &c.classes,
            Classifier::NaiveBayes(c) => &c.classes,
            Classifier::CalibratedSigmoid(c) => &c.classes,
        }
    }

    /// scikit-learn class name of the estimator.
    pub fn estimator(&self) -> &str {
        match self {
            Classifier::Linear(c) => &c.estimator,
            Classifier::NaiveBayes(c) => &c.estimator,
            Classifier::CalibratedSigmoid(_) => "CalibratedClassifierCV",
        }
    }

    /// Weight of column `col` for each decision row (for explanations).
    pub fn weights(&self, col: u32) -> Vec<f64> {
        match self {
            Classifier::Linear(c) => c.coef.column(col),
            Classifier::NaiveBayes(c) => c.coef.column(col),
            Classifier::CalibratedSigmoid(c) => c.members[0].base.coef.column(col),
        }
    }

    /// Predicts one row.
    pub fn predict(&self, x: &Row) -> Prediction {
        match self {
            Classifier::Linear(c) => c.predict(x),
            Classifier::NaiveBayes(c) => c.predict(x),
            Classifier::CalibratedSigmoid(c) => c.predict(x),
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

/// A checked dense matrix: `rows × cols`, row-major like `coef_`.
#[derive(Debug, Clone)]
pub struct Dense {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Dense {
    /// Checks shape against the data and the expected number of columns.
    pub fn new(m: Matrix, cols: u64, what: &str) -> Result<Self> {
        if u64::from(m.cols) != cols {
            return Err(Error::Corrupt(format!(
                "{what} has {} columns, the features {cols}",
                m.cols
            )));
        }
        if (m.rows as u64) * (m.cols as u64) != m.data.len() as u64 || m.rows == 0 {
            return Err(Error::Corrupt(format!(
                "{what} declares {}x{} but holds {} values",
                m.rows,
                m.cols,
                m.data.len()
            )));
        }
        check_finite(&m.data, what)?;
        Ok(Dense {
            rows: m.rows as usize,
            cols: m.cols as usize,
            data: m.data,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// `safe_sparse_dot(x, coef.T)`: for each row r, `Σ_j x_j · coef[r][j]` from 0.0 in ascending
    /// column order (scipy's `csr_matvecs`).
    pub fn dot(&self, x: &Row) -> Vec<f64> {
        let mut acc = vec![0.0; self.rows];
        for &(j, v) in x {
            let j = j as usize;
            for (r, a) in acc.iter_mut().enumerate() {
                *a += v * self.data[r * self.cols + j];
            }
        }
        acc
    }

    /// Column `col`, one value per row.
    pub fn column(&self, col: u32) -> Vec<f64> {
        (0..self.rows)
            .map(|r| self.data[r * self.cols + col as usize])
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
