//! # skedge: scikit-learn text classifiers, bit-exact, at the edge
//!
//! A fitted scikit-learn text pipeline, exported to a compact artifact, runs here with the same
//! tokens, features, decision values and labels as scikit-learn, bit for bit:
//!
//! 1. **normalize** — `str.lower()` and `strip_accents` with Python's Unicode tables ([`text`]);
//! 2. **tokenize** — `token_pattern` with Python's `\w` and `\b`, stop words ([`text`]);
//! 3. **n-grams** — word, `char` and `char_wb` n-grams in scikit-learn's order ([`text`]);
//! 4. **tf × idf** — vocabulary or hashing counts, `binary`, `sublinear_tf`, `idf_` ([`vectorize`]);
//! 5. **norm** — `l1`/`l2` as `sklearn.preprocessing.normalize` sums ([`vectorize`]);
//! 6. **decision** — sparse dot product in ascending column order, then the intercept ([`classify`]);
//! 7. **proba** — expit, softmax, modified Huber, naive Bayes, sigmoid and isotonic calibration, soft
//!    and hard voting ([`classify`]).
//!
//! [`TextClassifier`] ties them together; [`artifact`] reads and writes the bytes (FORMAT.md).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod artifact;
pub mod classify;
pub mod error;
pub mod experiment;
pub mod explain;
pub mod hex;
pub mod integrity;
pub mod interchange;
pub mod monitor;
pub mod pipeline;
pub mod pointer;
#[cfg(feature = "python")]
pub mod python;
pub mod text;
pub mod vectorize;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use classify::Prediction;
pub use error::{Error, Result};
pub use pipeline::{Field, TextClassifier, MAX_TEXT_BYTES};
