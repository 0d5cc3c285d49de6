"""Production metrics back to MLflow: the snapshot collector and the push to MLflow.

    .venv/bin/python scripts/report.py serve --spool DIR|s3://BUCKET/PREFIX --token T [--host 127.0.0.1] [--port 8787]
    .venv/bin/python scripts/report.py push --spool DIR | --from s3://BUCKET/PREFIX [--tracking-uri URI] [--artifact M.skedge ...]
    .venv/bin/python scripts/report.py compact --spool DIR | --from s3://BUCKET/PREFIX [--keep-days 7]   # consumed ones
    .venv/bin/python scripts/report.py schema [--experiment]   # the (experiment) snapshot JSON Schema

`serve` is an HTTP collector (Starlette on uvicorn, both already installed with MLflow). `POST
/v1/snapshots` takes one snapshot (FORMAT.md section 4) with the token (`Authorization: Bearer T`,
or `X-Skedge-Token: T`, or `?token=T` for `navigator.sendBeacon`, which cannot set headers) and
answers JSON, `{"id", "stored": true}` or `{"code", "error"}`:

    201 stored (after the record is fsync'ed)
    400 NOT_JSON (not JSON, not UTF-8), BAD_REQUEST (a bad Content-Length), HEADERS_TOO_LARGE
        (a request head over 16 KiB; an unfinished one is h11's plain 400, the connection closed)
    401 TOKEN_MISSING, TOKEN_INVALID              404 NOT_FOUND, 405 METHOD_NOT_ALLOWED
    408 BODY_TIMEOUT                              409 DUPLICATE (the id is already stored)
    413 SNAPSHOT_TOO_LARGE (over --max-bytes)     415 UNSUPPORTED_MEDIA_TYPE
    422 SNAPSHOT_INVALID (JSON that is not a valid snapshot), CLOCK_SKEW (a window ending more
        than --clock-skew-seconds, 3600, after the collector's clock), SNAPSHOT_KEY_TOO_LONG
        (a bucket spool only: a key over S3's 1024 bytes, `spool.MAX_KEY_BYTES`)
    503 SPOOL_UNAVAILABLE, 507 SPOOL_FULL (not stored: see below)

The body is a monitoring snapshot or an experiment snapshot (`"format":
"skedge-experiment-snapshot"`, an `Experiment`'s window: FORMAT.md section 4), told apart by its
format, both validated as strictly and spooled alike; ids are unique across both kinds.

`monitor.flush()` returns the last of these as `lastError: {status, code, message}`. Refusals
(every 4xx but 409, which a retry gets) are logged to stderr with the client's address, at most
one line per status and code every `--refusal-log-interval` seconds (60), which counts the ones
not shown. `GET /healthz` (also `/health`) answers `{"ok": true, "snapshots": N}` (ids known).

A spool that cannot be written answers 503 SPOOL_UNAVAILABLE, a full disk or quota 507 SPOOL_FULL
(both logged like the refusals); `monitor.flush()` keeps the snapshot and sends it again at its
next flush. While the disk is still too full for the last snapshot refused (after a quota
refusal: until a snapshot is stored), `/healthz` answers 507 `{"ok": false, "snapshots": N,
"code": "SPOOL_FULL", "error"}`.

Stored snapshots are appended to `DIR/snapshots-NNNNNN.jsonl`, one record per line, and fsync'ed
before the answer: an acknowledged snapshot survives a crash (a torn last line, never acknowledged,
is cut on restart). A write or fsync that fails (a full disk: 507) is cut back to the last
acknowledged record at once, so the spool stays readable and the collector keeps serving: a later
POST is stored once space is freed. Ids already in the spool or in the push ledger are refused as
duplicates, also after a restart. One collector per spool (an exclusive lock on `DIR/.lock`).

Beyond the schema, 422 SNAPSHOT_INVALID also refuses what no monitor measures: repeated class
names or more than 64 KiB of them (the Rust `MAX_CLASS_BYTES`), `latency.sum_ms` above the timed
count × `max_ms`, `latency.sum_ms` or `max_ms` above 1e15 ms (`MAX_LATENCY_MS`: a window's sum
stays finite), a shadow `sum_abs_dproba` above `proba_pairs × max_abs_dproba`.
`serve --max-bytes` is at most `MAX_BODY_BYTES` (8 MiB − 64 KiB: the record push reads must fit
in its 8 MiB line); a usage error otherwise, as a number that is not finite is for push's
`--window-seconds` (at least 0.001), `--grace-seconds`, `--clock-skew-seconds` and `--lease-seconds`
(1 to 3600).

`push` aggregates the spooled snapshots per model version (name, version, artifact sha256) and time
window (`--window-seconds`, by window end) and logs each window to MLflow, in a monitoring run
(experiment `skedge-monitoring`) per model version and window length, tagged with the model's
name, version and sha256 and linked to the registered model version (tags both ways): metrics at
timestamp = window end and step = the window's index counted from the run's first window (step
0 starts at the run tag `skedge.step_origin_ms`; runs made before that tag keep the index since
the epoch, `window end // window length`), linked to the version's LoggedModel when it has one
(MLflow 3 `model_id`); PSI of the label, confidence, OOV-rate and length histograms against the
artifact's drift baseline and the OOV-rate shift, and `drift_alert` (0 or 1, only when drift was
computed); a drift figure (`drift/window-<index since the epoch>.png`, `drift/latest.png`). The
thresholds, the window length and where the baseline came from (`baseline.source`, a file URI or
`models:/NAME/VERSION`; `baseline.texts`) are params of the run, set once (a later push with
other thresholds warns: params cannot change). An artifact with no registry version, or a version
the registry does not have, is pushed with a warning (its run is linked to no version). Only
windows that ended `--grace-seconds` ago are pushed, unless `--close-all`. A window that receives
late snapshots after it was pushed is logged again as a revision (same step, complete aggregate,
timestamp + revision ms). A window older than the run's first gets a negative step (a device
that delivered late, or whose clock is behind: its data is real, so it is logged); one ending more
than `--clock-skew-seconds` (3600) after push's clock is set aside (quarantine), never left "open":
the device's clock is ahead. Each window also gets `dropped`, the largest `dropped` of its
snapshots (cumulative per monitor: a sum would count a loss again in every later snapshot).

Every point of a window has a record in its run's artifacts, `skedge/window/<index>/<timestamp>.json`
(`skedge/experiment/…` for an arm's experiment window): the snapshot ids it aggregates and their
statistics, written before the point. A push that finds a point at its window's step reads it: when
it holds all of this push's snapshots nothing is logged (a lost ledger line, or another source
logged them), otherwise the next revision adds this push's snapshots that it lacks to the record's
statistics. So two sources of one model version and window (two spools, a folder and a bucket)
add up, in whichever order they are pushed, instead of the second one's data being taken for the
first's (pushed one after the other: two pushes at the same moment can still both log revision 0).
A point from a push before records is matched by its snapshot and prediction counts, as before.

A snapshot whose `classes` differ from its artifact's (same sha256; without the artifact, from
those most snapshots of the window have) or whose statistics are of another kind (confidence or
OOV present where most have null, or the reverse: they cannot be added up, as in the Rust
`Stats::merge`) is set aside with its reason; the rest of its window is pushed.

Every spool record is validated again (a line the collector did not write is set aside in
`DIR/quarantine.jsonl`, reported, never a crash), and a window MLflow refuses (a 400) is set aside
there too, reported, while the other windows are pushed. Spool files are streamed and opened with
O_NOFOLLOW (a symlinked segment is neither read nor appended to).

One snapshot id, two documents (ids collide: two monitors; the collector refuses a second POST of
an id, a bucket's keys are per model, version and window): the first read (arrival order in a
folder, key order in a bucket) is pushed; a second *different* one is set aside in the quarantine,
with its document, `"duplicate_of": id` (not `ids`: the first stays pushed) and the reason, named
by its line (`line_sha256`) or its key and ETag, once; so is a monitoring snapshot whose id the
ledger names only for another model, version or artifact (a bucket reads such an object: it is
consumed only by a line of its own key's model and version). One identical to the first is the
same snapshot stored twice: counted once, nothing set aside. What is not told apart: in a bucket,
a second document under the same model and version folder once the first is logged (consumed by
its key, not read); in a folder, one arriving after the first was consumed before a checkpoint
(only the ledger's tail is read: it is pushed as its own model's window, or of the same model
found in the point's record and not logged again). The collector's 409 keeps the latter out of a
spool it writes; monitors whose ids take host randomness make both unlikely.

Idempotent: the ledger `DIR/pushed.jsonl` records every window revision logged (after MLflow
accepted it); a second push of the same spool logs nothing. If the ledger write was lost after
MLflow logged a window (a crash in between), the run's point and its record tell, and the window is
not logged twice; if that window has had snapshots since, the whole window is logged as its next
revision (a point from before records is recorded without ids, `"ids_unknown": true`). push removes
nothing from the spool, so MLflow being down loses nothing: the next push catches up.

Incremental: push reads only what the checkpoint (`DIR/pushed.checkpoint.json`, written atomically
after the push's last ledger and quarantine line) does not record as consumed: per segment, the byte
offset below which every record is logged (its id in the ledger) or set aside (quarantine), and the
consumed records past it; where the ledger and the quarantine ended (only the lines after are read);
the pushed windows still waiting for their drift. A crash before the checkpoint re-reads that part,
which the ledger says is done: nothing is logged twice or skipped. So a push reads the new records
and those of windows still open, not the history; a window holds only its snapshots not pushed yet,
and a late one is added to what MLflow has (the point's record) as the next revision. The ledger is
read whole only for a window MLflow already has a point of (a late snapshot, a crash, another
source), streamed. A ledger or quarantine cut or replaced since the checkpoint voids it (all is
read again). The checkpoint is trusted only with proof (`LocalSource._verified`): it names the
spool folder, and per segment the sha256 of its first line and of the last consumed line, which
must end at the offset; a segment that fails is read from its start (with the whole ledger and
quarantine). A checkpoint of another version or malformed in any field (`checked_checkpoint`) is
ignored. A bucket's checkpoint is `ledger/checkpoint.json` (`skedge/spool.py`): its objects are
consumed by key (the id in a key in the ledger or quarantine, which are read whole there anyway).

`compact --spool DIR --keep-days N` (7) removes, under the push lock, the segments whose every line
the checkpoint records as consumed and valid (a segment with a line set aside as invalid is kept:
the quarantine keeps 4 KiB of it), last written more than N days ago, never the newest (the one the
collector appends to). The ledger and the quarantine are kept: the collector loads their ids and
refuses (409) a retry of a snapshot whose segment is gone, so nothing is counted twice, and nothing
not yet in MLflow (or set aside with its snapshot) is removed. A window logged by a push from before
window records (a monitoring window, or an arm's experiment window) gets its missing record from a
push that reads the folder whole (no checkpoint: an upgrade's first; a bucket's reads the objects of
those windows) while its snapshots are still there (`Pusher.restore_records`, from snapshots of the
window's model, version and window only: an id may be two monitors'), so that a late snapshot can still be added to it after compaction; one
whose record could not be restored so takes no late snapshot once its snapshots are gone (set
aside, with the reason: `complete`).

`compact --from s3://BUCKET/PREFIX --keep-days N` (or `--spool s3://…`, with push's
`--s3-endpoint-url` and `--lease-seconds`) deletes, under the push lease (`BucketSource.compact`),
the snapshot objects push has consumed, told by key exactly as push tells it (`consumed_objects`),
last modified more than N days ago: listed a page at a time, deleted in DeleteObjects batches of at
most 1,000 keys. Never an object not consumed yet (an experiment snapshot logged for some arms
only is not: the checkpoint's `partial`), nor one set aside as not a valid snapshot (the quarantine
keeps 4 KiB of it), nor anything under `ledger/`. The ledger and quarantine keep their ids: an
object written again under a deleted key (a retry) is consumed by its key, never read or counted,
and deleted by the next compaction. A collector refuses such a retry (409) only when it stored that
id itself or started after the id was logged or set aside (it loads their ids when it starts);
another collector sharing the bucket answers 201 and stores the object again. The first push without a checkpoint (an
upgrade's) restores missing records from a bucket too, reading the objects of those windows (one
listing); a window logged by a push from before window records whose record could not be restored
before its objects were deleted takes no late snapshot (set aside, with the reason). Exit 2 when the
bucket fails or another push takes the lease over (run it again).

Drift alert: when a window with at least `--min-samples` sampled predictions has a PSI above
`--psi-threshold` (label, confidence or OOV histogram) or an OOV-rate shift above
`--oov-shift-threshold`, the model version gets the tag `skedge.drift_alert` (a readable summary),
the run too, and push exits 1 after logging everything. The tag is removed (not set to false:
its presence is the alert) when a later window is healthy: drift computed on at least
`--min-samples` predictions, nothing over a threshold. Only the run's latest window (points
beyond push's clock + `--clock-skew-seconds` left out) sets or removes the tags: a late revision
of an older window logs its `drift_alert` metric, which keeps the history, and says so, but
neither re-raises an alert a newer window cleared nor exits 1.

Drift later: a window pushed while no artifact of its sha256 was at hand (ledger line `"drift":
false`) gets its drift computed by the first push that finds one (`--artifact`, or published in
MLflow): the drift metrics and `drift_alert` at the window's step and timestamp, only those the run
does not have there, then a ledger line `{"kind": "drift", ...}` so that it happens once; the alert
is set or cleared as above. Until then each push says how many windows wait.

Experiments: push aggregates experiment snapshots per model version of an arm (name, version,
sha256) and window, like monitoring windows (same ledger, revisions, quarantine, bucket source and
cache), over every snapshot the version is an arm of (one peer, or more when an alias moved within
the window: one point per step whatever happened), and logs them in that version's monitoring run
(`run_for`; the version's tag `skedge.monitoring_run_id`), at timestamp = window end (+ revision ms)
and the same step: `skedge.served`, `skedge.feedback.count`, `skedge.feedback.correct`, and when
the count is not 0 `skedge.feedback.accuracy` (correct / count) and `skedge.feedback.f1_macro`
(scikit-learn's `f1_score(average="macro")` from the confusion matrix: classes neither true nor
predicted left out); with shadow snapshots `skedge.shadow.pairs`, `skedge.shadow.agree`,
`skedge.shadow.agreement`, `skedge.shadow.mean_abs_dproba`, `skedge.shadow.max_abs_dproba`. The same
counts per peer, for a reader that needs one pair's evidence (`sync.py promote`): `skedge.peers` (how
many peers the window has) and, per peer version of the same registered model,
`skedge.peer/<version>/served`, `.../feedback.count`, `.../feedback.correct`, `.../shadow.pairs`,
`.../shadow.agree` (the window record's `by_peer` has every peer, `NAME/VERSION`). A snapshot whose
two arms are this same artifact (both aliases on one version after a promotion) counts once in
shadow mode (the challenger arm scored the same texts and got the same labels), both arms in canary
mode (each served its own keys); its shadow pairs once. Counts
are per window: a reader sums them, keeping the latest timestamp of each step. The run tag
`skedge.experiment.last_peer` is the other arm (`NAME/VERSION`) of its latest window. Ledger lines
`{"kind": "experiment", ...}` record each arm's window revision; a lost one is found in the run's
history of `skedge.served`, as for monitoring. The arms' `stats` are not folded into the version's
monitoring windows (a model both monitored and in an experiment would count twice).

Performance alert: after a version's experiment window, its accuracy over all its feedback up to
that window (at least `--min-feedback` labels, 100) is compared with `--reference-metric`
(`accuracy`) of the run that logged the model version: below it by more than
`--performance-threshold` (0.05), the version and the run get the tag `skedge.performance_alert`
(a readable summary) and push exits 1 after logging everything; a later healthy check removes both.
Only the run's latest window moves the tags (a revision of an older one logs its metrics only);
the metric `skedge.performance_alert` (0/1, when checked) keeps the history. A figure per run,
`experiment/latest.png` and `experiment/window-<index since the epoch>.png`: the version's and its
peer's accuracy and the agreement per window.

Connections: a request's headers must arrive within `--header-timeout` (10 s, from the
connection or the previous response) and 16 KiB, its body within `--body-timeout` (30 s, else
408; an answer given before the body was read whole closes the connection), a response must be
read within `--write-timeout` (30 s, else the connection is aborted), an idle keep-alive
connection is closed after 5 s; at most 256 connections at once.

A bucket instead of a folder (`--spool s3://BUCKET/PREFIX` for serve, `--from s3://BUCKET/PREFIX`
for push; the endpoint from `--s3-endpoint-url` or `AWS_ENDPOINT_URL`; FORMAT.md §4 "Snapshots in a
bucket", `skedge/spool.py`): each snapshot is its own object
`snapshots/<model>/<version>/<window start ms>/<id>.json` (an experiment snapshot
`experiments/<champion model>/<champion version>/<window start ms>/<id>.json`), written only if
absent (S3 `If-None-Match: *`), which is also what the Worker example writes through its R2
binding (monitoring snapshots); serve answers 201 once the bucket stored it, 409 for an id
stored before, 503 SPOOL_UNAVAILABLE when the bucket fails (the client keeps the snapshot and
retries); any number of collectors share a bucket. push reads the
same windows, ledger and quarantine from the bucket (`ledger/pushed.jsonl`, `ledger/quarantine.jsonl`)
through the same code as a folder (`LocalSource` and `spool.BucketSource`: snapshots, ledger,
append, lock). Exactly once from any number of hosts: the lock is a **lease**, `ledger/lease.json`,
taken and renewed by conditional writes with a generation number, because MLflow has no conditional
write (two pushes at once would both create a new version's run and log its windows before either
could record them in a ledger); the ledger object is replaced by compare-and-swap on its ETag, which
fences a push whose lease was taken over (a pause longer than its `--lease-seconds`): its next ledger
write fails and it exits 2. A crash anywhere is resumed by the next push: it takes the lease over
once it has not changed for the holder's `--lease-seconds` (recorded in the lease; a lease of the
version before: its own, 60 by default; timed on its own clock), and a window MLflow got
before the crash is found in the run's metric history, as with a folder. A push reads (GET) only
the objects not consumed yet, told by key: a snapshot whose id the ledger or quarantine names (an
experiment snapshot: once the ledger had it before the checkpoint `ledger/checkpoint.json`, unless
the checkpoint lists it as logged for some arms only), an object set aside by key and ETag; every
key is still listed, as a late snapshot can land in an old window's folder, and the checkpoint holds
nothing per object; `--cache DIR` keeps the objects read (immutable: by key and ETag) for those read
again (open windows).

Exit codes: serve: 0 on shutdown, 3 bad arguments or spool in use. push: 0 logged (or nothing to
log), 1 drift or performance alert, 2 MLflow unreachable or failing (nothing lost; run it again), 3 other errors.
compact: 0, 2 the bucket failing or the lease taken over (nothing lost; run it again), 3 no spool folder.

The baseline of a model version comes from `--artifact FILE` (any number; matched by sha256), else
from the artifact the exporter published in MLflow for that version (`skedge.sha256` tag,
`registry.restore`); it is read with `target/release/skedge-monitor baseline`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import errno
import fcntl
import hashlib
import hmac
import importlib.util
import json
import math
import os
import re
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import _cli, _http  # noqa: E402
from . import registry  # noqa: E402  (sets MLflow's fail-fast environment before mlflow is imported)
from . import spool as bucket_spool  # noqa: E402
from ._cli import program  # noqa: E402

try:
    from ._schema import (  # noqa: F401  (re-exported: the schema is report's)
        CONFIDENCE_BINS,
        EXPERIMENT_FORMAT,
        EXPERIMENT_VERSION,
        LATENCY_BINS,
        LENGTH_BINS,
        MAX_CLASS_BYTES,
        MAX_CLASSES,
        MAX_LATENCY_MS,
        MAX_NAME_CHARS,
        MAX_TEXT_CHARS,
        MAX_TEXTS,
        MAX_TIME_MS,
        OOV_BINS,
        SNAPSHOT_FORMAT,
        SNAPSHOT_VERSION,
        SUM_SLACK,
        U64_MAX,
        ArmWindow,
        ExperimentSnapshot,
        FeedbackStats,
        LatencyStats,
        ModelRef,
        OovStats,
        ShadowStats,
        Snapshot,
        Stats,
        ValidationError,
        Window,
        is_experiment,
        validate_document,
    )
except ModuleNotFoundError as _err:
    # pydantic (the [report] extra): `--help` and `compact` need none of it, so `main` names the
    # extra to install once the arguments are read, for the commands that do; any other use raises
    # that error.
    _MISSING: ModuleNotFoundError | None = _cli.extra_missing(_err, "report")
    if _MISSING is None:
        raise
    Snapshot = ExperimentSnapshot = validate_document = _cli.Absent(_MISSING)

    class ValidationError(ValueError):  # type: ignore[no-redef]
        """Never raised: stands for pydantic's in the `except` clauses that name it."""
else:
    _MISSING = None

