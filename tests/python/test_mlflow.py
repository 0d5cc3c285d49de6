"""The MLflow round trip (issue #5) against a real `mlflow server`.

A session fixture starts `mlflow server` on 127.0.0.1 (free port, sqlite backend, temporary artifact
root, one worker) and registers small real models (UCI Yelp sentences): skops (MLflow 3's default),
cloudpickle and pickle; one saved "with another scikit-learn"; a pyfunc-only model; one with a
custom type; one the engine cannot run. The tests then cover every URI form, stages and aliases,
loading, refusals, the parity gate on a tampered artifact, the write-back (artifacts and tags),
a byte-identical restore, --dry-run, an unreachable server (clear error, nothing left behind), and
a connection dropped under a download (a relay in front of the server: tried again, then refused).

Tests that run the engine skip only when target/release/skedge is missing (CI builds it first).
Telemetry is off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402

from skedge import manifest  # noqa: E402
from skedge import registry  # noqa: E402
from skedge import safe_load  # noqa: E402
from conftest import _free_port, dev_script  # noqa: E402

train_demo = dev_script("train_demo")

SKEDGE = ROOT / "target" / "release" / "skedge"
needs_skedge = pytest.mark.skipif(
    not SKEDGE.exists(), reason="target/release/skedge is not built (cargo build --release)"
)
EXPORT_PY = SCRIPTS / "export.py"


def _export_module():
    from skedge import export  # noqa: PLC0415

    return export


class Shout(BaseEstimator, TransformerMixin):
    """A custom transformer: not scikit-learn's, so skedge must refuse it by name."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return [str(x).upper() for x in X]


def _yelp() -> tuple[list, list]:
    texts, labels = train_demo.read_tsv(train_demo.DATA / "uci_yelp.tsv")
    return texts, labels


# ---------------------------------------------------------------------------------------------
# The server and the models
# ---------------------------------------------------------------------------------------------


def _register(pipeline, name, uri, texts, **kw):
    return train_demo.log_and_register(
        pipeline,
        name,
        tracking_uri=uri,
        example_texts=texts[:6],
        experiment="skedge-tests",
        params={"test": name},
        metrics={"accuracy": 0.5 + len(name) / 100},
        **kw,
    )


