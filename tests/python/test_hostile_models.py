"""Issue #18: a model file may name only what a supported pipeline needs (scripts/skedge/safe_load.py).

The corpus is built here: pickles (protocols 0-5, joblib, cloudpickle) and skops files that call
`subprocess.Popen` through a dotted protocol-4 name, `builtins.eval`, `os.system`, create or
truncate a file with `numpy.memmap`, or hide a gadget in `operator.attrgetter`,
`functools.partial`, a reduce or an object array. Each is refused with `MODEL_REFUSED` before any
of it runs: the canary command never runs, no file is created or truncated, and `export.py
--joblib` exits 2 leaving no output.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
from conftest import REPO, binary_corpus, dump, fit, no_leftovers

from skedge import export
from skedge import registry
from skedge import safe_load
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


def _u(s: str) -> bytes:
    """SHORT_BINUNICODE."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _protocol4_call(module: str, name: str, *args: str) -> bytes:
    """PROTO 4, STACK_GLOBAL(module, name), called on a tuple of strings (or one list of them)."""
    body = b"\x80\x04" + _u(module) + _u(name) + b"\x93"
    body += b"(" + b"".join(_u(a) for a in args) + b"t"
    return body + b"R."


def _protocol4_popen(module: str, name: str, argv: list) -> bytes:
    body = b"\x80\x04" + _u(module) + _u(name) + b"\x93"
    body += b"](" + b"".join(_u(a) for a in argv) + b"e\x85"
    return body + b"R."


class _Reduce:
    """An object that pickles as `func(*args)`."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _corpus(d: Path) -> dict:
    """name -> pickle bytes; each would touch `d/CANARY` or create/truncate a file in `d`."""
    canary = d / "CANARY"
    sh = f"touch {canary}"
    victim = d / "victim.txt"
    return {
        "protocol 4 numpy.f2py + subprocess.Popen": _protocol4_popen(
            "numpy.f2py", "subprocess.Popen", ["sh", "-c", sh]
        ),
        "protocol 4 sklearn + dotted os.system": _protocol4_call("sklearn.base", "os.system", sh),
        "protocol 4 allowed class, dotted attribute": _protocol4_call(
            "sklearn.pipeline", "Pipeline.__init__.__globals__", sh
        ),
        "builtins.eval (protocol 0)": (
            f"cbuiltins\neval\n(V__import__('os').system('{sh}')\ntR.".encode()
        ),
        "os.system": pickle.dumps(_Reduce(os.system, sh), protocol=2),
        "subprocess.check_call": pickle.dumps(_Reduce(subprocess.check_call, ["sh", "-c", sh])),
        "numpy.memmap w+ creates a file": pickle.dumps(
            _Reduce(np.memmap, str(d / "created.bin"), "uint8", "w+", 0, (16,))
        ),
        "numpy.memmap w+ truncates a file": pickle.dumps(
            _Reduce(np.memmap, str(victim), "uint8", "w+", 0, (1,))
        ),
        "operator.attrgetter": pickle.dumps(_Reduce(operator.attrgetter, "system")),
        "functools.partial": pickle.dumps(_Reduce(functools.partial, os.system, sh)),
        "reduce gadget inside a real pipeline": pickle.dumps(
            {"model": make_pipeline(TfidfVectorizer()), "x": _Reduce(os.system, sh)}
        ),
        "copyreg reconstructor of a foreign class": pickle.dumps(
            _Reduce(__import__("copyreg")._reconstructor, subprocess.Popen, object, None)
        ),
        "numpy.load with allow_pickle": pickle.dumps(_Reduce(np.load, str(victim), None, True)),
    }


def _assert_untouched(d: Path) -> None:
    assert not (d / "CANARY").exists(), "the canary command ran"
    assert not (d / "created.bin").exists(), "a file was created"
    assert (d / "victim.txt").read_text() == "keep me", "a file was truncated"


@pytest.fixture
def corpus_dir(tmp_path):
    (tmp_path / "victim.txt").write_text("keep me")
    return tmp_path


CASES = list(_corpus(Path("/nonexistent")))


@pytest.mark.parametrize("case", CASES)
def test_hostile_pickle_is_refused_before_it_runs(corpus_dir, case):
    path = corpus_dir / "model.pkl"
    path.write_bytes(_corpus(corpus_dir)[case])
    with pytest.raises(safe_load.ModelRefused) as err:
        registry.load_pickle(path)  # the MLflow pickle / cloudpickle path
    assert err.value.code == "MODEL_REFUSED" and "error[MODEL_REFUSED]" in str(err.value)
    _assert_untouched(corpus_dir)


@pytest.mark.parametrize("case", CASES)
def test_hostile_joblib_export_exits_2_and_leaves_nothing(corpus_dir, case, capsys):
    path = corpus_dir / "model.joblib"
    path.write_bytes(_corpus(corpus_dir)[case])
    out = corpus_dir / "out" / "model.skedge"
    assert export.main(["--joblib", str(path), "--out", str(out)]) == 2
    assert "error[MODEL_REFUSED]" in capsys.readouterr().err
    _assert_untouched(corpus_dir)
    assert no_leftovers(corpus_dir, {"model.joblib", "victim.txt"}) == []


def test_object_array_in_a_joblib_file_goes_through_the_same_allow_list(corpus_dir):
    """joblib pickles an object array's elements in a nested stream: a gadget there is refused."""
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = "fine", _Reduce(os.system, f"touch {corpus_dir / 'CANARY'}")
    for compress in (0, 3):
        path = corpus_dir / "model.joblib"
        joblib.dump({"coef": arr}, path, compress=compress)
        with pytest.raises(safe_load.ModelRefused, match=r"(posix|os)\.system"):
            safe_load.load_model_file(path)
        _assert_untouched(corpus_dir)


