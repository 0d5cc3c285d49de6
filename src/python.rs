//! The Python surface (`skedge._skedge`, re-exported by the `skedge` package in scripts/skedge/):
//! the only file that touches PyO3, as only src/wasm/ touches JS. It converts values and errors
//! and does host I/O (reading files); everything else is the core's.
//!
//! Errors are `skedge.SkedgeError` with the `code` of [`crate::Error::code`], the same strings as
//! the CLI and the npm package; `predict_batch` adds the failing text's `index`, as JS does.
//!
//! The model is behind a mutex (the core reuses its buffers between texts): every call takes it
//! with the GIL released, so a long batch never blocks other Python threads, and a thread waiting
//! for the model never holds the GIL.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFrozenSet, PyList, PyMemoryView, PySet, PyString};
use sha2::{Digest, Sha256};

use crate::artifact::crypto::{decode_key, KeyKind, KEY_LEN};
use crate::artifact::schema::Classes;
use crate::artifact::LoadOptions;
use crate::classify::n_classes;
use crate::error::Quoted;
use crate::{Error, Field, Prediction, TextClassifier, MAX_TEXT_BYTES};

create_exception!(
    skedge,
    SkedgeError,
    PyException,
    "An error of skedge. `code` is the stable machine-readable code (`ARTIFACT_CORRUPT`, \
     `SIGNATURE_INVALID`, `INPUT_TOO_LARGE`, `INVALID_INPUT`, ...: the CLI's and the npm \
     package's); `index` is the position of the failing text in `predict_batch`, else None."
);

fn error(code: &str, message: String, index: Option<usize>) -> PyErr {
    Python::attach(|py| {
        let e = SkedgeError::new_err(message);
        let value = e.value(py);
        // Setting attributes on a fresh exception instance cannot fail short of memory.
        let _ = value.setattr("code", code);
        let _ = value.setattr("index", index);
        e
    })
}

fn core_error(e: Error) -> PyErr {
    error(e.code(), e.to_string(), None)
}

fn invalid(message: String) -> PyErr {
    error("INVALID_INPUT", message, None)
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string())
}

/// The longest `repr` a message shows of a caller's value: past it, its type is shown instead.
const SHOWN_REPR_CHARS: usize = 64;

/// A caller's value in a message, bounded whatever its size: a `str` quoted (and truncated) by
/// [`Quoted`], another value as its `repr` when that is short, else its type.
fn shown(v: &Bound<'_, PyAny>) -> String {
    if let Ok(s) = v.cast::<PyString>() {
        return Quoted(&s.to_string_lossy()).to_string();
    }
    match v.repr() {
        Ok(r) => {
            let r = r.to_string_lossy();
            match r.chars().nth(SHOWN_REPR_CHARS) {
                None => r.into_owned(),
                Some(_) => type_name(v),
            }
        }
        Err(_) => type_name(v),
    }
}

/// A path in a message (an `IO` or `KEY_INVALID` error), bounded as any quoted string.
fn shown_path(path: &std::path::Path) -> String {
    Quoted(&path.to_string_lossy()).to_string()
}

/// A `str` argument, borrowed from the Python object (no copy; safe to read without the GIL).
fn text_of(v: &Bound<'_, PyAny>, what: &str) -> PyResult<PyBackedStr> {
    text_or(v, || what.to_owned())
}

/// [`text_of`], naming the argument only when it is refused: a record's field name is formatted
/// on that path alone, not for every value read.
fn text_or(v: &Bound<'_, PyAny>, what: impl FnOnce() -> String) -> PyResult<PyBackedStr> {
    if !v.is_instance_of::<PyString>() {
        if let Some(kind) = missing(v) {
            return Err(invalid(format!(
                "{} is a missing value ({kind}), not a str: drop or fill the missing values first",
                what()
            )));
        }
        return Err(invalid(format!("{} must be a str, got {}", what(), type_name(v))));
    }
    // Fails only for a lone surrogate, which has no UTF-8 form (the CLI refuses non-UTF-8 too).
    v.extract::<PyBackedStr>()
        .map_err(|_| invalid(format!("{} is not valid Unicode (a lone surrogate)", what())))
}

/// What a missing value is, when `v` is one: None, a NaN (how pandas and numpy hold a missing
/// text: `pd.Series(["a", None])[1]`), or pandas' `NA` / `NaT`. Only asked of a value already
/// refused.
fn missing(v: &Bound<'_, PyAny>) -> Option<&'static str> {
    if v.is_none() {
        return Some("None");
    }
    if !is_bool(v) && v.extract::<f64>().is_ok_and(f64::is_nan) {
        return Some("NaN");
    }
    match type_name(v).as_str() {
        "NAType" => Some("pandas.NA"),
        "NaTType" => Some("pandas.NaT"),
        _ => None,
    }
}

/// A numpy bool has no `bool` base class, but its type has that name; either would otherwise be
/// read as 0 or 1.
fn is_bool(v: &Bound<'_, PyAny>) -> bool {
    v.is_instance_of::<PyBool>() || type_name(v) == "bool"
}

/// An int argument that fits `T`: a bool, a float or an int out of `T`'s range is refused,
/// `range` saying which ints are taken.
fn int_of<'py, T>(v: &Bound<'py, PyAny>, what: &str, range: &str) -> PyResult<T>
where
    T: for<'a> FromPyObject<'a, 'py>,
{
    match is_bool(v) {
        false => v.extract::<T>().ok(),
        true => None,
    }
    .ok_or_else(|| invalid(format!("{what} must be an int {range}, got {}", shown(v))))
}

