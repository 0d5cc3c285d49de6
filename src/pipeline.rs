//! `TextClassifier`: the public entry point, a scikit-learn `Pipeline` of vectorizers (a
//! `FeatureUnion` when several), transforms and a classifier, loaded from artifact bytes.

use std::cell::RefCell;

use crate::artifact::schema::Classes;
use crate::artifact::{self, schema::Metadata};
use crate::classify::{Classifier, Prediction};
use crate::error::{Error, Result};
use crate::text::Scratch;
use crate::vectorize::{Row, Transform, Vectorizer};

/// Largest text accepted by [`TextClassifier::predict`], in UTF-8 bytes (16 MiB). Work and memory
/// are linear in the text, so the limit only bounds one call's memory (about 40 bytes per byte of
/// text for char n-gram models).
pub const MAX_TEXT_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Buffers {
    scratch: Scratch,
    hits: Row,
    row: Row,
}

/// A loaded, validated model.
pub struct TextClassifier {
    metadata: Metadata,
    vectorizers: Vec<Vectorizer>,
    transforms: Vec<Transform>,
    classifier: Classifier,
    buffers: RefCell<Buffers>,
}

impl std::fmt::Debug for TextClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextClassifier")
            .field("name", &self.metadata.name)
            .field("estimator", &self.classifier.estimator())
            .finish_non_exhaustive()
    }
}

impl TextClassifier {
    /// Loads an artifact: checks the envelope, decodes and validates every shape. Signatures are
    /// not checked and encrypted artifacts are refused: see [`TextClassifier::from_bytes_with`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_body(artifact::from_bytes(bytes)?)
    }

    /// Loads an artifact with pinned public keys and/or a decryption key (FORMAT.md §3).
    pub fn from_bytes_with(bytes: &[u8], options: &artifact::LoadOptions) -> Result<Self> {
        Self::from_body(artifact::from_bytes_with(bytes, options)?)
    }

    /// Validates a decoded body.
    pub fn from_body(body: artifact::schema::Body) -> Result<Self> {
        let pipeline = body.pipeline;
        if pipeline.features.is_empty() {
            return Err(Error::Corrupt("pipeline has no vectorizer".into()));
        }
        let vectorizers = pipeline
            .features
            .into_iter()
            .map(Vectorizer::new)
            .collect::<Result<Vec<_>>>()?;
        let width: u64 = vectorizers.iter().map(Vectorizer::n_features).sum();
        if width > u64::from(u32::MAX) {
            return Err(Error::Corrupt(format!("{width} columns exceed u32")));
        }
        let transforms = pipeline
            .transforms
            .into_iter()
            .map(|t| Transform::new(t, width))
            .collect::<Result<Vec<_>>>()?;
        let classifier = Classifier::new(pipeline.classifier, width)?;
        Ok(TextClassifier {
            metadata: body.metadata,
            vectorizers,
            transforms,
            classifier,
            buffers: RefCell::default(),
        })
    }

    /// Artifact metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// `classes_`.
    pub fn classes(&self) -> &Classes {
        self.classifier.classes()
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The vectorizers, in union order.
    pub fn vectorizers(&self) -> &[Vectorizer] {
        &self.vectorizers
    }

    /// The analyzer output of each vectorizer, like `build_analyzer()(text)`.
    pub fn analyze(&self, text: &str) -> Vec<Vec<String>> {
        self.vectorizers
            .iter()
            .map(|v| v.analyzer.analyze(text))
            .collect()
    }

    /// `pipeline[:-1].transform([text])`: the row the classifier sees.
    pub fn transform(&self, text: &str) -> Result<Row> {
        check_size(text)?;
        let mut b = self.buffers.borrow_mut();
        let Buffers { scratch, hits, row } = &mut *b;
        self.transform_into(text, scratch, hits, row);
        Ok(row.clone())
    }

    /// `predict`, `decision_function` and `predict_proba` of one text.
    pub fn predict(&self, text: &str) -> Result<Prediction> {
        check_size(text)?;
        let mut b = self.buffers.borrow_mut();
        let Buffers { scratch, hits, row } = &mut *b;
        self.transform_into(text, scratch, hits, row);
        Ok(self.classifier.predict(row))
    }

    fn transform_into(&self, text: &str, scratch: &mut Scratch, hits: &mut Row, row: &mut Row) {
        row.clear();
        let mut offset = 0u32;
        for v in &self.vectorizers {
            v.transform_into(text, scratch, hits, offset, row);
            offset += v.n_features() as u32;
        }
        for t in &self.transforms {
            t.apply(row, 0);
        }
    }
}

fn check_size(text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::InputTooLarge {
            bytes: text.len(),
            limit: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}
