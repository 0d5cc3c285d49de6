"""Golden parity fixtures, produced by scikit-learn itself.

    .venv/bin/python scripts/make_fixtures.py            # (re)write tests/fixtures/
    .venv/bin/python scripts/make_fixtures.py --check    # regenerate in a temp dir, byte-compare

Each case trains a small pipeline on a committed corpus (tests/data/) and writes, in
tests/fixtures/cases/:

- `<case>.interchange.json`: `to_interchange(pipeline, fixed metadata)`, the input of `skedge pack`;
- `<case>.expected.jsonl`: one line per test text, `{"text", "tokens", "features", "decision",
  "label", "proba"}` where `tokens` is `build_analyzer()(text)` per feature block (block order),
  `features` the row fed to the classifier (`[[column, value], ...]` in stored CSR order, explicit
  zeros kept), `decision`/`label`/`proba` what scikit-learn computes (decision = decision_function
  for linear models, predict_joint_log_proba for naive Bayes, predict_proba for
  CalibratedClassifierCV). `tokens` is null when a text yields more than TOKENS_LIMIT tokens (the
  10-50 KB adversarial texts under char analyzers): its features and decision are still checked.

Test texts per case: the first 120 held-out real texts of at most 300 characters (to keep
tests/fixtures small), the adversarial set (which has its own 10-50 KB texts), 30 seeded random
strings.
`tests/fixtures/MANIFEST.json` records versions and the sha256 of the inputs and of every fixture.

Everything is deterministic (random_state everywhere, one BLAS thread, sorted lists), and the same
bytes on every x86-64 machine: numpy's SIMD dispatch and OpenBLAS's kernels depend on the CPU
(numpy's sorts break ties in `max_features` differently with AVX2 and AVX-512, its log rounds
differently, FORMAT.md `log_exceptions`; the solvers' sums follow the BLAS kernel), so this script
pins both to the x86-64-v2 baseline every such machine has before numpy is imported
(`NPY_DISABLE_CPU_FEATURES`, `OPENBLAS_CORETYPE`). Fixtures generated on an AVX-512 machine without
it failed `--check` on an AVX2 one (2026-12-05). Other architectures run their own code: regenerate
there.
"""

from __future__ import annotations