/// A float argument (an int is taken as its value), not NaN; the core checks its range.
fn float_of(v: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    match is_bool(v) || v.is_instance_of::<PyString>() {
        false => v.extract::<f64>().ok().filter(|x| !x.is_nan()),
        true => None,
    }
    .ok_or_else(|| invalid(format!("{what} must be a number, got {}", shown(v))))
}

/// A file path (`str` or `os.PathLike`); `kinds` names what else the argument may be.
fn path_of(v: &Bound<'_, PyAny>, what: &str, kinds: &str) -> PyResult<PathBuf> {
    match v.extract::<PathBuf>() {
        // The OS would refuse it as `IO`; it is the argument that is wrong.
        Ok(path) if path.as_os_str().as_encoded_bytes().contains(&0) => {
            Err(invalid(format!("{what} {} contains a NUL character", shown(v))))
        }
        Ok(path) => Ok(path),
        // A str or a path whose text has no file system form: a lone surrogate outside
        // surrogateescape's range.
        Err(_) if v.is_instance_of::<PyString>() || v.hasattr("__fspath__").unwrap_or(false) => Err(invalid(
            format!("{what} {} is not a file name (a lone surrogate?)", shown(v)),
        )),
        Err(_) => Err(invalid(format!("{what} must be {kinds}, got {}", type_name(v)))),
    }
}

/// A loaded skedge model: an exported scikit-learn text pipeline whose labels and decision
/// values equal scikit-learn's bit for bit (probabilities within 1e-12).
///
/// Load with `Model.load(path)` or `Model.from_bytes(data)`; both take `public_key=` (pin one
/// key or a list of keys: the artifact must be signed by one of them) and `decryption_key=`
/// for encrypted artifacts. A key is its key file text (`str`), its 32 raw bytes, or the path
/// of its key file (`pathlib.Path`). A model may be shared between threads: calls on one model
/// run one at a time, with the GIL released. It pickles (`copy`, joblib, multiprocessing) as its
/// artifact's bytes and the public keys it was loaded with; an encrypted model does not.
#[pyclass(frozen, module = "skedge")]
pub struct Model {
    inner: Mutex<TextClassifier>,
    classes: Classes,
    input_column: Option<String>,
    sha256: OnceLock<[u8; 32]>,
    bytes: usize,
    /// The keys it was loaded with, for a pickle to verify again (`__reduce__`).
    public_keys: Vec<[u8; KEY_LEN]>,
    /// Loaded with a decryption key: never pickled, which would write the key in clear.
    encrypted: bool,
}

impl Model {
    fn lock(&self) -> MutexGuard<'_, TextClassifier> {
        // The core holds no invariant across a panic: its buffers are cleared on each use.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A model of `bytes`, read from a file of `file_len` bytes when they come from one (its
    /// trailing bytes are then counted in the file, which was read one byte past the artifact).
    fn open(py: Python<'_>, bytes: Vec<u8>, file_len: Option<u64>, keys: LoadOptions) -> PyResult<Model> {
        let len = bytes.len();
        let inner = py
            .detach(|| TextClassifier::from_vec_with(bytes, &keys))
            .map_err(|e| match file_len {
                Some(file_len) => crate::artifact::in_file(e, len, file_len),
                None => e,
            })
            .map_err(core_error)?;
        Ok(Model {
            classes: inner.classes().clone(),
            input_column: inner.input_column().map(str::to_owned),
            inner: Mutex::new(inner),
            sha256: OnceLock::new(),
            bytes: len,
            encrypted: keys.decryption_key.is_some(),
            public_keys: keys.public_keys,
        })
    }

    /// The text of an input: a `str`, or for a model fitted on a DataFrame column a `dict`
    /// `{column: text}` (the core decides what a record must hold).
    fn input_of(&self, v: &Bound<'_, PyAny>, what: &str) -> PyResult<PyBackedStr> {
        let Ok(record) = v.cast::<PyDict>() else {
            if let (Some(column), false) = (&self.input_column, v.is_instance_of::<PyString>()) {
                return Err(invalid(format!(
                    "{what} must be a str or a dict {{{}: str}}, got {}",
                    Quoted(column),
                    type_name(v)
                )));
            }
            return text_of(v, what);
        };
        let mut keys = Vec::with_capacity(record.len());
        let mut values = Vec::with_capacity(record.len());
        // A copy of the items: `repr` of a key runs Python code, which may change the dict, and
        // iterating a dict that changed size panics.
        for item in record.items().iter() {
            let (k, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            let key = match k.cast::<PyString>() {
                Ok(s) => s.to_string_lossy().into_owned(),
                // Not a str: the record is refused, its key shown as `shown` bounds it.
                Err(_) => shown(&k),
            };
            values.push(match value.is_instance_of::<PyString>() {
                true => Ok(text_or(&value, || format!("{what}[{}]", Quoted(&key)))?),
                false => Err(match missing(&value) {
                    Some(kind) => format!("a missing value ({kind})"),
                    None => type_name(&value),
                }),
            });
            keys.push(key);
        }
        let fields: Vec<(String, Field)> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| {
                let value = match v {
                    Ok(t) => Field::Text(t),
                    Err(kind) => Field::Other(kind),
                };
                (k.clone(), value)
            })
            .collect();
        crate::pipeline::record_text(self.input_column.as_deref(), &fields)
            .map_err(|e| invalid(format!("{what}: {e}")))?;
        // Accepted: the record holds one field, a str.
        match values.into_iter().next() {
            Some(Ok(text)) => Ok(text),
            _ => Err(invalid(format!("{what}: not a record of one str"))),
        }
    }

