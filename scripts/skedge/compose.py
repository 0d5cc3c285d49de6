"""A vectorizer and a classifier saved apart, composed as scikit-learn runs them.

Teams often keep the fitted `TfidfVectorizer` beside the registered classifier instead of one
`Pipeline`. `compose(vec, clf)` builds the `Pipeline` that `clf.predict(vec.transform(texts))`
is. What the two files can show is checked: the vectorizer's output width against the
classifier's `n_features_in_` (when both are known), and that each file holds its half (not a
whole model, not a classifier where the vectorizer goes). What they cannot show is not: a
vectorizer refitted on other data to the same width, or a width-preserving step (a scaler) fitted
between them and saved nowhere, composes, converts and passes the parity gate, which compares the
artifact with this composition, not with what the team runs. The accuracy on labelled validation
texts is the check left (`accuracy_warning`: at or below the majority-class rate), and
`other_run_warning` flags, from MLflow, a vectorizer logged by another run than the classifier's.
`check_saved_together` refuses a classifier (or a pipeline of steps on numbers and a classifier)
given alone with a pointer to the option that adds its vectorizer. Used in the process that loads
the model files (isolated.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MaxAbsScaler, Normalizer, StandardScaler

from . import interchange as ix


class CompositionError(Exception):
    """The two files cannot be composed (not a vectorizer, widths differ): exit 3."""


class SavedApart(ix.Unsupported):
    """A classifier file without its vectorizer: exit 2, and the message names the option."""


def _takes_text(step: Any) -> bool:
    """Whether `step` reads raw text: a vectorizer, a ColumnTransformer (a DataFrame's text
    column), a FeatureUnion with one among its members, or a Pipeline starting with one (a
    FeatureUnion of selectors or scalers reads numbers)."""
    if isinstance(step, (CountVectorizer, HashingVectorizer, ColumnTransformer)):
        return True
    if isinstance(step, FeatureUnion):
        return any(_takes_text(t) for _, t in step.transformer_list if not isinstance(t, str))
    if isinstance(step, Pipeline):
        steps = ix._pipeline_steps(step)
        return bool(steps) and _takes_text(steps[0][1])
    return False


def _is_model(step: Any) -> bool:
    """Whether `step` is a whole model: a Pipeline ending with an estimator that predicts."""
    if not isinstance(step, Pipeline):
        return False
    steps = ix._pipeline_steps(step)
    return bool(steps) and (hasattr(steps[-1][1], "predict") or _is_model(steps[-1][1]))


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
                try:
                    width = int(np.sum(later.get_support()))
                except Exception:  # not fitted (NotFittedError): the interchange refuses the step by name
                    return None
            elif not isinstance(later, (TfidfTransformer, Normalizer, MaxAbsScaler, StandardScaler)):
                return None
        return width
    return None


def check_saved_together(model: Any, option: str) -> None:
    """Refuse a classifier alone (no vectorizer), or a Pipeline of steps on numbers ending with a
    classifier (`Pipeline(MaxAbsScaler, LogisticRegression)`), pointing at the option that adds
    the vectorizer."""
    if isinstance(model, Pipeline):
        steps = ix._pipeline_steps(model)
        if not steps or not _is_model(model):
            return  # the interchange names what is wrong
        name, first = steps[0]
        if _takes_text(first) or isinstance(first, str):
            return  # a whole model
        names = ", ".join(type(est).__name__ for _, est in steps)
        what, path, value = f"a pipeline of {names}", f"pipeline.{name}", type(first).__name__
        why = f" (its first step, {value}, takes numbers, not text)"
    elif hasattr(model, "classes_"):
        what, path, value, why = "a classifier alone", "pipeline", type(model).__name__, ""
    else:
        return
    width = getattr(model, "n_features_in_", None)
    expects = f" expecting {width} features" if width is not None else ""
    raise SavedApart(
        path,
        "estimator",
        value,
        f"this file holds {what}{expects}, without its vectorizer{why}; if the vectorizer was saved "
        f"apart, give it with {option}",
    )


def accuracy_warning(accuracy: float, labels: list, *, apart: bool) -> str | None:
    """A warning when the accuracy on labelled validation texts is at or below the majority-class
    rate (always answering the commonest label): no better than a constant, which is what a
    vectorizer refitted elsewhere or a step left out can make of a model without anything else
    showing it. None for fewer than two distinct labels (no rate to compare with)."""
    counts = Counter(labels)
    if len(counts) < 2:
        return None
    label, count = counts.most_common(1)[0]
    rate = count / len(labels)
    if accuracy > rate:
        return None
    hint = (
        "with a vectorizer saved apart, check that it is the one the classifier was fitted with and "
        "that no step between them (a scaler) was left out: only the width can be checked"
        if apart
        else "check the labels (--label-column) and that this is the model meant"
    )
    return (
        f"the validation accuracy {accuracy:.4f} on {len(labels)} labelled texts is at or below "
        f"the majority-class rate {rate:.4f} (always answering {label!r}); {hint}"
    )


def other_run_warning(vectorizer_source: str, run_id: str | None) -> str | None:
    """A warning when the vectorizer (`runs:/RUN_ID/PATH`) was logged by another run than the
    classifier's (`run_id`): the widths may agree while the vocabularies do not."""
    if not run_id or not vectorizer_source.startswith("runs:/"):
        return None
    vec_run = vectorizer_source[len("runs:/") :].split("/", 1)[0]
    if vec_run == run_id:
        return None
    return (
        f"the vectorizer {vectorizer_source} comes from run {vec_run}, the classifier from run "
        f"{run_id}: only the width can be checked, so a vectorizer refitted elsewhere exports and "
        "passes the parity gate; make sure it is the one the classifier was trained with (check "
        "the accuracy on labelled --validation texts)"
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
    if _takes_text(vectorizer) and _is_model(vectorizer):
        last = ix._pipeline_steps(vectorizer)[-1][1]
        raise CompositionError(
            f"{vectorizer_source} is a complete model (a pipeline from its vectorizer to "
            f"{type(last).__name__}), not a vectorizer: export that file on its own, or give the "
            f"vectorizer that {classifier_source} was fitted with"
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