def test_cli_refusal_in_a_subprocess(corpus_dir):
    path = corpus_dir / "model.joblib"
    path.write_bytes(_corpus(corpus_dir)["protocol 4 numpy.f2py + subprocess.Popen"])
    out = corpus_dir / "m.skedge"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "export.py"), "--joblib", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "error[MODEL_REFUSED]" in proc.stderr and "numpy.f2py.subprocess.Popen" in proc.stderr
    # a --joblib file: --trust-pickle is this path's way to load a file you made yourself
    assert "(if you made this file yourself, --trust-pickle loads it as is)" in proc.stderr
    _assert_untouched(corpus_dir)
    assert not out.exists()


def test_trust_pickle_is_the_explicit_opt_out(corpus_dir):
    """A file you made yourself, with a custom preprocessor, loads only with --trust-pickle."""
    model = fit(make_pipeline(TfidfVectorizer(preprocessor=str.lower), LogisticRegression()))
    path = dump(model, corpus_dir)
    with pytest.raises(safe_load.ModelRefused, match=r"builtins\.getattr"):
        safe_load.load_model_file(path)
    loaded = safe_load.load_model_file(path, trusted=True)
    assert loaded.predict(["great food"]).tolist() == model.predict(["great food"]).tolist()
    with pytest.raises(SystemExit) as e:
        export.main(["--model-uri", "models:/m/1", "--out", "x.skedge", "--trust-pickle"])
    assert e.value.code == 3  # a usage error: 2 is "unsupported pipeline"


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_supported_pipelines_load_under_every_protocol(tmp_path, protocol):
    import cloudpickle  # noqa: PLC0415

    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    texts = binary_corpus()[0][:20]
    for name, data in (("p", pickle.dumps(model, protocol=protocol)), ("c", cloudpickle.dumps(model))):
        path = tmp_path / name
        path.write_bytes(data)
        got = safe_load.load_model_file(path)
        assert got.predict_proba(texts).tolist() == model.predict_proba(texts).tolist()


