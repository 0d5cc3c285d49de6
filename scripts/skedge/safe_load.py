"""Loading a model file that skedge did not make: pickle, joblib, cloudpickle or skops, by name.

A pickle can run any code while it loads, and a skops file can name any function. Whoever can
register a model (or hand over a `.joblib`) is not trusted with code execution on the export host
(SECURITY.md), so every name a model file references must be on `ALLOWED`: the estimators the
exporter supports, the fitted-attribute types they hold (numpy arrays, dtypes and scalars, scipy
CSR matrices, sklearn's SGD/loss objects and calibrators), joblib's array wrapper and the few
functions pickle uses to rebuild them. Exact names only: a dotted `name` (pickle protocol 4's
attribute lookup, `numpy.f2py` + `subprocess.Popen`) is refused, so is any function that is not a
reconstructor, whatever its module.

`load_model_file(path)` reads pickle/joblib/cloudpickle (a plain pickle is a joblib file without
arrays), `load_skops(path)` skops files; both raise `ModelRefused` (code `MODEL_REFUSED`, exit 2:
the file names something skedge does not export) or `LoadError` (`MODEL_UNREADABLE`), and check
that the estimators were pickled by the installed scikit-learn (`SKLEARN_VERSION_MISMATCH`).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator

#: Every class a supported model file may reference (module.qualname, as pickle and skops name them).
ALLOWED_CLASSES = frozenset(
    {
        # the pipeline and the steps interchange.py exports
        "sklearn.pipeline.Pipeline",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.feature_extraction.text.CountVectorizer",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.feature_extraction.text.HashingVectorizer",
        "sklearn.preprocessing._data.Normalizer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.svm._classes.LinearSVC",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "sklearn.linear_model._ridge.RidgeClassifier",
        "sklearn.linear_model._perceptron.Perceptron",
        "sklearn.linear_model._passive_aggressive.PassiveAggressiveClassifier",
        "sklearn.naive_bayes.MultinomialNB",
        "sklearn.naive_bayes.ComplementNB",
        "sklearn.naive_bayes.BernoulliNB",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.isotonic.IsotonicRegression",
        "sklearn.ensemble._voting.VotingClassifier",
        "sklearn.frozen._frozen.FrozenEstimator",
        "sklearn.multiclass.OneVsRestClassifier",
        "sklearn.feature_selection._univariate_selection.SelectKBest",
        "sklearn.feature_selection._univariate_selection.SelectPercentile",
        "sklearn.feature_selection._univariate_selection.SelectFpr",
        "sklearn.feature_selection._univariate_selection.SelectFdr",
        "sklearn.feature_selection._univariate_selection.SelectFwe",
        "sklearn.feature_selection._variance_threshold.VarianceThreshold",
        "sklearn.feature_selection._from_model.SelectFromModel",
        "sklearn.preprocessing._data.MaxAbsScaler",
        "sklearn.preprocessing._data.StandardScaler",
        # fitted attributes of those steps
        "sklearn.preprocessing._label.LabelBinarizer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.utils._bunch.Bunch",
        "sklearn.linear_model._sgd_fast.Hinge",
        "sklearn.linear_model._sgd_fast.ModifiedHuber",
        "sklearn.linear_model._sgd_fast.SquaredHinge",
        "sklearn.linear_model._sgd_fast.EpsilonInsensitive",
        "sklearn.linear_model._sgd_fast.SquaredEpsilonInsensitive",
        "sklearn.linear_model._sgd_fast.Huber",
        "sklearn.linear_model._sgd_fast.SquaredLoss",
        "sklearn.linear_model._sgd_fast.Log",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss._loss.CyHuberLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "scipy.sparse._csr.csr_matrix",
        "scipy.sparse._csr.csr_array",
        # numpy arrays, dtypes and scalars
        "numpy.ndarray",
        "numpy.dtype",
        *(
            f"numpy.{t}"
            for t in (
                "bool_ bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 "
                "float16 float32 float64 longdouble str_ bytes_"
            ).split()
        ),
        *(
            f"numpy.dtypes.{t}DType"
            for t in (
                "Bool Int8 Int16 Int32 Int64 UInt8 UInt16 UInt32 UInt64 "
                "Float16 Float32 Float64 LongDouble Str Bytes Object"
            ).split()
        ),
        # joblib's placeholder for an array stored after the pickle (joblib.dump)
        "joblib.numpy_pickle.NumpyArrayWrapper",
        # containers
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.object",
        "collections.OrderedDict",
        "collections.defaultdict",
    }
)

#: The functions pickle itself calls to rebuild the types above (numpy 1.x and 2.x spellings).
ALLOWED_FUNCTIONS = frozenset(
    {
        "copyreg._reconstructor",
        "_codecs.encode",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy.core.multiarray.scalar",
        "numpy._core.numeric._frombuffer",
        "numpy.core.numeric._frombuffer",
    }
)

#: Functions a fitted step holds as a parameter, never calls after fit (a selector's
#: `score_func`: `transform` reads the stored `scores_`/`pvalues_`). Loaded as a `FunctionName`
#: standing for the function, so the file can neither call nor change it.
VALUE_ONLY_FUNCTIONS = frozenset(
    {
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
    }
)

#: Everything a model file may name.
ALLOWED = ALLOWED_CLASSES | ALLOWED_FUNCTIONS | VALUE_ONLY_FUNCTIONS


class FunctionCalled(Exception):
    """A model file called a function of `VALUE_ONLY_FUNCTIONS` while loading."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"{name} called")


