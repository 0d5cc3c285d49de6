"""The model file is loaded in a separate process that holds no key (SECURITY.md, defence in depth).

`export.py` never unpickles a model itself: `run(request)` starts a Python running this module with
a scrubbed environment (no `SKEDGE_*`, token, key or credential variable: only `PATH`, `HOME`,
`TMPDIR` and the locale) and no key path anywhere in its arguments or request, sends it the model
file's path (and a vectorizer's saved apart, composed there: compose.py) and the texts, and gets back JSON only: the interchange (with the accuracy and the
drift baseline), scikit-learn's outputs on the gate texts and the warnings. The child loads the
file through `safe_load` (the allow-list) unless `trusted`. Its refusals come back as the same
exceptions (`safe_load.ModelRefused`, `interchange.Unsupported`, ...); a crash is
`safe_load.LoadError` (`MODEL_UNREADABLE`) and the caller writes nothing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import compose
from . import interchange as ix
from . import safe_load
from ._cli import tool_command

#: The only environment variables the child sees.
ENV_KEPT = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT")


def child_argv() -> list:
    """The loader's command line: this copy of the package (`_cli.tool_command`), `-E` (PYTHONPATH
    and the other PYTHON* variables are not read), no key, no user path (the request has those)."""
    return tool_command("isolated", "-E", "-B")


class Reference:
    """scikit-learn's outputs for the gate texts, computed where the model was loaded: what
    `export.parity_gate` compares the artifact with (`ix.reference_outputs` without features)."""

    def __init__(self, texts: list, labels: list, decision: list, proba: list | None, calibrated: bool):
        self.calibrated = calibrated
        self.rows = {
            t: (labels[i], decision[i], None if proba is None else proba[i]) for i, t in enumerate(texts)
        }
        self.has_proba = proba is not None

    def outputs(self, texts: list) -> dict:
        rows = [self.rows[t] for t in texts]  # KeyError: a text the child was not asked about
        return {
            "labels": [r[0] for r in rows],
            "decision": np.asarray([r[1] for r in rows], dtype=np.float64).reshape(len(rows), -1),
            "proba": np.asarray([r[2] for r in rows], dtype=np.float64).reshape(len(rows), -1)
            if self.has_proba
            else None,
        }


def _floats(rows: Any) -> list:
    """Rows of float64 as JSON-safe lists (NaN and infinities spelled as strings)."""
    out = []
    for row in np.asarray(rows, dtype=np.float64).tolist():
        out.append([v if math.isfinite(v) else repr(v) for v in row])
    return out


def _unfloats(rows: list) -> list:
    return [[float(v) for v in row] for row in rows]


def run(request: dict) -> dict:
    """Load and convert in a child process; returns {"interchange", "reference": Reference,
    "warnings": [str]} or raises what the child raised."""
    env = {k: os.environ[k] for k in ENV_KEPT if k in os.environ}
    try:
        proc = subprocess.run(
            child_argv(),
            input=json.dumps(request).encode(),
            capture_output=True,
            env=env,
            check=False,
        )
    except OSError as err:
        raise safe_load.LoadError(f"cannot start the model loader: {err}") from None
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise safe_load.LoadError(
            f"the model loader stopped (exit {proc.returncode}) without an answer: {' | '.join(tail)}"
        ) from None
    if "error" in answer:
        raise _exception(answer["error"])
    ref = answer["reference"]
    return {
        "interchange": answer["interchange"],
        "reference": Reference(
            request["gate_texts"],
            ref["labels"],
            _unfloats(ref["decision"]),
            None if ref["proba"] is None else _unfloats(ref["proba"]),
            ref["calibrated"],
        ),
        "warnings": answer["warnings"],
    }


def _exception(error: dict) -> Exception:
    kind, message = error.get("kind"), str(error.get("message"))
    if kind in ("Unsupported", "SavedApart"):  # the child's message, word for word
        u = error["unsupported"]
        cls = compose.SavedApart if kind == "SavedApart" else ix.Unsupported
        e = cls.__new__(cls)
        Exception.__init__(e, message)
        e.step_path, e.parameter, e.value, e.reason = u["step_path"], u["parameter"], u["value"], u["reason"]
        return e
    if kind == "ModelRefused":
        e = safe_load.ModelRefused.__new__(safe_load.ModelRefused)
        Exception.__init__(e, message)
        e.names = error.get("names", [])
        return e
    if kind == "VersionMismatch":
        return safe_load.VersionMismatch(message)
    if kind == "CompositionError":
        return compose.CompositionError(message)
    if kind == "RuntimeError":
        return RuntimeError(message)
    return safe_load.LoadError(message)


def _load(path: str, request: dict) -> Any:
    if Path(path).suffix.lower() == ".skops" or (path == request["path"] and request.get("format") == "skops"):
        return safe_load.load_skops(path)
    return safe_load.load_model_file(path, trusted=bool(request.get("trusted")))


def _child(request: dict) -> dict:
    """In the child: load (and compose a vectorizer saved apart), convert, compute what the
    exporter needs from the estimator."""
    from . import baseline  # noqa: PLC0415

    if request.get("trusted"):  # a trusted file may name the caller's own modules
        sys.path.extend(p for p in request.get("sys_path", []) if p not in sys.path)
    model = _load(request["path"], request)
    vec = request.get("vectorizer")
    apart: list[str] = []
    if vec:
        model = compose.compose(
            _load(vec["path"], request), model, vectorizer_source=vec["source"],
            classifier_source=request["source"],
        )  # fmt: skip
        run_id = (request["metadata"].get("provenance") or {}).get("run_id")
        apart = [w for w in [compose.other_run_warning(vec["source"], run_id)] if w]
    else:
        compose.check_saved_together(model, request.get("vectorizer_option", "--vectorizer"))
    ovr = bool(request.get("ovr_proba"))
    # The interchange first: it refuses unsupported estimators before anything calls them.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ix.OvrProbaWarning)
        inter = ix.to_interchange(model, request["metadata"], ovr_proba=ovr, skedge=Path(request["skedge"]))
    messages = [str(w.message) for w in caught if issubclass(w.category, ix.OvrProbaWarning)] + apart
    texts, labels = request.get("texts") or [], request.get("labels") or []
    clf = ix.final_classifier(model)
    names = {str(c) for c in np.asarray(clf.classes_).tolist()}
    if texts and labels and set(labels) <= names:
        predicted = [str(p) for p in np.asarray(model.predict(texts)).tolist()]
        accuracy = float(np.mean([p == y for p, y in zip(predicted, labels)]))
        inter["metadata"]["metrics"][request.get("accuracy_key", "accuracy")] = accuracy
        low = compose.accuracy_warning(accuracy, labels, apart=bool(vec))
        if low:
            messages.append(low)
    elif texts and labels:
        # Labels of another spelling ("1.0" for 1, "pos" for "positive") would otherwise drop
        # the accuracy without a word; the gate itself does not need them.
        unknown = sorted(set(labels) - names)
        shown = ", ".join(repr(y) for y in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        classes = ", ".join(repr(c) for c in sorted(names)[:10])
        messages.append(
            f"no accuracy computed: the validation labels {shown} are not among the model's classes "
            f"({classes}); check --label-column, and that the labels are spelled as the model's classes"
        )
    drift = request.get("baseline") or {}
    small = baseline.drift_baseline(model, inter, drift.get("texts") or [], drift.get("source", ""))
    if small:
        messages.append(small)
    ref = ix.reference_outputs(model, request["gate_texts"], ovr_proba=ovr)
    return {
        "interchange": inter,
        "reference": {
            "labels": ref["labels"],
            "decision": _floats(ref["decision"]),
            "proba": None if ref["proba"] is None else _floats(ref["proba"]),
            "calibrated": type(clf).__name__ in ix.DECISION_IS_PROBA,
        },
        "warnings": messages,
    }


def main() -> int:
    try:
        answer = _child(json.loads(sys.stdin.buffer.read()))
    except ix.Unsupported as err:
        answer = {"error": {"kind": "SavedApart" if isinstance(err, compose.SavedApart) else "Unsupported",
            "message": str(err), "unsupported": {
            "step_path": err.step_path, "parameter": err.parameter,
            "value": err.value if isinstance(err.value, (str, int, float, bool, type(None))) else repr(err.value),
            "reason": err.reason}}}  # fmt: skip
    except safe_load.ModelRefused as err:
        answer = {"error": {"kind": "ModelRefused", "message": Exception.__str__(err), "names": err.names}}
    except safe_load.LoadError as err:
        answer = {"error": {"kind": type(err).__name__, "message": Exception.__str__(err)}}
    except compose.CompositionError as err:
        answer = {"error": {"kind": "CompositionError", "message": str(err)}}
    except RuntimeError as err:  # `skedge ln-table` failed
        answer = {"error": {"kind": "RuntimeError", "message": str(err)}}
    sys.stdout.write(json.dumps(answer, default=_plain))
    return 0


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as the Python values they hold (exact: float64 -> float)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")