    fn label<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        Ok(match &self.classes {
            Classes::Int(v) => v
                .get(i)
                .copied()
                .unwrap_or_default()
                .into_pyobject(py)?
                .into_any(),
            Classes::Str(v) => PyString::new(py, v.get(i).map_or("", String::as_str)).into_any(),
        })
    }

    fn classes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            (0..n_classes(&self.classes))
                .map(|i| self.label(py, i))
                .collect::<PyResult<Vec<_>>>()?,
        )
    }

    fn prediction<'py>(&self, py: Python<'py>, p: &Prediction) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("label", self.label(py, p.label)?)?;
        d.set_item("decision", &p.decision)?;
        d.set_item("proba", p.proba.as_ref())?;
        Ok(d)
    }
}

#[pymethods]
impl Model {
    /// Reads and loads an artifact file (`skedge pack`'s output): checks the envelope and the
    /// checksum, the signature when a public key is pinned, decrypts with `decryption_key`.
    #[staticmethod]
    #[pyo3(signature = (path, *, public_key=None, decryption_key=None))]
    fn load(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        public_key: Option<&Bound<'_, PyAny>>,
        decryption_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Model> {
        let path = path_of(path, "path", "a str or os.PathLike")?;
        let keys = load_options(public_key, decryption_key)?;
        let (bytes, file_len) = py.detach(|| read(&path))?;
        Model::open(py, bytes, Some(file_len), keys)
    }

    /// Loads an artifact from its bytes (`bytes`, `bytearray` or `memoryview`), with the checks
    /// and keys of `Model.load`.
    #[staticmethod]
    #[pyo3(signature = (data, *, public_key=None, decryption_key=None))]
    fn from_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        public_key: Option<&Bound<'_, PyAny>>,
        decryption_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Model> {
        let keys = load_options(public_key, decryption_key)?;
        Model::open(py, bytes_of(data, "data")?, None, keys)
    }

    /// `predict`, `decision_function` and `predict_proba` of one text (or, for a model fitted on
    /// a DataFrame column, `info()["input_column"]`, the record `{column: text}`), as the CLI
    /// prints them:
    /// `{"label": int | str, "decision": [float, ...], "proba": [float, ...] | None}`.
    fn predict<'py>(&self, py: Python<'py>, text: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let text = self.input_of(text, "text")?;
        let p = py.detach(|| self.lock().predict(&text)).map_err(core_error)?;
        self.prediction(py, &p)
    }

