"""Every unsupported step or parameter: exit 2, a message naming step, parameter and value, no output."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import REPO, binary_corpus, dump, fit, multiclass_corpus, no_leftovers

from skedge import export
from skedge import interchange as ix
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import VotingClassifier
from sklearn.feature_extraction.text import (
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.feature_selection import GenericUnivariateSelect, SelectKBest, chi2
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import LabelEncoder, MaxAbsScaler, Normalizer, RobustScaler, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier


class MyTfidf(TfidfVectorizer):
    """A subclass: its behaviour may differ, so it is refused."""


def _lr():
    return LogisticRegression(max_iter=3000)


def _set(model, **params):
    model.set_params(**params)
    return model


def _poison(attr, index, value):
    def apply(model):
        getattr(model.steps[-1][1], attr)[index] = value
        return model

    return apply


def _frame():
    """The binary corpus as a DataFrame: texts, a second text column and a numeric one."""
    import pandas as pd

    texts, labels = binary_corpus()
    return pd.DataFrame({"text": texts, "title": texts[::-1], "n_chars": [len(t) for t in texts]}), labels


def _selector(selector):
    """Replaces the first ColumnTransformer entry's column selector after fitting: selectors
    that do not hand the vectorizer one text per row cannot be fitted in the first place."""

    def apply(model):
        ct = model.steps[0][1]
        name, trans, _ = ct.transformers[0]
        ct.transformers = [(name, trans, selector), *ct.transformers[1:]]
        return model

    return apply


def _poison_idf(model):
    model.named_steps["tfidftransformer"].idf_[2] = np.inf
    return model


def _tfidf_swapped(model):
    """A TfidfVectorizer whose fitted transformer is another allow-listed object carrying
    `sublinear_tf`: scikit-learn calls that object's transform, which takes no log."""
    vec = model.steps[0][1]
    swap = Normalizer().fit(vec.transform(binary_corpus()[0][:5]))
    swap.sublinear_tf = True
    vec._tfidf = swap
    return model


def _voting_relabelled(model):
    """A VotingClassifier whose `le_` (predict's inverse_transform) disagrees with `classes_`."""
    le = LabelEncoder()
    le.classes_ = np.array([*model[-1].classes_[:-1], "escalate"], dtype=object)
    model[-1].le_ = le
    return model


def _tokenizer_factory():
    return str.split


def _method_replaced(model):
    """`build_tokenizer` set on the instance: scikit-learn calls it instead of the class's."""
    model.steps[0][1].build_tokenizer = _tokenizer_factory
    return model


def _isotonic_unclipped(model):
    model[-1].calibrated_classifiers_[0].calibrators[0].set_params(out_of_bounds="nan")
    return model


def _bool_labels():
    texts, labels = binary_corpus()
    return texts, [bool(y) for y in labels]


def _multilabel():
    texts, labels = binary_corpus()
    return texts, np.array([[y, int(i % 3 == 0)] for i, y in enumerate(labels)])


def _float_labels():
    texts, labels = binary_corpus()
    return texts, [float(y) for y in labels]