class FunctionName:
    """Stands for a function of `VALUE_ONLY_FUNCTIONS` in a loaded model: calling it raises
    `FunctionCalled` (a pickle's REDUCE is refused by name), it is not a type (NEWOBJ fails) and
    no attribute can be set (BUILD fails)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{self.name} is read-only")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise FunctionCalled(self.name)

    def __reduce__(self):  # pragma: no cover - a loaded model is not pickled again by skedge
        raise pickle.PicklingError(f"{self.name} stands for a function that was not loaded")

    def __repr__(self) -> str:
        return self.name

#: skops node loaders of the types above (a FunctionNode, a MethodNode, an OperatorFuncNode, a
#: ReduceNode ... name or call callables and are never needed by a supported model).
SKOPS_LOADERS = frozenset(
    {
        "ObjectNode", "DictNode", "ListNode", "TupleNode", "SetNode", "JsonNode", "TypeNode",
        "NdArrayNode", "DTypeNode", "SparseMatrixNode", "BytesNode", "BytearrayNode", "SliceNode",
        "LossNode",
    }
)  # fmt: skip
#: Types skops writes for primitives and containers (its JsonNode spells every scalar as str).
SKOPS_BUILTINS = frozenset(
    {"builtins.str", "builtins.int", "builtins.float", "builtins.bool", "builtins.NoneType",
     "builtins.bytes", "builtins.bytearray"}
)  # fmt: skip

#: Largest skops schema read (a supported model's is a few hundred KB).
MAX_SKOPS_SCHEMA = 64 << 20


class LoadError(Exception):
    """A model file that cannot be loaded; `code` is stable (README, SECURITY.md)."""

    code = "MODEL_UNREADABLE"

    def __str__(self) -> str:
        return f"error[{self.code}]: {super().__str__()}"


class ModelRefused(LoadError):
    """The file names a type or function outside `ALLOWED`: refused before anything is called.
    The message says what, not what to do: `--trust-pickle` exists on export.py's `--joblib`
    path only, which adds it (`export.trust_pickle_hint`)."""

    code = "MODEL_REFUSED"

    def __init__(self, names: list, where: str):
        self.names = sorted(set(names))
        super().__init__(
            f"{where} references {', '.join(self.names)}, outside skedge's allow-list of "
            "scikit-learn estimators it exports and the numpy/scipy types they hold: refused "
            "without loading it"
        )


class VersionMismatch(LoadError):
    """The estimators were pickled by another scikit-learn than the installed one."""

    code = "SKLEARN_VERSION_MISMATCH"


def _check_name(module: str, name: str, refused: list) -> None:
    qual = f"{module}.{name}"
    if "." in name or qual not in ALLOWED:
        refused.append(qual)
        raise pickle.UnpicklingError(f"refused global {qual}")


def _restricted_unpickler(filename: str, fobj, refused: list):
    """joblib's unpickler (it reads plain pickles too) with `find_class` limited to `ALLOWED`.

    joblib routes the nested pickle of an object array through the same `find_class`; arrays are
    never memory-mapped (`mmap_mode=None`): `numpy.memmap` is not a type a model needs.
    """
    from joblib.numpy_pickle import NumpyUnpickler  # noqa: PLC0415

    class Restricted(NumpyUnpickler):
        dispatch = NumpyUnpickler.dispatch.copy()

        def find_class(self, module: str, name: str) -> Any:
            # Protocols 0-2 spell builtins the Python 2 way (`__builtin__.slice`): checked under
            # the name pickle itself would map them to.
            if self.proto < 3:
                import _compat_pickle  # noqa: PLC0415

                if (module, name) in _compat_pickle.NAME_MAPPING:
                    module, name = _compat_pickle.NAME_MAPPING[(module, name)]
                else:
                    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            _check_name(module, name, refused)
            if f"{module}.{name}" in VALUE_ONLY_FUNCTIONS:
                return FunctionName(f"{module}.{name}")
            return super().find_class(module, name)

    return Restricted(filename, fobj, True, mmap_mode=None)


def _version_check(caught: list, where: str) -> None:
    """sklearn's `__setstate__` warns when `_sklearn_version` in the state is not the installed
    one (a missing one reads as "pre-0.18"): the provenance would lie, so refuse."""
    import sklearn  # noqa: PLC0415
    from sklearn.exceptions import InconsistentVersionWarning  # noqa: PLC0415

    for w in caught:
        if issubclass(w.category, InconsistentVersionWarning):
            recorded = getattr(w.message, "original_sklearn_version", "unknown")
            raise VersionMismatch(
                f"{where} was saved with scikit-learn {recorded}, but this environment has "
                f"scikit-learn {sklearn.__version__}. Parity is only defined against the same "
                f"version: export from an environment with scikit-learn=={recorded}, or re-train "
                f"and save the model with {sklearn.__version__}."
            )


@contextlib.contextmanager
def _recording_versions() -> Iterator[list]:
    """Warnings recorded while loading, for `_version_check`."""
    from sklearn.exceptions import InconsistentVersionWarning  # noqa: PLC0415

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        yield caught


def load_model_file(path: str | Path, trusted: bool = False) -> Any:
    """The object in a pickle, cloudpickle or joblib file (compressed or not).

    Untrusted (the default): only the names in `ALLOWED`; `trusted=True` (`--trust-pickle`) is
    plain `joblib.load`, for files you made yourself. Both refuse another scikit-learn version.
    """
    import joblib  # noqa: PLC0415
    from joblib.numpy_pickle import _validate_fileobject_and_memmap  # noqa: PLC0415

    path = Path(path)
    where = path.name
    refused: list = []
    with _recording_versions() as caught:
        try:
            if trusted:
                obj = joblib.load(path)
            else:
                with open(path, "rb") as f, _validate_fileobject_and_memmap(f, str(path), None) as (
                    fobj,
                    _,
                ):
                    if isinstance(fobj, str):  # joblib < 0.10: arrays in companion files
                        raise LoadError(f"{where} is a joblib < 0.10 file: re-save it")
                    obj = _restricted_unpickler(str(path), fobj, refused).load()
        except LoadError:
            raise
        except FunctionCalled as err:
            raise ModelRefused([err.name], where) from None
        except Exception as err:  # noqa: BLE001 - unpickling raises anything for a bad file
            if refused:
                raise ModelRefused(refused, where) from None
            raise LoadError(f"cannot load {where}: {type(err).__name__}: {err}") from None
    _version_check(caught, where)
    return obj


def skops_names(path: str | Path) -> tuple[set, set]:
    """(type names, node loaders) of every node in a skops file's schema; a `FunctionNode` of
    `VALUE_ONLY_FUNCTIONS` (a selector's `score_func`: skops imports it, nothing calls it) counts
    as a name of that list, not as a loader."""
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("schema.json")
            if info.file_size > MAX_SKOPS_SCHEMA:
                raise LoadError(f"{Path(path).name}: schema of {info.file_size} bytes")
            schema = json.loads(z.read(info))
    except LoadError:
        raise
    except Exception as err:  # noqa: BLE001 - not a zip, no schema, not JSON
        raise LoadError(f"cannot read the skops file {Path(path).name}: {err}") from None
    names: set = set()
    loaders: set = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node or "__module__" in node or "__loader__" in node:
                name = f"{node.get('__module__')}.{node.get('__class__')}"
                names.add(name)
                loader = str(node.get("__loader__"))
                if not (loader == "FunctionNode" and name in VALUE_ONLY_FUNCTIONS):
                    loaders.add(loader)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names, loaders


def load_skops(path: str | Path) -> Any:
    """A skops file whose every node is a type of `ALLOWED` (or a skops primitive) built by a
    node loader of `SKOPS_LOADERS`; skops' own audit then trusts exactly the names it flags,
    all of them ours. The trusted-types list an MLmodel file records is ignored: it comes from
    the model itself."""
    try:
        import skops.io as sio  # noqa: PLC0415
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise LoadError("the model is saved with skops, which is not installed") from err
    where = Path(path).name
    names, loaders = skops_names(path)
    allowed = ALLOWED_CLASSES | VALUE_ONLY_FUNCTIONS | SKOPS_BUILTINS
    refused = sorted(n for n in names if n not in allowed)
    refused += sorted(f"{loader} node" for loader in loaders - SKOPS_LOADERS)
    if refused:
        raise ModelRefused(refused, where)
    try:
        untrusted = sio.get_untrusted_types(file=str(path))
    except Exception as err:  # noqa: BLE001
        raise LoadError(f"cannot read the skops file {where}: {err}") from None
    outside = [t for t in untrusted if t not in ALLOWED_CLASSES | VALUE_ONLY_FUNCTIONS]
    if outside:
        raise ModelRefused(outside, where)
    with _recording_versions() as caught:
        try:
            obj = sio.load(str(path), trusted=sorted(untrusted))
        except Exception as err:  # noqa: BLE001
            raise LoadError(f"cannot load the skops file {where}: {err}") from None
    _version_check(caught, where)
    return obj