    /// `predict` of every text of a list (or any iterable of str, or of records), in one call with the GIL
    /// released: `{"label": [label, ...], "decision": ndarray, "proba": ndarray | None}`, the
    /// keys of `predict` stacked by row. `decision` is float64 of shape (n, width) (width 1 for a
    /// binary linear model: `decision[:, 0]` is scikit-learn's `decision_function`), `proba`
    /// float64 of shape (n, n_classes), new arrays the caller may write. The first failing text
    /// raises `SkedgeError` with its `index`; a dict, a set or a DataFrame is refused (their
    /// iteration is not the rows meant).
    fn predict_batch<'py>(&self, py: Python<'py>, texts: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        if texts.is_instance_of::<PyString>() || texts.is_instance_of::<PyBytes>() {
            return Err(invalid(format!(
                "texts must be a list of str, got {}",
                type_name(texts)
            )));
        }
        // Iterables whose items are not the rows meant: a pandas DataFrame gives its column names,
        // a dict its keys, a set no order for the rows of the result.
        let hint = if type_name(texts) == "DataFrame" {
            Some("a DataFrame: pass df[column], or df.to_dict(\"records\") for a model fitted on a DataFrame")
        } else if texts.is_instance_of::<PyDict>() {
            Some("a dict (its iteration gives its keys): pass list(d.values()), or [d] for one record")
        } else if texts.is_instance_of::<PySet>() || texts.is_instance_of::<PyFrozenSet>() {
            Some("a set (it has no order to give the rows of the result): pass a list")
        } else {
            None
        };
        if let Some(hint) = hint {
            return Err(invalid(format!(
                "texts must be a list of str or records, got {hint}"
            )));
        }
        let items = texts
            .try_iter()
            .map_err(|_| invalid(format!("texts must be a list of str, got {}", type_name(texts))))?;
        let mut batch = Vec::new();
        for (i, item) in items.enumerate() {
            let text = self
                .input_of(&item?, &format!("texts[{i}]"))
                .map_err(|e| with_index(py, e, i))?;
            batch.push(text);
        }
        let n = batch.len();
        let (labels, decision, proba, width) = py
            .detach(|| -> Result<_, (usize, Error)> {
                let model = self.lock();
                let mut labels = Vec::with_capacity(n);
                let (mut decision, mut proba) = (Vec::new(), None::<Vec<f64>>);
                for (i, text) in batch.iter().enumerate() {
                    let p = model.predict(text).map_err(|e| (i, e))?;
                    if i == 0 {
                        decision.reserve_exact(n * p.decision.len());
                        proba = p.proba.as_ref().map(|q| Vec::with_capacity(n * q.len()));
                    }
                    labels.push(p.label);
                    decision.extend_from_slice(&p.decision);
                    if let (Some(all), Some(q)) = (&mut proba, &p.proba) {
                        all.extend_from_slice(q);
                    }
                }
                // The decision width of the model: from the first row, or from the empty text.
                let width = match n {
                    0 => {
                        let p = model.predict("").map_err(|e| (0, e))?;
                        proba = p.proba.map(|_| Vec::new());
                        p.decision.len()
                    }
                    _ => decision.len() / n,
                };
                Ok((labels, decision, proba, width))
            })
            .map_err(|(i, e)| error(e.code(), format!("texts[{i}]: {e}"), Some(i)))?;
        let numpy = py.import("numpy")?;
        let matrix = |values: &[f64], columns: usize| -> PyResult<Bound<'py, PyAny>> {
            let buffer = PyByteArray::new_with(py, values.len() * 8, |out| {
                for (chunk, v) in out.chunks_exact_mut(8).zip(values) {
                    chunk.copy_from_slice(&v.to_ne_bytes());
                }
                Ok(())
            })?;
            // A writable array over the bytearray, which nothing else holds: the values are
            // copied once, here, and the caller owns them.
            numpy
                .call_method1("frombuffer", (buffer, "float64"))?
                .call_method1("reshape", ((n, columns),))
        };
        let out = PyDict::new(py);
        // One object per class, shared by the rows that have it.
        let classes = self.classes(py)?;
        let labels = labels
            .iter()
            .map(|&l| classes.get_item(l))
            .collect::<PyResult<Vec<_>>>()?;
        out.set_item("label", PyList::new(py, labels)?)?;
        out.set_item("decision", matrix(&decision, width)?)?;
        let k = n_classes(&self.classes);
        out.set_item("proba", proba.map(|p| matrix(&p, k)).transpose()?)?;
        Ok(out)
    }

    /// The prediction (the keys of `predict`) and the `k` features that moved the predicted
    /// class's decision most: `{"label", "decision", "proba", "row", "features": [{"term",
    /// "terms", "column", "block", "value", "weights", "contributions", "spans"}, ...]}`.
    /// `row` is the decision row ranked by; `spans` are `(start, end)` indices into `text`
    /// (`text[start:end]` is where the feature was found).
    #[pyo3(signature = (text, k=None), text_signature = "($self, text, k=10)")]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        k: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let text = self.input_of(text, "text")?;
        let k = match k {
            None => 10,
            Some(k) => explain_k(k)?,
        };
        let (p, features, row) = py
            .detach(|| {
                let model = self.lock();
                let p = model.predict(&text)?;
                let features = model.explain(&text, k)?;
                let row = model.explained_row(p.label);
                Ok((p, features, row))
            })
            .map_err(core_error)?;
        let index = CodePoints::new(&text, features.iter().flat_map(|c| &c.spans));
        let out = self.prediction(py, &p)?;
        out.set_item("row", row)?;
        let list = PyList::empty(py);
        for c in &features {
            let f = PyDict::new(py);
            f.set_item("term", c.terms.first().map_or("", String::as_str))?;
            f.set_item("terms", &c.terms)?;
            f.set_item("column", c.column)?;
            f.set_item("block", c.block)?;
            f.set_item("value", c.value)?;
            f.set_item("weights", &c.weights)?;
            f.set_item("contributions", &c.contributions)?;
            let spans: Vec<(usize, usize)> =
                c.spans.iter().map(|&(s, e)| (index.of(s), index.of(e))).collect();
            f.set_item("spans", spans)?;
            list.append(f)?;
        }
        out.set_item("features", list)?;
        Ok(out)
    }

    /// The artifact's metadata: name, version, classes, estimator, n_features, sha256, bytes,
    /// format_version, input_column (the DataFrame column of a `ColumnTransformer` pipeline, else
    /// None), the versions it was exported with, precision, agreement, metrics, provenance and
    /// max_text_bytes (the keys of the npm package's `info()` but `integrity`, in snake case).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (m, estimator, n_features, format_version, digest) = py.detach(|| {
            let model = self.lock();
            let digest = *self
                .sha256
                .get_or_init(|| Sha256::digest(model.artifact()).into());
            let m = model.metadata().clone();
            let n_features: u64 = model.vectorizers().iter().map(|v| v.n_features()).sum();
            let estimator = model.classifier().estimator().to_owned();
            (m, estimator, n_features, model.format_version(), digest)
        });
        let d = PyDict::new(py);
        d.set_item("name", &m.name)?;
        d.set_item("version", &m.version)?;
        d.set_item("classes", self.classes(py)?)?;
        d.set_item("estimator", estimator)?;
        d.set_item("n_features", n_features)?;
        d.set_item("sha256", crate::hex::encode(&digest))?;
        d.set_item("bytes", self.bytes)?;
        d.set_item("format_version", format_version)?;
        d.set_item("input_column", self.input_column.as_deref())?;
        d.set_item("skedge_version", &m.skedge_version)?;
        d.set_item("sklearn_version", &m.sklearn_version)?;
        d.set_item("python_version", &m.python_version)?;
        d.set_item("numpy_version", &m.numpy_version)?;
        d.set_item("unicode_version", &m.unicode_version)?;
        d.set_item("source_sha256", &m.source_sha256)?;
        d.set_item("created", &m.created)?;
        d.set_item("precision", m.precision.name())?;
        let agreement = match &m.agreement {
            Some(a) => {
                let a_d = PyDict::new(py);
                a_d.set_item("texts", a.texts)?;
                a_d.set_item("label_changes", a.label_changes)?;
                a_d.set_item("max_abs_decision_diff", a.max_abs_decision_diff)?;
                a_d.set_item("max_abs_proba_diff", a.max_abs_proba_diff)?;
                Some(a_d)
            }
            None => None,
        };
        d.set_item("agreement", agreement)?;
        d.set_item("metrics", &m.metrics)?;
        d.set_item("provenance", &m.provenance)?;
        d.set_item("max_text_bytes", MAX_TEXT_BYTES)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        py.detach(|| {
            let model = self.lock();
            let m = model.metadata();
            format!(
                "<skedge.Model {} version {}: {}, {} classes>",
                Quoted(&m.name),
                Quoted(&m.version),
                model.classifier().estimator(),
                n_classes(&self.classes)
            )
        })
    }

    /// A pickle (and `copy.copy`, `copy.deepcopy`, joblib's and multiprocessing's transfers) is
    /// the artifact's bytes and the public keys it was loaded with: unpickling loads the bytes
    /// again, verifying the signature again, so a copy is the same model with its own lock. An
    /// encrypted model is refused (`NOT_PICKLABLE`): its pickle would hold the decryption key in
    /// clear.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        let py = slf.py();
        let this = slf.get();
        if this.encrypted {
            return Err(error(
                "NOT_PICKLABLE",
                "an encrypted model is not pickled: the pickle would hold its decryption key in \
                 clear. Send the artifact's bytes instead and load them where they are used with \
                 that process's own key: Model.from_bytes(data, decryption_key=key)"
                    .into(),
                None,
            ));
        }
        let data = PyBytes::new_with(py, this.bytes, |out| {
            py.detach(|| {
                let model = this.lock();
                let artifact = model.artifact();
                // The same length: `bytes` is the artifact's, kept at load.
                let n = out.len().min(artifact.len());
                out[..n].copy_from_slice(&artifact[..n]);
            });
            Ok(())
        })?;
        let keys = PyList::new(py, this.public_keys.iter().map(|k| PyBytes::new(py, k)))?;
        Ok((slf.get_type().getattr("_unpickle")?, (data, keys)))
    }

    /// The other half of `__reduce__`: the artifact's bytes and the public keys pinned (32-byte
    /// `bytes` each, none for an unpinned model).
    #[staticmethod]
    fn _unpickle(py: Python<'_>, data: &Bound<'_, PyAny>, public_keys: &Bound<'_, PyAny>) -> PyResult<Model> {
        let pinned = match public_keys.len()? {
            0 => None,
            _ => Some(public_keys),
        };
        let keys = load_options(pinned, None)?;
        Model::open(py, bytes_of(data, "data")?, None, keys)
    }
}

