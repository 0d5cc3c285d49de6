"""Interchange generation: structure, round trip, classifier arithmetic, OvR warning, log table."""

from __future__ import annotations

import json
import math
import struct
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import SKEDGE, binary_corpus, fit, multiclass_corpus, requires_skedge
from scipy.special import expit, logsumexp

import skedge
from skedge import export
from skedge import interchange as ix
from skedge.adversarial import ADVERSARIAL, random_texts
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import VotingClassifier
from sklearn.feature_extraction.text import (
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.linear_model import (
    LogisticRegression,
    Perceptron,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, Normalizer
from sklearn.svm import LinearSVC

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from sklearn.linear_model import PassiveAggressiveClassifier


def _lr():
    return LogisticRegression(max_iter=3000)


def _roundtrip(d: dict) -> dict:
    text = ix.dumps_interchange(d)
    back = json.loads(text)
    assert back == d
    return back


# ---------------------------------------------------------------------------------------------
# a numpy model of the classifier formulas of FORMAT.md, fed with scikit-learn's features
# ---------------------------------------------------------------------------------------------


def _dot(X: sp.csr_array, coef: list, intercept) -> np.ndarray:
    W = np.asarray(coef, dtype=np.float64)
    out = (X @ W.T)
    if intercept is not None:
        out = out + np.asarray(intercept, dtype=np.float64)
    return out


def _linear_proba(kind: str, d: np.ndarray) -> np.ndarray | None:
    if kind == "none":
        return None
    if kind == "logistic":
        p = expit(d)
        if p.shape[1] == 1:
            return np.hstack([1 - p, p])
        s = p.sum(axis=1, keepdims=True)
        return p / s
    if kind == "softmax":
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if kind == "modified_huber":
        p = (np.clip(d, -1, 1) + 1) / 2
        if p.shape[1] == 1:
            return np.hstack([1 - p, p])
        s = p.sum(axis=1, keepdims=True)
        return np.where(s == 0, 1 / p.shape[1], p / np.where(s == 0, 1, s))
    raise AssertionError(kind)


def evaluate(clf: dict, X: sp.csr_array) -> tuple[np.ndarray, list, np.ndarray | None]:
    """(decision, labels, proba) of an interchange classifier on feature rows X."""
    classes = clf["classes"]
    if clf["kind"] == "linear":
        d = _dot(X, clf["coef"], clf["intercept"])
        if d.shape[1] == 1:
            labels = [classes[1] if v > 0 else classes[0] for v in d[:, 0]]
        else:
            labels = [classes[i] for i in d.argmax(axis=1)]
        return d, labels, _linear_proba(clf["proba"], d)
    if clf["kind"] == "naive_bayes":
        if clf["binarize"] is not None:
            X = X.copy()
            X.data = (X.data > clf["binarize"]).astype(np.float64)
        d = _dot(X, clf["coef"], clf["intercept"])
        proba = np.exp(d - logsumexp(d, axis=1, keepdims=True))
        return d, [classes[i] for i in d.argmax(axis=1)], proba
    assert clf["kind"] == "calibrated_sigmoid"
    n = len(classes)
    total = np.zeros((X.shape[0], n))
    for m in clf["members"]:
        d = _dot(X, m["base"]["coef"], m["base"]["intercept"])
        p = np.zeros((X.shape[0], n))
        for col, (idx, (a, b)) in enumerate(zip(m["class_indices"], m["calibrators"])):
            p[:, idx + 1 if n == 2 else idx] = expit(-(a * d[:, col] + b))
        if n == 2:
            p[:, 0] = 1 - p[:, 1]
        else:
            s = p.sum(axis=1, keepdims=True)
            p = np.where(s == 0, 1 / n, p / np.where(s == 0, 1, s))
        p[(p > 1) & (p <= 1 + 1e-5)] = 1
        total += p
    total /= len(clf["members"])
    return total, [classes[i] for i in total.argmax(axis=1)], total


CLASSIFIERS = [
    ("lr", _lr, "logistic", "softmax"),
    ("linearsvc", lambda: LinearSVC(random_state=0), "none", "none"),
    ("sgd_log", lambda: SGDClassifier(loss="log_loss", random_state=0), "logistic", "logistic"),
    ("sgd_huber", lambda: SGDClassifier(loss="modified_huber", random_state=0), "modified_huber", "modified_huber"),
    ("sgd_hinge", lambda: SGDClassifier(random_state=0), "none", "none"),
    ("sgd_squared_hinge", lambda: SGDClassifier(loss="squared_hinge", random_state=0), "none", "none"),
    ("sgd_perceptron", lambda: SGDClassifier(loss="perceptron", random_state=0), "none", "none"),
    ("ridge", RidgeClassifier, "none", "none"),
    ("ridge_no_intercept", lambda: RidgeClassifier(fit_intercept=False), "none", "none"),
    ("perceptron", lambda: Perceptron(random_state=0), "none", "none"),
    ("passive_aggressive", lambda: PassiveAggressiveClassifier(random_state=0), "none", "none"),
    ("svc_no_intercept", lambda: LinearSVC(fit_intercept=False, random_state=0), "none", "none"),
    ("mnb", MultinomialNB, None, None),
    ("cnb", ComplementNB, None, None),
    ("bnb", BernoulliNB, None, None),
    ("bnb_no_binarize", lambda: BernoulliNB(binarize=None), None, None),
    ("calibrated_svc", lambda: CalibratedClassifierCV(LinearSVC(random_state=0), cv=3), None, None),
    ("calibrated_lr_single", lambda: CalibratedClassifierCV(_lr(), cv=2, ensemble=False), None, None),
]


@pytest.mark.parametrize("corpus", [binary_corpus, multiclass_corpus], ids=["binary", "multiclass"])
@pytest.mark.parametrize("make,proba_binary,proba_multi", [c[1:] for c in CLASSIFIERS],
                         ids=[c[0] for c in CLASSIFIERS])
def test_classifier_formulas_reproduce_sklearn(corpus, make, proba_binary, proba_multi):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = fit(make_pipeline(TfidfVectorizer(min_df=2), make()), corpus)
    inter = _roundtrip(ix.to_interchange(model, {}))
    clf = inter["pipeline"]["classifier"]
    texts = corpus()[0][:150] + ADVERSARIAL[:60]
    ref = ix.reference_outputs(model, texts)
    decision, labels, proba = evaluate(clf, ref["features"])
    if clf["kind"] == "linear":
        expected_kind = proba_binary if corpus is binary_corpus else proba_multi
        assert clf["proba"] == expected_kind
        assert np.array_equal(decision, ref["decision"])  # same numpy ops: bit-identical
    else:
        np.testing.assert_allclose(decision, ref["decision"], rtol=0, atol=1e-12)
    assert labels == ref["labels"]
    assert all(type(a) is type(b) for a, b in zip(labels, ref["labels"]))
    if ref["proba"] is None:
        assert proba is None
    else:
        np.testing.assert_allclose(proba, ref["proba"], rtol=0, atol=1e-12)


def test_bernoulli_coef_and_intercept_as_sklearn_computes_them():
    model = fit(make_pipeline(CountVectorizer(binary=True), BernoulliNB(alpha=0.5)))
    nb = model[-1]
    clf = ix.to_interchange(model, {})["pipeline"]["classifier"]
    neg = np.log(1 - np.exp(nb.feature_log_prob_))
    assert np.array_equal(np.asarray(clf["coef"]), nb.feature_log_prob_ - neg)
    assert np.array_equal(np.asarray(clf["intercept"]), nb.class_log_prior_ + neg.sum(axis=1))
    assert clf["binarize"] == 0.0


def test_complement_nb_intercept_is_null():
    clf = ix.to_interchange(fit(make_pipeline(CountVectorizer(), ComplementNB())), {})["pipeline"]["classifier"]
    assert clf["intercept"] is None


def test_calibrated_members_and_class_indices():
    model = fit(make_pipeline(TfidfVectorizer(), CalibratedClassifierCV(LinearSVC(), cv=3)), multiclass_corpus)
    clf = ix.to_interchange(model, {})["pipeline"]["classifier"]
    assert clf["classes"] == ["mid", "neg", "pos"]
    assert len(clf["members"]) == 3
    for m, cc in zip(clf["members"], model[-1].calibrated_classifiers_):
        assert m["class_indices"] == [0, 1, 2]
        assert m["calibrators"] == [[c.a_, c.b_] for c in cc.calibrators]
        assert m["base"]["kind"] == "linear" and m["base"]["estimator"] == "LinearSVC"


# ---------------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------------


def test_vocabulary_is_listed_by_column_and_stop_words_sorted():
    model = fit(make_pipeline(TfidfVectorizer(stop_words="english", ngram_range=(1, 2)), _lr()))
    vec = model[0]
    block = _roundtrip(ix.to_interchange(model, {}))["pipeline"]["features"][0]
    vocab = block["counts"]["vocabulary"]
    assert len(vocab) == len(vec.vocabulary_)
    assert all(vec.vocabulary_[t] == i for i, t in enumerate(vocab))
    assert block["analyzer"]["stop_words"] == sorted(vec.get_stop_words())
    assert block["analyzer"] == {
        "kind": "word",
        "ngram_range": [1, 2],
        "lowercase": True,
        "strip_accents": None,
        "token_pattern": r"(?u)\b\w\w+\b",
        "stop_words": sorted(vec.get_stop_words()),
    }
    assert [t["kind"] for t in block["transforms"]] == ["tfidf", "normalize"]
    assert block["transforms"][0]["idf"] == vec.idf_.tolist()


def test_broken_vocabulary_is_refused():
    model = fit(make_pipeline(CountVectorizer(), _lr()))
    vocab = model[0].vocabulary_
    a, b = list(vocab)[:2]
    vocab[a] = vocab[b]
    with pytest.raises(ix.Unsupported, match="not a bijection"):
        ix.to_interchange(model, {})


def test_union_weights_drop_and_nesting():
    model = fit(Pipeline([
        ("union", FeatureUnion(
            [("word", TfidfVectorizer()),
             ("off", "drop"),
             ("char", Pipeline([("count", CountVectorizer(analyzer="char_wb", ngram_range=(2, 3))),
                                ("tfidf", TfidfTransformer(sublinear_tf=True))]))],
            transformer_weights={"word": 2.0, "char": 0.25, "off": 9.0})),
        ("clf", _lr()),
    ]))
    inter = _roundtrip(ix.to_interchange(model, {}, log_table=lambda: [[7, 1.5]]))
    word, char = inter["pipeline"]["features"]
    assert inter["pipeline"]["transforms"] == []
    assert [t["kind"] for t in word["transforms"]] == ["tfidf", "normalize", "scale"]
    assert word["transforms"][-1]["factor"] == 2.0
    assert [t["kind"] for t in char["transforms"]] == ["tfidf", "normalize", "scale"]
    assert char["transforms"][0]["sublinear_tf"] is True
    assert char["transforms"][0]["log_exceptions"] == [[7, 1.5]]
    assert word["transforms"][0]["log_exceptions"] == []
    assert char["transforms"][-1]["factor"] == 0.25
    assert char["analyzer"]["kind"] == "char_wb"
    n = len(word["counts"]["vocabulary"]) + len(char["counts"]["vocabulary"])
    assert len(inter["pipeline"]["classifier"]["coef"][0]) == n
    assert [v.__class__.__name__ for v in ix.vectorizers(model)] == ["TfidfVectorizer", "CountVectorizer"]


def test_transforms_after_the_union_apply_to_the_concatenation():
    model = fit(make_pipeline(
        FeatureUnion([("a", CountVectorizer()), ("b", HashingVectorizer(n_features=64, norm=None,
                                                                       alternate_sign=False))]),
        TfidfTransformer(sublinear_tf=True), Normalizer(norm="l1"), _lr()))
    inter = ix.to_interchange(model, {}, log_table=lambda: [])
    p = inter["pipeline"]
    assert [t["kind"] for t in p["transforms"]] == ["tfidf", "normalize", "normalize"]
    assert len(p["transforms"][0]["idf"]) == len(p["features"][0]["counts"]["vocabulary"]) + 64
    assert p["features"][1]["counts"] == {"kind": "hashing", "n_features": 64, "alternate_sign": False}
    assert all(b["transforms"] == [] for b in p["features"])


def test_hashing_l2_then_tfidf_is_normalize_tfidf_normalize():
    model = fit(make_pipeline(HashingVectorizer(n_features=2**8), TfidfTransformer(), LinearSVC()))
    block = ix.to_interchange(model, {})["pipeline"]["features"][0]
    assert [t["kind"] for t in block["transforms"]] == ["normalize", "tfidf", "normalize"]
    assert block["counts"]["alternate_sign"] is True


def test_tfidf_vectorizer_parameters_are_read_from_the_fitted_transformer():
    model = fit(make_pipeline(TfidfVectorizer(norm="l1", use_idf=False), _lr()))
    model[0].set_params(norm="l2", use_idf=True)  # transform() still uses the fitted _tfidf
    block = ix.to_interchange(model, {})["pipeline"]["features"][0]
    assert block["transforms"] == [
        {"kind": "tfidf", "sublinear_tf": False, "idf": None, "log_exceptions": []},
        {"kind": "normalize", "norm": "l1"},
    ]


def test_nested_pipelines_are_flattened():
    model = fit(Pipeline([
        ("features", Pipeline([("count", CountVectorizer(dtype=np.int32)), ("norm", Normalizer())])),
        ("model", Pipeline([("clf", _lr())])),
    ]))
    assert [p for p, _ in ix.flatten(model)] == ["pipeline.features", "pipeline.model.clf"]
    block = ix.to_interchange(model, {})["pipeline"]["features"][0]
    assert block["transforms"] == [{"kind": "normalize", "norm": "l2"}]


def test_labels_ints_and_strings():
    ints = ix.to_interchange(fit(make_pipeline(CountVectorizer(), _lr())), {})
    assert ints["pipeline"]["classifier"]["classes"] == [0, 1]
    assert all(type(c) is int for c in ints["pipeline"]["classifier"]["classes"])
    strs = ix.to_interchange(fit(make_pipeline(TfidfVectorizer(min_df=2), _lr()), multiclass_corpus), {})
    assert strs["pipeline"]["classifier"]["classes"] == ["mid", "neg", "pos"]


def test_metadata_defaults_and_order():
    md = ix.to_interchange(fit(make_pipeline(CountVectorizer(), _lr())),
                           {"name": "m", "created": "2000-01-01T00:00:00Z", "metrics": {"accuracy": 0.5}})
    assert list(md) == ["format", "version", "metadata", "pipeline"]
    assert md["format"] == "skedge-interchange" and md["version"] == 1
    meta = md["metadata"]
    assert list(meta) == ["name", "version", "created", "sklearn_version", "python_version",
                          "numpy_version", "unicode_version", "source_sha256", "precision",
                          "provenance", "metrics"]
    assert meta["precision"] == "exact" and meta["metrics"] == {"accuracy": 0.5}
    with pytest.raises(ValueError, match="unknown metadata"):
        ix.to_interchange(fit(make_pipeline(CountVectorizer(), _lr())), {"colour": "red"})


def test_json_floats_are_repr_and_line_separators_escaped():
    d = {"a": [0.1, 1e-300, -0.0, 5e-324], "s": "x\u2028y\x85z\u2029"}
    text = ix.dumps_interchange(d)
    assert "0.1" in text and "1e-300" in text and "-0.0" in text and "5e-324" in text
    assert "\u2028" not in text and "\x85" not in text and "\\u2028" in text
    assert json.loads(text) == d
    assert len(text.splitlines()) == text.count("\n")


# ---------------------------------------------------------------------------------------------
# one-vs-rest LogisticRegression from old pickles
# ---------------------------------------------------------------------------------------------


def _ovr_model(how: str):
    model = fit(make_pipeline(TfidfVectorizer(min_df=2), _lr()), multiclass_corpus)
    if how == "multi_class":
        model[-1].__dict__["multi_class"] = "ovr"
    else:
        model[-1].solver = "liblinear"
    return model


@pytest.mark.parametrize("how", ["multi_class", "liblinear"])
def test_ovr_logistic_regression_warns_and_exports_softmax(how):
    model = _ovr_model(how)
    assert ix.lr_is_ovr(model[-1])
    with pytest.warns(ix.OvrProbaWarning, match="one-vs-rest.*softmax"):
        inter = ix.to_interchange(model, {})
    assert inter["pipeline"]["classifier"]["proba"] == "softmax"
    with pytest.warns(ix.OvrProbaWarning, match="OvR"):
        inter = ix.to_interchange(model, {}, ovr_proba=True)
    assert inter["pipeline"]["classifier"]["proba"] == "logistic"
    texts = multiclass_corpus()[0][:50]
    ref = ix.reference_outputs(model, texts, ovr_proba=True)
    _, _, proba = evaluate(inter["pipeline"]["classifier"], ref["features"])
    np.testing.assert_allclose(proba, model[-1]._predict_proba_lr(ref["features"]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ref["proba"], proba, rtol=0, atol=1e-12)


def test_voting_member_trained_one_vs_rest_exports_softmax():
    """VotingClassifier calls each member's predict_proba, softmax for a multiclass
    LogisticRegression in this scikit-learn however the member says it was trained."""
    model = fit(make_pipeline(TfidfVectorizer(min_df=2), VotingClassifier(
        [("lr", _lr()), ("nb", MultinomialNB())], voting="soft")), multiclass_corpus)
    model[-1].estimators_[0].solver = "liblinear"
    assert ix.lr_is_ovr(model[-1].estimators_[0])
    member = ix.to_interchange(model, {})["pipeline"]["classifier"]["estimators"][0]
    assert member["proba"] == "softmax"
    X = ix.reference_outputs(model, multiclass_corpus()[0][:50])["features"]
    _, _, proba = evaluate(member, X)
    np.testing.assert_allclose(proba, model[-1].estimators_[0].predict_proba(X), rtol=0, atol=1e-12)


def test_multinomial_logistic_regression_does_not_warn():
    model = fit(make_pipeline(TfidfVectorizer(min_df=2), _lr()), multiclass_corpus)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ix.OvrProbaWarning)
        assert ix.to_interchange(model, {})["pipeline"]["classifier"]["proba"] == "softmax"


# ---------------------------------------------------------------------------------------------
# log_exceptions against `skedge ln-table` (a stub CLI here)
# ---------------------------------------------------------------------------------------------


def _stub(tmp_path, body: str):
    path = tmp_path / "skedge-stub"
    path.write_text(f"#!{sys.executable}\nimport sys, math, struct\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_log_exceptions_lists_where_numpy_and_the_cli_differ(tmp_path):
    stub = _stub(tmp_path, (
        "assert sys.argv[1:] == ['ln-table', '1048576'], sys.argv\n"
        "n = int(sys.argv[2])\n"
        "vals = [math.log(k) for k in range(1, n + 1)]\n"
        "vals[2] = math.nextafter(vals[2], 0)  # k = 3 off by one ulp\n"
        "vals[99] = 0.0                        # k = 100 wrong\n"
        "sys.stdout.buffer.write(struct.pack(f'<{n}d', *vals))"
    ))
    got = ix.compare_ln_tables(ix.skedge_ln_table(stub))
    fallback = ix.compare_ln_tables(ix.math_ln_table())
    numpy_values = ix.numpy_ln_table()
    expected = sorted({(k, v) for k, v in fallback} | {(3, numpy_values[2]), (100, numpy_values[99])})
    assert got == [[k, v] for k, v in expected]
    assert all(v == float(np.log(np.array([float(k)]))[0]) for k, v in got)
    assert ix.log_exceptions(stub) == got  # cached per CLI path


def test_log_table_cli_failures_are_reported(tmp_path):
    short = _stub(tmp_path, "sys.stdout.buffer.write(b'\\0' * 8)")
    with pytest.raises(RuntimeError, match="printed 8 bytes"):
        ix.skedge_ln_table(short)
    failing = _stub(tmp_path, "sys.stderr.write('no such command'); sys.exit(2)")
    with pytest.raises(RuntimeError, match="no such command"):
        ix.skedge_ln_table(failing)
    with pytest.raises(RuntimeError, match="cannot run"):
        ix.skedge_ln_table(tmp_path / "missing")


def test_log_exceptions_are_numpy_values_for_the_math_fallback():
    exc = ix.log_exceptions_math_fallback()
    assert exc == sorted(exc)
    for k, v in exc:
        assert v == float(np.log(np.float64(k)))
        assert v != math.log(k)
        assert abs(struct.unpack("<q", struct.pack("<d", v))[0]
                   - struct.unpack("<q", struct.pack("<d", math.log(k)))[0]) == 1


# ---------------------------------------------------------------------------------------------
# the adversarial set
# ---------------------------------------------------------------------------------------------


def test_adversarial_set():
    assert len(ADVERSARIAL) >= 150
    assert len(set(ADVERSARIAL)) == len(ADVERSARIAL)
    for t in ADVERSARIAL + random_texts():
        t.encode("utf-8")  # no lone surrogates
    sizes = sorted(len(t.encode("utf-8")) for t in ADVERSARIAL)
    assert sum(10_000 <= s <= 50_000 for s in sizes) >= 3
    for needle in ["", "\t", "\x1c", "\x85", "\xa0", "\u2028", "\u3000", "ΟΔΟΣ", "ΣΑΣ.", "İ", "ß",
                   "ﬁ", "ＡＢＣ", "don't", "½", "①", "²", "𝑒"]:
        assert any(needle in t for t in ADVERSARIAL), needle


def test_random_texts_are_seeded():
    assert random_texts(30) == random_texts(30)
    assert random_texts(30, seed=1) != random_texts(30, seed=2)
    assert len(random_texts(30)) == 30
    assert not any(0xD800 <= ord(c) <= 0xDFFF for t in random_texts(200) for c in t)


def test_sparse_coef_is_densified():
    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=3000, C=0.5)))
    dense = ix.to_interchange(model, {})["pipeline"]["classifier"]["coef"]
    model[-1].sparsify()
    assert sp.issparse(model[-1].coef_)
    assert ix.to_interchange(model, {})["pipeline"]["classifier"]["coef"] == dense


