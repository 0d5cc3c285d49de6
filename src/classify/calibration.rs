//! `CalibratedClassifierCV(method="sigmoid")` over a linear classifier.

use super::{argmax, expit, n_classes, Linear, Prediction};
use crate::artifact::layout::Data;
use crate::artifact::schema::v3::Calibrated as Params;
use crate::artifact::schema::Classes;
use crate::error::{Error, Result};
use crate::vectorize::Row;

/// One `_CalibratedClassifier`.
#[derive(Debug, Clone)]
pub struct Member {
    /// The fitted base estimator.
    pub base: Linear,
    class_indices: Vec<u32>,
    calibrators: Vec<(f64, f64)>,
}

/// A validated calibrated classifier.
#[derive(Debug, Clone)]
pub struct CalibratedSigmoid {
    /// `classes_`.
    pub classes: Classes,
    /// `calibrated_classifiers_`.
    pub members: Vec<Member>,
}

impl CalibratedSigmoid {
    /// Checks every member against the classes.
    pub fn new(p: Params, n_features: u64, data: &Data) -> Result<Self> {
        let k = n_classes(&p.classes);
        if k < 2 || p.members.is_empty() {
            return Err(Error::Corrupt(format!(
                "calibrated classifier with {k} classes and no members"
            )));
        }
        let members = p
            .members
            .into_iter()
            .map(|m| {
                if m.class_indices.iter().any(|&i| i as usize >= k) {
                    return Err(Error::Corrupt("calibrated class index out of range".into()));
                }
                let flat: Vec<f64> = m.calibrators.iter().flat_map(|&(a, b)| [a, b]).collect();
                super::check_finite(&flat, "calibrators")?;
                Ok(Member {
                    base: Linear::new(m.base, n_features, data)?,
                    class_indices: m.class_indices,
                    calibrators: m.calibrators,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CalibratedSigmoid {
            classes: p.classes,
            members,
        })
    }

    /// `predict_proba` (mean of the members) and `predict` (its first argmax).
    pub fn predict(&self, x: &Row) -> Prediction {
        let k = n_classes(&self.classes);
        let mut mean = vec![0.0; k];
        for m in &self.members {
            for (acc, p) in mean.iter_mut().zip(m.predict_proba(x, k)) {
                *acc += p;
            }
        }
        let n = self.members.len() as f64;
        mean.iter_mut().for_each(|v| *v /= n);
        Prediction {
            label: argmax(&mean),
            decision: mean.clone(),
            proba: Some(mean),
        }
    }
}

impl Member {
    /// `_CalibratedClassifier.predict_proba`.
    fn predict_proba(&self, x: &Row, k: usize) -> Vec<f64> {
        let d = self.base.decision_function(x);
        let mut proba = vec![0.0; k];
        for ((&class_idx, &t), &(a, b)) in self.class_indices.iter().zip(&d).zip(&self.calibrators) {
            // Binary: the one decision column scores classes_[1].
            let idx = if k == 2 {
                class_idx as usize + 1
            } else {
                class_idx as usize
            };
            if let Some(p) = proba.get_mut(idx) {
                *p = expit(-(a * t + b));
            }
        }
        if k == 2 {
            proba[0] = 1.0 - proba[1];
        } else {
            let sum: f64 = proba.iter().sum();
            if sum != 0.0 {
                proba.iter_mut().for_each(|v| *v /= sum);
            } else {
                proba.iter_mut().for_each(|v| *v = 1.0 / k as f64);
            }
        }
        for v in proba.iter_mut() {
            if 1.0 < *v && *v <= 1.0 + 1e-5 {
                *v = 1.0;
            }
        }
        proba
    }
}