/// What `Model.__reduce__` returns: `Model._unpickle` and its arguments (the bytes, the keys).
type Reduced<'py> = (Bound<'py, PyAny>, (Bound<'py, PyBytes>, Bound<'py, PyList>));

/// `explain`'s `k`: an int from 1 to 2**32 - 1, as the npm package takes it and in its words (a
/// bool, a float, 0 or 2**32 are refused, not read as something else).
fn explain_k(k: &Bound<'_, PyAny>) -> PyResult<usize> {
    match is_bool(k) {
        false => k.extract::<u32>().ok().filter(|&n| n >= 1),
        true => None,
    }
    .map(|n| n as usize)
    .ok_or_else(|| {
        invalid(format!(
            "k must be an integer from 1 to {}, got {}",
            u32::MAX,
            shown(k)
        ))
    })
}

/// Maps UTF-16 offsets (the core's spans, as JS indexes strings) to code point offsets (Python's
/// `str` indices), for the few offsets an explanation uses.
struct CodePoints {
    /// (UTF-16 offset, code point offset), ascending; empty when the two agree (no character
    /// outside the Basic Multilingual Plane).
    map: Vec<(u32, usize)>,
}

impl CodePoints {
    fn new<'a>(text: &str, spans: impl Iterator<Item = &'a (u32, u32)>) -> Self {
        if !text.chars().any(|c| c.len_utf16() == 2) {
            return CodePoints { map: Vec::new() };
        }
        let mut wanted: Vec<u32> = spans.flat_map(|&(s, e)| [s, e]).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut map = Vec::with_capacity(wanted.len());
        let mut want = wanted.into_iter().peekable();
        let mut units = 0u32;
        for (points, c) in text.chars().chain(std::iter::once('\0')).enumerate() {
            while want.next_if(|&w| w <= units).is_some() {
                map.push((units, points));
            }
            units += c.len_utf16() as u32;
        }
        CodePoints { map }
    }

    fn of(&self, units: u32) -> usize {
        if self.map.is_empty() {
            return units as usize;
        }
        match self.map.binary_search_by_key(&units, |&(u, _)| u) {
            Ok(i) => self.map[i].1,
            Err(i) => self.map.get(i.saturating_sub(1)).map_or(0, |&(_, p)| p),
        }
    }
}

