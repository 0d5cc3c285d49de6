"""Drift baseline: the edge monitoring statistics of the validation texts (FORMAT.md section 4).

`compute_baseline(pipeline, texts, interchange)` returns the `metadata.baseline` object of the
interchange: the same statistics, with the same bins, that `skedge::monitor` counts at the edge
for each sampled prediction, computed here from scikit-learn's own outputs:

- `label_counts`: predictions per class, in `classes_` order;
- `confidence`: `max(predict_proba)` in 10 bins, `min(floor(p * 10), 9)`; None without predict_proba;
- `oov`: per text, analyzer features (`build_analyzer()(text)`) absent from the vocabulary over all
  features, summed over the vocabulary vectorizers, in 10 bins `min(oov * 10 // total, 9)`; texts
  without features counted in `no_features`; the pooled sums; None for hashing-only models;
- `length`: `len(text)` in 16 bins, `min(n.bit_length(), 15)`.

The exporter stores it in the artifact so that a snapshot from the edge can be compared with
training (`scripts/report.py push`). `tests/python/test_report.py` checks that these numbers equal
what the Rust monitor counts on the same texts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import interchange as ix

CONFIDENCE_BINS = 10
OOV_BINS = 10
LENGTH_BINS = 16


def confidence_bin(p: float) -> int:
    """`min(floor(p * 10), 9)`; 0 for NaN and negatives (as the Rust monitor)."""
    b = float(p) * float(CONFIDENCE_BINS)
    if math.isnan(b) or b < 0.0:
        return 0
    return min(int(math.floor(b)), CONFIDENCE_BINS - 1)


def oov_bin(oov: int, total: int) -> int | None:
    """`min(oov * 10 // total, 9)`, None when the text has no feature."""
    if total == 0:
        return None
    return min(min(oov, total) * OOV_BINS // total, OOV_BINS - 1)


def length_bin(chars: int) -> int:
    """0 for an empty text, else `min(chars.bit_length(), 15)`."""
    return min(int(chars).bit_length(), LENGTH_BINS - 1)


def _ovr_proba(interchange: dict) -> bool:
    """Whether the interchange exported a multiclass LogisticRegression's one-vs-rest proba."""
    clf = interchange["pipeline"]["classifier"]
    return (
        clf.get("kind") == "linear"
        and clf.get("estimator") == "LogisticRegression"
        and clf.get("proba") == "logistic"
        and len(clf.get("classes", [])) > 2
    )


def _has_proba(interchange: dict) -> bool:
    clf = interchange["pipeline"]["classifier"]
    if clf.get("kind") == "linear":
        return clf.get("proba") != "none"
    return True  # naive Bayes and calibrated classifiers always have predict_proba


def oov_counts(pipeline: Any, texts: list, interchange: dict) -> list | None:
    """[(oov, total), ...] per text over the vocabulary blocks, or None without a vocabulary."""
    blocks = interchange["pipeline"]["features"]
    vectorizers = ix.vectorizers(pipeline)
    if len(vectorizers) != len(blocks):
        raise ValueError(f"{len(vectorizers)} vectorizers for {len(blocks)} feature blocks")
    used = []
    for block, v in zip(blocks, vectorizers):
        if block["counts"]["kind"] == "vocabulary":
            used.append((v.build_analyzer(), frozenset(block["counts"]["vocabulary"])))
    if not used:
        return None
    out = []
    for text in texts:
        oov = total = 0
        for analyze, vocab in used:
            for feature in analyze(text):
                total += 1
                if feature not in vocab:
                    oov += 1
        out.append((oov, total))
    return out


def compute_baseline(pipeline: Any, texts: list, interchange: dict) -> dict:
    """The `metadata.baseline` of `interchange` for the fitted `pipeline` on `texts`."""
    texts = list(texts)
    n_classes = len(interchange["pipeline"]["classifier"]["classes"])
    ref = ix.reference_outputs(pipeline, texts, ovr_proba=_ovr_proba(interchange))
    classes = np.asarray(ix.final_classifier(pipeline).classes_).tolist()
    index = {c: i for i, c in enumerate(classes)}

    label_counts = [0] * n_classes
    for label in ref["labels"]:
        label_counts[index[label]] += 1

    confidence = None
    if _has_proba(interchange) and ref["proba"] is not None:
        confidence = [0] * CONFIDENCE_BINS
        for row in np.asarray(ref["proba"], dtype=np.float64):
            confidence[confidence_bin(float(np.max(row)) if len(row) else float("nan"))] += 1

    oov = None
    counts = oov_counts(pipeline, texts, interchange)
    if counts is not None:
        oov = {"counts": [0] * OOV_BINS, "no_features": 0, "oov_features": 0, "total_features": 0}
        for o, t in counts:
            b = oov_bin(o, t)
            if b is None:
                oov["no_features"] += 1
            else:
                oov["counts"][b] += 1
            oov["oov_features"] += min(o, t)
            oov["total_features"] += t

    length = [0] * LENGTH_BINS
    for text in texts:
        length[length_bin(len(text))] += 1

    return {
        "count": len(texts),
        "label_counts": label_counts,
        "confidence": confidence,
        "oov": oov,
        "length": length,
    }


#: A drift baseline of fewer texts is too small to compare production windows with.
MIN_BASELINE_TEXTS = 100


def drift_baseline(pipeline: Any, interchange: dict, texts: list, source: str) -> str | None:
    """Store the statistics of `texts` as the artifact's drift baseline, and where they came
    from (provenance `baseline`); returns a warning when they are too few to mean anything."""
    if not texts:
        return None
    interchange["metadata"]["baseline"] = compute_baseline(pipeline, texts, interchange)
    interchange["metadata"]["provenance"]["baseline"] = f"{source}, {len(texts)} texts"
    if len(texts) >= MIN_BASELINE_TEXTS:
        return None
    return (
        f"the drift baseline comes from only {len(texts)} texts ({source}): drift statistics "
        f"against it are noise; give --baseline FILE with at least {MIN_BASELINE_TEXTS} texts "
        "like production's"
    )
