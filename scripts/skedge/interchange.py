"""Fitted scikit-learn text pipeline -> skedge interchange (FORMAT.md, section 1).

`to_interchange(estimator, metadata)` walks a fitted `Pipeline` (also `make_pipeline`, nested
pipelines, `FeatureUnion` with `transformer_weights` and "drop" members) and returns the interchange
as a plain dict, ready for `json.dumps`. Anything the Rust engine cannot reproduce bit for bit is
refused with `Unsupported`, whose message names the step (`pipeline.union.char`), the parameter and
the value.

Python never writes artifact bytes: `skedge pack` turns this JSON into the artifact.
"""

from __future__ import annotations

import inspect
import json
import math
import platform
import subprocess
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.feature_selection import (
    SelectFdr,
    SelectFpr,
    SelectFromModel,
    SelectFwe,
    SelectKBest,
    SelectPercentile,
    VarianceThreshold,
)
from sklearn.feature_extraction.text import (
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import (
    LogisticRegression,
    Perceptron,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import LabelEncoder, MaxAbsScaler, Normalizer, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._cli import program

try:  # deprecated in scikit-learn 1.8, removed in 1.10
    from sklearn.linear_model import PassiveAggressiveClassifier
except ImportError:  # pragma: no cover - depends on the installed version
    PassiveAggressiveClassifier = None

try:
    from sklearn.frozen import FrozenEstimator
except ImportError:  # pragma: no cover - scikit-learn < 1.6
    FrozenEstimator = None

FORMAT_NAME = "skedge-interchange"
FORMAT_VERSION = 1

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SKEDGE = program("skedge")

#: `skedge ln-table` covers log(k) for k = 1..=LN_TABLE_SIZE (FORMAT.md, `log_exceptions`); the
#: engine refuses a larger count (`skedge::vectorize::LOG_CHECKED`: the two must stay equal).
LN_TABLE_SIZE = 1 << 20

#: The token patterns the engine implements (FORMAT.md): 2+ and 1+ word characters.
ACCEPTED_TOKEN_PATTERNS = (
    r"(?u)\b\w\w+\b",
    r"\b\w\w+\b",
    r"\w\w+",
    r"(?u)\b\w+\b",
    r"\b\w+\b",
    r"\w+",
)

#: Largest `ngram_range` max_n the engine loads (`text::Analyzer::new`).
MAX_NGRAM = 64

_COUNT_DTYPES = (np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.float64))

#: The largest count one text can give a term: the engine takes at most 16 MiB of UTF-8 (2**24
#: bytes, `skedge::MAX_TEXT_BYTES`), hence at most 2**24 characters, which lowercasing and
#: strip_accents (NFKD: U+FDFA is 18 characters from 3 bytes) expand at most 6-fold and char_wb's
#: padding at most doubles; a term occurs at most once per character. Bounds the integer products
#: of `transformer_weights` (`_weighted_branch`).
MAX_COUNT = 1 << 28

#: Integers up to 2**53 are exact in float64, where skedge multiplies counts by weights.
_EXACT_INT = 1 << 53
_FLOAT64 = np.dtype(np.float64)

_LINEAR_CLASSES = tuple(
    c
    for c in (
        LogisticRegression,
        LinearSVC,
        SGDClassifier,
        RidgeClassifier,
        Perceptron,
        PassiveAggressiveClassifier,
    )
    if c is not None
)
_NB_CLASSES = (MultinomialNB, ComplementNB, BernoulliNB)

_SGD_PROBA = {"log_loss": "logistic", "modified_huber": "modified_huber"}

#: Feature selectors that are a fixed column mask once fitted (`get_support()`); exported as a
#: `select` transform, applied at run time (after whatever normalisation precedes them).
_SELECTORS = (SelectKBest, SelectPercentile, SelectFpr, SelectFdr, SelectFwe, VarianceThreshold, SelectFromModel)
#: Per-column scalers that keep sparse rows sparse: `x * (1 / scale_)` (`inplace_column_scale`), then
#: `MaxAbsScaler(clip=True)`'s `np.clip(X.data, -1, 1)`.
_SCALERS = (MaxAbsScaler, StandardScaler)


class Unsupported(Exception):
    """A step, parameter or value the engine cannot reproduce exactly.

    `step_path` is the dotted path of the step (`pipeline.union.char`), `parameter` the constructor
    parameter or fitted attribute at fault, `value` the offending value and `reason` why.
    """

    def __init__(self, step_path: str, parameter: str, value: Any, reason: str):
        self.step_path = step_path
        self.parameter = parameter
        self.value = value
        self.reason = reason
        super().__init__(
            f"unsupported: step {step_path!r}, {parameter}={_show(value)}: {reason}"
        )


class OvrProbaWarning(UserWarning):
    """A LogisticRegression trained one-vs-rest, whose predict_proba changed meaning in sklearn 1.9."""


def _show(value: Any, limit: int = 120) -> str:
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _is_exact(obj: Any, cls: Any) -> bool:
    return cls is not None and type(obj) is cls


def _refuse_replaced_methods(obj: Any, path: str, seen: set) -> None:
    """Refuses an instance attribute of a scikit-learn object that hides a method or property of its
    class (`vec.build_tokenizer = f`, `clf.predict_proba = g`): scikit-learn would call it, as it
    would a subclass's, where the exporter reads what the class does. Walks every object reachable
    through the instances' attributes, lists and dicts; a named step (`(name, estimator, ...)` in
    `steps`, `transformer_list`, `estimators` ...) is named as in the other messages."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            _refuse_replaced_methods(item, f"{path}[{i}]", seen)
    elif isinstance(obj, dict):
        for key, item in obj.items():
            _refuse_replaced_methods(item, f"{path}[{key!r}]", seen)
    elif type(obj).__module__.partition(".")[0] == "sklearn":
        cls = type(obj)
        for key, value in getattr(obj, "__dict__", {}).items():
            hidden = inspect.getattr_static(cls, key, None)
            if callable(hidden) or hasattr(hidden, "__get__"):
                raise Unsupported(
                    path, key, type(value).__name__,
                    f"the instance replaces {cls.__name__}.{key}, which the exporter reads from the class",
                )
            named = isinstance(value, list) and value and all(
                isinstance(t, tuple) and len(t) >= 2 and isinstance(t[0], str) for t in value
            )
            for name, items in ([(t[0], t[1:]) for t in value] if named else [(key, (value,))]):
                for item in items:
                    _refuse_replaced_methods(item, f"{path}.{name}", seen)


# ---------------------------------------------------------------------------------------------
# log_exceptions: numpy's log versus the engine's libm log
# ---------------------------------------------------------------------------------------------

_LN_CACHE: dict[str, list[list]] = {}


def numpy_ln_table(n: int = LN_TABLE_SIZE) -> np.ndarray:
    """`numpy.log(k)` for k = 1..=n, computed the way `TfidfTransformer` calls it (one array)."""
    return np.log(np.arange(1, n + 1, dtype=np.float64))


def skedge_ln_table(skedge: str | Path = DEFAULT_SKEDGE, n: int = LN_TABLE_SIZE) -> np.ndarray:
    """Run `skedge ln-table n`: n little-endian f64, libm log(k) for k = 1..=n."""
    try:
        proc = subprocess.run(
            [str(skedge), "ln-table", str(n)], capture_output=True, check=False
        )
    except OSError as err:
        raise RuntimeError(f"cannot run {skedge} ln-table: {err}") from err
    if proc.returncode != 0:
        raise RuntimeError(
            f"{skedge} ln-table {n} exited {proc.returncode}: "
            f"{proc.stderr.decode('utf-8', 'replace').strip()}"
        )
    if len(proc.stdout) != 8 * n:
        raise RuntimeError(
            f"{skedge} ln-table {n} printed {len(proc.stdout)} bytes, expected {8 * n}"
        )
    return np.frombuffer(proc.stdout, dtype="<f8").astype(np.float64)


def math_ln_table(n: int = LN_TABLE_SIZE) -> np.ndarray:
    """Fallback for `skedge ln-table`: the C library's scalar log through `math.log`."""
    return np.array([math.log(k) for k in range(1, n + 1)], dtype=np.float64)


def compare_ln_tables(reference: np.ndarray, numpy_values: np.ndarray | None = None) -> list[list]:
    """[[k, numpy.log(k)], ...] for every k whose bits differ between numpy and `reference`."""
    n = reference.shape[0]
    if numpy_values is None:
        numpy_values = numpy_ln_table(n)
    diff = np.nonzero(reference.view(np.uint64) != numpy_values.view(np.uint64))[0]
    return [[int(i) + 1, float(numpy_values[i])] for i in diff]


def log_exceptions(skedge: str | Path = DEFAULT_SKEDGE) -> list[list]:
    """The `log_exceptions` list for this machine, from `skedge ln-table` (cached per CLI path)."""
    key = f"skedge:{Path(skedge).resolve()}"
    if key not in _LN_CACHE:
        _LN_CACHE[key] = compare_ln_tables(skedge_ln_table(skedge))
    return _LN_CACHE[key]


def log_exceptions_math_fallback() -> list[list]:
    """The `log_exceptions` list against `math.log`, for when the CLI is not built yet."""
    if "math" not in _LN_CACHE:
        _LN_CACHE["math"] = compare_ln_tables(math_ln_table())
    return _LN_CACHE["math"]


# ---------------------------------------------------------------------------------------------
# numeric helpers
# ---------------------------------------------------------------------------------------------


def _dense(value: Any) -> np.ndarray:
    if sp.issparse(value):
        value = value.toarray()
    return np.asarray(value)


def _floats(value: Any, path: str, name: str) -> np.ndarray:
    """`value` as a float64 array, refusing NaN and infinities."""
    arr = _dense(value)
    if arr.dtype.kind not in "fiub":
        raise Unsupported(path, name, str(arr.dtype), "expected a numeric array")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        # scikit-learn computes in that precision; skedge (float64) would round every product
        raise Unsupported(path, name, str(arr.dtype), "floats wider than float64 are not supported (use float64)")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise Unsupported(
            path, name, float(arr[where]), f"non-finite value at index {list(where)}"
        )
    return arr


def _float(value: Any, path: str, name: str) -> float:
    try:
        arr = np.asarray(value).reshape(())
    except ValueError as err:
        raise Unsupported(path, name, value, "expected a number") from err
    return float(_floats(arr, path, name))


def _utf8(text: str, path: str, name: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise Unsupported(path, name, text, "contains a lone surrogate") from err
    return text


def _classes(classes: Any, path: str) -> list:
    """classes_ as a JSON list: all ints or all strings; bool and float labels are refused."""
    arr = np.asarray(classes)
    if arr.ndim != 1:
        raise Unsupported(path, "classes_", arr.shape, "multi-output / multilabel targets")
    kind = arr.dtype.kind
    if kind == "b":
        raise Unsupported(path, "classes_", "bool", "bool labels are not supported (use ints or strings)")
    if kind == "f" or kind == "c":
        raise Unsupported(
            path, "classes_", str(arr.dtype), "float labels are not supported (use ints or strings)"
        )
    if kind in "iu":
        out = [int(c) for c in arr]
    elif kind == "U":
        out = [_utf8(str(c), path, "classes_") for c in arr]
    elif kind == "O":
        items = list(arr)
        if all(isinstance(c, str) for c in items):
            out = [_utf8(str(c), path, "classes_") for c in items]
        elif all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in items):
            out = [int(c) for c in items]
        else:
            kinds = sorted({type(c).__name__ for c in items})
            raise Unsupported(
                path, "classes_", "/".join(kinds), "labels must be all ints or all strings"
            )
    else:
        raise Unsupported(path, "classes_", str(arr.dtype), "labels must be ints or strings")
    if len(out) < 2:
        raise Unsupported(path, "classes_", out, "at least two classes are required")
    if isinstance(out[0], int) and not all(-(2**63) <= c < 2**63 for c in out):
        raise Unsupported(path, "classes_", out, "integer labels must fit in a signed 64-bit integer")
    return out


# ---------------------------------------------------------------------------------------------
# features: vectorizers, their branch transforms, unions
# ---------------------------------------------------------------------------------------------

# What the values reaching the next transform are, for the sublinear_tf rule.
_COUNTS = "positive integer counts"
_SIGNED = "signed hashed counts (alternate_sign=True), possibly zero or negative"
_REAL = "real values"


@dataclass
class _Block:
    spec: dict
    vectorizer: Any
    path: str
    n_features: int
    state: str  # what its values are at this point (_COUNTS, _SIGNED, _REAL), for sublinear_tf
    # While scikit-learn holds the values as integers (a CountVectorizer of an integer dtype, then
    # column masks and integer weights): their dtype and the largest |value| a text can give.
    itype: np.dtype | None = None
    bound: int = 0

    def after(self, t: dict) -> None:
        """The block's state once transform `t` has run on it."""
        self.state = _state_after(self.state, t)
        if t["kind"] != "select":  # the others compute in float64 (check_array's FLOAT_DTYPES)
            self.itype = None


@dataclass
class _Stage:
    """Features produced so far: blocks in union order, plus transforms over their concatenation."""

    blocks: list
    post: list = field(default_factory=list)
    post_state: str | None = None  # state of the concatenation once `post` is non-empty
    post_width: int | None = None  # columns once a `select` in `post` has dropped some

    @property
    def n_features(self) -> int:
        if self.post_width is not None:
            return self.post_width
        return sum(b.n_features for b in self.blocks)

    def state(self) -> str:
        if self.post:
            return self.post_state
        states = {b.state for b in self.blocks}
        for s in (_REAL, _SIGNED, _COUNTS):
            if s in states:
                return s
        return _COUNTS


class _Context:
    def __init__(self, log_table: Callable[[], list]):
        self._log_table = log_table
        self.needs_log: list = []  # tfidf specs with sublinear_tf, whose log_exceptions to fill

    def fill_log_exceptions(self) -> None:
        """Run the (slow, external) log table only for a pipeline that is otherwise accepted."""
        if self.needs_log:
            table = [[int(k), float(v)] for k, v in self._log_table()]
            for spec in self.needs_log:
                spec["log_exceptions"] = [list(p) for p in table]


def _analyzer_spec(v: Any, path: str) -> dict:
    if getattr(v, "input", "content") != "content":
        raise Unsupported(path, "input", v.input, "only input='content' (strings) is supported")
    if callable(v.analyzer):
        raise Unsupported(path, "analyzer", v.analyzer, "a callable analyzer cannot be exported")
    if v.analyzer not in ("word", "char", "char_wb"):
        raise Unsupported(path, "analyzer", v.analyzer, "expected 'word', 'char' or 'char_wb'")
    if v.preprocessor is not None:
        raise Unsupported(path, "preprocessor", v.preprocessor, "a custom preprocessor cannot be exported")
    strip = v.strip_accents
    if callable(strip):
        raise Unsupported(path, "strip_accents", strip, "a callable strip_accents cannot be exported")
    if not strip:
        strip = None
    elif strip not in ("ascii", "unicode"):
        raise Unsupported(path, "strip_accents", strip, "expected None, 'ascii' or 'unicode'")
    lo, hi = v.ngram_range
    if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer)) and 1 <= lo <= hi):
        raise Unsupported(path, "ngram_range", v.ngram_range, "expected integers 1 <= min_n <= max_n")
    if hi > MAX_NGRAM:
        raise Unsupported(
            path, "ngram_range", v.ngram_range, f"the engine supports n-grams of at most {MAX_NGRAM} tokens/chars"
        )
    spec: dict = {
        "kind": v.analyzer,
        "ngram_range": [int(lo), int(hi)],
        "lowercase": bool(v.lowercase),
        "strip_accents": strip,
    }
    if v.analyzer == "word":
        if v.tokenizer is not None:
            raise Unsupported(path, "tokenizer", v.tokenizer, "a custom tokenizer cannot be exported")
        if v.token_pattern not in ACCEPTED_TOKEN_PATTERNS:
            raise Unsupported(
                path,
                "token_pattern",
                v.token_pattern,
                "only " + ", ".join(ACCEPTED_TOKEN_PATTERNS) + " are implemented",
            )
        spec["token_pattern"] = v.token_pattern
        spec["stop_words"] = _stop_words(v, path)
    else:
        # scikit-learn ignores token_pattern, tokenizer and stop_words for char analyzers
        spec["token_pattern"] = None
        spec["stop_words"] = []
    return spec