/// Champion and challenger on the same production text (FORMAT.md §4, experiment snapshots):
/// ``mode="shadow"`` serves the champion and also scores a ``sample_rate`` sample with the
/// challenger; ``mode="canary"`` serves the challenger to a sticky ``share`` of keys (a hash of
/// ``key``, the same as the npm package's). ``feedback(id, label)`` counts the true label of a
/// prediction (the last ``feedback_capacity`` are remembered); ``snapshot()`` closes the window
/// and returns it as a dict. Any keyword argument may be None, for its default. Thread-safe:
/// calls run one at a time.
#[pyclass(frozen, module = "skedge")]
pub struct Experiment {
    inner: Mutex<crate::experiment::Experiment>,
    champion: Py<Model>,
    challenger: Py<Model>,
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

impl Model {
    /// Sha256 of the artifact bytes, computed on first use.
    fn digest(&self, model: &TextClassifier) -> [u8; 32] {
        *self
            .sha256
            .get_or_init(|| Sha256::digest(model.artifact()).into())
    }
}

/// Runs `f` with both arms' models and artifact hashes (one lock when both arms are the same
/// `Model`).
fn with_arms<T>(
    champion: &Model,
    challenger: &Model,
    f: impl FnOnce(crate::experiment::ArmModel<'_>, crate::experiment::ArmModel<'_>) -> T,
) -> T {
    use crate::experiment::ArmModel;
    if std::ptr::eq(champion, challenger) {
        let cm = champion.lock();
        let cs = champion.digest(&cm);
        return f(
            ArmModel {
                model: &cm,
                sha256: &cs,
            },
            ArmModel {
                model: &cm,
                sha256: &cs,
            },
        );
    }
    // Both locked in one order, the models' addresses, whichever arm each is: two experiments
    // with their arms swapped, on two threads, would otherwise wait for each other for ever.
    let (cm, hm) = match (champion as *const Model) < (challenger as *const Model) {
        true => {
            let cm = champion.lock();
            (cm, challenger.lock())
        }
        false => {
            let hm = challenger.lock();
            (champion.lock(), hm)
        }
    };
    let cs = champion.digest(&cm);
    let hs = challenger.digest(&hm);
    f(
        ArmModel {
            model: &cm,
            sha256: &cs,
        },
        ArmModel {
            model: &hm,
            sha256: &hs,
        },
    )
}

impl Experiment {
    fn lock(&self) -> MutexGuard<'_, crate::experiment::Experiment> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The text of `predict`'s input, as `Model.predict` reads it. The core scores one text with
    /// both arms, so a record is read only when the arms take the same column.
    fn input_of(&self, v: &Bound<'_, PyAny>) -> PyResult<PyBackedStr> {
        let (champion, challenger) = (self.champion.get(), self.challenger.get());
        if champion.input_column == challenger.input_column || v.is_instance_of::<PyString>() {
            return champion.input_of(v, "text");
        }
        if !v.is_instance_of::<PyDict>() {
            return text_of(v, "text");
        }
        let takes = |m: &Model| match &m.input_column {
            Some(column) => format!("records {{{}: str}}", Quoted(column)),
            None => "texts only".to_owned(),
        };
        Err(invalid(format!(
            "text: a record, but the arms take different inputs (champion: {}, challenger: {}): \
             pass the str",
            takes(champion),
            takes(challenger)
        )))
    }
}

/// A number argument ([`float_of`]) for which `ok` holds, `range` saying which: an experiment's
/// ranges are checked here, so that the message names the Python argument (`sample_rate`), not
/// the core's field or the npm package's option.
fn ranged(v: &Bound<'_, PyAny>, what: &str, ok: fn(f64) -> bool, range: &str) -> PyResult<f64> {
    let n = float_of(v, what)?;
    match ok(n) {
        true => Ok(n),
        false => Err(invalid(format!(
            "{what} must be a number {range}, got {}",
            shown(v)
        ))),
    }
}

/// An experiment's arm: a `Model`.
fn arm_of(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Py<Model>> {
    v.cast::<Model>()
        .map(|m| m.clone().unbind())
        .map_err(|_| invalid(format!("{what} must be a skedge.Model, got {}", type_name(v))))
}

#[pymethods]
impl Experiment {
    #[new]
    #[pyo3(
        signature = (champion, challenger, *, mode=None, sample_rate=None, share=None, salt=None, window_seconds=None, seed=None, feedback_capacity=None),
        text_signature = "(champion, challenger, *, mode='shadow', sample_rate=None, share=None, salt='', window_seconds=None, seed=None, feedback_capacity=10000)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        champion: &Bound<'_, PyAny>,
        challenger: &Bound<'_, PyAny>,
        mode: Option<&Bound<'_, PyAny>>,
        sample_rate: Option<&Bound<'_, PyAny>>,
        share: Option<&Bound<'_, PyAny>>,
        salt: Option<&Bound<'_, PyAny>>,
        window_seconds: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        feedback_capacity: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Experiment> {
        use crate::experiment::{ExperimentConfig, Mode, DEFAULT_FEEDBACK_CAPACITY, MAX_FEEDBACK_CAPACITY};
        let champion = arm_of(champion, "champion")?;
        let challenger = arm_of(challenger, "challenger")?;
        let mode = match mode {
            None => Mode::Shadow,
            Some(v) => match v.cast::<PyString>().ok().and_then(|s| s.to_str().ok()) {
                Some("shadow") => Mode::Shadow,
                Some("canary") => Mode::Canary,
                _ => {
                    return Err(invalid(format!(
                        "mode must be \"shadow\" or \"canary\", got {}",
                        shown(v)
                    )))
                }
            },
        };
        // The ranges are checked here, so that a message names the Python argument.
        let unit = |n: f64| (0.0..=1.0).contains(&n);
        let sample_rate = sample_rate
            .map(|v| ranged(v, "sample_rate", unit, "in [0, 1]"))
            .transpose()?;
        let share = share.map(|v| ranged(v, "share", unit, "in [0, 1]")).transpose()?;
        match (mode, sample_rate, share) {
            (Mode::Shadow, _, Some(_)) => return Err(invalid("share is for mode=\"canary\"".into())),
            (Mode::Canary, Some(_), _) => return Err(invalid("sample_rate is for mode=\"shadow\"".into())),
            (Mode::Canary, _, None) => return Err(invalid("mode=\"canary\" needs share in [0, 1]".into())),
            _ => {}
        }
        let salt = match salt {
            None => String::new(),
            Some(v) => text_of(v, "salt")?.to_string(),
        };
        let window_seconds = window_seconds
            .map(|v| ranged(v, "window_seconds", |n| n.is_finite() && n >= 0.001, "≥ 0.001"))
            .transpose()?;
        let seed = match seed {
            Some(v) => int_of::<u64>(v, "seed", "in [0, 2**64)")?,
            None => {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u64(now_ms().to_bits());
                h.finish()
            }
        };
        let feedback_capacity = match feedback_capacity {
            None => DEFAULT_FEEDBACK_CAPACITY,
            Some(v) => {
                let range = format!("in [1, {MAX_FEEDBACK_CAPACITY}]");
                let n = int_of::<usize>(v, "feedback_capacity", &range)?;
                if !(1..=MAX_FEEDBACK_CAPACITY).contains(&n) {
                    return Err(invalid(format!(
                        "feedback_capacity must be an int {range}, got {}",
                        shown(v)
                    )));
                }
                n
            }
        };
        let config = ExperimentConfig {
            mode,
            sample_rate: sample_rate.unwrap_or(1.0),
            share: share.unwrap_or(0.0),
            salt,
            window_seconds,
            seed,
            feedback_capacity,
        };
        // The ids' key: os.urandom, whatever the seed (a seed reproduces the sampling, never the
        // ids, which a client must not be able to guess from one it was given).
        let random = py.import("os")?.call_method1("urandom", (16,))?;
        let id_key: [u8; 16] = random
            .cast::<PyBytes>()?
            .as_bytes()
            .try_into()
            .map_err(|_| invalid("os.urandom(16) did not return 16 bytes".into()))?;
        let inner = py
            .detach(|| {
                with_arms(champion.get(), challenger.get(), |c, h| {
                    crate::experiment::Experiment::new(c, h, config, now_ms(), id_key)
                })
            })
            .map_err(core_error)?;
        Ok(Experiment {
            inner: Mutex::new(inner),
            champion,
            challenger,
        })
    }

    /// The served prediction (``predict``'s dict) with ``arm`` ("champion" or "challenger"),
    /// ``id`` (for ``feedback``) and ``shadow`` (shadow mode, sampled texts: the challenger's
    /// prediction, not served; else None). ``text`` is a str or, when both arms were fitted on
    /// the same DataFrame column, the record ``{column: text}`` ``Model.predict`` takes.
    /// ``key`` (a str) assigns the canary arm; without it the text is the key.
    #[pyo3(signature = (text, *, key=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let text = self.input_of(text)?;
        let key = key.map(|k| text_of(k, "key")).transpose()?;
        let served = py
            .detach(|| {
                with_arms(self.champion.get(), self.challenger.get(), |c, h| {
                    self.lock().predict(c, h, &text, key.as_deref(), now_ms())
                })
            })
            .map_err(core_error)?;
        let model = self.champion.get();
        let d = model.prediction(py, &served.prediction)?;
        d.set_item("arm", served.arm.as_str())?;
        d.set_item("id", &served.id)?;
        match &served.shadow {
            Some(s) => d.set_item("shadow", model.prediction(py, s)?)?,
            None => d.set_item("shadow", py.None())?,
        }
        Ok(d)
    }

    /// The true label (one of the classes, a str or an int) of prediction ``id`` (a str):
    /// "counted", "expired" (older than the ring, or made by an artifact the arms no longer run),
    /// "unknown" or "duplicate".
    fn feedback(&self, id: &Bound<'_, PyAny>, label: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        use crate::experiment::Feedback;
        let id = text_of(id, "id")?;
        let truth = if label.is_instance_of::<PyString>() {
            text_of(label, "label")?.to_string()
        } else if let Some(i) = label.extract::<i64>().ok().filter(|_| !is_bool(label)) {
            i.to_string()
        } else {
            return Err(invalid(format!(
                "the true label must be one of the classes, got {}",
                shown(label)
            )));
        };
        let outcome = self.lock().feedback(&id, &truth, now_ms()).map_err(core_error)?;
        Ok(match outcome {
            Feedback::Counted => "counted",
            Feedback::Expired => "expired",
            Feedback::Unknown => "unknown",
            Feedback::Duplicate => "duplicate",
        })
    }

    /// Closes the open window and returns it (a dict, FORMAT.md §4). It is not queued: Python
    /// delivers nothing itself, so ``take_pending`` gives only the windows ``window_seconds``
    /// closed, each once.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let json = self.lock().close_now(now_ms()).to_json();
        py.import("json")?.call_method1("loads", (json,))
    }