@pytest.fixture(scope="session")
def models(server):
    """Register the test models once; returns {key: ids dict + "pipeline"}."""
    uri = server["uri"]
    texts, labels = _yelp()
    xtr, ytr = texts[:800], labels[:800]

    def lr(c=1.0):
        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(C=c, max_iter=500)
        ).fit(xtr, ytr)

    out = {}
    p1, p2 = lr(1.0), lr(10.0)
    out["skops_v1"] = dict(_register(p1, "t_skops", uri, texts, alias="champion"), pipeline=p1)
    out["skops_v2"] = dict(
        _register(p2, "t_skops", uri, texts, alias="challenger", stage="Staging"), pipeline=p2
    )
    for fmt in ("cloudpickle", "pickle"):
        p = lr(3.0)
        out[fmt] = dict(
            _register(p, f"t_{fmt}", uri, texts, serialization_format=fmt), pipeline=p
        )
    p = lr(2.0)
    out["unregistered"] = dict(
        _register(p, "t_unregistered", uri, texts, register=False), pipeline=p
    )
    p = lr(5.0)
    out["tamper"] = dict(_register(p, "t_tamper", uri, texts), pipeline=p)
    for key in ("compact", "validation"):
        p = lr(4.0)
        out[key] = dict(_register(p, f"t_{key}", uri, texts), pipeline=p)

    # Logged "from Python 3.15.2": the MLmodel file records mlflow.pyfunc's PYTHON_VERSION.
    import mlflow.pyfunc  # noqa: PLC0415

    real = mlflow.pyfunc.PYTHON_VERSION
    mlflow.pyfunc.PYTHON_VERSION = "3.15.2"
    try:
        out["other_python"] = _register(lr(), "t_other_python", uri, texts)
    finally:
        mlflow.pyfunc.PYTHON_VERSION = real

    # Saved "with scikit-learn 1.5.2": the MLmodel file records sklearn.__version__ at save time.
    real = sklearn.__version__
    sklearn.__version__ = "1.5.2"
    try:
        out["old_sklearn"] = _register(lr(), "t_old_sklearn", uri, texts)
    finally:
        sklearn.__version__ = real

    custom = Pipeline(
        [("shout", Shout()), ("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]
    ).fit(xtr, ytr)
    out["custom"] = _register(
        custom, "t_custom", uri, texts, skops_trusted_types=[f"{Shout.__module__}.Shout"]
    )
    forest = make_pipeline(
        TfidfVectorizer(), RandomForestClassifier(n_estimators=3, random_state=0)
    ).fit(xtr, ytr)
    # skops flags sklearn's tree storage; the exporter still loads it (a scikit-learn type) and
    # then refuses the RandomForestClassifier by name, before anything calls it.
    out["forest"] = _register(
        forest, "t_forest", uri, texts, skops_trusted_types=["sklearn.tree._tree.Tree"]
    )

    import mlflow  # noqa: PLC0415

    with registry.using(uri), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "add type hints to predict"

        class Echo(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input: list[str], params=None) -> list[str]:
                return model_input

        exp = registry.ensure_experiment("skedge-tests", uri)
        with mlflow.start_run(experiment_id=exp):
            mlflow.pyfunc.log_model(
                name="model",
                python_model=Echo(),
                registered_model_name="t_pyfunc",
                pip_requirements=["mlflow"],
            )
    out["texts"], out["labels"] = texts, labels
    return out


@pytest.fixture()
def uri(server):
    return server["uri"]


def _predict(estimator, texts):
    return np.asarray(estimator.predict(texts)).tolist()


def _client(uri):
    return registry.client(uri)


# ---------------------------------------------------------------------------------------------
# Tracking URI and URI forms (no server needed)
# ---------------------------------------------------------------------------------------------


def test_tracking_uri_precedence(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert registry.resolve_tracking_uri("http://flag:5000") == "http://flag:5000"
    assert registry.resolve_tracking_uri(None) == "http://127.0.0.1:1"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    default = registry.resolve_tracking_uri(None)
    assert default == f"sqlite:///{ROOT / '.work' / 'mlflow' / 'mlflow.db'}"
    assert default.startswith("sqlite:////")  # absolute path


@pytest.mark.parametrize(
    "uri, kind, fields",
    [
        ("models:/m@production", "alias", {"name": "m", "alias": "production"}),
        ("models:/m/Production", "stage", {"name": "m", "stage": "Production"}),
        ("models:/m/7", "version", {"name": "m", "version": "7"}),
        ("models:/m/latest", "latest", {"name": "m"}),
        ("models:/m/LATEST", "latest", {"name": "m"}),
        ("models:/m-0123abcd", "model_id", {"model_id": "m-0123abcd"}),
        ("runs:/abc123/model", "run", {"run_id": "abc123", "path": "model"}),
        ("runs:/abc123/sub/model", "run", {"run_id": "abc123", "path": "sub/model"}),
    ],
)
def test_parse_every_uri_form(uri, kind, fields):
    p = registry.parse_model_uri(uri)
    assert p.kind == kind
    for key, value in fields.items():
        assert getattr(p, key) == value


@pytest.mark.parametrize(
    "bad", ["model.joblib", "models:/", "models:/a/b/c", "models:/a@", "runs:/abc", "s3://b/k"]
)
def test_parse_refuses_other_uris(bad):
    with pytest.raises(registry.RegistryError, match="URI"):
        registry.parse_model_uri(bad)


def test_error_messages_keep_what_mlflow_lists_below_the_first_line():
    """MLflow's failed downloads put the file and its error below a first line ending in a colon
    (store/artifact/artifact_repo.py); a message cut at that line said nothing of the cause."""
    text = (
        "The following failures occurred while downloading one or more artifacts from "
        "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/2/models/m-1/artifacts:\n"
        "##### File model.skops #####\n"
        "HTTPConnectionPool(host='127.0.0.1', port=5000): Read timed out. (read timeout=30)"
    )
    first = registry._first_lines(text)
    assert first.endswith("artifacts: File model.skops: HTTPConnectionPool(host='127.0.0.1', "
                          "port=5000): Read timed out. (read timeout=30)")  # fmt: skip
    assert registry._first_lines("Connection refused\n  at line 2") == "Connection refused"
    signed = "Failed:\n##### File model.pkl #####\n403 for url: https://b.blob.example/m/model.pkl?sv=1&sig=SECRET)"
    assert registry._first_lines(signed) == "Failed: File model.pkl: 403 for url: https://b.blob.example/m/model.pkl?...)"
    assert registry._first_lines("") == ""


def test_redact_uri():
    assert registry.redact_uri("https://u:secret@h:5000/p?token=x") == "https://h:5000/p"
    assert registry.redact_uri("sqlite:////x/mlflow.db") == "sqlite:////x/mlflow.db"


# ---------------------------------------------------------------------------------------------
# Resolution and loading
# ---------------------------------------------------------------------------------------------

FORMS = {
    "alias": ("models:/t_skops@champion", "skops_v1", {"alias": "champion"}),
    "alias_v2": ("models:/t_skops@challenger", "skops_v2", {"alias": "challenger"}),
    "stage": ("models:/t_skops/Production", "skops_v1", {"stage": "Production"}),
    "stage_lowercase": ("models:/t_skops/production", "skops_v1", {"stage": "Production"}),
    "stage_staging": ("models:/t_skops/Staging", "skops_v2", {"stage": "Staging"}),
    "version": ("models:/t_skops/1", "skops_v1", {}),
    "latest": ("models:/t_skops/latest", "skops_v2", {}),
    "model_id": ("models:/{model_id}", "skops_v1", {}),
    "run": ("runs:/{run_id}/model", "skops_v1", {}),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.team
def test_every_uri_form_resolves_and_loads(models, uri, form):
    template, key, extra = FORMS[form]
    m = models[key]
    model_uri = template.format(**m)
    loaded = registry.load_from_registry(model_uri, uri)
    r = loaded.resolved
    assert (r.name, r.version) == ("t_skops", m["version"])
    assert r.run_id == m["run_id"]
    assert r.model_id == m["model_id"]
    for field, value in extra.items():
        assert getattr(r, field) == value
    texts = models["texts"][800:900]
    assert _predict(loaded.estimator, texts) == _predict(m["pipeline"], texts)
    prov, request = loaded.provenance, loaded.request
    assert request["model_uri"] == model_uri and request["tracking_uri"] == uri
    assert "model_uri" not in prov and "alias" not in prov and "stage" not in prov
    assert prov["registered_model"] == "t_skops" and prov["version"] == m["version"]
    assert prov["run_id"] == m["run_id"] and prov["model_id"] == m["model_id"]
    assert prov["source_uri"] == f"models:/{m['model_id']}"
    assert prov["serialization_format"] == "skops" and prov["model_file"] == "model.skops"
    assert request.get("alias") == extra.get("alias") and request.get("stage") == extra.get("stage")
    md = loaded.metadata
    assert md["name"] == "t_skops" and md["version"] == m["version"]
    assert md["sklearn_version"] == sklearn.__version__
    assert md["metrics"]["accuracy"] == pytest.approx(0.5 + len("t_skops") / 100)
    assert len(md["source_sha256"]) == 64 and "exported_at" not in prov
    # `created` is the registry version's creation time, not the export's: re-exports give the same bytes
    mv = _client(uri).get_model_version("t_skops", m["version"])
    assert md["created"] == registry._rfc3339_ms(mv.creation_timestamp) != ""
    assert loaded.input_example_texts == models["texts"][:6]


def test_sha256_is_of_the_model_file(models, uri, tmp_path):
    import mlflow  # noqa: PLC0415

    m = models["skops_v1"]
    with registry.using(uri):
        local = mlflow.artifacts.download_artifacts(f"models:/{m['model_id']}", dst_path=tmp_path)
    expected = hashlib.sha256((Path(local) / "model.skops").read_bytes()).hexdigest()
    assert registry.load_from_registry("models:/t_skops/1", uri).sha256 == expected


def test_unregistered_logged_model(models, uri):
    m = models["unregistered"]
    for model_uri in (f"models:/{m['model_id']}", f"runs:/{m['run_id']}/model"):
        loaded = registry.load_from_registry(model_uri, uri)
        assert loaded.resolved.name is None and loaded.resolved.version is None
        assert loaded.resolved.model_id == m["model_id"]
        assert loaded.metadata["name"] == "model"  # the LoggedModel's name


@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle"])
def test_pickle_formats_load(models, uri, fmt):
    loaded = registry.load_from_registry(f"models:/t_{fmt}@production", uri)
    assert loaded.serialization_format == fmt and loaded.model_file == "model.pkl"
    texts = models["texts"][800:900]
    assert _predict(loaded.estimator, texts) == _predict(models[fmt]["pipeline"], texts)


@pytest.mark.parametrize(
    "model_uri, message",
    [
        ("models:/nope@production", r"no registered model 'nope'.*t_skops"),
        ("models:/t_skops@nope", r"no alias 'nope' \(aliases: challenger, champion\)"),
        ("models:/t_skops/99", r"no version 99"),
        ("models:/t_skops/Archived", r"no version in stage 'Archived'"),
        ("models:/t_skops/Prod", r"neither a version number, 'latest', nor a stage"),
        ("models:/m-00000000000000000000000000000000", r"no logged model"),
        ("runs:/00000000000000000000000000000000/model", r"run"),
    ],
)
def test_unknown_names_are_clear(models, uri, model_uri, message):
    with pytest.raises(registry.RegistryError, match=message):
        registry.load_from_registry(model_uri, uri)


def test_sklearn_version_mismatch(models, uri):
    with pytest.raises(registry.RegistryError) as err:
        registry.load_from_registry("models:/t_old_sklearn/1", uri)
    msg = str(err.value)
    assert "scikit-learn 1.5.2" in msg and f"scikit-learn {sklearn.__version__}" in msg
    assert "scikit-learn==1.5.2" in msg


def test_python_version_mismatch(models, uri):
    """A model logged from another Python minor version (another Unicode) is refused, naming both."""
    with pytest.raises(registry.RegistryError) as err:
        registry.load_from_registry("models:/t_other_python/1", uri)
    msg = str(err.value)
    assert "logged from Python 3.15.2" in msg and f"runs Python {platform.python_version()}" in msg
    assert "export under Python 3.15" in msg


def test_pyfunc_only_model_refused(models, uri):
    with pytest.raises(registry.RegistryError, match=r"no 'sklearn' flavour.*pyfunc"):
        registry.load_from_registry("models:/t_pyfunc/1", uri)


def test_custom_type_refused_by_name(models, uri):
    with pytest.raises(safe_load.ModelRefused, match=r"MODEL_REFUSED.*Shout.*outside skedge's allow-list"):
        registry.load_from_registry("models:/t_custom/1", uri)


def test_restricted_unpickler_refuses_foreign_globals(tmp_path):
    import pickle  # noqa: PLC0415

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(make_pipeline(Shout(), TfidfVectorizer())))
    with pytest.raises(safe_load.ModelRefused, match=r"Shout"):
        registry.load_pickle(path)
    path.write_bytes(pickle.dumps(os.system))  # the classic pickle exploit gadget
    with pytest.raises(safe_load.ModelRefused, match=r"(posix|os)\.system"):
        registry.load_pickle(path)


def test_pyfunc_signature_takes_raw_text(models, uri, monkeypatch):
    """The signature from a numpy object array makes pyfunc predict raw strings correctly."""
    import mlflow  # noqa: PLC0415

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")  # mlflow >= 3.11 gate
    texts = ["The food was great!", "Awful service, never again.", "ok"]
    with registry.using(uri):
        pyfunc = mlflow.pyfunc.load_model("models:/t_skops/1")
        got = np.asarray(pyfunc.predict(np.array(texts, dtype=object))).tolist()
    assert got == _predict(models["skops_v1"]["pipeline"], texts)


# ---------------------------------------------------------------------------------------------
# Unreachable MLflow
# ---------------------------------------------------------------------------------------------


def test_unreachable_server_fails_fast_and_leaves_nothing(tmp_path):
    dead = f"http://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(registry.RegistryError, match=r"unreachable"):
        registry.load_from_registry("models:/sentiment_model@production", dead)
    assert time.monotonic() - t0 < 10
    out = tmp_path / "out" / "m.skedge"
    logs = []
    rc = registry.export_model_uri(
        _export_module(), "models:/sentiment_model@production", out,
        tracking_uri=dead, log=logs.append,
    )  # fmt: skip
    assert rc == 3 and "unreachable" in "\n".join(logs)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    with pytest.raises(registry.RegistryError, match="unreachable"):
        registry.restore("models:/sentiment_model/1", tmp_path / "r.skedge", dead)
    assert not (tmp_path / "r.skedge").exists()


def test_missing_sqlite_store_is_clear(tmp_path):
    with pytest.raises(registry.RegistryError, match=r"no MLflow database"):
        registry.load_from_registry("models:/x/1", f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


# ---------------------------------------------------------------------------------------------
# Export, write-back, restore (the engine is needed from here on)
# ---------------------------------------------------------------------------------------------


def _skedge_artifacts(uri, run_id, folder="skedge"):
    """Every file below `folder` of the run (the exporter writes one folder per version)."""
    out = []
    for a in _client(uri).list_artifacts(run_id, folder):
        out += _skedge_artifacts(uri, run_id, a.path) if a.is_dir else [a.path]
    return sorted(out)


def _tags(uri, name, version):
    tags = _client(uri).get_model_version(name, version).tags
    return {k: v for k, v in tags.items() if k.startswith("skedge.")}


@pytest.fixture(scope="session")
def exported(models, server, tmp_path_factory):
    """models:/t_skops@champion exported once, with write-back."""
    out = tmp_path_factory.mktemp("export") / "t_skops.skedge"
    logs: list = []
    rc = registry.export_model_uri(
        _export_module(), "models:/t_skops@champion", out,
        tracking_uri=server["uri"], skedge=SKEDGE, log=logs.append,
    )  # fmt: skip
    return {"rc": rc, "out": out, "logs": logs}


@needs_skedge
def test_export_writes_artifact_manifest_and_report(models, exported, uri):
    assert exported["rc"] == 0, "\n".join(exported["logs"])
    out = exported["out"]
    man = json.loads(registry.manifest_path_for(out).read_text())
    data = out.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    assert man["sha256"] == sha and man["size"] == len(data) and man["file"] == out.name
    import base64  # noqa: PLC0415

    assert man["integrity"] == "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert man["format_version"] == 3 and man["precision"] == "exact"
    assert man["name"] == "t_skops" and man["version"] == "1"
    assert man["classes"] == ["negative", "positive"]
    assert man["parity"]["passed"] is True and man["parity"]["mismatches"] == 0
    assert man["parity"]["texts"] >= 6 + 100  # input example + adversarial set
    assert man["export"]["alias"] == "champion"
    assert man["export"]["model_uri"] == "models:/t_skops@champion"
    assert man["provenance"]["run_id"] == models["skops_v1"]["run_id"]
    assert man["metrics"]["accuracy"] == pytest.approx(0.57)
    assert manifest.check(out, man, SKEDGE) == []
    report = json.loads(registry.report_path_for(out).read_text())
    assert report["passed"] and report["sources"]["input_example"] == 6
    assert report["first_mismatches"] == []
    info = json.loads(
        subprocess.run([str(SKEDGE), "inspect", str(out)], capture_output=True, check=True).stdout
    )
    assert info["source_sha256"] == registry.load_from_registry("models:/t_skops/1", uri).sha256
    assert info["provenance"]["model_id"] == models["skops_v1"]["model_id"]


@needs_skedge
@pytest.mark.team
def test_export_writes_back_artifacts_and_tags(models, exported, uri):
    assert exported["rc"] == 0, "\n".join(exported["logs"])
    m = models["skops_v1"]
    assert _skedge_artifacts(uri, m["run_id"]) == [
        "skedge/t_skops/1/t_skops.manifest.json",
        "skedge/t_skops/1/t_skops.parity.json",
        "skedge/t_skops/1/t_skops.skedge",
    ]
    tags = _tags(uri, "t_skops", "1")
    sha = hashlib.sha256(exported["out"].read_bytes()).hexdigest()
    assert tags["skedge.sha256"] == sha
    assert tags["skedge.format_version"] == "3"
    assert tags["skedge.parity"].startswith("passed (")
    assert tags["skedge.exported_at"].endswith("Z")
    assert tags["skedge.artifact_path"] == "skedge/t_skops/1/t_skops.skedge"
    logged = _client(uri).get_logged_model(m["model_id"]).tags
    assert logged["skedge.sha256"] == sha
    # the other version is untouched
    assert _tags(uri, "t_skops", "2") == {}


@needs_skedge
@pytest.mark.team
def test_restore_is_byte_identical(models, exported, uri, tmp_path):
    assert exported["rc"] == 0
    dst = tmp_path / "restored" / "prod.skedge"
    got = registry.restore("models:/t_skops/1", dst, uri)
    assert dst.read_bytes() == exported["out"].read_bytes()
    assert got["sha256"] == hashlib.sha256(dst.read_bytes()).hexdigest()
    assert registry.manifest_path_for(dst).read_bytes() == (
        registry.manifest_path_for(exported["out"]).read_bytes()
    )
    # through the alias and the stage too
    for form in ("models:/t_skops@champion", "models:/t_skops/Production"):
        other = tmp_path / "again.skedge"
        registry.restore(form, other, uri)
        assert other.read_bytes() == exported["out"].read_bytes()


def test_restore_of_a_never_exported_version_is_clear(models, uri, tmp_path):
    with pytest.raises(registry.RegistryError, match=r"no skedge.sha256 tag"):
        registry.restore("models:/t_skops/2", tmp_path / "x.skedge", uri)
    assert not (tmp_path / "x.skedge").exists()


@needs_skedge
def test_parity_gate_fails_on_tampered_artifact(models, uri, tmp_path):
    """A coefficient changed in the interchange: the gate fails, nothing is written anywhere."""
    ex = _export_module()

    def tamper(inter):
        coef = inter["pipeline"]["classifier"]["coef"][0]
        j = max(range(len(coef)), key=lambda k: abs(coef[k]))
        coef[j] = -coef[j]

    out = tmp_path / "out" / "t.skedge"
    logs: list = []
    rc = registry.export_model_uri(
        ex, "models:/t_tamper@production", out,
        tracking_uri=uri, skedge=SKEDGE, interchange_hook=tamper, log=logs.append,
    )  # fmt: skip
    text = "\n".join(logs)
    assert rc == ex.EXIT_MISMATCH, text
    assert "parity gate FAILED" in text and "scikit-learn:" in text and "skedge:" in text
    assert not out.parent.exists()  # not even the folder it created
    m = models["tamper"]
    assert _skedge_artifacts(uri, m["run_id"]) == []
    assert _tags(uri, "t_tamper", m["version"]) == {}


@needs_skedge
def test_unsupported_model_is_refused_naming_the_step(models, uri, tmp_path):
    ex = _export_module()
    out = tmp_path / "f.skedge"
    logs: list = []
    rc = registry.export_model_uri(
        ex, "models:/t_forest/1", out, tracking_uri=uri, skedge=SKEDGE, log=logs.append
    )
    assert rc == ex.EXIT_UNSUPPORTED, logs
    assert "RandomForestClassifier" in "\n".join(logs)
    assert list(tmp_path.iterdir()) == []


@needs_skedge
def test_dry_run_writes_nothing_to_mlflow(models, uri, tmp_path):
    out = tmp_path / "c.skedge"
    logs: list = []
    rc = registry.export_model_uri(
        _export_module(), "models:/t_cloudpickle@production", out,
        tracking_uri=uri, skedge=SKEDGE, dry_run=True, log=logs.append,
    )  # fmt: skip
    assert rc == 0, logs
    assert list(tmp_path.iterdir()) == []  # no local file either
    assert "dry run" in "\n".join(logs) and "skedge.sha256 = " in "\n".join(logs)
    m = models["cloudpickle"]
    assert _skedge_artifacts(uri, m["run_id"]) == []
    assert _tags(uri, "t_cloudpickle", m["version"]) == {}


@needs_skedge
def test_compact_precision_from_the_registry(models, uri, tmp_path, monkeypatch):
    ex = _export_module()
    monkeypatch.setattr(ex, "PRECISION", ex.PrecisionMode("compact"))
    out = tmp_path / "compact.skedge"
    logs: list = []
    rc = registry.export_model_uri(
        ex, "models:/t_compact/1", out, tracking_uri=uri, skedge=SKEDGE, log=logs.append,
    )  # fmt: skip
    assert rc == 0, logs
    assert "compact precision gate passed" in "\n".join(logs)
    man = json.loads(registry.manifest_path_for(out).read_text())
    assert man["precision"] == "compact"
    assert man["parity"]["precision"] == "compact" and man["parity"]["label_changes"] == 0
    assert "precision compact" in registry.parity_tag(man["parity"])
    info = json.loads(subprocess.run([str(SKEDGE), "inspect", str(out)], capture_output=True,
                                     check=True).stdout)  # fmt: skip
    assert info["agreement"]["texts"] == man["parity"]["texts"]


@needs_skedge
def test_failed_write_back_leaves_no_local_output(models, uri, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise registry.RegistryError("MLflow at X became unreachable while logging")

    monkeypatch.setattr(registry, "write_back", boom)
    out = tmp_path / "p.skedge"
    rc = registry.export_model_uri(
        _export_module(), "models:/t_pickle/1", out, tracking_uri=uri, skedge=SKEDGE,
        log=lambda s: None,
    )  # fmt: skip
    assert rc == 3 and list(tmp_path.iterdir()) == []


@needs_skedge
def test_restore_refuses_an_overwritten_artifact(models, uri, tmp_path):
    """If someone replaces skedge/X.skedge in the run, the sha256 tag catches it."""
    ex = _export_module()
    out = tmp_path / "t_pickle.skedge"
    rc = registry.export_model_uri(
        ex, "models:/t_pickle/1", out, tracking_uri=uri, skedge=SKEDGE, log=lambda s: None
    )
    assert rc == 0
    fake = tmp_path / "fake" / "t_pickle.skedge"
    fake.parent.mkdir()
    fake.write_bytes(out.read_bytes()[:-1] + b"\x00")
    _client(uri).log_artifact(models["pickle"]["run_id"], str(fake), "skedge/t_pickle/1")
    dst = tmp_path / "restored.skedge"
    with pytest.raises(registry.RegistryError, match=r"overwritten or tampered"):
        registry.restore("models:/t_pickle/1", dst, uri)
    assert not dst.exists()


def _small(uri, name):
    texts, labels = _yelp()
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=500)).fit(texts[:300], labels[:300])
    return _register(pipe, name, uri, texts)


def _exp(uri, model_uri, out, **kw):
    logs: list = []
    rc = registry.export_model_uri(_export_module(), model_uri, out, tracking_uri=uri, skedge=SKEDGE,
                                   log=logs.append, **kw)  # fmt: skip
    return rc, "\n".join(logs)


def _logged_skedge_tags(uri, model_id):
    return {k: v for k, v in (_client(uri).get_logged_model(model_id).tags or {}).items() if k.startswith("skedge.")}


@needs_skedge
@pytest.mark.team
def test_versions_sharing_a_run_and_a_logged_model_keep_their_own_artifacts(uri, tmp_path):
    """A version copied to another registered model (dev -> prod) shares the run and the logged
    model: each export goes to its own folder and is judged by its own version's tags only."""
    ids = _small(uri, "t_share_dev")
    copy = _client(uri).copy_model_version(f"models:/t_share_dev/{ids['version']}", "t_share_prod")
    outs = {}
    for name, version in (("t_share_dev", ids["version"]), ("t_share_prod", str(copy.version))):
        outs[name] = tmp_path / name / "m.skedge"
        rc, logs = _exp(uri, f"models:/{name}/{version}", outs[name])
        assert rc == 0, logs  # not "already published" through the shared logged model's tags
    assert outs["t_share_dev"].read_bytes() != outs["t_share_prod"].read_bytes()  # provenance differs
    files = [f"skedge/{n}/1/m.{ext}" for n in ("t_share_dev", "t_share_prod") for ext in ("manifest.json", "parity.json", "skedge")]
    assert _skedge_artifacts(uri, ids["run_id"]) == sorted(files)
    for name, version in (("t_share_dev", ids["version"]), ("t_share_prod", str(copy.version))):
        dst = tmp_path / "restored" / f"{name}.skedge"
        registry.restore(f"models:/{name}/{version}", dst, uri)
        assert dst.read_bytes() == outs[name].read_bytes(), name
        assert _tags(uri, name, version)["skedge.artifact_path"] == f"skedge/{name}/1/m.skedge"


@needs_skedge
@pytest.mark.team
def test_a_failed_tagging_is_undone_and_a_lost_file_is_uploaded_again(uri, tmp_path, monkeypatch):
    import mlflow  # noqa: PLC0415

    ids = _small(uri, "t_tagfail")
    version = ids["version"]
    model_uri = f"models:/t_tagfail/{version}"
    real = mlflow.MlflowClient.set_model_version_tag

    def down_at_the_last_tag(self, name, v, key, value):
        if key == "skedge.sha256":
            raise ConnectionError("Connection refused: the tracking server went away")
        return real(self, name, v, key, value)

    # MLflow fails after every other tag was set: no tag may stay, naming files the undo removed.
    monkeypatch.setattr(mlflow.MlflowClient, "set_model_version_tag", down_at_the_last_tag)
    rc, logs = _exp(uri, model_uri, tmp_path / "a" / "m.skedge")
    monkeypatch.undo()
    assert rc == 3 and "unreachable" in logs, logs
    assert _tags(uri, "t_tagfail", version) == {}
    assert _logged_skedge_tags(uri, ids["model_id"]) == {}
    assert _skedge_artifacts(uri, ids["run_id"]) == []
    assert not (tmp_path / "a").exists()

    rc, logs = _exp(uri, model_uri, tmp_path / "b" / "m.skedge")
    assert rc == 0, logs
    tags = _tags(uri, "t_tagfail", version)
    # The run's file deleted behind the tag's back: the same bytes are uploaded again, not "unchanged".
    r = registry.resolve(model_uri, uri)
    registry._delete_run_artifact(_client(uri), r, tags["skedge.artifact_path"], print)
    rc, logs = _exp(uri, model_uri, tmp_path / "c" / "m.skedge")
    assert rc == 0 and "uploading them again" in logs and "already publishes" not in logs, logs
    registry.restore(model_uri, tmp_path / "r.skedge", uri)
    assert (tmp_path / "r.skedge").read_bytes() == (tmp_path / "b" / "m.skedge").read_bytes()

    # --force uploads again even when the tag and the file agree.
    calls: list = []
    real_upload = registry.upload
    monkeypatch.setattr(registry, "upload", lambda *a, **k: calls.append(1) or real_upload(*a, **k))
    rc, logs = _exp(uri, model_uri, tmp_path / "d" / "m.skedge", force=True)
    assert rc == 0 and calls, logs
    monkeypatch.undo()

    # A version published before per-version folders (its tag names skedge/legacy.skedge): the
    # same bytes are "unchanged", and the log shows the tag's path, not this export's.
    c = _client(uri)
    legacy = tmp_path / "legacy" / "legacy.skedge"
    legacy.parent.mkdir()
    legacy.write_bytes((tmp_path / "b" / "m.skedge").read_bytes())
    c.log_artifact(ids["run_id"], str(legacy), "skedge")
    c.set_model_version_tag("t_tagfail", version, "skedge.artifact_path", "skedge/legacy.skedge")
    rc, logs = _exp(uri, model_uri, tmp_path / "e" / "m.skedge")
    assert rc == 0 and "already publishes these exact bytes" in logs, logs
    assert "skedge.artifact_path = skedge/legacy.skedge" in logs, logs
    got = registry.restore(model_uri, tmp_path / "r2.skedge", uri)
    assert got["artifact_path"] == "skedge/legacy.skedge"
    assert (tmp_path / "r2.skedge").read_bytes() == legacy.read_bytes()


@needs_skedge
def test_local_write_failures_are_exit_3_and_leave_mlflow_untouched(models, uri, tmp_path, monkeypatch):
    ids = _small(uri, "t_local")
    model_uri = f"models:/t_local/{ids['version']}"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rc, logs = _exp(uri, model_uri, blocker / "m.skedge")
    assert rc == 3 and f"cannot write {blocker}" in logs, logs
    (tmp_path / "in-the-way.skedge").mkdir()
    rc, logs = _exp(uri, model_uri, tmp_path / "in-the-way.skedge")
    assert rc == 3 and "a folder is in the way" in logs, logs

    def full(self):
        raise OSError(28, "No space left on device", str(tmp_path / "m.skedge"))

    monkeypatch.setattr(manifest.Staging, "commit", full)
    rc, logs = _exp(uri, model_uri, tmp_path / "m.skedge")
    monkeypatch.undo()
    assert rc == 3 and "No space left on device" in logs, logs
    # the local files are written before MLflow: a failure there writes nothing to MLflow
    assert _tags(uri, "t_local", ids["version"]) == {}
    assert _skedge_artifacts(uri, ids["run_id"]) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "in-the-way.skedge"]

    # A dry run stages in the system's temporary folder: it works where nothing can be written.
    rc, logs = _exp(uri, model_uri, blocker / "sub" / "m.skedge", dry_run=True)
    assert rc == 0 and "dry run" in logs, logs

    rc, logs = _exp(uri, model_uri, tmp_path / "ok" / "m.skedge")
    assert rc == 0, logs
    logs_list: list = []
    assert registry.restore_main(model_uri, blocker / "r.skedge", uri, log=logs_list.append) == 3
    assert f"cannot write {blocker}" in "\n".join(logs_list)
    # --restore --dry-run downloads and checks, and writes nothing
    logs_list.clear()
    dst = tmp_path / "dry" / "r.skedge"
    assert registry.restore_main(model_uri, dst, uri, log=logs_list.append, dry_run=True) == 0
    assert "dry run" in "\n".join(logs_list) and "checked" in "\n".join(logs_list)
    assert not dst.parent.exists()


@needs_skedge
def test_sklearn_version_mismatch_has_its_code(models, uri, tmp_path):
    rc, logs = _exp(uri, "models:/t_old_sklearn/1", tmp_path / "m.skedge")
    assert rc == 3 and "error[SKLEARN_VERSION_MISMATCH]" in logs, logs
    assert list(tmp_path.iterdir()) == []


def _delete_model_files(server, model_id: str) -> list[str]:
    """Deletes the stored model files (`model.*`) of logged model `model_id` from the server's
    artifact store, as a lost or half-synced bucket would; returns their names."""
    gone = []
    if server["artifacts"] is not None:
        for path in Path(server["artifacts"]).rglob("model.*"):
            if model_id in path.parts:
                path.unlink()
                gone.append(path.name)
        return gone
    import boto3  # noqa: PLC0415

    from conftest import MOTO_CREDENTIALS  # noqa: PLC0415

    s3 = boto3.client("s3", endpoint_url=server["s3"], region_name="us-east-1", **MOTO_CREDENTIALS)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow"):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if model_id in key.split("/") and key.rsplit("/", 1)[-1].startswith("model."):
                s3.delete_object(Bucket="mlflow", Key=key)
                gone.append(key.rsplit("/", 1)[-1])
    return gone


@needs_skedge
def test_a_lost_model_file_is_named(models, server, uri, tmp_path):
    """A registered version whose model file is gone from the artifact store: the export fails
    with the registry's exit code, writes nothing, and its message names the missing file (the
    exporter lists the flavour's files before downloading, so MLflow's own download error, and
    `_first_lines`, are not reached here: the test above covers those)."""
    texts, labels = models["texts"][:300], models["labels"][:300]
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=500)).fit(texts, labels)
    ids = _register(pipe, "t_lost", uri, texts)
    gone = _delete_model_files(server, ids["model_id"])
    assert gone, ids
    logs: list = []
    out = tmp_path / "lost.skedge"
    rc = registry.export_model_uri(_export_module(), "models:/t_lost/1", out, tracking_uri=uri,
                                   skedge=SKEDGE, log=logs.append)  # fmt: skip
    text = "\n".join(logs)
    assert rc == 3 and list(tmp_path.iterdir()) == [], text
    assert any(name in text for name in gone), text


