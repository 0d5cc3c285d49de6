"""The vectorizer and the classifier saved apart (issue #17, item 1): `--joblib CLF --vectorizer VEC`
and, from MLflow, `--model-uri ... --vectorizer-artifact PATH` with the classifier logged as a model
and the vectorizer as a run artifact (`mlflow.log_artifact`), against a real `mlflow server`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from conftest import REPO, SKEDGE, binary_corpus, dev_script, multiclass_corpus, no_leftovers, read_tsv, requires_skedge

from skedge import export
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.feature_selection import SelectKBest, VarianceThreshold, chi2
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.svm import LinearSVC


def _predict(artifact, texts):
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    proc = subprocess.run([str(SKEDGE), "predict", str(artifact), "--format", "jsonl"],
                          input=lines.encode(), capture_output=True, check=True)
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def _inspect(artifact):
    proc = subprocess.run([str(SKEDGE), "inspect", str(artifact)], capture_output=True, check=True)
    return json.loads(proc.stdout)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fit_apart(vec, clf, corpus=binary_corpus):
    texts, labels = corpus()
    vec.fit(texts)
    clf.fit(vec.transform(texts), labels)
    return vec, clf, texts


VECTORIZERS = {
    "tfidf_lr": (lambda: TfidfVectorizer(ngram_range=(1, 2), min_df=2),
                 lambda: LogisticRegression(max_iter=3000), binary_corpus),
    "union_nb": (lambda: FeatureUnion([("word", TfidfVectorizer(min_df=2)),
                                       ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3),
                                                                min_df=3))]),
                 MultinomialNB, multiclass_corpus),
    "pipeline_svc": (lambda: make_pipeline(CountVectorizer(min_df=2), TfidfTransformer(sublinear_tf=True)),
                     lambda: LinearSVC(random_state=0), binary_corpus),
    "pipeline_select_scale_ovr": (
        lambda: make_pipeline(CountVectorizer(min_df=2), VarianceThreshold(0.002), MaxAbsScaler()),
        lambda: OneVsRestClassifier(LogisticRegression(max_iter=3000)), multiclass_corpus),
}


@requires_skedge
@pytest.mark.parametrize("case", sorted(VECTORIZERS))
def test_two_joblib_files(tmp_path, capsys, case):
    make_vec, make_clf, corpus = VECTORIZERS[case]
    vec, clf, texts = _fit_apart(make_vec(), make_clf(), corpus)
    joblib.dump(clf, tmp_path / "sentiment_model.joblib")
    joblib.dump(vec, tmp_path / "tfidf_vectorizer.joblib")
    out = tmp_path / "m.skedge"
    code = export.main(["--joblib", str(tmp_path / "sentiment_model.joblib"),
                        "--vectorizer", str(tmp_path / "tfidf_vectorizer.joblib"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "parity gate passed" in err
    sample = texts[:40]
    got = _predict(out, sample)
    assert [g["label"] for g in got] == np.asarray(clf.predict(vec.transform(sample))).tolist()
    if hasattr(clf, "predict_proba"):
        np.testing.assert_allclose([g["proba"] for g in got], clf.predict_proba(vec.transform(sample)),
                                   rtol=0, atol=1e-12)
    info = _inspect(out)
    assert info["source_sha256"] == _sha(tmp_path / "sentiment_model.joblib")
    prov = info["provenance"]
    assert prov["source"] == "sentiment_model.joblib" and prov["vectorizer"] == "tfidf_vectorizer.joblib"
    assert prov["vectorizer_sha256"] == _sha(tmp_path / "tfidf_vectorizer.joblib")
    man = json.loads((tmp_path / "m.manifest.json").read_text())
    assert man["provenance"]["vectorizer_sha256"] == prov["vectorizer_sha256"]
    assert man["source_sha256"] == info["source_sha256"]
    assert man["export"]["vectorizer"] == str(tmp_path / "tfidf_vectorizer.joblib")


@requires_skedge
def test_skops_vectorizer_file(tmp_path, capsys):
    import skops.io as sio

    vec, clf, _ = _fit_apart(TfidfVectorizer(), LogisticRegression(max_iter=3000))
    joblib.dump(clf, tmp_path / "clf.joblib")
    sio.dump(vec, tmp_path / "vec.skops")
    code = export.main(["--joblib", str(tmp_path / "clf.joblib"), "--vectorizer", str(tmp_path / "vec.skops"),
                        "--out", str(tmp_path / "m.skedge")])
    assert code == 0, capsys.readouterr().err
    assert _inspect(tmp_path / "m.skedge")["provenance"]["vectorizer_sha256"] == _sha(tmp_path / "vec.skops")


def test_width_mismatch_is_refused_with_both_numbers(tmp_path, capsys):
    vec, clf, texts = _fit_apart(TfidfVectorizer(), LogisticRegression(max_iter=3000))
    other = TfidfVectorizer().fit(texts[:100])
    joblib.dump(clf, tmp_path / "clf.joblib")
    joblib.dump(other, tmp_path / "vec.joblib")
    code = export.main(["--joblib", str(tmp_path / "clf.joblib"), "--vectorizer", str(tmp_path / "vec.joblib"),
                        "--out", str(tmp_path / "m.skedge")])
    err = capsys.readouterr().err
    assert code == export.EXIT_FAILURE
    assert f"produces {len(other.vocabulary_)} features" in err
    assert f"n_features_in_ = {len(vec.vocabulary_)}" in err
    assert no_leftovers(tmp_path, {"clf.joblib", "vec.joblib"}) == []


def test_vectorizer_beside_a_whole_pipeline_is_refused(tmp_path, capsys):
    vec, _, texts = _fit_apart(TfidfVectorizer(), LogisticRegression(max_iter=3000))
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, binary_corpus()[1])
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    joblib.dump(vec, tmp_path / "vec.joblib")
    code = export.main(["--joblib", str(tmp_path / "pipe.joblib"), "--vectorizer", str(tmp_path / "vec.joblib"),
                        "--out", str(tmp_path / "m.skedge")])
    assert code == export.EXIT_FAILURE
    assert "already a pipeline starting with its vectorizer" in capsys.readouterr().err


def _export_two(tmp_path, clf, vec=None, *extra):
    joblib.dump(clf, tmp_path / "clf.joblib")
    argv = ["--joblib", str(tmp_path / "clf.joblib"), "--out", str(tmp_path / "m.skedge"), *extra]
    if vec is not None:
        joblib.dump(vec, tmp_path / "vec.joblib")
        argv += ["--vectorizer", str(tmp_path / "vec.joblib")]
    return export.main(argv)


def test_an_unfitted_selector_in_the_vectorizer_is_refused_by_name(tmp_path, capsys):
    texts, labels = binary_corpus()
    vec = make_pipeline(TfidfVectorizer(), SelectKBest(chi2, k=10))
    vec.steps[0][1].fit(texts)  # the selector never fitted
    clf = LogisticRegression().fit(vec.steps[0][1].transform(texts)[:, :10], labels)
    code = _export_two(tmp_path, clf, vec)
    err = capsys.readouterr().err
    assert code == export.EXIT_UNSUPPORTED, err
    assert "step 'pipeline.vectorizer.selectkbest'" in err and "NotFittedError" in err
    assert "MODEL_UNREADABLE" not in err
    assert no_leftovers(tmp_path, {"clf.joblib", "vec.joblib"}) == []


def test_a_classifier_pipeline_on_numbers_alone_points_at_the_option(tmp_path, capsys):
    texts, labels = binary_corpus()
    vec = TfidfVectorizer().fit(texts)
    clf = make_pipeline(MaxAbsScaler(), LogisticRegression()).fit(vec.transform(texts), labels)
    code = _export_two(tmp_path, clf)
    err = capsys.readouterr().err
    assert code == export.EXIT_UNSUPPORTED, err
    assert "without its vectorizer" in err and "give it with --vectorizer" in err
    assert f"expecting {len(vec.vocabulary_)} features" in err
    assert "refit without" not in err


def test_a_numeric_feature_union_is_not_taken_for_a_vectorizer(tmp_path, capsys):
    texts, labels = binary_corpus()
    vec = TfidfVectorizer().fit(texts)
    union = FeatureUnion([("k", SelectKBest(chi2, k=50)), ("vt", VarianceThreshold(0.0))])
    clf = Pipeline([("u", union), ("lr", LogisticRegression())]).fit(vec.transform(texts), labels)
    code = _export_two(tmp_path, clf, vec)
    err = capsys.readouterr().err
    # Composed, then refused by the interchange at the union (the one-file form's refusal).
    assert code == export.EXIT_UNSUPPORTED, err
    assert "already a pipeline starting with its vectorizer" not in err
    assert "step 'pipeline.classifier.u', estimator='FeatureUnion'" in err


def test_a_whole_model_given_as_the_vectorizer_is_named_so(tmp_path, capsys):
    texts, labels = binary_corpus()
    vec = TfidfVectorizer().fit(texts)
    clf = LogisticRegression().fit(vec.transform(texts), labels)
    whole = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    code = _export_two(tmp_path, clf, whole)
    err = capsys.readouterr().err
    assert code == export.EXIT_FAILURE, err
    assert "is a complete model" in err and "LogisticRegression" in err
    assert "refit without" not in err


@requires_skedge
def test_the_accuracy_is_printed_and_a_damaged_pair_warned_about(tmp_path, capsys):
    # The widths agree (max_features) but the vectorizer was refitted on other texts: nothing in
    # the two files shows it, the parity gate passes; the accuracy on labelled texts is the check.
    texts, labels = binary_corpus()
    val_texts, val_labels = read_tsv("sst2_dev.tsv")
    val = tmp_path / "val.tsv"
    val.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(val_texts, val_labels)),
                   encoding="utf-8")
    vec = TfidfVectorizer(max_features=500).fit(texts)
    clf = LogisticRegression().fit(vec.transform(texts), labels)
    good = _export_two(tmp_path, clf, vec, "--validation", str(val), "--dry-run")
    err = capsys.readouterr().err
    assert good == 0, err
    accuracy = float(np.mean(clf.predict(vec.transform(val_texts)) == np.asarray(val_labels, dtype=int)))
    assert f"validation accuracy {accuracy:.4f} on {len(val_texts)} labelled texts" in err
    assert "majority class" in err and "WARNING" not in err

    # Refitted on texts that share no word with these: every row empty, every answer the intercept's
    # class. A refit on overlapping texts kept part of the columns, and how much of the accuracy
    # was left depended on the machine (0.5333 against a majority rate of 0.5092 on an AVX2 one).
    other = TfidfVectorizer(max_features=500).fit([" ".join(f"zq{i:03d}{j}x" for j in range(5)) for i in range(100)])
    damaged = _export_two(tmp_path, clf, other, "--validation", str(val), "--dry-run")
    err = capsys.readouterr().err
    assert damaged == 0, err  # undetectable from the files: exported, with a warning
    assert "parity gate passed" in err
    assert "WARNING: the validation accuracy" in err and "at or below the majority-class rate" in err
    assert "only the width can be checked" in err


def test_vectorizer_options_go_with_their_source(tmp_path, capsys):
    with pytest.raises(SystemExit):
        export.main(["--model-uri", "models:/m/1", "--vectorizer", "v.joblib", "--out", str(tmp_path / "m.skedge")])
    assert "--vectorizer goes with --joblib" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export.main(["--joblib", "c.joblib", "--vectorizer-artifact", "p/v.joblib", "--out", "m.skedge"])
    assert "--vectorizer-artifact goes with --model-uri" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# From MLflow: the classifier registered, the vectorizer logged beside it as a run artifact
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_files(server, tmp_path_factory):
    """`sentiment_two` version 1 (stage Production): a LogisticRegression logged with
    mlflow.sklearn.log_model, its TfidfVectorizer logged with mlflow.log_artifact under
    preprocessing/, as the issue's team does."""
    import mlflow

    from skedge import registry
    train_demo = dev_script("train_demo")

    uri = server["uri"]
    vec, clf, texts = _fit_apart(TfidfVectorizer(ngram_range=(1, 2), min_df=2), LogisticRegression(max_iter=3000))
    files = tmp_path_factory.mktemp("two_files")
    joblib.dump(vec, files / "tfidf_vectorizer.joblib")
    exp = registry.ensure_experiment("skedge-two-files", uri)
    with registry.using(uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no signature; stages are deprecated
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.sklearn.log_model(clf, name="model", registered_model_name="sentiment_two",
                                     pip_requirements=train_demo.pip_requirements("skops"))
            mlflow.log_artifact(str(files / "tfidf_vectorizer.joblib"), "preprocessing")
        registry.client(uri).transition_model_version_stage("sentiment_two", "1", "Production")
    return {"uri": uri, "run_id": run.info.run_id, "vec": vec, "clf": clf, "texts": texts,
            "vec_sha": _sha(files / "tfidf_vectorizer.joblib")}


@requires_skedge
@pytest.mark.team
def test_cli_exports_the_two_files_from_the_registry(two_files, tmp_path):
    out = tmp_path / "sentiment.skedge"
    env = dict(os.environ, MLFLOW_TRACKING_URI=two_files["uri"], MLFLOW_DISABLE_TELEMETRY="true")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "export.py"), "--model-uri", "models:/sentiment_two/Production",
         "--vectorizer-artifact", "preprocessing/tfidf_vectorizer.joblib", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "parity gate passed" in proc.stderr
    run_id = two_files["run_id"]
    prov = _inspect(out)["provenance"]
    assert prov["vectorizer"] == f"runs:/{run_id}/preprocessing/tfidf_vectorizer.joblib"
    assert prov["vectorizer_sha256"] == two_files["vec_sha"]
    vec, clf = two_files["vec"], two_files["clf"]
    sample = two_files["texts"][:40]
    got = _predict(out, sample)
    np.testing.assert_allclose([g["proba"] for g in got], clf.predict_proba(vec.transform(sample)),
                               rtol=0, atol=1e-12)
    from skedge import registry

    tags = registry.client(two_files["uri"]).get_model_version("sentiment_two", "1").tags
    assert tags["skedge.sha256"] == _sha(out)