    /// The windows ``window_seconds`` closed, oldest first (dicts), each once; at most 64 wait
    /// (older ones are dropped and counted in ``dropped``).
    fn take_pending<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let pending = {
            let mut e = self.lock();
            e.tick(now_ms());
            e.take_pending()
        };
        let loads = py.import("json")?.getattr("loads")?;
        pending.iter().map(|s| loads.call1((s.to_json(),))).collect()
    }

    /// Refused (`NOT_PICKLABLE`): an experiment's open window, feedback ring and the secret key
    /// of its ids belong to one process, and a copy would count the same traffic twice.
    fn __reduce__(&self) -> PyResult<()> {
        Err(error(
            "NOT_PICKLABLE",
            "an Experiment is not pickled: its window, feedback and id key belong to this \
             process. Pickle its Models and build an Experiment in each process that serves"
                .into(),
            None,
        ))
    }
}

fn with_index(py: Python<'_>, e: PyErr, index: usize) -> PyErr {
    let _ = e.value(py).setattr("index", index);
    e
}

/// The artifact at `path` (read no further than its header declares) and the file's length.
fn read(path: &std::path::Path) -> PyResult<(Vec<u8>, u64)> {
    crate::artifact::read_file_sized(path)
        .map_err(|e| core_error(crate::artifact::read_error(e, shown_path(path))))
}