@needs_skedge
def test_validation_tsv_feeds_the_gate(models, uri, tmp_path):
    tsv = tmp_path / "val.tsv"
    texts, labels = models["texts"][900:1000], models["labels"][900:1000]
    with open(tsv, "w", encoding="utf-8", newline="") as f:
        f.write("text\tlabel\n")
        for t, y in zip(texts, labels):
            f.write(f"{t}\t{y}\n")
    out, logs = tmp_path / "v.skedge", []
    rc = registry.export_model_uri(
        _export_module(), "models:/t_validation/1", out, tracking_uri=uri, skedge=SKEDGE,
        validation=tsv, log=logs.append,
    )  # fmt: skip
    assert rc == 0
    report = json.loads(registry.report_path_for(out).read_text())
    assert report["sources"]["validation"] == 100
    man = json.loads(registry.manifest_path_for(out).read_text())
    assert 0.5 < man["metrics"]["validation_accuracy"] <= 1.0
    # the accuracy is printed beside the majority-class rate, as --joblib prints it
    assert f"validation accuracy {man['metrics']['validation_accuracy']:.4f} on 100 labelled texts" in "\n".join(logs)


# ---------------------------------------------------------------------------------------------
# The command line (scripts/export.py with the MLflow options)
# ---------------------------------------------------------------------------------------------