MAX_SNAPSHOT_BYTES = 1 << 20
PSI_EPSILON = 1e-4
#: How far ahead of the receiver's clock a window may end (seconds): a device clock set in the
#: future would keep its window "open" for ever and, once pushed, be a run's latest window.
CLOCK_SKEW_SECONDS = 3600.0

DEFAULT_SKEDGE_MONITOR = program("skedge-monitor")
DEFAULT_EXPERIMENT = "skedge-monitoring"
SEGMENT_PREFIX = "snapshots-"
LEDGER = "pushed.jsonl"
QUARANTINE = "quarantine.jsonl"
#: What push has consumed (folder: `DIR/pushed.checkpoint.json`; bucket: `ledger/checkpoint.json`).
CHECKPOINT = "pushed.checkpoint.json"
#: Version 2: fingerprints of what was consumed (a version-1 checkpoint is ignored: one full read).
CHECKPOINT_VERSION = 2
#: The largest checkpoint read (a larger one is ignored: everything is read again).
MAX_CHECKPOINT_BYTES = 64 << 20
#: A segment's first bytes fingerprinted by the checkpoint (`head`), and a ledger's last ones.
HEAD_BYTES = 4096

EXIT_OK, EXIT_ALERT, EXIT_MLFLOW, EXIT_ERROR = 0, 1, 2, 3


class SnapshotError(Exception):
    """Why a body is not a snapshot; `status` is the HTTP status the collector answers."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _no_duplicate_keys(pairs: list) -> dict:
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int_or_negative_zero(digits: str) -> int | float:
    # serde_json reads `-0` as the float -0.0 (its sign kept), which no count takes: so does this
    # validator, where json.loads would read the integer 0. Rust's `skedge-monitor check` agrees.
    return -0.0 if digits == "-0" else int(digits)


def loads_strict(body: bytes) -> Any:
    """JSON from UTF-8 bytes, refusing NaN/Infinity, duplicate keys, a BOM and deep nesting."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if text.startswith("\ufeff"):
        raise ValueError("a byte order mark is not allowed")
    # the hook only when a `-0` may be there: a call per integer costs a dense confusion matrix time
    parse_int = _int_or_negative_zero if "-0" in text else None
    return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants, parse_int=parse_int)


def parse_snapshot(body: bytes, max_bytes: int = MAX_SNAPSHOT_BYTES) -> tuple[Snapshot, dict]:
    """The validated snapshot and its JSON document; raises `SnapshotError` (400, 413 or 422)."""
    if len(body) > max_bytes:
        raise SnapshotError(413, f"snapshot of {len(body)} bytes exceeds the limit of {max_bytes}")
    try:
        doc = loads_strict(body)
    except (ValueError, RecursionError) as err:
        raise SnapshotError(400, f"not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise SnapshotError(422, "a snapshot is a JSON object")
    try:
        snap = validate_document(doc)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "snapshot"
        raise SnapshotError(422, f"invalid snapshot: {where}: {first.get('msg')}") from None
    return snap, doc


# ---------------------------------------------------------------------------------------------
# The spool
# ---------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segments(spool: Path) -> list[Path]:
    """The spool's segment files; a symlink is never one (it could point anywhere)."""
    return sorted(
        p for p in spool.glob(f"{SEGMENT_PREFIX}*.jsonl") if not p.is_symlink() and p.is_file()
    )


#: Longest spool line read: a record of a snapshot at the collector's 1 MiB limit, re-encoded.
MAX_RECORD_BYTES = 8 * MAX_SNAPSHOT_BYTES
#: Largest `serve --max-bytes`: its record (the body re-encoded, which can only grow by a few bytes
#: per float, inside `{"received_ms": …, "snapshot": …}`) must stay within MAX_RECORD_BYTES, or
#: push would set aside a snapshot the collector acknowledged.
MAX_BODY_BYTES = MAX_RECORD_BYTES - (64 << 10)


def _lines_at(path: Path, offset: int = 0, ino: int | None = None) -> Iterator[tuple[int, int, bytes | None]]:
    """(start, end, line) of the complete lines of a regular file from byte `offset` (a line
    boundary), streamed (opened with O_NOFOLLOW: a symlink is refused, `OSError`); an unterminated
    last line (torn write) is left out; a line longer than `MAX_RECORD_BYTES` (none the collector
    writes) is skipped to its end and given as None. `ino`: the file's inode when the offset was
    taken; another file (replaced), or one now shorter than `offset`, is read from 0."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if offset < 0 or offset > st.st_size or (ino is not None and ino != st.st_ino):
            offset = 0
        f.seek(offset)
        pos = offset
        while line := f.readline(MAX_RECORD_BYTES + 1):
            start, pos = pos, pos + len(line)
            if not line.endswith(b"\n"):
                if len(line) <= MAX_RECORD_BYTES:
                    return  # the torn tail
                while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pos += len(rest)
                if not rest:
                    return
                pos += len(rest)
                yield start, pos, None
            elif line.strip():
                yield start, pos, line


def _lines(path: Path) -> Iterator[bytes | None]:
    """The lines of `_lines_at(path)` (from the start), without their positions."""
    for _, _, line in _lines_at(path):
        yield line


def _inode(path: Path) -> int | None:
    with contextlib.suppress(OSError):
        return os.lstat(path).st_ino
    return None


def _record(line: bytes | None) -> dict | None:
    """The snapshot document of a spool line, validated again (a line may not have been written by
    the collector, or by an older one); None when it is not a valid record."""
    if line is None:
        return None
    try:
        rec = loads_strict(line)
        doc = rec["snapshot"]
        validate_document(doc)
    except (ValueError, RecursionError, KeyError, TypeError, ValidationError):
        return None
    return doc


def read_spool(spool: Path, bad: list | None = None) -> list[dict]:
    """Every valid stored snapshot document (first occurrence of each id), in arrival order; lines
    that are not valid records are appended to `bad` as (segment name, line or None)."""
    seen, out = set(), []
    for seg in _segments(spool):
        for line in _lines(seg):
            snap = _record(line)
            if snap is None:
                if bad is not None:
                    bad.append((seg.name, line))
                continue
            if snap["id"] not in seen:
                seen.add(snap["id"])
                out.append(snap)
    return out


def _bad_digest(segment: str, line: bytes | None, start: int) -> str:
    """How a line that is not a valid record is named in the quarantine (`line_sha256`): the
    sha256 of the line, or of `"<segment>: over-long line at byte <start>"` for one too long to keep."""
    return hashlib.sha256(line if line is not None else f"{segment}: over-long line at byte {start}".encode()).hexdigest()


def _load_checkpoint(path: Path) -> dict:
    """A checkpoint file's document ({} when there is none or it is not one: everything is read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return {}
        data = f.read(MAX_CHECKPOINT_BYTES + 1)
    if len(data) > MAX_CHECKPOINT_BYTES:
        return {}
    try:
        return checked_checkpoint(json.loads(data))
    except (ValueError, RecursionError):
        return {}


def _nat(x: Any) -> bool:
    """A JSON integer ≥ 0 (not a bool, not a float)."""
    return type(x) is int and 0 <= x < 1 << 63


def _hex64(x: Any) -> bool:
    return isinstance(x, str) and len(x) == 64 and all(c in "0123456789abcdef" for c in x)


def _short(x: Any, most: int = 512) -> bool:
    return isinstance(x, str) and len(x) <= most


def _file_mark(m: Any) -> bool:
    """A folder checkpoint's mark of the ledger or quarantine: [inode or None, bytes, sha256]."""
    return isinstance(m, list) and len(m) == 3 and (m[0] is None or _nat(m[0])) and _nat(m[1]) and _hex64(m[2])


def _segment_entry(at: Any) -> bool:
    """A folder checkpoint's entry of one segment, well formed (`LocalSource._verified` checks
    it against the file)."""
    if not (isinstance(at, dict) and set(at) == {"ino", "offset", "bad", "head", "last"}):
        return False
    last = at["last"]
    return (_nat(at["ino"]) and _nat(at["offset"]) and _nat(at["bad"]) and _hex64(at["head"])
            and isinstance(last, list) and len(last) == 2 and _nat(last[0]) and _hex64(last[1])
            and last[0] < at["offset"] and at["offset"] - last[0] <= MAX_RECORD_BYTES)  # fmt: skip


def _head_digest(prefix: bytes, offset: int) -> str:
    """A segment's `head` fingerprint: the sha256 of its first line (of its first `HEAD_BYTES`
    bytes when that line is longer), from `prefix` (its first bytes) and the offset consumed."""
    head = prefix[: min(offset, HEAD_BYTES)]
    end = head.find(b"\n")
    return hashlib.sha256(head if end < 0 else head[: end + 1]).hexdigest()


def _spool_identity(path: Path) -> list | None:
    """The spool folder's identity ([device, inode]): a checkpoint taken of another folder (copied
    in, or of a folder since replaced) is not this one's."""
    with contextlib.suppress(OSError):
        st = os.stat(path)
        return [st.st_dev, st.st_ino]
    return None


def _pending_entry(e: Any) -> bool:
    """A window waiting for its drift, as a checkpoint keeps it (`pending_entry`)."""
    if not (isinstance(e, dict) and set(e) == {"run_id", "bucket", "revision", "window_seconds", "model"}):
        return False
    m, w = e["model"], e["window_seconds"]
    return (_short(e["run_id"], 64) and _nat(e["bucket"]) and _nat(e["revision"])
            and type(w) in (int, float) and math.isfinite(w) and w > 0
            and isinstance(m, dict) and set(m) == {"name", "version", "sha256"}
            and all(_short(v) for v in m.values()))  # fmt: skip


#: Validators of a checkpoint's fields (a field absent is empty; an unknown one voids it).
_CHECKPOINT_FIELDS = {
    "version": lambda v: v == CHECKPOINT_VERSION and type(v) is int,
    "spool": lambda v: isinstance(v, list) and len(v) == 2 and all(_nat(x) for x in v),
    "segments": lambda v: isinstance(v, dict) and all(_short(k, 255) and _segment_entry(a) for k, a in v.items()),
    "done": lambda v: isinstance(v, list) and all(_short(t, 128) for t in v),
    "arms": lambda v: isinstance(v, list) and all(isinstance(a, list) and len(a) == 4 and all(_short(x) for x in a)
                                                  for a in v),  # fmt: skip
    "ledger": lambda v: v is None or _file_mark(v) or bucket_spool.ledger_mark_ok(v),
    "quarantine": lambda v: v is None or _file_mark(v) or bucket_spool.ledger_mark_ok(v),
    "pending_drift": lambda v: isinstance(v, list) and all(_pending_entry(e) for e in v),
    "where": lambda v: _short(v, 2048),
    "partial": lambda v: isinstance(v, list) and all(_short(t, 128) for t in v),
}


def checked_checkpoint(doc: Any) -> dict:
    """`doc` if it is a well-formed checkpoint of this version (every field of the expected type
    and shape, integers ≥ 0), else {}: any doubt and everything is read again."""
    try:
        ok = (isinstance(doc, dict) and "version" in doc
              and all(k in _CHECKPOINT_FIELDS and _CHECKPOINT_FIELDS[k](v) for k, v in doc.items()))  # fmt: skip
    except (TypeError, ValueError, RecursionError):
        ok = False
    return doc if ok else {}


def read_ledger(spool: Path, name: str = LEDGER) -> list[dict]:
    """The JSON objects of the ledger (or of `QUARANTINE`), unreadable lines left out."""
    out = []
    for line in _lines(spool / name):
        with contextlib.suppress(ValueError, TypeError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                out.append(entry)
    return out


#: Files whose directory entry this process has fsync'ed (`append_durably`); cleared when full,
#: which costs a folder fsync per file again, never a lost entry.
_ENTRY_SYNCED: set = set()
_ENTRY_SYNCED_MAX = 256


def append_durably(path: Path, line: bytes) -> None:
    """Append one line and fsync it, and the folder until one fsync of it succeeded after this
    process first wrote the file: not "when the file is new", since an append that failed (a
    full disk) may have created it, and the next one, acknowledged, would find it there."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(line)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    key = os.fspath(path)
    if key not in _ENTRY_SYNCED:
        _fsync_dir(path.parent)
        if len(_ENTRY_SYNCED) >= _ENTRY_SYNCED_MAX:
            _ENTRY_SYNCED.clear()
        _ENTRY_SYNCED.add(key)


def _cut_torn_tail(path: Path) -> None:
    """Truncate an unterminated last line (a write cut by a crash, never acknowledged). A segment
    gone since it was listed (`report.py compact` removed it) is left alone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    with os.fdopen(fd, "rb+") as f:
        size = os.fstat(fd).st_size
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        end = size  # the last newline, searched backwards in blocks
        while end > 0:
            start = max(0, end - (1 << 20))
            f.seek(start)
            block = f.read(end - start)
            i = block.rfind(b"\n")
            if i >= 0:
                end = start + i + 1
                break
            end = start
        f.truncate(end)
        f.flush()
        os.fsync(f.fileno())


class SpoolBusy(Exception):
    """Another collector holds the spool's lock (serve exits 3)."""


class SpoolFull(Exception):
    """The spool's disk (or quota) is full: the snapshot was not stored (507 SPOOL_FULL)."""


#: errno values of a full disk or an exhausted quota.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class Spool:
    """The collector's side: dedup index, segments, durable appends. One per folder (locked)."""

    def __init__(self, path: Path, segment_bytes: int = 64 << 20):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._lock_fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"{self.path} is used by another collector") from None
        segs = _segments(self.path)
        for seg in segs:
            _cut_torn_tail(seg)
        self.ids = {s["id"] for s in read_spool(self.path)}
        # the ledger's and the quarantine's too: a retry of a snapshot whose segment `compact`
        # removed is still refused (409)
        for entry in (e for name in (LEDGER, QUARANTINE) for e in LocalSource(self.path).entries(name)):
            self.ids.update(_ids(entry))
        self.current = segs[-1] if segs else self._segment(1)
        self.mutex = threading.Lock()
        # Size the current segment must be cut back to before the next append, when a failed
        # append could not be undone at once (None: the segment ends with a complete record).
        self._cut_to: int | None = None
        # Bytes the last refused record needed, while the disk is full (None: not full), and
        # whether a quota refused it (statvfs does not show a quota: full until a store succeeds).
        self.full_needs: int | None = None
        self.full_quota = False

    def _segment(self, n: int) -> Path:
        return self.path / f"{SEGMENT_PREFIX}{n:06d}.jsonl"

    def __len__(self) -> int:
        return len(self.ids)

    def store(self, snap: Snapshot, doc: dict) -> bool:
        """Append the snapshot durably; False when its id is already stored."""
        record = {"received_ms": int(time.time() * 1000), "snapshot": doc}
        line = (
            json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
        ).encode("utf-8")
        with self.mutex:
            if snap.id in self.ids:
                return False
            try:
                if self._cut_to is not None:
                    self._cut(self._cut_to)
                size = self.current.stat().st_size if self.current.exists() else 0
                if size and size + len(line) > self.segment_bytes:
                    n = int(self.current.stem[len(SEGMENT_PREFIX) :]) + 1
                    while os.path.lexists(self._segment(n)):  # a file that is not ours: skip its name
                        n += 1
                    self.current, size = self._segment(n), 0
                try:
                    append_durably(self.current, line)
                except OSError:
                    # A write or fsync that failed may have left part of the record (or all of it,
                    # unacknowledged) at the end: cut back to the last acknowledged one, so that
                    # the next append starts a line of its own and a retry is not stored twice.
                    self._cut_to = size
                    with contextlib.suppress(OSError):
                        self._cut(size)
                    raise
            except OSError as err:
                if err.errno in DISK_FULL:
                    self.full_needs, self.full_quota = len(line), err.errno == errno.EDQUOT
                    raise SpoolFull(f"the spool's disk is full ({err.strerror})") from None
                raise
            self.ids.add(snap.id)
            self.full_needs = None
            return True

    def _cut(self, size: int) -> None:
        """Truncate the current segment to `size` bytes (durably) and forget the pending cut."""
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(self.current, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                if os.fstat(fd).st_size > size:
                    os.ftruncate(fd, size)
                    os.fsync(fd)
            finally:
                os.close(fd)
        self._cut_to = None

    def full(self) -> bool:
        """Whether the disk was full at the last append and still has too little space for that
        record (a freed disk shows here before the next POST succeeds; an exhausted quota only
        once a POST succeeds)."""
        if self.full_needs is None:
            return False
        if self.full_quota:
            return True
        try:
            vfs = os.statvfs(self.path)
        except OSError:
            return True
        # Whole blocks: the record and the block the segment's tail may need besides.
        return vfs.f_bavail * vfs.f_frsize < self.full_needs + 2 * vfs.f_frsize

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


def _entries(lines: Iterator) -> list[dict]:
    out = []
    for line in lines:
        with contextlib.suppress(ValueError, TypeError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                out.append(entry)
    return out


class LocalSource:
    """What push reads and writes in a spool folder; `skedge.spool.BucketSource` is the same for
    a bucket (`--from s3://…`).

    Incremental reads (`fresh`, `tail`, `advance`): the checkpoint `DIR/pushed.checkpoint.json`
    says, per segment, the byte offset below which every record is consumed (its id in the ledger
    or the quarantine, or the line set aside), so a push reads only the segments' ends."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def snapshots(self, bad: list | None = None) -> list[dict]:
        return read_spool(self.path, bad)

    def ledger(self, name: str = LEDGER) -> list[dict]:
        return read_ledger(self.path, name)

    def entries(self, name: str = LEDGER) -> Iterator[dict]:
        """The ledger's (or quarantine's) entries, streamed (`read_ledger` without the list)."""
        for line in _lines(self.path / name):
            with contextlib.suppress(ValueError, TypeError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    yield entry

    def tail(self, name: str, mark: Any) -> tuple[list[dict], list]:
        """The entries of `name` past `mark` (`[inode, bytes, sha256]` of a checkpoint, read only
        when the file still `holds` it; None: all) and the mark of its end (complete lines only)."""
        path = self.path / name
        ino, offset = (mark[:2] if _file_mark(mark) and self.holds(name, mark) else [None, 0])
        cur = _inode(path)
        if cur is None or (ino is not None and ino != cur):
            offset = 0
        lines, end = [], offset
        for start, stop, line in _lines_at(path, offset, ino if ino is not None else cur):
            if start < offset:  # the file was replaced or cut: read it whole
                lines, offset = [], 0
            end = stop
            if line is not None:
                lines.append(line)
        digest = hashlib.sha256(b"")
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                if os.fstat(fd).st_ino == cur:
                    at = max(0, end - HEAD_BYTES)
                    digest = hashlib.sha256(os.pread(fd, end - at, at))
            finally:
                os.close(fd)
        return _entries(lines), [cur, end, digest.hexdigest()]

    def holds(self, name: str, mark: Any) -> bool:
        """Whether `name` is still the file a checkpoint's `mark` ([inode, bytes, sha256 of the
        up to `HEAD_BYTES` bytes before them]) was taken of (None: no mark, nothing to hold)."""
        if mark is None:
            return True
        if not _file_mark(mark):
            return False
        if mark[1] == 0:
            return True  # nothing of it consumed
        try:
            fd = os.open(self.path / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_ino != mark[0] or st.st_size < mark[1]:
                return False
            at = max(0, mark[1] - HEAD_BYTES)
            return hashlib.sha256(os.pread(f.fileno(), mark[1] - at, at)).hexdigest() == mark[2]

    def _verified(self, seg: Path, at: Any) -> int:
        """The offset of `at` (the checkpoint's entry of segment `seg`) when the segment provably
        still holds what was consumed below it: the same inode, the sha256 of its first bytes
        (`head`, up to `HEAD_BYTES`) and of the last consumed line (`last`: [start, sha256], a
        whole line ending at the offset); else 0 (any doubt: the segment is read from its start)."""
        if not _segment_entry(at) or at["offset"] == 0:
            return 0
        try:
            fd = os.open(seg, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return 0
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            offset, (start, digest) = at["offset"], at["last"]
            if not stat.S_ISREG(st.st_mode) or st.st_ino != at["ino"] or st.st_size < offset:
                return 0
            if _head_digest(os.pread(f.fileno(), HEAD_BYTES, 0), offset) != at["head"]:
                return 0
            before = os.pread(f.fileno(), 1, start - 1) if start else b"\n"
            line = os.pread(f.fileno(), offset - start, start)
            if before != b"\n" or not line.endswith(b"\n") or hashlib.sha256(line).hexdigest() != digest:
                return 0
        return offset

    def fresh(self, checkpoint: dict, bad: list | None = None) -> tuple[list[dict], list]:
        """The valid snapshots past the checkpoint's offsets (first occurrence of each id read)
        and the marks `advance` needs: `[segment, inode, line end, ("id", id) | ("bad", sha256) |
        ("twin", sha256), line start, sha256 of the line]` per record read, in order; lines that
        are not valid records go to `bad`. A record whose id an earlier record of this read has
        with another document (ids collide) goes to `twins` (`{"segment", "line_sha256", "id",
        "snapshot"}`; the push sets it aside); one identical to it is the same snapshot stored
        twice, counted once. A segment whose entry is not proven (`_verified`) is read from its
        start and named in `reread`."""
        known = checkpoint.get("segments", {})
        seen: dict = {}
        out, marks = [], []
        self.twins: list = []
        self.reread: list = []
        self._from: dict = {}
        self._heads: dict = {}
        for seg in _segments(self.path):
            at = known.get(seg.name)
            offset = self._verified(seg, at)
            if offset == 0 and at is not None and not (_segment_entry(at) and at["offset"] == 0):
                self.reread.append(seg.name)
            ino = _inode(seg)
            self._from[seg.name] = (ino, offset)
            read = False
            for start, end, line in _lines_at(seg, offset, ino):
                read = True
                snap = _record(line)
                digest = None if line is None else hashlib.sha256(line).hexdigest()
                if snap is None:
                    if bad is not None:
                        bad.append((seg.name, line, start))
                    marks.append([seg.name, ino, end, ("bad", _bad_digest(seg.name, line, start)), start, digest])
                    continue
                first = seen.get(snap["id"])
                if first is not None and first != snap:
                    twin = _bad_digest(seg.name, line, start)
                    self.twins.append({"segment": seg.name, "line_sha256": twin, "id": snap["id"], "snapshot": snap})
                    marks.append([seg.name, ino, end, ("twin", twin), start, digest])
                    continue
                marks.append([seg.name, ino, end, ("id", snap["id"]), start, digest])
                if first is None:
                    seen[snap["id"]] = snap
                    out.append(snap)
            if read:  # the segment's first bytes, for the `head` fingerprint of its new offset
                with contextlib.suppress(OSError):
                    fd = os.open(seg, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    try:
                        if os.fstat(fd).st_ino == ino:
                            self._heads[seg.name] = os.pread(fd, HEAD_BYTES, 0)
                    finally:
                        os.close(fd)
        return out, marks

    def advance(self, checkpoint: dict, marks: list, consumed) -> tuple[dict, list]:
        """`{"spool", "segments": {name: {"ino", "offset", "bad", "head", "last"}}}`: per segment,
        the offset past the longest run of consumed records from the one `fresh` started at (a
        segment it read again from its start loses its old entry), with the fingerprints
        `_verified` checks; and the consumed tokens of the records read past the new offsets."""
        segments = {}
        for name, (ino, offset) in getattr(self, "_from", {}).items():
            at = checkpoint.get("segments", {}).get(name)
            if offset and _segment_entry(at) and at["ino"] == ino and at["offset"] == offset:
                segments[name] = dict(at)
        beyond, stuck = [], set()
        for name, ino, end, token, start, digest in marks:
            done = consumed(token)
            if name in stuck or not done:
                stuck.add(name)
                if done:
                    beyond.append(token)
                continue
            at = segments.get(name)
            head = self._heads.get(name)
            if digest is None or head is None or len(head) < min(end, HEAD_BYTES):
                stuck.add(name)  # no fingerprint for this line: the segment is read from here again
                beyond.append(token)
                continue
            if at is None or at["ino"] != ino or end <= at["offset"]:  # new, replaced or cut
                at = segments[name] = {"ino": ino, "offset": 0, "bad": 0}
            at.update(offset=end, bad=at["bad"] + (token[0] == "bad"), last=[start, digest],
                      head=_head_digest(head, end))  # fmt: skip
        return {"spool": _spool_identity(self.path), "segments": segments}, beyond

    def read_checkpoint(self) -> dict:
        """The checkpoint, if it was taken of this spool folder (`_spool_identity`), else {}."""
        ck = _load_checkpoint(self.path / CHECKPOINT)
        return ck if ck and ck.get("spool") == _spool_identity(self.path) else {}

    def write_checkpoint(self, doc: dict) -> None:
        """Replaced atomically (temporary file, fsync, rename, fsync of the folder)."""
        final = self.path / CHECKPOINT
        tmp = self.path / f".{CHECKPOINT}.{os.getpid()}"
        data = json.dumps(doc, separators=(",", ":")).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(self.path)

    def find(self, ids: set, match: Callable[[dict], bool] | None = None) -> list[dict]:
        """The snapshots of these ids still in the spool, the first of each id that `match` takes
        (an id alone may be two monitors': `of_window`); a whole read: only for windows whose
        point in MLflow predates window records."""
        seen, out = set(), []
        for seg in _segments(self.path):
            for line in _lines(seg):
                snap = _record(line)
                if (snap is not None and snap["id"] in ids and snap["id"] not in seen
                        and (match is None or match(snap))):  # fmt: skip
                    seen.add(snap["id"])
                    out.append(snap)
        return out

    def append(self, name: str, entry: dict) -> None:
        append_durably(self.path / name, (json.dumps(entry) + "\n").encode())

    def where(self, name: str) -> str:
        return str(self.path / name)

    def check(self) -> None:
        """Nothing to check: the lock is a flock, held until the process ends."""

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        fd = os.open(self.path / ".push.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _parse_object(body: bytes) -> dict:
    """The document of a snapshot stored as its own object (a bucket spool); raises if invalid."""
    return parse_snapshot(body, MAX_RECORD_BYTES)[1]


def open_source(where: str, args: argparse.Namespace, log) -> "LocalSource | bucket_spool.BucketSource":
    """push's source: a spool folder, or `s3://bucket/prefix` (FORMAT.md §4)."""
    if bucket_spool.is_bucket(where):
        return bucket_spool.BucketSource(where, args.s3_endpoint_url, _parse_object,
                                         lease_seconds=args.lease_seconds, log=log, cache=args.cache)  # fmt: skip
    if not Path(where).is_dir():
        raise FileNotFoundError(f"no spool at {where}")
    return LocalSource(Path(where))


# ---------------------------------------------------------------------------------------------
# serve
# ---------------------------------------------------------------------------------------------


def _token_of(request: Any) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-skedge-token") or request.query_params.get("token")


#: Limits of the collector's connections (README "Monitoring"): seconds to send a request's
#: headers (from the connection or the previous response), to send its body (skedge._http).
HEADER_TIMEOUT, BODY_TIMEOUT = _http.HEADER_SECONDS, _http.BODY_SECONDS


class RefusalLog:
    """Refused requests, logged at most once per `interval` seconds per (status, code): a wrong
    token shows in the collector's log at once, a client retrying it every second does not
    flood it. The lines say how many refusals of that kind were not shown since the last one."""

    def __init__(self, interval: float = 60.0, log=None):
        self.interval = interval
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.last: dict = {}  # (status, code) -> monotonic time of the last line
        self.quiet: dict = {}  # (status, code) -> refusals not shown since
        self.mutex = threading.Lock()

    def note(self, status: int, code: str, client: str, error: str) -> None:
        key = (status, code)
        now = time.monotonic()
        with self.mutex:
            if key in self.last and now - self.last[key] < self.interval:
                self.quiet[key] = self.quiet.get(key, 0) + 1
                return
            self.last[key] = now
            more = self.quiet.pop(key, 0)
        line = f"report.py serve: refused {status} {code} from {client}: {error[:300]}"
        if more:
            line += f" (and {more} more like it since the last such line)"
        self.log(line)

    def close(self) -> None:
        """The refusals not shown yet, one line per kind."""
        with self.mutex:
            quiet, self.quiet = self.quiet, {}
        for (status, code), n in sorted(quiet.items()):
            self.log(f"report.py serve: refused {status} {code}: {n} more not shown")


def make_app(spool: Spool, token: str, max_bytes: int = MAX_SNAPSHOT_BYTES, allow_origins=("*",),
             body_timeout: float = BODY_TIMEOUT, refusals: "RefusalLog | None" = None,
             clock_skew: float = CLOCK_SKEW_SECONDS):  # fmt: skip
    """The Starlette application of the collector."""
    refusals = refusals or RefusalLog()
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.concurrency import run_in_threadpool  # noqa: PLC0415
    from starlette.middleware import Middleware  # noqa: PLC0415
    from starlette.middleware.cors import CORSMiddleware  # noqa: PLC0415
    from starlette.responses import JSONResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    expected = token.encode("utf-8")

    def answer(status: int, **body: Any) -> JSONResponse:
        return JSONResponse(body, status_code=status)

    def refuse(request, status: int, code: str, error: str) -> JSONResponse:
        refusals.note(status, code, request.client.host if request.client else "?", error)
        return answer(status, code=code, error=error)

    async def post(request):
        given = _token_of(request)
        if not given:
            return refuse(request, 401, "TOKEN_MISSING", "missing token")
        if not hmac.compare_digest(given.encode("utf-8"), expected):
            return refuse(request, 401, "TOKEN_INVALID", "wrong token")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "text/plain"):
            return refuse(request, 415, "UNSUPPORTED_MEDIA_TYPE",
                          "send the snapshot as application/json (or text/plain)")  # fmt: skip
        too_large = f"snapshot larger than {max_bytes} bytes"
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return refuse(request, 400, "BAD_REQUEST", "bad Content-Length")
            if int(length) > max_bytes:
                return refuse(request, 413, "SNAPSHOT_TOO_LARGE", too_large)
        try:
            body = await _http.read_body(request, max_bytes, body_timeout)
        except _http.BodyTooLarge:
            return refuse(request, 413, "SNAPSHOT_TOO_LARGE", too_large)
        except _http.BodyTimeout as err:
            return refuse(request, 408, "BODY_TIMEOUT", str(err))
        try:
            snap, doc = parse_snapshot(body, max_bytes)
        except SnapshotError as err:
            code = {400: "NOT_JSON", 413: "SNAPSHOT_TOO_LARGE"}.get(err.status, "SNAPSHOT_INVALID")
            return refuse(request, err.status, code, str(err))
        ahead = snap.window.end_ms - time.time() * 1000
        if ahead > clock_skew * 1000:
            return refuse(request, 422, "CLOCK_SKEW", (
                f"the window ends {ahead / 1000:.0f} s after the collector's clock (at most {clock_skew:g} s "
                "ahead is accepted): set the device's clock"))  # fmt: skip
        try:
            stored = await run_in_threadpool(spool.store, snap, doc)
        except SpoolFull as err:  # the client keeps the snapshot and retries
            return refuse(request, 507, "SPOOL_FULL", f"the snapshot was not stored: {str(err)[:300]}")
        except bucket_spool.KeyTooLong as err:  # no retry can store it: refused, not 503
            return refuse(request, 422, "SNAPSHOT_KEY_TOO_LONG", f"the snapshot cannot be stored: {err}")
        except (bucket_spool.BucketError, OSError) as err:  # the client keeps the snapshot and retries
            return refuse(request, 503, "SPOOL_UNAVAILABLE", f"the snapshot was not stored: {str(err)[:300]}")
        if not stored:  # a retry of a delivered snapshot: normal, not logged
            return answer(409, id=snap.id, code="DUPLICATE", error="duplicate: this snapshot is already stored")
        return answer(201, id=snap.id, stored=True)

    async def health(request):
        if spool.full():
            return answer(507, ok=False, snapshots=len(spool), code="SPOOL_FULL",
                          error="the spool's disk is full: snapshots are refused until space is freed")  # fmt: skip
        return answer(200, ok=True, snapshots=len(spool))

    async def not_found(request, exc):
        return refuse(request, 404, "NOT_FOUND", "no such path: POST /v1/snapshots, GET /healthz")

    async def not_allowed(request, exc):
        return refuse(request, 405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        refusals.close()  # here: uvicorn ends the process by re-raising SIGTERM after shutdown

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/v1/snapshots", post, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=list(allow_origins),
                allow_methods=["POST"],
                allow_headers=["authorization", "content-type", "x-skedge-token"],
                max_age=600,
            )
        ],
    )