import argparse
import csv
import filecmp
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# Before numpy and scipy load (the module docstring says why); as a script only: the tests import
# this module into a process whose numpy is loaded, and its environment reaches their subprocesses.
if __name__ == "__main__" and platform.machine() in ("x86_64", "AMD64"):
    os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
    os.environ["OPENBLAS_CORETYPE"] = "Nehalem"

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from skedge import interchange as ix  # noqa: E402
from skedge.adversarial import ADVERSARIAL, random_texts  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import VotingClassifier  # noqa: E402
from sklearn.feature_extraction.text import (  # noqa: E402
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.feature_selection import (  # noqa: E402
    SelectFdr,
    SelectFromModel,
    SelectFpr,
    SelectFwe,
    SelectKBest,
    SelectPercentile,
    VarianceThreshold,
    chi2,
)
from sklearn.linear_model import (  # noqa: E402
    LogisticRegression,
    Perceptron,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.multiclass import OneVsRestClassifier  # noqa: E402
from sklearn.naive_bayes import BernoulliNB, ComplementNB, MultinomialNB  # noqa: E402
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import MaxAbsScaler, Normalizer, StandardScaler  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

REPO = ix.REPO_ROOT
DATA = REPO / "tests" / "data"
FIXTURES = REPO / "tests" / "fixtures"
SCRIPTS = Path(__file__).resolve().parent

HELD_OUT_PER_CASE = 120
RANDOM_TEXTS = 30
TOKENS_LIMIT = 3000
HELD_OUT_MAX_CHARS = 300
CREATED = "2000-01-01T00:00:00Z"
SEED = 0


# ---------------------------------------------------------------------------------------------
# corpora
# ---------------------------------------------------------------------------------------------


def read_tsv(name: str) -> tuple[list[str], list[str]]:
    """A `text<TAB>label` file with header, read without quote handling."""
    texts, labels = [], []
    with open(DATA / name, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows)
        if header != ["text", "label"]:
            raise ValueError(f"{name}: unexpected header {header}")
        for row in rows:
            if len(row) != 2:
                raise ValueError(f"{name}: malformed row {row!r}")
            texts.append(row[0])
            labels.append(row[1])
    return texts, labels


@dataclass
class Corpus:
    name: str
    files: list
    train_texts: list
    train_labels: list
    test_texts: list  # every held-out text (accuracy); the first HELD_OUT_PER_CASE go in fixtures
    test_labels: list


def _split(name: str, files: list, texts: list, labels: list, n_test: int) -> Corpus:
    order = np.random.RandomState(SEED).permutation(len(texts))
    test, train = order[:n_test], order[n_test:]
    return Corpus(
        name,
        files,
        [texts[i] for i in train],
        [labels[i] for i in train],
        [texts[i] for i in test],
        [labels[i] for i in test],
    )


def corpus_uci() -> Corpus:
    """UCI sentences (amazon + imdb + yelp), binary int labels, 2,400 train / 600 held out."""
    files = ["uci_amazon_cells.tsv", "uci_imdb.tsv", "uci_yelp.tsv"]
    texts, labels = [], []
    for f in files:
        t, y = read_tsv(f)
        texts += t
        labels += [int(v) for v in y]
    return _split("uci", files, texts, labels, 600)


def corpus_sst2() -> Corpus:
    """SST-2: the first 2,000 train phrases / the dev sentences, binary int labels."""
    tr, ytr = read_tsv("sst2_train_first2000.tsv")
    te, yte = read_tsv("sst2_dev.tsv")
    return Corpus(
        "sst2",
        ["sst2_train_first2000.tsv", "sst2_dev.tsv"],
        tr,
        [int(v) for v in ytr],
        te,
        [int(v) for v in yte],
    )


def corpus_allocine() -> Corpus:
    """Allociné TV reviews (French, lower-cased): 1,500 train / 300 test, binary int labels."""
    tr, ytr = read_tsv("fr_allocine_tv_train_first1500.tsv")
    te, yte = read_tsv("fr_allocine_tv_test_first300.tsv")
    return Corpus(
        "allocine",
        ["fr_allocine_tv_train_first1500.tsv", "fr_allocine_tv_test_first300.tsv"],
        tr,
        [int(v) for v in ytr],
        te,
        [int(v) for v in yte],
    )


def _bucket(rating: str) -> str:
    r = float(rating)
    return "neg" if r <= 2.0 else ("mid" if r <= 3.5 else "pos")


def corpus_books() -> Corpus:
    """French book reviews (original casing), ratings bucketed to "neg"/"mid"/"pos": 1,200 / 300."""
    f = "fr_book_reviews_500_per_bucket.tsv"
    texts, ratings = read_tsv(f)
    return _split("books", [f], texts, [_bucket(r) for r in ratings], 300)


CORPORA: dict[str, Callable[[], Corpus]] = {
    "uci": corpus_uci,
    "sst2": corpus_sst2,
    "allocine": corpus_allocine,
    "books": corpus_books,
}


# ---------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------


def _passive_aggressive():
    from sklearn.linear_model import PassiveAggressiveClassifier  # deprecated in 1.8

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return PassiveAggressiveClassifier(random_state=SEED, max_iter=50)


def _lr():
    return LogisticRegression(max_iter=2000, random_state=SEED)


def _svc():
    return LinearSVC(random_state=SEED)


def _tfidf(**kw):
    kw.setdefault("max_features", 1500)
    return TfidfVectorizer(**kw)


@dataclass
class Case:
    name: str
    corpus: str
    build: Callable[[], Pipeline]
    what: str
    #: Fitted on a DataFrame whose column `column` holds the texts (beside a numeric column the
    #: ColumnTransformer drops), as MLflow signatures and autologging give; None: on the texts.
    column: str | None = None


def frame(column: str, texts: list):
    """The DataFrame a `column` case is fitted and evaluated on: the texts and their length."""
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame({column: list(texts), "n_chars": [len(t) for t in texts]})


CASES = [
    Case("word_tfidf_lr_binary", "uci", lambda: make_pipeline(_tfidf(), _lr()),
         "TfidfVectorizer() + LogisticRegression, binary int labels: proba logistic"),
    Case("word12_tfidf_sublinear_lr_fr", "allocine",
         lambda: make_pipeline(_tfidf(ngram_range=(1, 2), sublinear_tf=True, max_features=2000), _lr()),
         "word (1,2) sublinear_tf on French reviews with repeated tokens: log_exceptions"),
    Case("word12_mindf2_tfidf_lr_pairs", "uci",
         lambda: make_pipeline(_tfidf(ngram_range=(1, 2), min_df=2, max_features=None), _lr()),
         "word (1,2) min_df=2, every bigram's words kept: the vocabulary is stored as word pairs"),
    Case("charwb25_tfidf_linearsvc", "uci",
         lambda: make_pipeline(_tfidf(analyzer="char_wb", ngram_range=(2, 5), max_features=2000), _svc()),
         "char_wb (2,5) + LinearSVC binary"),
    Case("char13_tfidf_sgd_log_multiclass_fr", "books",
         lambda: make_pipeline(
             _tfidf(analyzer="char", ngram_range=(1, 3), max_features=2000),
             SGDClassifier(loss="log_loss", random_state=SEED)),
         "char (1,3) + SGDClassifier(log_loss), 3 string classes: OvR-normalised logistic proba"),
    Case("union_word_charwb_weighted_lr", "uci",
         lambda: make_pipeline(
             FeatureUnion(
                 [("word", _tfidf()),
                  ("char", _tfidf(analyzer="char_wb", ngram_range=(2, 4))),
                  ("unused", "drop")],
                 transformer_weights={"word": 1.0, "char": 0.5}),
             _lr()),
         "FeatureUnion(word tfidf, char_wb tfidf, a 'drop' member) with transformer_weights + LR"),
    Case("count_binary_bernoullinb", "sst2",
         lambda: make_pipeline(CountVectorizer(binary=True, max_features=2000), BernoulliNB()),
         "CountVectorizer(binary=True) + BernoulliNB"),
    Case("count_multinomialnb_3class_fr", "books",
         lambda: make_pipeline(CountVectorizer(max_features=2000), MultinomialNB()),
         "CountVectorizer + MultinomialNB, 3 string classes (neg/mid/pos)"),
    Case("count_tfidftransformer_complementnb_fr", "allocine",
         lambda: make_pipeline(CountVectorizer(max_features=2000), TfidfTransformer(), ComplementNB()),
         "CountVectorizer + TfidfTransformer + ComplementNB (intercept null)"),
    Case("hashing1024_alternate_binary_perceptron", "sst2",
         lambda: make_pipeline(
             HashingVectorizer(n_features=2**10, alternate_sign=True, binary=True),
             Perceptron(random_state=SEED)),
         "HashingVectorizer(2**10 to force collisions, alternate_sign, binary, l2) + Perceptron"),
    Case("hashing4096_tfidf_sublinear_passiveaggressive", "uci",
         lambda: make_pipeline(
             HashingVectorizer(n_features=2**12, norm=None, alternate_sign=False),
             TfidfTransformer(sublinear_tf=True),
             _passive_aggressive()),
         "HashingVectorizer(2**12, norm=None) + TfidfTransformer(sublinear_tf) + PassiveAggressive"),
    Case("strip_accents_unicode_cased_lr_fr", "books",
         lambda: make_pipeline(_tfidf(strip_accents="unicode", lowercase=False, max_features=2000), _lr()),
         "strip_accents='unicode', lowercase=False on cased French + LR multinomial"),
    Case("strip_accents_ascii_cased_linearsvc_fr", "books",
         lambda: make_pipeline(_tfidf(strip_accents="ascii", lowercase=False, max_features=2000), _svc()),
         "strip_accents='ascii', lowercase=False on cased French + LinearSVC multiclass"),
    Case("stopwords_english_w1_ridge", "uci",
         lambda: make_pipeline(
             _tfidf(stop_words="english", token_pattern=r"(?u)\b\w+\b"), RidgeClassifier()),
         "stop_words='english', token_pattern (?u)\\b\\w+\\b + RidgeClassifier"),
    Case("sgd_modified_huber_binary", "sst2",
         lambda: make_pipeline(_tfidf(), SGDClassifier(loss="modified_huber", random_state=SEED)),
         "SGDClassifier(modified_huber) binary"),
    Case("sgd_modified_huber_multiclass_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=2000),
                               SGDClassifier(loss="modified_huber", random_state=SEED)),
         "SGDClassifier(modified_huber), 3 string classes"),
    Case("sgd_hinge_multiclass_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=2000), SGDClassifier(loss="hinge", random_state=SEED)),
         "SGDClassifier(hinge), 3 string classes: no proba"),
    Case("lr_multinomial_3class_strings_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=2000), _lr()),
         "LogisticRegression, 3 string classes: proba softmax"),
    Case("calibrated_linearsvc_sigmoid_binary", "uci",
         lambda: make_pipeline(_tfidf(), CalibratedClassifierCV(_svc(), method="sigmoid", cv=3)),
         "CalibratedClassifierCV(LinearSVC, sigmoid, cv=3) binary"),
    Case("calibrated_linearsvc_sigmoid_multiclass_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=1000),
                               CalibratedClassifierCV(_svc(), method="sigmoid", cv=3)),
         "CalibratedClassifierCV(LinearSVC, sigmoid, cv=3), 3 string classes"),
    Case("linearsvc_multiclass_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=2000), _svc()),
         "LinearSVC one-vs-rest, 3 string classes"),
    Case("count_multinomialnb_int_labels", "uci",
         lambda: make_pipeline(CountVectorizer(max_features=2000), MultinomialNB()),
         "CountVectorizer + MultinomialNB, int labels"),
    Case("tfidf_l1_noidf_lr", "sst2",
         lambda: make_pipeline(_tfidf(norm="l1", use_idf=False), _lr()),
         "TfidfVectorizer(norm='l1', use_idf=False): tfidf with idf null, then l1"),
    Case("word23_no_unigrams_lr_fr", "allocine",
         lambda: make_pipeline(_tfidf(ngram_range=(2, 3), max_features=2000), _lr()),
         "word ngram_range (2,3), no unigrams"),
    Case("char12_cased_lr_fr", "books",
         lambda: make_pipeline(_tfidf(analyzer="char", ngram_range=(1, 2), lowercase=False), _lr()),
         "char (1,2) lowercase=False on cased French"),
    Case("union_count_hashing_tfidf_after_union", "sst2",
         lambda: make_pipeline(
             FeatureUnion([
                 ("word", CountVectorizer(dtype=np.int32, max_features=1500)),
                 ("char", HashingVectorizer(analyzer="char_wb", ngram_range=(3, 3), n_features=2**11,
                                            alternate_sign=False, norm=None)),
             ]),
             TfidfTransformer(sublinear_tf=True),
             Normalizer(norm="l1"),
             _lr()),
         "FeatureUnion(Count int32, Hashing char_wb) then TfidfTransformer(sublinear) and "
         "Normalizer(l1) over the concatenation: pipeline-level transforms"),
    Case("hashing_l2_then_tfidf_linearsvc", "uci",
         lambda: make_pipeline(HashingVectorizer(n_features=2**12), TfidfTransformer(), _svc()),
         "HashingVectorizer(norm='l2') + TfidfTransformer(): [normalize, tfidf, normalize]"),
    Case("nested_pipeline_count_normalizer_lr", "sst2",
         lambda: Pipeline([
             ("features", Pipeline([("count", CountVectorizer(dtype=np.int64, max_features=2000)),
                                    ("norm", Normalizer(norm="l2"))])),
             ("model", Pipeline([("clf", _lr())])),
         ]),
         "nested Pipelines: Count(int64) + Normalizer(l2) / LR"),
    # column-mask feature selection and per-column scalers (issue #17)
    Case("tfidf_l2_selectkbest_chi2_lr", "uci",
         lambda: make_pipeline(_tfidf(), SelectKBest(chi2, k=300), _lr()),
         "TfidfVectorizer (l2 over all 1500 columns) + SelectKBest(chi2, k=300) + LR: the norm "
         "counts the dropped columns"),
    Case("count_selectpercentile_tfidf_mnb_3class_fr", "books",
         lambda: make_pipeline(CountVectorizer(max_features=2000), SelectPercentile(chi2, percentile=20),
                               TfidfTransformer(sublinear_tf=True), MultinomialNB()),
         "CountVectorizer + SelectPercentile(chi2, 20) + TfidfTransformer(sublinear) + MultinomialNB: "
         "idf over the selected columns"),
    Case("hashing_alternate_variancethreshold_maxabs_linearsvc", "sst2",
         lambda: make_pipeline(HashingVectorizer(n_features=2**12, norm=None), VarianceThreshold(0.002),
                               MaxAbsScaler(), _svc()),
         "HashingVectorizer(alternate_sign, norm=None: explicit zeros) + VarianceThreshold + "
         "MaxAbsScaler + LinearSVC"),
    Case("union_count_hashing_maxabs_clip_lr", "sst2",
         lambda: make_pipeline(
             FeatureUnion([("word", CountVectorizer(max_features=1500)),
                           ("char", HashingVectorizer(analyzer="char_wb", ngram_range=(3, 3), n_features=2**11,
                                                      norm=None))]),
             MaxAbsScaler(clip=True),
             _lr()),
         "FeatureUnion(Count, Hashing char_wb alternate_sign norm=None) + MaxAbsScaler(clip=True) + LR: "
         "counts past the training maximum clipped to 1 and -1 (3 labels and 60 decisions would differ "
         "without the clip)"),
    Case("tfidf_selectfrommodel_l1svc_standardscaler_sgd_log_fr", "books",
         lambda: make_pipeline(
             _tfidf(max_features=2000),
             SelectFromModel(LinearSVC(penalty="l1", dual=False, C=0.5, random_state=SEED)),
             StandardScaler(with_mean=False),
             SGDClassifier(loss="log_loss", random_state=SEED)),
         "TfidfVectorizer + SelectFromModel(LinearSVC l1) + StandardScaler(with_mean=False) + "
         "SGDClassifier(log_loss), 3 string classes"),
    Case("union_selectfpr_normalizer_after_union_lr", "sst2",
         lambda: make_pipeline(
             FeatureUnion([("word", CountVectorizer(max_features=1500)),
                           ("char", _tfidf(analyzer="char_wb", ngram_range=(2, 3)))]),
             SelectFpr(chi2, alpha=0.05),
             Normalizer(norm="l2"),
             _lr()),
         "FeatureUnion(Count, char_wb tfidf) + SelectFpr(chi2) + Normalizer over the concatenation"),
    Case("count_selectfdr_selectfwe_bernoullinb", "uci",
         lambda: make_pipeline(CountVectorizer(max_features=2000), SelectFdr(chi2, alpha=0.5),
                               SelectFwe(chi2, alpha=0.5), BernoulliNB()),
         "CountVectorizer + SelectFdr + SelectFwe (two masks in a row) + BernoulliNB"),
    Case("ovr_lr_3class_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=2000), OneVsRestClassifier(_lr())),
         "OneVsRestClassifier(LogisticRegression), 3 string classes: proba one_vs_rest"),
    Case("ovr_lr_binary", "uci",
         lambda: make_pipeline(_tfidf(), OneVsRestClassifier(_lr())),
         "OneVsRestClassifier(LogisticRegression), binary: one estimator, [1-p, p] / ((1-p) + p)"),
    Case("ovr_linearsvc_selectkbest_3class_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=2000), SelectKBest(chi2, k=500), OneVsRestClassifier(_svc())),
         "SelectKBest + OneVsRestClassifier(LinearSVC), 3 string classes: no proba"),
    # isotonic calibration (issue #17)
    Case("calibrated_linearsvc_isotonic_binary", "uci",
         lambda: make_pipeline(_tfidf(), CalibratedClassifierCV(_svc(), method="isotonic", cv=3)),
         "CalibratedClassifierCV(LinearSVC, isotonic, cv=3) binary: interp1d over the thresholds, clipped"),
    Case("calibrated_lr_isotonic_multiclass_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=1000),
                               CalibratedClassifierCV(_lr(), method="isotonic", cv=3)),
         "CalibratedClassifierCV(LogisticRegression, isotonic, cv=3), 3 string classes: row-sum "
         "normalisation"),
    # VotingClassifier (issue #17)
    Case("voting_soft_lr_mnb_weighted_3class_fr", "books",
         lambda: make_pipeline(_tfidf(max_features=2000), VotingClassifier(
             [("lr", _lr()), ("nb", MultinomialNB()), ("sgd", SGDClassifier(loss="log_loss", random_state=SEED))],
             voting="soft", weights=[2, 1, 0.5])),
         "VotingClassifier(soft, weights [2, 1, 0.5]) over LR, MultinomialNB, SGD(log_loss), 3 string classes"),
    Case("voting_hard_svc_lr_bnb_binary", "uci",
         lambda: make_pipeline(_tfidf(), VotingClassifier(
             [("svc", _svc()), ("lr", _lr()), ("nb", BernoulliNB())], voting="hard")),
         "VotingClassifier(hard) over LinearSVC, LR, BernoulliNB binary: decision = votes per class"),
    # ColumnTransformer over one DataFrame column (issue #17)
    Case("ct_text_tfidf_lr_binary", "uci",
         lambda: make_pipeline(ColumnTransformer([("tfidf", _tfidf(), "text")]), _lr()),
         "ColumnTransformer([(tfidf, TfidfVectorizer(), 'text')]) + LR on a DataFrame {text, n_chars}: "
         "the other column dropped, records {'text': ...}", column="text"),
    Case("ct_review_word_charwb_weighted_svc_3class_fr", "books",
         lambda: make_pipeline(ColumnTransformer(
             [("word", _tfidf(max_features=2000), "review"),
              ("char", _tfidf(analyzer="char_wb", ngram_range=(2, 4), max_features=2000), "review"),
              ("unused", "drop", ["n_chars"])],
             transformer_weights={"char": 0.5}), _svc()),
         "ColumnTransformer(word + char_wb TF-IDF on 'review', weights, a 'drop' entry) + LinearSVC, "
         "3 string classes: a FeatureUnion over one column", column="review"),
]


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jsonl(obj: dict) -> str:
    """One JSON line; U+0085/U+2028/U+2029 escaped so no line splitter breaks the line."""
    return ix.escape_line_separators(
        json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    )


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def build_case(case: Case, corpus: Corpus, log_table, out_dir: Path) -> dict:
    """Train, export and write one case; returns its summary for the manifest."""
    pipe = case.build()
    inputs = (lambda texts: frame(case.column, texts)) if case.column else list
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        pipe.fit(inputs(corpus.train_texts), corpus.train_labels)
    accuracy = float(np.mean(np.asarray(pipe.predict(inputs(corpus.test_texts))) == np.asarray(corpus.test_labels)))

    source = hashlib.sha256()
    source.update(f"skedge-fixture\0{case.name}\0".encode())
    for f in corpus.files:
        source.update(sha256_file(DATA / f).encode())
    metadata = {
        "name": case.name,
        "version": "1",
        "created": CREATED,
        "source_sha256": source.hexdigest(),
        "provenance": {
            "generator": "scripts/make_fixtures.py",
            "case": case.name,
            "corpus": ", ".join(f"tests/data/{f}" for f in corpus.files),
            "description": case.what,
        },
        "metrics": {"accuracy": accuracy},
    }
    inter = ix.to_interchange(pipe, metadata, log_table=log_table)
    (out_dir / f"{case.name}.interchange.json").write_text(ix.dumps_interchange(inter), encoding="utf-8")

    held_out = [t for t in corpus.test_texts if len(t) <= HELD_OUT_MAX_CHARS][:HELD_OUT_PER_CASE]
    texts = held_out + ADVERSARIAL + random_texts(RANDOM_TEXTS)
    ref = ix.reference_outputs(pipe, texts)
    analyzers = [v.build_analyzer() for v in ix.vectorizers(pipe)]
    X = ref["features"]
    lines, skipped, tokens_omitted = [], [], 0
    for i, text in enumerate(texts):
        row = slice(X.indptr[i], X.indptr[i + 1])
        features = [[int(c), float(v)] for c, v in zip(X.indices[row], X.data[row])]
        decision = [float(v) for v in ref["decision"][i]]
        proba = None if ref["proba"] is None else [float(v) for v in ref["proba"][i]]
        if not (_finite(v for _, v in features) and _finite(decision) and _finite(proba or [])):
            skipped.append(i)
            continue
        tokens = [list(a(text)) for a in analyzers]
        if sum(len(t) for t in tokens) > TOKENS_LIMIT:
            tokens = None
            tokens_omitted += 1
        lines.append(_jsonl({
            "text": text,
            "tokens": tokens,
            "features": features,
            "decision": decision,
            "label": ref["labels"][i],
            "proba": proba,
        }))
    (out_dir / f"{case.name}.expected.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if skipped:
        print(f"  {case.name}: skipped {len(skipped)} text(s) with non-finite outputs: {skipped}",
              file=sys.stderr)
    clf = inter["pipeline"]["classifier"]
    return {
        "corpus": corpus.files,
        "description": case.what,
        "classifier": clf["estimator"],
        "classes": clf["classes"],
        "held_out_accuracy": accuracy,
        "texts": len(lines),
        "held_out_texts": len(held_out),
        "tokens_omitted": tokens_omitted,
        "skipped_non_finite": skipped,
    }


def ln_source(skedge: Path | None):
    """(log_table callable, description): the real CLI when built, else math.log with a warning."""
    if skedge is not None and skedge.exists():
        return (lambda: ix.log_exceptions(skedge)), f"skedge ln-table ({skedge.name})"
    print(
        "\n*** WARNING: skedge CLI not found at "
        f"{skedge}; log_exceptions are computed against math.log (the C library) instead of\n"
        "*** `skedge ln-table`. Regenerate these fixtures once target/release/skedge is built.\n",
        file=sys.stderr,
    )
    return ix.log_exceptions_math_fallback, "math.log fallback (skedge CLI not built)"


def generate(out: Path, skedge: Path | None, only: list | None = None) -> dict:
    cases_dir = out / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    log_table, log_desc = ln_source(skedge)
    corpora: dict = {}
    summary = {}
    started = time.time()
    with threadpool_limits(limits=1):
        for case in CASES:
            if only and case.name not in only:
                continue
            if case.corpus not in corpora:
                corpora[case.corpus] = CORPORA[case.corpus]()
            t0 = time.time()
            summary[case.name] = build_case(case, corpora[case.corpus], log_table, cases_dir)
            print(f"  {case.name}: {summary[case.name]['texts']} texts, {time.time() - t0:.1f}s",
                  file=sys.stderr)

    corpus_files = sorted({f for c in corpora.values() for f in c.files})
    manifest = {
        "generator": "scripts/make_fixtures.py",
        "python_version": platform.python_version(),
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "unicode_version": unicodedata.unidata_version,
        "log_exceptions_source": log_desc,
        "tokens_limit": TOKENS_LIMIT,
        "texts_per_case": {
            "held_out": HELD_OUT_PER_CASE,
            "held_out_max_chars": HELD_OUT_MAX_CHARS,
            "adversarial": len(ADVERSARIAL),
            "random": RANDOM_TEXTS,
        },
        "scripts": {
            name: sha256_file(SCRIPTS / name)
            for name in ("make_fixtures.py", "skedge/interchange.py", "skedge/adversarial.py")
        },
        "corpora": {f"tests/data/{f}": sha256_file(DATA / f) for f in corpus_files},
        "cases": summary,
        "files": {
            f"cases/{p.name}": sha256_file(p) for p in sorted(cases_dir.iterdir()) if p.is_file()
        },
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    print(f"wrote {len(summary)} cases to {out} in {time.time() - started:.1f}s", file=sys.stderr)
    return manifest


def _tree(root: Path) -> set:
    """The files this script owns under `root`: cases/* and MANIFEST.json (others, e.g. the
    Unicode table digests, belong to other generators)."""
    files = {f"cases/{p.name}" for p in (root / "cases").glob("*") if p.is_file()}
    if (root / "MANIFEST.json").exists():
        files.add("MANIFEST.json")
    return files


def check(committed: Path, skedge: Path | None) -> int:
    """Regenerate into a temp dir and byte-compare with `committed`; 1 naming stale files."""
    with tempfile.TemporaryDirectory(prefix="skedge-fixtures-") as tmp:
        fresh = Path(tmp)
        generate(fresh, skedge)
        want, have = _tree(fresh), _tree(committed)
        stale = sorted(f for f in want & have if not filecmp.cmp(fresh / f, committed / f, shallow=False))
        missing, extra = sorted(want - have), sorted(have - want)
    if stale or missing or extra:
        for f in stale:
            print(f"stale: tests/fixtures/{f}", file=sys.stderr)
        for f in missing:
            print(f"missing: tests/fixtures/{f}", file=sys.stderr)
        for f in extra:
            print(f"not generated (remove it): tests/fixtures/{f}", file=sys.stderr)
        print("fixtures are stale: run .venv/bin/python scripts/make_fixtures.py", file=sys.stderr)
        return 1
    print(f"fixtures up to date ({len(want)} files)", file=sys.stderr)
    return 0


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temp dir and compare byte for byte; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=FIXTURES, help="fixture directory (default tests/fixtures)")
    parser.add_argument("--skedge", type=Path, default=ix.DEFAULT_SKEDGE,
                        help="skedge CLI for `ln-table` (default target/release/skedge)")
    parser.add_argument("--case", action="append", dest="cases",
                        help="generate only this case (repeatable; into --out, for debugging)")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out, args.skedge)
    if args.cases:
        unknown = set(args.cases) - {c.name for c in CASES}
        if unknown:
            parser.error(f"unknown case(s): {sorted(unknown)}")
        if args.out.resolve() == FIXTURES.resolve():
            parser.error("--case writes a partial set: give another --out than tests/fixtures")
        generate(args.out, args.skedge, only=args.cases)
        return 0
    cases_dir = args.out / "cases"
    if cases_dir.exists():
        shutil.rmtree(cases_dir)
    generate(args.out, args.skedge)
    return 0


if __name__ == "__main__":
    sys.exit(main())