#: Stop-list entries no token can match: `token not in frozenset(stop_words)` compares a str token
#: with them, which is False for these types (set lookup: their __eq__, then str's, both
#: NotImplemented) and for numpy's numbers, so dropping them is exact. Any other non-str is refused.
_NEVER_A_TOKEN = (int, float, complex, bool, bytes, type(None))


def _stop_words(v: Any, path: str) -> list:
    """The word analyzer's stop list, sorted (CountVectorizer, TfidfVectorizer, HashingVectorizer
    all filter tokens with `get_stop_words()`)."""
    try:
        stop = v.get_stop_words()  # set_params after fit skips the validation fit() does
    except (ValueError, TypeError) as err:
        raise Unsupported(
            path, "stop_words", v.stop_words, f"expected 'english', a list of strings or None ({err})"
        ) from None
    words = []
    for w in stop or ():
        if isinstance(w, str):
            words.append(_utf8(str(w), path, "stop_words"))
        elif type(w) not in _NEVER_A_TOKEN and not (
            type(w).__module__ == "numpy" and isinstance(w, (np.number, np.bool_))
        ):
            raise Unsupported(path, "stop_words", type(w).__name__, "stop words must be strings")
    return sorted(words)


def _vocabulary(v: Any, path: str) -> list:
    vocab = getattr(v, "vocabulary_", None)
    if vocab is None:
        raise Unsupported(path, "vocabulary_", None, "the vectorizer is not fitted")
    n = len(vocab)
    terms: list = [None] * n
    for term, idx in vocab.items():
        i = int(idx)
        if not isinstance(term, str):
            raise Unsupported(path, "vocabulary_", term, "terms must be strings")
        if not 0 <= i < n or terms[i] is not None:
            raise Unsupported(
                path, "vocabulary_", {term: i}, f"not a bijection onto 0..{n - 1}"
            )
        terms[i] = _utf8(term, path, "vocabulary_")
    return terms


