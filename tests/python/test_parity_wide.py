"""Wide parity: a matrix of pipelines × a wide text set, through the exporter's own machinery.

Every case trains a small pipeline on slices of tests/data (plus synthetic tweets, sentences in 20
languages and random Unicode, so that vocabularies hold exotic terms too), exports it exactly as
scripts/export.py does (`build_interchange` → `pack` → `parity_gate`) and requires the gate to pass
on the wide text set of tests/python/wide_texts.py: every test row of the corpora, tweets, 20
languages and scripts, seeded random Unicode from every plane, edge texts. A few cases also get the
large texts (1 MB of mixed content, one token 300,000 times for `sublinear_tf` beyond 2**16,
10,000 distinct tokens).

The matrix: every analyzer kind × ngram range × lowercase × strip_accents (66 cases, each with a
vectorizer, options, classifier, class count and label type taken in rotation), then the vectorizer
options (binary, sublinear_tf, norms, use_idf, smooth_idf, dtype, hashing with tiny n_features,
alternate_sign and collisions, FeatureUnion weights, nested unions, pipeline-level transforms) and
every classifier, binary and multiclass, int and str labels, 2 to 5 classes.

Skipped when target/release/skedge is not built. About 1 minute of CPU (1-2 minutes on two busy cores).
"""

from __future__ import annotations

import hashlib
import random
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from conftest import SKEDGE, dev_script, requires_skedge
from threadpoolctl import threadpool_limits

