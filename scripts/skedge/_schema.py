"""The snapshot schema: a monitoring snapshot and an experiment snapshot (FORMAT.md section 4) as
strict pydantic models, the Rust `skedge::monitor::Snapshot::validate` and
`ExperimentSnapshot::validate` in Python.

Apart from `report.py` because it needs pydantic (the [report] extra): `report.py` imports it
guarded, so that `skedge-report --help` works on a bare install and a command that needs the schema
names the extra to install (`_cli.EXTRA_MISSING`). `report.py` re-exports every name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

SNAPSHOT_FORMAT = "skedge-monitor-snapshot"
SNAPSHOT_VERSION = 1
CONFIDENCE_BINS = 10
OOV_BINS = 10
LENGTH_BINS = 16
LATENCY_BINS = 16
MAX_CLASSES = 1024
#: Most UTF-8 bytes of all class labels together (the Rust `monitor::MAX_CLASS_BYTES`: a model with
#: more cannot be monitored, so no edge sends them).
MAX_CLASS_BYTES = 64 << 10
MAX_NAME_CHARS = 256
MAX_TEXTS = 64
MAX_TEXT_CHARS = 1024
#: Relative slack of a float sum against its bound (`count × max`): the edge adds in f64, each
#: addition rounding by at most 2^-53 of the partial sum, so 1e-6 covers a billion terms.
SUM_SLACK = 1e-6
U64_MAX = 2**64 - 1
#: Largest `latency.sum_ms` and `latency.max_ms` (ms, about 31,700 years; the Rust validator's
#: bound too): push adds a window's sums up, and two sums of 1.7e308 make inf, which left the
#: window without latency metrics.
MAX_LATENCY_MS = 1e15

#: Latest window time accepted (9999-12-31T23:59:59.999Z, the last instant a date can show).
MAX_TIME_MS = 253_402_300_799_999

U64 = Annotated[StrictInt, Field(ge=0, le=U64_MAX)]
TimeMs = Annotated[StrictInt, Field(ge=0, le=MAX_TIME_MS)]


def _utf8(text: str) -> str:
    """A lone surrogate (`"\\ud800"` is valid JSON) cannot be stored as UTF-8: refused here."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a lone surrogate is not text") from None
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _mlflow_name(text: str) -> str:
    """MLflow's registered-model name rules (mlflow.utils.validation._validate_model_name) and no
    backslash or control character, which break the run search's filter string."""
    if not text.strip():
        raise ValueError("a model name cannot be empty")
    if any(c in text for c in "/:\\") or _CONTROL.search(text):
        raise ValueError("a model name cannot hold '/', ':', '\\' or control characters")
    if text == "." or text.startswith(".."):
        raise ValueError("a model name cannot be '.' or start with '..'")
    return text


def _mlflow_version(text: str) -> str:
    return text and _mlflow_name(text)


Text = Annotated[StrictStr, AfterValidator(_utf8)]
Name = Annotated[StrictStr, Field(max_length=MAX_NAME_CHARS), AfterValidator(_utf8),
                 AfterValidator(_mlflow_name)]  # fmt: skip
Version = Annotated[StrictStr, Field(max_length=MAX_NAME_CHARS), AfterValidator(_utf8),
                    AfterValidator(_mlflow_version)]  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ModelRef(_Strict):
    name: Name
    version: Version  #: "" when the artifact has none
    sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]


class Window(_Strict):
    index: U64
    start_ms: TimeMs
    end_ms: TimeMs


class OovStats(_Strict):
    counts: Annotated[list[U64], Field(min_length=OOV_BINS, max_length=OOV_BINS)]
    no_features: U64
    oov_features: U64
    total_features: U64


class LatencyStats(_Strict):
    counts: Annotated[list[U64], Field(min_length=LATENCY_BINS, max_length=LATENCY_BINS)]
    sum_ms: Annotated[float, Field(ge=0, le=MAX_LATENCY_MS, allow_inf_nan=False)]
    max_ms: Annotated[float, Field(ge=0, le=MAX_LATENCY_MS, allow_inf_nan=False)]