def _check_dtype(v: Any, path: str, allowed: tuple) -> None:
    try:
        dt = np.dtype(v.dtype)
    except TypeError as err:
        raise Unsupported(path, "dtype", v.dtype, "not a numpy dtype") from err
    if dt not in allowed:
        raise Unsupported(
            path,
            "dtype",
            dt.name,
            "expected " + " or ".join(d.name for d in allowed),
        )


def _tfidf_spec(sublinear: bool, idf: Any, path: str, ctx: _Context, n_features: int) -> dict:
    if idf is not None:
        idf = _floats(idf, path, "idf_")
        if idf.shape != (n_features,):
            raise Unsupported(
                path, "idf_", idf.shape, f"expected {n_features} values, one per input column"
            )
        idf = idf.tolist()
    spec = {"kind": "tfidf", "sublinear_tf": bool(sublinear), "idf": idf, "log_exceptions": []}
    if sublinear:
        ctx.needs_log.append(spec)  # filled once the whole pipeline is accepted
    return spec


def _state_after(state: str, t: dict) -> str:
    kind = t["kind"]
    if kind == "tfidf":
        if t["sublinear_tf"] or t["idf"] is not None:
            return _REAL
        return state
    if kind == "select":
        return state  # the kept values are unchanged
    return _REAL  # normalize, scale, column_scale, clip


def _vectorizer(v: Any, path: str, ctx: _Context) -> _Stage:
    if _is_exact(v, TfidfVectorizer):
        _check_dtype(v, path, (_FLOAT64,))
    elif _is_exact(v, CountVectorizer):
        _check_dtype(v, path, _COUNT_DTYPES)
    elif _is_exact(v, HashingVectorizer):
        _check_dtype(v, path, (_FLOAT64,))
    else:  # pragma: no cover - guarded by the caller
        raise Unsupported(path, "estimator", type(v).__name__, "not a supported vectorizer")
    analyzer = _analyzer_spec(v, path)

    if _is_exact(v, HashingVectorizer):
        n = int(v.n_features)
        if not 1 <= n <= 2**31 - 1:
            raise Unsupported(path, "n_features", v.n_features, "expected 1 <= n_features < 2**31")
        counts = {"kind": "hashing", "n_features": n, "alternate_sign": bool(v.alternate_sign)}
        state = _SIGNED if (v.alternate_sign and not v.binary) else _COUNTS
    else:
        vocabulary = _vocabulary(v, path)
        n = len(vocabulary)
        counts = {"kind": "vocabulary", "vocabulary": vocabulary}
        state = _COUNTS

    block = _Block(
        spec={"analyzer": analyzer, "counts": counts, "binary": bool(v.binary), "transforms": []},
        vectorizer=v,
        path=path,
        n_features=n,
        state=state,
    )
    if np.dtype(v.dtype).kind == "i":
        block.itype, block.bound = np.dtype(v.dtype), 1 if v.binary else MAX_COUNT
    stage = _Stage(blocks=[block])

    if _is_exact(v, TfidfVectorizer):
        tfidf = getattr(v, "_tfidf", None)
        if tfidf is None:
            raise Unsupported(path, "_tfidf", None, "the vectorizer is not fitted")
        if not _is_exact(tfidf, TfidfTransformer):
            raise Unsupported(path, "_tfidf", type(tfidf).__name__, "expected the TfidfTransformer fit() builds")
        # transform() uses the TfidfTransformer built at fit time, so read its parameters
        _tfidf_transformer(tfidf, path, stage, ctx)
    elif _is_exact(v, HashingVectorizer) and v.norm is not None:
        _add_transform(stage, _normalize_spec(v.norm, path), path)
    return stage


def _normalize_spec(norm: Any, path: str) -> dict:
    if norm not in ("l1", "l2"):
        raise Unsupported(path, "norm", norm, "only 'l1' and 'l2' norms are supported")
    return {"kind": "normalize", "norm": norm}


def _add_transform(stage: _Stage, t: dict, path: str) -> None:
    """Append transform `t`: to the block when there is one, else over the concatenation."""
    if t["kind"] == "tfidf" and t["sublinear_tf"]:
        state = stage.state()
        if state != _COUNTS:
            raise Unsupported(
                path,
                "sublinear_tf",
                True,
                f"log(tf) needs positive integer counts, but its input is {state} "
                "(sublinear_tf after a normalize, scale, idf or alternate_sign hashing is refused)",
            )
    if len(stage.blocks) == 1 and not stage.post:
        block = stage.blocks[0]
        block.spec["transforms"].append(t)
        block.after(t)
        if t["kind"] == "select":
            block.n_features = len(t["support"])
    else:
        stage.post_state = _state_after(stage.state(), t)
        stage.post.append(t)
        if t["kind"] == "select":
            stage.post_width = len(t["support"])


def _tfidf_transformer(t: Any, path: str, stage: _Stage, ctx: _Context) -> None:
    sublinear = bool(t.sublinear_tf)
    # transform() multiplies by idf_ whenever the attribute exists (`hasattr(self, "idf_")`), whatever
    # use_idf says now: idf_ exists when use_idf was on at fit time (set_params may have changed it).
    idf = getattr(t, "idf_", None)
    if idf is None and not hasattr(t, "n_features_in_"):
        raise Unsupported(path, "idf_", None, "the transformer is not fitted")
    spec = _tfidf_spec(sublinear, idf, path, ctx, stage.n_features)
    _add_transform(stage, spec, path)
    if t.norm is not None:
        _add_transform(stage, _normalize_spec(t.norm, path), path)


