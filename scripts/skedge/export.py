"""Export a fitted scikit-learn text pipeline to a skedge artifact, behind a parity gate.

    .venv/bin/python scripts/export.py --joblib model.joblib [--vectorizer vectorizer.joblib] \\
        --out model.skedge [--validation val.tsv|.csv|.parquet] [--baseline texts.csv] [--dry-run] ...
    .venv/bin/python scripts/export.py --model-uri models:/NAME@ALIAS [--tracking-uri URI] \\
        [--vectorizer-artifact preprocessing/vectorizer.joblib] --out model.skedge [--force] \\
        [--validation ...] [--dry-run]                    # from MLflow: registry.py
    .venv/bin/python scripts/export.py --restore models:/NAME/VERSION --out model.skedge

Steps, each its own function so other sources (MLflow) and options can be added:

1. `isolated.run`: the joblib / pickle file (and a vectorizer saved apart, `compose`) loaded
   (allow-listed names only, safe_load.py) and converted in a child process that holds no
   key, which returns the interchange and scikit-learn's outputs on the gate texts;
2. `build_interchange`: `interchange.to_interchange` with the metadata;
3. `pack`: `skedge pack INTERCHANGE.json -o ARTIFACT`;
4. `parity_gate`: `skedge predict ARTIFACT --format jsonl` on the validation texts plus the built-in
   adversarial set, compared with what scikit-learn computes: labels and decisions bit-identical,
   probabilities within 1e-12 (FORMAT.md, precision "exact");
5. `gate_and_write`: the artifact, `MODEL.manifest.json` and `MODEL.parity.json` reach `--out`'s
   folder together, only when the gate passed (and, from MLflow, the write-back succeeded).

The artifact's bytes depend only on the model files and the options: `created` is a time fixed
by the source (the registry version's creation time), never the export time, which goes to the
manifest. Exit codes: 0 exported; 1 parity mismatch (report printed, nothing written); 2
unsupported pipeline (message names the step, nothing written); 3 other failure (bad arguments,
unreadable model, skedge CLI missing or failing, an already published version with another model
body, or unsigned over signed, without --force, a `--publish` that failed: PUBLISH_FAILED,
PUBLISH_STALE, POINTER_INVALID, SIGNATURE_MISSING, BLOB_MISMATCH). A published version whose bytes
differ only in their seal (a signature added or replaced, FORMAT.md §3) is re-sealed without --force.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import _cli
from . import manifest as _manifest
from . import safe_load
from .adversarial import ADVERSARIAL, random_texts

try:
    from . import interchange as ix
    from . import isolated
    from .compose import CompositionError, SavedApart
except ModuleNotFoundError as _err:
    # scikit-learn and scipy (the [export] extra): `--help` needs neither, so `main` says which
    # extra to install once the arguments are read; any other use raises that error.
    _MISSING: ModuleNotFoundError | None = _cli.extra_missing(_err, "export")
    if _MISSING is None:
        raise
    ix = isolated = _cli.Absent(_MISSING)
else:
    _MISSING = None

DEFAULT_SKEDGE = _cli.program("skedge")
#: `interchange.PRECISIONS`, here for `--help` without scikit-learn.
PRECISIONS = ("exact", "compact")

PROBA_TOLERANCE = 1e-12
EXIT_OK, EXIT_MISMATCH, EXIT_UNSUPPORTED, EXIT_FAILURE = 0, 1, 2, 3


class ExportError(Exception):
    """A failure that is neither unsupported nor a parity mismatch (exit 3)."""


# ---------------------------------------------------------------------------------------------
# 1. load
# ---------------------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """The file's hex sha256 (`ExportError` when it cannot be read)."""
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        raise ExportError(f"cannot read {path}: {err}") from err
    return digest.hexdigest()


def load_model_file(path: Path, trusted: bool = False) -> tuple[Any, str]:
    """The estimator in a joblib, pickle or cloudpickle file, and the file's hex sha256, loaded in
    this process. Only the names on `safe_load.ALLOWED` are loaded (`safe_load.ModelRefused`
    otherwise: exit 2) unless `trusted` (`--trust-pickle`: a file you made yourself); either way
    the estimators must come from the installed scikit-learn (`safe_load.VersionMismatch`, exit 3).
    `export()` itself loads in a process without keys (`isolated.run`)."""
    sha = file_sha256(path)
    return safe_load.load_model_file(path, trusted=trusted), sha


