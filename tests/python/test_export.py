"""scripts/export.py end to end against the real CLI (skipped until target/release/skedge is built)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import warnings

import numpy as np
import pytest
from conftest import (
    DATA,
    REPO,
    SKEDGE,
    binary_corpus,
    dev_script,
    dump,
    fit,
    multiclass_corpus,
    no_leftovers,
    requires_skedge,
)

from skedge import export
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.svm import LinearSVC

MAGIC = b"\x89SKEDGE\n"


def _validation(tmp_path, corpus, n=60):
    """A validation TSV of n texts of the corpus (parity does not need unseen texts)."""
    texts, labels = corpus(n)
    path = tmp_path / "validation.tsv"
    rows = ["text\tlabel"] + [f"{t}\t{y}" for t, y in zip(texts, labels)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, texts


def _predict(artifact, texts):
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    proc = subprocess.run([str(SKEDGE), "predict", str(artifact), "--format", "jsonl"],
                          input=lines.encode(), capture_output=True, check=True)
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


@requires_skedge
@pytest.mark.parametrize(
    "make,corpus",
    [
        (lambda: make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2), LogisticRegression(max_iter=3000)),
         binary_corpus),
        (lambda: make_pipeline(TfidfVectorizer(sublinear_tf=True, min_df=2), MultinomialNB()),
         multiclass_corpus),
        (lambda: make_pipeline(
            FeatureUnion([("word", TfidfVectorizer(min_df=2)),
                          ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=3))],
                         transformer_weights={"char": 0.5}),
            CalibratedClassifierCV(LinearSVC(random_state=0), cv=3)),
         binary_corpus),
    ],
    ids=["word12_lr_binary", "sublinear_mnb_strings", "union_calibrated"],
)
def test_export_end_to_end(tmp_path, capsys, make, corpus):
    model = fit(make(), corpus)
    path = dump(model, tmp_path)
    validation, val_texts = _validation(tmp_path, corpus)
    out = tmp_path / "model.skedge"
    code = export.main(["--joblib", str(path), "--out", str(out), "--validation", str(validation),
                        "--name", "demo", "--version", "7"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "parity gate passed" in err
    assert out.read_bytes()[:8] == MAGIC
    written = {"model.skedge", "model.manifest.json", "model.parity.json"}
    assert no_leftovers(tmp_path, {"model.joblib", "validation.tsv"} | written) == []
    man = json.loads((tmp_path / "model.manifest.json").read_text())
    assert man["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and man["parity"]["passed"]
    assert json.loads((tmp_path / "model.parity.json").read_text())["sources"]["validation"] == 60

    got = _predict(out, val_texts)
    assert [g["label"] for g in got] == np.asarray(model.predict(val_texts)).tolist()

    info = json.loads(subprocess.run([str(SKEDGE), "inspect", str(out)], capture_output=True,
                                     check=True).stdout)
    assert info["name"] == "demo" and info["version"] == "7"
    assert info["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert 0.0 <= info["metrics"]["accuracy"] <= 1.0


@requires_skedge
def test_tampered_coefficient_fails_the_gate(tmp_path, capsys):
    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=3000)))
    path = dump(model, tmp_path)
    validation, _ = _validation(tmp_path, binary_corpus)
    out = tmp_path / "model.skedge"
    out.write_bytes(b"previous artifact")

    def tamper(inter):
        row = inter["pipeline"]["classifier"]["coef"][0]
        j = int(np.argmax(np.abs(row)))
        row[j] = -row[j]

    code = export.main(["--joblib", str(path), "--out", str(out), "--validation", str(validation)],
                       interchange_hook=tamper)
    err = capsys.readouterr().err
    assert code == 1
    assert "parity gate FAILED" in err and "decision" in err and "scikit-learn:" in err
    assert out.read_bytes() == b"previous artifact"  # an earlier file is never replaced by a bad one
    assert no_leftovers(tmp_path, {"model.joblib", "validation.tsv", "model.skedge"}) == []


@requires_skedge
def test_tampered_artifact_is_caught_by_parity_gate(tmp_path):
    """parity_gate on its own, against an artifact packed from an edited interchange."""
    model = fit(make_pipeline(CountVectorizer(), MultinomialNB()), multiclass_corpus)
    inter = export.build_interchange(model, source_sha256="0" * 64)
    artifact = tmp_path / "ok.skedge"
    export.pack(inter, artifact, SKEDGE)
    texts = multiclass_corpus()[0][:80]
    assert export.parity_gate(model, artifact, texts, SKEDGE).ok
    inter["pipeline"]["classifier"]["intercept"][0] += 1e-9
    export.pack(inter, artifact, SKEDGE)
    report = export.parity_gate(model, artifact, texts, SKEDGE)
    assert not report.ok
    assert report.mismatches[0].field.startswith("decision")


@requires_skedge
def test_ovr_logistic_regression_export(tmp_path, capsys):
    model = fit(make_pipeline(TfidfVectorizer(min_df=2), LogisticRegression(max_iter=3000)), multiclass_corpus)
    model[-1].__dict__["multi_class"] = "ovr"  # as unpickled from an older scikit-learn
    path = dump(model, tmp_path)
    for flag, expected in (([], "softmax"), (["--ovr-proba"], "OvR")):
        out = tmp_path / f"model{len(flag)}.skedge"
        code = export.main(["--joblib", str(path), "--out", str(out)] + flag)
        err = capsys.readouterr().err
        assert code == 0, err
        assert "WARNING" in err and "one-vs-rest" in err and expected in err
    texts = multiclass_corpus()[0][:30]
    ovr = np.array([g["proba"] for g in _predict(tmp_path / "model1.skedge", texts)])
    X = model[:-1].transform(texts)
    np.testing.assert_allclose(ovr, model[-1]._predict_proba_lr(X), rtol=0, atol=1e-12)
    soft = np.array([g["proba"] for g in _predict(tmp_path / "model0.skedge", texts)])
    np.testing.assert_allclose(soft, model.predict_proba(texts), rtol=0, atol=1e-12)


def test_missing_cli_exits_3_without_output(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fit(make_pipeline(CountVectorizer(), MultinomialNB()))
    path = dump(model, tmp_path)
    out = tmp_path / "model.skedge"
    code = export.main(["--joblib", str(path), "--out", str(out), "--skedge", str(tmp_path / "nope")])
    assert code == 3
    assert f"error[CLI_NOT_FOUND]: skedge CLI not found at {tmp_path / 'nope'}: pass --skedge" in capsys.readouterr().err
    assert no_leftovers(tmp_path, {"model.joblib"}) == []


def test_unreadable_model_exits_3(tmp_path, capsys):
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"not a pickle")
    assert export.main(["--joblib", str(bad), "--out", str(tmp_path / "m.skedge")]) == 3
    assert "cannot load" in capsys.readouterr().err
    assert no_leftovers(tmp_path, {"bad.joblib"}) == []


def test_validation_tsv_is_read_without_quote_handling(tmp_path):
    path = tmp_path / "v.tsv"
    path.write_text('text\tlabel\n"quoted" text\t1\nit \'s "fine\t0\n', encoding="utf-8")
    assert export.read_validation(path) == (['"quoted" text', 'it \'s "fine'], ["1", "0"])
    path.write_text("sentence\tlabel\nx\t1\n", encoding="utf-8")
    with pytest.raises(export.ExportError, match="header"):
        export.read_validation(path)


def test_committed_fixtures_match_their_manifest():
    """Cheap integrity check; the full regeneration is `make_fixtures.py --check`."""
    manifest_path = REPO / "tests" / "fixtures" / "MANIFEST.json"
    if not manifest_path.exists():
        pytest.skip("fixtures not generated yet")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    root = manifest_path.parent
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name
    for name, digest in manifest["corpora"].items():
        assert hashlib.sha256((REPO / name).read_bytes()).hexdigest() == digest, name
    on_disk = {str(p.relative_to(root)) for p in (root / "cases").iterdir()}
    assert on_disk == set(manifest["files"])
    assert DATA.exists()


def test_fixture_check_names_a_stale_file(tmp_path, capsys):
    """make_fixtures.py --check regenerates and byte-compares: an edited fixture is named."""
    import shutil

    make_fixtures = dev_script("make_fixtures")
    committed = REPO / "tests" / "fixtures"
    if not (committed / "MANIFEST.json").exists():
        pytest.skip("fixtures not generated yet")
    copy = tmp_path / "fixtures"
    shutil.copytree(committed / "cases", copy / "cases")
    shutil.copy(committed / "MANIFEST.json", copy / "MANIFEST.json")
    target = copy / "cases" / "word_tfidf_lr_binary.expected.jsonl"
    target.write_bytes(target.read_bytes().replace(b'"label":1', b'"label":0', 1))
    (copy / "cases" / "leftover.expected.jsonl").write_text("{}\n")
    assert make_fixtures.main(["--check", "--out", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "stale: tests/fixtures/cases/word_tfidf_lr_binary.expected.jsonl" in err
    assert "cases/leftover.expected.jsonl" in err


@requires_skedge
def test_dataframe_pipeline_exports_from_joblib(tmp_path, capsys):
    """A ColumnTransformer pipeline fitted on a DataFrame (the text column and a numeric one,
    dropped): exported from --joblib through the gate, which gives scikit-learn the frame and the
    artifact records; the records and the texts predict as `pipe.predict_proba(frame)`."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    texts, labels = binary_corpus()
    frame = pd.DataFrame({"review": texts, "stars": [len(t) % 5 for t in texts]})
    ct = ColumnTransformer([("word", TfidfVectorizer(ngram_range=(1, 2), min_df=2), "review"),
                            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=3), "review")],
                           transformer_weights={"char": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Pipeline([("prep", ct), ("clf", LogisticRegression(max_iter=3000))]).fit(frame, labels)
    out = tmp_path / "model.skedge"
    assert export.main(["--joblib", str(dump(model, tmp_path)), "--out", str(out)]) == 0, capsys.readouterr().err
    assert "parity gate passed" in capsys.readouterr().err
    info = json.loads(subprocess.run([str(SKEDGE), "inspect", str(out)], capture_output=True, check=True).stdout)
    assert info["input_column"] == "review" and info["format_version"] == 4
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["format_version"] == 4
    probe = ["A great place!", "never again", ""]
    want = model.predict_proba(pd.DataFrame({"review": probe}))
    lines = "".join(json.dumps({"review": t}) + "\n" for t in probe)
    proc = subprocess.run([str(SKEDGE), "predict", str(out), "--format", "jsonl"],
                          input=lines.encode(), capture_output=True, check=True)
    got = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [g["label"] for g in got] == model.predict(pd.DataFrame({"review": probe})).tolist()
    assert all(abs(a - b) <= 1e-12 for g, w in zip(got, want) for a, b in zip(g["proba"], w))
    # {"text": ...} is not this model's record.
    assert _predict_code(out, {"text": "great"}) == "INVALID_INPUT"


def _predict_code(artifact, record):
    proc = subprocess.run([str(SKEDGE), "predict", str(artifact), "--format", "jsonl"],
                          input=(json.dumps(record) + "\n").encode(), capture_output=True)
    return json.loads(proc.stdout)["error"]["code"]