def _apply_step(step: Any, path: str, stage: _Stage, ctx: _Context) -> None:
    """A transform that follows the features: TfidfTransformer, Normalizer or a pipeline of them."""
    if _is_exact(step, TfidfTransformer):
        _tfidf_transformer(step, path, stage, ctx)
    elif _is_exact(step, Normalizer):
        _add_transform(stage, _normalize_spec(step.norm, path), path)
    elif any(_is_exact(step, c) for c in _SELECTORS):
        _selector(step, path, stage)
    elif any(_is_exact(step, c) for c in _SCALERS):
        _scaler(step, path, stage)
    elif _is_exact(step, Pipeline):
        for name, sub in _pipeline_steps(step):
            _apply_step(sub, f"{path}.{name}", stage, ctx)
    else:
        raise Unsupported(
            path,
            "estimator",
            type(step).__name__,
            "after a vectorizer only TfidfTransformer, Normalizer(norm='l1'|'l2'), "
            + ", ".join(c.__name__ for c in _SELECTORS)
            + ", MaxAbsScaler and StandardScaler(with_mean=False) are supported",
        )


def _selector(step: Any, path: str, stage: _Stage) -> None:
    """A fitted column mask: the support is stored, not the scores (FORMAT.md, `select`)."""
    n = stage.n_features
    try:
        mask = np.asarray(step.get_support(), dtype=bool)
    except Exception as err:  # noqa: BLE001 - not fitted, or an estimator without importances
        raise Unsupported(path, "get_support()", None, f"{type(err).__name__}: {err}") from None
    if mask.shape != (n,):
        raise Unsupported(path, "n_features_in_", mask.shape[0], f"expected {n} input columns")
    support = [int(i) for i in np.flatnonzero(mask)]
    if not support:
        raise Unsupported(
            path, "get_support()", "no column",
            "the selector keeps no feature (scikit-learn then returns an empty dense array)",
        )
    _add_transform(stage, {"kind": "select", "n_features_in": n, "support": support}, path)


def _scaler(step: Any, path: str, stage: _Stage) -> None:
    """MaxAbsScaler, StandardScaler(with_mean=False): `inplace_column_scale(X, 1 / scale_)`;
    MaxAbsScaler(clip=True) then `np.clip(X.data, -1.0, 1.0)` (a `clip` transform)."""
    clip = False
    if _is_exact(step, MaxAbsScaler):
        # transform() tests `if self.clip:`; set_params after fit skips the parameter validation,
        # so anything but a bool is refused rather than guessed at.
        clip = getattr(step, "clip", None)
        if not isinstance(clip, (bool, np.bool_)):
            raise Unsupported(path, "clip", clip, "expected True or False")
        clip = bool(clip)
    if _is_exact(step, StandardScaler) and step.with_mean:
        raise Unsupported(
            path, "with_mean", step.with_mean,
            "centering makes sparse text features dense (scikit-learn refuses it on sparse input): "
            "use StandardScaler(with_mean=False)",
        )
    scale = getattr(step, "scale_", None)
    if scale is None:
        if not hasattr(step, "n_features_in_") or _is_exact(step, MaxAbsScaler):
            raise Unsupported(path, "scale_", None, "the scaler is not fitted")
        return  # StandardScaler(with_std=False): only a cast to float
    n = stage.n_features
    scale = _floats(scale, path, "scale_")
    if scale.shape != (n,):
        raise Unsupported(path, "scale_", scale.shape, f"expected {n} values, one per input column")
    zero = np.flatnonzero(scale == 0)
    if zero.size:
        raise Unsupported(path, "scale_", 0.0, f"zero at index {int(zero[0])} (x / 0)")
    _add_transform(stage, {"kind": "column_scale", "scale": scale.tolist()}, path)
    if clip:
        _add_transform(stage, {"kind": "clip", "min": -1.0, "max": 1.0}, path)


def _pipeline_steps(pipe: Pipeline) -> list:
    """(name, estimator) of a Pipeline, skipping None / 'passthrough' steps."""
    return [
        (name, est)
        for name, est in pipe.steps
        if est is not None and not (isinstance(est, str) and est == "passthrough")
    ]


def _features(step: Any, path: str, ctx: _Context) -> _Stage:
    """A step that takes raw text: vectorizer, FeatureUnion, or Pipeline starting with one."""
    if any(_is_exact(step, c) for c in (CountVectorizer, TfidfVectorizer, HashingVectorizer)):
        return _vectorizer(step, path, ctx)
    if _is_exact(step, FeatureUnion):
        return _union(step, path, ctx)
    if _is_exact(step, Pipeline):
        steps = _pipeline_steps(step)
        if not steps:
            raise Unsupported(path, "steps", [], "an empty pipeline cannot take text")
        name, first = steps[0]
        stage = _features(first, f"{path}.{name}", ctx)
        for name, sub in steps[1:]:
            _apply_step(sub, f"{path}.{name}", stage, ctx)
        return stage
    if isinstance(step, str):
        raise Unsupported(path, "estimator", step, "raw text cannot pass through")
    if _is_exact(step, ColumnTransformer):
        raise Unsupported(
            path, "estimator", "ColumnTransformer",
            "a ColumnTransformer is supported only where the DataFrame enters: the pipeline's first step "
            "(or the first step of a Pipeline there), not inside a FeatureUnion or ColumnTransformer",
        )
    raise Unsupported(
        path,
        "estimator",
        type(step).__name__,
        "text must enter through CountVectorizer, TfidfVectorizer, HashingVectorizer or a FeatureUnion of them",
    )


def _distribute(stage: _Stage, path: str) -> list:
    """Blocks of a union branch, with the branch's own post-union transforms pushed into them."""
    if not stage.post:
        return stage.blocks
    for t in stage.post:
        if t["kind"] == "normalize":
            raise Unsupported(
                path,
                "norm",
                t["norm"],
                "a normalize over a FeatureUnion nested inside another FeatureUnion cannot be represented",
            )
        # per-column values and masks are cut at the blocks' current widths
        offsets = np.cumsum([0] + [b.n_features for b in stage.blocks])
        for i, block in enumerate(stage.blocks):
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            tb = dict(t)
            if t["kind"] == "tfidf" and t["idf"] is not None:
                tb["idf"] = t["idf"][lo:hi]
            elif t["kind"] == "column_scale":
                tb["scale"] = t["scale"][lo:hi]
            elif t["kind"] == "select":
                tb["n_features_in"] = hi - lo
                tb["support"] = [c - lo for c in t["support"] if lo <= c < hi]
                block.n_features = len(tb["support"])
            block.spec["transforms"].append(tb)
            block.after(tb)
    return stage.blocks


def _weighted_branch(branch: _Stage, bpath: str, weight, path: str, name: str) -> list:
    """The blocks of one member of a FeatureUnion (or ColumnTransformer), scaled by its
    `transformer_weights` entry when it has one."""
    blocks = _distribute(branch, bpath)
    if weight is not None:
        parameter = f"transformer_weights[{name!r}]"
        factor = _float(weight, path, parameter)
        for block in blocks:
            if block.itype is not None:
                _integer_product(block, weight, path, parameter)
            block.spec["transforms"].append({"kind": "scale", "factor": factor})
            block.state = _REAL
    return blocks


def _integer_product(block: _Block, weight: Any, path: str, parameter: str) -> None:
    """`res * weight` (sklearn.pipeline._transform_one) on integer counts stays integer when numpy
    says so (an integer weight), and wraps around on overflow without a word; skedge multiplies in
    float64, exact only while no product can pass the dtype's range nor 2**53. Refuses a weight
    for which some text could pass either; the block's values stay integers for what follows."""
    dtype = block.itype
    remedy = (f"use a float weight ({float(weight)!r}) or a wider dtype "
              f"(CountVectorizer(dtype=np.int64) or np.float64) at {block.path!r}")
    try:
        out = (np.ones(1, dtype=dtype) * weight).dtype
    except (OverflowError, TypeError) as err:  # a Python int out of the dtype's range
        raise Unsupported(
            path, parameter, weight, f"numpy cannot multiply {dtype.name} counts by it ({err}): {remedy}"
        ) from None
    if out.kind not in "iu":
        block.itype = None  # a float product, computed as skedge does
        return
    bound = block.bound * abs(int(weight))
    limit = min(int(np.iinfo(out).max), _EXACT_INT)
    if bound > limit:
        why = (f"numpy computes it in {out.name} and wraps around past {int(np.iinfo(out).max)}"
               if limit < _EXACT_INT else
               "past 2**53 skedge's float64 product is not exact")
        raise Unsupported(
            path, parameter, weight,
            f"scikit-learn multiplies the {dtype.name} counts of {block.path!r} by this integer: a text of "
            f"up to 16 MiB gives values up to {block.bound}, times {abs(int(weight))} is {bound}, and {why}; {remedy}",
        )
    block.itype, block.bound = out, bound