def test_calibration_over_a_frozen_estimator():
    from sklearn.frozen import FrozenEstimator

    texts, labels = binary_corpus()
    vec = TfidfVectorizer().fit(texts)
    svc = LinearSVC(random_state=0).fit(vec.transform(texts), labels)
    model = make_pipeline(vec, CalibratedClassifierCV(FrozenEstimator(svc))).fit(texts, labels)
    clf = ix.to_interchange(model, {})["pipeline"]["classifier"]
    assert len(clf["members"]) == 1
    assert clf["members"][0]["base"]["coef"] == svc.coef_.tolist()
    ref = ix.reference_outputs(model, texts[:100])
    decision, labels_, _ = evaluate(clf, ref["features"])
    np.testing.assert_allclose(decision, ref["decision"], rtol=0, atol=1e-12)
    assert labels_ == ref["labels"]


# ---------------------------------------------------------------------------------------------
# MaxAbsScaler(clip=True): inplace_column_scale, then np.clip(X.data, -1.0, 1.0)
# ---------------------------------------------------------------------------------------------

#: Counts past any training text's: the scaled values pass 1 (and -1 through alternate_sign
#: hashing), which the clip bounds.
_REPEATED = ["great " * 40, "bad bad bad bad bad bad bad terrible terrible", "not " * 25 + "good",
             "the food was good good good good good but the service was bad bad bad bad bad bad"]


