"""The shapes of what :class:`skedge.Model` returns, for type checkers and readers."""

from __future__ import annotations

from typing import Any, TypedDict, Union

Label = Union[int, str]


class Prediction(TypedDict):
    """``Model.predict``: the CLI's JSON line (``skedge predict``) as a dict."""

    label: Label
    #: scikit-learn's ``decision_function`` row (one value for a binary linear model); naive Bayes:
    #: the joint log likelihood; calibrated models: the probabilities.
    decision: list[float]
    #: ``predict_proba``, or None when the estimator has none.
    proba: list[float] | None


class BatchPrediction(TypedDict):
    """``Model.predict_batch``: the keys of :class:`Prediction`, stacked by row."""

    label: list[Label]
    #: float64, shape (n, width).
    decision: Any
    #: float64, shape (n, n_classes), or None.
    proba: Any


class Feature(TypedDict):
    """One feature of an explanation and what it did to the decision."""

    term: str
    terms: list[str]
    column: int
    block: int
    value: float
    weights: list[float]
    contributions: list[float]
    #: ``(start, end)`` indices into the text: ``text[start:end]`` is where it was found.
    spans: list[tuple[int, int]]


class Explanation(Prediction):
    """``Model.explain``: the prediction, the decision row ranked by, the top features."""

    row: int
    features: list[Feature]


class Agreement(TypedDict):
    texts: int
    label_changes: int
    max_abs_decision_diff: float
    max_abs_proba_diff: float


class Info(TypedDict):
    """``Model.info``: the artifact's metadata (the npm package's ``info()`` in snake case, less its
    ``integrity``). ``skedge inspect`` prints these keys too, less ``max_text_bytes`` and plus the
    envelope's: ``signed``, ``signature_prehash``, ``signature_verified``, ``encrypted``, ``checksum``."""

    name: str
    version: str
    classes: list[Label]
    estimator: str
    n_features: int
    sha256: str
    bytes: int
    format_version: int
    #: The DataFrame column of a ColumnTransformer pipeline (records are ``{column: text}``), else None.
    input_column: str | None
    skedge_version: str
    sklearn_version: str
    python_version: str
    numpy_version: str
    unicode_version: str
    source_sha256: str
    created: str
    precision: str
    agreement: Agreement | None
    metrics: dict[str, float]
    provenance: dict[str, str]
    max_text_bytes: int