#: `--validation` / `--baseline` file suffixes and their reader.
TABLE_FORMATS = {".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _table_rows(path: Path, kind: str) -> list[list]:
    """The rows of a TSV (no quote handling: a tab never occurs in a text) or a CSV (RFC 4180
    quoting), header first."""
    try:
        # utf-8-sig: a file saved by Excel or PowerShell starts with a byte order mark, which would
        # otherwise become part of the first column's name.
        with open(path, encoding="utf-8-sig", newline="") as f:
            if kind == "tsv":
                return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
            return list(csv.reader(f))
    except OSError as err:
        raise ExportError(f"cannot read {path}: {err}") from err
    except (csv.Error, UnicodeDecodeError) as err:
        raise ExportError(f"{path}: {err}") from err


def _column(header: list, name: str, path: Path, flag: str) -> int:
    if name not in header:
        raise ExportError(
            f"{path}: no column {name!r} in the header {header!r} (name the column with {flag})"
        )
    return header.index(name)


def read_validation(
    path: Path, text_column: str = "text", label_column: str | None = None
) -> tuple[list[str], list[str]]:
    """Texts and labels of a TSV, CSV or Parquet file with a header (format from the suffix).

    The texts are in `text_column`; the labels in `label_column` (default "label"), as strings.
    Without a label column the labels are [] (the texts still feed the parity gate, with no
    accuracy); a `label_column` named explicitly must exist.
    """
    path = Path(path)
    kind = TABLE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ExportError(
            f"{path}: unknown table format {path.suffix!r}; expected one of "
            f"{', '.join(sorted(TABLE_FORMATS))} (TSV, CSV or Parquet with a header)"
        )
    want_labels = label_column is not None
    label_column = label_column or "label"
    if kind == "parquet":
        return _read_parquet(path, text_column, label_column, want_labels)
    rows = _table_rows(path, kind)
    header = [h.strip() for h in rows[0]] if rows else []
    sep = "tab-separated" if kind == "tsv" else "comma-separated"
    if not header:
        raise ExportError(f"{path}: empty file, expected a header with a {text_column!r} column")
    ti = _column(header, text_column, path, "--text-column")
    li = header.index(label_column) if label_column in header else None
    if li is None and want_labels:
        _column(header, label_column, path, "--label-column")
    texts, labels = [], []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ExportError(f"{path}:{n}: expected {len(header)} {sep} columns, found {len(row)}")
        texts.append(row[ti])
        if li is not None:
            labels.append(row[li])
    return texts, labels


def _read_parquet(path: Path, text_column: str, label_column: str, want_labels: bool) -> tuple[list, list]:
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415 (a dependency of mlflow)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ExportError(f"{path}: reading Parquet needs pyarrow (scripts/setup.sh installs it)") from err
    try:
        names = pq.read_schema(path).names
    except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise ExportError(f"cannot read {path} as Parquet: {err}") from err
    _column(names, text_column, path, "--text-column")
    has_labels = label_column in names
    if want_labels and not has_labels:
        _column(names, label_column, path, "--label-column")
    table = pq.read_table(path, columns=[text_column] + ([label_column] if has_labels else []))
    texts = table.column(text_column).to_pylist()
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ExportError(
            f"{path}: row {bad + 1} of column {text_column!r} is {texts[bad]!r}, not a string"
        )
    labels = [str(y) for y in table.column(label_column).to_pylist()] if has_labels else []
    return texts, labels


def read_texts(path: Path, text_column: str = "text") -> list[str]:
    """The texts of a `--baseline` file (TSV, CSV or Parquet; labels, if any, are ignored)."""
    return read_validation(path, text_column)[0]


def trust_pickle_hint(err: Exception, joblib_path: Path, vectorizer: Path | None, trusted: bool) -> str:
    """The `--joblib` path's advice for a refused pickle: `--trust-pickle` loads a file you made
    yourself as is. Never for a registry model (`--trust-pickle` is refused there), a skops file
    (loaded through skops' own check either way), or when it was given already."""
    refused = Exception.__str__(err)
    pickles = [Path(f).name for f in (joblib_path, vectorizer) if f and Path(f).suffix.lower() != ".skops"]
    if trusted or not any(refused.startswith(f"{name} ") for name in pickles):
        return ""
    return " (if you made this file yourself, --trust-pickle loads it as is)"


def accuracy_line(accuracy: float, labels: list) -> str:
    """The accuracy on the labelled validation texts beside the majority-class rate (a model no
    better than it gets a warning too: `compose.accuracy_warning`)."""
    label, count = Counter(labels).most_common(1)[0]
    return (
        f"validation accuracy {accuracy:.4f} on {len(labels)} labelled texts "
        f"(majority class {label!r}: {count / len(labels):.4f})"
    )


def error_line(err: Exception) -> str:
    """`error: MESSAGE`, or the message alone when it already says `error[CODE]: ...` (a
    `safe_load.LoadError`, `_cli.CliNotFound`)."""
    text = str(err)
    return text if text.startswith("error[") else f"error: {text}"


def refusal(err: ix.Unsupported) -> str:
    """The message of a refused step, with what to do about it."""
    if isinstance(err, SavedApart):
        return f"error: {err}"
    table = 'the compatibility table in README ("Compatibility (scikit-learn)")'
    if err.parameter == "estimator" and isinstance(err.value, str):
        todo = f"refit without {err.value} (or with a supported step in its place), or see {table}"
    else:
        todo = f"refit with a supported {err.parameter} for step {err.step_path!r}, or see {table}"
    return f"error: {err}\n  what to do: {todo}"


# ---------------------------------------------------------------------------------------------
# 2. interchange, 3. pack
# ---------------------------------------------------------------------------------------------


def build_interchange(
    model: Any,
    *,
    source_sha256: str,
    name: str = "",
    version: str = "",
    ovr_proba: bool = False,
    skedge: Path = DEFAULT_SKEDGE,
    metrics: dict | None = None,
    provenance: dict | None = None,
) -> dict:
    """The interchange of `model` with export metadata (raises `interchange.Unsupported`)."""
    metadata = {
        "name": name,
        "version": version,
        "source_sha256": source_sha256,
        "provenance": provenance or {},
        "metrics": metrics or {},
    }
    return ix.to_interchange(model, metadata, ovr_proba=ovr_proba, skedge=skedge)


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    """Runs the skedge CLI (`cmd[0]`)."""
    try:
        return subprocess.run(cmd, capture_output=True, check=False, **kw)
    except FileNotFoundError as err:
        raise _cli.CliNotFound("skedge", Path(cmd[0])) from err
    except OSError as err:
        raise ExportError(f"cannot run {cmd[0]}: {err}") from err


@dataclass
class Keys:
    """`--sign-key` / `--encrypt-key` (files written by `skedge keygen`): the artifact is sealed
    at pack time, and the gate loads it with the public key and the decryption key, as production
    will."""

    sign_key: Path | None = None
    public_key: Path | None = None
    encrypt_key: Path | None = None

    def pack_args(self) -> list:
        args = ["--sign-key", str(self.sign_key)] if self.sign_key else []
        return args + (["--encrypt-key", str(self.encrypt_key)] if self.encrypt_key else [])

    def load_args(self) -> list:
        args = ["--public-key", str(self.public_key)] if self.public_key else []
        return args + (["--decryption-key", str(self.encrypt_key)] if self.encrypt_key else [])


KEYS = Keys()


@dataclass
class PrecisionMode:
    """`--precision` and `--max-label-disagreement`. `exact`: the gate demands bit-identical
    labels and decisions. `compact`: `skedge pack` rounds the weights to float16; the gate
    measures the agreement, refuses any changed label beyond `max_label_disagreement` percent of
    the gate texts (default none), and the agreement is stored in the artifact."""

    name: str = "exact"
    max_label_disagreement: float = 0.0


PRECISION = PrecisionMode()


def pack(interchange: dict, artifact: Path, skedge: Path) -> None:
    """`skedge pack` the interchange into `artifact` (via a temporary JSON file)."""
    with tempfile.TemporaryDirectory(prefix="skedge-export-") as tmp:
        path = Path(tmp) / "interchange.json"
        path.write_text(ix.dumps_interchange(interchange), encoding="utf-8")
        proc = _run([str(skedge), "pack", str(path), "-o", str(artifact), *KEYS.pack_args()])
    if proc.returncode != 0:
        raise ExportError(
            f"skedge pack failed ({proc.returncode}): {proc.stderr.decode('utf-8', 'replace').strip()}"
        )


# ---------------------------------------------------------------------------------------------
# 4. parity gate
# ---------------------------------------------------------------------------------------------


@dataclass
class Mismatch:
    index: int
    text: str
    field: str
    expected: Any
    got: Any

    def describe(self) -> str:
        text = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return (
            f"  text #{self.index} {json.dumps(text, ensure_ascii=True)}: {self.field}\n"
            f"    scikit-learn: {self.expected!r}\n"
            f"    skedge:       {self.got!r}"
        )


@dataclass
class ParityReport:
    checked: int = 0
    mismatches: list = field(default_factory=list)
    max_proba_error: float = 0.0
    precision: str = "exact"
    max_decision_error: float = 0.0
    max_label_disagreement: float = 0.0  # percent of `checked`, compact only

    @property
    def label_changes(self) -> int:
        return sum(m.field == "label" for m in self.mismatches)

    @property
    def allowed_label_changes(self) -> int:
        if self.precision == "exact":
            return 0
        return math.floor(self.checked * self.max_label_disagreement / 100 + 1e-9)

    @property
    def ok(self) -> bool:
        # Compact records only label mismatches (and errors); exact allows none at all.
        others = len(self.mismatches) - self.label_changes
        return self.checked > 0 and others == 0 and self.label_changes <= self.allowed_label_changes

    def agreement(self) -> dict:
        """`metadata.agreement` of a compact artifact (FORMAT.md)."""
        return {
            "texts": self.checked,
            "label_changes": self.label_changes,
            "max_abs_decision_diff": self.max_decision_error,
            "max_abs_proba_diff": self.max_proba_error,
        }

    def describe(self, limit: int = 10) -> str:
        if self.precision != "exact":
            agree = 100.0 * (1 - self.label_changes / self.checked) if self.checked else 0.0
            stats = (
                f"{self.checked} texts, labels agree on {agree:.2f} % ({self.label_changes} changed, "
                f"{self.allowed_label_changes} allowed), max |Δdecision| = {self.max_decision_error:.3g}, "
                f"max |Δproba| = {self.max_proba_error:.3g}"
            )
            if self.ok:
                return f"{self.precision} precision gate passed ({parity_runtime()}): {stats}"
            lines = [
                f"{self.precision} precision gate FAILED: {stats}; pass --max-label-disagreement "
                f"PERCENT to accept changed labels, or use --precision exact; first "
                f"{min(limit, len(self.mismatches))}:"
            ]
        elif self.ok:
            return (
                f"parity gate passed ({parity_runtime()}): {self.checked} texts, labels and "
                f"decisions bit-identical, max |Δproba| = {self.max_proba_error:.3g}"
            )
        else:
            lines = [
                f"parity gate FAILED: {len(self.mismatches)} mismatch(es) over {self.checked} texts; "
                f"first {min(limit, len(self.mismatches))}:"
            ]
        lines += [m.describe() for m in self.mismatches[:limit]]
        return "\n".join(lines)


def _bits_equal(a: float, b: Any) -> bool:
    if b is None:  # a non-finite value serialised as null
        return not math.isfinite(a)
    try:
        b = float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return np.float64(a).view(np.uint64) == np.float64(b).view(np.uint64)


def _close(a: float, b: Any, tol: float) -> tuple[bool, float]:
    try:
        b = float(b)
    except (TypeError, ValueError):
        return False, math.inf
    err = abs(a - b)
    return (err <= tol, err)


#: The npm package built in the checkout this package is the sources of (scripts/build.sh); None
#: for an installed package, whose gate runs the CLI.
PKG = _cli.CHECKOUT / "pkg" if _cli.CHECKOUT is not None else None


def parity_runtime() -> str:
    """Where the gate runs the artifact: the shipped WebAssembly package in Node when `pkg/` is
    built from the current sources (scripts/build.sh; its .wasm and node.mjs both there) and `node`
    exists, else the native CLI.
    `SKEDGE_PARITY_RUNTIME=native` forces the CLI. "Current": no source is newer than the build,
    or than the last time scripts/build.sh found pkg/ built from the same sources (it compares
    their content and touches its stamp, pkg/.build-inputs)."""
    if PKG is None or _cli.CHECKOUT is None:
        return "native CLI"
    wasm = PKG / "skedge_bg.wasm"
    if os.environ.get("SKEDGE_PARITY_RUNTIME") == "native" or not wasm.exists():
        return "native CLI"
    # scripts/predict_node.mjs imports node.mjs, which scripts/build.sh writes after the .wasm: a
    # pkg/ being rebuilt may have one without the other.
    if not (PKG / "node.mjs").exists():
        return "native CLI"
    if not shutil.which("node"):
        return "native CLI"
    src = _cli.CHECKOUT / "src"
    newest = max((p.stat().st_mtime for p in src.rglob("*.rs")), default=0.0)
    stamp = PKG / ".build-inputs"
    built = max(wasm.stat().st_mtime, stamp.stat().st_mtime if stamp.exists() else 0.0)
    return "wasm in Node (pkg/)" if built >= newest else "native CLI"


def artifact_input_column(artifact: Path, skedge: Path) -> str | None:
    """The DataFrame column the artifact's pipeline takes (`skedge inspect`'s input_column)."""
    proc = _run([str(skedge), "inspect", str(artifact)] + KEYS.load_args())
    if proc.returncode != 0:
        raise ExportError(f"skedge inspect failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return json.loads(proc.stdout).get("input_column")


def skedge_predict(artifact: Path, texts: list, skedge: Path) -> list:
    """The artifact's predictions on `texts`, one parsed JSON object per text, in the shape of
    `skedge predict ARTIFACT --format jsonl`, from the runtime `parity_runtime()` picks."""
    # A model fitted on a DataFrame column gets the records `{column: text}` it is documented to
    # take, so the gate runs that path too.
    key = artifact_input_column(artifact, skedge) or "text"
    with tempfile.TemporaryDirectory(prefix="skedge-parity-") as tmp:
        inp = Path(tmp) / "input.jsonl"
        with open(inp, "w", encoding="utf-8", newline="\n") as f:
            for t in texts:
                f.write(json.dumps({key: t}, ensure_ascii=True) + "\n")
        if parity_runtime().startswith("wasm"):
            node = Path(__file__).resolve().parents[1] / "predict_node.mjs"
            with open(inp, "rb") as stdin:
                proc = subprocess.run(
                    ["node", str(node), str(PKG), str(artifact), *KEYS.load_args()],
                    stdin=stdin,
                    capture_output=True,
                )
        else:
            proc = _run(
                [str(skedge), "predict", str(artifact), "--input", str(inp), "--format", "jsonl"]
                + KEYS.load_args()
            )
    if proc.returncode not in (0, 1) or not proc.stdout:
        raise ExportError(
            f"skedge predict failed ({proc.returncode}): {proc.stderr.decode('utf-8', 'replace').strip()}"
        )
    lines = proc.stdout.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(texts):
        raise ExportError(f"skedge predict printed {len(lines)} lines for {len(texts)} texts")
    out = []
    for n, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ExportError(f"skedge predict line {n + 1} is not JSON: {err}") from err
    return out


def parity_gate(
    model: Any,
    artifact: Path,
    texts: list,
    skedge: Path = DEFAULT_SKEDGE,
    *,
    ovr_proba: bool = False,
    tolerance: float = PROBA_TOLERANCE,
    precision: PrecisionMode | None = None,
) -> ParityReport:
    """Compare `skedge predict` on `artifact` with scikit-learn's outputs of `model` on `texts`
    (`model`: a fitted pipeline, or the `isolated.Reference` of one loaded in another process).

    Exact precision: labels and decisions must be bit-identical, except that a
    CalibratedClassifierCV's and VotingClassifier's decisions are their predict_proba (or hard
    votes) and are held to the probability tolerance; probabilities within `tolerance` (absolute). Compact precision: only labels are
    compared (see `ParityReport.ok`); decision and probability differences are measured.
    """
    precision = precision or PRECISION
    if isinstance(model, isolated.Reference):  # computed where the model file was loaded
        ref, calibrated = model.outputs(texts), model.calibrated
    else:
        ref = ix.reference_outputs(model, texts, ovr_proba=ovr_proba)
        calibrated = type(ix.final_classifier(model)).__name__ in ix.DECISION_IS_PROBA
    got = skedge_predict(artifact, texts, skedge)
    exact = precision.name == "exact"
    report = ParityReport(
        checked=len(texts),
        precision=precision.name,
        max_label_disagreement=precision.max_label_disagreement,
    )

    def miss(i, what, expected, value):
        report.mismatches.append(Mismatch(i, texts[i], what, expected, value))

    for i, g in enumerate(got):
        if "error" in g:
            miss(i, "error", "a prediction", g["error"])
            continue
        label = ref["labels"][i]
        if g.get("label") != label or type(g.get("label")) is not type(label):
            miss(i, "label", label, g.get("label"))
        dec = ref["decision"][i]
        gdec = g.get("decision")
        if not isinstance(gdec, list) or len(gdec) != len(dec):
            miss(i, "decision", dec.tolist(), gdec)
        else:
            for j, (a, b) in enumerate(zip(dec.tolist(), gdec)):
                if not exact:
                    _, err = _close(a, b, math.inf)
                    report.max_decision_error = max(report.max_decision_error, err)
                    continue
                if calibrated:
                    ok, err = _close(a, b, tolerance)
                else:
                    ok = _bits_equal(a, b)
                if not ok:
                    miss(i, f"decision[{j}]", a, b)
                    break
        gproba = g.get("proba")
        if ref["proba"] is None:
            if gproba is not None:
                miss(i, "proba", None, gproba)
        else:
            pro = ref["proba"][i].tolist()
            if not isinstance(gproba, list) or len(gproba) != len(pro):
                miss(i, "proba", pro, gproba)
            else:
                for j, (a, b) in enumerate(zip(pro, gproba)):
                    ok, err = _close(a, b, tolerance)
                    if math.isfinite(err):
                        report.max_proba_error = max(report.max_proba_error, err)
                    if not ok and exact:
                        miss(i, f"proba[{j}] (|Δ| = {err:.3g} > {tolerance:g})", a, b)
                        break
    return report


def record_agreement(inter: dict, report: ParityReport, artifact: Path, skedge: Path, gate: Callable) -> ParityReport:
    """A passed compact gate: repack `artifact` with the measured agreement in its metadata, and
    gate the final bytes again (`gate()`): they must predict exactly as the gated ones did."""
    if report.precision == "exact":
        return report
    inter["metadata"]["agreement"] = report.agreement()
    pack(inter, artifact, skedge)
    again = gate()
    if not again.ok or again.agreement() != report.agreement():
        raise ExportError("the repacked compact artifact does not predict as the gated one did")
    return again


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


class GateFailed(Exception):
    """The parity gate refused the artifact (exit 1); its report is already printed."""


def gate_and_write(
    model: Any,
    inter: dict,
    out: Path,
    gate_texts: list,
    sources: dict,
    *,
    skedge: Path,
    ovr_proba: bool,
    dry_run: bool,
    exported_at: str,
    log: Callable[[str], None],
    publish: Callable[[Any, dict], None] | None = None,
    request: dict | None = None,
) -> dict:
    """Pack, gate, write the parity report and the manifest, move the three files into place
    beside `out`, then `publish` (the MLflow write-back); returns the manifest (`request`: how
    the model was asked for, its `export` object).

    Nothing stays in `out`'s folder unless every step succeeded (a failed write-back takes the
    files back and puts back those they replaced), and nothing is written there at all with
    `dry_run`. Raises `GateFailed`, `ExportError`, `RuntimeError` (skedge inspect), `OSError`
    (the local files could not be written: then MLflow was not written either)."""
    inter["metadata"]["precision"] = PRECISION.name
    with _manifest.staged_outputs(out, keep=not dry_run) as st:
        pack(inter, st.artifact, skedge)

        def gate() -> ParityReport:
            return _manifest.parity_in_chunks(
                lambda chunk: parity_gate(model, st.artifact, chunk, skedge, ovr_proba=ovr_proba),
                gate_texts,
            )

        report = gate()
        log(report.describe())
        if not report.ok:
            raise GateFailed()
        report = record_agreement(inter, report, st.artifact, skedge, gate)
        summary = _manifest.parity_summary(report, runtime=parity_runtime())
        _manifest.write_json(st.report, _manifest.parity_report(report, summary=summary, sources=sources))
        man = _manifest.build_manifest(
            st.artifact, parity=summary, skedge=skedge, exported_at=exported_at, export=request
        )
        _manifest.write_json(st.manifest, man)
        if not dry_run:
            # Local files first: a local write that fails (full disk, a folder in the way) must not
            # leave MLflow tagged with an export that exists nowhere else.
            st.commit()
        if publish is not None:
            publish(st, man)
    return man


def log_written(out: Path, man: dict, dry_run: bool, log: Callable[[str], None]) -> None:
    if dry_run:
        log(f"dry run: nothing written ({man['size']} bytes, {man['integrity']} would go to {out})")
        return
    log(f"wrote {out} ({man['size']} bytes, {man['integrity']})")
    log(f"wrote {_manifest.manifest_path_for(out)} and {_manifest.report_path_for(out)}")


@dataclass
class GateInputs:
    """`--validation`, `--baseline` and their column options."""

    validation: Path | None = None
    baseline: Path | None = None
    text_column: str = "text"
    label_column: str | None = None

    def read(self) -> tuple[list, list]:
        if not self.validation:
            return [], []
        return read_validation(self.validation, self.text_column, self.label_column)

    def baseline_texts(self, fallback: list, fallback_source: str) -> tuple[list, str]:
        """The `--baseline` texts, else `fallback` (the validation texts or input example)."""
        if self.baseline:
            return read_texts(self.baseline, self.text_column), f"--baseline {self.baseline.name}"
        return fallback, fallback_source


def export(
    joblib_path: Path,
    out: Path,
    *,
    validation: Path | None = None,
    skedge: Path = DEFAULT_SKEDGE,
    ovr_proba: bool = False,
    name: str = "",
    version: str = "",
    trust_pickle: bool = False,
    interchange_hook: Callable[[dict], None] | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
    vectorizer: Path | None = None,
    inputs: GateInputs | None = None,
    dry_run: bool = False,
) -> int:
    """The whole export; returns the exit code. `interchange_hook` may edit the interchange
    before packing (tests use it to tamper with a coefficient)."""
    out = Path(out)
    inputs = inputs or GateInputs(validation=validation)
    try:
        if not dry_run:
            _manifest.check_destination(out)
        sha = file_sha256(joblib_path)
        # File names in the artifact, paths as given in the manifest: where the files sit does
        # not change the bytes.
        provenance = {"source": Path(joblib_path).name, "exporter": "scripts/export.py"}
        request = {"source": str(joblib_path)}
        child: dict = {"vectorizer_option": "--vectorizer"}
        if vectorizer is not None:
            provenance.update({"vectorizer": Path(vectorizer).name, "vectorizer_sha256": file_sha256(vectorizer)})
            request["vectorizer"] = str(vectorizer)
            child["vectorizer"] = {"path": str(Path(vectorizer).resolve()), "source": str(vectorizer)}
        texts, labels = inputs.read()
        source = f"--validation {inputs.validation.name}" if inputs.validation else ""
        drift, drift_source = inputs.baseline_texts(texts, source)
        extra = ADVERSARIAL + random_texts()
        gate_texts = texts + extra
        # Loaded, composed, converted and run by scikit-learn in a process without keys
        # (isolated.py): the interchange with its accuracy and drift baseline (FORMAT.md
        # §4), and the reference outputs of the gate texts.
        loaded = isolated.run({
            **child, "path": str(Path(joblib_path).resolve()), "source": str(joblib_path),
            "trusted": trust_pickle, "ovr_proba": ovr_proba, "sys_path": sys.path if trust_pickle else [],
            "skedge": str(_cli.locate(skedge) or skedge), "texts": texts, "labels": labels, "gate_texts": gate_texts,
            "baseline": {"texts": drift, "source": drift_source},
            "metadata": {"name": name or Path(joblib_path).stem, "version": version, "source_sha256": sha,
                         "provenance": provenance, "metrics": {}},
        })  # fmt: skip
        inter, model = loaded["interchange"], loaded["reference"]
        if "accuracy" in inter["metadata"]["metrics"]:
            log(accuracy_line(inter["metadata"]["metrics"]["accuracy"], labels))
        for message in loaded["warnings"]:
            log(f"WARNING: {message}")
        if interchange_hook is not None:
            interchange_hook(inter)
        sources = {"validation": len(texts)} if texts else {}
        sources["adversarial"] = len(extra)
        man = gate_and_write(
            model, inter, out, gate_texts, sources, skedge=skedge, ovr_proba=ovr_proba,
            dry_run=dry_run, exported_at=_manifest.now_rfc3339(), log=log, request=request,
        )  # fmt: skip
    except GateFailed:
        log(f"no artifact written; {out} left untouched")
        return EXIT_MISMATCH
    except (ix.Unsupported, safe_load.ModelRefused) as err:
        if isinstance(err, ix.Unsupported):
            log(refusal(err))
        else:
            log(f"{error_line(err)}{trust_pickle_hint(err, joblib_path, vectorizer, trust_pickle)}")
        return EXIT_UNSUPPORTED
    except (ExportError, CompositionError, safe_load.LoadError, RuntimeError) as err:  # RuntimeError: `skedge ln-table`
        if type(err) is RuntimeError and _cli.locate(skedge) is None:  # the loader ran no CLI: there is none
            err = _cli.CliNotFound("skedge", Path(skedge))
        log(error_line(err))
        return EXIT_FAILURE
    except OSError as err:
        log(f"error: {_manifest.os_error_message(err)}; nothing written")
        return EXIT_FAILURE
    log_written(out, man, dry_run, log)
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """Bad arguments exit 3, "other failure" (argparse's 2 means "unsupported pipeline" here)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILURE, f"{self.prog}: error: {message}\n")


def main(
    argv: list | None = None,
    *,
    interchange_hook: Callable[[dict], None] | None = None,
    force_advice: str = "pass --force",
) -> int:
    """The command; returns its exit code (bad arguments: `SystemExit(3)`). `force_advice`: how
    the caller replaces a published version's bytes, for the refusal's message (sync.py, which
    has no --force, names this command's)."""
    parser = _Parser(
        description="Export a fitted scikit-learn text pipeline to a skedge artifact, behind a parity gate.",
        epilog="Exit codes: 0 exported, 1 parity mismatch, 2 unsupported pipeline, 3 other failure "
               "(bad arguments too).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--joblib", type=Path, help="the fitted Pipeline (joblib or pickle), or the "
                        "classifier when --vectorizer gives its vectorizer")
    source.add_argument("--model-uri", metavar="URI",
                        help="an MLflow model: models:/NAME@ALIAS, models:/NAME/STAGE, models:/NAME/VERSION, "
                             "models:/NAME/latest, models:/m-<id> or runs:/RUN_ID/PATH; the artifact, manifest "
                             "and parity report are logged to its run under skedge/ and skedge.* tags set")
    source.add_argument("--restore", metavar="URI",
                        help="write the artifact published for this MLflow model to --out, byte-identical "
                             "(checked against its skedge.sha256 tag)")
    parser.add_argument("--out", type=Path, required=True, help="the artifact to write (MODEL.skedge); "
                        "MODEL.manifest.json and MODEL.parity.json are written beside it")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="with --joblib: load the file with plain joblib.load, running whatever "
                             "code it names; only for files you made yourself (default: only the "
                             "estimators skedge exports and their array types, SECURITY.md)")
    parser.add_argument("--vectorizer", type=Path, metavar="FILE",
                        help="with --joblib: the fitted vectorizer (or FeatureUnion, or Pipeline of "
                             "vectorizer + transformers) saved apart from the classifier")
    parser.add_argument("--vectorizer-artifact", metavar="PATH",
                        help="with --model-uri: the vectorizer saved apart, as a path in the model's run "
                             "artifacts (preprocessing/tfidf_vectorizer.joblib) or a runs:/RUN_ID/PATH URI")
    parser.add_argument("--validation", type=Path,
                        help="texts for the parity gate, with labels for the accuracy: TSV, CSV or Parquet "
                             "with a header (columns --text-column, --label-column); labels are optional")
    parser.add_argument("--text-column", default="text", metavar="NAME",
                        help="the texts' column in --validation and --baseline (default: text)")
    parser.add_argument("--label-column", metavar="NAME",
                        help="the labels' column in --validation (default: label, if present)")
    parser.add_argument("--baseline", type=Path, metavar="FILE",
                        help="texts like production's (TSV, CSV or Parquet) for the monitoring drift "
                             "baseline (default: the --validation texts, else the logged input example)")
    parser.add_argument("--skedge", type=Path, default=DEFAULT_SKEDGE,
                        help="the skedge CLI (default: $SKEDGE_CLI, else target/release/skedge of the "
                             "checkout, else skedge on PATH)")
    parser.add_argument("--ovr-proba", action="store_true",
                        help="for a LogisticRegression trained one-vs-rest (old pickle): export OvR "
                             "probabilities, as older scikit-learn versions returned, instead of softmax")
    parser.add_argument("--name", default="", help="model name (default: the file's stem)")
    parser.add_argument("--version", default="", help="model version, e.g. a registry version")
    parser.add_argument("--tracking-uri",
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the embedded "
                             "sqlite store .work/mlflow/mlflow.db)")
    parser.add_argument("--dry-run", action="store_true",
                        help="export and gate, but write nothing: no local file, nothing to MLflow; "
                             "with --restore: download and check the artifact, write nothing")
    parser.add_argument("--force", action="store_true",
                        help="with --model-uri: replace an artifact already published for this model "
                             "version whose bytes differ (changes what --restore returns); not needed "
                             "when only the seal differs (a signature added or replaced: re-sealed)")
    parser.add_argument("--sign-key", type=Path,
                        help="sign the artifact with this Ed25519 secret key (skedge keygen NAME)")
    parser.add_argument("--public-key", type=Path,
                        help="the matching public key for the gate (default: the --sign-key file with .pub)")
    parser.add_argument("--encrypt-key", type=Path,
                        help="encrypt the body with this key (skedge keygen NAME --encryption)")
    parser.add_argument("--precision", choices=PRECISIONS, default="exact",
                        help="exact (default): bit-identical to scikit-learn; compact: float16 weights, "
                             "about 40 %% smaller, agreement measured and stored (FORMAT.md)")
    parser.add_argument("--max-label-disagreement", type=float, default=0.0, metavar="PERCENT",
                        help="with --precision compact: accept up to this percentage of gate texts "
                             "whose label differs from scikit-learn's (default 0: refuse any)")
    add_publish_arguments(parser)
    args = parser.parse_args(argv)
    if _MISSING is not None:  # from MLflow, the extra that also brings MLflow
        raise _cli.ExtraMissing(_MISSING.name, "mlflow") if args.model_uri or args.restore else _MISSING
    if args.max_label_disagreement and args.precision == "exact":
        parser.error("--max-label-disagreement needs --precision compact: exact never changes a label")
    if not 0 <= args.max_label_disagreement <= 100:
        parser.error("--max-label-disagreement is a percentage between 0 and 100")
    if args.vectorizer and not args.joblib:
        parser.error("--vectorizer goes with --joblib (from MLflow: --vectorizer-artifact)")
    if args.vectorizer_artifact and not args.model_uri:
        parser.error("--vectorizer-artifact goes with --model-uri (for a file: --vectorizer)")
    if args.force and not args.model_uri:
        parser.error("--force goes with --model-uri (it replaces what the registry publishes)")
    PRECISION.name, PRECISION.max_label_disagreement = args.precision, args.max_label_disagreement
    KEYS.sign_key, KEYS.encrypt_key = args.sign_key, args.encrypt_key
    KEYS.public_key = args.public_key or (args.sign_key.with_suffix(".pub") if args.sign_key else None)
    if KEYS.public_key and not KEYS.public_key.exists():
        print(f"export: public key {KEYS.public_key} not found (give --public-key)", file=sys.stderr)
        return EXIT_FAILURE
    if args.trust_pickle and not args.joblib:
        parser.error("--trust-pickle applies to --joblib files only: a registry writer is not trusted")
    check_publish_arguments(parser, args)
    inputs = GateInputs(args.validation, args.baseline, args.text_column, args.label_column)
    # Found once (a bare name on PATH, as the isolated loader must be given it); one that is not is
    # `CLI_NOT_FOUND` where it is first run, so that an unsupported pipeline is still named first.
    args.skedge = _cli.locate(args.skedge) or args.skedge
    rc = publish_before(args)
    if rc != EXIT_OK:
        return rc
    if args.model_uri or args.restore:
        from . import registry  # MLflow is imported only on this path

        if args.restore:
            return registry.restore_main(args.restore, args.out, args.tracking_uri, dry_run=args.dry_run)
        rc = registry.export_model_uri(
            sys.modules[__name__],
            args.model_uri,
            args.out,
            tracking_uri=args.tracking_uri,
            skedge=args.skedge,
            ovr_proba=args.ovr_proba,
            dry_run=args.dry_run,
            interchange_hook=interchange_hook,
            vectorizer_artifact=args.vectorizer_artifact,
            inputs=inputs,
            force=args.force,
            force_advice=force_advice,
        )
        return publish_after(args, rc)
    rc = export(
        args.joblib,
        args.out,
        skedge=args.skedge,
        ovr_proba=args.ovr_proba,
        name=args.name,
        version=args.version,
        trust_pickle=args.trust_pickle,
        interchange_hook=interchange_hook,
        vectorizer=args.vectorizer,
        inputs=inputs,
        dry_run=args.dry_run,
    )
    return publish_after(args, rc)


def add_publish_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--publish", metavar="DEST",
                        help="after a successful export, publish the artifact content-addressed to DEST "
                             "(a directory or s3://BUCKET/PREFIX) and move the alias's pointer to it "
                             "(FORMAT.md §5); signed with --sign-key when given")
    parser.add_argument("--publish-alias", metavar="ALIAS",
                        help="with --publish: the pointer's alias (default: the @ALIAS of --model-uri)")
    parser.add_argument("--s3-endpoint-url", metavar="URL",
                        help="with an s3:// --publish: the S3-compatible endpoint (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--allow-unsigned", action="store_true",
                        help="with --publish and no --sign-key: replace a signed pointer with an unsigned one "
                             "(default: refused, SIGNATURE_MISSING)")


def check_publish_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The "with --publish" flags, and `--publish`'s alias, checked before any work (usage errors)."""
    for flag, given in (("--publish-alias", args.publish_alias), ("--s3-endpoint-url", args.s3_endpoint_url),
                        ("--allow-unsigned", args.allow_unsigned)):
        if given and not args.publish:
            parser.error(f"{flag} goes with --publish")
    if not args.publish:
        return
    if args.restore:
        parser.error("--publish goes with --joblib or --model-uri (--restore only writes --out)")
    parsed = None
    if args.model_uri:
        from .registry import RegistryError, parse_model_uri  # noqa: PLC0415

        try:
            parsed = parse_model_uri(args.model_uri)
        except RegistryError:
            return  # a malformed URI: the export says so, with its exit code
        if parsed.kind in ("stage", "latest"):
            # publish.check_source refuses them too; here before the export's work
            parser.error(f"--publish with {args.model_uri}: a stage or 'latest' can move during the export and "
                         f"is not checked again; publish models:/{parsed.name}@ALIAS, or the version itself "
                         f"(models:/{parsed.name}/VERSION) with --publish-alias")
    if args.publish_alias or (parsed is not None and parsed.alias):
        return
    parser.error("--publish needs --publish-alias ALIAS (or a models:/NAME@ALIAS --model-uri): "
                 "the pointer it moves is DEST/pointers/<model>/<ALIAS>.json")


def _publish_target(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(model, alias) of the pointer `--publish` will move, when known before the export: the
    registered model of a models:/NAME… URI, else --name, else the joblib file's stem (as the
    manifest will say); None for a runs:/ or models:/m-<id> URI, known only from its manifest."""
    uri_name = uri_alias = None
    if args.model_uri:
        from .registry import parse_model_uri  # noqa: PLC0415

        parsed = parse_model_uri(args.model_uri)
        uri_name, uri_alias = parsed.name, parsed.alias
    model = args.name or uri_name or (Path(args.joblib).stem if args.joblib else None)
    return model, args.publish_alias or uri_alias


def _ledger(args: argparse.Namespace, model: str):
    """The high-water mark `sync.py` keeps in MLflow for the destination (`sync.MlflowLedger`),
    when the pointer is a registered model's (a models:/NAME@ALIAS or /VERSION export, not
    renamed): an export's publish raises it as sync's does."""
    if not args.model_uri:
        return None
    from . import registry, sync  # noqa: PLC0415

    parsed = registry.parse_model_uri(args.model_uri)
    if parsed.kind not in ("alias", "version") or parsed.name != model:
        return None
    return sync.MlflowLedger(registry.client(registry.resolve_tracking_uri(args.tracking_uri)), args.publish)


def publish_before(args: argparse.Namespace) -> int:
    """`--publish`: read the pointer before the export, so that a pointer moved by anyone during
    the export (seconds) makes this publish PUBLISH_STALE instead of overwritten; an unreachable
    destination fails here, before the export's work."""
    args.publish_state = None
    if not args.publish or args.dry_run or args.restore:
        return EXIT_OK
    from . import publish  # noqa: PLC0415

    try:
        model, alias = _publish_target(args)
        if model and alias:
            store = publish.open_store(args.publish, args.s3_endpoint_url)
            args.publish_state = publish.read_state(store, model, alias, skedge=args.skedge,
                                                    public_key=publish.public_key_of(args.sign_key),
                                                    ledger=_ledger(args, model))
    except publish.PublishError as err:
        print(f"export: error[{err.code}]: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # a malformed --model-uri: the export says it again, with its exit code
        print(f"export: {err}", file=sys.stderr)
    return EXIT_OK


def _alias_moved(args: argparse.Namespace, man: dict) -> str | None:
    """With models:/NAME@ALIAS: the version the alias names now, when it is not the exported one."""
    from . import registry  # noqa: PLC0415

    parsed = registry.parse_model_uri(args.model_uri)
    uri = registry.resolve_tracking_uri(args.tracking_uri)
    now = str(registry.client(uri).get_model_version_by_alias(parsed.name, parsed.alias).version)
    exported = str((man.get("provenance") or {}).get("version") or man.get("version", ""))
    return now if now != exported else None


def publish_after(args: argparse.Namespace, rc: int) -> int:
    """`--publish`: nothing when the export failed or with --dry-run."""
    if not args.publish or rc != EXIT_OK or args.dry_run:
        return rc
    from . import publish

    man = json.loads(_manifest.manifest_path_for(args.out).read_text(encoding="utf-8"))
    alias = args.publish_alias or (man.get("export") or {}).get("alias")
    if not alias:
        print("export: --publish needs --publish-alias (or a models:/NAME@ALIAS URI)", file=sys.stderr)
        return EXIT_FAILURE
    try:
        if args.model_uri and (man.get("export") or {}).get("alias"):
            moved = _alias_moved(args, man)
            if moved:
                raise publish.StalePublish(f"{args.model_uri} moved to version {moved} during the export: not "
                                           "published (publish that version, or run sync.py reconcile)")
        state = getattr(args, "publish_state", None)
        model = publish.manifest_fields(man, alias=alias, model=args.name or None)["model"]
        if state is not None and (state.model, state.alias) != (model, alias):
            state = None  # not the pointer predicted before the export: read it now
        done = publish.publish(args.out, man, args.publish, alias=alias, model=args.name or None,
                               skedge=args.skedge, sign_key=args.sign_key, endpoint_url=args.s3_endpoint_url,
                               state=state, allow_unsigned=args.allow_unsigned,
                               ledger=None if state is not None else _ledger(args, model))
    except publish.PublishError as err:
        print(f"export: error[{err.code}]: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # MLflow failing while the alias is checked
        print(f"export: error[PUBLISH_FAILED]: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    print(done.describe(args.publish), file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(_cli.run("export", main))