def _maxabs_clip(clip=True):
    return fit(make_pipeline(CountVectorizer(), MaxAbsScaler(clip=clip), _lr()))


def _maxabs_clip_nested():
    """The clip inside a union nested in another: copied into each block after the scale's cut."""
    return fit(Pipeline([
        ("union", FeatureUnion([
            ("inner", Pipeline([
                ("u", FeatureUnion([("w", CountVectorizer()),
                                    ("c", HashingVectorizer(analyzer="char_wb", n_features=256, norm=None))])),
                ("scale", MaxAbsScaler(clip=True)),
            ])),
            ("word", TfidfVectorizer()),
        ], transformer_weights={"inner": 0.5})),
        ("clf", _lr()),
    ]))


def test_maxabs_clip_is_column_scale_then_clip():
    clip = {"kind": "clip", "min": -1.0, "max": 1.0}
    block = ix.to_interchange(_maxabs_clip(), {})["pipeline"]["features"][0]
    assert [t["kind"] for t in block["transforms"]] == ["column_scale", "clip"]
    assert block["transforms"][1] == clip
    # clip=False exports what it always did
    block = ix.to_interchange(_maxabs_clip(clip=False), {})["pipeline"]["features"][0]
    assert [t["kind"] for t in block["transforms"]] == ["column_scale"]
    w, c, word = ix.to_interchange(_maxabs_clip_nested(), {})["pipeline"]["features"]
    for b, n in ((w, len(w["counts"]["vocabulary"])), (c, 256)):
        assert [t["kind"] for t in b["transforms"]] == ["column_scale", "clip", "scale"]
        assert len(b["transforms"][0]["scale"]) == n and b["transforms"][1] == clip
    assert [t["kind"] for t in word["transforms"]] == ["tfidf", "normalize"]


@requires_skedge
@pytest.mark.parametrize("make", [_maxabs_clip, _maxabs_clip_nested], ids=["block", "nested_union"])
def test_maxabs_clip_matches_scikit_learn(make, tmp_path):
    model = make()
    texts = binary_corpus()[0][:150] + _REPEATED + ADVERSARIAL + random_texts(30)
    inter = export.build_interchange(model, source_sha256="0" * 64, name="clip", skedge=SKEDGE)
    export.pack(inter, tmp_path / "model.skedge", SKEDGE)
    got = skedge.Model.load(tmp_path / "model.skedge").predict_batch(texts)
    want = model.decision_function(texts)
    assert got["decision"][:, 0].tobytes() == want.tobytes()
    assert got["label"] == model.predict(texts).tolist()
    np.testing.assert_allclose(got["proba"], model.predict_proba(texts), rtol=0, atol=1e-12)
    # the texts reach the clip: without it scikit-learn decides otherwise
    model.set_params(**{k: False for k in model.get_params() if k.endswith("clip")})
    unclipped = model.decision_function(texts)
    assert (unclipped != want).sum() >= 10
    assert (np.sign(unclipped) != np.sign(want)).any()
