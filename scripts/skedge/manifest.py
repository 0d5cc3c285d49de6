"""`MODEL.manifest.json`: what a deployment pins, next to `MODEL.skedge`.

    {"manifest_version": 1, "name": "sentiment_model", "version": "3",
     "file": "sentiment_model.skedge", "size": 81234, "sha256": "<hex>",
     "integrity": "sha256-<base64>",            # Subresource Integrity string for the JS loader
     "format_version": 3, "skedge_version": "0.1.0",
     "classes": ["negative", "positive"], "estimator": "LogisticRegression", "n_features": 23456,
     "precision": "exact", "sklearn_version": "1.9.1", "created": "2026-11-26T05:00:00Z",
     "source_sha256": "<hex of the model file>", "exported_at": "2026-12-02T21:00:00Z",
     "parity": {"passed": true, "texts": 131, "mismatches": 0, "max_proba_diff": 0.0,
                "tolerance": 1e-12, "runtime": "native CLI"},
     "provenance": {...}, "metrics": {"accuracy": 0.81},
     "export": {"model_uri": "models:/sentiment_model@production", "alias": "production", ...}}

Everything but `parity`, `exported_at` and the file digest comes from the artifact itself (the
fields of `skedge inspect`, read by this package's engine: `Model.info()`), so the manifest cannot
disagree with the bytes it describes. `exported_at` is
the only time of the export: the artifact's `created` is fixed by the source (FORMAT.md), so the
same model and options give the same bytes.

Also the parity report (`MODEL.parity.json`) and the chunked parity run with a progress bar.

CLI: `manifest.py MODEL.skedge` (re)writes the manifest without parity results;
`manifest.py --check MODEL.skedge [--manifest M]` exits 1 when the artifact does not match its
manifest (size, sha256, integrity, format version), e.g. before a deployment swaps it in.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import datetime as _dt
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ._cli import program

#: Kept for callers that pass it: the manifest reads the artifact with the package's own engine.
DEFAULT_SKEDGE = program("skedge")
MANIFEST_VERSION = 1
#: Parity runs over more texts than this are split into chunks with a progress bar.
PROGRESS_THRESHOLD = 2000
CHUNK = 1000


def manifest_path_for(artifact: str | Path) -> Path:
    """`MODEL.skedge` -> `MODEL.manifest.json`."""
    p = Path(artifact)
    return p.with_name((p.stem if p.suffix == ".skedge" else p.name) + ".manifest.json")


def report_path_for(artifact: str | Path) -> Path:
    """`MODEL.skedge` -> `MODEL.parity.json`."""
    p = Path(artifact)
    return p.with_name((p.stem if p.suffix == ".skedge" else p.name) + ".parity.json")


@dataclasses.dataclass
class Staging:
    """Temporary paths with the final file names; `final` maps each to its destination.

    After `commit()` the three paths are the destinations themselves."""

    dir: Path
    artifact: Path
    manifest: Path
    report: Path
    final: dict
    #: (destination, the file it replaced moved aside, or None), in the order moved
    moved: list = dataclasses.field(default_factory=list)
    committed: bool = False

    def commit(self) -> None:
        """Move the staged files into place; the files they replace are kept aside until the
        block ends, so that a later failure (the MLflow write-back) can put them back."""
        for src, dst in self.final.items():
            if not src.exists():
                continue
            aside = None
            if dst.exists():
                aside = self.dir / f".replaced.{dst.name}"
                os.replace(dst, aside)
            self.moved.append((dst, aside))
            os.replace(src, dst)
        self.committed = True
        paths = [self.final[p] for p in (self.artifact, self.manifest, self.report)]
        self.artifact, self.manifest, self.report = paths

    def rollback(self) -> None:
        """Undo `commit()` (best effort: the error that caused it is the one to report)."""
        for dst, aside in reversed(self.moved):
            with contextlib.suppress(OSError):
                if aside is not None:
                    os.replace(aside, dst)
                else:
                    os.unlink(dst)
        self.moved.clear()


def os_error_message(err: OSError, what: str = "write") -> str:
    """`cannot write PATH: REASON` for an OSError (a full disk, a file where a folder should be)."""
    where = err.filename or ""
    reason = err.strerror or str(err)
    return f"cannot {what} {where}: {reason}" if where else f"cannot {what}: {reason}"


def check_destination(out: str | Path) -> None:
    """Raise OSError naming the path when `out`, its manifest and parity report could not be
    written there: a folder in the way of a file, a file where a folder must be, a folder that
    cannot be written. Called before the export's work and before anything is written to MLflow;
    a full disk still shows only when writing (an OSError too)."""
    out = Path(out)
    for path in (out, manifest_path_for(out), report_path_for(out)):
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder is in the way of the file to write", str(path))
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    # `exists()` is False below a file too: the first existing ancestor must be a folder.
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"not a folder, so {out} cannot be written below it", str(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "this folder cannot be written", str(existing))


@contextlib.contextmanager
def staged_outputs(out: str | Path, *, keep: bool = True) -> Iterator[Staging]:
    """Yield temporary paths beside `out`; move them into place when the block calls
    `Staging.commit()`, or else when it ends without an error.

    On any exception (parity failure, MLflow unreachable during write-back, Ctrl-C) the files
    moved into place are taken back and the ones they replaced put back, the temporary folder and
    the folders made for it are removed: the destination is left as it was. With `keep` false
    (`--dry-run`) the files are staged in the system's temporary folder and nothing is written
    beside `out`, not even its folder (a dry run to a read-only place works).
    """
    out = Path(out)
    created: list = []
    if keep:
        created = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    else:
        tmp = Path(tempfile.mkdtemp(prefix="skedge-dry-run-"))
    final_manifest = manifest_path_for(out)
    final_report = report_path_for(out)
    staging = Staging(
        dir=tmp,
        artifact=tmp / out.name,
        manifest=tmp / final_manifest.name,
        report=tmp / final_report.name,
        final={},
    )
    staging.final = {
        staging.artifact: out,
        staging.manifest: final_manifest,
        staging.report: final_report,
    }
    done = False
    try:
        yield staging
        if keep and not staging.committed:
            staging.commit()
        done = keep
    except BaseException:
        staging.rollback()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            for folder in created:  # deepest first: only the empty folders made here
                with contextlib.suppress(OSError):
                    folder.rmdir()


def digests(path: str | Path) -> tuple[str, str, int]:
    """(hex sha256, SRI integrity `sha256-<base64>`, size) of a file."""
    data = Path(path).read_bytes()
    raw = hashlib.sha256(data).digest()
    return raw.hex(), "sha256-" + base64.b64encode(raw).decode("ascii"), len(data)


def _keys() -> tuple:
    """The exporter's keys (`export.py --public-key/--sign-key/--encrypt-key`), so that sealed
    artifacts read: (public key file, decryption key file), each None when not given."""
    export = sys.modules.get("skedge.export") or sys.modules.get("__main__")
    keys = getattr(export, "KEYS", None)
    if keys is None:
        return None, None
    return keys.public_key, keys.encrypt_key


def artifact_info(artifact: str | Path) -> dict:
    """The artifact's metadata, as `skedge inspect ARTIFACT` prints the fields a manifest takes:
    `Model.info()` of this package's own engine, so that no CLI is needed (raises RuntimeError
    with the code of an artifact that does not load)."""
    from . import Model, SkedgeError  # noqa: PLC0415 - the extension, once a manifest is written

    public_key, decryption_key = _keys()
    try:
        return Model.load(artifact, public_key=public_key, decryption_key=decryption_key).info()
    except SkedgeError as err:
        raise RuntimeError(f"error[{err.code}]: cannot read {artifact}: {err}") from err


def parity_summary(report: Any, *, runtime: str = "native CLI", tolerance: float = 1e-12) -> dict:
    """The manifest's `parity` object from export.py's `ParityReport`."""
    summary = {
        "passed": bool(report.ok),
        "texts": int(report.checked),
        "mismatches": len(report.mismatches),
        "max_proba_diff": float(report.max_proba_error),
        "tolerance": tolerance,
        "runtime": runtime,
    }
    if getattr(report, "precision", "exact") != "exact":
        summary["precision"] = report.precision
        summary["label_changes"] = int(report.label_changes)
        summary["max_decision_diff"] = float(report.max_decision_error)
    return summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return value


def parity_report(report: Any, *, summary: dict, sources: dict, limit: int = 50) -> dict:
    """`MODEL.parity.json`: the summary, where the texts came from, the first mismatches."""
    return {
        **summary,
        "sources": sources,
        "first_mismatches": [
            {
                "index": m.index,
                "text": m.text if len(m.text) <= 200 else m.text[:197] + "...",
                "field": m.field,
                "expected": _jsonable(m.expected),
                "got": _jsonable(m.got),
            }
            for m in report.mismatches[:limit]
        ],
    }


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with seconds (`2026-11-26T05:00:00Z`)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_manifest(
    artifact: str | Path,
    *,
    inspect: dict | None = None,
    parity: dict | None = None,
    skedge: str | Path = DEFAULT_SKEDGE,
    exported_at: str | None = None,
    export: dict | None = None,
) -> dict:
    """The manifest of `artifact` (its name on disk is recorded as `file`).

    `exported_at` (default now) is when this export ran: it lives here and in the
    `skedge.exported_at` tag, never in the artifact, whose bytes depend only on the model and the
    options (FORMAT.md, `created`). `export` says how the model was asked for (the model URI and
    tracking URI, or the file paths as given): it is kept out of the artifact for the same reason."""
    info = inspect if inspect is not None else artifact_info(artifact)
    sha, integrity, size = digests(artifact)
    if info.get("sha256") not in (None, sha):
        raise RuntimeError(f"the artifact read has sha256 {info['sha256']}, the file {sha}")
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": info.get("name", ""),
        "version": info.get("version", ""),
        "file": Path(artifact).name,
        "size": size,
        "sha256": sha,
        "integrity": integrity,
        "format_version": info["format_version"],
        "skedge_version": info.get("skedge_version", ""),
        "classes": info.get("classes", []),
        "estimator": info.get("estimator", ""),
        "n_features": info.get("n_features"),
        "precision": info.get("precision", "exact"),
        "sklearn_version": info.get("sklearn_version", ""),
        "created": info.get("created", ""),
        "source_sha256": info.get("source_sha256", ""),
        "exported_at": exported_at or now_rfc3339(),
        "parity": parity,
        "provenance": info.get("provenance", {}),
        "metrics": info.get("metrics", {}),
        "export": dict(export or {}),
    }


def default_mode() -> int:
    """The permission bits a plain `open(path, "w")` would give (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_json(path: str | Path, obj: Any) -> None:
    """Write `obj` as indented UTF-8 JSON, atomically (temporary file + rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, default_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check(artifact: str | Path, manifest: dict, skedge: str | Path | None = None) -> list:
    """Why `artifact` does not match `manifest` ([] when it does). With `skedge` given (as callers
    that ran the CLI pass it; the artifact is now read by the package's engine), the artifact is
    also loaded and its format version compared."""
    sha, integrity, size = digests(artifact)
    problems = []
    if manifest.get("size") != size:
        problems.append(f"size {size} != manifest {manifest.get('size')}")
    if manifest.get("sha256") != sha:
        problems.append(f"sha256 {sha} != manifest {manifest.get('sha256')}")
    if manifest.get("integrity") != integrity:
        problems.append(f"integrity {integrity} != manifest {manifest.get('integrity')}")
    if skedge is not None and not problems:
        info = artifact_info(artifact)
        if info.get("format_version") != manifest.get("format_version"):
            problems.append(
                f"format_version {info.get('format_version')} != manifest "
                f"{manifest.get('format_version')}"
            )
    return problems


# ---------------------------------------------------------------------------------------------
# Parity in chunks, with a progress bar on long validation sets
# ---------------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (only when it is a terminal, or `force`)."""

    def __init__(self, total: int, label: str = "parity", force: bool = False, width: int = 30):
        self.total, self.label, self.width = total, label, width
        self.enabled = force or sys.stderr.isatty()
        self.t0 = time.monotonic()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(frac * self.width)
        elapsed = time.monotonic() - self.t0
        sys.stderr.write(
            f"\r{self.label} [{bar:<{self.width}}] {done}/{self.total} texts {elapsed:5.1f}s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def parity_in_chunks(
    gate: Callable, texts: list, *, chunk: int = CHUNK, progress: bool | None = None
) -> Any:
    """Run `gate(texts_chunk)` (export.py's `parity_gate` with its other arguments bound) over
    chunks and merge the reports, with a progress bar above `PROGRESS_THRESHOLD` texts."""
    if len(texts) <= PROGRESS_THRESHOLD and not progress:
        return gate(texts)
    bar = Progress(len(texts), force=bool(progress))
    merged = None
    try:
        for start in range(0, len(texts), chunk):
            report = gate(texts[start : start + chunk])
            for m in report.mismatches:
                m.index += start
            if merged is None:
                merged = report
            else:
                merged.checked += report.checked
                merged.mismatches.extend(report.mismatches)
                merged.max_proba_error = max(merged.max_proba_error, report.max_proba_error)
                merged.max_decision_error = max(merged.max_decision_error, report.max_decision_error)
            bar.update(min(start + chunk, len(texts)))
    finally:
        bar.close()
    return merged


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write or check MODEL.manifest.json.")
    parser.add_argument("artifact", type=Path, help="MODEL.skedge")
    parser.add_argument("--manifest", type=Path, help="default: MODEL.manifest.json beside it")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the artifact does not match"
    )
    # Accepted as before; the artifact is read by the package's engine, not the CLI.
    parser.add_argument("--skedge", type=Path, default=DEFAULT_SKEDGE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path = args.manifest or manifest_path_for(args.artifact)
    if args.check:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            print(f"manifest: cannot read {path}: {err}", file=sys.stderr)
            return 1
        try:
            problems = check(args.artifact, manifest, args.skedge)
        except (RuntimeError, OSError) as err:
            print(f"manifest: {err}", file=sys.stderr)
            return 1
        for p in problems:
            print(f"manifest: {args.artifact}: {p}", file=sys.stderr)
        if not problems:
            print(f"{args.artifact} matches {path} ({manifest['integrity']})")
        return 1 if problems else 0
    try:
        write_json(path, build_manifest(args.artifact, skedge=args.skedge))
    except (RuntimeError, OSError) as err:
        print(f"manifest: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
