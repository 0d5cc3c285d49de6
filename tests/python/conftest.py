"""Shared helpers for the exporter tests: small real corpora, fitting, the skedge CLI."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import joblib
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import interchange as ix  # noqa: E402

DATA = REPO / "tests" / "data"
SKEDGE = ix.DEFAULT_SKEDGE

requires_skedge = pytest.mark.skipif(
    not SKEDGE.exists(), reason=f"{SKEDGE} is not built (cargo build --release)"
)


def read_tsv(name: str) -> tuple[list, list]:
    with open(DATA / name, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [r[0] for r in rows], [r[1] for r in rows]


def binary_corpus(n: int = 400) -> tuple[list, list]:
    """UCI yelp sentences, int labels 0/1."""
    texts, labels = read_tsv("uci_yelp.tsv")
    return texts[:n], [int(y) for y in labels[:n]]


def multiclass_corpus(n: int = 450) -> tuple[list, list]:
    """French book reviews, ratings bucketed into "neg" / "mid" / "pos"."""
    texts, ratings = read_tsv("fr_book_reviews_500_per_bucket.tsv")
    buckets = ["neg" if float(r) <= 2.0 else "mid" if float(r) <= 3.5 else "pos" for r in ratings]
    # the file holds 500 rows per bucket in file order; take some of each
    picked = [i for i in range(len(texts)) if i % (len(texts) // n or 1) == 0][:n]
    return [texts[i] for i in picked], [buckets[i] for i in picked]


def fit(pipe, corpus=binary_corpus):
    texts, labels = corpus()
    return pipe.fit(texts, labels)


def dump(model, tmp_path: Path, name: str = "model.joblib") -> Path:
    path = tmp_path / name
    joblib.dump(model, path)
    return path


def no_leftovers(directory: Path, keep: set) -> list:
    """Files in `directory` other than `keep` (names): what an export must not leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)
