"""`export.py --precision compact`: float16 weights, measured agreement stored in the artifact,
changed labels refused unless `--max-label-disagreement` allows them."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import SKEDGE, binary_corpus, dump, fit, no_leftovers, requires_skedge
from test_export import _predict, _validation

from skedge import export
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


@pytest.fixture(autouse=True)
def _reset_precision():
    yield
    export.PRECISION.name, export.PRECISION.max_label_disagreement = "exact", 0.0


def _inspect(artifact):
    return json.loads(subprocess.run([str(SKEDGE), "inspect", str(artifact)], capture_output=True,
                                     check=True).stdout)


def _model(tmp_path):
    model = fit(make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2),
                              LogisticRegression(max_iter=3000)))
    return model, dump(model, tmp_path)


@requires_skedge
def test_compact_export_is_smaller_and_records_its_agreement(tmp_path, capsys):
    model, path = _model(tmp_path)
    validation, texts = _validation(tmp_path, binary_corpus, n=120)
    exact, compact = tmp_path / "exact.skedge", tmp_path / "compact.skedge"
    assert export.main(["--joblib", str(path), "--out", str(exact), "--validation", str(validation)]) == 0
    code = export.main(["--joblib", str(path), "--out", str(compact), "--validation", str(validation),
                        "--precision", "compact"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "compact precision gate passed" in err and "0 changed" in err
    assert compact.stat().st_size < 0.8 * exact.stat().st_size

    info = _inspect(compact)
    assert info["precision"] == "compact"
    agreement = info["agreement"]
    assert agreement["label_changes"] == 0 and agreement["texts"] > len(texts)
    assert 0 < agreement["max_abs_decision_diff"] < 0.05
    assert 0 <= agreement["max_abs_proba_diff"] < 0.01
    assert _inspect(exact)["precision"] == "exact" and _inspect(exact)["agreement"] is None

    got = _predict(compact, texts)
    assert [g["label"] for g in got] == np.asarray(model.predict(texts)).tolist()
    ref = model.decision_function(texts)
    diff = max(abs(g["decision"][0] - r) for g, r in zip(got, ref))
    assert diff <= agreement["max_abs_decision_diff"]


def _flip_heaviest_weight(inter):
    """Stands in for a quantisation error large enough to change labels."""
    row = inter["pipeline"]["classifier"]["coef"][0]
    j = int(np.argmax(np.abs(row)))
    row[j] = -row[j]


@requires_skedge
def test_compact_refuses_changed_labels_unless_tolerated(tmp_path, capsys):
    _, path = _model(tmp_path)
    validation, _ = _validation(tmp_path, binary_corpus, n=120)
    out = tmp_path / "model.skedge"
    args = ["--joblib", str(path), "--out", str(out), "--validation", str(validation), "--precision", "compact"]

    assert export.main(args, interchange_hook=_flip_heaviest_weight) == export.EXIT_MISMATCH
    err = capsys.readouterr().err
    assert "compact precision gate FAILED" in err and "--max-label-disagreement" in err
    assert "label" in err and "scikit-learn:" in err
    assert not out.exists()
    assert no_leftovers(tmp_path, {"model.joblib", "validation.tsv"}) == []

    assert export.main(args + ["--max-label-disagreement", "100"], interchange_hook=_flip_heaviest_weight) == 0
    err = capsys.readouterr().err
    assert "compact precision gate passed" in err
    agreement = _inspect(out)["agreement"]
    assert agreement["label_changes"] > 0


def test_label_tolerance_needs_compact(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        export.main(["--joblib", "x", "--out", str(tmp_path / "m.skedge"), "--max-label-disagreement", "1"])
    assert e.value.code == 3  # usage errors are "other failure", not "unsupported pipeline"
    assert "needs --precision compact" in capsys.readouterr().err
