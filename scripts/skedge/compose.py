"""A vectorizer and a classifier saved apart, composed as scikit-learn runs them.

Teams often keep the fitted `TfidfVectorizer` beside the registered classifier instead of one
`Pipeline`. `compose(vec, clf)` builds the `Pipeline` that `clf.predict(vec.transform(texts))`
is, after checking that the two were fitted together (output width against `n_features_in_`);
`check_saved_together` refuses a classifier given alone with a pointer to the option that adds its
vectorizer. Used in the process that loads the model files (isolated.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MaxAbsScaler, Normalizer, StandardScaler

from . import interchange as ix


class CompositionError(Exception):
    """The two files cannot be composed (not a vectorizer, widths differ): exit 3."""


class SavedApart(ix.Unsupported):
    """A classifier file without its vectorizer: exit 2, and the message names the option."""


def _takes_text(step: Any) -> bool:
    if isinstance(step, (CountVectorizer, HashingVectorizer, FeatureUnion)):
        return True
    if isinstance(step, Pipeline):
        steps = ix._pipeline_steps(step)
        return bool(steps) and _takes_text(steps[0][1])
    return False


def output_width(step: Any) -> int | None:
    """Columns a fitted vectorizer, FeatureUnion or Pipeline of them produces (None: unknown,
    left to the interchange, which refuses what it cannot export)."""
    if isinstance(step, HashingVectorizer):
        return int(step.n_features)
    if isinstance(step, CountVectorizer):
        vocabulary = getattr(step, "vocabulary_", None)
        return len(vocabulary) if vocabulary is not None else None
    if isinstance(step, FeatureUnion):
        widths = [output_width(t) for _, t in step.transformer_list if not (isinstance(t, str) and t == "drop")]
        return None if not widths or None in widths else sum(widths)
    if isinstance(step, Pipeline):
        steps = ix._pipeline_steps(step)
        width = output_width(steps[0][1]) if steps else None
        for _, later in steps[1:]:
            if hasattr(later, "get_support"):  # a column mask: what it keeps
                width = int(np.sum(later.get_support()))
            elif not isinstance(later, (TfidfTransformer, Normalizer, MaxAbsScaler, StandardScaler)):
                return None
        return width
    return None


def check_saved_together(model: Any, option: str) -> None:
    """Refuse a classifier alone (no vectorizer), pointing at the option that adds it."""
    if isinstance(model, Pipeline) or not hasattr(model, "classes_"):
        return
    width = getattr(model, "n_features_in_", None)
    expects = f" expecting {width} features" if width is not None else ""
    raise SavedApart(
        "pipeline",
        "estimator",
        type(model).__name__,
        f"this file holds a classifier alone{expects}, without its vectorizer; if the vectorizer "
        f"was saved apart, give it with {option}",
    )


def compose(vectorizer: Any, classifier: Any, *, vectorizer_source: str, classifier_source: str) -> Any:
    """The Pipeline scikit-learn would run for a vectorizer and a classifier saved apart:
    `clf.predict(vec.transform(texts))`. Refuses a width mismatch with both numbers."""
    steps = ix._pipeline_steps(classifier) if isinstance(classifier, Pipeline) else []
    if steps and _takes_text(steps[0][1]):
        raise CompositionError(
            f"{classifier_source} is already a pipeline starting with its vectorizer "
            f"({steps[0][0]!r}): export it without a separate vectorizer"
        )
    if not _takes_text(vectorizer):
        raise CompositionError(
            f"{vectorizer_source} holds a {type(vectorizer).__name__}, not a vectorizer: expected "
            "a fitted CountVectorizer, TfidfVectorizer, HashingVectorizer, FeatureUnion or a "
            "Pipeline starting with one"
        )
    width = output_width(vectorizer)
    expected = getattr(classifier, "n_features_in_", None)
    if width is not None and expected is not None and int(expected) != width:
        raise CompositionError(
            f"the vectorizer {vectorizer_source} produces {width} features but the classifier "
            f"{classifier_source} expects n_features_in_ = {int(expected)}: they were not fitted "
            "together (use the vectorizer saved by the classifier's training run)"
        )
    return Pipeline([("vectorizer", vectorizer), ("classifier", classifier)])