from skedge import export
from skedge import interchange as ix
import wide_texts as wt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.feature_extraction.text import (
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.feature_selection import (
    SelectFdr,
    SelectFromModel,
    SelectFpr,
    SelectKBest,
    SelectPercentile,
    VarianceThreshold,
    chi2,
    f_classif,
)
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MaxAbsScaler, Normalizer, StandardScaler
from sklearn.svm import LinearSVC

try:
    from sklearn.frozen import FrozenEstimator
except ImportError:  # pragma: no cover - scikit-learn < 1.6
    FrozenEstimator = None


# ---------------------------------------------------------------------------------------------
# training data: small slices of tests/data plus synthetic texts
# ---------------------------------------------------------------------------------------------

INT_LABELS = {2: [0, 1], 3: [-5, 0, 3], 4: [-5, 0, 3, 17], 5: [-5, 0, 3, 17, 1000]}
STR_LABELS = ["neg", "pos", "ÉTÉ", "中文", "😀 x"]


def _train_texts() -> list[str]:
    mf = dev_script("make_fixtures")

    texts = []
    for name, n in (("uci", 220), ("books", 120), ("allocine", 80), ("sst2", 80)):
        texts += mf.CORPORA[name]().train_texts[:n]
    texts += wt.tweets(80, seed=11) + wt.multilingual() + wt.random_unicode(40, seed=3) + wt.small_edges()
    return texts


def _labels(n: int, k: int, kind: str, seed: int) -> list:
    rng = random.Random(seed)
    y = [rng.getrandbits(16) % k for _ in range(n)]
    y[:k] = range(k)  # every class present
    names = INT_LABELS[k] if kind == "int" else STR_LABELS[:k]
    return [names[v] for v in y]


# ---------------------------------------------------------------------------------------------
# the matrix
# ---------------------------------------------------------------------------------------------


def _pa():
    try:
        from sklearn.linear_model import PassiveAggressiveClassifier  # deprecated in 1.8
    except ImportError:  # pragma: no cover - removed in 1.10
        pytest.skip("PassiveAggressiveClassifier is not in this scikit-learn")

    return PassiveAggressiveClassifier(random_state=0, max_iter=30)


SGD_LOSSES = ["hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "squared_error",
              "huber", "epsilon_insensitive", "squared_epsilon_insensitive"]

# name -> (factory, needs non-negative features)
CLASSIFIERS: dict[str, tuple[Callable, bool]] = {
    "lr": (lambda: LogisticRegression(max_iter=100), False),
    "linearsvc": (lambda: LinearSVC(max_iter=200), False),
    "mnb": (lambda: MultinomialNB(), True),
    "sgd_log_loss": (lambda: SGDClassifier(loss="log_loss", random_state=0, max_iter=30), False),
    "ridge": (lambda: RidgeClassifier(), False),
    "cnb": (lambda: ComplementNB(alpha=0.5), True),
    "cal_linearsvc": (lambda: CalibratedClassifierCV(LinearSVC(max_iter=200), method="sigmoid", cv=3), False),
    "perceptron": (lambda: Perceptron(random_state=0, max_iter=30), False),
    "bnb": (lambda: BernoulliNB(), False),
    "sgd_modified_huber": (lambda: SGDClassifier(loss="modified_huber", random_state=0, max_iter=30), False),
    "linearsvc_cs": (lambda: LinearSVC(multi_class="crammer_singer", C=0.05, max_iter=50), False),
    "pa": (_pa, False),
    "bnb_none": (lambda: BernoulliNB(binarize=None), True),
    "cal_lr_single": (lambda: CalibratedClassifierCV(LogisticRegression(max_iter=50), method="sigmoid",
                                                      cv=2, ensemble=False), False),
    "mnb_prior": (lambda: MultinomialNB(fit_prior=False, alpha=0.1), True),
    "cal_sgd": (lambda: CalibratedClassifierCV(SGDClassifier(random_state=0, max_iter=30), method="sigmoid",
                                                cv=3), False),
    "bnb_05": (lambda: BernoulliNB(binarize=0.5), False),
    "cnb_norm": (lambda: ComplementNB(norm=True), True),
    **{f"sgd_{loss}": ((lambda loss=loss: SGDClassifier(loss=loss, random_state=0, max_iter=30)), False)
       for loss in SGD_LOSSES if loss not in ("log_loss", "modified_huber")},
    "cal_frozen": (None, False),  # CalibratedClassifierCV(FrozenEstimator(LinearSVC)), see _fit
}


@dataclass
class Case:
    id: str
    features: Callable[[], object]  # a vectorizer, union or list of (name, step) feature steps
    clf: str
    k: int
    labels: str
    nonneg: bool = True  # the features fed to the classifier are >= 0
    big: bool = False  # also the 1 MB / 300,000-token / 10,000-token texts
    after_fit: Callable | None = None  # edits the fitted pipeline (set_params, sparsify)
    # fitted on a DataFrame {column: texts, n_chars}: the (name, step) list of `features` becomes
    # ColumnTransformer([(name, step, column), ...], **ct) before the classifier
    column: str | None = None
    ct: dict | None = None


def _vectorizer(kind: str, analyzer: dict, j: int):
    """Vectorizer `kind` over `analyzer`, options in rotation by `j` (co-prime periods, so that
    they combine freely): (factory, features >= 0, features in [0, 1], tag)."""
    if kind != "hashing" and analyzer["analyzer"] != "word":
        analyzer = dict(analyzer, max_features=20000)  # keeps fitting and packing fast
    if kind == "count":
        binary = j % 2 == 0
        dtype = [np.int64, np.int32, np.float64][j % 3]
        tag = f"count{'_bin' if binary else ''}_{np.dtype(dtype).name}"
        return (lambda: CountVectorizer(binary=binary, dtype=dtype, **analyzer)), True, binary, tag
    if kind == "tfidf":
        sub, norm = j % 2 == 1, ["l2", "l1", None][j % 3]
        use_idf, smooth, binary = j % 5 != 3, j % 7 != 4, j % 4 == 2
        tag = (f"tfidf_{norm}{'_sub' if sub else ''}{'' if use_idf else '_noidf'}"
               f"{'' if smooth else '_nosmooth'}{'_bin' if binary else ''}")
        return (lambda: TfidfVectorizer(sublinear_tf=sub, norm=norm, use_idf=use_idf, smooth_idf=smooth,
                                        binary=binary, **analyzer)), True, norm is not None, tag
    n = [1, 3, 7, 16, 1024][j % 5]
    alt, binary, norm = j % 2 == 0, j % 3 == 1, ["l2", None, "l1", "l2"][j % 4]
    tag = f"hash{n}{'_alt' if alt else ''}{'_bin' if binary else ''}_{norm}"
    return (lambda: HashingVectorizer(n_features=n, alternate_sign=alt, binary=binary, norm=norm,
                                      **analyzer)), not (alt and not binary), not alt and (binary or bool(norm)), tag


def _analyzer_cases() -> list[Case]:
    """Every analyzer kind × ngram range × lowercase × strip_accents, the rest in rotation."""
    ngrams = {"word": [(1, 1), (1, 3), (2, 2)], "char": [(1, 1), (1, 3), (2, 2), (3, 5)],
              "char_wb": [(1, 1), (1, 3), (2, 2), (3, 5)]}
    names = list(CLASSIFIERS)
    cases, i = [], 0
    for kind, ranges in ngrams.items():
        for ng in ranges:
            for lower in (True, False):
                for strip in (None, "ascii", "unicode"):
                    analyzer = dict(analyzer=kind, ngram_range=ng, lowercase=lower, strip_accents=strip)
                    if kind == "word" and i % 4 == 1:
                        analyzer["token_pattern"] = r"(?u)\b\w+\b"
                    vec, nonneg, unit, tag = _vectorizer(["tfidf", "hashing", "count"][i % 3], analyzer, i // 3)
                    clf = names[i % len(names)]
                    if CLASSIFIERS[clf][1] and not nonneg:
                        clf = "lr"
                    if clf == "bnb_none" and not unit:  # feature_log_prob_ is NaN unless 0 <= x <= 1
                        clf = "bnb"
                    k = 2 + i % 4
                    labels = "int" if i % 2 == 0 else "str"
                    cases.append(Case(
                        f"{kind}{ng[0]}{ng[1]}_{'lower' if lower else 'cased'}_{strip or 'nostrip'}_{tag}"
                        f"_{clf}_{k}{labels}",
                        vec, clf, k, labels, nonneg))
                    i += 1
    return cases


def _union_weighted():
    return FeatureUnion(
        [("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
         ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2)),
         ("hash", HashingVectorizer(n_features=16, analyzer="char", ngram_range=(1, 2))),
         ("unused", "drop")],
        transformer_weights={"word": 2, "char": 0.3, "hash": 1e-3})


def _union_nested():
    inner = FeatureUnion([("bigrams", CountVectorizer(ngram_range=(2, 2))),
                          ("hash", HashingVectorizer(n_features=8, alternate_sign=False, norm=None))],
                         transformer_weights={"hash": 0.5})
    return FeatureUnion([("inner", inner), ("chars", TfidfVectorizer(analyzer="char", strip_accents="unicode"))],
                        transformer_weights={"inner": 0.25})


def _option_cases() -> list[Case]:
    """Vectorizer options, hashing collisions, unions, pipeline-level transforms, odd fitted states."""
    C = Case
    return [
        # big texts: sublinear_tf on counts up to 900,000, 1 MB of everything, 10,000 tokens
        C("big_word12_tfidf_sublinear_lr_2int", lambda: TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
          "lr", 2, "int", big=True),
        C("big_charwb25_tfidf_sublinear_l1_sgdlog_3str",
          lambda: TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, norm="l1", min_df=2),
          "sgd_log_loss", 3, "str", big=True),
        C("big_char35_hash16_alt_linearsvc_4int",
          lambda: HashingVectorizer(analyzer="char", ngram_range=(3, 5), n_features=16),
          "linearsvc", 4, "int", nonneg=False, big=True),
        C("big_word13_count_bin_mnb_5str", lambda: CountVectorizer(ngram_range=(1, 3), binary=True),
          "mnb", 5, "str", big=True),
        # hashing: tiny n_features (every feature collides), alternate_sign zeros, binary, norms
        C("hash1_alt_l2_lr_2str", lambda: HashingVectorizer(n_features=1), "lr", 2, "str", nonneg=False),
        C("hash2_alt_none_ridge_3int", lambda: HashingVectorizer(n_features=2, norm=None), "ridge", 3, "int",
          nonneg=False),
        C("hash5_alt_bin_l1_bnb_2int", lambda: HashingVectorizer(n_features=5, binary=True, norm="l1"),
          "bnb", 2, "int"),
        C("hash32_noalt_none_tfidf_sublinear_cnb_4str",
          lambda: [("hash", HashingVectorizer(n_features=32, alternate_sign=False, norm=None)),
                   ("tfidf", TfidfTransformer(sublinear_tf=True))], "cnb", 4, "str"),
        C("hash4096_l2_tfidf_l1_charwb13_calsvc_3int",
          lambda: [("hash", HashingVectorizer(n_features=4096, analyzer="char_wb", ngram_range=(1, 3))),
                   ("tfidf", TfidfTransformer(norm="l1"))], "cal_linearsvc", 3, "int", nonneg=False),
        C("hash64_charwb24_bin_none_calsgd_2str",
          lambda: HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=64, alternate_sign=False,
                                    binary=True, norm=None), "cal_sgd", 2, "str"),
        # counts, transformers and normalizers after the vectorizer
        C("count_int32_char13_tfidf_sublinear_lr_5int",
          lambda: [("count", CountVectorizer(analyzer="char", ngram_range=(1, 3), dtype=np.int32, min_df=2)),
                   ("tfidf", TfidfTransformer(sublinear_tf=True))], "lr", 5, "int"),
        C("count_normalizer_l2_l1_perceptron_2int",
          lambda: [("count", CountVectorizer()), ("l2", Normalizer("l2")), ("l1", Normalizer("l1"))],
          "perceptron", 2, "int"),
        C("tfidf_then_tfidftransformer_l1_svc_3str",
          lambda: [("tfidf", TfidfVectorizer(sublinear_tf=True)), ("again", TfidfTransformer(norm="l1"))],
          "linearsvc", 3, "str"),
        C("count_stop_english_w13_mnb_3int",
          lambda: CountVectorizer(stop_words="english", token_pattern=r"\w+", ngram_range=(1, 3)), "mnb", 3, "int"),
        C("count_stop_list_unicode_cnb_2str",
          lambda: CountVectorizer(stop_words=["the", "οδος", "i̇stanbul", "ß", "très", "中文"],
                                  ngram_range=(1, 2)), "cnb", 2, "str"),
        C("tfidf_vocabulary_given_char_lr_2int",
          lambda: TfidfVectorizer(analyzer="char", lowercase=False, vocabulary=[
              "ς", "σ", "i̇", " ", "\t", "\u3000", "\x85", "👍", "\u0301", "ß", "ss", "İ", "\u200d", "Σ"]),
          "lr", 2, "int"),
        # unions: weights (int, float, tiny), "drop", nested, transforms over the concatenation
        C("union_weighted_lr_3int", _union_weighted, "lr", 3, "int", nonneg=False),
        C("union_weighted_calsvc_2str", _union_weighted, "cal_linearsvc", 2, "str", nonneg=False),
        C("union_nested_weighted_sgdhuber_4str", _union_nested, "sgd_modified_huber", 4, "str"),
        C("union_counts_tfidf_sublinear_normalizer_l1_lr_2str",
          lambda: [("union", FeatureUnion([("w", CountVectorizer(min_df=2)),
                                           ("c", CountVectorizer(analyzer="char", ngram_range=(2, 2)))])),
                   ("tfidf", TfidfTransformer(sublinear_tf=True)), ("norm", Normalizer("l1"))],
          "lr", 2, "str"),
        C("union_weights_zero_negative_f32_normalizer_ridge_3int",
          lambda: [("union", FeatureUnion([("a", CountVectorizer()), ("b", HashingVectorizer(n_features=8)),
                                           ("c", TfidfVectorizer(analyzer="char"))],
                                          transformer_weights={"a": 0, "b": -2.5, "c": np.float32(0.1)})),
                   ("norm", Normalizer())], "ridge", 3, "int", nonneg=False),
        # fitted states scikit-learn allows: params changed after fit, sparse coef_, prefit calibration
        C("tfidftransformer_use_idf_off_after_fit_lr_2int",
          lambda: [("count", CountVectorizer()), ("tfidf", TfidfTransformer())], "lr", 2, "int",
          after_fit=lambda p: p.named_steps["tfidf"].set_params(use_idf=False)),
        C("tfidfvectorizer_params_changed_after_fit_svc_2str", lambda: TfidfVectorizer(norm="l1"),
          "linearsvc", 2, "str",
          after_fit=lambda p: p.steps[0][1].set_params(norm="l2", sublinear_tf=True, use_idf=False)),
        C("sparsified_sgd_l1_3str", lambda: TfidfVectorizer(), "sgd_hinge", 3, "str",
          after_fit=lambda p: p.steps[-1][1].sparsify()),
        C("calibrated_frozen_linearsvc_3int", lambda: TfidfVectorizer(ngram_range=(1, 2)), "cal_frozen", 3, "int"),
        C("calibrated_frozen_linearsvc_2str", lambda: TfidfVectorizer(analyzer="char_wb"), "cal_frozen", 2, "str"),
        C("linearsvc_no_intercept_2int", lambda: TfidfVectorizer(), "linearsvc_noint", 2, "int"),
        # raw counts: decisions in the thousands, expit/softmax saturation, uniform OvR fallback
        C("count_sgd_log_saturated_4str", lambda: CountVectorizer(), "sgd_log_loss_raw", 4, "str"),
        C("count_calibrated_sgd_saturated_3int", lambda: CountVectorizer(), "cal_sgd_raw", 3, "int", big=True),
        C("count_ovr_sgd_log_saturated_4int", lambda: CountVectorizer(), "ovr_sgd_log_raw", 4, "int", big=True),
        # column masks (runtime, after whatever norm precedes them) and per-column scalers
        C("big_count_selectkbest_tfidf_sublinear_lr_3str",
          lambda: [("count", CountVectorizer(ngram_range=(1, 2))), ("kbest", SelectKBest(chi2, k=300)),
                   ("tfidf", TfidfTransformer(sublinear_tf=True))], "lr", 3, "str", big=True),
        C("tfidf_l2_selectpercentile_fclassif_maxabs_svc_2int",
          lambda: [("tfidf", TfidfVectorizer(ngram_range=(1, 2))),
                   ("pct", SelectPercentile(f_classif, percentile=30)), ("scale", MaxAbsScaler())],
          "linearsvc", 2, "int"),
        C("hash64_alt_variancethreshold_standardscaler_ridge_3int",
          lambda: [("hash", HashingVectorizer(n_features=64, norm=None)),
                   ("var", VarianceThreshold(0.05)), ("scale", StandardScaler(with_mean=False))],
          "ridge", 3, "int", nonneg=False),
        C("tfidf_selectfrommodel_l1svc_mean_max_mnb_4str",
          lambda: [("tfidf", TfidfVectorizer()),
                   ("sfm", SelectFromModel(LinearSVC(penalty="l1", dual=False, C=2.0), threshold="mean",
                                           max_features=200))],
          "mnb", 4, "str"),
        # random labels: Fdr at alpha=1 keeps every column, the Fpr does the selecting
        C("charwb_selectfpr_selectfdr_kall_bnb_2str",
          lambda: [("tfidf", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3))),
                   ("fpr", SelectFpr(chi2, alpha=0.5)), ("fdr", SelectFdr(chi2, alpha=1.0)),
                   ("all", SelectKBest(chi2, k="all"))], "bnb", 2, "str"),
        C("union_selectfpr_stdscaler_after_union_cnb_3int",
          lambda: [("union", FeatureUnion([("w", CountVectorizer(min_df=2)),
                                           ("c", HashingVectorizer(analyzer="char", n_features=256,
                                                                   alternate_sign=False))])),
                   ("fpr", SelectFpr(chi2, alpha=0.3)), ("scale", StandardScaler(with_mean=False))],
          "cnb", 3, "int"),
        C("union_nested_select_scale_inside_sgdlog_2int",
          lambda: FeatureUnion([
              ("inner", Pipeline([
                  ("u", FeatureUnion([("w", CountVectorizer()), ("c", CountVectorizer(analyzer="char"))])),
                  ("kbest", SelectKBest(chi2, k=150)),
                  ("scale", MaxAbsScaler()),
              ])),
              ("word", TfidfVectorizer(ngram_range=(1, 2), min_df=2)),
          ], transformer_weights={"inner": 0.5}),
          "sgd_log_loss", 2, "int"),
        # isotonic calibration: interp1d between thresholds, clipped outside them (raw counts put
        # decisions beyond the last threshold), one member (ensemble=False) and the mean of three
        C("calibrated_isotonic_svc_2int", lambda: TfidfVectorizer(ngram_range=(1, 2)), "cal_iso_svc", 2, "int"),
        C("calibrated_isotonic_svc_4str", lambda: TfidfVectorizer(analyzer="char_wb"), "cal_iso_svc", 4, "str"),
        C("count_calibrated_isotonic_sgd_saturated_3str", lambda: CountVectorizer(), "cal_iso_sgd_raw", 3, "str",
          big=True),
        C("calibrated_isotonic_lr_single_3int", lambda: TfidfVectorizer(min_df=2), "cal_iso_lr_single", 3, "int"),
        C("union_selectkbest_calibrated_isotonic_ridge_2str",
          lambda: [("union", FeatureUnion([("w", CountVectorizer()), ("c", CountVectorizer(analyzer="char"))])),
                   ("kbest", SelectKBest(chi2, k=200)), ("tfidf", TfidfTransformer())],
          "cal_iso_ridge", 2, "str"),
        # VotingClassifier: soft (np.average, weights) and hard (weighted np.bincount, ties to the
        # lowest class)
        C("voting_soft_lr_cnb_sgdhuber_3str", lambda: TfidfVectorizer(), "vote_soft", 3, "str"),
        C("voting_soft_weighted_lr_bnb_2int", lambda: TfidfVectorizer(ngram_range=(1, 2)), "vote_soft_w", 2, "int"),
        C("voting_hard_svc_ridge_mnb_4int", lambda: TfidfVectorizer(min_df=2), "vote_hard", 4, "int"),
        C("voting_hard_tied_weights_2str", lambda: CountVectorizer(), "vote_hard_tie", 2, "str"),
        C("count_voting_soft_saturated_3int", lambda: CountVectorizer(), "vote_soft", 3, "int", big=True),
        # ColumnTransformer over one DataFrame column, the other column dropped: a FeatureUnion
        # over that column; the gate feeds scikit-learn the frame and skedge the records
        C("ct_word12_lr_2int", lambda: [("w", TfidfVectorizer(ngram_range=(1, 2)))], "lr", 2, "int",
          column="text"),
        C("ct_word_charwb_weighted_svc_3str",
          lambda: [("w", TfidfVectorizer()), ("c", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)))],
          "linearsvc", 3, "str", column="review", ct={"transformer_weights": {"c": 0.3}}, big=True),
        C("ct_hash_union_count_mnb_4str",
          lambda: [("h", HashingVectorizer(n_features=512, alternate_sign=False, norm=None)),
                   ("u", FeatureUnion([("w", CountVectorizer(min_df=2)), ("c", CountVectorizer(analyzer="char"))]))],
          "mnb", 4, "str", column="body"),
        C("ct_branch_count_kbest_tfidf_sgdlog_2str",
          lambda: [("p", Pipeline([("count", CountVectorizer(ngram_range=(1, 2))), ("kbest", SelectKBest(chi2, k=150)),
                                   ("tfidf", TfidfTransformer(sublinear_tf=True))]))],
          "sgd_log_loss", 2, "str", column="Review Text", nonneg=False),
    ]