# (id, build, corpus, post-fit edit, step path, parameter, value as it appears in the message)
REFUSALS = [
    ("custom preprocessor", lambda: make_pipeline(TfidfVectorizer(preprocessor=str.lower), _lr()),
     None, None, "pipeline.tfidfvectorizer", "preprocessor", "lower"),
    ("custom tokenizer", lambda: make_pipeline(CountVectorizer(tokenizer=str.split, token_pattern=None), _lr()),
     None, None, "pipeline.countvectorizer", "tokenizer", "split"),
    ("callable analyzer", lambda: make_pipeline(CountVectorizer(analyzer=str.split), _lr()),
     None, None, "pipeline.countvectorizer", "analyzer", "split"),
    ("callable strip_accents", lambda: make_pipeline(TfidfVectorizer(strip_accents=str.lower), _lr()),
     None, None, "pipeline.tfidfvectorizer", "strip_accents", "lower"),
    ("token_pattern", lambda: make_pipeline(TfidfVectorizer(token_pattern=r"\S+"), _lr()),
     None, None, "pipeline.tfidfvectorizer", "token_pattern", r"'\\S+'"),
    ("token_pattern in a union branch",
     lambda: make_pipeline(FeatureUnion([("word", TfidfVectorizer()),
                                         ("char", TfidfVectorizer(token_pattern=r"[a-z]+"))]), _lr()),
     None, None, "pipeline.featureunion.char", "token_pattern", "'[a-z]+'"),
    ("TfidfVectorizer float32", lambda: make_pipeline(TfidfVectorizer(dtype=np.float32), _lr()),
     None, None, "pipeline.tfidfvectorizer", "dtype", "float32"),
    ("HashingVectorizer float32", lambda: make_pipeline(HashingVectorizer(dtype=np.float32), _lr()),
     None, None, "pipeline.hashingvectorizer", "dtype", "float32"),
    ("CountVectorizer float32 before TfidfTransformer",
     lambda: make_pipeline(CountVectorizer(dtype=np.float32), TfidfTransformer(), _lr()),
     None, None, "pipeline.countvectorizer", "dtype", "float32"),
    ("CountVectorizer int16", lambda: make_pipeline(CountVectorizer(dtype=np.int16), _lr()),
     None, None, "pipeline.countvectorizer", "dtype", "int16"),
    ("Normalizer max", lambda: make_pipeline(CountVectorizer(), Normalizer(norm="max"), _lr()),
     None, None, "pipeline.normalizer", "norm", "'max'"),
    ("sublinear_tf after normalize",
     lambda: make_pipeline(HashingVectorizer(n_features=2**10, alternate_sign=False),
                           TfidfTransformer(sublinear_tf=True), _lr()),
     None, None, "pipeline.tfidftransformer", "sublinear_tf", "True"),
    ("sublinear_tf after idf",
     lambda: make_pipeline(TfidfVectorizer(norm=None), TfidfTransformer(sublinear_tf=True), _lr()),
     None, None, "pipeline.tfidftransformer", "sublinear_tf", "True"),
    ("sublinear_tf after scale",
     lambda: make_pipeline(
         FeatureUnion([("word", CountVectorizer()), ("char", CountVectorizer(analyzer="char"))],
                      transformer_weights={"char": 0.5}),
         TfidfTransformer(sublinear_tf=True), _lr()),
     None, None, "pipeline.tfidftransformer", "sublinear_tf", "True"),
    ("sublinear_tf over signed hashing",
     lambda: make_pipeline(HashingVectorizer(n_features=2**10, norm=None, alternate_sign=False),
                           TfidfTransformer(sublinear_tf=True), _lr()),
     None, lambda m: _set(m, hashingvectorizer__alternate_sign=True),
     "pipeline.tfidftransformer", "sublinear_tf", "True"),
    ("input filename", lambda: make_pipeline(CountVectorizer(), _lr()),
     None, lambda m: _set(m, countvectorizer__input="filename"),
     "pipeline.countvectorizer", "input", "'filename'"),
    ("estimator not listed", lambda: make_pipeline(CountVectorizer(), DecisionTreeClassifier(random_state=0)),
     None, None, "pipeline.decisiontreeclassifier", "estimator", "DecisionTreeClassifier"),
    ("LogisticRegressionCV (a subclass) is not listed",
     lambda: make_pipeline(CountVectorizer(), LogisticRegressionCV(cv=2, max_iter=200)),
     None, None, "pipeline.logisticregressioncv", "estimator", "LogisticRegressionCV"),
    ("vectorizer subclass", lambda: make_pipeline(MyTfidf(), _lr()),
     None, None, "pipeline.mytfidf", "estimator", "MyTfidf"),
    ("transform not listed",
     lambda: make_pipeline(CountVectorizer(), RobustScaler(with_centering=False), _lr()),
     None, None, "pipeline.robustscaler", "estimator", "RobustScaler"),
    ("selector not listed",
     lambda: make_pipeline(CountVectorizer(), GenericUnivariateSelect(chi2, mode="k_best", param=5), _lr()),
     None, None, "pipeline.genericunivariateselect", "estimator", "GenericUnivariateSelect"),
    # clip=True is exported (a `clip` transform); a clip set to a non-bool after fit (set_params
    # skips the validation fit does) is not guessed at
    ("MaxAbsScaler clip not a bool",
     lambda: make_pipeline(CountVectorizer(), MaxAbsScaler(clip=True), _lr()),
     None, lambda m: _set(m, maxabsscaler__clip="yes"), "pipeline.maxabsscaler", "clip", "'yes'"),
    ("TfidfVectorizer's transformer replaced",
     lambda: make_pipeline(TfidfVectorizer(use_idf=False), _lr()),
     None, _tfidf_swapped, "pipeline.tfidfvectorizer", "_tfidf", "Normalizer"),
    ("voting le_ other than classes_",
     lambda: make_pipeline(TfidfVectorizer(), VotingClassifier([("lr", _lr()), ("nb", MultinomialNB())], voting="hard")),
     lambda: (multiclass_corpus()[0], [str(y) for y in multiclass_corpus()[1]]), _voting_relabelled,
     "pipeline.votingclassifier", "le_", "LabelEncoder"),
    ("method replaced on the instance",
     lambda: make_pipeline(TfidfVectorizer(), _lr()),
     None, _method_replaced, "pipeline.tfidfvectorizer", "build_tokenizer", "function"),
    ("StandardScaler with_mean",
     lambda: make_pipeline(CountVectorizer(), StandardScaler(with_mean=False), _lr()),
     None, lambda m: _set(m, standardscaler__with_mean=True),
     "pipeline.standardscaler", "with_mean", "True"),
    ("selector keeping no column",
     lambda: make_pipeline(CountVectorizer(), SelectKBest(chi2, k=5), _lr()),
     None, lambda m: _set(m, selectkbest__k=0),
     "pipeline.selectkbest", "get_support()", "'no column'"),
    ("dense reduction", lambda: make_pipeline(TfidfVectorizer(), TruncatedSVD(5, random_state=0), _lr()),
     None, None, "pipeline.truncatedsvd", "estimator", "TruncatedSVD"),
    ("calibration temperature",
     lambda: make_pipeline(TfidfVectorizer(), CalibratedClassifierCV(LinearSVC(), method="temperature", cv=2)),
     None, None, "pipeline.calibratedclassifiercv", "method", "'temperature'"),
    ("isotonic calibrator not clipping",
     lambda: make_pipeline(TfidfVectorizer(), CalibratedClassifierCV(LinearSVC(), method="isotonic", cv=2)),
     None, _isotonic_unclipped,
     "pipeline.calibratedclassifiercv.calibrated_classifiers_[0].calibrators[0]", "out_of_bounds", "'nan'"),
    ("soft voting without predict_proba",
     lambda: make_pipeline(TfidfVectorizer(), VotingClassifier([("lr", _lr()), ("svc", LinearSVC())], voting="soft")),
     None, None, "pipeline.votingclassifier.estimators_[1]", "estimator", "LinearSVC"),
    ("voting over an unsupported estimator",
     lambda: make_pipeline(TfidfVectorizer(), VotingClassifier(
         [("lr", _lr()), ("ovr", OneVsRestClassifier(LinearSVC()))], voting="hard")),
     None, None, "pipeline.votingclassifier.estimators_[1]", "estimator", "OneVsRestClassifier"),
    ("voting with a negative weight",
     lambda: make_pipeline(TfidfVectorizer(), VotingClassifier(
         [("lr", _lr()), ("nb", MultinomialNB())], voting="hard", weights=[1, -1])),
     None, None, "pipeline.votingclassifier", "weights", "-1.0"),
    ("calibration over naive Bayes",
     lambda: make_pipeline(CountVectorizer(), CalibratedClassifierCV(MultinomialNB(), cv=2)),
     None, None, "pipeline.calibratedclassifiercv.calibrated_classifiers_[0].estimator", "estimator",
     "MultinomialNB"),
    ("non-finite coef", lambda: make_pipeline(CountVectorizer(), _lr()),
     None, _poison("coef_", (0, 3), np.nan), "pipeline.logisticregression", "coef_", "nan"),
    ("non-finite idf", lambda: make_pipeline(CountVectorizer(), TfidfTransformer(), _lr()),
     None, _poison_idf,
     "pipeline.tfidftransformer", "idf_", "inf"),
    ("bool labels", lambda: make_pipeline(CountVectorizer(), _lr()),
     _bool_labels, None, "pipeline.logisticregression", "classes_", "bool"),
    ("float labels", lambda: make_pipeline(CountVectorizer(), _lr()),
     _float_labels, None, "pipeline.logisticregression", "classes_", "float64"),
    ("union passthrough",
     lambda: Pipeline([("union", FeatureUnion([("raw", "passthrough"), ("word", TfidfVectorizer())])),
                       ("clf", _lr())]),
     None, None, "pipeline.union.raw", "transformer", "passthrough"),
    ("normalize over a nested union",
     lambda: Pipeline([
         ("union", FeatureUnion([
             ("inner", Pipeline([
                 ("u", FeatureUnion([("w", CountVectorizer()), ("c", CountVectorizer(analyzer="char"))])),
                 ("n", Normalizer()),
             ])),
             ("word", TfidfVectorizer()),
         ])),
         ("clf", _lr()),
     ]),
     None, None, "pipeline.union.inner", "norm", "'l2'"),
    ("one-vs-rest over naive Bayes",
     lambda: make_pipeline(CountVectorizer(), OneVsRestClassifier(MultinomialNB())),
     multiclass_corpus, None, "pipeline.onevsrestclassifier.estimators_[0]", "estimator", "MultinomialNB"),
    ("one-vs-rest over modified_huber",
     lambda: make_pipeline(CountVectorizer(), OneVsRestClassifier(SGDClassifier(loss="modified_huber"))),
     multiclass_corpus, None, "pipeline.onevsrestclassifier.estimators_[0]", "loss", "'modified_huber'"),
    ("one-vs-rest multilabel",
     lambda: make_pipeline(CountVectorizer(), OneVsRestClassifier(_lr())),
     _multilabel, None, "pipeline.onevsrestclassifier", "y_type_", "'multilabel-indicator'"),
    # ColumnTransformer: one text column by name, the rest dropped (issue #17)
    ("column transformer on an array, by position",
     lambda: make_pipeline(ColumnTransformer([("t", TfidfVectorizer(), 0)]), _lr()),
     lambda: (np.array(binary_corpus()[0], dtype=object).reshape(-1, 1), binary_corpus()[1]), None,
     "pipeline.columntransformer.t", "columns", "0"),
    ("column transformer, list selector",
     lambda: make_pipeline(ColumnTransformer([("t", TfidfVectorizer(), "text")]), _lr()),
     _frame, _selector(["text"]), "pipeline.columntransformer.t", "columns", "['text']"),
    ("column transformer, boolean mask",
     lambda: make_pipeline(ColumnTransformer([("t", TfidfVectorizer(), "text")]), _lr()),
     _frame, _selector([True, False]), "pipeline.columntransformer.t", "columns", "boolean mask"),
    ("column transformer, callable selector",
     lambda: make_pipeline(ColumnTransformer([("t", TfidfVectorizer(), "text")]), _lr()),
     _frame, _selector(make_column_selector(pattern="^text$")), "pipeline.columntransformer.t", "columns",
     "'make_column_selector'"),
    ("column transformer, two columns",
     lambda: make_pipeline(ColumnTransformer(
         [("t", TfidfVectorizer(), "text"), ("u", TfidfVectorizer(), "title")]), _lr()),
     _frame, None, "pipeline.columntransformer", "transformers", "['text', 'title']"),
    ("column transformer, remainder passthrough",
     lambda: make_pipeline(ColumnTransformer([("t", TfidfVectorizer(), "text")], remainder="passthrough"), _lr()),
     lambda: (_frame()[0][["text", "n_chars"]], _frame()[1]), None,
     "pipeline.columntransformer", "remainder", "'passthrough'"),
    ("column transformer, non-text transformer",
     lambda: make_pipeline(ColumnTransformer(
         [("t", TfidfVectorizer(), "text"), ("n", StandardScaler(), ["n_chars"])]), _lr()),
     _frame, None, "pipeline.columntransformer.n", "estimator", "StandardScaler"),
    ("column transformer, passthrough transformer",
     lambda: make_pipeline(ColumnTransformer(
         [("t", TfidfVectorizer(), "text"), ("p", "passthrough", ["n_chars"])]), _lr()),
     _frame, None, "pipeline.columntransformer.p", "transformer", "'passthrough'"),
    ("column transformer, dense output",
     lambda: make_pipeline(ColumnTransformer([("t", TfidfVectorizer(), "text")], sparse_threshold=0.0), _lr()),
     _frame, None, "pipeline.columntransformer", "sparse_threshold", "0.0"),
]


