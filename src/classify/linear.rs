//! `LinearClassifierMixin`: LogisticRegression, LinearSVC, SGDClassifier, RidgeClassifier,
//! Perceptron, PassiveAggressiveClassifier.

use super::{argmax, check_len, expit, n_classes, Dense, Prediction};
use crate::artifact::layout::Data;
use crate::artifact::schema::v3::{Linear as Params, LinearProba};
use crate::artifact::schema::Classes;
use crate::error::{Error, Result};
use crate::vectorize::Row;

/// A validated linear classifier.
#[derive(Debug, Clone)]
pub struct Linear {
    /// scikit-learn class name.
    pub estimator: String,
    /// `classes_`.
    pub classes: Classes,
    /// `coef_`.
    pub coef: Dense,
    intercept: Vec<f64>,
    proba: LinearProba,
}

impl Linear {
    /// Checks shapes: one row for two classes, else one row per class.
    pub fn new(p: Params, n_features: u64, data: &Data) -> Result<Self> {
        let coef = Dense::new(p.coef, n_features, data, "coef")?;
        check_len(&p.intercept, coef.rows(), "intercept")?;
        let k = n_classes(&p.classes);
        let rows_ok = if k == 2 {
            coef.rows() == 1
        } else {
            k > 2 && coef.rows() == k
        };
        if !rows_ok {
            return Err(Error::Corrupt(format!(
                "{} coef rows for {k} classes",
                coef.rows()
            )));
        }
        // A softmax gives one probability per row: a binary model's one row would give one for
        // two classes (scikit-learn's binary models use the logistic).
        if p.proba == LinearProba::Softmax && coef.rows() == 1 {
            return Err(Error::Corrupt(
                "softmax probabilities over one coef row (2 classes)".into(),
            ));
        }
        Ok(Linear {
            estimator: p.estimator,
            classes: p.classes,
            coef,
            intercept: p.intercept,
            proba: p.proba,
        })
    }

    /// Whether the estimator has `predict_proba`.
    pub fn has_proba(&self) -> bool {
        self.proba != LinearProba::None
    }

    /// `decision_function`: `x · coef_.T + intercept_`.
    pub fn decision_function(&self, x: &Row) -> Vec<f64> {
        let mut d = self.coef.dot(x);
        for (v, b) in d.iter_mut().zip(&self.intercept) {
            *v += b;
        }
        d
    }

    /// `predict` (`scores > 0` for one row, else the first argmax) and `predict_proba`.
    pub fn predict(&self, x: &Row) -> Prediction {
        let decision = self.decision_function(x);
        let label = if decision.len() == 1 {
            usize::from(decision[0] > 0.0)
        } else {
            argmax(&decision)
        };
        let proba = self.predict_proba(&decision);
        Prediction {
            label,
            decision,
            proba,
        }
    }

    /// Each kind out of line: V8 compiles a wasm function whole on its first call, and a model's
    /// first `predict` needs only its own kind (the four were 3 KB in one function).
    fn predict_proba(&self, d: &[f64]) -> Option<Vec<f64>> {
        Some(match self.proba {
            LinearProba::None => return None,
            LinearProba::Logistic => logistic(d),
            LinearProba::Softmax => softmax(d),
            LinearProba::OneVsRest => one_vs_rest(d),
            LinearProba::ModifiedHuber => modified_huber(d),
        })
    }
}

/// Binary models (the usual case) do not compile the one-vs-rest path.
#[inline(never)]
fn logistic(d: &[f64]) -> Vec<f64> {
    if let [d] = d {
        let p = expit(*d);
        vec![1.0 - p, p]
    } else {
        logistic_ovr(d)
    }
}

#[inline(never)]
fn logistic_ovr(d: &[f64]) -> Vec<f64> {
    normalize_ovr(d.iter().map(|&v| expit(v)).collect())
}

#[inline(never)]
fn softmax(d: &[f64]) -> Vec<f64> {
    let max = d.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = d.iter().map(|&v| libm::exp(v - max)).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// OneVsRestClassifier.predict_proba: np.divide(Y, Y.sum(axis=1), where=sum != 0).
#[inline(never)]
fn one_vs_rest(d: &[f64]) -> Vec<f64> {
    let mut p: Vec<f64> = d.iter().map(|&v| expit(v)).collect();
    if p.len() == 1 {
        p.insert(0, 1.0 - p[0]);
    }
    let sum: f64 = p.iter().sum();
    if sum != 0.0 {
        p.iter_mut().for_each(|v| *v /= sum);
    }
    p
}

#[inline(never)]
fn modified_huber(d: &[f64]) -> Vec<f64> {
    let p = |v: f64| (v.clamp(-1.0, 1.0) + 1.0) / 2.0;
    if let [d] = d {
        let p1 = p(*d);
        vec![1.0 - p1, p1]
    } else {
        normalize_ovr(d.iter().map(|&v| p(v)).collect())
    }
}

/// One-vs-rest normalisation: divide by the sum; all zeros become uniform.
fn normalize_ovr(mut p: Vec<f64>) -> Vec<f64> {
    let mut sum: f64 = p.iter().sum();
    if sum == 0.0 {
        p.iter_mut().for_each(|v| *v = 1.0);
        sum = p.len() as f64;
    }
    p.iter_mut().for_each(|v| *v /= sum);
    p
}