def test_a_dataframe_pipeline_loads_under_every_protocol_and_skops(tmp_path):
    """A ColumnTransformer pipeline fitted on a DataFrame (its fitted attributes: slices, an
    object array of column names, the remainder's column list) goes through the same allow-list."""
    import cloudpickle  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    import skops.io as sio  # noqa: PLC0415
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415

    texts, labels = binary_corpus()
    frame = pd.DataFrame({"text": texts, "n": [len(t) for t in texts]})
    model = Pipeline([("prep", ColumnTransformer([("t", TfidfVectorizer(), "text")])),
                      ("clf", LogisticRegression())]).fit(frame, labels)
    probe = frame.head(20)
    want = model.predict_proba(probe).tolist()
    blobs = [pickle.dumps(model, protocol=p) for p in (2, 3, 4, 5)] + [cloudpickle.dumps(model)]
    for i, data in enumerate(blobs):
        path = tmp_path / f"m{i}"
        path.write_bytes(data)
        assert safe_load.load_model_file(path).predict_proba(probe).tolist() == want
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    assert registry.load_skops(path).predict_proba(probe).tolist() == want


def _version_swapped(model, old: str) -> bytes:
    data = pickle.dumps(model)
    now = sklearn.__version__.encode()
    assert len(old) == len(now) and now in data
    return data.replace(now, old.encode())


def test_joblib_from_another_sklearn_is_refused(tmp_path, capsys):
    """The artifact would record the installed version: provenance that lies is refused."""
    old = "1.8.0" if sklearn.__version__ != "1.8.0" else "1.7.0"
    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    path = tmp_path / "model.joblib"
    path.write_bytes(_version_swapped(model, old))
    out = tmp_path / "model.skedge"
    assert export.main(["--joblib", str(path), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "error[SKLEARN_VERSION_MISMATCH]" in err
    assert f"scikit-learn {old}" in err and f"scikit-learn {sklearn.__version__}" in err
    assert no_leftovers(tmp_path, {"model.joblib"}) == []
    with pytest.raises(safe_load.VersionMismatch):  # --trust-pickle does not skip the check
        safe_load.load_model_file(path, trusted=True)


# ---------------------------------------------------------------------------------------------
# skops


def _skops_with(tmp_path: Path, edit) -> Path:
    """A real skops file of a supported pipeline whose schema `edit` changes."""
    import skops.io as sio  # noqa: PLC0415

    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    src = tmp_path / "good.skops"
    sio.dump(model, src)
    dst = tmp_path / "model.skops"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "schema.json":
                schema = json.loads(data)
                edit(schema)
                data = json.dumps(schema).encode()
            zout.writestr(item, data)
    return dst


def _set_param(schema: dict, key: str, node: dict) -> None:
    """Replace the first pipeline step's parameter `key` by `node`."""
    step = schema["content"]["content"]["steps"]["content"][0]["content"][1]
    step["content"]["content"][key] = node


def _function(module: str, name: str) -> dict:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode", "__id__": 1}


def _object(module: str, name: str, loader: str = "ObjectNode") -> dict:
    empty = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {}}
    return {"__class__": name, "__module__": module, "__loader__": loader, "content": empty, "__id__": 2}


SKOPS_CASES = {
    "numpy.distutils exec_command": lambda s: _set_param(
        s, "preprocessor", _function("numpy.distutils.exec_command", "exec_command")
    ),
    "os.system function": lambda s: _set_param(s, "tokenizer", _function("os", "system")),
    "builtins.eval function": lambda s: _set_param(s, "analyzer", _function("builtins", "eval")),
    "operator.attrgetter": lambda s: _set_param(s, "preprocessor", _object("operator", "attrgetter")),
    "functools.partial": lambda s: _set_param(s, "preprocessor", _object("functools", "partial")),
    "subprocess.Popen object": lambda s: _set_param(s, "preprocessor", _object("subprocess", "Popen")),
    "numpy.memmap": lambda s: _set_param(s, "preprocessor", _object("numpy", "memmap")),
    "a numpy function": lambda s: _set_param(s, "preprocessor", _function("numpy", "load")),
    "an allowed name through a callable node": lambda s: _set_param(
        s, "preprocessor", _object("sklearn.pipeline", "Pipeline", loader="MethodNode")
    ),
    "a sklearn estimator skedge does not export": lambda s: _set_param(
        s, "preprocessor", _object("sklearn.ensemble._forest", "RandomForestClassifier")
    ),
}


@pytest.mark.parametrize("case", list(SKOPS_CASES))
def test_hostile_skops_is_refused_by_name(tmp_path, case):
    path = _skops_with(tmp_path, SKOPS_CASES[case])
    with pytest.raises(safe_load.ModelRefused) as err:
        registry.load_skops(path)
    assert "error[MODEL_REFUSED]" in str(err.value)


def test_a_supported_skops_file_loads(tmp_path):
    path = _skops_with(tmp_path, lambda s: None)
    model = registry.load_skops(path)
    assert model.predict(["great food"]).tolist() in ([0], [1])


def test_skops_that_is_not_a_zip_is_unreadable(tmp_path):
    path = tmp_path / "model.skops"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(safe_load.LoadError) as err:
        registry.load_skops(path)
    assert err.value.code == "MODEL_UNREADABLE"


def test_the_allow_list_has_no_dotted_or_callable_surprises():
    """Every allowed name resolves to a class, or to one of the reconstructors pickle needs."""
    import importlib  # noqa: PLC0415

    for qual in sorted(safe_load.ALLOWED_CLASSES):
        module, _, name = qual.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue  # another numpy / sklearn spells it differently
        assert isinstance(obj, type), qual
        assert not issubclass(obj, np.memmap), qual
    for qual in sorted(safe_load.VALUE_ONLY_FUNCTIONS):
        module, _, name = qual.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), qual
        assert qual not in safe_load.ALLOWED_CLASSES | safe_load.ALLOWED_FUNCTIONS