def _fitted(build, corpus, edit):
    model = build()
    union = model.steps[0][1]
    if isinstance(union, FeatureUnion) and any(t == "passthrough" for _, t in union.transformer_list):
        return model  # raw text cannot pass through a fit either; the refusal needs no fitting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        texts, labels = (corpus or binary_corpus)()
        model.fit(texts, labels)
    if edit is not None:
        model = edit(model)
    return model


@pytest.mark.parametrize(
    "build,corpus,edit,step,parameter,value",
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_refused_with_exit_2_and_no_output(tmp_path, capsys, build, corpus, edit, step, parameter, value):
    model = _fitted(build, corpus, edit)
    with pytest.raises(ix.Unsupported) as exc:
        ix.to_interchange(model, {}, log_table=lambda: [])
    err = exc.value
    assert err.step_path == step
    assert err.parameter == parameter
    message = str(err)
    assert step in message and parameter in message and value in message, message

    path = dump(model, tmp_path)
    out = tmp_path / "model.skedge"
    # --trust-pickle: the test made this file; without it a step off the loader's allow-list (a
    # custom class, str.lower, a DecisionTree) is refused at load, before its step can be named.
    code = export.main(["--joblib", str(path), "--out", str(out), "--skedge", str(tmp_path / "no-skedge"),
                        "--trust-pickle"])
    assert code == 2
    stderr = capsys.readouterr().err
    assert step in stderr and parameter in stderr and value in stderr, stderr
    assert not out.exists()
    assert no_leftovers(tmp_path, {"model.joblib"}) == []


def test_char_analyzers_ignore_token_pattern():
    """scikit-learn ignores token_pattern for char / char_wb: so does the exporter."""
    for kind in ("char", "char_wb"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "token_pattern will not be used"
            model = fit(make_pipeline(TfidfVectorizer(analyzer=kind, token_pattern=r"\S+"), _lr()))
        block = ix.to_interchange(model, {})["pipeline"]["features"][0]
        assert block["analyzer"]["kind"] == kind
        assert block["analyzer"]["token_pattern"] is None
        assert block["analyzer"]["stop_words"] == []


def test_accepted_token_patterns():
    for pattern in ix.ACCEPTED_TOKEN_PATTERNS:
        model = fit(make_pipeline(CountVectorizer(token_pattern=pattern), _lr()))
        assert ix.to_interchange(model, {})["pipeline"]["features"][0]["analyzer"]["token_pattern"] == pattern


def test_not_a_pipeline_is_refused():
    with pytest.raises(ix.Unsupported, match="expected a fitted sklearn.pipeline.Pipeline"):
        ix.to_interchange(LinearSVC().fit(np.eye(4), [0, 1, 0, 1]), {})


def test_multiclass_refusal_in_union_names_the_branch():
    model = make_pipeline(
        FeatureUnion([("word", TfidfVectorizer()), ("char", CountVectorizer(analyzer="char", dtype=np.float32))]),
        MultinomialNB(),
    )
    fit(model, multiclass_corpus)
    with pytest.raises(ix.Unsupported) as exc:
        ix.to_interchange(model, {})
    assert exc.value.step_path == "pipeline.featureunion.char"
    assert "dtype='float32'" in str(exc.value)


def test_cli_exit_code_2_in_a_subprocess(tmp_path):
    model = fit(make_pipeline(TfidfVectorizer(token_pattern=r"\S+"), _lr()))
    path = dump(model, tmp_path)
    out = tmp_path / "m.skedge"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "export.py"), "--joblib", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "pipeline.tfidfvectorizer" in proc.stderr and "token_pattern" in proc.stderr
    assert not out.exists()