class Stats(_Strict):
    count: U64
    label_counts: Annotated[list[U64], Field(max_length=MAX_CLASSES)]
    confidence: Annotated[list[U64], Field(min_length=CONFIDENCE_BINS, max_length=CONFIDENCE_BINS)] | None
    oov: OovStats | None
    length: Annotated[list[U64], Field(min_length=LENGTH_BINS, max_length=LENGTH_BINS)]
    latency: LatencyStats | None = None

    @model_validator(mode="after")
    def _sums(self) -> "Stats":
        def total(what: str, values: list, expected: int | None) -> None:
            s = sum(values)
            if s > U64_MAX:
                raise ValueError(f"{what} overflows")
            if expected is not None and s != expected:
                raise ValueError(f"{what} adds up to {s}, expected {expected}")

        total("label_counts", self.label_counts, self.count)
        if self.confidence is not None:
            total("confidence", self.confidence, self.count)
        if self.oov is not None:
            if self.oov.no_features > self.count:
                raise ValueError("oov.no_features exceeds count")
            total("oov.counts", self.oov.counts, self.count - self.oov.no_features)
            if self.oov.oov_features > self.oov.total_features:
                raise ValueError("oov.oov_features exceeds oov.total_features")
        total("length", self.length, self.count)
        if self.latency is not None:
            timed = sum(self.latency.counts)
            if timed > self.count:
                raise ValueError("latency.counts adds up to more than count")
            # each timed prediction took at most max_ms: a larger sum is no measurement (and a few
            # such sums add up to inf in a window's mean)
            if self.latency.sum_ms > timed * self.latency.max_ms * (1 + SUM_SLACK):
                raise ValueError("latency.sum_ms exceeds the timed count × latency.max_ms")
        return self


def _check_classes(classes: list) -> None:
    """Distinct labels (each is a histogram bin and a metric key) within the Rust monitor's budget."""
    if len(set(classes)) != len(classes):
        raise ValueError("classes must be distinct")
    size = sum(len(c.encode("utf-8")) for c in classes)
    if size > MAX_CLASS_BYTES:
        raise ValueError(f"classes hold {size} bytes of labels, more than {MAX_CLASS_BYTES}")


class Snapshot(_Strict):
    format: StrictStr
    version: StrictInt
    id: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]
    model: ModelRef
    window: Window
    sample_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    seen: U64
    dropped: U64
    classes: Annotated[list[Text], Field(min_length=1, max_length=MAX_CLASSES)]
    stats: Stats
    texts: Annotated[
        list[Annotated[Text, Field(max_length=MAX_TEXT_CHARS)]], Field(max_length=MAX_TEXTS)
    ]

    @model_validator(mode="after")
    def _consistent(self) -> "Snapshot":
        if self.format != SNAPSHOT_FORMAT or self.version != SNAPSHOT_VERSION:
            raise ValueError(
                f"expected format {SNAPSHOT_FORMAT} version {SNAPSHOT_VERSION}, "
                f"found {self.format!r} version {self.version}"
            )
        if self.window.end_ms < self.window.start_ms:
            raise ValueError("window.end_ms is before window.start_ms")
        if self.stats.count > self.seen:
            raise ValueError("stats.count exceeds seen")
        if len(self.stats.label_counts) != len(self.classes):
            raise ValueError(
                f"stats.label_counts has {len(self.stats.label_counts)} entries for "
                f"{len(self.classes)} classes"
            )
        _check_classes(self.classes)
        if len(self.texts) > self.stats.count:
            raise ValueError("more texts than sampled predictions")
        return self


EXPERIMENT_FORMAT = "skedge-experiment-snapshot"
EXPERIMENT_VERSION = 1

Matrix = Annotated[list[Annotated[list[U64], Field(max_length=MAX_CLASSES)]], Field(max_length=MAX_CLASSES)]
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