def _classifier_cases() -> list[Case]:
    """Every classifier, binary and multiclass, int and str labels."""
    cases = []
    for j, name in enumerate(CLASSIFIERS):
        for k, labels in ((2, "str" if j % 2 else "int"), (3 + j % 3, "int" if j % 2 else "str")):
            cases.append(Case(f"clf_{name}_{k}{labels}", lambda: TfidfVectorizer(ngram_range=(1, 2), min_df=2),
                              name, k, labels))
    for j, name in enumerate(("ovr_lr", "ovr_svc", "ovr_sgd_log", "ovr_ridge")):
        for k, labels in ((2, "str" if j % 2 else "int"), (3 + j % 3, "int" if j % 2 else "str")):
            cases.append(Case(f"clf_{name}_{k}{labels}", lambda: TfidfVectorizer(ngram_range=(1, 2), min_df=2),
                              name, k, labels))
    return cases


CASES = _analyzer_cases() + _option_cases() + _classifier_cases()

EXTRA_CLASSIFIERS = {
    "linearsvc_noint": lambda: LinearSVC(fit_intercept=False, max_iter=200),
    "sgd_log_loss_raw": lambda: SGDClassifier(loss="log_loss", alpha=1e-6, random_state=0, max_iter=30),
    "cal_sgd_raw": lambda: CalibratedClassifierCV(SGDClassifier(alpha=1e-6, random_state=0, max_iter=30), cv=3),
    # OneVsRestClassifier over linear models (outside CLASSIFIERS: the analyzer rotation stays)
    "ovr_lr": lambda: OneVsRestClassifier(LogisticRegression(max_iter=100)),
    "ovr_svc": lambda: OneVsRestClassifier(LinearSVC(max_iter=200)),
    "ovr_sgd_log": lambda: OneVsRestClassifier(SGDClassifier(loss="log_loss", random_state=0, max_iter=30)),
    "ovr_ridge": lambda: OneVsRestClassifier(RidgeClassifier()),
    "vote_soft": lambda: VotingClassifier(
        [("lr", LogisticRegression(max_iter=100)), ("cnb", ComplementNB()),
         ("sgd", SGDClassifier(loss="modified_huber", random_state=0, max_iter=30))], voting="soft"),
    "vote_soft_w": lambda: VotingClassifier(
        [("lr", LogisticRegression(max_iter=100)), ("bnb", BernoulliNB()), ("drop", "drop"),
         ("sgd", SGDClassifier(loss="log_loss", random_state=0, max_iter=30))],
        voting="soft", weights=[0.3, 0.7, 5, 0.1]),
    "vote_hard": lambda: VotingClassifier(
        [("svc", LinearSVC(max_iter=200)), ("ridge", RidgeClassifier()), ("mnb", MultinomialNB())], voting="hard",
        weights=[1.5, 1, 0.25]),
    # two voters of equal weight disagree often: ties go to the lowest class (np.argmax)
    "vote_hard_tie": lambda: VotingClassifier(
        [("svc", LinearSVC(max_iter=200)), ("mnb", MultinomialNB())], voting="hard"),
    "cal_iso_svc": lambda: CalibratedClassifierCV(LinearSVC(max_iter=200), method="isotonic", cv=3),
    "cal_iso_sgd_raw": lambda: CalibratedClassifierCV(
        SGDClassifier(alpha=1e-6, random_state=0, max_iter=30), method="isotonic", cv=3),
    "cal_iso_lr_single": lambda: CalibratedClassifierCV(LogisticRegression(max_iter=50), method="isotonic",
                                                        cv=2, ensemble=False),
    "cal_iso_ridge": lambda: CalibratedClassifierCV(RidgeClassifier(), method="isotonic", cv=2),
    "ovr_sgd_log_raw": lambda: OneVsRestClassifier(
        SGDClassifier(loss="log_loss", alpha=1e-6, random_state=0, max_iter=30)),
}