def _stacked(blocks: list) -> list:
    """The blocks once `scipy.sparse.hstack` has joined them: one dtype, numpy's promotion of
    theirs (integers only while every block holds integers)."""
    itype, bound = None, 0
    if all(b.itype is not None for b in blocks):
        itype, bound = np.result_type(*[b.itype for b in blocks]), max(b.bound for b in blocks)
        if itype.kind not in "iu":
            itype, bound = None, 0
    for b in blocks:
        b.itype, b.bound = itype, bound
    return blocks


def _union(union: FeatureUnion, path: str, ctx: _Context) -> _Stage:
    weights = union.transformer_weights or {}
    blocks: list = []
    for name, trans in union.transformer_list:
        if isinstance(trans, str) and trans == "drop":
            continue
        bpath = f"{path}.{name}"
        if isinstance(trans, str) and trans == "passthrough":
            raise Unsupported(bpath, "transformer", trans, "raw text cannot pass through a FeatureUnion")
        blocks.extend(_weighted_branch(_features(trans, bpath, ctx), bpath, weights.get(name), path, name))
    if not blocks:
        raise Unsupported(path, "transformer_list", "all 'drop'", "a FeatureUnion must keep one member")
    return _Stage(blocks=_stacked(blocks))


def _column_selector(selector: Any, path: str) -> str:
    """The column of one ColumnTransformer entry: a column name; anything that does not hand the
    vectorizer a 1-D sequence of texts (a list gives it a 2-D frame, whose iteration yields the
    column names, not the texts) is refused, and so are the selectors not stored by name."""
    if isinstance(selector, (str, np.str_)):
        return str(selector)
    if callable(selector):
        raise Unsupported(
            path, "columns", type(selector).__name__,
            "a callable column selector (make_column_selector) is not stored: select the text column by name",
        )
    if isinstance(selector, slice):
        raise Unsupported(path, "columns", selector, "select the text column by name, not a slice")
    values = np.asarray(selector, dtype=object) if not isinstance(selector, (int, np.integer)) else None
    if values is not None and values.size and all(isinstance(v, (bool, np.bool_)) for v in values.ravel()):
        raise Unsupported(path, "columns", selector, "a boolean mask: select the text column by name")
    if values is not None:
        raise Unsupported(
            path, "columns", selector,
            "a list selector hands the vectorizer a 2-D DataFrame, not a text per row: select the column "
            f"by name ({_show(str(values.ravel()[0]) if values.size else 'text')}, without brackets)",
        )
    raise Unsupported(path, "columns", selector, "select the text column by its name (a str)")


def _column_transformer(ct: Any, path: str, ctx: _Context) -> tuple[_Stage, str]:
    """A ColumnTransformer over one text column with the rest dropped: its transformers run on
    `X[column]` and are stacked in order, exactly a FeatureUnion (hstack, `transformer_weights`)."""
    _check_fitted(ct, path, "transformers_")
    fitted = {name: trans for name, trans, _ in ct.transformers_}
    weights = ct.transformer_weights or {}
    columns: dict = {}
    blocks: list = []
    for name, given, selector in ct.transformers:
        trans = fitted.get(name, "drop")
        bpath = f"{path}.{name}"
        if isinstance(trans, str) and trans == "drop":
            continue
        if isinstance(given, str) and given == "passthrough":  # fitted as a FunctionTransformer
            raise Unsupported(bpath, "transformer", given, "a column cannot pass through untransformed")
        branch = _features(trans, bpath, ctx)  # refuses a transformer that does not take text
        columns.setdefault(_column_selector(selector, bpath), bpath)
        blocks.extend(_weighted_branch(branch, bpath, weights.get(name), path, name))
    if len(columns) > 1:
        raise Unsupported(
            path, "transformers", sorted(columns),
            "more than one column: skedge takes one text column (join the texts into one column and refit)",
        )
    if not blocks:
        raise Unsupported(path, "transformers", "all 'drop'", "a ColumnTransformer must keep one transformer")
    (column,) = columns
    names_in = [str(c) for c in getattr(ct, "feature_names_in_", [column])]
    others = [c for c in names_in if c != column]
    rem = ct.remainder
    if others and not (isinstance(rem, str) and rem == "drop"):
        raise Unsupported(
            path, "remainder", rem if isinstance(rem, str) else type(rem).__name__,
            f"the fitted frame had other columns ({_show(others)}): only remainder='drop' is supported",
        )
    if not getattr(ct, "sparse_output_", True):
        raise Unsupported(
            path, "sparse_threshold", ct.sparse_threshold,
            "the output was dense (sparse_output_=False): scikit-learn then sums the decision in BLAS "
            "order, not the sparse row's; refit with sparse_threshold=1.0",
        )
    return _Stage(blocks=_stacked(blocks)), column


def input_column(estimator: Any) -> str | None:
    """The DataFrame column a pipeline starting with a ColumnTransformer was fitted on, else None."""
    steps = flatten(estimator)
    first = steps[0][1] if steps else None
    if not _is_exact(first, ColumnTransformer):
        return None
    return _column_transformer(first, steps[0][0], _Context(lambda: []))[1]


def model_input(estimator: Any, texts: list) -> Any:
    """What the pipeline takes for `texts`: the list, or `pd.DataFrame({column: texts})` for a
    pipeline fitted on a DataFrame column (as `pipe.predict_proba(frame)` is called)."""
    column = input_column(estimator)
    if column is None:
        return texts
    import pandas as pd  # noqa: PLC0415 - only DataFrame pipelines need it

    return pd.DataFrame({column: list(texts)})


# ---------------------------------------------------------------------------------------------
# classifiers
# ---------------------------------------------------------------------------------------------


def lr_is_ovr(clf: Any) -> bool:
    """True for a LogisticRegression trained one-vs-rest (an old pickle) with more than 2 classes."""
    if not _is_exact(clf, LogisticRegression):
        return False
    if len(getattr(clf, "classes_", [])) <= 2:
        return False
    multi = clf.__dict__.get("multi_class")
    if multi == "ovr":
        return True
    return getattr(clf, "solver", None) == "liblinear" and multi in (None, "auto", "warn", "deprecated")


def _linear(clf: Any, path: str, ovr_proba: bool, n_features: int, warn_ovr: bool = True) -> dict:
    classes = _classes(clf.classes_, path)
    if _is_exact(clf, RidgeClassifier):
        lb = getattr(clf, "_label_binarizer", None)
        if lb is not None and str(getattr(lb, "y_type_", "")).startswith("multilabel"):
            raise Unsupported(path, "y_type_", lb.y_type_, "multilabel RidgeClassifier is not supported")
    coef = _floats(clf.coef_, path, "coef_")
    if coef.ndim == 1:
        coef = coef.reshape(1, -1)
    rows = 1 if len(classes) == 2 else len(classes)
    if coef.shape != (rows, n_features):
        raise Unsupported(
            path, "coef_", coef.shape, f"expected ({rows}, {n_features}) for {len(classes)} classes"
        )
    intercept = _floats(clf.intercept_, path, "intercept_")
    try:
        intercept = np.broadcast_to(intercept.reshape(-1) if intercept.ndim else intercept, (rows,))
    except ValueError as err:
        raise Unsupported(path, "intercept_", intercept.shape, f"expected {rows} values") from err

    proba = "none"
    name = type(clf).__name__
    if _is_exact(clf, LogisticRegression):
        if len(classes) == 2:
            proba = "logistic"
        elif lr_is_ovr(clf):
            if ovr_proba:
                proba = "logistic"
                if warn_ovr:
                    warnings.warn(
                        f"{path}: this LogisticRegression was trained one-vs-rest; exporting OvR "
                        "probabilities (expit normalised by the row sum, what older scikit-learn versions "
                        f"returned), NOT what the installed scikit-learn {sklearn.__version__} "
                        "predict_proba computes (softmax).",
                        OvrProbaWarning,
                        stacklevel=3,
                    )
            else:
                proba = "softmax"
                if warn_ovr:
                    warnings.warn(
                        f"{path}: this LogisticRegression was trained one-vs-rest, but the installed "
                        f"scikit-learn {sklearn.__version__} computes predict_proba with softmax over "
                        "its decision; exporting softmax, which differs from the OvR probabilities "
                        "older versions returned. Pass ovr_proba=True (--ovr-proba) to export those.",
                        OvrProbaWarning,
                        stacklevel=3,
                    )
        else:
            proba = "softmax"
    elif _is_exact(clf, SGDClassifier):
        proba = _SGD_PROBA.get(clf.loss, "none")
    return {
        "kind": "linear",
        "estimator": name,
        "classes": classes,
        "coef": coef.tolist(),
        "intercept": [float(x) for x in intercept],
        "proba": proba,
    }