/// Copies the bytes of a `bytes`, `bytearray` or `memoryview`.
fn bytes_of(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if v.is_instance_of::<PyMemoryView>() {
        // Fails only for a released memoryview.
        let b = v
            .py()
            .get_type::<PyBytes>()
            .call1((v,))
            .map_err(|_| invalid(format!("{what} is a released memoryview")))?;
        return Ok(b.cast::<PyBytes>()?.as_bytes().to_vec());
    }
    Err(invalid(format!(
        "{what} must be bytes, bytearray or memoryview, got {}",
        type_name(v)
    )))
}

/// `public_key` (one key or a list of keys) and `decryption_key`, as `skedge predict
/// --public-key ... --decryption-key ...` and the npm package's `fromBytes` options take them.
fn load_options(
    public_key: Option<&Bound<'_, PyAny>>,
    decryption_key: Option<&Bound<'_, PyAny>>,
) -> PyResult<LoadOptions> {
    let mut keys = LoadOptions::default();
    if let Some(v) = public_key {
        if v.is_instance_of::<PyList>() || v.is_instance_of::<pyo3::types::PyTuple>() {
            for k in v.try_iter()? {
                keys.public_keys
                    .push(key_of(&k?, KeyKind::SigningPublic, "public_key")?);
            }
            if keys.public_keys.is_empty() {
                return Err(invalid("public_key is an empty list".into()));
            }
        } else {
            keys.public_keys
                .push(key_of(v, KeyKind::SigningPublic, "public_key")?);
        }
    }
    if let Some(v) = decryption_key {
        keys.decryption_key = Some(key_of(v, KeyKind::Encryption, "decryption_key")?);
    }
    Ok(keys)
}

/// A key from its text (`str`), its raw bytes, or its key file (`os.PathLike`).
fn key_of(v: &Bound<'_, PyAny>, kind: KeyKind, what: &str) -> PyResult<[u8; KEY_LEN]> {
    if v.is_instance_of::<PyString>() {
        let text = text_of(v, what)?;
        return decode_key(&text, kind).map_err(|e| match e {
            Error::KeyInvalid(why) if looks_like_a_path(&text) => core_error(Error::KeyInvalid(format!(
                "{why}; {what} is a str, read as key text: to read a key file, pass \
                 pathlib.Path(...)"
            ))),
            e => core_error(e),
        });
    }
    if v.is_instance_of::<PyBytes>() || v.is_instance_of::<PyByteArray>() {
        let bytes = bytes_of(v, what)?;
        return <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
            core_error(Error::KeyInvalid(format!(
                "{what} must be {KEY_LEN} bytes, got {}",
                bytes.len()
            )))
        });
    }
    let path = path_of(v, what, "a str (key text), bytes or a path")?;
    // Without the GIL, as an artifact is read: a file on a slow or hung file system holds this
    // thread only (a FIFO or a device is refused unread).
    let text = v
        .py()
        .detach(|| crate::artifact::read_small_text(&path, 4096))
        .map_err(|e| core_error(Error::Io(format!("{}: {e}", shown_path(&path)))))?;
    decode_key(&text, kind).map_err(|e| match e {
        Error::KeyInvalid(why) => core_error(Error::KeyInvalid(format!("{}: {why}", shown_path(&path)))),
        e => core_error(e),
    })
}

/// Whether a `str` refused as key text was meant as the key file's path: a file exists there, or
/// it has no key prefix and has a directory separator or a key file's extension.
fn looks_like_a_path(text: &str) -> bool {
    let trimmed = text.trim();
    let shaped = !trimmed.starts_with("skedge-")
        && (trimmed.contains(['/', '\\']) || trimmed.ends_with(".pub") || trimmed.ends_with(".key"));
    // A NUL or an over-long name is no file: `is_file` is false.
    shaped || std::path::Path::new(text).is_file()
}

/// `skedge._skedge`: re-exported by scripts/skedge/__init__.py.
#[pymodule(name = "_skedge")]
fn python_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let error = py.get_type::<SkedgeError>();
    error.setattr("code", "")?;
    error.setattr("index", py.None())?;
    m.add("SkedgeError", error)?;
    m.add_class::<Model>()?;
    m.add_class::<Experiment>()?;
    m.add("MAX_TEXT_BYTES", MAX_TEXT_BYTES)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