def _run_export(*args, env_extra=None):
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, str(EXPORT_PY), *args], capture_output=True, text=True, env=env,
        timeout=300,
    )  # fmt: skip


@needs_skedge
@pytest.mark.team
def test_cli_export_dry_run_and_restore(models, exported, uri, tmp_path):
    out = tmp_path / "cli" / "m.skedge"
    proc = _run_export(
        "--model-uri", "models:/t_skops/Staging", "--out", str(out), "--dry-run",
        env_extra={"MLFLOW_TRACKING_URI": uri},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not out.parent.exists() and "dry run" in proc.stderr
    assert _tags(uri, "t_skops", "2") == {}
    restored = tmp_path / "r.skedge"
    proc = _run_export("--restore", "models:/t_skops/1", "--out", str(restored),
                       "--tracking-uri", uri)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert restored.read_bytes() == exported["out"].read_bytes()


def test_cli_unreachable(tmp_path):
    out = tmp_path / "m.skedge"
    t0 = time.monotonic()
    proc = _run_export("--model-uri", "models:/x@production", "--out", str(out),
                       "--tracking-uri", f"http://127.0.0.1:{_free_port()}")  # fmt: skip
    assert proc.returncode == 3 and "unreachable" in proc.stderr
    assert time.monotonic() - t0 < 30
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Manifest and progress (no server)
# ---------------------------------------------------------------------------------------------


def test_manifest_check_detects_a_changed_byte(tmp_path):
    art = tmp_path / "m.skedge"
    art.write_bytes(b"\x89SKEDGE\n" + bytes(100))
    sha, integrity, size = manifest.digests(art)
    man = {"sha256": sha, "integrity": integrity, "size": size, "format_version": 2}
    assert manifest.check(art, man) == []
    art.write_bytes(b"\x89SKEDGE\n" + bytes(99) + b"\x01")
    problems = manifest.check(art, man)
    assert any("sha256" in p for p in problems) and any("integrity" in p for p in problems)


def test_parity_in_chunks_merges_and_shows_progress(capsys):
    ex = _export_module()

    def gate(chunk):
        report = ex.ParityReport(checked=len(chunk))
        for i, t in enumerate(chunk):
            if t == "bad":
                report.mismatches.append(ex.Mismatch(i, t, "label", 0, 1))
        report.max_proba_error = 1e-16
        return report

    texts = ["ok"] * 2500 + ["bad"] + ["ok"] * 10
    report = manifest.parity_in_chunks(gate, texts, chunk=1000, progress=True)
    assert report.checked == len(texts) and [m.index for m in report.mismatches] == [2500]
    err = capsys.readouterr().err
    assert "2511/2511 texts" in err and "[" in err


@pytest.mark.team
def test_hostile_registered_model_runs_nothing_on_the_export_host(server, models, tmp_path):
    """Issue #18: a registry writer replaces a registered pickle with one that asks protocol 4 for
    `numpy.f2py` + `subprocess.Popen`; `export.py --model-uri … --dry-run` refuses it by name
    (exit 2), the command never runs and nothing is written."""
    uri = server["uri"]
    texts, labels = _yelp()
    p = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=500)).fit(texts[:200], labels[:200])
    ids = _register(p, "t_hostile", uri, texts, serialization_format="pickle")
    if server["artifacts"] is not None:
        [stored] = [f for f in server["artifacts"].rglob("model.pkl") if ids["model_id"] in str(f)]
        replace = stored.write_bytes
    else:  # team backend: the pickle is an object in the S3 bucket behind the tracking server
        import boto3

        from conftest import MOTO_CREDENTIALS

        s3 = boto3.client("s3", endpoint_url=server["s3"], region_name="us-east-1", **MOTO_CREDENTIALS)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow")
        [key] = [o["Key"] for p in pages for o in p.get("Contents", [])
                 if ids["model_id"] in o["Key"] and o["Key"].endswith("/model.pkl")]  # fmt: skip

        def replace(body: bytes) -> None:
            s3.put_object(Bucket="mlflow", Key=key, Body=body)

    canary = tmp_path / "CANARY"

    def u(s: str) -> bytes:
        return b"\x8c" + bytes([len(s)]) + s.encode()

    argv = ["sh", "-c", f"touch {canary}"]
    replace(b"\x80\x04" + u("numpy.f2py") + u("subprocess.Popen") + b"\x93]("
                       + b"".join(u(a) for a in argv) + b"e\x85R.")  # fmt: skip
    out = tmp_path / "out" / "hostile.skedge"
    proc = subprocess.run(
        [sys.executable, str(EXPORT_PY), "--model-uri", f"models:/t_hostile/{ids['version']}", "--out", str(out),
         "--tracking-uri", uri, "--dry-run"],  # fmt: skip
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "error[MODEL_REFUSED]" in proc.stderr and "numpy.f2py.subprocess.Popen" in proc.stderr
    # --trust-pickle is refused with --model-uri ("applies to --joblib files only"): not suggested
    assert "--trust-pickle" not in proc.stderr
    assert not canary.exists()
    assert not out.parent.exists()


@needs_skedge
@pytest.mark.parametrize("fmt", ["skops", "cloudpickle"])
def test_dataframe_signature_model_exports(server, tmp_path, fmt):
    """What MLflow autologging and signatures give: a ColumnTransformer pipeline logged with a
    DataFrame signature and input example. It exports through the gate (scikit-learn gets the
    frame, the artifact the records), and the artifact records the column."""
    import mlflow  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    from mlflow.models import infer_signature  # noqa: PLC0415
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415

    uri = server["uri"]
    texts, labels = _yelp()
    frame = pd.DataFrame({"review": texts[:600], "stars": [len(t) % 5 for t in texts[:600]]})
    pipe = Pipeline([
        ("prep", ColumnTransformer([("tfidf", TfidfVectorizer(ngram_range=(1, 2)), "review")])),
        ("clf", LogisticRegression(max_iter=500)),
    ]).fit(frame, labels[:600])
    example = frame.head(6)
    name = f"t_dataframe_{fmt}"
    registry.prepare_tracking(uri)
    exp = registry.ensure_experiment("skedge-tests", uri)
    with registry.using(uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(experiment_id=exp):
            mlflow.sklearn.log_model(
                pipe, name="model", signature=infer_signature(example, pipe.predict(example)),
                input_example=example, serialization_format=fmt,
                pip_requirements=train_demo.pip_requirements(fmt), registered_model_name=name,
            )  # fmt: skip
    out = tmp_path / "df.skedge"
    logs: list = []
    rc = registry.export_model_uri(
        _export_module(), f"models:/{name}/1", out, tracking_uri=uri, skedge=SKEDGE, log=logs.append,
    )  # fmt: skip
    assert rc == 0, "\n".join(logs)
    report = json.loads(registry.report_path_for(out).read_text())
    assert report["passed"] and report["sources"]["input_example"] == 6
    info = json.loads(subprocess.run([str(SKEDGE), "inspect", str(out)], capture_output=True, check=True).stdout)
    assert info["input_column"] == "review" and info["format_version"] == 4
    record = json.dumps({"review": texts[700]}) + "\n"
    got = json.loads(subprocess.run([str(SKEDGE), "predict", str(out), "--format", "jsonl"],
                                    input=record.encode(), capture_output=True, check=True).stdout)
    want = pipe.predict_proba(pd.DataFrame({"review": [texts[700]]}))[0]
    assert all(abs(a - b) <= 1e-12 for a, b in zip(got["proba"], want))


# ---------------------------------------------------------------------------------------------
# A connection dropped under a download (the server closing an idle keep-alive connection)
# ---------------------------------------------------------------------------------------------


class _Relay:
    """A TCP relay on 127.0.0.1 in front of the real `mlflow server` that closes the client's
    connection, unanswered, when a request naming `drop` arrives (`times` times; -1: always): what
    the client sees when a server closes an idle keep-alive connection just as it is reused."""

    def __init__(self, upstream: str, drop: bytes, times: int):
        host, port = upstream.rsplit("//", 1)[1].split(":")
        self.upstream, self.drop, self.left = (host, int(port)), drop, times
        self.requests: list[bytes] = []
        self.dropped = 0
        self.open: list[socket.socket] = []  # both ends of every relayed connection, for close()
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:  # the client sees its connection closed, as it would without a relay
                client.close()
                continue
            with self.lock:
                self.open += (client, server)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src, dst, requests: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if requests:
                    line = chunk.split(b"\r\n", 1)[0]
                    with self.lock:
                        self.requests.append(line)
                        cut = self.drop in line and self.left != 0
                        if cut:
                            self.left -= 1
                            self.dropped += 1
                    if cut:
                        break
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        """Stop accepting, and end the connections MLflow's client keeps in its pool."""
        self.sock.close()
        with self.lock:
            for s in self.open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def _dropping(server, times: int) -> _Relay:
    """A relay that drops the first request of a download: the model file's GET when the server
    proxies artifacts (the team back-end), else the `get-download-uri` call that starts it."""
    drop = b"/model.skops " if server["artifacts"] is None else b"/get-download-uri?"
    return _Relay(server["uri"], drop, times)


def test_a_connection_dropped_under_a_download_is_tried_again(models, server, uri):
    expected = registry.load_from_registry("models:/t_validation/1", uri).sha256
    relay = _dropping(server, registry.DOWNLOAD_ATTEMPTS - 1)
    try:
        loaded = registry.load_from_registry("models:/t_validation/1", relay.uri)
    finally:
        relay.close()
    assert relay.dropped == registry.DOWNLOAD_ATTEMPTS - 1, relay.requests
    assert loaded.sha256 == expected


def test_a_download_dropped_every_time_fails_after_its_attempts(models, server):
    relay = _dropping(server, -1)
    try:
        with pytest.raises(registry.RegistryError) as err:
            registry.load_from_registry("models:/t_validation/1", relay.uri)
    finally:
        relay.close()
    assert relay.dropped == registry.DOWNLOAD_ATTEMPTS, relay.requests
    assert "became unreachable while downloading models:/t_validation/1" in str(err.value)
    assert "Connection aborted" in str(err.value), err.value