def _fit(case: Case, texts: list, labels: list) -> Pipeline:
    feats = case.features()
    steps = feats if isinstance(feats, list) else [("features", feats)]
    if case.clf == "cal_frozen":
        if FrozenEstimator is None:
            pytest.skip("FrozenEstimator needs scikit-learn >= 1.6")
        pre = Pipeline(steps).fit(texts, labels)
        X = pre.transform(texts)
        svc = LinearSVC(max_iter=200).fit(X, labels)
        clf = CalibratedClassifierCV(FrozenEstimator(svc), method="sigmoid").fit(X, labels)
        return Pipeline(pre.steps + [("clf", clf)])
    factory = EXTRA_CLASSIFIERS.get(case.clf) or CLASSIFIERS[case.clf][0]
    if case.column is not None:
        import pandas as pd

        steps = [("prep", ColumnTransformer([(n, t, case.column) for n, t in steps], **(case.ct or {})))]
        texts = pd.DataFrame({case.column: texts, "n_chars": [len(t) for t in texts]})
    pipe = Pipeline(steps + [("clf", factory())]).fit(texts, labels)
    if case.after_fit is not None:
        case.after_fit(pipe)
    return pipe


# ---------------------------------------------------------------------------------------------
# fixtures and the test
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_texts():
    return _train_texts()