def serve(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("SKEDGE_COLLECTOR_TOKEN", "")
    if not token:
        print("report.py serve: a token is required (--token or SKEDGE_COLLECTOR_TOKEN)", file=sys.stderr)
        return EXIT_ERROR
    try:
        if bucket_spool.is_bucket(args.spool):
            spool = bucket_spool.BucketSpool(args.spool, args.s3_endpoint_url)
        else:
            spool = Spool(Path(args.spool), segment_bytes=args.segment_bytes)
    except (SpoolBusy, bucket_spool.BucketError) as err:
        print(f"report.py serve: {err}", file=sys.stderr)
        return EXIT_ERROR
    refusals = RefusalLog(args.refusal_log_interval)
    app = make_app(spool, token, args.max_bytes, tuple(args.allow_origin or ["*"]), args.body_timeout,
                   refusals, args.clock_skew_seconds)  # fmt: skip
    print(
        f"report.py serve: http://{args.host}:{args.port}/v1/snapshots -> {spool.path} "
        f"({len(spool)} snapshots known)",
        file=sys.stderr,
        flush=True,
    )
    try:
        _http.serve(app, args.host, args.port, header_seconds=args.header_timeout, write_seconds=args.write_timeout)
    finally:
        spool.close()
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Statistics and drift (the Rust `skedge::monitor` functions, in Python)
# ---------------------------------------------------------------------------------------------


def stats_kind(stats: dict) -> tuple[bool, bool]:
    """Which optional histograms a window has (confidence, oov): a model property, so windows of
    one model share it, and only windows of one kind add up (the Rust `Stats::merge`)."""
    return stats.get("confidence") is not None, stats.get("oov") is not None


def merge_stats(a: dict, b: dict) -> dict:
    """The aggregate of two windows' statistics; ValueError when their classes or kinds differ
    (a histogram present in one only would be divided by both counts)."""
    if len(a["label_counts"]) != len(b["label_counts"]) or stats_kind(a) != stats_kind(b):
        raise ValueError("statistics of different kinds cannot be merged")
    add = lambda x, y: [i + j for i, j in zip(x, y)]  # noqa: E731
    out = {
        "count": a["count"] + b["count"],
        "label_counts": add(a["label_counts"], b["label_counts"]),
        "confidence": None if a.get("confidence") is None else add(a["confidence"], b["confidence"]),
        "oov": None,
        "length": add(a["length"], b["length"]),
        "latency": a.get("latency"),
    }
    oa, ob = a.get("oov"), b.get("oov")
    if oa is not None:
        out["oov"] = {
            "counts": add(oa["counts"], ob["counts"]),
            "no_features": oa["no_features"] + ob["no_features"],
            "oov_features": oa["oov_features"] + ob["oov_features"],
            "total_features": oa["total_features"] + ob["total_features"],
        }
    la, lb = a.get("latency"), b.get("latency")
    if la is not None and lb is not None:
        out["latency"] = {
            "counts": add(la["counts"], lb["counts"]),
            "sum_ms": la["sum_ms"] + lb["sum_ms"],
            "max_ms": max(la["max_ms"], lb["max_ms"]),
        }
    else:
        out["latency"] = la or lb
    return out


def psi(expected: list | None, actual: list | None) -> float | None:
    """Population stability index, `sum((a - e) * ln(a / e))` over proportions floored at 1e-4."""
    if expected is None or actual is None or len(expected) != len(actual) or not expected:
        return None
    ne, na = sum(expected), sum(actual)
    if ne == 0 or na == 0:
        return None
    total = 0.0
    for e, a in zip(expected, actual):
        pe = max(e / ne, PSI_EPSILON)
        pa = max(a / na, PSI_EPSILON)
        total += (pa - pe) * math.log(pa / pe)
    return total


def oov_rate(stats: dict) -> float | None:
    o = stats.get("oov")
    if not o or not o["total_features"]:
        return None
    return o["oov_features"] / o["total_features"]


def drift(baseline: dict, current: dict) -> dict:
    """Drift of `current` against `baseline`: PSI per histogram and the pooled OOV-rate shift."""
    b_rate, c_rate = oov_rate(baseline), oov_rate(current)
    return {
        "label_psi": psi(baseline["label_counts"], current["label_counts"]),
        "confidence_psi": psi(baseline.get("confidence"), current.get("confidence")),
        "oov_psi": psi((baseline.get("oov") or {}).get("counts"), (current.get("oov") or {}).get("counts")),
        "oov_shift": None if b_rate is None or c_rate is None else c_rate - b_rate,
        "length_psi": psi(baseline["length"], current["length"]),
    }


@dataclass
class Thresholds:
    psi: float = 0.25
    oov_shift: float = 0.10
    min_samples: int = 50

    def check(self, d: dict, count: int) -> list[str]:
        """Readable reasons for an alert (empty: none)."""
        if count < self.min_samples:
            return []
        out = []
        for key in ("label_psi", "confidence_psi", "oov_psi"):
            v = d.get(key)
            if v is not None and v > self.psi:
                out.append(f"{key} {v:.3f} > {self.psi:g}")
        v = d.get("oov_shift")
        if v is not None and v > self.oov_shift:
            out.append(f"oov_shift {v:+.3f} > {self.oov_shift:g}")
        return out


# ---------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------


class PushError(Exception):
    """MLflow unreachable or failing: nothing lost, push again later (exit 2)."""


class WindowRefused(Exception):
    """MLflow refused this window's data (a 400: name, key or value it does not accept): the
    window is quarantined and the others are pushed."""


@dataclass
class Group:
    """The snapshots of one model version in one window."""

    name: str
    version: str
    sha256: str
    bucket: int
    snapshots: list = field(default_factory=list)

    @property
    def ids(self) -> list:
        return sorted(s["id"] for s in self.snapshots)


@dataclass
class ArmGroup(Group):
    """The experiment snapshots in which one model version was an arm, in one window: its part
    of each (it may have had several peers in a window, when an alias moved within it)."""

    def parts(self) -> Iterator[tuple[dict, dict]]:
        """(snapshot, this version's arm in it); `Pusher.conforming` has set aside the snapshots
        whose classes differ from the others'.

        A snapshot whose two arms are both this artifact (after a promotion both aliases name one
        version until a new challenger is set) is one part in shadow mode: the challenger arm
        scored the champion's texts again and was judged on the same labels, so its counts are
        the champion arm's counted twice. In canary mode each arm served its own keys (disjoint
        predictions and labels): both parts count."""
        for s in self.snapshots:
            mine = [a for a in s["arms"]
                    if (a["model"]["name"], a["model"]["version"], a["model"]["sha256"])
                    == (self.name, self.version, self.sha256)]  # fmt: skip
            if len(mine) > 1 and s["mode"] == "shadow":
                mine = mine[:1]
            for a in mine:
                yield s, a


PERFORMANCE_TAG = "skedge.performance_alert"
PEER_TAG = "skedge.experiment.last_peer"


def _peer_part() -> dict:
    return {"snapshots": 0, "served": 0, "count": 0, "correct": 0, "shadow": None}


def aggregate_arm(g: ArmGroup) -> dict:
    """One version's experiment window: served, feedback (count, correct, confusion) and, from
    shadow snapshots, the pair comparison with its peer(s); `peer` is the other arm of the
    snapshot whose window ended last. `by_peer` ("NAME/VERSION" of the other arm -> snapshots,
    served, count, correct, shadow pairs and agree) keeps the same counts per peer, so that a
    reader (`sync.py promote`) takes only the evidence of one pair. A snapshot counts once (its
    shadow pairs too) when both its arms are this artifact (`ArmGroup.parts`)."""
    classes = g.snapshots[0]["classes"]
    n = len(classes)
    out = {"classes": classes, "served": 0, "count": 0, "correct": 0, "confusion": [[0] * n for _ in range(n)],
           "shadow": None, "peer": None, "peer_end_ms": -1, "snapshots": 0, "dropped": 0, "by_peer": {}}  # fmt: skip
    last = -1
    counted: set = set()
    for s, a in g.parts():
        if s["classes"] != classes:
            raise ValueError("snapshots of different classes cannot be merged")
        other = s["arms"][1 if a is s["arms"][0] else 0]["model"]
        key = f"{other['name']}/{other['version']}"
        p = out["by_peer"].setdefault(key, _peer_part())
        f = a["feedback"]
        out["served"] += a["served"]
        p["served"] += a["served"]
        out["count"] += f["count"]
        p["count"] += f["count"]
        out["correct"] += f["correct"]
        p["correct"] += f["correct"]
        for i in range(n):
            for j in range(n):
                out["confusion"][i][j] += f["confusion"][i][j]
        if s["window"]["end_ms"] >= last:
            last = s["window"]["end_ms"]
            out["peer"] = key
            out["peer_end_ms"] = last
        if s["id"] in counted:
            continue  # the second arm of a canary snapshot of this artifact against itself
        counted.add(s["id"])
        out["snapshots"] += 1
        p["snapshots"] += 1
        out["dropped"] = max(out["dropped"], s["dropped"])
        sh = s.get("shadow")
        if sh is not None:
            t = out["shadow"] or {"pairs": 0, "agree": 0, "proba_pairs": 0, "sum_abs_dproba": 0.0,
                                  "max_abs_dproba": 0.0}  # fmt: skip
            t["pairs"] += sh["pairs"]
            t["agree"] += sh["agree"]
            t["proba_pairs"] += sh["proba_pairs"]
            t["sum_abs_dproba"] += sh["sum_abs_dproba"]
            t["max_abs_dproba"] = max(t["max_abs_dproba"], sh["max_abs_dproba"])
            out["shadow"] = t
            ps = p["shadow"] or {"pairs": 0, "agree": 0}
            p["shadow"] = {"pairs": ps["pairs"] + sh["pairs"], "agree": ps["agree"] + sh["agree"]}
    return out


def merge_by_peer(a: dict | None, b: dict | None) -> dict | None:
    """Two `by_peer` of one version and window over disjoint snapshots, added up; None when either
    is unknown (a record logged by a push from before per-peer evidence)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None
    out = {}
    for key in sorted(set(a) | set(b)):
        pa, pb = a.get(key) or _peer_part(), b.get(key) or _peer_part()
        p = {k: pa[k] + pb[k] for k in ("snapshots", "served", "count", "correct")}
        sa, sb = pa.get("shadow"), pb.get("shadow")
        p["shadow"] = (sa or sb) if sa is None or sb is None else {k: sa[k] + sb[k] for k in ("pairs", "agree")}
        out[key] = p
    return out


def merge_arm(a: dict, b: dict) -> dict:
    """Two `aggregate_arm` results of one version and window over disjoint snapshots, added up."""
    if a["classes"] != b["classes"]:
        raise ValueError("experiment windows of different classes cannot be merged")
    n = len(a["classes"])
    out = dict(a)
    for k in ("served", "count", "correct", "snapshots"):
        out[k] = a[k] + b[k]
    out["dropped"] = max(a.get("dropped", 0), b.get("dropped", 0))
    out["confusion"] = [[a["confusion"][i][j] + b["confusion"][i][j] for j in range(n)] for i in range(n)]
    if b["peer_end_ms"] >= a["peer_end_ms"]:
        out["peer"], out["peer_end_ms"] = b["peer"], b["peer_end_ms"]
    sa, sb = a["shadow"], b["shadow"]
    if sa is None or sb is None:
        out["shadow"] = sa or sb
    else:
        out["shadow"] = {k: sa[k] + sb[k] for k in ("pairs", "agree", "proba_pairs", "sum_abs_dproba")}
        out["shadow"]["max_abs_dproba"] = max(sa["max_abs_dproba"], sb["max_abs_dproba"])
    out["by_peer"] = merge_by_peer(a.get("by_peer"), b.get("by_peer"))
    return out


def f1_macro(confusion: list) -> float:
    """scikit-learn's `f1_score(y_true, y_pred, average="macro")` from `confusion[true][predicted]`:
    per class `2·tp / (true + predicted)`, averaged (numpy's mean) over the classes that occur in
    the true or the predicted labels (scikit-learn's default `labels`); a class with support but
    no prediction scores 0 (`zero_division="warn"`), one with neither is left out."""
    import numpy as np  # noqa: PLC0415

    n = len(confusion)
    scores = []
    for k in range(n):
        tp = confusion[k][k]
        true = sum(confusion[k])
        predicted = sum(confusion[i][k] for i in range(n))
        if true + predicted:
            scores.append((2.0 * np.float64(tp)) / (np.float64(true) + np.float64(predicted)))
    return float(np.mean(np.array(scores, dtype=np.float64)))


#: Per-peer metrics: `skedge.peer/<peer version>/<name>` (a peer of the same registered model).
PEER_METRIC = "skedge.peer/{version}/{name}"
#: How many peers a window's point has per-peer counts of (0 and up); a point without it was
#: logged by a push from before per-peer evidence (its counts may mix several peers).
PEERS_METRIC = "skedge.peers"
_PEER_VERSION = re.compile(r"[0-9A-Za-z_-]{1,100}")


def arm_metrics(agg: dict, name: str | None = None) -> dict:
    """The metrics one arm's run gets for one experiment window (README "Monitoring": the names
    `sync.py promote` reads). With `name` (the arm's registered model) and per-peer counts, also
    `skedge.peers` and, per peer of that model, `skedge.peer/<version>/served`,
    `.../feedback.count`, `.../feedback.correct` and in shadow mode `.../shadow.pairs`,
    `.../shadow.agree` (a peer version MLflow cannot take in a metric key is in the record only)."""
    m = {"skedge.served": agg["served"], "skedge.feedback.count": agg["count"],
         "skedge.feedback.correct": agg["correct"], "skedge.dropped": agg.get("dropped", 0)}  # fmt: skip
    if agg["count"]:
        m["skedge.feedback.accuracy"] = agg["correct"] / agg["count"]
        m["skedge.feedback.f1_macro"] = f1_macro(agg["confusion"])
    sh = agg["shadow"]
    if sh is not None:
        m["skedge.shadow.pairs"] = sh["pairs"]
        m["skedge.shadow.agree"] = sh["agree"]
        if sh["pairs"]:
            m["skedge.shadow.agreement"] = sh["agree"] / sh["pairs"]
        if sh["proba_pairs"]:
            m["skedge.shadow.mean_abs_dproba"] = sh["sum_abs_dproba"] / sh["proba_pairs"]
            m["skedge.shadow.max_abs_dproba"] = sh["max_abs_dproba"]
    by_peer = agg.get("by_peer")
    if name is not None and isinstance(by_peer, dict):
        m[PEERS_METRIC] = len(by_peer)
        for key, p in sorted(by_peer.items()):
            peer_name, _, version = key.rpartition("/")
            if peer_name != name or not _PEER_VERSION.fullmatch(version):
                continue
            values = {"served": p["served"], "feedback.count": p["count"], "feedback.correct": p["correct"]}
            if p.get("shadow") is not None:
                values.update({"shadow.pairs": p["shadow"]["pairs"], "shadow.agree": p["shadow"]["agree"]})
            m.update({PEER_METRIC.format(version=version, name=k): v for k, v in values.items()})
    return m


def latest_per_step(points: list) -> dict:
    """step -> value of the point with the latest timestamp (a revision replaces its window)."""
    latest: dict = {}
    for p in points:
        if p.step not in latest or p.timestamp >= latest[p.step][0]:
            latest[p.step] = (p.timestamp, p.value)
    return {step: v for step, (_, v) in latest.items()}


def experiment_figure(title: str, series: dict, window_ms: int):
    """Per-arm production accuracy and the shadow agreement per window (window end, UTC)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.dates as mdates  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(10, 5))
    when = lambda b: _dt.datetime.fromtimestamp((b + 1) * window_ms / 1000, _dt.timezone.utc)  # noqa: E731
    for label, points in series.items():
        if points:
            points = sorted(points.items())
            ax.plot([when(b) for b, _ in points], [v for _, v in points], marker="o",
                    linestyle="--" if label.startswith("agreement") else "-", label=label)  # fmt: skip
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("share")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


#: Run tag: the start (ms since the epoch) of the window logged at step 0 of the run; step N is
#: the window N windows later. Runs made before it log the window index since the epoch
#: (`window end // window length`) as the step: read as origin 0, they keep doing so.
STEP_ORIGIN_TAG = "skedge.step_origin_ms"
ALERT_TAG = "skedge.drift_alert"


@dataclass
class Run:
    """A monitoring run as push uses it: its step origin, params, and metric histories read."""

    run_id: str
    origin_ms: int
    params: dict
    history: dict = field(default_factory=dict)

    def step(self, bucket: int, window_ms: int) -> int:
        return bucket - self.origin_ms // window_ms


def model_id_of(mv) -> str | None:
    """The MLflow 3 LoggedModel id of a model version (None for older versions or none)."""
    if mv is None:
        return None
    return getattr(mv, "model_id", None) or registry._model_id_of_source(getattr(mv, "source", None))


def _ids(entry: dict) -> Iterator[str]:
    """The snapshot ids of a ledger or quarantine line (anything else in `"ids"` left out)."""
    ids = entry.get("ids")
    return (i for i in ids if isinstance(i, str)) if isinstance(ids, list) else iter(())


def of_window(s: dict, model: Any, bucket: int, window_ms: int) -> bool:
    """Whether snapshot `s` is of window `bucket` (of `window_ms`) of `model` (`{name, version,
    sha256}`, a ledger line's or a group's); an experiment snapshot: of one of its arms. An id alone
    does not tell: ids are `xxh64(instance, index)`, so two monitors started with the same seed in
    the same millisecond (a champion and its challenger) send the same ids."""
    if not isinstance(model, dict) or window_ms <= 0 or s["window"]["end_ms"] // window_ms != bucket:
        return False
    models = [a["model"] for a in s["arms"]] if is_experiment(s) else [s["model"]]
    return any(all(m[k] == model.get(k) for k in ("name", "version", "sha256")) for m in models)


def unevaluated(ledger: list) -> list:
    """Ledger entries of pushed windows whose drift is still to compute: the last revision of
    each window, logged when no artifact of its model was at hand (`"drift": false`, or no such
    field: a ledger written before drift was re-evaluated), and not evaluated since."""
    latest: dict = {}
    done = set()
    for e in ledger:
        run_id, bucket, revision = e.get("run_id"), e.get("bucket"), e.get("revision", 0)
        if not isinstance(run_id, str) or not isinstance(bucket, int) or not isinstance(revision, int):
            continue
        if e.get("kind") == "drift":
            done.add((run_id, bucket, revision))
        elif e.get("kind") is not None:
            continue  # an experiment window: no drift of its own
        elif (run_id, bucket) not in latest or revision >= latest[(run_id, bucket)].get("revision", 0):
            latest[(run_id, bucket)] = e
    return [e for (run_id, bucket), e in latest.items()
            if e.get("drift") is not True and (run_id, bucket, e.get("revision", 0)) not in done]  # fmt: skip


def consumed_objects(ledger: list, head: list, quarantined: list, partial: list) -> tuple[Callable, set, set]:
    """(consumed(key, ETag), the (key, ETag) of objects set aside, the experiment snapshot ids
    vouched for) of a bucket, from its whole `ledger`, the part `head` before the checkpoint's
    mark, its whole quarantine and the checkpoint's `partial` (`Pusher.consumed_key`, `compact`).
    An object is consumed by its id *and* its key's `<model>/<version>` folder, never by id alone
    (ids collide: two monitors), so that another document under an id already logged is read,
    and set aside: a monitoring object when a monitoring ledger line of its folder's model and
    version names its id; an experiment object (its folder: the champion's, `arms[0]`) when a
    ledger line before the mark names its id for that model and version (a snapshot logged for
    every arm has one for `arms[0]`) and `partial` does not; either when a quarantine line names
    its id for its folder (by the line's `model`, or a snapshot it holds; a line without a
    model: any folder)."""
    folders = {(_model_folder(e.get("model")), i) for e in ledger if e.get("kind") is None for i in _ids(e)}
    aside, anywhere = quarantined_folders(quarantined)
    bad_keys = {(e["segment"], e["etag"]) for e in quarantined
                if isinstance(e.get("segment"), str) and isinstance(e.get("etag"), str)}  # fmt: skip
    skip = {i for i in partial if isinstance(i, str)}
    arms = {(_model_folder(e.get("model")), i) for e in head if e.get("kind") == "experiment"
            for i in _ids(e) if i not in skip}  # fmt: skip
    vouched = {i for _, i in arms}

    def consumed(rel: str, etag: str) -> bool:
        if (rel, etag) in bad_keys:
            return True
        at = ("/".join(rel.split("/")[1:3]), bucket_spool.id_of(rel))
        if at[1] in anywhere or at in aside:
            return True
        return at in (folders if rel.startswith(bucket_spool.SNAPSHOTS) else arms)

    return consumed, bad_keys, vouched


def quarantined_folders(quarantined: list) -> tuple[set, set]:
    """({(key folder, id)} set aside, {ids set aside for any folder}) of quarantine lines: a line's
    `model` and `ids`, and the key folder of each snapshot it holds (an arm's window set aside
    names the arm's model; its snapshots' keys are their champion's); a line without a model: any."""
    aside = {(_model_folder(e.get("model")), i) for e in quarantined for i in _ids(e)}
    anywhere = {i for f, i in aside if f is None}
    aside |= {(_snapshot_folder(s), s["id"]) for e in quarantined
              for s in (e.get("snapshots") if isinstance(e.get("snapshots"), list) else ())
              if isinstance(s, dict) and isinstance(s.get("id"), str) and _snapshot_folder(s) is not None}  # fmt: skip
    return aside, anywhere


def _snapshot_folder(s: dict) -> str | None:
    """`<model>/<version>` of the key of a snapshot (an experiment snapshot's: its champion's)."""
    arms = s.get("arms")
    if isinstance(arms, list):
        return _model_folder(arms[0].get("model")) if arms and isinstance(arms[0], dict) else None
    return _model_folder(s.get("model"))


def _model_folder(model: Any) -> str | None:
    """`<model>/<version>` of a bucket key, from a ledger or quarantine line's `model`."""
    if not (isinstance(model, dict) and isinstance(model.get("name"), str) and isinstance(model.get("version"), str)):
        return None
    return f"{bucket_spool.segment(model['name'])}/{bucket_spool.segment(model['version'])}"


def pending_entry(e: dict) -> dict:
    """What a checkpoint keeps of a window waiting for its drift (no ids: its drift is computed
    from the point's record in MLflow)."""
    m = e.get("model")
    return {"run_id": e.get("run_id"), "bucket": e.get("bucket"), "revision": e.get("revision", 0),
            "window_seconds": e.get("window_seconds"),
            "model": {k: m.get(k) for k in ("name", "version", "sha256")} if isinstance(m, dict) else None}  # fmt: skip


#: Characters a class name keeps in its metric key; every other one is escaped.
_KEY_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
#: Longest escaped label kept whole in a key (MLflow keys are at most 250 characters).
_KEY_LABEL_MAX = 200


def escape_label(label: str) -> str:
    """A class name as a metric-key component, without collisions: `-` plus two uppercase hex
    digits for each UTF-8 byte of every character outside `[A-Za-z0-9_]` (`-` itself included),
    so `a?` is `a-3F` and `a!` is `a-21`. A result over 200 characters keeps its first 180 and
    `--` plus 16 hex digits of the label's sha256 (`--` never occurs in an escape)."""
    out = "".join(
        c if c in _KEY_SAFE else "".join(f"-{b:02X}" for b in c.encode("utf-8")) for c in label
    )
    if len(out) > _KEY_LABEL_MAX:
        digest = hashlib.sha256(label.encode("utf-8")).hexdigest()[:16]
        out = f"{out[:180]}--{digest}"
    return out


def record_path(kind: str, bucket: int, ts: int) -> str:
    """Where the record of a window's point at timestamp `ts` is kept in its run's artifacts
    (`kind`: "window" for monitoring windows, "experiment" for an arm's experiment windows)."""
    return f"skedge/{kind}/{bucket}/{ts}.json"


def _iso(ms: int) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def aggregate(snaps: list) -> tuple[dict, int, list]:
    """Merged stats, predictions seen and classes of snapshots of one model; ValueError when their
    classes or kinds differ (`Pusher.conforming` sets such snapshots aside first)."""
    classes = snaps[0]["classes"]
    stats = None
    seen = 0
    for s in snaps:
        if s["classes"] != classes:
            raise ValueError("snapshots of different classes cannot be merged")
        stats = s["stats"] if stats is None else merge_stats(stats, s["stats"])
        seen += s["seen"]
    return stats, seen, classes


def nonconforming(snaps: list, classes: list | None) -> dict:
    """id -> why, for the snapshots that cannot be aggregated with the others of their model
    version: `classes` other than the artifact's (`classes`; without the artifact, those most
    snapshots have), or statistics of another kind than most have. Ties go to the earliest
    arrival. Experiment snapshots are judged on their arms' statistics."""

    def kinds(s: dict) -> tuple:
        return tuple(stats_kind(a["stats"]) for a in s["arms"]) if is_experiment(s) else stats_kind(s["stats"])

    def majority(values: list):
        counts: dict = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        return max(counts, key=lambda v: (counts[v], -values.index(v)))

    want = tuple(classes) if classes is not None else majority([tuple(s["classes"]) for s in snaps])
    odd = {s["id"]: f"classes {s['classes'][:8]} differ from the model version's {list(want)[:8]}"
           for s in snaps if tuple(s["classes"]) != want}  # fmt: skip
    rest = [s for s in snaps if s["id"] not in odd]
    if rest:
        kind = majority([kinds(s) for s in rest])
        for s in rest:
            if kinds(s) != kind:
                odd[s["id"]] = ("statistics of another kind (confidence or oov present where most "
                                "snapshots of the model version have null, or the reverse)")  # fmt: skip
    return odd


def window_metrics(stats: dict, seen: int, n_snapshots: int, classes: list, d: dict | None) -> dict:
    """The metrics logged for one window."""
    m = {"seen": seen, "sampled": stats["count"], "snapshots": n_snapshots}
    total = stats["count"] or 1
    for label, c in zip(classes, stats["label_counts"]):
        m[f"label_share.{escape_label(label)}"] = c / total
    conf = stats.get("confidence")
    if conf is not None and stats["count"]:
        m["confidence_mean"] = sum((i + 0.5) / CONFIDENCE_BINS * c for i, c in enumerate(conf)) / total
        m["low_confidence_share"] = sum(conf[:6]) / total
    rate = oov_rate(stats)
    if rate is not None:
        m["oov_rate"] = rate
        m["no_feature_share"] = stats["oov"]["no_features"] / total
    lat = stats.get("latency")
    if lat is not None and sum(lat["counts"]) and math.isfinite(lat["sum_ms"]):
        m["latency_mean_ms"] = lat["sum_ms"] / sum(lat["counts"])
        m["latency_max_ms"] = lat["max_ms"]
    if d is not None:
        for key in ("label_psi", "confidence_psi", "oov_psi", "length_psi", "oov_shift"):
            if d.get(key) is not None:
                m[f"drift.{key}"] = d[key]
    return m


def read_baseline(artifact: Path, skedge_monitor: Path) -> dict:
    """{"sha256", "name", "version", "classes", "baseline"} of an artifact."""
    proc = subprocess.run(
        [str(skedge_monitor), "baseline", str(artifact)], capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{skedge_monitor} baseline {artifact} failed: "
            f"{proc.stderr.decode('utf-8', 'replace').strip()}"
        )
    return json.loads(proc.stdout)


def drift_figure(group: Group, stats: dict, seen: int, classes: list, baseline: dict | None,
                 d: dict | None, history: dict, window_ms: int, psi_threshold: float = 0.25):  # fmt: skip
    """Baseline against the window (labels, confidence, OOV rate) and the PSIs per window."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    start = group.bucket * window_ms
    fig.suptitle(
        f"{group.name} v{group.version} (sha256 {group.sha256[:12]}…), "
        f"{_iso(start)} – {_iso(start + window_ms)}: {stats['count']} sampled of {seen}",
        fontsize=11,
    )

    def bars(ax, names, base, cur, what, key):
        x = np.arange(len(names))
        w = 0.4
        if base is not None and sum(base):
            ax.bar(x - w / 2, [b / sum(base) for b in base], w, label="baseline (validation)", color="#9aa5b1")
        if cur is not None and sum(cur):
            ax.bar(x + w / 2, [c / sum(cur) for c in cur], w, label="production", color="#d9480f")
        ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, fontsize=8)
        ax.set_ylabel("share")
        title = what
        if d is not None and d.get(key) is not None:
            title += f" — PSI {d[key]:.3f}"
        if key == "oov_psi" and d is not None and d.get("oov_shift") is not None:
            title += f", rate shift {d['oov_shift']:+.3f}"
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)

    b = baseline or {}
    bars(axes[0][0], [str(c) for c in classes], b.get("label_counts"), stats["label_counts"],
         "predicted label", "label_psi")  # fmt: skip
    edges = [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)]
    bars(axes[0][1], edges, b.get("confidence"), stats.get("confidence"), "confidence (max proba)",
         "confidence_psi")  # fmt: skip
    bars(axes[1][0], edges, (b.get("oov") or {}).get("counts"), (stats.get("oov") or {}).get("counts"),
         "out-of-vocabulary rate per text", "oov_psi")  # fmt: skip
    ax = axes[1][1]
    import matplotlib.dates as mdates  # noqa: PLC0415

    when = lambda step: _dt.datetime.fromtimestamp((step + 1) * window_ms / 1000, _dt.timezone.utc)  # noqa: E731
    steps = set()
    for key in ("label_psi", "confidence_psi", "oov_psi"):
        series = sorted(history.get(key) or [])
        if series:
            steps.update(st for st, _ in series)
            ax.plot([when(st) for st, _ in series], [max(v, 1e-4) for _, v in series], marker="o", label=key)
    if steps:
        pad = _dt.timedelta(milliseconds=window_ms)
        ax.set_xlim(when(min(steps)) - pad, when(max(steps)) + pad)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.axhline(psi_threshold, color="#c92a2a", linestyle="--", linewidth=0.8, label="alert threshold")
    ax.set_yscale("log")
    ax.set_title("PSI per window (window end, UTC)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


class Pusher:
    def __init__(self, args: argparse.Namespace, source: "LocalSource | bucket_spool.BucketSource", log=print):
        self.source = source
        self.tracking_uri = registry.resolve_tracking_uri(args.tracking_uri)
        self.window_ms = int(args.window_seconds * 1000)
        self.grace_ms = int(args.grace_seconds * 1000)
        self.skew_ms = int(getattr(args, "clock_skew_seconds", CLOCK_SKEW_SECONDS) * 1000)
        self.close_all = args.close_all
        self.experiment = args.experiment
        self.thresholds = Thresholds(args.psi_threshold, args.oov_shift_threshold, args.min_samples)
        self.skedge_monitor = Path(args.skedge_monitor)
        self.plot_dir = Path(args.save_plots) if args.save_plots else None
        self.log = log
        self.baselines: dict = {}
        for a in args.artifact or []:
            info = read_baseline(Path(a), self.skedge_monitor)
            self.baselines[info["sha256"]] = dict(info, source=Path(a).resolve().as_uri())
        self.client = None
        self.runs: dict = {}  # run id -> Run
        self.versions: dict = {}  # (name, version) -> model version or None, read once per push
        self.warned: set = set()
        self.snapshots: dict = {}  # id -> valid snapshot document of the spool
        self.reevaluated = 0  # pushed windows whose drift this push computed
        self.performance_threshold = args.performance_threshold
        self.reference_metric = args.reference_metric
        self.min_feedback = args.min_feedback
        self.references: dict = {}  # (name, version) -> its reference metric or None
        self.arm_runs: dict = {}  # (name, version) -> (run, group, peer) of experiment windows logged
        # What this push read past the checkpoint (`groups`): the checkpoint, the marks of the
        # records read, and the ledger and quarantine lines appended since (this push's too).
        self.ck: dict = {}
        self.marks: list = []
        self.ledger_tail: list = []
        self.quarantine_tail: list = []
        self.done: set = set()
        # A bucket's ledger and quarantine lines before the checkpoint's marks (read whole anyway,
        # they say what is consumed: `consumed_key`), the experiment snapshot ids they vouch for,
        # and the objects set aside as not snapshots, by key and ETag.
        self.ledger_head: list = []
        self.quarantine_head: list = []
        self.vouched: set = set()
        self.bad_keys: set = set()

    # -- MLflow ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def mlflow_errors(self, doing: str):
        try:
            yield
        except (PushError, WindowRefused):
            raise
        except registry.RegistryError as err:
            raise PushError(str(err)) from None
        except Exception as err:  # MlflowException, requests and sqlalchemy errors
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            if getattr(err, "error_code", "") == "INVALID_PARAMETER_VALUE":
                raise WindowRefused(f"MLflow refused it while {doing}: {first}") from None
            raise PushError(
                f"MLflow at {registry.redact_uri(self.tracking_uri)} failed while {doing}: {first}"
            ) from err

    def connect(self) -> None:
        try:
            registry.check_reachable(self.tracking_uri)
        except registry.RegistryError as err:
            raise PushError(str(err)) from None
        self.client = registry.client(self.tracking_uri)
        with self.mlflow_errors(f"opening experiment {self.experiment!r}"):
            self.experiment_id = registry.ensure_experiment(self.experiment, self.tracking_uri)

    def model_version(self, name: str, version: str, fresh: bool = False):
        """The registered model version (None when there is none), read once per push unless
        `fresh` (its tags change as push sets and clears alerts)."""
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        if not name or not version:
            return None
        if fresh or (name, version) not in self.versions:
            with self.mlflow_errors(f"reading model version {name} {version}"):
                try:
                    self.versions[(name, version)] = self.client.get_model_version(name, version)
                except MlflowException as err:
                    if getattr(err, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                        raise
                    self.versions[(name, version)] = None
        return self.versions[(name, version)]

    def baseline_for(self, g: Group, mv) -> dict | None:
        """The artifact of `g`'s sha256 as `read_baseline` gives it, plus `"source"` (where it
        was read); None when no artifact of that sha256 is at hand (`--artifact` or registry)."""
        if g.sha256 in self.baselines:
            return self.baselines[g.sha256]
        info = None
        tags = (mv.tags or {}) if mv is not None else {}
        if tags.get("skedge.sha256") == g.sha256:
            source = f"models:/{g.name}/{g.version}"
            with tempfile.TemporaryDirectory(prefix="skedge-report-") as tmp:
                out = Path(tmp) / "model.skedge"
                with self.mlflow_errors(f"downloading the artifact of {g.name} version {g.version}"):
                    registry.restore(source, out, self.tracking_uri)
                info = dict(read_baseline(out, self.skedge_monitor), source=source)
        elif mv is not None and tags.get("skedge.sha256"):
            self.log(
                f"warning: {g.name} version {g.version} was exported as sha256 "
                f"{tags['skedge.sha256'][:12]}..., but the edge runs {g.sha256[:12]}...: "
                "no baseline (pass --artifact)"
            )
        self.baselines[g.sha256] = info
        return info

    def warn_once(self, key: Any, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.log(message)

    def run_for(self, g: Group, mv) -> Run:
        """The monitoring run of `g`'s model version and window length, created at its first
        window (which becomes its step 0)."""
        tags = {
            "skedge.monitoring": "true",
            "skedge.model_name": g.name,
            "skedge.model_version": g.version,
            "skedge.sha256": g.sha256,
            "skedge.window_seconds": str(self.window_ms / 1000),
        }
        # MLflow's filter strings have no escape: a value is quoted with a quote it does not hold,
        # one holding both is left to the match below. So every page is read (no first few runs
        # that others sharing the remaining tags could fill): a run missed is a split history.
        quoted = {k: next((f"{q}{v}{q}" for q in "'\"" if q not in v), None) for k, v in tags.items()}
        filt = " and ".join(f"tags.`{k}` = {q}" for k, q in quoted.items() if q is not None)
        with self.mlflow_errors(f"finding the monitoring run of {g.name} version {g.version}"):
            token = None
            while True:
                page = self.client.search_runs([self.experiment_id], filter_string=filt, max_results=1000,
                                               page_token=token, order_by=["attributes.start_time ASC"])  # fmt: skip
                found = next((r for r in page if all(r.data.tags.get(k) == v for k, v in tags.items())), None)
                if found is not None:
                    return self.run_of(found)
                token = page.token
                if not token:
                    break
            if mv is not None:
                tags["skedge.model_version_run_id"] = mv.run_id or ""
                if model_id_of(mv):
                    tags["skedge.model_id"] = model_id_of(mv)
            tags[STEP_ORIGIN_TAG] = str(g.bucket * self.window_ms)
            run = self.client.create_run(
                self.experiment_id,
                run_name=f"monitor-{g.name or 'model'}-v{g.version or '?'}-{g.sha256[:8]}",
                tags=tags,
            )
            run_id = run.info.run_id
            self.client.set_terminated(run_id, "FINISHED")
            if mv is not None:
                self.client.set_model_version_tag(g.name, g.version, "skedge.monitoring_run_id", run_id)
            return self.run_of(self.client.get_run(run_id))

    def run_of(self, run) -> Run:
        """What push keeps of an MLflow run (cached: its params are read once)."""
        run_id = run.info.run_id
        if run_id not in self.runs:
            origin = run.data.tags.get(STEP_ORIGIN_TAG)
            self.runs[run_id] = Run(run_id, int(origin) if origin and origin.isdigit() else 0,
                                    dict(run.data.params))  # fmt: skip
        return self.runs[run_id]

    def get_run(self, run_id: str) -> Run | None:
        """The run of that id; None when MLflow no longer has it (deleted for good)."""
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        if run_id not in self.runs:
            with self.mlflow_errors(f"reading run {run_id}"):
                try:
                    self.run_of(self.client.get_run(run_id))
                except MlflowException as err:
                    if getattr(err, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                        raise
                    return None
        return self.runs[run_id]

    def history(self, run: Run, key: str) -> list:
        """The metric history of `key` in `run`, read once per push (updated as push logs)."""
        if key not in run.history:
            with self.mlflow_errors(f"reading the metric history of run {run.run_id}"):
                run.history[key] = list(self.client.get_metric_history(run.run_id, key))
        return run.history[key]

    def log_params(self, g: Group, run: Run, info: dict | None) -> None:
        """The thresholds, the window length and the baseline's source as params of the run.
        MLflow params cannot change: a push with other thresholds says so and keeps them."""
        wanted = {
            "psi_threshold": f"{self.thresholds.psi:g}",
            "oov_shift_threshold": f"{self.thresholds.oov_shift:g}",
            "min_samples": str(self.thresholds.min_samples),
            "window_seconds": f"{self.window_ms / 1000:g}",
        }
        if info is not None and info.get("baseline") is not None:
            wanted["baseline.source"] = info["source"]
            wanted["baseline.texts"] = str(info["baseline"]["count"])
        fresh = {k: v for k, v in wanted.items() if k not in run.params}
        for k, v in wanted.items():
            if k in run.params and run.params[k] != v and not k.startswith("baseline."):
                self.warn_once(("param", run.run_id, k), (
                    f"warning: run {run.run_id} was started with {k} {run.params[k]}, this push uses {v} "
                    "(MLflow params cannot change; the alert tags name the threshold applied)"))  # fmt: skip
        if fresh:
            from mlflow.entities import Param  # noqa: PLC0415

            with self.mlflow_errors(f"logging the params of run {run.run_id}"):
                self.client.log_batch(run.run_id, params=[Param(k, v) for k, v in fresh.items()])
            run.params.update(fresh)

    def log_metrics(self, g: Group, run: Run, mv, metrics: dict, step: int, ts: int, tags=()) -> None:
        """Metrics at (step, ts) in the run, linked to the version's LoggedModel when it has one."""
        from mlflow.entities import Metric  # noqa: PLC0415

        model_id = model_id_of(mv)
        batch = [Metric(k, float(v), ts, step, model_id=model_id) for k, v in metrics.items()]
        with self.mlflow_errors(f"logging window {g.bucket} to run {run.run_id}"):
            try:
                self.client.log_batch(run.run_id, metrics=batch, tags=list(tags))
            except Exception as err:
                if model_id is None:
                    raise
                batch = [Metric(k, float(v), ts, step) for k, v in metrics.items()]
                self.client.log_batch(run.run_id, metrics=batch, tags=list(tags))
                self.warn_once(("model_id", model_id), (
                    f"warning: MLflow did not link the metrics to the logged model {model_id} "
                    f"({str(err).strip()[:200]}): they are in run {run.run_id} only"))  # fmt: skip
        for m in batch:
            if m.key in run.history:
                run.history[m.key].append(m)

    def later_window(self, run: Run, key: str, step: int) -> bool:
        """Whether the run has a window after `step` in `key`'s history. A point beyond this
        push's clock (+ --clock-skew-seconds) does not count: a device clock set in the future,
        pushed before that was refused, must not hold the run's alert tags for ever."""
        horizon = int(time.time() * 1000) + self.skew_ms
        return any(m.step > step and m.timestamp <= horizon for m in self.history(run, key))

    def settle_alert(self, g: Group, run: Run, step: int, reasons: list, healthy: bool, message: str) -> bool:
        """Sets `skedge.drift_alert` on the run and the model version when the window alerts;
        removes it when the window is healthy. Only the run's latest window moves the tags: a
        late revision of an older one must not undo (or redo) what a newer one settled. True
        when the alert is set."""
        if self.later_window(run, "sampled", step):
            return False
        if reasons:
            with self.mlflow_errors(f"tagging {g.name} version {g.version}"):
                self.client.set_tag(run.run_id, ALERT_TAG, message[:5000])
                if g.name and g.version and self.model_version(g.name, g.version) is not None:
                    self.client.set_model_version_tag(g.name, g.version, ALERT_TAG, message[:5000])
            return True
        if not healthy:
            return False
        cleared = []
        with self.mlflow_errors(f"clearing the drift alert of {g.name} version {g.version}"):
            if ALERT_TAG in self.client.get_run(run.run_id).data.tags:
                self.client.delete_tag(run.run_id, ALERT_TAG)
                cleared.append(f"run {run.run_id}")
            mv = self.model_version(g.name, g.version, fresh=True)
            if mv is not None and ALERT_TAG in (mv.tags or {}):
                self.client.delete_model_version_tag(g.name, g.version, ALERT_TAG)
                cleared.append(f"{g.name} version {g.version}")
        if cleared:
            self.log(f"cleared {ALERT_TAG} of {' and '.join(cleared)}: window "
                     f"{_iso(g.bucket * self.window_ms)}–{_iso((g.bucket + 1) * self.window_ms)} is healthy")  # fmt: skip
        return False

    def evaluate(self, g: Group, mv, stats: dict) -> tuple[dict | None, dict | None, list, bool]:
        """(artifact info, drift, alert reasons, healthy) of a window: healthy when drift was
        computed on at least --min-samples sampled predictions and nothing passed a threshold."""
        info = self.baseline_for(g, mv)
        baseline = (info or {}).get("baseline")
        d = None
        if baseline is not None and len(baseline["label_counts"]) == len(stats["label_counts"]):
            d = drift(baseline, stats)
        elif info is None:
            self.warn_once(("no baseline", g.sha256), (
                f"note: no drift baseline for {g.name} version {g.version} (sha256 {g.sha256[:12]}...): drift "
                "not computed; it will be when a push finds the artifact (--artifact, or published in MLflow)"))  # fmt: skip
        reasons = self.thresholds.check(d or {}, stats["count"])
        healthy = d is not None and not reasons and stats["count"] >= self.thresholds.min_samples
        return info, d, reasons, healthy

    def warn_unlinked(self, g: Group, mv) -> None:
        if mv is not None:
            return
        if not g.name or not g.version:
            why = "an artifact with no registry version (exported from a file)"
        else:
            why = f"version {g.version}, which the model registry does not have"
        self.warn_once(("unlinked", g.name, g.version, g.sha256), (
            f"warning: {g.name!r} runs {why}: its windows go to a monitoring run linked to no model "
            f"version, and a drift alert is set on that run only (export through the registry to link them)"))  # fmt: skip

    # -- the push ---------------------------------------------------------------------------

    # -- quarantine -------------------------------------------------------------------------

    def quarantine(self, reason: str, **what: Any) -> None:
        """Set something aside in `DIR/quarantine.jsonl` (the spool itself is never changed):
        a spool line that is not a valid record, or a window MLflow refused."""
        entry = {"quarantined_ms": int(time.time() * 1000), "reason": reason, **what}
        self.source.append(QUARANTINE, entry)
        self.quarantine_tail.append(entry)

    def quarantine_lines(self, bad: list) -> None:
        """Spool lines (segment, line or None, byte offset) that are not valid snapshot records,
        each set aside once (an over-long one named by its segment and offset: `_bad_digest`)."""
        known = self.done | {e.get("line_sha256") for e in self.quarantine_tail}
        fresh = 0
        for segment, line, *at in bad:
            digest = _bad_digest(segment, line, at[0] if at else 0)
            # a bucket object (its ETag at[1]) is set aside once by key and ETag, which is how the
            # next push knows it consumed without reading it (`consumed_key`)
            etag = at[1] if len(at) > 1 and isinstance(at[1], str) else None
            if ((segment, etag) in self.bad_keys) if etag is not None else (digest in known):
                continue
            shown = None if line is None else line[:4096].decode("utf-8", "replace")
            what = {"segment": segment, "line_sha256": digest, "line": shown}
            if etag is not None:
                what["etag"] = etag
                self.bad_keys.add((segment, etag))
            self.quarantine("not a valid snapshot record", **what)
            known.add(digest)
            fresh += 1
        if fresh:
            self.log(f"quarantined {fresh} spool line(s) that are not valid snapshots "
                     f"(see {self.source.where(QUARANTINE)})")  # fmt: skip

    def quarantine_twins(self, twins: list) -> set:
        """Sets aside the snapshots whose id another, different document has (`twins`: from the
        source's read, or `groups`: logged for another model), each once, with its document and
        `duplicate_of` (not `ids`: that would set the other document aside too); by key and ETag
        in a bucket, by the sha256 of its line in a folder. Returns the ids set aside so."""
        known = self.done | {e.get("line_sha256") for e in self.quarantine_tail}
        out, objects = set(), 0
        for t in twins:
            etag = t.get("etag")
            if ((t["segment"], etag) in self.bad_keys) if etag is not None else (t["line_sha256"] in known):
                continue
            what = {k: t[k] for k in ("segment", "line_sha256") if t.get(k) is not None}
            if etag is not None:
                what["etag"] = etag
                self.bad_keys.add((t["segment"], etag))
            s = t["snapshot"]
            model = s["arms"][0]["model"] if is_experiment(s) else s["model"]
            self.quarantine(f"snapshot id {t['id']} is also another, different snapshot's ({t['why']}): ids collide "
                            "(two monitors); this one is not pushed", duplicate_of=t["id"], model=model, snapshot=s,
                            **what)  # fmt: skip
            known.add(t["line_sha256"])
            out.add(t["id"])
            objects += 1
        if out:
            # snapshots as set aside (objects, lines), not ids: several can share an id
            self.log(f"quarantined {objects} snapshot(s) whose id another, different snapshot has "
                     f"({len(out)} id(s); see {self.source.where(QUARANTINE)})")  # fmt: skip
        return out

    def quarantine_window(self, g: Group, reason: str) -> None:
        self.quarantine(reason, model={"name": g.name, "version": g.version, "sha256": g.sha256},
                        bucket=g.bucket, ids=g.ids, snapshots=g.snapshots)  # fmt: skip
        self.log(f"quarantined window {g.bucket} of {g.name!r} v{g.version!r} ({len(g.ids)} "
                 f"snapshot(s)): {reason}")  # fmt: skip

    def quarantine_snapshots(self, g: Group, odd: dict) -> None:
        """Set aside some snapshots of `g` (id -> why), one quarantine line per reason."""
        by_reason: dict = {}
        for s in g.snapshots:
            if s["id"] in odd:
                by_reason.setdefault(odd[s["id"]], []).append(s)
        for reason, snaps in by_reason.items():
            self.quarantine(reason, model={"name": g.name, "version": g.version, "sha256": g.sha256},
                            bucket=g.bucket, ids=sorted(s["id"] for s in snaps), snapshots=snaps)  # fmt: skip
            self.log(f"quarantined {len(snaps)} snapshot(s) of window {g.bucket} of {g.name!r} v{g.version!r}: "
                     f"{reason}")  # fmt: skip
        g.snapshots = [s for s in g.snapshots if s["id"] not in odd]

    def conforming(self, g: Group, info: dict | None) -> bool:
        """Sets aside the snapshots of `g` that cannot be aggregated with the others (`nonconforming`:
        classes other than the artifact's, or another kind of statistics), so that they neither hide
        the rest of the window nor count as pushed; False when none is left."""
        odd = nonconforming(g.snapshots, (info or {}).get("classes"))
        if odd:
            self.quarantine_snapshots(g, odd)
        return bool(g.snapshots)

    def future(self, snaps: list, done: set) -> set:
        """Sets aside the snapshots not pushed yet whose window ends after this push's clock +
        --clock-skew-seconds (a device clock set ahead: such a window would wait "open" for ever,
        and once pushed be its run's latest window); their ids."""
        horizon = int(time.time() * 1000) + self.skew_ms
        ahead = [s for s in snaps if s["window"]["end_ms"] > horizon and s["id"] not in done]
        for s in ahead:
            m = s["arms"][0]["model"] if is_experiment(s) else s["model"]
            g = Group(m["name"], m["version"], m["sha256"], s["window"]["end_ms"] // self.window_ms, [s])
            self.quarantine_snapshots(g, {s["id"]: (
                f"the window ends at {s['window']['end_ms']} ms, more than --clock-skew-seconds "
                f"{self.skew_ms / 1000:g} after this push's clock: the device's clock is ahead")})  # fmt: skip
        return {s["id"] for s in ahead}

    def groups(self) -> tuple[list, int]:
        """Windows with snapshots not yet pushed (eligible ones) and the count of open ones. Only
        what is past the checkpoint is read (`source.fresh`: the spool's records not known to be
        consumed; `source.tail`: the ledger and quarantine lines appended since), and a window
        holds only its snapshots not pushed yet: what MLflow has of it is in its point's record
        (`plan`), which a revision adds them to."""
        self.ck = checked_checkpoint(self.source.read_checkpoint())
        if self.ck and not all(self.source.holds(name, self.ck.get(key))
                               for name, key in ((LEDGER, "ledger"), (QUARANTINE, "quarantine"))):  # fmt: skip
            # the ledger or the quarantine was cut or replaced since: what the checkpoint says
            # consumed may no longer be recorded there, so everything is read again
            self.log(f"{self.source.where(LEDGER)} or {QUARANTINE} is shorter than, or not, the one the checkpoint "
                     "was taken of: the checkpoint is ignored (what it says consumed is read again)")  # fmt: skip
            self.ck = {}
        bad: list = []
        whole = getattr(self.source, "whole_ledger", False)
        if whole:
            # a bucket: its ledger and quarantine, read whole anyway, say what is consumed (by
            # key), so nothing per object is kept in the checkpoint (skedge/spool.py)
            self.ledger_head = self.source.head(LEDGER, self.ck.get("ledger"))
            self.quarantine_head = self.source.head(QUARANTINE, self.ck.get("quarantine"))
            self.ledger_tail, _ = self.source.tail(LEDGER, self.ck.get("ledger"))
            self.quarantine_tail, _ = self.source.tail(QUARANTINE, self.ck.get("quarantine"))
            snaps, self.marks = self.source.fresh(self.ck, bad, self.consumed_key())
            self.done = {x for e in self.quarantine_head
                         for x in [*_ids(e), e.get("line_sha256")] if isinstance(x, str)}  # fmt: skip
        else:
            snaps, self.marks = self.source.fresh(self.ck, bad)
            reread = getattr(self.source, "reread", [])
            if self.ck and reread:
                # records consumed long ago are read again: the whole ledger and quarantine tell
                # which are logged or set aside (and which bad lines are quarantined already)
                self.log(f"{', '.join(reread[:5])}{' …' if len(reread) > 5 else ''}: not what the checkpoint "
                         "recorded as consumed (changed since), read again whole")  # fmt: skip
                self.ck = {**self.ck, "ledger": None, "quarantine": None}
            self.ledger_tail, _ = self.source.tail(LEDGER, self.ck.get("ledger"))
            self.quarantine_tail, _ = self.source.tail(QUARANTINE, self.ck.get("quarantine"))
            self.done = {t for t in self.ck.get("done", []) if isinstance(t, str)}
        self.snapshots = {s["id"]: s for s in snaps}
        self.quarantine_lines(bad)
        self.quarantine_twins([dict(t, why="read before it") for t in getattr(self.source, "twins", [])])
        history = self.ledger_head + self.ledger_tail
        pushed = {i for e in history for i in _ids(e)}
        # the monitoring snapshots logged, by model: an id logged only for another model (or an
        # experiment) is another document's (ids collide), never this one's
        logged = {(e["model"].get("name"), e["model"].get("version"), e["model"].get("sha256"), i)
                  for e in history if e.get("kind") is None and isinstance(e.get("model"), dict)
                  for i in _ids(e)}  # fmt: skip
        anyone = {i for e in history if e.get("kind") in (None, "experiment") and not isinstance(e.get("model"), dict)
                  for i in _ids(e)}  # fmt: skip
        twins: list = []
        # An experiment snapshot is logged once per arm, so its ids are "pushed" per model version.
        arm_pushed = set() if whole else {tuple(a) for a in self.ck.get("arms", [])
                                          if isinstance(a, list) and len(a) == 4}  # fmt: skip
        arm_pushed |= {(e["model"].get("name"), e["model"].get("version"), e["model"].get("sha256"), i)
                       for e in history
                       if e.get("kind") == "experiment" and isinstance(e.get("model"), dict)
                       for i in _ids(e)}  # fmt: skip
        set_aside = self.done | {i for e in self.quarantine_tail for i in _ids(e)}
        arm_done = {i for (*_, i) in arm_pushed}
        set_aside |= self.future(snaps, pushed | arm_done | set_aside)
        pushed |= set_aside
        # what was set aside, by its key's folder: a document of another folder under a set-aside id
        # is another document's (ids collide), set aside as such (a folder spool's ids set aside
        # before its checkpoint, `done`, have no folder: left out as before)
        aside_at, aside_anywhere = quarantined_folders((self.quarantine_head if whole else []) + self.quarantine_tail)
        by_key: dict = {}
        arm_keys: dict = {}
        for s in snaps:
            if s["id"] in set_aside:
                if (s["id"] not in aside_anywhere and (whole or s["id"] not in self.done)
                        and (_snapshot_folder(s), s["id"]) not in aside_at):  # fmt: skip
                    twins.append((s, "set aside"))
                continue  # set aside stays aside: a later revision of its window leaves it out too
            b = s["window"]["end_ms"] // self.window_ms
            if is_experiment(s):
                mine = {(a["model"]["name"], a["model"]["version"], a["model"]["sha256"]) for a in s["arms"]}
                if s["id"] in pushed and s["id"] not in anyone and not any((*m, s["id"]) in arm_pushed for m in mine):
                    twins.append((s, "logged"))  # logged for none of its arms: another document's id (ids collide)
                    continue
                for m in mine:
                    if (*m, s["id"]) not in arm_pushed:
                        g = arm_keys.setdefault((*m, b), ArmGroup(*m, b))
                        g.snapshots.append(s)
                continue
            m = s["model"]
            if s["id"] in pushed:
                if (m["name"], m["version"], m["sha256"], s["id"]) not in logged and s["id"] not in anyone:
                    twins.append((s, "logged"))
                continue
            key = (m["name"], m["version"], m["sha256"], b)
            g = by_key.setdefault(key, Group(m["name"], m["version"], m["sha256"], b))
            g.snapshots.append(s)
        if twins:
            self.quarantine_twins([self.origin(s, f"its id is {why} for another model, version or artifact")
                                   for s, why in twins])  # fmt: skip
        self.twinned = {s["id"] for s, _ in twins}  # consumed (set aside), though not under their ids
        now = int(time.time() * 1000)
        ready, waiting = [], 0
        for g in [*(by_key[k] for k in sorted(by_key)), *(arm_keys[k] for k in sorted(arm_keys))]:
            if not self.close_all and (g.bucket + 1) * self.window_ms + self.grace_ms > now:
                waiting += 1
                continue
            ready.append(g)
        return ready, waiting

    def origin(self, s: dict, why: str) -> dict:
        """Where this push read snapshot `s` (its first mark), as `quarantine_twins` takes it."""
        folder = not getattr(self.source, "whole_ledger", False)
        for m in self.marks:
            if folder and m[3] == ("id", s["id"]):  # [segment, inode, end, token, start, sha256 of the line]
                return {"segment": m[0], "line_sha256": m[5], "id": s["id"], "snapshot": s, "why": why}
            if not folder and m[1] == ("id", s["id"]):  # [key, token, ETag, sha256 of the object]
                return {"segment": m[0], "etag": m[2], "line_sha256": m[3], "id": s["id"], "snapshot": s, "why": why}
        raise ValueError(f"snapshot {s['id']} was not read by this push")

    def consumed_key(self):
        """Whether a bucket object (key, ETag) is consumed, told by its key from the whole ledger
        and quarantine (skedge/spool.py): a monitoring snapshot whose id a monitoring ledger line
        or a quarantine line names; an experiment snapshot (logged once per arm, which its key does
        not name) whose id the quarantine names, or a ledger line before the checkpoint's mark
        when the checkpoint does not list it as `partial`; an object set aside as not a snapshot,
        by its key and ETag. Every other object is read."""
        consumed, self.bad_keys, self.vouched = consumed_objects(
            self.ledger_head + self.ledger_tail, self.ledger_head, self.quarantine_head + self.quarantine_tail,
            self.ck.get("partial", []))  # fmt: skip
        return consumed

    def save_checkpoint(self) -> None:
        """Records what this push consumed, after every ledger and quarantine line it wrote is
        durable (a crash before this re-reads them, and the ledger says they are done): per
        segment the offset below which every record is logged or set aside, the consumed
        records past it (`done`: ids, or `line_sha256` of lines set aside; `arms`: the logged
        arms of experiment snapshots past it), where the ledger and the quarantine end, and the
        pushed windows still waiting for their drift (`pending_drift`). A bucket's has nothing per
        object (`consumed_key`): only `partial`, the experiment snapshots the ledger names that
        are not known consumed (logged for some arms only, or not read)."""
        self.source.check()
        ledger, ledger_mark = self.source.tail(LEDGER, self.ck.get("ledger"))
        quarantined, quarantine_mark = self.source.tail(QUARANTINE, self.ck.get("quarantine"))
        whole = getattr(self.source, "whole_ledger", False)
        history = self.ledger_head + ledger
        aside = self.done | {i for e in quarantined for i in _ids(e)}
        hashes = self.done | {e.get("line_sha256") for e in quarantined if isinstance(e.get("line_sha256"), str)}
        logged = {i for e in history if e.get("kind") is None for i in _ids(e)}
        arms = set() if whole else {tuple(a) for a in self.ck.get("arms", []) if isinstance(a, list) and len(a) == 4}
        arms |= {(e["model"].get("name"), e["model"].get("version"), e["model"].get("sha256"), i)
                 for e in history if e.get("kind") == "experiment" and isinstance(e.get("model"), dict)
                 for i in _ids(e)}  # fmt: skip

        twinned = getattr(self, "twinned", set())

        def consumed(token) -> bool:
            kind, value = token[0], token[1]
            if kind in ("bad", "twin"):  # set aside by the sha256 of its line or object
                return value in hashes
            if value in aside or value in twinned:
                return True
            s = self.snapshots.get(value)
            if s is not None and is_experiment(s):
                return all((a["model"]["name"], a["model"]["version"], a["model"]["sha256"], value) in arms
                           for a in s["arms"])  # fmt: skip
            return value in logged

        state, beyond = self.source.advance(self.ck, self.marks, consumed)
        # Fault injection for the crash tests (tests/python/test_push_incremental.py): stop this
        # process (SIGSTOP) after its ledger lines, before the checkpoint.
        if os.environ.get("SKEDGE_PUSH_STOP_BEFORE_CHECKPOINT") == "1":
            import signal  # noqa: PLC0415

            os.kill(os.getpid(), signal.SIGSTOP)
        doc = {"version": CHECKPOINT_VERSION, **state}
        if whole:
            # experiment snapshots the ledger names that are not known consumed: read by this push
            # and logged for some arms only, or neither read nor vouched for (`consumed_key`)
            read = {t[1]: consumed(t) for t in (m[1] for m in self.marks)
                    if t[0] == "id" and is_experiment(self.snapshots.get(t[1]))}  # fmt: skip
            doc["partial"] = sorted(i for i in {a[3] for a in arms if isinstance(a[3], str)} - aside
                                    if (not read[i] if i in read else i not in self.vouched))  # fmt: skip
        else:
            left = {t[1] for t in beyond}
            doc["done"] = sorted(left)
            doc["arms"] = sorted([list(a) for a in arms if all(isinstance(x, str) for x in a)
                                  and a[3] in self.snapshots and a[3] not in left])  # fmt: skip
        doc.update(ledger=ledger_mark, quarantine=quarantine_mark,
                   pending_drift=[p for p in map(pending_entry, unevaluated(self.ck.get("pending_drift", []) + ledger))
                                  if _pending_entry(p)])  # fmt: skip
        self.source.write_checkpoint(doc)

    def window_ledger(self, kind: str | None, run_id: str, bucket: int) -> tuple[set, set]:
        """(revisions, snapshot ids) of this source's ledger lines of one window of a run (`kind`
        None: monitoring). The ledger is streamed whole: only for a window MLflow already has a
        point of (a late snapshot, a crash between MLflow and the ledger, another source)."""
        revisions, ids = set(), set()
        for e in self.source.entries(LEDGER):
            if e.get("run_id") == run_id and e.get("bucket") == bucket and e.get("kind") == kind:
                revisions.add(e.get("revision", 0))
                ids.update(_ids(e))
        return revisions, ids

    def complete(self, g: Group, kind: str | None, run: Run) -> None:
        """Adds to `g` the snapshots this source logged in its window before (a window whose point
        predates window records is judged on all its snapshots: `push_window_legacy`)."""
        _, ours = self.window_ledger(kind, run.run_id, g.bucket)
        missing = ours - {s["id"] for s in g.snapshots}
        if missing:
            model = {"name": g.name, "version": g.version, "sha256": g.sha256}
            found = self.source.find(missing, lambda s: of_window(s, model, g.bucket, self.window_ms))
            if len(found) < len(missing):
                # a revision of only the others would hide the whole point (readers take the
                # latest): the late snapshots are set aside instead, with the reason
                raise WindowRefused(
                    f"window {g.bucket} of run {run.run_id} was logged by a push from before window records and "
                    f"{len(missing) - len(found)} of the snapshot(s) it holds are no longer in the spool "
                    "(compacted, or only another model's, version's or window's snapshot has that id): a revision "
                    "would count only the late ones")  # fmt: skip
            g.snapshots.extend(found)

    def restore_records(self) -> None:
        """The missing record of each window (monitoring, or an arm's experiment window) whose
        latest point a push from before window records logged, written while the spool still
        holds its snapshots: then a late snapshot is that window's next revision even once
        `compact` has removed them (without the record it is set aside: `complete`). Only on a push
        without a checkpoint (an upgrade's first push: the version before records wrote none this
        version trusts), which has the whole ledger: a folder's reads the spool whole, a bucket's
        reads the objects of the windows without records (one `find` for all). Only when the point
        is provably theirs: the window's latest ledger line names them, they are all found and of
        that line's model, version and window (`of_window`: a snapshot of an id may be another
        monitor's), and the point at its timestamp is the step's latest with their counts
        (monitoring: snapshots, predictions and samples; experiment: served, feedback count and
        correct, and the snapshots when the point has that metric, which pushes before 2026-12-03
        did not log). A run with any record of the window is left as it is."""
        whole = getattr(self.source, "whole_ledger", False)  # a bucket: consumed objects are not read
        latest: dict = {}
        for e in self.ledger_tail:  # the whole ledger: no checkpoint
            key = (e.get("kind"), e.get("run_id"), e.get("bucket"))
            if (key[0] in (None, "experiment") and isinstance(key[1], str) and type(key[2]) is int
                    and type(e.get("revision", 0)) is int
                    and (key not in latest or e.get("revision", 0) >= latest[key].get("revision", 0))):  # fmt: skip
                latest[key] = e
        todo = [(kind, e) for (kind, *_), e in latest.items() if not e.get("ids_unknown") and list(_ids(e))
                and all((whole and i not in self.snapshots)
                        or (i in self.snapshots and is_experiment(self.snapshots[i]) == (kind == "experiment"))
                        for i in _ids(e))]  # fmt: skip
        if not todo:
            return
        if self.client is None:
            self.connect()
        folders: dict = {}  # (run id, kind) -> the window folders of its records
        windows = []  # (kind, ledger line, run, window_ms, ids, match) of the windows without records
        for kind, e in todo:
            run_id, bucket = e["run_id"], e["bucket"]
            folder = "experiment" if kind == "experiment" else "window"
            model = e.get("model")
            try:
                window_ms = int(float(e.get("window_seconds", 0)) * 1000)
            except (TypeError, ValueError, OverflowError):
                continue
            if kind == "experiment" and not (
                    isinstance(model, dict) and all(isinstance(model.get(k), str) for k in ("name", "version", "sha256"))):
                continue
            run = self.get_run(run_id) if window_ms > 0 else None
            if run is None:
                continue
            if (run_id, folder) not in folders:
                with self.mlflow_errors(f"listing the records of run {run_id}"):
                    folders[(run_id, folder)] = {a.path for a in self.client.list_artifacts(run_id, f"skedge/{folder}")}
            if f"skedge/{folder}/{bucket}" in folders[(run_id, folder)]:
                continue  # the window has records (from this push's version or another source)

            def match(s: dict, b: int = bucket, m: Any = model, w: int = window_ms, k: Any = kind) -> bool:
                return is_experiment(s) == (k == "experiment") and of_window(s, m, b, w)

            windows.append((kind, e, run, window_ms, sorted(set(_ids(e))), match))
        found: dict = {}  # (window index, id) -> its snapshot
        for n, (*_, want, match) in enumerate(windows):
            found.update(((n, i), self.snapshots[i]) for i in want if i in self.snapshots and match(self.snapshots[i]))
        missing: dict = {}  # id -> the windows lacking it
        for n, (*_, want, _) in enumerate(windows):
            for i in want:
                if (n, i) not in found:
                    missing.setdefault(i, []).append(n)
        if missing:
            # one read for them all (a folder: the first of an id is another monitor's, a later one
            # may be ours; a bucket: not read, consumed); per window, of its model and window only
            for s in self.source.find(set(missing), lambda s: any(windows[n][5](s) for n in missing[s["id"]])):
                found.update(((n, s["id"]), s) for n in missing[s["id"]] if windows[n][5](s))
        for n, (kind, e, run, window_ms, want, _) in enumerate(windows):
            run_id, bucket, revision = e["run_id"], e["bucket"], e.get("revision", 0)
            folder, model = ("experiment" if kind == "experiment" else "window"), e.get("model")
            what = "experiment window" if kind == "experiment" else "window"
            odd = [i for i in want if (n, i) not in found]
            if odd:
                self.log(f"warning: the missing record of {what} {bucket} of run {run_id} not written: the spool "
                         f"holds id(s) {', '.join(odd[:3])}{' …' if len(odd) > 3 else ''} of its ledger line only in "
                         "another model's, version's or window's snapshot, or not at all (compacted; or ids collide: "
                         "two monitors started with the same seed in the same millisecond), not provably the "
                         "point's")  # fmt: skip
                continue
            snaps = [found[(n, i)] for i in want]
            step, ts = run.step(bucket, window_ms), (bucket + 1) * window_ms + revision
            try:
                if kind == "experiment":
                    agg = aggregate_arm(ArmGroup(model["name"], model["version"], model["sha256"], bucket, snaps))
                    record = dict(agg, ids=[s["id"] for s in snaps])
                    counts = {"skedge.served": agg["served"], "skedge.feedback.count": agg["count"],
                              "skedge.feedback.correct": agg["correct"], "skedge.snapshots": len(snaps)}  # fmt: skip
                    latest_key, optional = "skedge.served", {"skedge.snapshots"}
                else:
                    stats, seen, classes = aggregate(snaps)
                    record = {"ids": [s["id"] for s in snaps], "classes": classes, "stats": stats, "seen": seen,
                              "dropped": max(s["dropped"] for s in snaps)}  # fmt: skip
                    counts = {"snapshots": len(snaps), "seen": seen, "sampled": stats["count"]}
                    latest_key, optional = "sampled", set()
            except (KeyError, TypeError, ValueError):
                continue
            at = {k: [m for m in self.history(run, k) if m.step == step] for k in counts}
            then = {k: {m.value for m in points if m.timestamp == ts} for k, points in at.items()}
            if (not at[latest_key] or max(m.timestamp for m in at[latest_key]) != ts
                    or any(then[k] != {counts[k]} for k in counts if then[k] or k not in optional)):  # fmt: skip
                continue  # not provably this point's snapshots: a late one is set aside as before
            try:
                self.write_record(run, folder, bucket, ts, record)
            except WindowRefused as err:
                self.log(f"warning: the missing record of {what} {bucket} of run {run_id} not written: {err}")
                continue
            self.log(f"wrote the missing record of {what} {bucket} of run {run_id} (logged before window records) "
                     f"from its {len(snaps)} snapshot(s) still in the spool")  # fmt: skip

    def push(self) -> int:
        ready, waiting = self.groups()
        if waiting:
            self.log(f"{waiting} window(s) still open (use --close-all to push them now)")
        if not self.ck:
            self.restore_records()
        ledger = self.ledger_tail
        pending = self.ck.get("pending_drift", [])
        if not ready and not unevaluated(pending + ledger):
            self.log("nothing to push")
            self.save_checkpoint()
            return EXIT_OK
        if self.client is None:
            self.connect()
        alerts, performance = [], []
        for g in ready:
            try:
                if isinstance(g, ArmGroup):
                    performance += self.push_arm_window(g, ledger)
                else:
                    alerts += self.push_window(g, ledger)
            except WindowRefused as err:
                self.quarantine_window(g, str(err))
        alerts += self.reevaluate(unevaluated(pending + ledger), ledger)
        self.experiment_figures()
        self.save_checkpoint()
        if not ready and not self.reevaluated:
            self.log("nothing to push")
        if alerts:
            self.log("DRIFT ALERT:\n  " + "\n  ".join(alerts))
        if performance:
            self.log("PERFORMANCE ALERT:\n  " + "\n  ".join(performance))
        return EXIT_ALERT if alerts or performance else EXIT_OK

    # -- what a point at a step holds ---------------------------------------------------------

    def read_record(self, run: Run, path: str) -> dict | None:
        """The window record at `path` in the run's artifacts (`write_record`); None when the run has
        none there (a point logged by a push from before records) or it is unreadable."""
        folder = path.rsplit("/", 1)[0]
        with self.mlflow_errors(f"reading {path} of run {run.run_id}"):
            if path not in {a.path for a in self.client.list_artifacts(run.run_id, folder)}:
                return None
            with tempfile.TemporaryDirectory(prefix="skedge-report-") as tmp:
                text = Path(self.client.download_artifacts(run.run_id, path, tmp)).read_text(encoding="utf-8")
        try:
            rec = json.loads(text)
        except ValueError:
            return None
        if not isinstance(rec, dict) or not isinstance(rec.get("ids"), list):
            return None
        return rec

    def prior(self, run: Run, kind: str, bucket: int, step: int, key: str) -> tuple[int, dict | None] | None:
        """(timestamp, record) of the latest point the run has at `step` in `key`'s history (the
        window's last revision, whoever logged it), None when it has none."""
        points = [m.timestamp for m in self.history(run, key) if m.step == step]
        if not points:
            return None
        ts = max(points)
        return ts, self.read_record(run, record_path(kind, bucket, ts))

    def write_record(self, run: Run, kind: str, bucket: int, ts: int, record: dict) -> None:
        """What the point at (window, ts) aggregates: its snapshot ids and statistics. Written before
        the point, so every point has one: a later push, from this spool or another source, reads
        which snapshots MLflow holds at that step and adds only the others (never replaces them)."""
        path = record_path(kind, bucket, ts)
        with self.mlflow_errors(f"logging {path} to run {run.run_id}"):
            self.client.log_text(run.run_id, json.dumps(record, separators=(",", ":")), path)

    def plan(self, g: Group, run: Run, kind: str, key: str, ledger: list, own: dict, merge) -> dict:
        """What to log for `g`'s window: `{"ts", "revision", "record", "covered", "merged", "legacy"}`.

        The latest point at the window's step is read with its record. None: the window's first
        point (at window end + the revisions this ledger has). Our snapshots all in it: nothing to
        log, only the ledger line (a crash lost it, or another source logged them). Otherwise the
        next revision (1 ms later) aggregates the point's record and our snapshots it lacks, so
        that two sources of one model version (two spools, a folder and a bucket) add up instead
        of the second hiding the first. A point without a record (an older push) is `legacy`."""
        step, end_ms = run.step(g.bucket, self.window_ms), (g.bucket + 1) * self.window_ms
        mine = {s["id"] for s in g.snapshots}
        k = None if kind == "window" else kind
        found = self.prior(run, kind, g.bucket, step, key)
        if found is None:
            # no point at the step: the window's lines, if any, are this push's or its last one's
            revision = sum(1 for e in ledger if e.get("run_id") == run.run_id and e.get("bucket") == g.bucket
                           and e.get("kind") == k)  # fmt: skip
            return {"ts": end_ms + revision, "revision": revision, "record": own, "covered": False, "merged": 0,
                    "legacy": False, "ids": g.ids}  # fmt: skip
        ts, rec = found
        if rec is None:
            return {"legacy": True}
        theirs = {i for i in rec["ids"] if isinstance(i, str)}
        # `g` holds only snapshots not pushed yet: those this source logged before are in the record
        revisions, ours = self.window_ledger(k, run.run_id, g.bucket)
        ids = sorted(mine | (theirs & ours))  # this source's snapshots in the point (its ledger line)
        if mine <= theirs:
            return {"ts": ts, "revision": ts - end_ms, "record": rec, "covered": True, "merged": 0, "legacy": False,
                    "ids": ids}  # fmt: skip
        others = theirs - mine
        foreign = others - ours  # another source's
        # our own point whose ledger line a crash lost (the window has grown since): its line,
        # with the ids its record names, so that every point of ours has one
        lost = None if (ts - end_ms) in revisions or foreign else {"revision": ts - end_ms, "ids": sorted(theirs)}
        record = own
        if others:
            fresh = [s for s in g.snapshots if s["id"] not in theirs]
            try:
                record = merge(rec, fresh)
            except (KeyError, TypeError, ValueError) as err:
                raise WindowRefused(
                    f"MLflow's point at this step holds {len(others)} snapshot(s) this source does not have "
                    f"(another spool or bucket pushing the same model version), which cannot be added to "
                    f"these: {err}") from None  # fmt: skip
            record["ids"] = sorted(theirs | mine)
        return {"ts": ts + 1, "revision": ts + 1 - end_ms, "record": record, "covered": False,
                "merged": len(foreign), "legacy": False, "lost": lost, "ids": ids}  # fmt: skip

    def record_lost(self, plan: dict, entry: dict, ledger: list) -> None:
        """The ledger line of `plan`'s lost point, if it has one (`plan`), before the next revision's."""
        if plan.get("lost"):
            line = dict(entry, **plan["lost"], recovered=True, logged_ms=int(time.time() * 1000))
            self.source.append(LEDGER, line)
            ledger.append(line)

    def push_window(self, g: Group, ledger: list) -> list:
        self.source.check()
        mv = self.model_version(g.name, g.version)
        self.warn_unlinked(g, mv)
        if not self.conforming(g, self.baseline_for(g, mv)):
            return []
        run = self.run_for(g, mv)
        stats, seen, classes = aggregate(g.snapshots)
        own = {"ids": g.ids, "classes": classes, "stats": stats, "seen": seen,
               "dropped": max(s["dropped"] for s in g.snapshots)}  # fmt: skip

        def merge(rec: dict, fresh: list) -> dict:
            if rec["classes"] != classes:
                raise ValueError(f"its classes {rec['classes'][:8]} are not {classes[:8]}")
            st, n, _ = aggregate(fresh)
            return {"classes": classes, "stats": merge_stats(rec["stats"], st), "seen": rec["seen"] + n,
                    "dropped": max([rec.get("dropped", 0)] + [s["dropped"] for s in fresh])}  # fmt: skip

        plan = self.plan(g, run, "window", "sampled", ledger, own, merge)
        if plan["legacy"]:
            self.complete(g, None, run)
            stats, seen, classes = aggregate(g.snapshots)
            return self.push_window_legacy(g, run, mv, ledger, stats, seen, classes)
        return self.log_planned(g, run, mv, ledger, plan)

    def log_planned(self, g: Group, run: Run, mv, ledger: list, plan: dict) -> list:
        """Logs a monitoring window revision as `plan` says (record, metrics, alert tags, ledger)."""
        rec, revision = plan["record"], plan["revision"]
        stats, seen, classes = rec["stats"], rec["seen"], rec["classes"]
        end_ms = (g.bucket + 1) * self.window_ms
        step = run.step(g.bucket, self.window_ms)
        where = f"{g.name} v{g.version}, window {_iso(g.bucket * self.window_ms)}–{_iso(end_ms)}"
        entry = {
            "run_id": run.run_id,
            "model": {"name": g.name, "version": g.version, "sha256": g.sha256},
            "bucket": g.bucket,
            "window_seconds": self.window_ms / 1000,
            "revision": revision,
            "ids": plan["ids"],
            "drift": True,
            "logged_ms": int(time.time() * 1000),
        }
        if plan["covered"]:
            # drift to compute later when the point has none (logged while no artifact was at hand)
            entry["drift"] = any(m.step == step and m.timestamp == plan["ts"] for m in self.history(run, "drift_alert"))
            self.source.append(LEDGER, entry)
            ledger.append(entry)
            self.log(f"{where}: MLflow has these {len(g.ids)} snapshot(s) already (run {run.run_id}, step {step}, "
                     f"revision {revision}): recorded, not logged again")  # fmt: skip
            return []
        info, d, reasons, healthy = self.evaluate(g, mv, stats)
        # False: no artifact of this sha256 was at hand; a later push that finds one computes
        # the drift of this window (`reevaluate`).
        entry["drift"] = info is not None
        if plan["merged"]:
            entry["merged"] = plan["merged"]  # snapshots of another source in this revision
        metrics = window_metrics(stats, seen, len(rec["ids"]), classes, d)
        metrics["dropped"] = rec.get("dropped", 0)
        if d is not None:
            metrics["drift_alert"] = 1.0 if reasons else 0.0
        message = f"{where} ({stats['count']} samples): " + "; ".join(reasons) if reasons else ""
        self.log_params(g, run, info)
        self.record_lost(plan, entry, ledger)
        self.write_record(run, "window", g.bucket, plan["ts"], rec)
        self.log_metrics(g, run, mv, metrics, step, plan["ts"])
        alert = self.settle_alert(g, run, step, reasons, healthy, message)
        self.source.append(LEDGER, entry)
        ledger.append(entry)
        # After the ledger: a figure that fails is only a warning.
        self.figure(g, run, stats, seen, classes, (info or {}).get("baseline"), d)
        shown = ", ".join(f"{k} {v:.3f}" for k, v in (d or {}).items() if v is not None)
        self.log(
            f"logged {where} to run {run.run_id} (step {step}): {stats['count']} sampled of {seen} seen"
            + (f", {shown}" if shown else "")
            + (f" [revision {revision}]" if revision else "")
            + (f" [with {plan['merged']} snapshot(s) another source logged]" if plan["merged"] else "")
            + (" [older than the run's latest window: the alert tags follow that one]" if reasons and not alert else "")
        )
        return [message] if alert else []

    def push_window_legacy(self, g: Group, run: Run, mv, ledger: list, stats: dict, seen: int,
                           classes: list) -> list:  # fmt: skip
        """A window whose latest point was logged by a push from before window records: which
        snapshots that point holds is told by their count only (`log_window`)."""
        run_id = run.run_id
        revision = len(self.window_ledger(None, run_id, g.bucket)[0])
        info, d, reasons, healthy = self.evaluate(g, mv, stats)
        metrics = window_metrics(stats, seen, len(g.snapshots), classes, d)
        metrics["dropped"] = max(s["dropped"] for s in g.snapshots)
        if d is not None:
            metrics["drift_alert"] = 1.0 if reasons else 0.0
        end_ms = (g.bucket + 1) * self.window_ms
        step = run.step(g.bucket, self.window_ms)
        logged = [m for m in self.history(run, "sampled") if m.step == step]
        entry = {
            "run_id": run_id,
            "model": {"name": g.name, "version": g.version, "sha256": g.sha256},
            "bucket": g.bucket,
            "window_seconds": self.window_ms / 1000,
            "revision": revision,
            "ids": g.ids,
            "drift": info is not None,
            "logged_ms": int(time.time() * 1000),
        }
        where = f"{g.name} v{g.version}, window {_iso(g.bucket * self.window_ms)}–{_iso(end_ms)}"
        message = f"{where} ({stats['count']} samples): " + "; ".join(reasons) if reasons else ""
        self.log_params(g, run, info)
        own = {"ids": g.ids, "classes": classes, "stats": stats, "seen": seen, "dropped": metrics["dropped"]}
        revision = self.log_window(g, run, mv, metrics, [], entry, ledger, len(logged),
                                   ("snapshots", "seen", "sampled"), ("window", own))  # fmt: skip
        alert = self.settle_alert(g, run, step, reasons, healthy, message)
        self.source.append(LEDGER, entry)
        ledger.append(entry)
        self.figure(g, run, stats, seen, classes, (info or {}).get("baseline"), d)
        self.log(f"logged {where} to run {run_id} (step {step}): {stats['count']} sampled of {seen} seen"
                 + (f" [revision {revision}]" if revision else ""))  # fmt: skip
        return [message] if alert else []

    def log_window(self, g, run: Run, mv, metrics: dict, tags, entry: dict, ledger: list, logged: int,
                   counts: tuple, record: tuple) -> int:
        """Logs `entry`'s window revision unless MLflow has it already (`logged` points at its step
        > its revision: the ledger line was lost in a crash), for a point logged by a push from
        before window records. The point MLflow has aggregates the window's snapshots of then, a
        subset of these (a spool only grows): the same values of the `counts` metrics (snapshots,
        predictions) are the same set, so nothing is logged again. Others: snapshots arrived since,
        and which of them that point holds is unknown, so it is recorded without ids
        ("ids_unknown") and the whole window is logged as the next revision, with its record
        (`record`: kind and content). Returns the revision."""
        step, end_ms = run.step(g.bucket, self.window_ms), (g.bucket + 1) * self.window_ms
        revision = entry["revision"]
        while logged > revision:
            ts = end_ms + revision
            then = {k: [m.value for m in self.history(run, k) if m.step == step and m.timestamp == ts]
                    for k in counts}  # fmt: skip
            if not then[counts[0]] or all(then[k][:1] == [metrics[k]] for k in counts):
                break
            lost = dict(entry, ids=[], ids_unknown=True, logged_ms=int(time.time() * 1000))
            self.source.append(LEDGER, lost)
            ledger.append(lost)
            revision += 1
            entry["revision"] = revision
        if logged <= revision:
            self.write_record(run, record[0], g.bucket, end_ms + revision, record[1])
            self.log_metrics(g, run, mv, metrics, step, end_ms + revision, tags)
        return revision

    def reevaluate(self, stale: list, ledger: list) -> list:
        """Drift of windows pushed while no artifact of their model was at hand, now that one
        is: the drift metrics and `drift_alert` logged at the window's step and timestamp (those
        the run does not have there already), the alert set or cleared, a ledger line of kind
        "drift" so that it is done once."""
        snaps = self.snapshots
        alerts, waiting = [], 0
        for e in stale:
            m = e.get("model") or {}
            window_ms = int(float(e.get("window_seconds", 0)) * 1000)
            if window_ms <= 0 or not isinstance(m.get("sha256"), str) or not isinstance(e.get("bucket"), int):
                continue
            g = Group(m.get("name", ""), m.get("version", ""), m["sha256"], e["bucket"])
            ids = list(_ids(e))
            g.snapshots = [snaps[i] for i in ids if i in snaps]
            if not ids and "ids" in e:  # a ledger line without ids (`ids_unknown`): never computable
                self.warn_once(("missing", e["run_id"], g.bucket), (
                    f"warning: window {g.bucket} of run {e['run_id']}: which snapshots it holds is unknown, "
                    "its drift cannot be computed"))  # fmt: skip
                self.skip_drift(e, "which snapshots the window holds is unknown", ledger)
                continue
            mv = self.model_version(g.name, g.version)
            if self.baseline_for(g, mv) is None:
                waiting += 1
                continue
            saved, self.window_ms = self.window_ms, window_ms  # the window length it was pushed with
            try:
                # snapshots consumed by an earlier push are not read again: the point's record has them
                # (a checkpoint's entry names no ids: `pending_entry`)
                alerts += self.reevaluate_window(g, mv, e, ledger, complete=bool(ids) and len(g.snapshots) == len(ids))
            except WindowRefused as err:
                self.log(f"warning: drift of window {g.bucket} of run {e['run_id']} not logged: {err}")
            finally:
                self.window_ms = saved
        if waiting:
            self.log(f"{waiting} pushed window(s) still without drift: no artifact of their model at hand "
                     "(pass --artifact, or publish it in MLflow)")  # fmt: skip
        return alerts

    def skip_drift(self, e: dict, reason: str, ledger: list) -> None:
        """A window whose drift can never be computed: a ledger line of kind "drift" with the
        reason (`skipped`), so that it is no longer waiting (nor kept in the checkpoint)."""
        entry = {"kind": "drift", "run_id": e["run_id"], "bucket": e["bucket"], "revision": e.get("revision", 0),
                 "window_seconds": e.get("window_seconds"), "logged": [], "skipped": reason,
                 "logged_ms": int(time.time() * 1000)}  # fmt: skip
        self.source.append(LEDGER, entry)
        ledger.append(entry)

    def reevaluate_window(self, g: Group, mv, e: dict, ledger: list, complete: bool = True) -> list:
        run = self.get_run(e["run_id"])
        if run is not None:  # a deleted run (restorable, but refusing every write) is gone too
            with self.mlflow_errors(f"reading run {e['run_id']}"):
                if self.client.get_run(e["run_id"]).info.lifecycle_stage == "deleted":
                    run = None
        if run is None:
            self.warn_once(("no run", e["run_id"]), f"warning: run {e['run_id']} is gone from MLflow: "
                           f"the drift of its window {g.bucket} is not logged")  # fmt: skip
            self.skip_drift(e, "its run is gone from MLflow", ledger)
            return []
        revision = int(e.get("revision", 0))
        step = run.step(g.bucket, self.window_ms)
        end_ms = (g.bucket + 1) * self.window_ms
        ts = end_ms + revision
        if e.get("merged") or not complete:  # the record has all the point's snapshots
            rec = self.read_record(run, record_path("window", g.bucket, ts))
            if rec is None:
                self.warn_once(("no record", run.run_id, g.bucket), (
                    f"warning: window {g.bucket} of run {run.run_id}: its record is not in MLflow and its snapshots "
                    "are not all at hand, its drift cannot be computed"))  # fmt: skip
                return []
            stats, seen, classes = rec["stats"], rec["seen"], rec["classes"]
        else:
            stats, seen, classes = aggregate(g.snapshots)
        info, d, reasons, healthy = self.evaluate(g, mv, stats)
        metrics = {}
        if d is not None:
            metrics = {k: v for k, v in window_metrics(stats, seen, 0, classes, d).items() if k.startswith("drift.")}
            metrics["drift_alert"] = 1.0 if reasons else 0.0
            # only what the run does not have at this window revision: idempotent, also for a
            # window an older push logged with drift (a ledger from before this pass)
            metrics = {k: v for k, v in metrics.items()
                       if not any(p.step == step and p.timestamp == ts for p in self.history(run, k))}  # fmt: skip
        where = f"{g.name} v{g.version}, window {_iso(g.bucket * self.window_ms)}–{_iso(end_ms)}"
        message = f"{where} ({stats['count']} samples): " + "; ".join(reasons) if reasons else ""
        self.log_params(g, run, info)
        alert = False
        if metrics:
            self.log_metrics(g, run, mv, metrics, step, ts)
            alert = self.settle_alert(g, run, step, reasons, healthy, message)
        entry = {"kind": "drift", "run_id": run.run_id, "bucket": g.bucket, "revision": revision,
                 "window_seconds": self.window_ms / 1000, "logged": sorted(metrics),
                 "logged_ms": int(time.time() * 1000)}  # fmt: skip
        self.source.append(LEDGER, entry)
        ledger.append(entry)
        if metrics:
            self.reevaluated += 1
            self.figure(g, run, stats, seen, classes, (info or {}).get("baseline"), d)
            shown = ", ".join(f"{k} {v:.3f}" for k, v in (d or {}).items() if v is not None)
            self.log(f"drift of {where} (run {run.run_id}, step {step}), now that its artifact is at hand: {shown}")
        return [message] if alert else []

    # -- experiments (champion/challenger windows) -----------------------------------------------

    def reference(self, g: Group, mv) -> float | None:
        """`--reference-metric` of the run that logged the model version (its training metrics)."""
        key = (g.name, g.version)
        if key not in self.references:
            value = None
            if mv is not None and mv.run_id:
                with self.mlflow_errors(f"reading the source run of {g.name} version {g.version}"):
                    value = self.client.get_run(mv.run_id).data.metrics.get(self.reference_metric)
            if value is None:
                self.warn_once(("no reference", key), (
                    f"note: {g.name} version {g.version} has no {self.reference_metric!r} metric in the run that "
                    "logged it: no performance alert for it"))  # fmt: skip
            self.references[key] = value
        return self.references[key]

    def performance(self, g: Group, mv, run: Run, step: int, metrics: dict) -> tuple[str, bool, bool]:
        """(alert message or "", evaluated, healthy) of a version's production accuracy over all
        its feedback up to this window (this window's counts in place of any earlier revision)."""
        ref = self.reference(g, mv)
        if ref is None:
            return "", False, False
        counts = latest_per_step(self.history(run, "skedge.feedback.count"))
        correct = latest_per_step(self.history(run, "skedge.feedback.correct"))
        counts[step], correct[step] = metrics["skedge.feedback.count"], metrics["skedge.feedback.correct"]
        n = sum(v for st, v in counts.items() if st <= step)
        k = sum(v for st, v in correct.items() if st <= step)
        if n < self.min_feedback:
            return "", False, False
        accuracy = k / n
        floor = ref - self.performance_threshold
        if accuracy < floor:
            return (f"{g.name} v{g.version}: production accuracy {accuracy:.4f} over {int(n)} labels is below "
                    f"{self.reference_metric} {ref:.4f} - {self.performance_threshold:g}"), True, False  # fmt: skip
        return "", True, True

    def settle_performance(self, g: Group, run: Run, step: int, message: str, healthy: bool) -> bool:
        """Sets `skedge.performance_alert` on the run and the version when the check alerts, removes
        both when it is healthy; only for the run's latest window (a revision of an older one
        leaves the tags to the newer check). True when the alert is set."""
        if self.later_window(run, "skedge.feedback.count", step):
            return False
        if message:
            with self.mlflow_errors(f"tagging {g.name} version {g.version}"):
                self.client.set_tag(run.run_id, PERFORMANCE_TAG, message[:5000])
                if self.model_version(g.name, g.version) is not None:
                    self.client.set_model_version_tag(g.name, g.version, PERFORMANCE_TAG, message[:5000])
            return True
        if not healthy:
            return False
        cleared = []
        with self.mlflow_errors(f"clearing the performance alert of {g.name} version {g.version}"):
            if PERFORMANCE_TAG in self.client.get_run(run.run_id).data.tags:
                self.client.delete_tag(run.run_id, PERFORMANCE_TAG)
                cleared.append(f"run {run.run_id}")
            mv = self.model_version(g.name, g.version, fresh=True)
            if mv is not None and PERFORMANCE_TAG in (mv.tags or {}):
                self.client.delete_model_version_tag(g.name, g.version, PERFORMANCE_TAG)
                cleared.append(f"{g.name} version {g.version}")
        if cleared:
            self.log(f"cleared {PERFORMANCE_TAG} of {' and '.join(cleared)}: production accuracy is back")
        return False

    def push_arm_window(self, g: "ArmGroup", ledger: list) -> list:
        """One version's part of the experiment windows of one window, in its monitoring run (the
        step and timestamp rule of `push_window`, records included); a ledger line of kind
        "experiment"."""
        from mlflow.entities import RunTag  # noqa: PLC0415

        self.source.check()
        mv = self.model_version(g.name, g.version)
        self.warn_unlinked(g, mv)
        if not self.conforming(g, self.baselines.get(g.sha256)):
            return []
        run = self.run_for(g, mv)
        own = dict(aggregate_arm(g), ids=g.ids)

        def merge(rec: dict, fresh: list) -> dict:
            return merge_arm(rec, aggregate_arm(ArmGroup(g.name, g.version, g.sha256, g.bucket, fresh)))

        plan = self.plan(g, run, "experiment", "skedge.served", ledger, own, merge)
        if plan["legacy"]:
            self.complete(g, "experiment", run)
            own = dict(aggregate_arm(g), ids=g.ids)
        end_ms = (g.bucket + 1) * self.window_ms
        step = run.step(g.bucket, self.window_ms)
        where = f"experiment window {_iso(g.bucket * self.window_ms)}–{_iso(end_ms)} of {g.name} v{g.version}"
        agg = own if plan["legacy"] else plan["record"]
        revision = plan.get("revision", 0)
        entry = {"kind": "experiment", "run_id": run.run_id,
                 "model": {"name": g.name, "version": g.version, "sha256": g.sha256}, "bucket": g.bucket,
                 "window_seconds": self.window_ms / 1000, "revision": revision, "ids": plan.get("ids", g.ids),
                 "logged_ms": int(time.time() * 1000)}  # fmt: skip
        if plan.get("covered"):
            self.source.append(LEDGER, entry)
            ledger.append(entry)
            self.log(f"{where}: MLflow has these {len(g.ids)} snapshot(s) already (run {run.run_id}, step {step}, "
                     f"revision {revision}): recorded, not logged again")  # fmt: skip
            return []
        metrics = arm_metrics(agg, g.name)
        # how many snapshots the point aggregates: tells a lost ledger line's point from a grown
        # window for points logged before window records
        metrics["skedge.snapshots"] = float(len(agg["ids"]))
        message, evaluated, healthy = self.performance(g, mv, run, step, metrics)
        if evaluated:
            metrics[PERFORMANCE_TAG] = 1.0 if message else 0.0
        # the peer of the run's latest window (a revision of an older one does not change it)
        tags = [] if self.later_window(run, "skedge.served", step) else [RunTag(PEER_TAG, agg["peer"][:5000])]
        if plan["legacy"]:
            entry["revision"] = len(self.window_ledger("experiment", run.run_id, g.bucket)[0])
            logged = sum(1 for m in self.history(run, "skedge.served") if m.step == step)
            revision = self.log_window(g, run, mv, metrics, tags, entry, ledger, logged,
                                       ("skedge.snapshots", "skedge.served"), ("experiment", own))  # fmt: skip
        else:
            if plan["merged"]:
                entry["merged"] = plan["merged"]
            self.record_lost(plan, entry, ledger)
            self.write_record(run, "experiment", g.bucket, plan["ts"], agg)
            self.log_metrics(g, run, mv, metrics, step, plan["ts"], tags)
        alert = self.settle_performance(g, run, step, message, healthy)
        self.source.append(LEDGER, entry)
        ledger.append(entry)
        self.arm_runs[(g.name, g.version)] = (run, g, agg["peer"])
        shown = ", ".join(f"{k[7:]} {v:.4g}" for k, v in metrics.items()
                          if k not in (PERFORMANCE_TAG, PEERS_METRIC) and not k.startswith("skedge.peer/"))  # fmt: skip
        self.log(f"logged {where} (peer {agg['peer']}) to run {run.run_id} (step {step}): {shown}"
                 + (f" [revision {revision}]" if revision else "")
                 + (f" [with {plan['merged']} snapshot(s) another source logged]" if plan.get("merged") else ""))  # fmt: skip
        return [message] if alert else []

    def experiment_figures(self) -> None:
        """`experiment/latest.png` and `experiment/window-<index>.png` in the run of each version
        this push logged an experiment window for: its accuracy per window, its peer's, and the
        shadow agreement."""
        for (name, version), (run, g, peer) in self.arm_runs.items():
            try:
                import matplotlib.pyplot as plt  # noqa: PLC0415

                origin = run.origin_ms // self.window_ms
                series = {}

                def add(label: str, r: Run, key: str) -> None:
                    series[label] = {origin + st: v for st, v in latest_per_step(self.history(r, key)).items()}

                add(f"{name} v{version} accuracy", run, "skedge.feedback.accuracy")
                peer_name, _, peer_version = peer.rpartition("/")
                if (peer_name, peer_version) in self.arm_runs:
                    add(f"{peer_name} v{peer_version} accuracy", self.arm_runs[(peer_name, peer_version)][0],
                        "skedge.feedback.accuracy")  # fmt: skip
                add("agreement (shadow)", run, "skedge.shadow.agreement")
                fig = experiment_figure(f"{name} v{version} and {peer_name} v{peer_version} on production "
                                        "feedback, per window", series, self.window_ms)  # fmt: skip
                with self.mlflow_errors(f"logging the experiment figure to run {run.run_id}"):
                    self.client.log_figure(run.run_id, fig, f"experiment/window-{g.bucket}.png")
                    self.client.log_figure(run.run_id, fig, "experiment/latest.png")
                plt.close(fig)
            except (PushError, WindowRefused, ValueError, OSError) as err:
                self.log(f"warning: no experiment figure for {name} v{version}: {err}")

    def figure(self, g: Group, run: Run, stats: dict, seen: int, classes: list, baseline, d) -> None:
        history = {}
        origin = run.origin_ms // self.window_ms
        with contextlib.suppress(Exception):
            for key in ("drift.label_psi", "drift.confidence_psi", "drift.oov_psi", "drift.oov_shift"):
                latest: dict = {}  # the last revision of each window
                for m in self.history(run, key):
                    if m.step not in latest or m.timestamp >= latest[m.step][0]:
                        latest[m.step] = (m.timestamp, m.value)
                history[key[6:]] = [(origin + step, v) for step, (_, v) in latest.items()]
        try:
            import matplotlib.pyplot as plt  # noqa: PLC0415

            fig = drift_figure(g, stats, seen, classes, baseline, d, history, self.window_ms,
                               self.thresholds.psi)  # fmt: skip
            with self.mlflow_errors(f"logging the drift figure to run {run.run_id}"):
                self.client.log_figure(run.run_id, fig, f"drift/window-{g.bucket}.png")
                self.client.log_figure(run.run_id, fig, "drift/latest.png")
            if self.plot_dir is not None:
                path = plot_path(self.plot_dir, g)
                path.parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(path, dpi=90)
            plt.close(fig)
        except (PushError, WindowRefused, ValueError, OSError) as err:
            self.log(f"warning: no figure for window {g.bucket}: {err}")


def plot_path(folder: Path, g: Group) -> Path:
    """`FOLDER/NAME-vVERSION-window-N.png` with every character outside `[A-Za-z0-9_.-]` of the
    name and version replaced by `_`; refused (`ValueError`) if it would leave the folder."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{g.name}-v{g.version}")
    path = (folder / f"{stem}-window-{g.bucket}.png").resolve()
    if path.parent != folder.resolve():
        raise ValueError(f"plot path {path} is outside {folder}")
    return path


def push(args: argparse.Namespace) -> int:
    where = args.source or args.spool
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    try:
        source = open_source(where, args, log)
    except (bucket_spool.BucketError, FileNotFoundError) as err:
        print(f"report.py push: {err}", file=sys.stderr)
        return EXIT_ERROR
    try:
        with source.lock():
            return Pusher(args, source, log=log).push()
    except (PushError, bucket_spool.BucketError) as err:
        print(f"report.py push: {err}\nnothing was removed from {where}; push again later", file=sys.stderr)
        return EXIT_MLFLOW
    except (RuntimeError, OSError, ValueError) as err:
        print(f"report.py push: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001  never exit 1 (the alert code) for a bug or bad input
        import traceback  # noqa: PLC0415

        traceback.print_exc()
        print(f"report.py push: unexpected error: {type(err).__name__}: {err}\nnothing was removed from {where}",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR


def compact(args: argparse.Namespace, log=None) -> int:
    """Removes the segments of a spool folder that push has consumed whole: every line a record
    logged to MLflow (its id in the ledger) or set aside with its snapshot (quarantine), as the
    checkpoint says (its offset is the segment's size, no invalid line in it), last written more
    than `--keep-days` ago, and not the newest segment (the one the collector appends to). Under
    the push lock; the ledger and the quarantine are kept (the collector refuses their ids)."""
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    where = getattr(args, "source", None) or args.spool
    if bucket_spool.is_bucket(where):
        return compact_bucket(args, where, log)
    spool = Path(where)
    if not spool.is_dir():
        log(f"report.py compact: no spool folder at {where}")
        return EXIT_ERROR
    source = LocalSource(spool)
    horizon = time.time() - args.keep_days * 86400
    removed, freed, kept = [], 0, {}
    with source.lock():
        # the trust push gives the checkpoint, no more: one push would discard deletes nothing
        ck = checked_checkpoint(source.read_checkpoint())
        if not all(source.holds(name, ck.get(key)) for name, key in ((LEDGER, "ledger"), (QUARANTINE, "quarantine"))):
            ck = {}
        segs = _segments(spool)
        for seg in segs[:-1]:
            try:
                st = os.lstat(seg)
            except FileNotFoundError:
                continue
            at = ck.get("segments", {}).get(seg.name) or {}
            if not stat.S_ISREG(st.st_mode) or source._verified(seg, at) != st.st_size:
                kept["not all pushed yet"] = kept.get("not all pushed yet", 0) + 1
            elif at.get("bad"):
                kept["holds lines set aside"] = kept.get("holds lines set aside", 0) + 1
            elif st.st_mtime > horizon:
                kept[f"written within {args.keep_days:g} day(s)"] = kept.get(f"written within {args.keep_days:g} day(s)", 0) + 1
            else:
                seg.unlink()
                removed.append(seg.name)
                freed += st.st_size
        if removed:
            _fsync_dir(spool)
            if ck:
                ck["segments"] = {k: v for k, v in ck["segments"].items() if k not in removed}
                source.write_checkpoint(ck)
    why = ", ".join(f"{n} {reason}" for reason, n in kept.items())
    log(f"report.py compact: removed {len(removed)} segment(s), {freed} bytes, from {spool}"
        + (f"; kept {len(segs) - len(removed)} (the newest" + (f"; {why})" if why else ")") if segs else ""))  # fmt: skip
    return EXIT_OK


def compact_bucket(args: argparse.Namespace, where: str, log) -> int:
    """Deletes the snapshot objects of a bucket (`s3://bucket/prefix`) that push has consumed,
    told by key as push tells it (`consumed_objects`: the whole ledger and quarantine, the
    checkpoint's `partial`, trusted no more than push trusts it: a monitoring object only when
    a line of its own model and version names its id), last modified more than `--keep-days` ago,
    under the push lease (`BucketSource.compact`). Kept besides: an object set aside as not a
    valid snapshot (the quarantine keeps 4 KiB of it), as a folder's segment holding such a line
    is kept; one set aside as a twin (another document with its id) goes, its document is in its
    quarantine line. The ledger,
    quarantine, checkpoint and lease objects are never deleted: their ids stay consumed, so an
    object written again under a deleted key (a retry: refused, 409, only by a collector that
    stored the id or started after it was logged; another stores it again) is not read nor
    counted, and the next compaction deletes it. A key not of `snapshot_key`'s shape is kept
    (`BucketSource.compact`), and a deletion the store refuses is counted, the first five named."""
    horizon = f"written within {args.keep_days:g} day(s)"
    try:
        source = bucket_spool.BucketSource(where, args.s3_endpoint_url, _parse_object,
                                           lease_seconds=args.lease_seconds, log=log)  # fmt: skip
        before_ms = int((time.time() - args.keep_days * 86400) * 1000)
        with source.lock():
            ck = checked_checkpoint(source.read_checkpoint())
            marks = ((LEDGER, "ledger"), (QUARANTINE, "quarantine"))
            if ck and not all(source.holds(name, ck.get(key)) for name, key in marks):
                ck = {}  # push would read everything again: its `partial` vouches for nothing
            ledger, quarantined = source.ledger(LEDGER), source.ledger(QUARANTINE)
            consumed, bad_keys, _ = consumed_objects(ledger, source.head(LEDGER, ck.get("ledger")), quarantined,
                                                     ck.get("partial", []))  # fmt: skip
            # a twin (an id another document has) is set aside with its whole document
            whole = {(e["segment"], e["etag"]) for e in quarantined if isinstance(e.get("snapshot"), dict)
                     and isinstance(e.get("segment"), str) and isinstance(e.get("etag"), str)}  # fmt: skip

            def keep(rel: str, etag: str) -> str | None:
                if (rel, etag) in bad_keys and (rel, etag) not in whole:
                    return "set aside as not a valid snapshot"
                if not consumed(rel, etag):
                    return "not consumed yet"
                return None

            removed, kept, refused = source.compact(keep, before_ms)
    except bucket_spool.BucketError as err:
        log(f"report.py compact: {err}\nrun it again")
        return EXIT_MLFLOW
    kept = {(horizon if why == "recent" else why): n for why, n in kept.items()}
    # keys (and the store's messages, which quote them) as repr: a key may hold control characters
    for rel, error in refused.first:
        log(f"report.py compact: warning: {source.bucket.where(rel)!r} not deleted: {error!r}")
    if refused.count:
        kept["refused by the store"] = refused.count
    why = ", ".join(f"{n} {reason}" for reason, n in kept.items())
    log(f"report.py compact: removed {removed} object(s) from {where}" + (f"; kept {sum(kept.values())} ({why})"
                                                                          if kept else ""))  # fmt: skip
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


#: The modules of the [report] extra each command needs (compact reads no snapshot: none).
COMMAND_MODULES = {
    "serve": ("pydantic", "starlette", "uvicorn", "h11"),
    "push": ("pydantic", "mlflow", "matplotlib"),
    "compact": (),
    "schema": ("pydantic",),
}


def _source_arguments(p: argparse.ArgumentParser) -> None:
    """What names the spool, as `push` and `compact` both take it."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spool", help="the collector's spool: a folder, or s3://bucket/prefix")
    src.add_argument("--from", dest="source", help="the same (a folder, or s3://bucket/prefix)")
    p.add_argument("--s3-endpoint-url", help="S3 endpoint of an s3:// source (default: $AWS_ENDPOINT_URL)")
    p.add_argument("--lease-seconds", type=float, default=60.0,
                   help="s3:// source: this run's lease length (1 to 3600), recorded in the lease and "
                        "renewed every quarter of it; another run takes it over once not renewed that long")  # fmt: skip


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the snapshot collector")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_http.port, default=8787)
    s.add_argument("--spool", required=True, help="a folder, or s3://bucket/prefix (FORMAT.md §4)")
    s.add_argument("--s3-endpoint-url", help="S3 endpoint of an s3:// spool (default: $AWS_ENDPOINT_URL)")
    s.add_argument("--token", help="the shared token (default: $SKEDGE_COLLECTOR_TOKEN)")
    s.add_argument("--max-bytes", type=int, default=MAX_SNAPSHOT_BYTES,
                   help=f"largest snapshot accepted (at most {MAX_BODY_BYTES}, what push reads)")  # fmt: skip
    s.add_argument("--clock-skew-seconds", type=float, default=CLOCK_SKEW_SECONDS,
                   help="refuse (422 CLOCK_SKEW) a window ending further ahead of this host's clock")  # fmt: skip
    s.add_argument("--segment-bytes", type=int, default=64 << 20, help="start a new spool file beyond this")
    s.add_argument("--allow-origin", action="append", help="CORS origin allowed (repeat; default *)")
    s.add_argument("--header-timeout", type=_http.seconds, default=HEADER_TIMEOUT,
                   help="close a connection whose request headers take longer (seconds)")  # fmt: skip
    s.add_argument("--body-timeout", type=_http.seconds, default=BODY_TIMEOUT,
                   help="answer 408 to a request whose body takes longer (seconds)")  # fmt: skip
    s.add_argument("--write-timeout", type=_http.seconds, default=_http.WRITE_SECONDS,
                   help="close a connection whose client does not read a response for this long (seconds)")  # fmt: skip
    s.add_argument("--refusal-log-interval", type=float, default=60.0,
                   help="log refused requests at most once per this many seconds per kind")  # fmt: skip

    p = sub.add_parser("push", help="log the spooled snapshots to MLflow")
    _source_arguments(p)
    p.add_argument("--cache", type=Path,
                   help="s3:// source: keep the objects read here, so later pushes read only new ones")  # fmt: skip
    p.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else .work/mlflow/mlflow.db")
    p.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    p.add_argument("--artifact", action="append", type=Path, help="artifact(s) whose baselines to use")
    p.add_argument("--window-seconds", type=float, default=3600.0)
    p.add_argument("--grace-seconds", type=float, default=300.0,
                   help="push a window only this long after it ended")  # fmt: skip
    p.add_argument("--close-all", action="store_true", help="push open windows too")
    p.add_argument("--clock-skew-seconds", type=float, default=CLOCK_SKEW_SECONDS,
                   help="set aside a window ending further ahead of this host's clock (a device clock ahead)")  # fmt: skip
    p.add_argument("--psi-threshold", type=float, default=0.25)
    p.add_argument("--oov-shift-threshold", type=float, default=0.10)
    p.add_argument("--min-samples", type=int, default=50,
                   help="windows with fewer sampled predictions never alert")  # fmt: skip
    p.add_argument("--performance-threshold", type=float, default=0.05,
                   help="alert when an arm's production accuracy is below its reference by more")  # fmt: skip
    p.add_argument("--reference-metric", default="accuracy",
                   help="the metric of the run that logged the model version to compare with")  # fmt: skip
    p.add_argument("--min-feedback", type=int, default=100,
                   help="no performance alert on fewer labels (all the version's feedback so far)")  # fmt: skip
    p.add_argument("--skedge-monitor", default=str(DEFAULT_SKEDGE_MONITOR))
    p.add_argument("--save-plots", help="also write the drift figures to this folder")

    cp = sub.add_parser("compact", help="remove the segments (or bucket objects) push has consumed, after a retention")
    _source_arguments(cp)
    cp.add_argument("--keep-days", type=float, default=7.0,
                    help="keep consumed segments (objects) last written within this many days")  # fmt: skip

    sc = sub.add_parser("schema", help="print the snapshot JSON Schema")
    sc.add_argument("--experiment", action="store_true", help="the experiment snapshot's schema instead")

    args = parser.parse_args(argv)
    # Checked before the command starts: a module found missing deep inside push (its MLflow
    # client) or serve would be a traceback, not the extra to install.
    for module in COMMAND_MODULES[args.command]:
        if importlib.util.find_spec(module) is None:
            raise _cli.ExtraMissing(module, "report")
    if _MISSING is not None and COMMAND_MODULES[args.command]:
        raise _MISSING

    def finite(name: str, value: float, low: float) -> None:
        # inf and nan pass a plain comparison and end in a traceback (exit 1, push's alert code)
        if not (math.isfinite(value) and value >= low):
            parser.error(f"{name} must be a finite number ≥ {low:g}, not {value}")

    def lease_seconds() -> None:
        # the range a waiter honours a holder's recorded length in (spool.lease_length): a longer
        # one would be taken over live, after the hour a waiter caps it to
        low, high = bucket_spool.MIN_LEASE_SECONDS, bucket_spool.MAX_LEASE_SECONDS
        if not (math.isfinite(args.lease_seconds) and low <= args.lease_seconds <= high):
            parser.error(f"--lease-seconds must be {low:g} to {high:g}, not {args.lease_seconds}")

    if args.command == "serve":
        if not 1 <= args.max_bytes <= MAX_BODY_BYTES:
            parser.error(f"--max-bytes must be 1 to {MAX_BODY_BYTES} (push reads spool records of at "
                         f"most {MAX_RECORD_BYTES} bytes), not {args.max_bytes}")  # fmt: skip
        finite("--clock-skew-seconds", args.clock_skew_seconds, 0)
        return serve(args)
    if args.command == "push":
        finite("--window-seconds", args.window_seconds, 0.001)  # a window is at least 1 ms
        finite("--grace-seconds", args.grace_seconds, 0)
        finite("--clock-skew-seconds", args.clock_skew_seconds, 0)
        lease_seconds()
        return push(args)
    if args.command == "compact":
        finite("--keep-days", args.keep_days, 0)
        lease_seconds()
        try:
            return compact(args)
        except Exception as err:  # noqa: BLE001  never exit 1 (push's alert code, for a cron's eyes)
            print(f"report.py compact: error: {type(err).__name__}: {err}", file=sys.stderr)
            return EXIT_ERROR
    print(json.dumps((ExperimentSnapshot if args.experiment else Snapshot).model_json_schema(), indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(_cli.run("report", main))
