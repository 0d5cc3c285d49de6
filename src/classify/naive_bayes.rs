//! MultinomialNB, ComplementNB, BernoulliNB: the joint log likelihood is `x · coef + intercept`
//! with `coef`/`intercept` computed by numpy at export (FORMAT.md).

use super::{argmax, check_len, n_classes, Dense, Prediction};
use crate::artifact::layout::Data;
use crate::artifact::schema::v3::NaiveBayes as Params;
use crate::artifact::schema::Classes;
use crate::error::{Error, Result};
use crate::vectorize::Row;

/// A validated naive Bayes classifier.
#[derive(Debug, Clone)]
pub struct NaiveBayes {
    /// scikit-learn class name.
    pub estimator: String,
    /// `classes_`.
    pub classes: Classes,
    /// One row per class.
    pub coef: Dense,
    intercept: Option<Vec<f64>>,
    binarize: Option<f64>,
}

impl NaiveBayes {
    /// Checks one row per class.
    pub fn new(p: Params, n_features: u64, data: &Data) -> Result<Self> {
        let coef = Dense::new(p.coef, n_features, data, "coef")?;
        if coef.rows() != n_classes(&p.classes) || coef.rows() < 2 {
            return Err(Error::Corrupt(format!(
                "{} coef rows for {} classes",
                coef.rows(),
                n_classes(&p.classes)
            )));
        }
        if let Some(b) = &p.intercept {
            check_len(b, coef.rows(), "intercept")?;
        }
        Ok(NaiveBayes {
            estimator: p.estimator,
            classes: p.classes,
            coef,
            intercept: p.intercept,
            binarize: p.binarize,
        })
    }

    /// `_joint_log_likelihood`.
    pub fn joint_log_likelihood(&self, x: &Row) -> Vec<f64> {
        let mut jll = match self.binarize {
            Some(t) => self.coef.dot(
                &x.iter()
                    .map(|&(j, v)| (j, if v > t { 1.0 } else { 0.0 }))
                    .collect(),
            ),
            None => self.coef.dot(x),
        };
        if let Some(b) = &self.intercept {
            for (v, b) in jll.iter_mut().zip(b) {
                *v += b;
            }
        }
        jll
    }

    /// `predict` (first argmax of the jll) and `predict_proba` (`exp(jll - logsumexp(jll))`).
    pub fn predict(&self, x: &Row) -> Prediction {
        let jll = self.joint_log_likelihood(x);
        let label = argmax(&jll);
        let max = jll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let shift = if max.is_finite() { max } else { 0.0 };
        let sum: f64 = jll.iter().map(|&v| libm::exp(v - shift)).sum();
        let log_prob_x = libm::log(sum) + shift;
        let proba = jll.iter().map(|&v| libm::exp(v - log_prob_x)).collect();
        Prediction {
            label,
            decision: jll,
            proba: Some(proba),
        }
    }
}