def test_a_skops_selector_pipeline_loads(tmp_path):
    """skops names a selector's score function with a FunctionNode: allowed for the score
    functions only (skops imports it; transform never calls it)."""
    import skops.io as sio  # noqa: PLC0415
    from sklearn.feature_selection import SelectKBest, chi2  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    model = fit(make_pipeline(TfidfVectorizer(), SelectKBest(chi2, k=50), StandardScaler(with_mean=False),
                              LogisticRegression()))
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    texts = binary_corpus()[0][:30]
    assert registry.load_skops(path).predict_proba(texts).tolist() == model.predict_proba(texts).tolist()



# ---------------------------------------------------------------------------------------------
# defence in depth: the model is loaded in a child process without keys (skedge/isolated.py)


GOLDEN = REPO / "tests" / "golden"


def test_the_loading_process_sees_no_key_material(tmp_path, capsys, monkeypatch):
    """Even a file trusted by mistake runs where no key is: not in the environment, not in the
    arguments of the process that loads it."""
    env_file, args_file = tmp_path / "env.txt", tmp_path / "args.txt"
    spy = f"env > {env_file}; tr '\\0' ' ' < /proc/$PPID/cmdline > {args_file}"
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(_Reduce(os.system, spy)))
    monkeypatch.setenv("SKEDGE_DECRYPTION_KEY", "skedge-xchacha20poly1305-key:" + "ec" * 32)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "secret-token-7f")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-aws-9c")
    out = tmp_path / "model.skedge"
    code = export.main(["--joblib", str(path), "--out", str(out), "--trust-pickle",
                        "--sign-key", str(GOLDEN / "test-signing.key")])  # fmt: skip
    assert code == 2, capsys.readouterr().err  # an int is not a pipeline
    env, args = env_file.read_text(), args_file.read_text()
    for secret in ("SKEDGE_DECRYPTION_KEY", "ecececec", "secret-token-7f", "secret-aws-9c", "test-signing"):
        assert secret not in env and secret not in args, secret
    assert f"sys.path[0] = {str(Path(export.__file__).resolve().parents[1])!r}" in args  # this package
    assert "from skedge.isolated import main" in args
    assert not out.exists()


