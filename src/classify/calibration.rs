//! `CalibratedClassifierCV(method="sigmoid" | "isotonic")` over a linear classifier.

use super::{argmax, expit, n_classes, Linear, Prediction};
use crate::artifact::layout::{f64_at, Data};
use crate::artifact::schema::v3::{Calibrated as Sigmoid, CalibratedIsotonic as IsotonicParams, Isotonic};
use crate::artifact::schema::Classes;
use crate::error::{Error, Result};
use crate::vectorize::Row;

/// The calibrators of one member, one per decision column.
#[derive(Debug, Clone)]
enum Calibrators {
    /// `(a_, b_)` of each `_SigmoidCalibration`.
    Sigmoid(Vec<(f64, f64)>),
    /// `(X_thresholds_, y_thresholds_)` of each `IsotonicRegression(out_of_bounds="clip")`.
    Isotonic(Vec<(Vec<f64>, Vec<f64>)>),
}

/// One `_CalibratedClassifier`.
#[derive(Debug, Clone)]
pub struct Member {
    /// The fitted base estimator.
    pub base: Linear,
    class_indices: Vec<u32>,
    calibrators: Calibrators,
}

/// A validated calibrated classifier.
#[derive(Debug, Clone)]
pub struct Calibrated {
    /// `classes_`.
    pub classes: Classes,
    /// `calibrated_classifiers_`.
    pub members: Vec<Member>,
}

impl Calibrated {
    /// `method="sigmoid"`: checks every member against the classes.
    pub fn sigmoid(p: Sigmoid, n_features: u64, data: &Data) -> Result<Self> {
        let k = check_classes(&p.classes, p.members.len())?;
        let members = p
            .members
            .into_iter()
            .map(|m| {
                let flat: Vec<f64> = m.calibrators.iter().flat_map(|&(a, b)| [a, b]).collect();
                super::check_finite(&flat, "calibrators")?;
                Member::new(
                    m.base,
                    m.class_indices,
                    Calibrators::Sigmoid(m.calibrators),
                    k,
                    n_features,
                    data,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Calibrated {
            classes: p.classes,
            members,
        })
    }

    /// `method="isotonic"`: checks every member against the classes and every calibrator's
    /// thresholds (finite, `x` strictly ascending, as many `y`).
    pub fn isotonic(p: IsotonicParams, n_features: u64, data: &Data) -> Result<Self> {
        let k = check_classes(&p.classes, p.members.len())?;
        let members = p
            .members
            .into_iter()
            .map(|m| {
                let cals = m
                    .calibrators
                    .into_iter()
                    .map(|c| thresholds(c, data))
                    .collect::<Result<Vec<_>>>()?;
                Member::new(
                    m.base,
                    m.class_indices,
                    Calibrators::Isotonic(cals),
                    k,
                    n_features,
                    data,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Calibrated {
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

fn check_classes(classes: &Classes, members: usize) -> Result<usize> {
    let k = n_classes(classes);
    if k < 2 || members == 0 {
        return Err(Error::Corrupt(format!(
            "calibrated classifier with {k} classes and {members} members"
        )));
    }
    Ok(k)
}

fn thresholds(c: Isotonic, data: &Data) -> Result<(Vec<f64>, Vec<f64>)> {
    let read = |s, what: &str| -> Result<Vec<f64>> {
        let b = data.slice(s, 8, what)?;
        let v: Vec<f64> = (0..b.len() / 8).filter_map(|i| f64_at(b.bytes(), i)).collect();
        super::check_finite(&v, what)?;
        Ok(v)
    };
    let (x, y) = (read(c.x, "isotonic x")?, read(c.y, "isotonic y")?);
    if x.is_empty() || x.len() != y.len() || !x.windows(2).all(|w| w[0] < w[1]) {
        return Err(Error::Corrupt(format!(
            "isotonic calibrator with {} x (not strictly ascending or empty) and {} y",
            x.len(),
            y.len()
        )));
    }
    Ok((x, y))
}

/// `IsotonicRegression.predict` with `out_of_bounds="clip"`: `np.clip(t, X_min_, X_max_)`, then
/// scipy's `interp1d(kind="linear")._call_linear` with its exact operations (searchsorted left,
/// index clipped to `[1, n-1]`, `slope * (t - x_lo) + y_lo`); one threshold is a constant.
fn isotonic(x: &[f64], y: &[f64], t: f64) -> f64 {
    let n = x.len();
    if n == 1 {
        return y[0];
    }
    // f64::clamp's own check (min <= max, held by construction) formats floats when it fails:
    // 15 KB of float printing in the wasm for a panic that cannot happen.
    let t = if t < x[0] {
        x[0]
    } else if t > x[n - 1] {
        x[n - 1]
    } else {
        t
    };
    let hi = x.partition_point(|&v| v < t).clamp(1, n - 1);
    let lo = hi - 1;
    let slope = (y[hi] - y[lo]) / (x[hi] - x[lo]);
    slope * (t - x[lo]) + y[lo]
}

impl Member {
    fn new(
        base: crate::artifact::schema::v3::Linear,
        class_indices: Vec<u32>,
        calibrators: Calibrators,
        k: usize,
        n_features: u64,
        data: &Data,
    ) -> Result<Self> {
        if class_indices.iter().any(|&i| i as usize >= k) {
            return Err(Error::Corrupt("calibrated class index out of range".into()));
        }
        Ok(Member {
            base: Linear::new(base, n_features, data)?,
            class_indices,
            calibrators,
        })
    }

    fn calibrate(&self, col: usize, t: f64) -> f64 {
        match &self.calibrators {
            Calibrators::Sigmoid(c) => c.get(col).map_or(0.0, |&(a, b)| expit(-(a * t + b))),
            Calibrators::Isotonic(c) => c.get(col).map_or(0.0, |(x, y)| isotonic(x, y, t)),
        }
    }

    fn n_calibrators(&self) -> usize {
        match &self.calibrators {
            Calibrators::Sigmoid(c) => c.len(),
            Calibrators::Isotonic(c) => c.len(),
        }
    }

    /// `_CalibratedClassifier.predict_proba`.
    fn predict_proba(&self, x: &Row, k: usize) -> Vec<f64> {
        let d = self.base.decision_function(x);
        let mut proba = vec![0.0; k];
        let cols = self.class_indices.len().min(d.len()).min(self.n_calibrators());
        for (col, (&class_idx, &t)) in self.class_indices.iter().zip(&d).enumerate().take(cols) {
            // Binary: the one decision column scores classes_[1].
            let idx = if k == 2 {
                class_idx as usize + 1
            } else {
                class_idx as usize
            };
            if let Some(p) = proba.get_mut(idx) {
                *p = self.calibrate(col, t);
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