def _naive_bayes(clf: Any, path: str, n_features: int) -> dict:
    classes = _classes(clf.classes_, path)
    flp = _dense(clf.feature_log_prob_).astype(np.float64, copy=False)
    if flp.shape != (len(classes), n_features):
        raise Unsupported(
            path, "feature_log_prob_", flp.shape, f"expected ({len(classes)}, {n_features})"
        )
    binarize = None
    if _is_exact(clf, BernoulliNB):
        # exactly as BernoulliNB._joint_log_likelihood computes them
        with np.errstate(all="ignore"):
            neg_prob = np.log(1 - np.exp(clf.feature_log_prob_))
            coef = clf.feature_log_prob_ - neg_prob
            intercept = clf.class_log_prior_ + neg_prob.sum(axis=1)
        if clf.binarize is not None:
            binarize = _float(clf.binarize, path, "binarize")
            if binarize < 0:
                raise Unsupported(path, "binarize", binarize, "sparse input needs binarize >= 0")
    elif _is_exact(clf, ComplementNB):
        coef = clf.feature_log_prob_
        intercept = clf.class_log_prior_ if len(clf.classes_) == 1 else None
    else:  # MultinomialNB
        coef = clf.feature_log_prob_
        intercept = clf.class_log_prior_
    coef = _floats(coef, path, "coef (feature_log_prob_)")
    if intercept is not None:
        intercept = [float(x) for x in _floats(intercept, path, "intercept (class_log_prior_)")]
    return {
        "kind": "naive_bayes",
        "estimator": type(clf).__name__,
        "classes": classes,
        "coef": coef.tolist(),
        "intercept": intercept,
        "binarize": binarize,
    }


def _calibrated(clf: Any, path: str, n_features: int) -> dict:
    if clf.method not in ("sigmoid", "isotonic"):
        raise Unsupported(path, "method", clf.method, "only method='sigmoid' or 'isotonic' is supported")
    classes = _classes(clf.classes_, path)
    members = []
    for i, member in enumerate(clf.calibrated_classifiers_):
        mpath = f"{path}.calibrated_classifiers_[{i}]"
        if getattr(member, "method", "sigmoid") != clf.method:
            raise Unsupported(mpath, "method", member.method, f"expected method={clf.method!r} in every member")
        base = member.estimator
        bpath = f"{mpath}.estimator"
        if FrozenEstimator is not None and _is_exact(base, FrozenEstimator):
            base = base.estimator
        if not any(_is_exact(base, c) for c in _LINEAR_CLASSES):
            raise Unsupported(
                bpath,
                "estimator",
                type(base).__name__,
                "CalibratedClassifierCV is supported over a linear classifier only "
                "(" + ", ".join(c.__name__ for c in _LINEAR_CLASSES) + ")",
            )
        base_spec = _linear(base, bpath, ovr_proba=False, n_features=n_features, warn_ovr=False)
        if base_spec["classes"] != classes:
            raise Unsupported(
                bpath, "classes_", base_spec["classes"], f"expected all classes {classes} in every member"
            )
        member_classes = np.asarray(member.classes)
        class_indices = LabelEncoder().fit(member_classes).transform(base.classes_)
        n_cols = 1 if len(classes) == 2 else len(classes)
        calibrators = []
        for j, cal in enumerate(member.calibrators):
            cpath = f"{mpath}.calibrators[{j}]"
            if clf.method == "isotonic":
                calibrators.append(_isotonic(cal, cpath))
                continue
            if type(cal).__name__ != "_SigmoidCalibration":
                raise Unsupported(cpath, "calibrator", type(cal).__name__, "expected a sigmoid calibrator")
            calibrators.append([_float(cal.a_, cpath, "a_"), _float(cal.b_, cpath, "b_")])
        if len(calibrators) != n_cols:
            raise Unsupported(
                mpath, "calibrators", len(calibrators), f"expected {n_cols} (one per decision column)"
            )
        members.append(
            {
                "base": base_spec,
                "class_indices": [int(x) for x in class_indices],
                "calibrators": calibrators,
            }
        )
    if not members:
        raise Unsupported(path, "calibrated_classifiers_", [], "the calibrator is not fitted")
    return {
        "kind": f"calibrated_{clf.method}",
        "estimator": "CalibratedClassifierCV",
        "classes": classes,
        "members": members,
    }


def _isotonic(cal: Any, path: str) -> dict:
    """A fitted `IsotonicRegression(out_of_bounds="clip")`: skedge clips to the first and last
    threshold and interpolates linearly between them, as `interp1d` does."""
    if type(cal) is not IsotonicRegression:
        raise Unsupported(path, "calibrator", type(cal).__name__, "expected an IsotonicRegression calibrator")
    if cal.out_of_bounds != "clip":
        raise Unsupported(path, "out_of_bounds", cal.out_of_bounds, "only out_of_bounds='clip' is supported")
    if not hasattr(cal, "X_thresholds_"):
        raise Unsupported(path, "X_thresholds_", None, "the calibrator is not fitted")
    # interp1d computes in the thresholds' dtype; only float64 is exact here.
    for name in ("X_thresholds_", "y_thresholds_"):
        if getattr(cal, name).dtype != np.float64:
            raise Unsupported(path, name, str(getattr(cal, name).dtype), "expected float64 thresholds")
    xs = _floats(cal.X_thresholds_, path, "X_thresholds_").tolist()
    ys = _floats(cal.y_thresholds_, path, "y_thresholds_").tolist()
    if not xs or len(xs) != len(ys) or np.ndim(cal.X_thresholds_) != 1:
        raise Unsupported(path, "X_thresholds_", len(xs), f"expected 1-D thresholds, as many as y ({len(ys)})")
    if any(a >= b for a, b in zip(xs, xs[1:])):
        raise Unsupported(path, "X_thresholds_", "unsorted", "expected strictly ascending thresholds")
    if float(cal.X_min_) != xs[0] or float(cal.X_max_) != xs[-1]:
        raise Unsupported(
            path, "X_min_", [float(cal.X_min_), float(cal.X_max_)], "expected X_min_/X_max_ at the first/last threshold"
        )
    return {"x": xs, "y": ys}


#: Final estimators whose decision is made of probabilities (held to the probability tolerance).
DECISION_IS_PROBA = ("CalibratedClassifierCV", "VotingClassifier")