def test_a_crash_in_the_loading_process_is_a_coded_error_and_leaves_nothing(tmp_path, capsys):
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(_Reduce(os._exit, 7)))
    out = tmp_path / "out" / "model.skedge"
    assert export.main(["--joblib", str(path), "--out", str(out), "--trust-pickle"]) == 3
    err = capsys.readouterr().err
    assert "error[MODEL_UNREADABLE]" in err and "exit 7" in err, err
    assert no_leftovers(tmp_path, {"model.joblib"}) == []


def test_selectors_and_scalers_load_without_trust(tmp_path):
    """Feature selection and scalers are on the allow-list; a selector's score function is held
    as a name (`FunctionName`), never loaded as a function, and transform does not need it."""
    from sklearn.feature_selection import (  # noqa: PLC0415
        SelectFromModel,
        SelectKBest,
        VarianceThreshold,
        chi2,
    )
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler  # noqa: PLC0415
    from sklearn.svm import LinearSVC  # noqa: PLC0415

    model = fit(make_pipeline(
        TfidfVectorizer(), VarianceThreshold(1e-5), SelectKBest(chi2, k=200),
        SelectFromModel(LinearSVC(penalty="l1", dual=False)), MaxAbsScaler(), StandardScaler(with_mean=False),
        LogisticRegression()))
    texts = binary_corpus()[0][:50]
    path = dump(model, tmp_path)
    loaded = safe_load.load_model_file(path)
    assert isinstance(loaded.named_steps["selectkbest"].score_func, safe_load.FunctionName)
    assert repr(loaded.named_steps["selectkbest"].score_func) == f"{chi2.__module__}.chi2"
    assert loaded.predict_proba(texts).tolist() == model.predict_proba(texts).tolist()


def test_a_score_function_called_by_the_file_is_refused(tmp_path):
    """A file that calls an allowed score function (REDUCE) is refused by the function's name."""
    path = tmp_path / "model.pkl"
    path.write_bytes(_protocol4_call("sklearn.feature_selection._univariate_selection", "chi2", "a", "b"))
    with pytest.raises(safe_load.ModelRefused) as err:
        safe_load.load_model_file(path)
    assert "sklearn.feature_selection._univariate_selection.chi2" in str(err.value)


# ---------------------------------------------------------------------------------------------
# fitted states that scikit-learn runs but the exporter must not crash on: a coded refusal naming
# the step (exit 2), or an exact export


def _unfitted_cases() -> dict:
    from sklearn.calibration import CalibratedClassifierCV  # noqa: PLC0415
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.ensemble import VotingClassifier  # noqa: PLC0415
    from sklearn.feature_extraction.text import HashingVectorizer  # noqa: PLC0415
    from sklearn.multiclass import OneVsRestClassifier  # noqa: PLC0415
    from sklearn.naive_bayes import MultinomialNB  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.svm import LinearSVC  # noqa: PLC0415

    # A HashingVectorizer needs no fit: a pipeline starting with one can be saved before fit().
    return {
        "LogisticRegression": (make_pipeline(HashingVectorizer(), LogisticRegression()), "pipeline.logisticregression", "classes_"),
        "MultinomialNB": (make_pipeline(HashingVectorizer(alternate_sign=False), MultinomialNB()), "pipeline.multinomialnb", "classes_"),
        "CalibratedClassifierCV": (make_pipeline(HashingVectorizer(), CalibratedClassifierCV(LinearSVC())),
                                   "pipeline.calibratedclassifiercv", "classes_"),
        "VotingClassifier": (make_pipeline(HashingVectorizer(), VotingClassifier([("a", LogisticRegression())])),
                             "pipeline.votingclassifier", "classes_"),
        "OneVsRestClassifier": (make_pipeline(HashingVectorizer(), OneVsRestClassifier(LogisticRegression())),
                                "pipeline.onevsrestclassifier", "classes_"),
        "ColumnTransformer": (Pipeline([("ct", ColumnTransformer([("t", HashingVectorizer(), "text")])),
                                        ("c", LogisticRegression())]), "pipeline.ct", "transformers_"),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_unfitted_cases()))