@requires_skedge
@pytest.mark.parametrize("form", ["runs_uri", "folder"])
def test_vectorizer_artifact_forms(two_files, tmp_path, form):
    from skedge import registry

    spec = {"runs_uri": f"runs:/{two_files['run_id']}/preprocessing/tfidf_vectorizer.joblib",
            "folder": "preprocessing"}[form]
    logs: list = []
    rc = registry.export_model_uri(export, "models:/sentiment_two/1", tmp_path / "m.skedge",
                                   tracking_uri=two_files["uri"], skedge=SKEDGE, vectorizer_artifact=spec,
                                   dry_run=True, log=logs.append)
    assert rc == 0, logs
    assert f"loaded the vectorizer runs:/{two_files['run_id']}/preprocessing/tfidf_vectorizer.joblib" in "\n".join(logs)
    assert "comes from run" not in "\n".join(logs)


def test_registry_classifier_alone_points_at_the_option(two_files, tmp_path):
    from skedge import registry

    logs: list = []
    rc = registry.export_model_uri(export, "models:/sentiment_two/1", tmp_path / "m.skedge",
                                   tracking_uri=two_files["uri"], skedge=SKEDGE, log=logs.append)
    assert rc == export.EXIT_UNSUPPORTED
    assert "classifier alone" in "\n".join(logs) and "--vectorizer-artifact" in "\n".join(logs)
    missing = registry.export_model_uri(export, "models:/sentiment_two/1", tmp_path / "m.skedge",
                                        tracking_uri=two_files["uri"], skedge=SKEDGE,
                                        vectorizer_artifact="preprocessing/nope.joblib", log=logs.append)
    assert missing == export.EXIT_FAILURE and "nope.joblib" in logs[-1]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def two_runs(server, tmp_path_factory):
    """`sentiment_scaled` version 1: a Pipeline(MaxAbsScaler, LogisticRegression) logged in one
    run; its TfidfVectorizer logged by another run under preprocessing/."""
    import mlflow

    from skedge import registry
    train_demo = dev_script("train_demo")

    uri = server["uri"]
    texts, labels = binary_corpus()
    vec = TfidfVectorizer(min_df=2).fit(texts)
    clf = make_pipeline(MaxAbsScaler(), LogisticRegression(max_iter=3000)).fit(vec.transform(texts), labels)
    files = tmp_path_factory.mktemp("two_runs")
    joblib.dump(vec, files / "tfidf_vectorizer.joblib")
    exp = registry.ensure_experiment("skedge-two-runs", uri)
    with registry.using(uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no signature
        with mlflow.start_run(experiment_id=exp) as model_run:
            mlflow.sklearn.log_model(clf, name="model", registered_model_name="sentiment_scaled",
                                     pip_requirements=train_demo.pip_requirements("skops"))
        with mlflow.start_run(experiment_id=exp) as vec_run:
            mlflow.log_artifact(str(files / "tfidf_vectorizer.joblib"), "preprocessing")
    return {"uri": uri, "model_run": model_run.info.run_id, "vec_run": vec_run.info.run_id}


def test_registry_classifier_pipeline_alone_points_at_the_option(two_runs, tmp_path):
    from skedge import registry

    logs: list = []
    rc = registry.export_model_uri(export, "models:/sentiment_scaled/1", tmp_path / "m.skedge",
                                   tracking_uri=two_runs["uri"], skedge=SKEDGE, log=logs.append)
    text = "\n".join(logs)
    assert rc == export.EXIT_UNSUPPORTED, text
    assert "without its vectorizer" in text and "give it with --vectorizer-artifact" in text
    assert "refit without" not in text
    assert list(tmp_path.iterdir()) == []


@requires_skedge
def test_a_vectorizer_from_another_run_is_warned_about(two_runs, tmp_path):
    from skedge import registry

    logs: list = []
    spec = f"runs:/{two_runs['vec_run']}/preprocessing/tfidf_vectorizer.joblib"
    rc = registry.export_model_uri(export, "models:/sentiment_scaled/1", tmp_path / "m.skedge",
                                   tracking_uri=two_runs["uri"], skedge=SKEDGE, vectorizer_artifact=spec,
                                   dry_run=True, log=logs.append)
    text = "\n".join(logs)
    assert rc == 0, text
    assert (f"WARNING: the vectorizer {spec} comes from run {two_runs['vec_run']}, the classifier from run "
            f"{two_runs['model_run']}") in text