def _voting(clf: Any, path: str, n_features: int) -> dict:
    """`VotingClassifier` over linear and naive Bayes estimators, fitted on the encoded labels."""
    if clf.voting not in ("soft", "hard"):
        raise Unsupported(path, "voting", clf.voting, "expected 'soft' or 'hard'")
    classes = _classes(clf.classes_, path)
    if not hasattr(clf, "estimators_") or not clf.estimators_:
        raise Unsupported(path, "estimators_", [], "the VotingClassifier is not fitted")
    # predict() names the winning class by `le_.inverse_transform`, not by `classes_`; fit() makes
    # one the other's.
    le = getattr(clf, "le_", None)
    if not _is_exact(le, LabelEncoder) or _classes(le.classes_, path) != classes:
        raise Unsupported(path, "le_", type(le).__name__, "expected the LabelEncoder fit() builds, of classes_")
    weights = clf._weights_not_none
    if weights is not None:
        weights = [_float(w, path, "weights") for w in weights]
        if len(weights) != len(clf.estimators_) or any(w < 0 for w in weights):
            # np.bincount's length follows the largest label voted for: with a negative weight a
            # class nobody voted for (0) can beat the votes, which skedge does not reproduce.
            raise Unsupported(path, "weights", weights, "expected one non-negative weight per estimator")
        if clf.voting == "soft" and float(np.sum(np.asarray(weights, dtype=np.float64))) == 0.0:
            raise Unsupported(path, "weights", weights, "soft voting weights sum to zero")
    encoded = list(range(len(classes)))
    estimators = []
    for i, est in enumerate(clf.estimators_):
        epath = f"{path}.estimators_[{i}]"
        if any(_is_exact(est, c) for c in _LINEAR_CLASSES):
            # VotingClassifier calls each member's predict_proba: softmax for a multiclass
            # LogisticRegression in this scikit-learn, however the member was trained.
            spec = _linear(est, epath, ovr_proba=False, n_features=n_features, warn_ovr=False)
            no_proba = spec["proba"] == "none"
        elif any(_is_exact(est, c) for c in _NB_CLASSES):
            spec = _naive_bayes(est, epath, n_features)
            no_proba = False
        else:
            raise Unsupported(
                epath, "estimator", type(est).__name__,
                "VotingClassifier is supported over linear and naive Bayes classifiers only",
            )
        if spec["classes"] != encoded:
            raise Unsupported(epath, "classes_", spec["classes"], f"expected the encoded labels {encoded}")
        if clf.voting == "soft" and no_proba:
            raise Unsupported(epath, "estimator", type(est).__name__, "voting='soft' needs predict_proba")
        estimators.append(spec)
    return {
        "kind": "voting",
        "estimator": "VotingClassifier",
        "classes": classes,
        "voting": clf.voting,
        "weights": weights,
        "estimators": estimators,
    }


def _ovr_has_proba(est: Any) -> bool:
    """Whether a binary sub-estimator's predict_proba is `_predict_proba_lr` (expit of the decision)."""
    return _is_exact(est, LogisticRegression) or (_is_exact(est, SGDClassifier) and est.loss == "log_loss")


def _one_vs_rest(clf: Any, path: str, n_features: int) -> dict:
    """OneVsRestClassifier over linear classifiers: one binary estimator per class (one for two
    classes) is one linear model whose coef_ rows are theirs; predict is the first argmax (1.9
    iterates in reverse to match np.argmax), predict_proba `one_vs_rest` (FORMAT.md)."""
    classes = _classes(clf.classes_, path)
    lb = getattr(clf, "label_binarizer_", None)
    if lb is None:
        raise Unsupported(path, "estimators_", None, "the classifier is not fitted")
    if lb.y_type_ not in ("binary", "multiclass"):
        raise Unsupported(path, "y_type_", lb.y_type_, "only binary and multiclass targets (not multilabel)")
    rows = 1 if len(classes) == 2 else len(classes)
    if len(clf.estimators_) != rows:
        raise Unsupported(path, "estimators_", len(clf.estimators_), f"expected {rows} for {len(classes)} classes")
    coef, intercept, probas = [], [], set()
    for i, est in enumerate(clf.estimators_):
        epath = f"{path}.estimators_[{i}]"
        if not any(_is_exact(est, c) for c in _LINEAR_CLASSES):
            raise Unsupported(
                epath, "estimator", type(est).__name__,
                "OneVsRestClassifier is supported over " + ", ".join(c.__name__ for c in _LINEAR_CLASSES)
                + " (a class seen always or never in training gives a constant predictor)",
            )
        if _is_exact(est, SGDClassifier) and est.loss == "modified_huber":
            raise Unsupported(
                epath, "loss", est.loss,
                "OneVsRestClassifier normalises modified_huber probabilities differently from "
                "SGDClassifier (a zero row stays zero): not exported",
            )
        spec = _linear(est, epath, ovr_proba=False, n_features=n_features, warn_ovr=False)
        coef.append(spec["coef"][0])
        intercept.append(spec["intercept"][0])
        probas.add(_ovr_has_proba(est))
    return {
        "kind": "linear",
        "estimator": "OneVsRestClassifier",
        "classes": classes,
        "coef": coef,
        "intercept": intercept,
        "proba": "one_vs_rest" if probas == {True} else "none",
    }


def _check_fitted(est: Any, path: str, attribute: str) -> None:
    """Refuses an estimator saved before fit (a HashingVectorizer needs no fit, so a pipeline
    starting with one can be saved with its classifier never fitted), naming the fitted
    `attribute` it lacks."""
    try:
        check_is_fitted(est)
    except NotFittedError:
        raise Unsupported(
            path, attribute, None, f"the {type(est).__name__} is not fitted: export the pipeline after fit()"
        ) from None


def _classifier(clf: Any, path: str, ovr_proba: bool, n_features: int) -> dict:
    known = _LINEAR_CLASSES + _NB_CLASSES + (CalibratedClassifierCV, OneVsRestClassifier, VotingClassifier)
    if not any(_is_exact(clf, c) for c in known):
        raise Unsupported(
            path, "estimator", type(clf).__name__, "supported classifiers: " + ", ".join(c.__name__ for c in known)
        )
    _check_fitted(clf, path, "classes_")
    if any(_is_exact(clf, c) for c in _LINEAR_CLASSES):
        return _linear(clf, path, ovr_proba, n_features)
    if _is_exact(clf, OneVsRestClassifier):
        return _one_vs_rest(clf, path, n_features)
    if any(_is_exact(clf, c) for c in _NB_CLASSES):
        return _naive_bayes(clf, path, n_features)
    if _is_exact(clf, CalibratedClassifierCV):
        return _calibrated(clf, path, n_features)
    return _voting(clf, path, n_features)


# ---------------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------------


def _takes_frame(pipe: Pipeline) -> bool:
    """Whether a Pipeline starts with a ColumnTransformer (or a Pipeline that does)."""
    steps = _pipeline_steps(pipe)
    first = steps[0][1] if steps else None
    return _is_exact(first, ColumnTransformer) or (_is_exact(first, Pipeline) and _takes_frame(first))


def flatten(estimator: Any, path: str = "pipeline") -> list:
    """[(path, step), ...] of a pipeline; the last one is the classifier. A nested Pipeline ending
    with the classifier is inlined, and so is a first one starting with a ColumnTransformer (a
    Pipeline runs its steps in turn: `Pipeline([("pre", Pipeline([ct, kbest])), ("clf", lr)])` is
    the flat one, whose first step takes the DataFrame)."""
    if not _is_exact(estimator, Pipeline):
        raise Unsupported(
            path, "estimator", type(estimator).__name__, "expected a fitted sklearn.pipeline.Pipeline"
        )
    out = []
    steps = _pipeline_steps(estimator)
    for i, (name, step) in enumerate(steps):
        spath = f"{path}.{name}"
        if _is_exact(step, Pipeline) and (i == len(steps) - 1 or (i == 0 and _takes_frame(step))):
            out.extend(flatten(step, spath))
        else:
            out.append((spath, step))
    return out