@pytest.fixture(scope="module")
def texts():
    return wt.wide_texts(big=False)


@pytest.fixture(scope="module")
def big_texts():
    return wt.big_edges()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with threadpool_limits(limits=1):
        yield


def test_matrix_covers_the_brief():
    """The matrix holds what it claims (cheap, runs without the CLI)."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(_analyzer_cases()) == 66
    used = {c.clf for c in CASES}
    assert set(CLASSIFIERS) <= used
    for k in (2, 3, 4, 5):
        for labels in ("int", "str"):
            assert any(c.k == k and c.labels == labels for c in CASES), (k, labels)
    assert sum(c.big for c in CASES) >= 4


def test_wide_texts_cover_the_brief(texts):
    joined = "".join(texts)
    for needle in ["\u200d", "\U0001f3fd", "🇹🇷", "#️⃣", "İ", "ı", "ẞ", "ß", "ς", "Ặ", "\ufffe",
                   "\U0001fffe", "\x85", "\u1680", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
                   "\x1c", "\x1f", "\x9f", "\ufe0f", "\U000e0100"]:
        assert needle in joined, repr(needle)
    scripts = {"Arabic": "\u0627", "Hebrew": "\u05d0", "Devanagari": "\u0915", "Bengali": "\u0995",
               "Thai": "\u0e01", "Han": "\u4e2d", "Hiragana": "\u306e", "Katakana": "\u30ab",
               "Hangul": "\ud55c", "Georgian": "\u10d0", "Armenian": "\u0561", "Ethiopic": "\u1208",
               "Tamil": "\u0b95", "Cyrillic": "\u0430", "Greek": "\u03b1"}
    for name, ch in scripts.items():
        assert ch in joined, name
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in joined)
    later = sum(any(lo <= ord(c) <= hi for lo, hi in wt.LATER_UNICODE) for c in joined)
    assert later >= 250, f"{later} code points assigned after Unicode 14.0"
    assert "\u0295\u03a3" in joined
    assert "" in texts


# What depends on the Python's Unicode version is the tokens: the later Pythons run one case of each
# analyzer kind × lowercase × strip_accents (n-grams 1 to 3) alone (`-m analyzer`,
# scripts/test_pythons.sh); the rest of the matrix is the same code there.
ANALYZER_IDS = {c.id for c in CASES if c.id.startswith(("word13_", "char13_", "char_wb13_"))}


@requires_skedge
@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=[pytest.mark.analyzer] if c.id in ANALYZER_IDS else []) for c in CASES])
def test_parity_wide(case, train_texts, texts, big_texts, tmp_path):
    labels = _labels(len(train_texts), case.k, case.labels, seed=len(case.id))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence, PassiveAggressive deprecation
        model = _fit(case, train_texts, labels)
        inter = export.build_interchange(
            model, source_sha256=hashlib.sha256(case.id.encode()).hexdigest(), name=case.id,
            skedge=SKEDGE)
    artifact = tmp_path / "model.skedge"
    export.pack(inter, artifact, SKEDGE)
    gate_texts = texts + big_texts if case.big else texts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = export.parity_gate(model, artifact, gate_texts, SKEDGE)
    assert report.ok, f"{case.id}: {report.describe()}"


def test_ngram_range_beyond_the_engine_is_refused():
    """max_n > 64 is refused at export, naming the parameter (the engine rejects it at load)."""
    model = Pipeline([("v", HashingVectorizer(analyzer="char_wb", ngram_range=(2, 65), n_features=8)),
                      ("c", LogisticRegression())]).fit(["abc def", "ghi jkl"], [0, 1])
    with pytest.raises(ix.Unsupported, match="ngram_range"):
        ix.to_interchange(model, {}, log_table=lambda: [])


def test_int_labels_beyond_i64_are_refused():
    """uint64 labels above 2**63 - 1 are refused at export (the interchange holds i64 labels)."""
    y = np.array([0, 2**64 - 1], dtype=np.uint64)
    model = Pipeline([("v", CountVectorizer()), ("c", MultinomialNB())]).fit(["aa bb", "cc dd"], y)
    with pytest.raises(ix.Unsupported, match="64-bit"):
        ix.to_interchange(model, {}, log_table=lambda: [])


def test_use_idf_turned_off_after_fit_keeps_idf():
    """TfidfTransformer.transform multiplies by idf_ whenever it exists (hasattr), whatever use_idf
    says after a set_params: the interchange must carry it (was: idf null, a parity failure)."""
    model = Pipeline([("count", CountVectorizer()), ("tfidf", TfidfTransformer()),
                      ("c", LogisticRegression())]).fit(["aa bb", "aa"], [0, 1])
    model.set_params(tfidf__use_idf=False)
    inter = ix.to_interchange(model, {}, log_table=lambda: [])
    tfidf = inter["pipeline"]["features"][0]["transforms"][0]
    assert tfidf["idf"] == model.named_steps["tfidf"].idf_.tolist()


@requires_skedge
def test_sublinear_counts_past_the_checked_logs_are_refused(tmp_path):
    """The exporter compares numpy's log with the engine's for counts up to ix.LN_TABLE_SIZE
    (FORMAT.md §1; past it numpy with AVX-512 differs in the last bit for about one count in a
    hundred, the first 1,057,687): at that count the decision is scikit-learn's bit for bit; one
    more occurrence is refused with INPUT_TOO_LARGE, never approximated."""
    import skedge

    model = Pipeline([("v", TfidfVectorizer(sublinear_tf=True, norm=None)),
                      ("c", LogisticRegression())]).fit(["ab cd", "ab ef", "cd ef gh", "gh ab"], [0, 1, 0, 1])
    inter = export.build_interchange(model, source_sha256=hashlib.sha256(b"log").hexdigest(), skedge=SKEDGE)
    artifact = tmp_path / "model.skedge"
    export.pack(inter, artifact, SKEDGE)
    runtime = skedge.Model.load(str(artifact))
    limit = ix.LN_TABLE_SIZE
    text = " ".join(["ab"] * limit)
    want = np.float64(model.decision_function([text])[0])
    got = np.float64(runtime.predict(text)["decision"][0])
    assert got.view(np.uint64) == want.view(np.uint64), (got, want)
    for n in (limit + 1, 3 * limit):
        with pytest.raises(skedge.SkedgeError) as e:
            runtime.predict(" ".join(["ab"] * n))
        assert e.value.code == "INPUT_TOO_LARGE" and f"occurs {n} times" in str(e.value), e.value
    assert runtime.predict("ab cd")["label"] == model.predict(["ab cd"])[0]