def test_a_pipeline_saved_before_fit_is_refused_by_step(tmp_path, capsys, case):
    model, step, attribute = _unfitted_cases()[case]
    path = dump(model, tmp_path)
    assert export.main(["--joblib", str(path), "--out", str(tmp_path / "m.skedge")]) == 2
    err = capsys.readouterr().err
    assert f"step '{step}', {attribute}=None: the {case} is not fitted" in err, err
    assert "Traceback" not in err and "MODEL_UNREADABLE" not in err
    assert no_leftovers(tmp_path, {"model.joblib"}) == []


def test_a_fitted_attribute_deleted_after_fit_is_refused_by_step(tmp_path, capsys):
    """What the exporter reads but fit() always leaves: its absence is a refusal naming the step."""
    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    del model[-1].coef_
    path = dump(model, tmp_path)
    assert export.main(["--joblib", str(path), "--out", str(tmp_path / "m.skedge")]) == 2
    err = capsys.readouterr().err
    assert "step 'pipeline.logisticregression', fitted state='LogisticRegression'" in err and "AttributeError" in err, err
    assert "Traceback" not in err and "MODEL_UNREADABLE" not in err


def test_coefficients_wider_than_float64_are_refused():
    """scikit-learn computes the decision in long double; skedge would round every coefficient."""
    from sklearn.feature_extraction.text import CountVectorizer  # noqa: PLC0415
    from sklearn.pipeline import FeatureUnion  # noqa: PLC0415

    from skedge import interchange as ix  # noqa: PLC0415

    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is float64 on this platform")
    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    model[-1].coef_ = model[-1].coef_.astype(np.longdouble)
    with pytest.raises(ix.Unsupported) as err:
        ix.to_interchange(model, {}, log_table=lambda: [])
    assert (err.value.step_path, err.value.parameter) == ("pipeline.logisticregression", "coef_")
    assert err.value.value == np.dtype(np.longdouble).name and "wider than float64" in err.value.reason
    union = fit(make_pipeline(FeatureUnion([("w", CountVectorizer())], transformer_weights={"w": np.longdouble(2)}),
                              LogisticRegression()))
    with pytest.raises(ix.Unsupported, match=r"transformer_weights\['w'\]=.*wider than float64"):
        ix.to_interchange(union, {}, log_table=lambda: [])


def test_stop_words_that_are_not_strings_never_match_and_are_dropped(tmp_path, capsys):
    """fit() takes `stop_words=["the", 5, None]` (its consistency check swallows the error) and
    `token not in frozenset(...)` never matches a str token with them: the stop list is "the",
    for every word analyzer; another stop list set after fit is refused by name."""
    from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer  # noqa: PLC0415

    from skedge import interchange as ix  # noqa: PLC0415

    for vec in (CountVectorizer(stop_words=["the", 5, None, 2.5]), HashingVectorizer(stop_words=["the", 5, None])):
        model = fit(make_pipeline(vec, LogisticRegression()))
        inter = ix.to_interchange(model, {}, log_table=lambda: [])
        assert inter["pipeline"]["features"][0]["analyzer"]["stop_words"] == ["the"]
    model[0].stop_words = "englsh"
    with pytest.raises(ix.Unsupported) as err:
        ix.to_interchange(model, {}, log_table=lambda: [])
    assert (err.value.parameter, err.value.value) == ("stop_words", "englsh")
    model = fit(make_pipeline(CountVectorizer(stop_words=["the", 5]), LogisticRegression()))
    if not ix.DEFAULT_SKEDGE.exists():
        pytest.skip("target/release/skedge is not built")
    code = export.main(["--joblib", str(dump(model, tmp_path)), "--out", str(tmp_path / "m.skedge"), "--dry-run"])
    assert code == 0, capsys.readouterr().err
