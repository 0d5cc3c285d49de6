"""Export a fitted scikit-learn text pipeline to a skedge artifact, behind a parity gate.

    .venv/bin/python scripts/export.py --joblib model.joblib --out model.skedge \\
        [--validation val.tsv] [--skedge target/release/skedge] [--ovr-proba] [--name N] [--version V]
    .venv/bin/python scripts/export.py --model-uri models:/NAME@ALIAS [--tracking-uri URI] \\
        --out model.skedge [--validation val.tsv] [--dry-run]     # from MLflow: scripts/registry.py
    .venv/bin/python scripts/export.py --restore models:/NAME/VERSION --out model.skedge

Steps, each its own function so other sources (MLflow) and options can be added:

1. `isolated.run`: the joblib / pickle file loaded (allow-listed names only, scripts/safe_load.py)
   and converted in a child process that holds no key, which returns the interchange and
   scikit-learn's outputs on the gate texts;
2. `build_interchange`: `interchange.to_interchange` with the metadata;
3. `pack`: `skedge pack INTERCHANGE.json -o ARTIFACT`;
4. `parity_gate`: `skedge predict ARTIFACT --format jsonl` on the validation texts plus the built-in
   adversarial set, compared with what scikit-learn computes: labels and decisions bit-identical,
   probabilities within 1e-12 (FORMAT.md, precision "exact").

The artifact only reaches `--out` when the gate passes. Exit codes: 0 exported; 1 parity mismatch
(report printed, nothing written); 2 unsupported pipeline (message names the step, nothing
written); 3 other failure (unreadable model, skedge CLI missing or failing).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import interchange as ix  # noqa: E402
import isolated  # noqa: E402
import safe_load  # noqa: E402
from adversarial import ADVERSARIAL, random_texts  # noqa: E402

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


def read_validation(path: Path) -> tuple[list[str], list[str]]:
    """Texts and labels of a `text<TAB>label` TSV with header, read without quote handling."""
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:2]] != ["text", "label"]:
            raise ExportError(f"{path}: expected a header 'text<TAB>label', found {header!r}")
        for n, row in enumerate(rows, start=2):
            if len(row) != 2:
                raise ExportError(f"{path}:{n}: expected 2 tab-separated columns, found {len(row)}")
            texts.append(row[0])
            labels.append(row[1])
    return texts, labels


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
    skedge: Path = ix.DEFAULT_SKEDGE,
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
    try:
        return subprocess.run(cmd, capture_output=True, check=False, **kw)
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


PKG = Path(__file__).resolve().parent.parent / "pkg"


def parity_runtime() -> str:
    """Where the gate runs the artifact: the shipped WebAssembly package in Node when `pkg/` is
    built from the current sources (scripts/build.sh) and `node` exists, else the native CLI.
    `SKEDGE_PARITY_RUNTIME=native` forces the CLI."""
    wasm = PKG / "skedge_bg.wasm"
    if os.environ.get("SKEDGE_PARITY_RUNTIME") == "native" or not wasm.exists():
        return "native CLI"
    if not shutil.which("node"):
        return "native CLI"
    src = Path(__file__).resolve().parent.parent / "src"
    newest = max((p.stat().st_mtime for p in src.rglob("*.rs")), default=0.0)
    return "wasm in Node (pkg/)" if wasm.stat().st_mtime >= newest else "native CLI"


def skedge_predict(artifact: Path, texts: list, skedge: Path) -> list:
    """The artifact's predictions on `texts`, one parsed JSON object per text, in the shape of
    `skedge predict ARTIFACT --format jsonl`, from the runtime `parity_runtime()` picks."""
    with tempfile.TemporaryDirectory(prefix="skedge-parity-") as tmp:
        inp = Path(tmp) / "input.jsonl"
        with open(inp, "w", encoding="utf-8", newline="\n") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=True) + "\n")
        if parity_runtime().startswith("wasm"):
            node = Path(__file__).resolve().parent / "predict_node.mjs"
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
    skedge: Path = ix.DEFAULT_SKEDGE,
    *,
    ovr_proba: bool = False,
    tolerance: float = PROBA_TOLERANCE,
    precision: PrecisionMode | None = None,
) -> ParityReport:
    """Compare `skedge predict` on `artifact` with scikit-learn's outputs of `model` on `texts`
    (`model`: a fitted pipeline, or the `isolated.Reference` of one loaded in another process).

    Exact precision: labels and decisions must be bit-identical, except that a
    CalibratedClassifierCV's decision is its predict_proba and is held to the probability
    tolerance; probabilities within `tolerance` (absolute). Compact precision: only labels are
    compared (see `ParityReport.ok`); decision and probability differences are measured.
    """
    precision = precision or PRECISION
    if isinstance(model, isolated.Reference):  # computed where the model file was loaded
        ref, calibrated = model.outputs(texts), model.calibrated
    else:
        ref = ix.reference_outputs(model, texts, ovr_proba=ovr_proba)
        calibrated = type(ix.final_classifier(model)).__name__ == "CalibratedClassifierCV"
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


def export(
    joblib_path: Path,
    out: Path,
    *,
    validation: Path | None = None,
    skedge: Path = ix.DEFAULT_SKEDGE,
    ovr_proba: bool = False,
    name: str = "",
    version: str = "",
    trust_pickle: bool = False,
    interchange_hook: Callable[[dict], None] | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> int:
    """The whole export; returns the exit code. `interchange_hook` may edit the interchange
    before packing (tests use it to tamper with a coefficient)."""
    out = Path(out)
    try:
        sha = file_sha256(joblib_path)
        texts, labels = read_validation(validation) if validation else ([], [])
        gate_texts = texts + ADVERSARIAL + random_texts()
        # Loaded, converted and run by scikit-learn in a process without keys (scripts/isolated.py):
        # the interchange with its accuracy and drift baseline (FORMAT.md §4), and the reference
        # outputs of the gate texts.
        loaded = isolated.run({
            "path": str(Path(joblib_path).resolve()), "trusted": trust_pickle, "ovr_proba": ovr_proba,
            "sys_path": sys.path if trust_pickle else [],
            "skedge": str(Path(skedge).resolve()), "texts": texts, "labels": labels, "gate_texts": gate_texts,
            "metadata": {"name": name or Path(joblib_path).stem, "version": version, "source_sha256": sha,
                         "provenance": {"source": str(joblib_path), "exporter": "scripts/export.py"},
                         "metrics": {}},
        })  # fmt: skip
        inter, model = loaded["interchange"], loaded["reference"]
        for message in loaded["warnings"]:
            log(f"WARNING: {message}")
        if interchange_hook is not None:
            interchange_hook(inter)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            inter["metadata"]["precision"] = PRECISION.name
            pack(inter, tmp, skedge)

            def gate() -> ParityReport:
                return parity_gate(model, tmp, gate_texts, skedge, ovr_proba=ovr_proba)

            report = gate()
            log(report.describe())
            if not report.ok:
                log(f"no artifact written; {out} left untouched")
                return EXIT_MISMATCH
            record_agreement(inter, report, tmp, skedge, gate)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    except (ix.Unsupported, safe_load.ModelRefused) as err:
        log(f"error: {err}")
        return EXIT_UNSUPPORTED
    except (ExportError, safe_load.LoadError, RuntimeError) as err:  # RuntimeError: `skedge ln-table`
        log(f"error: {err}")
        return EXIT_FAILURE
    log(f"wrote {out} ({out.stat().st_size} bytes)")
    return EXIT_OK


def main(argv: list | None = None, *, interchange_hook: Callable[[dict], None] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Export a fitted scikit-learn text pipeline to a skedge artifact, behind a parity gate.",
        epilog="Exit codes: 0 exported, 1 parity mismatch, 2 unsupported pipeline, 3 other failure.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--joblib", type=Path, help="the fitted Pipeline (joblib or pickle)")
    source.add_argument("--model-uri", metavar="URI",
                        help="an MLflow model: models:/NAME@ALIAS, models:/NAME/STAGE, models:/NAME/VERSION, "
                             "models:/NAME/latest, models:/m-<id> or runs:/RUN_ID/PATH; the artifact, manifest "
                             "and parity report are logged to its run under skedge/ and skedge.* tags set")
    source.add_argument("--restore", metavar="URI",
                        help="write the artifact published for this MLflow model to --out, byte-identical "
                             "(checked against its skedge.sha256 tag)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="with --joblib: load the file with plain joblib.load, running whatever "
                             "code it names; only for files you made yourself (default: only the "
                             "estimators skedge exports and their array types, SECURITY.md)")
    parser.add_argument("--out", type=Path, required=True, help="the artifact to write (MODEL.skedge)")
    parser.add_argument("--validation", type=Path,
                        help="TSV 'text<TAB>label' with header: texts for the parity gate and accuracy")
    parser.add_argument("--skedge", type=Path, default=ix.DEFAULT_SKEDGE,
                        help="the skedge CLI (default target/release/skedge)")
    parser.add_argument("--ovr-proba", action="store_true",
                        help="for a LogisticRegression trained one-vs-rest (old pickle): export OvR "
                             "probabilities, as older scikit-learn versions returned, instead of softmax")
    parser.add_argument("--name", default="", help="model name (default: the file's stem)")
    parser.add_argument("--version", default="", help="model version, e.g. a registry version")
    parser.add_argument("--tracking-uri",
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the embedded "
                             "sqlite store .work/mlflow/mlflow.db)")
    parser.add_argument("--dry-run", action="store_true",
                        help="with --model-uri: export and gate, but write nothing to MLflow")
    parser.add_argument("--sign-key", type=Path,
                        help="sign the artifact with this Ed25519 secret key (skedge keygen NAME)")
    parser.add_argument("--public-key", type=Path,
                        help="the matching public key for the gate (default: the --sign-key file with .pub)")
    parser.add_argument("--encrypt-key", type=Path,
                        help="encrypt the body with this key (skedge keygen NAME --encryption)")
    parser.add_argument("--precision", choices=ix.PRECISIONS, default="exact",
                        help="exact (default): bit-identical to scikit-learn; compact: float16 weights, "
                             "about 40 %% smaller, agreement measured and stored (FORMAT.md)")
    parser.add_argument("--max-label-disagreement", type=float, default=0.0, metavar="PERCENT",
                        help="with --precision compact: accept up to this percentage of gate texts "
                             "whose label differs from scikit-learn's (default 0: refuse any)")
    args = parser.parse_args(argv)
    if args.max_label_disagreement and args.precision == "exact":
        parser.error("--max-label-disagreement needs --precision compact: exact never changes a label")
    if not 0 <= args.max_label_disagreement <= 100:
        parser.error("--max-label-disagreement is a percentage between 0 and 100")
    PRECISION.name, PRECISION.max_label_disagreement = args.precision, args.max_label_disagreement
    KEYS.sign_key, KEYS.encrypt_key = args.sign_key, args.encrypt_key
    KEYS.public_key = args.public_key or (args.sign_key.with_suffix(".pub") if args.sign_key else None)
    if KEYS.public_key and not KEYS.public_key.exists():
        print(f"export: public key {KEYS.public_key} not found (give --public-key)", file=sys.stderr)
        return EXIT_FAILURE
    if args.trust_pickle and not args.joblib:
        parser.error("--trust-pickle applies to --joblib files only: a registry writer is not trusted")
    if args.model_uri or args.restore:
        import registry  # MLflow is imported only on this path

        if args.restore:
            return registry.restore_main(args.restore, args.out, args.tracking_uri)
        return registry.export_model_uri(
            sys.modules[__name__],
            args.model_uri,
            args.out,
            tracking_uri=args.tracking_uri,
            validation=args.validation,
            skedge=args.skedge,
            ovr_proba=args.ovr_proba,
            dry_run=args.dry_run,
            interchange_hook=interchange_hook,
        )
    return export(
        args.joblib,
        args.out,
        validation=args.validation,
        skedge=args.skedge,
        ovr_proba=args.ovr_proba,
        name=args.name,
        version=args.version,
        trust_pickle=args.trust_pickle,
        interchange_hook=interchange_hook,
    )


if __name__ == "__main__":
    sys.exit(main())