def _square(what: str, m: list, n: int) -> int:
    """The sum of a `n × n` matrix (ValueError naming `what` when it is not one)."""
    if len(m) != n or any(len(r) != n for r in m):
        raise ValueError(f"{what} must be {n} × {n}")
    total = sum(sum(r) for r in m)
    if total > U64_MAX:
        raise ValueError(f"{what} overflows")
    return total


class FeedbackStats(_Strict):
    count: U64
    correct: U64
    confusion: Matrix  #: [true][predicted]


class ArmWindow(_Strict):
    arm: Literal["champion", "challenger"]
    model: ModelRef
    served: U64
    stats: Stats
    feedback: FeedbackStats


class ShadowStats(_Strict):
    pairs: U64
    agree: U64
    confusion: Matrix  #: [champion][challenger]
    proba_pairs: U64
    sum_abs_dproba: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    max_abs_dproba: Unit


class ExperimentSnapshot(_Strict):
    """An `Experiment`'s closed window (FORMAT.md §4; the Rust `ExperimentSnapshot::validate`)."""

    format: StrictStr
    version: StrictInt
    id: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]
    mode: Literal["shadow", "canary"]
    sample_rate: Unit
    share: Unit
    window: Window
    seen: U64
    dropped: U64
    classes: Annotated[list[Text], Field(min_length=1, max_length=MAX_CLASSES)]
    arms: Annotated[list[ArmWindow], Field(min_length=2, max_length=2)]
    shadow: ShadowStats | None
    feedback_expired: U64
    feedback_unknown: U64
    feedback_duplicate: U64

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentSnapshot":
        if self.format != EXPERIMENT_FORMAT or self.version != EXPERIMENT_VERSION:
            raise ValueError(
                f"expected format {EXPERIMENT_FORMAT} version {EXPERIMENT_VERSION}, "
                f"found {self.format!r} version {self.version}"
            )
        if self.window.end_ms < self.window.start_ms:
            raise ValueError("window.end_ms is before window.start_ms")
        if [a.arm for a in self.arms] != ["champion", "challenger"]:
            raise ValueError("arms must be [champion, challenger]")
        n = len(self.classes)
        _check_classes(self.classes)
        for a in self.arms:
            if len(a.stats.label_counts) != n:
                raise ValueError(f"{a.arm}.stats.label_counts has {len(a.stats.label_counts)} entries for {n} classes")
            f = a.feedback
            if _square(f"{a.arm}.feedback.confusion", f.confusion, n) != f.count:
                raise ValueError(f"{a.arm}.feedback.confusion must add up to count")
            if sum(f.confusion[i][i] for i in range(n)) != f.correct:
                raise ValueError(f"{a.arm}.feedback.correct must equal the confusion matrix's diagonal")
        if sum(a.served for a in self.arms) != self.seen:
            raise ValueError("the arms' served counts must add up to seen")
        s = self.shadow
        if (self.mode == "shadow") != (s is not None):
            raise ValueError("shadow statistics are present exactly in shadow mode")
        if s is not None:
            if _square("shadow.confusion", s.confusion, n) != s.pairs:
                raise ValueError("shadow.confusion must add up to pairs")
            if sum(s.confusion[i][i] for i in range(n)) != s.agree:
                raise ValueError("shadow.agree must equal the confusion matrix's diagonal")
            if not s.proba_pairs <= s.pairs <= self.seen:
                raise ValueError("shadow: proba_pairs ≤ pairs ≤ seen is required")
            # each pair's |Δ proba| is at most max_abs_dproba (≤ 1): a larger sum makes a mean above it
            if s.sum_abs_dproba > s.proba_pairs * s.max_abs_dproba * (1 + SUM_SLACK):
                raise ValueError("shadow.sum_abs_dproba exceeds proba_pairs × max_abs_dproba")
        return self


def is_experiment(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("format") == EXPERIMENT_FORMAT


def validate_document(doc: dict) -> "Snapshot | ExperimentSnapshot":
    """A monitoring or an experiment snapshot, by its `format` (raises `ValidationError`)."""
    return (ExperimentSnapshot if is_experiment(doc) else Snapshot).model_validate(doc)
