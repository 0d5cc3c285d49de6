//! `VotingClassifier` over linear and naive Bayes estimators.

use super::{argmax, n_classes, Classifier, Prediction};
use crate::artifact::layout::Data;
use crate::artifact::schema::v3::{Voting as Params, VotingEstimator};
use crate::artifact::schema::Classes;
use crate::error::{Error, Result};
use crate::vectorize::Row;

/// A validated voting classifier.
#[derive(Debug, Clone)]
pub struct Voting {
    /// `classes_`.
    pub classes: Classes,
    soft: bool,
    weights: Option<Vec<f64>>,
    /// `estimators_`, each a linear or naive Bayes classifier over the encoded labels.
    pub estimators: Vec<Classifier>,
}

impl Voting {
    /// Checks the estimators (one class per label, `predict_proba` when soft) and the weights
    /// (finite, non-negative, one per estimator, summing to more than 0 when soft).
    pub fn new(p: Params, n_features: u64, data: &Data) -> Result<Self> {
        let k = n_classes(&p.classes);
        if k < 2 || p.estimators.is_empty() {
            return Err(Error::Corrupt(format!(
                "voting classifier with {k} classes and {} estimators",
                p.estimators.len()
            )));
        }
        if let Some(w) = &p.weights {
            super::check_finite(w, "voting weights")?;
            if w.len() != p.estimators.len()
                || w.iter().any(|&x| x < 0.0)
                || (p.soft && pairwise_sum(w) == 0.0)
            {
                return Err(Error::Corrupt(format!(
                    "voting weights: {} for {} estimators, each must be >= 0 (and their sum > 0 when soft)",
                    w.len(),
                    p.estimators.len()
                )));
            }
        }
        let estimators = p
            .estimators
            .into_iter()
            .map(|e| {
                let c = match e {
                    VotingEstimator::Linear(l) => Classifier::Linear(super::Linear::new(l, n_features, data)?),
                    VotingEstimator::NaiveBayes(nb) => {
                        Classifier::NaiveBayes(super::NaiveBayes::new(nb, n_features, data)?)
                    }
                };
                let no_proba = matches!(&c, Classifier::Linear(l) if !l.has_proba());
                if n_classes(c.classes()) != k || (p.soft && no_proba) {
                    return Err(Error::Corrupt(format!(
                        "voting estimator with {} classes for {k} (or without predict_proba under soft voting)",
                        n_classes(c.classes())
                    )));
                }
                Ok(c)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Voting {
            classes: p.classes,
            soft: p.soft,
            weights: p.weights,
            estimators,
        })
    }

    /// Soft: `np.average` of the estimators' `predict_proba` (decision = proba = that average).
    /// Hard: `np.bincount` of their labels weighted (decision = the votes per class, proba none).
    /// The label is the first argmax of the decision, as `np.argmax`.
    pub fn predict(&self, x: &Row) -> Prediction {
        let k = n_classes(&self.classes);
        let weight = |i: usize| self.weights.as_ref().map_or(1.0, |w| w[i]);
        let mut acc = vec![0.0; k];
        for (i, e) in self.estimators.iter().enumerate() {
            let p = e.predict(x);
            if self.soft {
                // np.average: (a * w).sum(axis=0) / w.sum(), the sum over estimators in order;
                // unweighted it is a.mean(axis=0) = a.sum(axis=0) / n.
                let proba = p.proba.unwrap_or_default();
                for (a, v) in acc.iter_mut().zip(proba) {
                    *a += match &self.weights {
                        Some(w) => v * w[i],
                        None => v,
                    };
                }
            } else if let Some(a) = acc.get_mut(p.label) {
                *a += weight(i);
            }
        }
        if !self.soft {
            return Prediction {
                label: argmax(&acc),
                decision: acc,
                proba: None,
            };
        }
        let scale = match &self.weights {
            Some(w) => pairwise_sum(w),
            None => self.estimators.len() as f64,
        };
        acc.iter_mut().for_each(|v| *v /= scale);
        Prediction {
            label: argmax(&acc),
            decision: acc.clone(),
            proba: Some(acc),
        }
    }
}

/// `np.sum` of a contiguous float64 array: numpy's pairwise summation (below 8 values a plain
/// loop; up to 128 eight accumulators folded pairwise, then the rest in order; beyond, halves).
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(-0.0, |s, &v| s + v);
    }
    if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        return res;
    }
    let half = (n / 2) - (n / 2) % 8;
    pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
}
