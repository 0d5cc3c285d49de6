//! `TextClassifier`: the public entry point, a scikit-learn `Pipeline` of vectorizers (a
//! `FeatureUnion` when several), transforms and a classifier, loaded from artifact bytes.

use std::cell::{OnceCell, RefCell};
use std::ops::Range;
use std::sync::Arc;

use crate::artifact::layout::Data;
use crate::artifact::manifest::Maps;
use crate::artifact::schema::{Classes, Input};
use crate::artifact::{self, schema::Metadata};
use crate::classify::{Classifier, Prediction};
use crate::error::{Error, Quoted, QuotedList, Result};
use crate::text::unicode::Unicode;
use crate::text::Scratch;
use crate::vectorize::{Recent, Row, Transform, Vectorizer, RECENT_BUDGET};

/// Largest text accepted by [`TextClassifier::predict`], in UTF-8 bytes (16 MiB). Work and memory
/// are linear in the text, so the limit only bounds one call's memory (about 40 bytes per byte of
/// text for char n-gram models).
pub const MAX_TEXT_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Buffers {
    scratch: Scratch,
    /// One per vectorizer, allocated at load: the first `predict` pays no set-up.
    recent: Vec<Recent>,
    hits: Vec<u32>,
    row: Row,
}

/// A loaded, validated model.
pub struct TextClassifier {
    /// The metadata with its maps empty, and the maps as their pairs in wire order
    /// (`manifest::Unmapped`): the prediction path never reads them, and `model.info()` sets
    /// the pairs on JS objects without building the maps (6 KB of wasm code in `skedge/lite`).
    head: Metadata,
    maps: Maps,
    /// `head` with its maps, built on first use.
    metadata: OnceCell<Metadata>,
    input: Input,
    vectorizers: Vec<Vectorizer>,
    transforms: Vec<Transform>,
    classifier: Classifier,
    n_features: u64,
    format_version: u16,
    artifact: Arc<Vec<u8>>,
    buffers: RefCell<Buffers>,
}

impl std::fmt::Debug for TextClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextClassifier")
            .field("name", &self.metadata().name)
            .field("estimator", &self.classifier.estimator())
            .finish_non_exhaustive()
    }
}