def _reading(path: str, step: Any, convert: Callable[[], Any]) -> Any:
    """`convert()`, whose unforeseen exceptions (a fitted attribute removed or of another type than
    fit() gives it) are refused naming the step, as the other refusals are (exit 2), not a crash."""
    try:
        return convert()
    except (Unsupported, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - reported with its type and message
        raise Unsupported(
            path, "fitted state", type(step).__name__,
            f"the exporter could not read it ({type(err).__name__}: {_show(str(err))}); a state fit() "
            "does not leave (an attribute set or deleted afterwards) is not supported",
        ) from err


def _walk(estimator: Any, ovr_proba: bool, ctx: _Context) -> tuple[dict, list]:
    steps = flatten(estimator)
    if len(steps) < 2:
        raise Unsupported(
            "pipeline", "steps", [p for p, _ in steps], "expected a vectorizer first and a classifier last"
        )
    (fpath, first), rest = steps[0], steps[1:]
    column = None
    if _is_exact(first, ColumnTransformer):
        stage, column = _reading(fpath, first, lambda: _column_transformer(first, fpath, ctx))
    else:
        stage = _reading(fpath, first, lambda: _features(first, fpath, ctx))
    for spath, step in rest[:-1]:
        _reading(spath, step, lambda: _apply_step(step, spath, stage, ctx))
    cpath, clf = rest[-1]
    classifier = _reading(cpath, clf, lambda: _classifier(clf, cpath, ovr_proba, stage.n_features))
    pipeline = {
        **({"input": {"kind": "column", "column": column}} if column is not None else {}),
        "features": [b.spec for b in stage.blocks],
        "transforms": stage.post,
        "classifier": classifier,
    }
    return pipeline, stage.blocks


#: FORMAT.md "Tolerance per precision mode": `exact` is bit-identical to scikit-learn; `compact`
#: rounds the classifier weights to float16 (done by `skedge pack`) and records the agreement
#: the exporter measured in `metadata.agreement`.
PRECISIONS = ("exact", "compact")


def _metadata(metadata: dict) -> dict:
    md = dict(metadata or {})
    unknown = set(md) - {
        "name",
        "version",
        "created",
        "sklearn_version",
        "python_version",
        "numpy_version",
        "unicode_version",
        "source_sha256",
        "precision",
        "provenance",
        "metrics",
    }
    if unknown:
        raise ValueError(f"unknown metadata keys: {sorted(unknown)}")
    # Never the export time: the artifact's bytes must not change when the same model is re-exported.
    created = str(md.get("created") or "")
    out = {
        "name": str(md.get("name", "")),
        "version": str(md.get("version", "")),
        "created": created,
        "sklearn_version": str(md.get("sklearn_version", sklearn.__version__)),
        "python_version": str(md.get("python_version", platform.python_version())),
        "numpy_version": str(md.get("numpy_version", np.__version__)),
        "unicode_version": str(md.get("unicode_version", unicodedata.unidata_version)),
        "source_sha256": str(md.get("source_sha256", "")),
        "precision": str(md.get("precision", "exact")),
        "provenance": {str(k): str(v) for k, v in (md.get("provenance") or {}).items()},
        "metrics": {},
    }
    for k, v in (md.get("metrics") or {}).items():
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"metric {k!r} is not finite: {v!r}")
        out["metrics"][str(k)] = f
    if out["precision"] not in PRECISIONS:
        raise ValueError(f"precision {out['precision']!r}: expected one of {', '.join(PRECISIONS)}")
    return out


def to_interchange(
    estimator: Any,
    metadata: dict,
    *,
    ovr_proba: bool = False,
    skedge: str | Path = DEFAULT_SKEDGE,
    log_table: Callable[[], list] | None = None,
) -> dict:
    """The interchange (FORMAT.md section 1) of a fitted text-classification Pipeline.

    `metadata` fills the `metadata` object; missing keys get defaults (versions of this Python,
    `created` = "": unknown). `log_exceptions` come from `skedge ln-table` at `skedge`, only when a
    `sublinear_tf` needs them; `log_table` (a callable returning [[k, value], ...]) replaces that.
    Raises `Unsupported` for anything the engine cannot reproduce exactly.
    """
    _refuse_replaced_methods(estimator, "pipeline", set())
    ctx = _Context(log_table or (lambda: log_exceptions(skedge)))
    pipeline, _ = _walk(estimator, ovr_proba, ctx)
    ctx.fill_log_exceptions()
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "metadata": _metadata(metadata),
        "pipeline": pipeline,
    }


def vectorizers(estimator: Any) -> list:
    """The vectorizer of each feature block, in block order (for `build_analyzer`)."""
    ctx = _Context(lambda: [])
    _, blocks = _walk(estimator, False, ctx)
    return [b.vectorizer for b in blocks]


def final_classifier(estimator: Any) -> Any:
    """The classifier at the end of the (flattened) pipeline."""
    return flatten(estimator)[-1][1]


def transform_features(estimator: Any, texts: list) -> Any:
    """The rows fed to the classifier: every flattened step but the last, as `pipeline[:-1]`."""
    X = model_input(estimator, texts)
    for _, step in flatten(estimator)[:-1]:
        X = step.transform(X)
    return X


def has_proba(clf: Any) -> bool:
    """Whether the classifier's interchange carries probabilities (`proba` != "none")."""
    if _is_exact(clf, LogisticRegression) or any(_is_exact(clf, c) for c in _NB_CLASSES):
        return True
    if _is_exact(clf, CalibratedClassifierCV):
        return True
    if _is_exact(clf, VotingClassifier):
        return clf.voting == "soft"
    if _is_exact(clf, OneVsRestClassifier):
        return all(_ovr_has_proba(e) for e in getattr(clf, "estimators_", [None]))
    return _is_exact(clf, SGDClassifier) and clf.loss in _SGD_PROBA


def reference_outputs(estimator: Any, texts: list, *, ovr_proba: bool = False) -> dict:
    """What scikit-learn computes for `texts`, in the shapes the engine reports.

    features: the CSR rows fed to the classifier; decision: 2-D float64 (decision_function for
    linear models, predict_joint_log_proba for naive Bayes, predict_proba for CalibratedClassifierCV);
    labels: Python ints or strs; proba: 2-D float64 or None. With `ovr_proba` a one-vs-rest
    LogisticRegression's proba is the OvR formula (`_predict_proba_lr`), as exported.
    """
    clf = final_classifier(estimator)
    X = transform_features(estimator, list(texts))
    if not sp.issparse(X):
        raise TypeError(f"the features fed to the classifier are {type(X).__name__}, expected sparse")
    X = sp.csr_array(X)
    if any(_is_exact(clf, c) for c in _NB_CLASSES):
        decision = clf.predict_joint_log_proba(X)
    elif _is_exact(clf, CalibratedClassifierCV) or (_is_exact(clf, VotingClassifier) and clf.voting == "soft"):
        decision = clf.predict_proba(X)
    elif _is_exact(clf, VotingClassifier):
        # hard voting: the weighted votes per class, as predict's np.bincount counts them
        votes = clf.transform(X)
        decision = np.array([np.bincount(row, weights=clf._weights_not_none, minlength=len(clf.classes_))
                             for row in np.asarray(votes)], dtype=np.float64)
    else:
        decision = clf.decision_function(X)
    decision = np.asarray(decision, dtype=np.float64).reshape(len(texts), -1)
    labels = np.asarray(clf.predict(X)).tolist()
    proba = None
    if _is_exact(clf, CalibratedClassifierCV) or (_is_exact(clf, VotingClassifier) and clf.voting == "soft"):
        proba = decision
    elif has_proba(clf):
        if ovr_proba and lr_is_ovr(clf):
            proba = clf._predict_proba_lr(X)
        else:
            proba = clf.predict_proba(X)
        proba = np.asarray(proba, dtype=np.float64)
    return {"features": X, "decision": decision, "labels": labels, "proba": proba}


def dumps_interchange(interchange: dict) -> str:
    """The interchange as JSON text: objects one key per line, arrays on one line.

    Floats are Python's repr (shortest round trip), as FORMAT.md requires; NaN is refused.
    """

    def enc(value: Any, indent: int) -> str:
        if isinstance(value, dict) and value:
            pad = " " * (indent + 2)
            items = [
                f"{pad}{json.dumps(str(k), ensure_ascii=False)}: {enc(v, indent + 2)}"
                for k, v in value.items()
            ]
            return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            pad = " " * (indent + 2)
            items = [f"{pad}{enc(v, indent + 2)}" for v in value]
            return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))

    return escape_line_separators(enc(interchange, 0)) + "\n"


def escape_line_separators(json_text: str) -> str:
    """Escape U+0085, U+2028 and U+2029 in JSON text (they only occur inside strings there).

    json.dumps(ensure_ascii=False) writes them raw; Python's str.splitlines() and some JSON-lines
    readers treat them as line breaks. The escaped form decodes to the same string.
    """
    return (
        json_text.replace("\x85", "\\u0085")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