impl TextClassifier {
    /// Loads an artifact: checks the envelope, decodes the manifest and checks every section's
    /// bounds (FORMAT.md §2). Signatures are not checked and encrypted artifacts are refused: see
    /// [`TextClassifier::from_bytes_with`]. Copies `bytes` once; [`TextClassifier::from_vec_with`]
    /// takes a buffer without copying.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_with(bytes, &artifact::LoadOptions::default())
    }

    /// Loads an artifact with pinned public keys and/or a decryption key (FORMAT.md §3).
    pub fn from_bytes_with(bytes: &[u8], options: &artifact::LoadOptions) -> Result<Self> {
        // The header and declared lengths first: nothing is copied for bytes refused there.
        artifact::parse_with(bytes, options)?;
        Self::from_vec_with(bytes.to_vec(), options)
    }

    /// Loads an artifact, keeping `bytes` as the model's storage: the vocabulary, idf and
    /// weights are read in place, so the work does not grow with the vocabulary beyond the
    /// checksum (and the signature's digest, unless [`artifact::LoadOptions::body_digest`] is
    /// given). A format 2 artifact is converted to format 3 in memory (as slow as format 2 was).
    pub fn from_vec_with(bytes: Vec<u8>, options: &artifact::LoadOptions) -> Result<Self> {
        let owned = artifact::open_owned(bytes, options)?;
        Self::from_v3(owned.artifact, owned.buf, owned.body, owned.version)
    }

    /// Loads a model given as data (tests, and the interchange check of `skedge pack`): lays it
    /// out as format 3 and loads that.
    pub fn from_body(body: artifact::schema::Body) -> Result<Self> {
        let encoded = artifact::layout::encode(&body)?;
        let n = encoded.len();
        let buf = Arc::new(encoded);
        Self::from_v3(buf.clone(), buf, 0..n, artifact::format_version(&body.input))
    }

    fn from_v3(artifact: Arc<Vec<u8>>, buf: Arc<Vec<u8>>, body: Range<usize>, version: u16) -> Result<Self> {
        let (manifest, input, data) = Data::open(buf, body, version)?;
        let unicode =
            Unicode::of(&manifest.metadata.unicode_version).ok_or_else(|| Error::UnsupportedUnicode {
                found: manifest.metadata.unicode_version.clone(),
            })?;
        let pipeline = manifest.pipeline;
        if pipeline.features.is_empty() {
            return Err(Error::Corrupt("pipeline has no vectorizer".into()));
        }
        let mut vectorizers = Vec::with_capacity(pipeline.features.len());
        for f in pipeline.features {
            vectorizers.push(Vectorizer::new(f, &data, unicode)?);
        }
        let width: u64 = vectorizers.iter().map(Vectorizer::n_features).sum();
        if width > u64::from(u32::MAX) {
            return Err(Error::Corrupt(format!("{width} columns exceed u32")));
        }
        let (transforms, width) = crate::vectorize::transforms(pipeline.transforms, width, &data)?;
        let classifier = Classifier::new(pipeline.classifier, width, &data)?;
        Ok(TextClassifier {
            head: manifest.metadata,
            maps: manifest.maps,
            metadata: OnceCell::new(),
            input,
            transforms,
            classifier,
            n_features: width,
            format_version: version,
            buffers: RefCell::new(Buffers {
                recent: {
                    let mut budget = RECENT_BUDGET;
                    vectorizers.iter().map(|v| v.recent(&mut budget)).collect()
                },
                ..Buffers::default()
            }),
            vectorizers,
            artifact,
        })
    }

    /// The artifact's bytes as loaded (for [`TextClassifier::from_body`], the format 3 body).
    pub fn artifact(&self) -> &[u8] {
        &self.artifact
    }

    /// The format version of the artifact as it was read (a format 2 artifact runs converted).
    pub fn format_version(&self) -> u16 {
        self.format_version
    }

    /// Artifact metadata.
    pub fn metadata(&self) -> &Metadata {
        self.metadata
            .get_or_init(|| self.maps.clone().into_metadata(self.head.clone()))
    }

    /// The Unicode the model reads text with: its exporter's Python's (checked at load).
    pub fn unicode(&self) -> Unicode {
        Unicode::of(&self.head.unicode_version).unwrap_or_default()
    }

    /// The metadata with its `provenance` and `metrics` empty, and their pairs in the
    /// artifact's order (a key's last pair is its value): [`TextClassifier::metadata`] without
    /// building the maps.
    pub fn metadata_unmapped(&self) -> (&Metadata, &Maps) {
        (&self.head, &self.maps)
    }

    /// What the pipeline takes: texts, or records `{column: text}` (a `ColumnTransformer` over
    /// one DataFrame column).
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// The DataFrame column the texts come from, for a pipeline fitted on one.
    pub fn input_column(&self) -> Option<&str> {
        match &self.input {
            Input::Text => None,
            Input::Column(c) => Some(c),
        }
    }

    /// The text of a record, as `ColumnTransformer` selects `X[column]` from a one-row frame:
    /// the record must hold exactly the model's column, as a string. `fields` are the record's
    /// keys and values as the binding read them ([`Field`]). A model that takes texts has no
    /// column to select, so a record is refused there too (`INVALID_INPUT` either way).
    pub fn record_text<'a>(&self, fields: &[(String, Field<'a>)]) -> Result<&'a str> {
        record_text(self.input_column(), fields)
    }

    /// `classes_`.
    pub fn classes(&self) -> &Classes {
        self.classifier.classes()
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Number of columns of the row the classifier sees (`n_features_in_` of the classifier:
    /// the vectorizers' columns less what the selections drop).
    pub fn n_features(&self) -> u64 {
        self.n_features
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
        self.transform_into(text, &mut b)?;
        Ok(b.row.clone())
    }

    /// `predict`, `decision_function` and `predict_proba` of one text.
    pub fn predict(&self, text: &str) -> Result<Prediction> {
        check_size(text)?;
        let mut b = self.buffers.borrow_mut();
        self.transform_into(text, &mut b)?;
        Ok(self.classifier.predict(&b.row))
    }

    fn transform_into(&self, text: &str, b: &mut Buffers) -> Result<()> {
        let Buffers {
            scratch,
            recent,
            hits,
            row,
        } = b;
        row.clear();
        let mut offset = 0u32;
        for (v, recent) in self.vectorizers.iter().zip(recent.iter_mut()) {
            v.transform_into(text, scratch, recent, hits, offset, row)?;
            offset += v.n_features() as u32;
        }
        for t in &self.transforms {
            t.apply(row, 0, 0)?;
        }
        Ok(())
    }

    /// The column the classifier sees of column `col` of the concatenated blocks (`None` when a
    /// selection after the union drops it).
    pub fn output_column(&self, col: u32) -> Option<u32> {
        self.transforms.iter().try_fold(col, |c, t| t.forward(c))
    }

    /// The column of the concatenated blocks behind column `col` of the classifier's row.
    pub fn concatenated_column(&self, col: u32) -> Option<u32> {
        self.transforms.iter().rev().try_fold(col, |c, t| t.back(c))
    }
}

/// [`TextClassifier::record_text`] for a model whose input column (`None`: texts) a binding
/// keeps at hand.
pub fn record_text<'a>(column: Option<&str>, fields: &[(String, Field<'a>)]) -> Result<&'a str> {
    let Some(column) = column else {
        return Err(Error::InvalidInput(
            "this model takes a text, not a record: it was fitted on texts, not on a DataFrame column".into(),
        ));
    };
    match fields {
        [(key, value)] if key == column => match value {
            Field::Text(t) => Ok(t),
            Field::Other(kind) => Err(Error::InvalidInput(format!(
                "record field {} must be a string, got {kind}",
                Quoted(column)
            ))),
        },
        _ => {
            let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            Err(Error::InvalidInput(format!(
                "expected a text or a record {{{}: text}} (the model's column), got a record with keys {}",
                Quoted(column),
                QuotedList(&keys)
            )))
        }
    }
}

/// A record's value as a binding read it: a string, or something else (named in the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// A string.
    Text(&'a str),
    /// Any other value: its type, as the host names it (`"a number"`, `"int"`).
    Other(&'a str),
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
