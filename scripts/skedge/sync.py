"""Keeping the edge in sync with the MLflow registry (issue #14 item 2).

    python scripts/sync.py reconcile --model NAME --alias ALIAS --publish DEST [--tracking-uri URI]
    python scripts/sync.py rollback  --model NAME --alias ALIAS --publish DEST [--to-version V] [--tracking-uri URI]
    python scripts/sync.py serve --publish DEST [--host 127.0.0.1] [--port 8788]   # secret: $SKEDGE_WEBHOOK_SECRET
    (all three: [--sign-key KEY] [--trust-key PUB]... [--allow-unsigned] [--s3-endpoint-url URL];
     reconcile and serve: [--precision compact [--max-label-disagreement P]])
    python scripts/sync.py webhook create --url URL --secret SECRET [--tracking-uri URI]
    python scripts/sync.py promote --model NAME [--from challenger] [--to champion] [--min-feedback 200]
        [--min-accuracy-delta 0] [--min-agreement A] [--dry-run] [--json] [--tracking-uri URI]

``reconcile`` is one idempotent pass (for cron: webhook deliveries can be lost): it resolves the
alias itself, and when the pointer at DEST does not name that version yet (or its blob holds
another body than the registry's), exports the version (``models:/NAME/VERSION``, so an alias
moving meanwhile cannot mix versions) through the parity gate and publishes it (a version
exported unsigned before, by ``export.py``, is re-sealed with ``--sign-key``: same model,
signature added; bytes of another body, such as a drift baseline of their own, are refused, exit
3). The registry's tags and files are no evidence: anyone who can log artifacts and set version
tags writes them. With ``--trust-key PUB`` (repeatable: an export host's public key, whose
signature means "passed that host's parity gate"; a file that is not a public key skedge can use is
a usage error, exit 3, before anything else, ``serve`` binding its port included) the pass
publishes instead the artifact the registry records for the version, when it is usable: the file
its tags ``skedge.artifact_path`` and ``skedge.size`` name in its run (a sized file in the listing,
never a directory), with its manifest beside it, downloaded (no larger than the tag, at most what a
pointer can name), checked against ``skedge.sha256`` and ``skedge.body_sha256``, **signed by a
pinned key** (``skedge inspect --public-key``), and its signed metadata naming this model, this
version and ``--precision``. DEST's manifest for it is made from the verified bytes and that signed
metadata alone (the registry's manifest is anyone's file: its ``parity``, ``exported_at`` and
``export``, which no artifact carries, are left out). It is published as it is, or with
``--sign-key`` re-sealed for DEST by ``skedge repack --public-key PUB --sign-key`` (the same
body). An artifact failing any check is not usable (the pass logs why) and the version is
exported as without the option. A pass's own export is written back as ``export.py`` does; a
failed gate publishes nothing and the pointer keeps naming the last good version, and tags the
version ``skedge.sync = refused: <reason>`` (a failed gate or an unsupported pipeline is a
property of the version: running again gives the same answer). Exits 0 when the
pointer already names the alias's version and can stay (nothing written): it names the bytes the
registry records for that version now (its ``skedge.sha256`` tag, which ``export.py --force``
replaces; a version without one is not compared), with ``--sign-key`` it verifies with the key's
``.pub``, and no later generation is in the destination's history (else it is a replayed or
restored pointer). Such a pass writes the version's ``skedge.published`` only when it is missing
or names this destination at a lower generation (never over another destination's: the tag names
one destination and no alias). The pointer is read once, at the start of the pass, and the
publish is conditional on that read; after the export the alias is resolved again, and a pass whose
alias moved meanwhile publishes nothing (PUBLISH_STALE, exit 3): an older version never goes out
after a newer one, and the move's own pass publishes the newer one. The destination's high-water
mark is also kept in MLflow (:class:`MlflowLedger`, a registered-model tag raised before the
pointer moves): a destination restored from a backup, recreated or wiped is published over above
every generation followers have seen, and a pointer below that mark is not in sync.

``rollback`` points the alias and the pointer back at an earlier generation's blob (still there:
blobs are never deleted). It moves the MLflow alias **first**, then writes the pointer (a new,
higher generation naming the old blob): the registry is what ``reconcile`` converges to, so if the
second step fails, the next ``reconcile`` completes the rollback. In the other order, a
``reconcile`` running between the two steps (or after a failed alias move) would re-publish the
version being rolled back from. Before the alias moves, the rollback is recorded in MLflow (a
registered-model tag per destination and alias, removed once the pointer is written), so a pass
that writes the pointer first (the next ``reconcile`` after the write failed, or the pass the move's
own webhook prompted, when ``rollback`` is held up between its steps) writes it as this rollback,
not as an ordinary publish that a second rollback would undo; ``rollback`` then finds its
generation written and exits 0. The record is confirmed (``moved``) right after the alias move: one
left unconfirmed by a ``rollback`` stopped before its move is never acted on, so a later ordinary
move of the alias to that version is published as a move, not finished as that rollback (a pass
waits ``ROLLBACK_CONFIRM_SECONDS`` for it, and reads it once more before it publishes).
Rollbacks pop (the history's ``rollback_to``, FORMAT.md §5): the first returns to the generation the
current one replaced, a second one further back, never to the version just rolled away from (tagged
``skedge.rolled_back``); ``--to-version`` names the version. On a destination older than its
history, the stored pointer's entry is written first, and a generation without an entry is the blob
the pointer that replaced it names (``previous_sha256``).

``serve`` receives MLflow's model-registry webhooks (``model_version_alias.created`` and
``.deleted``, and ``model_version_tag.set``; the webhook is registered by ``webhook create``, which
updates one of the same name and URL made before the tag event was subscribed to). A delivery is
accepted only with a valid ``X-MLflow-Signature`` (``v1,`` + base64 HMAC-SHA256 with the shared
secret over ``<X-MLflow-Delivery-Id>.<X-MLflow-Timestamp>.<body>``), a timestamp within
``--tolerance`` seconds of now, and a delivery id not seen within that window (a replay older than
the window is stale; the ids kept are bounded by it). It is answered at once (202) and only
*prompts* a pass: one worker per model and alias runs ``reconcile`` in a child process, which
resolves the alias itself, so a forged, reordered or lost payload can never choose a version.
Prompts arriving while a pass runs coalesce into one more pass after it, so two racing alias moves
end on the later one. A version's tag set
prompts only for ``skedge.sha256``, the tag an export writes last (``export.py --force`` replaced
the version's bytes: the pass then finds the pointer's blob holding another body); serve asks
MLflow which aliases name that version and prompts each one's pass (``--alias`` still restricts
them). Every other tag, sync's own included, is answered 200 ``ignored`` and starts nothing.

``promote`` moves the ``--to`` alias to the version of the ``--from`` alias when the production
evidence says so (issue #15). It reads, in every monitoring run of each version (the one its tag
``skedge.monitoring_run_id`` names and the others ``report.py push`` tagged with its name and
version: a version served as two artifacts has a run each; runs of different window lengths
refuse), what push logged per experiment window against the other arm's version:
``skedge.peer/<version>/feedback.count`` / ``.correct`` and ``.../shadow.pairs`` / ``.agree``, the
per-peer counts (a window in which a version ran against another peer is not evidence of this
pair; a window logged by a push from before per-peer evidence has only counts over all its peers
and is not counted either: a note says how many). Per step the latest point wins (a revision
re-logs its window later); a step's earliest timestamp is the window's end, and only windows both
arms have count. Summed, they give each arm's accuracy (correct / count) and the agreement (agree
/ pairs). It refuses, printing the evidence table and one
``refused:`` line per reason, when the challenger has fewer than ``--min-feedback`` labelled
predictions (200), when its accuracy is below the champion's + ``--min-accuracy-delta`` (0; compared
as exact fractions, so a tie passes), when the agreement is below ``--min-agreement`` (when given;
no shadow pairs refuses then), when the champion has no labelled predictions, when either version
has ``skedge.drift_alert``, or the challenger ``skedge.performance_alert`` (the champion's is a reason
to promote). Otherwise it reads both aliases again (either moved since the evaluation: nothing
moves, PROMOTE_STALE, exit 3; MLflow has no compare-and-set of an alias, so a move in the instant
between that read and the move is not seen), moves the alias to the evaluated version number, then
tags that version ``skedge.promoted`` (time, the version it replaced, the
evidence); ``sync.py serve`` receives the alias event and the edge follows. ``--dry-run``
evaluates only; ``--json`` prints the evidence as JSON on stdout (windows, per-arm counts and
accuracy, shadow, thresholds, alerts, reasons, promoted) and the table on stderr. When both aliases
already name the same version it says so and exits 0. The ``--from`` alias is left as it is.

Exit codes: 0 done or already in sync, 1 the parity gate failed, 2 unsupported pipeline, 3 any other
failure (bad arguments too). promote: 0 promoted (or nothing to move; with ``--dry-run``: would
promote), 1 refused, 2 MLflow unreachable or failing, 3 bad arguments, an alias not set or
moved during the evaluation (PROMOTE_STALE).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import io
import json
import math
import os
import sys
import tempfile
import time
import typing
from fractions import Fraction
from pathlib import Path

from . import _http, publish
from ._cli import tool_command

EXIT_OK, EXIT_MISMATCH, EXIT_UNSUPPORTED, EXIT_FAILURE = 0, 1, 2, 3
#: The registry events `serve` acts on (MLflow >= 3.3): an alias moved or deleted, and a version's
#: tag set, for the one tag an export writes last (`SHA256_TAG`: `export.py --force` replaced the
#: version's bytes, and the aliases naming it are to be published again).
ALIAS_EVENTS = ("model_version_alias.created", "model_version_alias.deleted")
TAG_EVENT = "model_version_tag.set"
EVENTS = (*ALIAS_EVENTS, TAG_EVENT)


def _client(tracking_uri: str | None):
    from . import registry  # the exporter's MLflow helpers; imports MLflow lazily

    uri = registry.resolve_tracking_uri(tracking_uri)
    registry.prepare_tracking(uri)
    return registry.client(uri), uri


#: The version tags sync reads and writes: what the registry publishes for a version (set by
#: export.py --model-uri, `registry.skedge_tags`) and where sync last published it.
SHA256_TAG, PUBLISHED_TAG = "skedge.sha256", "skedge.published"


def _tag(client, model: str, version: str, dest: str, generation: int) -> None:
    client.set_model_version_tag(model, version, PUBLISHED_TAG, f"{dest} generation {generation}")


def _published_at(value: str | None) -> tuple[str, int] | None:
    """(destination, generation) of a `skedge.published` value, or None (absent, or not one)."""
    where, sep, generation = (value or "").rpartition(" generation ")
    return (where, int(generation)) if sep and where and generation.isdigit() else None


def _retag(client, model: str, version: str, tags: dict, dest: str, generation: int, log) -> bool:
    """`skedge.published` written by a pass that found the pointer in sync, when the pass that
    published it could not tag it (MLflow failing after the pointer moved, the process killed)
    or did not (`export.py --publish` publishes without it): the tag is missing or unreadable, or
    names this destination at a lower generation than its pointer. True when written.

    Never when it names another destination, nor this one at a higher generation: the tag names
    one destination and no alias, so a version served by two destinations (or by two aliases of
    one, each pointer with its own generations) would otherwise be re-tagged by every in-sync
    pass of each in turn. So the tag only ever moves up within a destination, filled in once
    when missing, and a publish moves it as before. (A generation lower than the tag's cannot
    be this alias's newer pointer: MLflow's mark keeps a destination's generations rising.)
    Best effort: the pointer is in sync whether or not its record could be written."""
    named = _published_at(tags.get(PUBLISHED_TAG))
    if named is not None and (publish.dest_id(named[0]) != publish.dest_id(dest) or named[1] >= generation):
        return False
    try:
        _tag(client, model, version, dest, generation)
    except Exception as err:  # noqa: BLE001 - MlflowException, requests errors: reported, the next pass tries again
        log(f"WARNING: could not tag {model} version {version} {PUBLISHED_TAG}: {type(err).__name__}: {err}")
        return False
    return True


def _dest_tag(prefix: str, dest: str, alias: str) -> str:
    """A registered-model tag key per destination and alias: `prefix` + the first 16 hex digits of
    sha256(`publish.dest_id(DEST)` + "\\n" + alias) (a destination URL cannot be a tag key)."""
    return prefix + hashlib.sha256(f"{publish.dest_id(dest)}\n{alias}".encode()).hexdigest()[:16]


#: The registered-model tag holding a destination's high-water mark for one alias (FORMAT.md §5).
LEDGER_TAG = "skedge.generation."


class MlflowLedger:
    """The highest generation handed out per destination and alias, kept in MLflow beside the
    destination's own history (`publish.Ledger`), so that a destination restored from a backup,
    recreated or wiped never makes a publisher hand out a generation followers have seen.

    One registered-model tag per destination and alias: ``skedge.generation.<h>`` where ``<h>`` is
    the first 16 hex digits of sha256(`publish.dest_id(DEST)` + "\\n" + alias) (a destination URL
    cannot be a tag key), its value JSON ``{"dest": ..., "alias": ..., "generation": N}``. The
    version tag ``skedge.published`` cannot serve: it names neither the alias nor, once the version
    is published elsewhere, this destination, and is written after the pointer moved.

    `record` only raises it: a set, read back, set again if a concurrent publisher's lower value
    landed after it (a few rounds); MLflow has no conditional write, so two publishers of one
    alias racing to the last moment can still leave the lower of two consecutive generations."""

    ROUNDS = 5
    name = "MLflow"

    def __init__(self, client, dest: str):
        self.client, self.dest = client, publish.dest_id(dest)

    def key(self, alias: str) -> str:
        return _dest_tag(LEDGER_TAG, self.dest, alias)

    def recorded(self, model: str, alias: str) -> int:
        key = self.key(alias)
        try:
            tags = self.client.get_registered_model(model).tags or {}
        except Exception as err:  # MlflowException, requests errors
            raise publish.PublishError(f"MLflow: reading {model}'s tag {key}: {type(err).__name__}: {err}") from err
        if key not in tags:
            return 0
        try:
            doc = json.loads(tags[key])
            generation = int(doc["generation"])
            if (doc["dest"], doc["alias"]) != (self.dest, alias) or generation < 0:
                raise ValueError(f"it names {doc['dest']} {doc['alias']}")
        except (ValueError, KeyError, TypeError) as err:
            raise publish.PublishError(f"MLflow: {model}'s tag {key} is not the generation record of {self.dest} "
                                       f"{alias} ({err}): correct or delete it") from None
        return generation

    def record(self, model: str, alias: str, generation: int) -> None:
        key = self.key(alias)
        value = json.dumps({"dest": self.dest, "alias": alias, "generation": generation})
        for _ in range(self.ROUNDS):
            if self.recorded(model, alias) >= generation:
                return
            try:
                self.client.set_registered_model_tag(model, key, value)
            except Exception as err:
                raise publish.PublishError(f"MLflow: recording generation {generation} in {model}'s tag {key}: "
                                           f"{type(err).__name__}: {err}") from err
        if self.recorded(model, alias) < generation:
            raise publish.PublishError(f"MLflow: {model}'s tag {key} kept being lowered below generation "
                                       f"{generation} by concurrent publishers: not published, run again")


class _Tee(io.TextIOBase):
    """stderr, and the lines written to it: the export's own words become the refusal's reason."""

    def __init__(self, out):
        self.out, self.lines = out, []

    def write(self, s: str) -> int:
        self.out.write(s)
        self.lines += [line for line in s.splitlines() if line.strip()]
        return len(s)

    def flush(self) -> None:
        self.out.flush()


def _reason(rc: int, lines: list) -> str:
    """What refused the version, in one line: the export's verdict (`parity gate FAILED: ...`) or error."""
    what = "the parity gate failed" if rc == EXIT_MISMATCH else "unsupported pipeline"
    for line in lines:
        low = line.lower()
        if low.startswith(("error", "unsupported", "refused")) or "gate failed" in low:
            return f"{what}: {line.strip().removeprefix('error: ')}"[:500]
    return what


def _store_state(args: argparse.Namespace, client):
    """The destination and the alias's pointer as this pass finds it (read once, at the start),
    with the high-water mark MLflow recorded for this destination and alias (`MlflowLedger`)."""
    store = publish.open_store(args.publish, args.s3_endpoint_url)
    state = publish.read_state(store, args.model, args.alias, skedge=args.skedge,
                               public_key=publish.public_key_of(args.sign_key),
                               ledger=MlflowLedger(client, args.publish))
    return store, state


def _model_version_of(client, model: str, alias: str):
    """The version `alias` names (a ModelVersion, with its tags), or None when it is not set."""
    try:
        return client.get_model_version_by_alias(model, alias)
    except Exception as err:  # MlflowException: the alias (or the model) is not there
        if "RESOURCE_DOES_NOT_EXIST" not in str(getattr(err, "error_code", "")) and "not found" not in str(err):
            raise
        return None


def _version_of(client, model: str, alias: str) -> str | None:
    mv = _model_version_of(client, model, alias)
    return None if mv is None else str(mv.version)


def reconcile(args: argparse.Namespace, log=lambda s: print(s, file=sys.stderr)) -> int:
    from . import export  # the gate
    from . import manifest as _manifest

    client, uri = _client(args.tracking_uri)
    mv = _model_version_of(client, args.model, args.alias)
    if mv is None:
        log(f"no version: {args.model}@{args.alias} is not set; the pointer keeps what it names")
        return EXIT_FAILURE
    version, tags = str(mv.version), mv.tags or {}
    store, state = _store_state(args, client)
    other = _other_model(store, state.pointer, tags) if state.names(version) else None
    if state.names(version) and other is None:
        publish.remember(state)  # a destination published before MLflow kept its mark
        tagged = _retag(client, args.model, version, tags, args.publish, state.pointer["generation"], log)
        log(f"in sync: {args.model}@{args.alias} is version {version}, pointer generation {state.pointer['generation']}"
            + (f" (tagged {PUBLISHED_TAG})" if tagged else ""))
        return EXIT_OK
    if state.problem:
        log(f"not in sync: {state.problem}; publishing version {version} again")
    elif other:
        log(f"not in sync: version {version}: {other}; publishing it again")
    pending, unconfirmed = _pending_rollback(client, store, state, args, version, log)
    if pending is not None:
        return _finish_rollback(client, store, state, args, pending, log)
    with tempfile.TemporaryDirectory(prefix="skedge-sync-") as tmp:
        found = _registry_artifact(client, uri, args, mv, Path(tmp), log) if args.trust_key else None
        if found is not None:
            # Signed by a pinned export key: gated by that host, so published without an export
            # here, re-sealed for this destination when it signs with its own key.
            out, man = _sealed(found, args, version, log)
            return _publish_version(client, store, state, args, version, out, man, log, unconfirmed=unconfirmed)
        out = Path(tmp) / f"{args.model}.skedge"
        argv = ["--model-uri", f"models:/{args.model}/{version}", "--out", str(out), "--skedge", str(args.skedge),
                "--name", args.model]
        if uri:
            argv += ["--tracking-uri", uri]
        if args.sign_key:
            argv += ["--sign-key", str(args.sign_key)]
        if args.precision != "exact":
            argv += ["--precision", args.precision, "--max-label-disagreement", str(args.max_label_disagreement)]
        tee = _Tee(sys.stderr)
        # Without a pinned export key (or no trusted artifact) the version is exported here: the
        # registry's tags and files are writable by anyone who can log artifacts, so they are
        # only compared against. Bytes this export does not make (another body: a drift baseline
        # of their own, --force) are refused (exit 3): sync has no --force, so the refusal names
        # export.py's. Only their seal differing re-seals them.
        force = f"run scripts/export.py --model-uri models:/{args.model}/{version} --out FILE --force"
        with contextlib.redirect_stderr(tee):
            rc = export.main(argv, force_advice=force)
        if rc != EXIT_OK:
            log(f"not published: the export of {args.model} version {version} exited {rc}; the pointer is unchanged")
            if rc in (EXIT_MISMATCH, EXIT_UNSUPPORTED):
                client.set_model_version_tag(args.model, version, "skedge.sync", f"refused: {_reason(rc, tee.lines)}")
            return rc
        man = json.loads(_manifest.manifest_path_for(out).read_text(encoding="utf-8"))
        return _publish_version(client, store, state, args, version, out, man, log, pinned=False,
                                unconfirmed=unconfirmed)


def _finish_rollback(client, store, state, args, pending: tuple, log) -> int:
    """Writes the pointer of the rollback `_pending_rollback` found, and drops its record."""
    done = _point_back(client, store, state, args, *pending)
    _drop_rollback(client, args, log)
    log(done.describe(args.publish))
    return EXIT_OK


def _publish_version(client, store, state, args, version: str, out: Path, man: dict, log, *,
                    pinned: bool = True, unconfirmed: bool = False) -> int:
    """Publishes `out` (described by `man`) as `version` of the alias, unless the alias moved
    since the pass resolved it, then tags the version. `pinned`: `out` is the registry's artifact
    of that version, whatever URI its export was asked for by (`publish.publish`).
    `unconfirmed`: the pass gave up waiting for a rollback record's `moved` (`_pending_rollback`),
    read once more now: confirmed since, the rollback is finished instead of this publish."""
    # The export or download took seconds: an alias moved meanwhile is another pass's to publish
    # (serve was prompted by the move), and an older version must never go out after a newer one.
    now = _version_of(client, args.model, args.alias)
    if now != version:
        raise publish.StalePublish(f"{args.model}@{args.alias} moved from version {version} to {now} during "
                                   "the pass: not published (the pass for the move publishes it)")
    if unconfirmed:
        # A `rollback` held up between its alias move and its confirmation for longer than the
        # wait may have confirmed during the export: published as a move, a second rollback
        # would return to the version it rolled away from.
        pending, _ = _pending_rollback(client, store, state, args, version, log, wait=0.0)
        if pending is not None:
            return _finish_rollback(client, store, state, args, pending, log)
    done = publish.publish(out, man, args.publish, alias=args.alias, model=args.model, skedge=args.skedge,
                           sign_key=args.sign_key, endpoint_url=args.s3_endpoint_url, state=state,
                           allow_unsigned=args.allow_unsigned, pinned=pinned)
    log(done.describe(args.publish))
    _tag(client, args.model, version, args.publish, done.pointer["generation"])
    if "skedge.sync" in (client.get_model_version(args.model, version).tags or {}):
        client.delete_model_version_tag(args.model, version, "skedge.sync")  # an earlier refusal, now untrue
    return EXIT_OK


#: The largest artifact a pass downloads from the registry: what a pointer can name (FORMAT.md §5).
#: The version's `skedge.size` tag is checked against it and against the run's listing before the
#: download, and the file downloaded against the tag before a byte of it is read.
MAX_ARTIFACT_BYTES = 2**32 - 1
#: A manifest is a few KB; a larger one is not read.
MAX_MANIFEST_BYTES = 1 << 20


class RegistryArtifact(typing.NamedTuple):
    """The artifact the registry records for a version, downloaded and checked: its file, its
    bytes, and the manifest DEST publishes for it (`vouched_manifest`: from the verified bytes and
    signed metadata, never from the registry's manifest beside it)."""

    path: Path
    data: bytes
    manifest: dict


def _trusted_metadata(args, path: Path) -> dict | str:
    """The artifact's own metadata (`skedge inspect`) once its signature verifies under one of
    the pinned `--trust-key`s, or why not (unsigned, another key, encrypted, not an artifact)."""
    keys = [a for pub in args.trust_key for a in ("--public-key", str(pub))]
    try:
        info = json.loads(publish._skedge(args.skedge, ["inspect", str(path), *keys]))
    except publish.PublishError as err:
        return f"not signed by a --trust-key ({str(err).strip()[:300]})"
    except ValueError as err:
        return f"skedge inspect printed no JSON ({err})"
    if not (isinstance(info, dict) and info.get("signed") is True and info.get("signature_verified") is True):
        return "skedge inspect did not verify its signature under a --trust-key"
    return info


def _registry_artifact(client, uri: str, args, mv, tmp: Path, log) -> RegistryArtifact | None:
    """The artifact `export.py --model-uri` (or an earlier pass) recorded for version `mv`, when
    it can be trusted: the file its `skedge.artifact_path` tag names in the version's run (a file
    of at most `skedge.size` bytes in the listing; a directory or an entry without a size is not
    downloaded), downloaded into `tmp` with the manifest beside it, checked against the version's
    `skedge.sha256`, `skedge.size` and `skedge.body_sha256`, and **signed by one of the pinned
    `--trust-key`s**, its signed metadata naming this registered model, this version and
    `--precision`. The tags and files are written by anyone who can log artifacts to the run: they
    locate the bytes, the signature is what vouches for them (the export host's parity gate). None
    when there is none, or none usable (why is logged): the pass then exports the version itself."""
    from . import registry  # imports MLflow lazily

    model, precision = args.model, args.precision
    version, tags = str(mv.version), mv.tags or {}
    sha, rel = tags.get(SHA256_TAG), tags.get("skedge.artifact_path")
    if not sha:
        return None
    who = f"{model} version {version}"

    def unusable(why: str) -> None:
        log(f"the registry's artifact of {who} (sha256 {sha}) is not usable: {why}; exporting the version")

    size = tags.get("skedge.size", "")
    if not rel or not mv.run_id or not size.isdigit():
        return unusable("no skedge.artifact_path or skedge.size tag, or no source run, names its file")
    if int(size) > MAX_ARTIFACT_BYTES:
        return unusable(f"skedge.size {size} is above {MAX_ARTIFACT_BYTES} bytes")
    if not tags.get("skedge.parity", "").startswith("passed"):
        return unusable(f"its parity gate did not pass (skedge.parity: {tags.get('skedge.parity', 'absent')!r})")
    man_rel = str(registry.manifest_path_for(rel))
    with registry._mlflow_errors(uri, f"listing the artifacts of run {mv.run_id}"):
        listed = {a.path: a for a in client.list_artifacts(mv.run_id, str(Path(rel).parent))}
    for path, limit in ((rel, int(size)), (man_rel, MAX_MANIFEST_BYTES)):
        entry = listed.get(path)
        if entry is None:
            return unusable(f"{path} is missing from run {mv.run_id}")
        # A directory is listed without a size and downloaded whole: only a sized file is fetched.
        if entry.is_dir or entry.file_size is None:
            return unusable(f"{path} in run {mv.run_id} is a directory or has no size in the listing")
        if entry.file_size > limit:
            return unusable(f"{path} in run {mv.run_id} is {entry.file_size} bytes, more than {limit}")
    with registry._mlflow_errors(uri, f"downloading {rel} from run {mv.run_id}"), registry.using(uri):
        local = [Path(registry.download(run_id=mv.run_id, artifact_path=p, dst_path=str(tmp / "registry"),
                                        tracking_uri=uri)) for p in (rel, man_rel)]  # fmt: skip
    if not all(p.is_file() for p in local):
        return unusable(f"{rel} or {man_rel} in run {mv.run_id} downloaded as something other than a file")
    if local[0].stat().st_size != int(size):
        return unusable(f"{rel} in run {mv.run_id} is {local[0].stat().st_size} bytes, not skedge.size {size}")
    if local[1].stat().st_size > MAX_MANIFEST_BYTES:
        return unusable(f"{man_rel} in run {mv.run_id} is more than {MAX_MANIFEST_BYTES} bytes")
    # Its signature first (the Rust CLI reads no further than the header says): a file no
    # pinned key signed is never read into memory here, whatever its size.
    info = _trusted_metadata(args, local[0])
    if isinstance(info, str):
        return unusable(info)
    # The signed metadata, never the manifest (anyone's file): it names what the key vouched for.
    signed = (str(info.get("name", "")), str(info.get("version", "")), str(info.get("precision", "")))
    if signed != (model, version, precision):
        return unusable(f"its signed metadata names {signed[0]!r} version {signed[1]!r} precision {signed[2]!r}, "
                        f"not {model!r} version {version!r} precision {precision!r}")
    # `name` and `version` are what export.py's --name/--version said (an export from a joblib
    # file has no registry at all), and NAME v1 of another registry or of a renamed model is
    # another model: the signed provenance must name this version, its run and its source.
    prov = info.get("provenance") if isinstance(info.get("provenance"), dict) else {}
    bound = (prov.get("registered_model"), prov.get("version"), prov.get("run_id"), prov.get("source_uri") or "")
    if bound != (model, version, mv.run_id, mv.source or ""):
        return unusable(f"its signed provenance names {bound!r}, not {model!r} version {version!r} of run "
                        f"{mv.run_id} and source {mv.source!r}")
    data = local[0].read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha:
        return unusable(f"{rel} in run {mv.run_id} has sha256 {digest}: overwritten or tampered with")
    body, tagged = registry.body_sha256(data), tags.get(registry.BODY_TAG, "")
    if len(tagged) == 64 and body != tagged:
        return unusable(f"its body is not {registry.BODY_TAG} {tagged}")
    if body is None:  # encrypted: inspect refuses it without a decryption key, so never here
        return unusable("it is encrypted")
    # The manifest beside it must describe these bytes (an export's layout), and is read no further.
    try:
        beside = json.loads(local[1].read_bytes())
        described = (beside["sha256"], beside["size"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        return unusable(f"{man_rel} is not a manifest ({type(err).__name__}: {err})")
    if described != (sha, len(data)):
        return unusable(f"{man_rel} describes another artifact")
    return RegistryArtifact(local[0], data, vouched_manifest(local[0], info, model))


#: The fields of an export's manifest that no artifact carries: its parity report, when and how it
#: was asked for (`manifest.build_manifest`). In the registry they are anyone's to write.
UNVOUCHED_FIELDS = ("parity", "exported_at", "export")


def vouched_manifest(path: Path, info: dict, model: str) -> dict:
    """The manifest DEST publishes for a registry artifact a pinned key signed: made here, as
    `export.py` makes one, from what the signature vouches for, never from the registry's manifest
    (anyone with MLflow write access writes it): the verified bytes (`sha256`, `size`,
    `integrity`) and the signed metadata `info` (`skedge inspect`: name, version, precision,
    format, classes, estimator, versions, provenance, metrics). `UNVOUCHED_FIELDS` are left out:
    the export host's parity report is not in the bytes (the pinned key's signature is the
    gate's evidence), nor is when or how it exported. `file` is the name a pass's own export
    gives, not the registry's."""
    from .manifest import build_manifest

    man = build_manifest(path, inspect=info)
    for field in UNVOUCHED_FIELDS:
        man.pop(field, None)
    man["file"] = f"{model}.skedge"
    return man


def _sealed(found: RegistryArtifact, args, version: str, log) -> tuple[Path, dict]:
    """A trusted registry artifact as this destination publishes it, with its manifest: as it is
    without `--sign-key`; with it, re-sealed by `skedge repack --public-key TRUST… --sign-key`
    (its signature checked again by the CLI; deterministic: bytes this key signed already come out
    the same) when that changes the bytes, the body unchanged."""
    from . import registry  # imports MLflow lazily
    from .manifest import digests

    man = found.manifest
    body = registry.body_sha256(found.data)
    if not args.sign_key:
        log(f"{args.model} version {version}: the registry's artifact (sha256 {man['sha256']}, signed by a "
            "--trust-key) published as it is")
        return found.path, man
    out = found.path.with_name(f"sealed-{found.path.name}")
    keys = [a for pub in args.trust_key for a in ("--public-key", str(pub))]
    publish._skedge(args.skedge, ["repack", str(found.path), str(out), *keys, "--sign-key", str(args.sign_key)])
    data = out.read_bytes()
    if data == found.data:
        return found.path, man
    if registry.body_sha256(data) != body:
        # An artifact of an older layout: repack rewrites its body, which is then not the version's.
        raise publish.PublishError(
            f"re-sealing the registry's artifact of {args.model} version {version} (sha256 {man['sha256']}) "
            f"with --sign-key would change its body (an older layout): run scripts/export.py --model-uri "
            f"models:/{args.model}/{version} --out FILE --force to export it again")
    sha, integrity, size = digests(out)
    log(f"{args.model} version {version}: the registry's artifact (sha256 {man['sha256']}, signed by a --trust-key) "
        f"re-sealed for {args.publish} ({registry.seal_change(found.data, data)}): sha256 {sha}, the same body")
    return out, {**man, "sha256": sha, "integrity": integrity, "size": size}


def _rollback_target(store, state, args) -> tuple[dict, int, int] | str:
    """(the pointer fields to publish again, the generation they come from, its `rollback_to`),
    or why there is nothing to roll back to.

    A rollback pops: a normal publish records the generation it replaced (`rollback_to`), and a
    rollback to generation T records T's own `rollback_to`, so rolling back again goes further
    back instead of re-publishing the version just rolled away from."""
    pub = publish.public_key_of(args.sign_key)

    def entry(generation: int) -> dict | None:
        return publish.read_history(store, args.model, args.alias, generation, skedge=args.skedge, public_key=pub)

    def verified(generation: int) -> dict | None:
        try:
            return entry(generation)
        except publish.PublishError:  # unsigned, another key's, altered: never a target
            return None

    current = state.pointer
    if args.to_version:
        for generation in reversed(state.history):
            found = verified(generation)
            if found and found["pointer"]["version"] == args.to_version and generation != current["generation"]:
                return found["pointer"], generation, found["rollback_to"]
        return f"version {args.to_version} was never published to {args.publish} for {args.model}@{args.alias}"
    mine = entry(current["generation"])
    if mine and mine["pointer"]["sha256"] == current["sha256"]:
        target = mine["rollback_to"]
    else:  # a pointer published before the history existed: its own link is all there is
        target = current["previous_generation"]
    if not target:
        return (f"{args.publish} has no earlier generation for {args.model}@{args.alias} to roll back to "
                "(name one with --to-version)")
    return _at_generation(store, state, args, target)


def _at_generation(store, state, args, target: int) -> tuple[dict, int, int] | str:
    """(the pointer fields of generation `target`, `target`, its `rollback_to`), or why not: its
    history entry, else (a generation older than the history) the blob the pointer that replaced
    it names, with nothing further back recorded."""
    pub = publish.public_key_of(args.sign_key)

    def verified(generation: int) -> dict | None:
        try:
            return publish.read_history(store, args.model, args.alias, generation, skedge=args.skedge, public_key=pub)
        except publish.PublishError:  # unsigned, another key's, altered: never a target
            return None

    found = publish.read_history(store, args.model, args.alias, target, skedge=args.skedge, public_key=pub)
    if found:
        return found["pointer"], target, found["rollback_to"]
    # No entry for it (published before the history existed): the blob that the pointer which
    # replaced it names as its previous one, and nothing further back recorded.
    sha = _replaced_by(state, target, verified)
    if sha is None:
        return f"generation {target} is not in {args.publish}'s history (name a version with --to-version)"
    blob, raw = store.read(publish.blob_key(sha)), store.read(publish.manifest_key(sha))
    if blob is None or raw is None or hashlib.sha256(blob[0]).hexdigest() != sha:
        return f"the blob {publish.blob_key(sha)} or its manifest is missing or altered"
    man = json.loads(raw[0])
    provenance = man.get("provenance") or {}
    fields = {"version": str(provenance.get("version") or man.get("version", "")),
              "run_id": provenance.get("run_id") or "", "sha256": sha, "size": len(blob[0]),
              "integrity": man["integrity"], "format_version": man["format_version"]}
    return fields, target, 0


def _replaced_by(state, target: int, verified) -> str | None:
    """The sha256 of generation `target` as the pointer that replaced it records it
    (`previous_sha256`): the stored pointer, else the first later history entry naming `target` as
    its previous generation (a seeded entry of a destination older than its history)."""
    if state.pointer["previous_generation"] == target:
        return state.pointer["previous_sha256"]
    for generation in (g for g in state.history if g > target):
        found = verified(generation)
        if found and found["pointer"]["previous_generation"] == target:
            return found["pointer"]["previous_sha256"]
    return None


def _other_model(store, pointer: dict, tags: dict, blob: bytes | None = None) -> str | None:
    """Why `pointer`'s blob is not the model the registry records for its version now (the version
    exported again with another body, `export.py --force`: followers would keep serving the old
    one), or None when it is, or nothing says. The same bytes as the version's `skedge.sha256`
    are that model; other bytes are when they hold its body (`skedge.body_sha256`): destinations
    seal a version otherwise (one signs, one does not, another key), and the registry's tags name
    the last export's seal only. A version exported before the body tag, or encrypted ("none"),
    has nothing to compare: its pointer stays, as it always did. `blob`: its bytes, when read."""
    from . import registry  # imports MLflow lazily

    recorded = tags.get(SHA256_TAG)
    body = tags.get(registry.BODY_TAG, "")
    if not recorded or pointer["sha256"] == recorded or len(body) != 64:
        return None
    if blob is None:
        found = store.read(publish.blob_key(pointer["sha256"]))
        if found is None:
            return None  # a missing blob is `read_state`'s problem already
        blob = found[0]
    if registry.body_sha256(blob) == body:
        return None
    return (f"its blob (sha256 {pointer['sha256']}) holds another model than MLflow records for it now "
            f"(sha256 {recorded}: exported again)")


def _target_problem(client, store, args, target: dict) -> str | None:
    """Why the blob a rollback would point at cannot be (missing, altered, another model's, or
    its version as exported before it was exported again: the next `reconcile` would publish the
    registry's bytes over it)."""
    sha = target["sha256"]
    blob, raw = store.read(publish.blob_key(sha)), store.read(publish.manifest_key(sha))
    if blob is None or raw is None or hashlib.sha256(blob[0]).hexdigest() != sha:
        return f"the blob {publish.blob_key(sha)} or its manifest is missing or altered"
    registered = (json.loads(raw[0]).get("provenance") or {}).get("registered_model")
    if registered and registered != args.model:
        return f"{publish.manifest_key(sha)} is a version of {registered!r}, not of {args.model!r}"
    version = str(target["version"])
    other = _other_model(store, target, client.get_model_version(args.model, version).tags or {}, blob[0])
    if other:
        return (f"that generation's version {version}: {other}. To serve version {version}, set "
                f"{args.model}@{args.alias} to it in MLflow and run reconcile, which publishes its bytes now")
    return None


#: The registered-model tag recording a rollback between its alias move and its pointer write
#: (`skedge.rollback.<h>`, <h> as the ledger's; FORMAT.md §5).
ROLLBACK_TAG = "skedge.rollback."


#: Seconds a pass waits for a rollback record's `moved` when it finds the alias on the record's
#: version but the record unconfirmed: `rollback` confirms it right after the alias move (one MLflow
#: call), so a live rollback confirms within this; a record never confirmed was left by a rollback
#: interrupted before its alias move, and the alias on that version is someone's later move. A pass
#: that gave up reads the record once more right before it publishes (after its export), so a
#: confirmation arriving during the export still makes it finish the rollback.
ROLLBACK_CONFIRM_SECONDS = 10.0


def _rollback_key(args) -> str:
    return _dest_tag(ROLLBACK_TAG, args.publish, args.alias)


def rollback_record(args, pointer: dict, generation: int, target: dict, *, moved: bool) -> dict:
    """The record `rollback` writes (FORMAT.md §5): before its alias move `moved` False, right
    after it True. Only a confirmed record is finished by a pass (`_pending_rollback`)."""
    return {"dest": publish.dest_id(args.publish), "alias": args.alias, "from": pointer["generation"],
            "to": generation, "version": str(target["version"]), "sha256": target["sha256"], "moved": moved}


def _drop_rollback(client, args, log) -> None:
    """The rollback record removed once its pointer is written (best effort: a record left is
    never acted on again, its `from` generation being below the pointer's from then on)."""
    try:
        client.delete_registered_model_tag(args.model, _rollback_key(args))
    except Exception as err:  # noqa: BLE001 - reported; the rollback itself is done
        log(f"WARNING: could not remove {args.model}'s tag {_rollback_key(args)}: {type(err).__name__}: {err}")


def _rollback_of(client, state, args, version: str, log) -> dict | None:
    """The rollback record for this destination and alias, when it is this pass's to finish: from
    the stored pointer's generation to `version`, the alias's version now."""
    raw = (client.get_registered_model(args.model).tags or {}).get(_rollback_key(args))
    if raw is None:
        return None
    try:
        rec = json.loads(raw)
        mine = (rec["dest"], rec["alias"], int(rec["from"]), str(rec["version"])) == (
            publish.dest_id(args.publish), args.alias, state.pointer["generation"], version)
        rec["to"] = int(rec["to"])
    except (ValueError, KeyError, TypeError) as err:
        log(f"WARNING: {args.model}'s tag {_rollback_key(args)} is not a rollback record ({err}): ignored")
        return None
    return rec if mine else None  # else another rollback's, or one overtaken by a publish


def _pending_rollback(client, store, state, args, version: str, log, *,
                      wait: float | None = None) -> tuple[tuple[dict, int, int] | None, bool]:
    """(The rollback this pass is to finish, as `_at_generation` gives it, or None; whether a
    record this pass could finish was left unconfirmed after `wait` seconds, by default
    `ROLLBACK_CONFIRM_SECONDS`). The rollback: one `rollback` recorded
    for this destination and alias whose alias move is done (the alias names its version, and
    the record says `moved`) and whose pointer write is not (the pointer is still the generation
    it rolled back from): it failed, or has not happened yet and this pass (prompted by the move)
    is first. Finished as an ordinary publish it would pop back to the version rolled away from.
    None otherwise.

    A record with `"moved": false` is a rollback between its alias move and its confirmation (an
    instant: waited for, `ROLLBACK_CONFIRM_SECONDS`), or one interrupted before its alias move,
    which is then no rollback at all: the alias on that version is a later, ordinary move (made
    while the pointer stayed on the record's generation), published as one. Finishing it as the
    rollback would tag the version it replaces rolled back and make the next rollback skip it.
    A record with no `moved` at all was written before records were confirmed, by a rollback
    whose pointer write failed after its alias move: finished as that rollback, as it was then."""
    if not state.pointer:
        return None, False
    rec = _rollback_of(client, state, args, version, log)
    deadline = time.monotonic() + (ROLLBACK_CONFIRM_SECONDS if wait is None else wait)
    while rec is not None and rec.get("moved", True) is not True:
        if time.monotonic() >= deadline:
            if wait is None:  # said once: the read again before the publish is silent
                log(f"a rollback to version {version} is recorded in {args.model}'s tag {_rollback_key(args)} but "
                    f"never moved the alias (interrupted before its move): ignored; {args.model}@{args.alias} was "
                    f"set to version {version} since, published as such")
            return None, True
        time.sleep(0.5)
        rec = _rollback_of(client, state, args, version, log)
    if rec is None:
        return None, False
    target = rec["to"]
    try:
        found = _at_generation(store, state, args, target)
    except publish.PublishError as err:  # its entry unsigned or altered: never a target
        found = str(err)
    problem = found if isinstance(found, str) else _target_problem(client, store, args, found[0])
    if not problem and (found[0]["sha256"], str(found[0]["version"])) != (rec.get("sha256"), version):
        problem = f"generation {target} is not the blob the rollback recorded"
    if problem:
        log(f"not finishing the rollback recorded in MLflow ({problem}): publishing version {version}")
        return None, False
    log(f"finishing the rollback of {args.model}@{args.alias} from generation {state.pointer['generation']} to "
        f"generation {target} (version {version}): its alias moved, its pointer was not written")
    return found, False


def _point_back(client, store, state, args, target: dict, generation: int, rollback_to: int) -> publish.Published:
    """A rollback's pointer (a new generation naming generation `generation`'s blob, recorded as
    rolled back from the stored pointer's), then its tags."""
    version = str(target["version"])
    done = publish.point(store, {
        "model": args.model, "alias": args.alias, "version": version, "run_id": target["run_id"],
        "sha256": target["sha256"], "size": target["size"], "integrity": target["integrity"],
        "format_version": target["format_version"],
    }, skedge=args.skedge, sign_key=args.sign_key, state=state, allow_unsigned=args.allow_unsigned,
        rollback=(state.pointer["generation"], rollback_to))  # fmt: skip
    _rolled_back_tags(client, args, state, version, done.pointer["generation"])
    return done


def _rolled_back_tags(client, args, state, version: str, generation: int) -> None:
    _tag(client, args.model, version, args.publish, generation)
    if state.pointer["version"] and state.pointer["version"] != version:
        client.set_model_version_tag(args.model, state.pointer["version"], "skedge.rolled_back",
                                     f"{args.publish} generation {generation} -> version {version}")


def _finished_by_a_pass(store, state, args, target: dict) -> publish.Published | None:
    """The stored pointer when a pass finished this rollback before its own write (the alias
    move's webhook prompted it, `_pending_rollback`): a later generation naming the target's
    blob whose history entry says it rolled back from the generation this rollback read."""
    pub = publish.public_key_of(args.sign_key)
    try:
        fresh = publish.read_state(store, args.model, args.alias, skedge=args.skedge, public_key=pub)
        p = fresh.pointer
        if not p or p["generation"] <= state.pointer["generation"] or fresh.problem:
            return None
        entry = publish.read_history(store, args.model, args.alias, p["generation"], skedge=args.skedge, public_key=pub)
    except publish.PublishError:
        return None
    if not entry or entry["rolled_back_from"] != state.pointer["generation"]:
        return None
    if (p["sha256"], p["version"]) != (target["sha256"], str(target["version"])):
        return None
    return publish.Published(p, written=False, blob_written=False)


def rollback(args: argparse.Namespace, log=lambda s: print(s, file=sys.stderr)) -> int:
    client, _ = _client(args.tracking_uri)
    store, state = _store_state(args, client)
    if not state.pointer:
        log(f"rollback: {args.publish} has no pointer for {args.model}@{args.alias}")
        return EXIT_FAILURE
    if state.problem:
        log(f"rollback: {state.problem}; run reconcile first, or name a version with --to-version")
        if not args.to_version:
            return EXIT_FAILURE
    found = _rollback_target(store, state, args)
    if isinstance(found, str):
        log(f"rollback: {found}")
        return EXIT_FAILURE
    target, generation, rollback_to = found
    problem = _target_problem(client, store, args, target)
    if problem:
        log(f"rollback: {problem}")
        return EXIT_FAILURE
    sha, version = target["sha256"], str(target["version"])
    if version == state.pointer["version"] and sha == state.pointer["sha256"]:
        log(f"rollback: generation {generation} names version {version}, which the pointer already names")
        return EXIT_FAILURE
    if state.pointer.get("signature") and not args.sign_key and not args.allow_unsigned:
        raise publish.UnsignedOverSigned(f"{publish.pointer_key(args.model, args.alias)} is signed: give "
                                         "--sign-key (or --allow-unsigned to write an unsigned pointer)")
    # Recorded before the alias moves: a pass that writes the pointer first (the move's own
    # webhook pass, or the next reconcile after this write failed) finishes it as this rollback
    # (`_pending_rollback`), not as an ordinary publish of the alias's version that a second
    # rollback would undo by returning to the version rolled away from.
    key = _rollback_key(args)
    client.set_registered_model_tag(args.model, key, json.dumps(
        rollback_record(args, state.pointer, generation, target, moved=False)))
    try:
        client.set_registered_model_alias(args.model, args.alias, version)  # first: see the module's docs
    except Exception:
        _drop_rollback(client, args, log)  # nothing moved: no pass may finish it
        raise
    # Confirmed at once: a record left unconfirmed (interrupted before the move) is never acted on,
    # so a later move of the alias to this version is not taken for this rollback.
    try:
        client.set_registered_model_tag(args.model, key, json.dumps(
            rollback_record(args, state.pointer, generation, target, moved=True)))
    except Exception as err:  # noqa: BLE001 - reported; the pointer write below finishes it all the same
        log(f"WARNING: could not confirm {args.model}'s tag {key}: {type(err).__name__}: {err} (a pass finishing "
            "this rollback after a failed pointer write would publish the version as an ordinary one)")
    log(f"rollback: {args.model}@{args.alias} -> version {version} (generation {generation}'s blob)")
    try:
        done = _point_back(client, store, state, args, target, generation, rollback_to)
    except publish.StalePublish:
        done = _finished_by_a_pass(store, state, args, target)
        if done is None:
            raise
        log("rollback: the pass its alias move prompted wrote it first, as this rollback")
        _rolled_back_tags(client, args, state, version, done.pointer["generation"])
    _drop_rollback(client, args, log)
    log(done.describe(args.publish))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# promote: move an alias from the evidence report.py push logged for both arms
# ---------------------------------------------------------------------------------------------

PROMOTED, REFUSED, UNREACHABLE, BAD_ARGUMENTS = 0, 1, 2, 3
#: An alias moved while promote evaluated (the exit code of a bad argument, as PUBLISH_STALE is 3).
STALE = 3
#: What `report.py push` logs per experiment window in each arm's monitoring run (counts of that
#: window, not cumulative; a revision re-logs the whole window at the same step, later timestamp).
FEEDBACK_COUNT, FEEDBACK_CORRECT = "skedge.feedback.count", "skedge.feedback.correct"
SHADOW_PAIRS, SHADOW_AGREE = "skedge.shadow.pairs", "skedge.shadow.agree"
EVIDENCE_KEYS = (FEEDBACK_COUNT, FEEDBACK_CORRECT, SHADOW_PAIRS, SHADOW_AGREE)
#: The same counts per peer (report.PEER_METRIC) and how many peers a window has (report.PEERS_METRIC):
#: a window's point without it was logged by a push from before per-peer evidence.
PEER_METRIC, PEERS = "skedge.peer/{version}/{name}", "skedge.peers"
DRIFT_ALERT, PERFORMANCE_ALERT, PROMOTED_TAG = "skedge.drift_alert", "skedge.performance_alert", "skedge.promoted"
#: report.py push's default experiment, searched with the experiment of a version's tagged run.
MONITORING_EXPERIMENT = "skedge-monitoring"


class PromoteError(Exception):
    """A promotion that cannot be evaluated; `exit_code` says why (2 MLflow, 3 arguments or alias)."""

    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code


def _fraction(text: str) -> Fraction:
    """A threshold read exactly ("0.02" is 1/50), so a tie is a tie and not a rounding."""
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def peer_keys(version: str) -> dict:
    """The metric keys of a window's counts against the peer `version` (same registered model)."""
    return {k: PEER_METRIC.format(version=version, name=name)
            for k, name in (("count", "feedback.count"), ("correct", "feedback.correct"),
                            ("pairs", "shadow.pairs"), ("agree", "shadow.agree"))}  # fmt: skip


def windows_of(histories: dict) -> dict:
    """{window end ms: {metric: value}} of an arm's run from its metric histories ({key: [Metric]}).

    A window is a step; its first (earliest) timestamp is the window's end, and its values are
    those of its latest point: a revision logs the whole window again at the same step, later,
    and a key that revision does not have is not taken from an earlier one."""
    by_step: dict = {}
    for key, history in histories.items():
        for m in history:
            w = by_step.setdefault(m.step, {"end": m.timestamp, "latest": m.timestamp, "points": {}})
            w["end"], w["latest"] = min(w["end"], m.timestamp), max(w["latest"], m.timestamp)
            w["points"].setdefault(m.timestamp, {})[key] = m.value
    return {w["end"]: w["points"][w["latest"]] for w in by_step.values()}


def _count(value: float | None) -> int:
    return int(value) if value is not None and math.isfinite(value) and value >= 0 else 0


def pair_windows(windows: dict, peer: str) -> tuple[dict, list]:
    """One run's evidence against the peer version `peer`, from its `windows_of`:
    ({window end: {"count", "correct", "pairs", "agree"}}, [ends of windows without per-peer
    counts]). A window with per-peer counts but none of `peer` is another pair's and left out; one
    without any (logged by a push from before per-peer evidence) may mix several peers' labels and
    is not counted either: its end is returned so that promote can say so."""
    keys = peer_keys(peer)
    pair, legacy = {}, []
    for end, w in windows.items():
        if PEERS not in w:
            if FEEDBACK_COUNT in w:
                legacy.append(end)
            continue
        if keys["count"] not in w:
            continue
        count, pairs = _count(w[keys["count"]]), _count(w.get(keys["pairs"]))
        pair[end] = {"count": count, "correct": min(_count(w.get(keys["correct"])), count),
                     "pairs": pairs, "agree": min(_count(w.get(keys["agree"])), pairs)}  # fmt: skip
    return pair, sorted(legacy)


def _add_windows(total: dict, windows: dict) -> None:
    """Adds one run's `pair_windows` to a version's (two runs of a version: two artifacts of it)."""
    for end, w in windows.items():
        t = total.setdefault(end, {"count": 0, "correct": 0, "pairs": 0, "agree": 0})
        for k in t:
            t[k] += w[k]


def evidence_of(champion: dict, challenger: dict) -> dict:
    """Cumulative counts over the windows both arms have evidence of this pair in (`pair_windows`
    of each, against the other's version): a window only one arm has was logged with another peer,
    or only one arm's part of it was pushed, and is not evidence of this pair."""
    common = sorted(set(champion) & set(challenger))
    out: dict = {"windows": [], "champion": {"count": 0, "correct": 0}, "challenger": {"count": 0, "correct": 0},
                 "shadow": {"pairs": 0, "agree": 0}}  # fmt: skip
    for end in common:
        row: dict = {"end_ms": end}
        for arm, windows in (("champion", champion), ("challenger", challenger)):
            row[arm] = {"count": windows[end]["count"], "correct": windows[end]["correct"]}
            out[arm]["count"] += row[arm]["count"]
            out[arm]["correct"] += row[arm]["correct"]
        # Both arms carry the same shadow numbers of the pair (its snapshots); the challenger's are read.
        row["shadow"] = {"pairs": challenger[end]["pairs"], "agree": challenger[end]["agree"]}
        out["shadow"]["pairs"] += row["shadow"]["pairs"]
        out["shadow"]["agree"] += row["shadow"]["agree"]
        out["windows"].append(row)
    for arm in ("champion", "challenger"):
        n = out[arm]["count"]
        out[arm]["accuracy"] = out[arm]["correct"] / n if n else None
    pairs = out["shadow"]["pairs"]
    out["shadow"]["agreement"] = out["shadow"]["agree"] / pairs if pairs else None
    return out


def verdict(ev: dict, *, min_feedback: int, min_accuracy_delta: Fraction, min_agreement: Fraction | None,
            alerts: dict) -> list:
    """Every reason to refuse (empty: promote). Accuracies are compared as exact fractions of the
    integer counts, so an accuracy equal to the champion's plus the delta passes."""
    reasons = list(ev.get("problems", []))
    ch, cp = ev["challenger"], ev["champion"]
    if not ev["windows"]:
        runs = ", ".join(f"{arm} {' '.join(ev[arm].get('monitoring_run_ids') or []) or 'none'}"
                         for arm in ("champion", "challenger"))  # fmt: skip
        legacy = sum(ev[arm].get("unattributed", 0) for arm in ("champion", "challenger"))
        reasons.append(f"no experiment window of this pair in MLflow: has report.py push logged one? (monitoring "
                       f"runs: {runs})" + (f"; {legacy} window(s) logged by a push from before per-peer evidence "
                                           "are not counted" if legacy else ""))  # fmt: skip
    if ch["count"] < min_feedback:
        reasons.append(f"the challenger has {ch['count']} labelled predictions in the windows both arms have, "
                       f"fewer than --min-feedback {min_feedback}")
    unlabelled = [arm for arm in ("champion", "challenger") if ev[arm]["count"] == 0]
    if unlabelled and (unlabelled != ["challenger"] or min_feedback == 0):
        reasons.append(f"the {' and the '.join(unlabelled)} {'have' if len(unlabelled) > 1 else 'has'} no labelled "
                       "predictions in those windows: no accuracy to compare")
    elif not unlabelled and Fraction(ch["correct"], ch["count"]) < Fraction(cp["correct"], cp["count"]) + min_accuracy_delta:
        reasons.append(f"the challenger's accuracy {ch['correct']}/{ch['count']} = {ch['accuracy']:.4f} is below "
                       f"the champion's {cp['correct']}/{cp['count']} = {cp['accuracy']:.4f} "
                       f"+ --min-accuracy-delta {float(min_accuracy_delta):g}")
    if min_agreement is not None:
        sh = ev["shadow"]
        if not sh["pairs"]:
            reasons.append("no shadow pairs in those windows (a canary, or no shadow sample): the agreement is "
                           "unknown and --min-agreement was given")
        elif Fraction(sh["agree"], sh["pairs"]) < min_agreement:
            reasons.append(f"the agreement {sh['agree']}/{sh['pairs']} = {sh['agreement']:.4f} is below "
                           f"--min-agreement {float(min_agreement):g}")
    for (arm, tag), text in sorted(alerts.items()):
        reasons.append(f"the {arm} (version {ev[arm]['version']}) has {tag}: {text}")
    return reasons


def _iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def _ratio(n: int, d: int) -> str:
    return f"{n}/{d} = {n / d:.4f}" if d else "-"


def evidence_table(ev: dict) -> str:
    """The evidence as a plain-text table: one line per window both arms have, then the totals."""
    cp, ch = ev["champion"], ev["challenger"]
    arms = [f"@{a['alias']} v{a['version']} accuracy" for a in (cp, ch)]
    lines = [f"{'window end (UTC)':<22} {arms[0]:>28} {arms[1]:>28} {'shadow agreement':>24}"]
    for w in ev["windows"]:
        lines.append(f"{_iso_ms(w['end_ms']):<22} {_ratio(w['champion']['correct'], w['champion']['count']):>28} "
                     f"{_ratio(w['challenger']['correct'], w['challenger']['count']):>28} "
                     f"{_ratio(w['shadow']['agree'], w['shadow']['pairs']):>24}")  # fmt: skip
    n = len(ev["windows"])
    lines.append(f"{f'all {n} window' + 's' * (n != 1):<22} {_ratio(cp['correct'], cp['count']):>28} "
                 f"{_ratio(ch['correct'], ch['count']):>28} {_ratio(ev['shadow']['agree'], ev['shadow']['pairs']):>24}")
    return "\n".join(lines)


def _alias_version(client, model: str, alias: str):
    try:
        return client.get_model_version_by_alias(model, alias)
    except Exception as err:  # MlflowException
        code = str(getattr(err, "error_code", ""))
        if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(err).lower():
            raise PromoteError(BAD_ARGUMENTS, f"{model}@{alias} is not set (or {model} is not registered)") from None
        if code == "INVALID_PARAMETER_VALUE":
            raise PromoteError(BAD_ARGUMENTS, f"{model}@{alias}: {str(err).splitlines()[0][:300]}") from None
        raise


def _monitoring_runs(client, model: str, mv) -> list:
    """Every monitoring run of a version, oldest first: the one its tag `skedge.monitoring_run_id`
    names (the newest push made) and those `report.py push` tagged with its name and version
    (`skedge.monitoring`, `skedge.model_name`, `skedge.model_version`) in that run's experiment
    and in `skedge-monitoring`: a version served as two artifacts (a compact re-export, a re-signed
    one) or pushed with another window length has a run for each. Deleted runs are left out."""
    version = str(mv.version)
    found: dict = {}
    experiments: list = []
    tagged = (mv.tags or {}).get("skedge.monitoring_run_id")
    if tagged:
        try:
            run = client.get_run(tagged)
        except Exception as err:  # MlflowException: the run was deleted for good
            if str(getattr(err, "error_code", "")) != "RESOURCE_DOES_NOT_EXIST":
                raise
        else:
            experiments.append(run.info.experiment_id)
            if run.info.lifecycle_stage != "deleted":
                found[tagged] = run
    default = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if default is not None and default.lifecycle_stage != "deleted" and default.experiment_id not in experiments:
        experiments.append(default.experiment_id)
    if experiments:
        wanted = {"skedge.monitoring": "true", "skedge.model_name": model, "skedge.model_version": version}
        filt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in wanted.items() if "'" not in v)
        token = None
        while True:
            page = client.search_runs(experiments, filter_string=filt, max_results=1000, page_token=token,
                                      order_by=["attributes.start_time ASC"])  # fmt: skip
            for run in page:
                if all(run.data.tags.get(k) == v for k, v in wanted.items()):
                    found.setdefault(run.info.run_id, run)
            token = page.token
            if not token:
                break
    return sorted(found.values(), key=lambda r: (r.info.start_time or 0, r.info.run_id))


def _histories(client, run_id: str, keys) -> dict:
    """The metric histories `keys` of one run (empty when the run is gone)."""
    try:
        return {k: list(client.get_metric_history(run_id, k)) for k in keys}
    except Exception as err:  # MlflowException: the run was deleted meanwhile
        if str(getattr(err, "error_code", "")) == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise


def evaluate(client, model: str, source: str, target: str) -> tuple[dict, dict]:
    """(evidence, alerts) of promoting the version of alias `source` over that of `target`: each
    version's counts against the other's version only (`pair_windows`), over every monitoring run
    of the version (`_monitoring_runs`), which must all have one window length."""
    challenger = _alias_version(client, model, source)
    champion = _alias_version(client, model, target)
    arms = {"champion": champion, "challenger": challenger}
    other = {"champion": str(challenger.version), "challenger": str(champion.version)}
    pair, info, lengths = {}, {}, {}
    for arm, mv in arms.items():
        pair[arm], legacy, run_ids = {}, set(), []
        for run in _monitoring_runs(client, model, mv):
            run_id = run.info.run_id
            run_ids.append(run_id)
            keys = (FEEDBACK_COUNT, PEERS, *peer_keys(other[arm]).values())
            windows, old = pair_windows(windows_of(_histories(client, run_id, keys)), other[arm])
            legacy.update(old)
            if windows:
                _add_windows(pair[arm], windows)
                seconds = run.data.tags.get("skedge.window_seconds")
                lengths[run_id] = (f"version {mv.version}", f"{float(seconds):g} s" if _number(seconds) else "?")
        info[arm] = {"monitoring_run_id": (mv.tags or {}).get("skedge.monitoring_run_id"),
                     "monitoring_run_ids": run_ids, "unattributed": len(legacy)}  # fmt: skip
    ev = evidence_of(pair["champion"], pair["challenger"])
    ev["problems"] = []
    if len({length for _, length in lengths.values() if length != "?"}) > 1:
        runs = "; ".join(f"{who}: run {run_id} {length}" for run_id, (who, length) in lengths.items())
        ev["problems"].append(f"the evidence of this pair is in monitoring runs of different window lengths ({runs}): "
                              "their windows cannot be matched one to one (report.py push them with one "
                              "--window-seconds)")  # fmt: skip
    ev["notes"] = [f"{info[arm]['unattributed']} window(s) of the {arm} (version {mv.version}) were logged by a "
                   "push from before per-peer evidence: they may hold another pair's labels and are not counted"
                   for arm, mv in arms.items() if info[arm]["unattributed"]]  # fmt: skip
    alerts = {}
    for arm, mv in arms.items():
        tags = mv.tags or {}
        ev[arm].update(alias=target if arm == "champion" else source, version=str(mv.version), **info[arm])
        for tag in (DRIFT_ALERT, PERFORMANCE_ALERT) if arm == "challenger" else (DRIFT_ALERT,):
            if tags.get(tag):
                alerts[(arm, tag)] = tags[tag].splitlines()[0][:300]
    ev["model"] = model
    return ev, alerts


def _number(text) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def promote(args: argparse.Namespace) -> int:
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    if args.source == args.to:
        raise PromoteError(BAD_ARGUMENTS, f"--from and --to are both {args.source!r}")
    if args.min_feedback < 0:
        raise PromoteError(BAD_ARGUMENTS, "--min-feedback must be at least 0")
    if not -1 <= args.min_accuracy_delta <= 1 or not (args.min_agreement is None or 0 <= args.min_agreement <= 1):
        raise PromoteError(BAD_ARGUMENTS, "--min-accuracy-delta must be within [-1, 1], --min-agreement within [0, 1]")
    from . import registry  # noqa: PLC0415

    uri = registry.resolve_tracking_uri(args.tracking_uri)
    try:
        registry.check_reachable(uri)
    except registry.RegistryError as err:
        raise PromoteError(UNREACHABLE, str(err)) from None
    client = registry.client(uri)
    ev, alerts = evaluate(client, args.model, args.source, args.to)
    ev["thresholds"] = {"min_feedback": args.min_feedback, "min_accuracy_delta": float(args.min_accuracy_delta),
                        "min_agreement": None if args.min_agreement is None else float(args.min_agreement)}
    ev["alerts"] = [{"arm": arm, "tag": tag, "value": text} for (arm, tag), text in sorted(alerts.items())]
    same = ev["champion"]["version"] == ev["challenger"]["version"]
    reasons = [] if same else verdict(ev, min_feedback=args.min_feedback, min_accuracy_delta=args.min_accuracy_delta,
                                      min_agreement=args.min_agreement, alerts=alerts)  # fmt: skip
    ev.update(reasons=reasons, dry_run=bool(args.dry_run), promoted=False)
    say = log if args.json else print
    what = f"{args.model}: @{args.source} (version {ev['challenger']['version']}) -> @{args.to}"
    if same:
        say(f"{what}: already version {ev['champion']['version']}; nothing to move")
    else:
        say(f"{what} (version {ev['champion']['version']})\n{evidence_table(ev)}")
    if not same:
        for note in ev["notes"]:
            say(f"note: {note}")
    for reason in reasons:
        say(f"refused: {reason}")
    if not same and not reasons and not args.dry_run:
        now = time.time()
        cp, ch, sh = ev["champion"], ev["challenger"], ev["shadow"]
        summary = (f"{_iso_ms(int(now * 1000))}: @{args.to} moved from version {cp['version']} to {ch['version']} "
                   f"(@{args.source}); over {len(ev['windows'])} windows accuracy {_ratio(ch['correct'], ch['count'])} "
                   f"against {_ratio(cp['correct'], cp['count'])}, agreement {_ratio(sh['agree'], sh['pairs'])}")
        # Both aliases read again just before the move: one moved while the evidence was read (a
        # rollback, another promote) makes this evidence about another pair. MLflow aliases have no
        # compare-and-set, so a move landing between this read and the next call is not seen.
        moved = [f"@{alias} is now version {now_v} (evaluated: {was})"
                 for alias, was in ((args.to, cp["version"]), (args.source, ch["version"]))
                 for now_v in [str(_alias_version(client, args.model, alias).version)] if now_v != was]  # fmt: skip
        if moved:
            log(f"sync promote: error[PROMOTE_STALE]: {'; '.join(moved)}: an alias moved while promote read the "
                "evidence; nothing moved (run promote again to judge the pair the aliases name now)")
            ev["stale"] = moved
            if args.json:
                print(json.dumps(ev, indent=1))
            return STALE
        # The alias first: it is the promotion (the edge sync follows it); the tag only records it.
        client.set_registered_model_alias(args.model, args.to, ch["version"])
        client.set_model_version_tag(args.model, ch["version"], PROMOTED_TAG, summary)
        ev["promoted"] = True
        say(f"promoted: {summary}")
    elif not same and not reasons:
        say("dry run: the evidence meets the thresholds; nothing moved")
    if args.json:
        print(json.dumps(ev, indent=1))
    return PROMOTED if not reasons else REFUSED


# ---------------------------------------------------------------------------------------------
# serve: MLflow webhooks -> one reconcile pass per model and alias
# ---------------------------------------------------------------------------------------------

#: A delivery's body is a few hundred bytes; anything larger is refused unread.
MAX_WEBHOOK_BYTES = 64 * 1024
#: Seconds to receive a delivery's body.
BODY_SECONDS = 10.0


class Refused(Exception):
    """A delivery that is not acted on: `status` and a stable `code` for the answer."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def signature(secret: bytes, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's ``X-MLflow-Signature`` of a delivery (mlflow/webhooks/delivery.py: ``v1,`` and the
    base64 HMAC-SHA256 of ``<delivery id>.<timestamp>.<body>``)."""
    mac = hmac.new(secret, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_delivery(secret: bytes, headers, body: bytes, now: float, tolerance: float) -> tuple[str, int]:
    """(delivery id, timestamp) of an authentic, fresh delivery; raises Refused otherwise. The
    timestamp is signed with the body, so a captured delivery cannot be re-dated."""
    delivery_id = headers.get("x-mlflow-delivery-id") or ""
    stamp = headers.get("x-mlflow-timestamp") or ""
    given = headers.get("x-mlflow-signature") or ""
    if not given:
        raise Refused(401, "SIGNATURE_MISSING", "no X-MLflow-Signature: create the webhook with a secret")
    if not delivery_id or len(delivery_id) > 200 or not stamp.isdigit() or len(stamp) > 12:
        raise Refused(400, "BAD_REQUEST", "X-MLflow-Delivery-Id and X-MLflow-Timestamp (Unix seconds) are required")
    expected = signature(secret, delivery_id, stamp, body).encode()
    # Standard Webhooks allows several space-separated signatures (a secret being rotated).
    if not any(hmac.compare_digest(s.encode(), expected) for s in given.split()):
        raise Refused(401, "SIGNATURE_INVALID", "X-MLflow-Signature does not match the secret")
    if abs(now - int(stamp)) > tolerance:
        raise Refused(401, "TIMESTAMP_STALE", f"X-MLflow-Timestamp is more than {tolerance:g} s from now")
    return delivery_id, int(stamp)


class DeliveryIds:
    """The delivery ids accepted within the timestamp window. Older ones need no memory: their
    timestamp is refused as stale. At most `capacity` are kept; when that many are all still in
    the window a delivery is answered 503 (MLflow retries it) rather than forgetting an id early."""

    def __init__(self, window: float, capacity: int = 100_000):
        self.window, self.capacity = window, capacity
        self.ids: collections.OrderedDict = collections.OrderedDict()  # id -> monotonic time accepted

    def add(self, delivery_id: str, now: float) -> bool:
        """False when `delivery_id` was already accepted (a replay or a retry)."""
        while self.ids and next(iter(self.ids.values())) < now - 2 * self.window:
            self.ids.popitem(last=False)
        if delivery_id in self.ids:
            return False
        if len(self.ids) >= self.capacity:
            raise Refused(503, "BUSY", "too many deliveries in the timestamp window: retry later")
        self.ids[delivery_id] = now
        return True


class Delivery(typing.NamedTuple):
    """What a delivery names: the event, and the registered model (None when the body has none);
    an alias event's alias, a version tag event's version and tag key."""

    event: str
    model: str | None
    alias: str | None = None
    version: str | None = None
    key: str | None = None


def _check_model(model) -> None:
    try:
        publish.pointer_key(model, "alias")  # its model half: a name no pointer can have is refused
    except publish.PublishError as err:
        raise Refused(400, "BAD_REQUEST", str(err)) from None


def parse_event(body: bytes) -> Delivery:
    """What a delivery's JSON body names (MLflow's envelope: entity, action, data)."""
    try:
        doc = json.loads(body)
        event = f"{doc['entity']}.{doc['action']}"
        data = doc["data"]
        model, alias, version, key = data.get("name"), data.get("alias"), data.get("version"), data.get("key")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Refused(400, "BAD_REQUEST", "not an MLflow webhook body (entity, action, data)") from None
    if event in ALIAS_EVENTS:
        if not isinstance(model, str) or not isinstance(alias, str):
            raise Refused(400, "BAD_REQUEST", "data.name and data.alias must be strings")
        try:
            publish.pointer_key(model, alias)
        except publish.PublishError as err:
            raise Refused(400, "BAD_REQUEST", str(err)) from None
        return Delivery(event, model, alias)
    if event == TAG_EVENT:
        if not all(isinstance(v, str) for v in (model, version, key)):
            raise Refused(400, "BAD_REQUEST", "data.name, data.version and data.key must be strings")
        if not (version.isascii() and version.isdigit() and len(version) <= 20) or len(key) > 250:
            raise Refused(400, "BAD_REQUEST", "data.version must be a version number and data.key a tag key")
        _check_model(model)
        return Delivery(event, model, version=version, key=key)
    return Delivery(event, model if isinstance(model, str) else None)


class Syncer:
    """One worker per (model, alias): a prompt starts a pass, or, while one runs, asks for one more
    after it (any number of prompts meanwhile coalesce into that one). `run(model, alias)` is the
    pass (a coroutine returning an exit code); at most `parallel` passes run at once.

    `prompt_version` prompts the pass of every alias naming a version, which `aliases_of(model,
    version)` (a coroutine) asks MLflow for: the delivery names the version, MLflow the aliases,
    and each pass resolves its alias itself again."""

    def __init__(self, run, parallel: int = 1, retries: int = 2, max_keys: int = 1000, log=None, backoff: float = 2.0,
                 aliases_of=None):
        self.run, self.retries, self.max_keys, self.backoff = run, retries, max_keys, backoff
        self.aliases_of = aliases_of
        self.slots = asyncio.Semaphore(parallel)
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self.state: dict = {}  # (model, alias) -> {"running", "again", "passes", "last"}
        self.resolving: set = set()  # (model, version) whose aliases are being asked for
        self.tasks: set = set()

    def _start(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def prompt_version(self, model: str, version: str, wanted=()) -> str:
        """A pass for each alias (of `wanted`, when given) that names `model` version `version`.
        A prompt while its aliases are being asked for joins that: its passes start after it."""
        key = (model, version)
        if key in self.resolving:
            return "coalesced"
        if len(self.resolving) >= self.max_keys:
            raise Refused(503, "BUSY", f"more than {self.max_keys} versions being resolved: retry later")
        self.resolving.add(key)
        self._start(self._follow_version(model, version, set(wanted)))
        return "resolving"

    async def _follow_version(self, model: str, version: str, wanted: set) -> None:
        try:
            for attempt in range(self.retries + 1):
                try:
                    aliases = sorted(await self.aliases_of(model, version))
                    break
                except Exception as err:  # noqa: BLE001 - MLflow unreachable or failing: passing, as a pass's exit 3
                    self.log(f"sync serve: the aliases of {model} version {version} could not be read: "
                             f"{type(err).__name__}: {str(err)[:300]}")
                    if attempt == self.retries:
                        self.log(f"sync serve: {model} version {version} left to reconcile")
                        return
                    await asyncio.sleep(self.backoff * 4**attempt)
            chosen = [a for a in aliases if not wanted or a in wanted]
            if not chosen:
                self.log(f"sync serve: {model} version {version}: no alias {'of --alias ' if wanted else ''}"
                         "names it; nothing to publish")
            for alias in chosen:
                try:
                    what = self.prompt(model, alias)
                except Refused as err:
                    self.log(f"sync serve: {model}@{alias} (version {version}): {err}")
                    continue
                self.log(f"sync serve: {model}@{alias} names version {version}: pass {what}")
        finally:
            self.resolving.discard((model, version))

    def prompt(self, model: str, alias: str) -> str:
        key = (model, alias)
        st = self.state.get(key)
        if st is None:
            if len(self.state) >= self.max_keys:
                raise Refused(503, "BUSY", f"more than {self.max_keys} model aliases: restrict serve with --model")
            st = self.state[key] = {"running": False, "again": False, "passes": 0, "last": None}
        if st["running"]:
            st["again"] = True
            return "coalesced"
        st["running"] = True
        self._start(self._worker(key, st))
        return "started"

    async def _worker(self, key, st) -> None:
        try:
            while True:
                st["again"] = False
                rc = await self._pass(key)
                st["passes"] += 1
                st["last"] = {"exit": rc, "finished_at": time.time()}
                if not st["again"]:
                    return
        finally:
            st["running"] = False

    async def _pass(self, key) -> int:
        for attempt in range(self.retries + 1):
            async with self.slots:
                try:
                    rc = await self.run(*key)
                except Exception as err:  # the child could not start (no memory, no program): passing
                    self.log(f"sync serve: pass {key[0]}@{key[1]} could not run: {type(err).__name__}: {err}")
                    rc = EXIT_FAILURE
            # 0 done, 1/2 the version is refused (tagged): the same answer every time. 3 may be
            # passing (S3 or MLflow unreachable, a concurrent publish), and so may a child killed
            # by a signal (rc < 0: the OOM killer, an operator): a few more tries, then
            # `reconcile` from cron.
            if rc in (EXIT_OK, EXIT_MISMATCH, EXIT_UNSUPPORTED) or attempt == self.retries:
                return rc
            await asyncio.sleep(self.backoff * 4**attempt)
        return rc

    async def idle(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def reconcile_command(args: argparse.Namespace, model: str, alias: str) -> list:
    """The child process of a pass: `reconcile` with serve's destination and keys."""
    cmd = [*tool_command("sync"), "reconcile", "--model", model, "--alias", alias,
           "--publish", args.publish, "--skedge", str(args.skedge)]
    for flag, value in (("--tracking-uri", args.tracking_uri), ("--s3-endpoint-url", args.s3_endpoint_url),
                        ("--sign-key", args.sign_key)):
        if value:
            cmd += [flag, str(value)]
    for pub in args.trust_key:
        cmd += ["--trust-key", str(pub)]
    if args.allow_unsigned:
        cmd.append("--allow-unsigned")
    if args.precision != "exact":
        cmd += ["--precision", args.precision, "--max-label-disagreement", str(args.max_label_disagreement)]
    return cmd


def make_app(secret: bytes, syncer: Syncer, *, tolerance: float = 300.0, models=(), aliases=(), log=None):
    """The Starlette application of `serve`: POST /webhook, GET /health."""
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.responses import JSONResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    seen = DeliveryIds(tolerance)
    counts: collections.Counter = collections.Counter()
    last_logged: dict = {}

    def refuse(request, err: Refused) -> JSONResponse:
        counts[err.code] += 1
        # One line per kind of refusal a minute: a scanner or a wrong secret shows, never floods.
        if time.monotonic() - last_logged.get(err.code, -1e9) > 60:
            last_logged[err.code] = time.monotonic()
            who = request.client.host if request.client else "?"
            log(f"sync serve: refused {err.status} {err.code} from {who}: {err} ({counts[err.code]} so far)")
        return JSONResponse(_http.error_fields(err.code, str(err)), status_code=err.status)

    async def webhook(request):
        try:
            length = request.headers.get("content-length", "")
            if length and (not length.isdigit() or int(length) > MAX_WEBHOOK_BYTES):
                raise Refused(413, "TOO_LARGE", f"a webhook body is at most {MAX_WEBHOOK_BYTES} bytes")
            try:
                body = await _http.read_body(request, MAX_WEBHOOK_BYTES, BODY_SECONDS)
            except _http.BodyTooLarge:
                raise Refused(413, "TOO_LARGE", f"a webhook body is at most {MAX_WEBHOOK_BYTES} bytes") from None
            except _http.BodyTimeout as err:
                raise Refused(408, "BODY_TIMEOUT", str(err)) from None
            delivery_id, _ = verify_delivery(secret, request.headers, body, time.time(), tolerance)
            d = parse_event(body)
            if not seen.add(delivery_id, time.monotonic()):
                counts["duplicate"] += 1
                return JSONResponse({"duplicate": True, "delivery_id": delivery_id})
        except Refused as err:
            return refuse(request, err)
        event, model = d.event, d.model
        # Of a version's tags only the one an export writes last says its bytes changed (the
        # others, and sync's own skedge.published, skedge.sync, skedge.rolled_back, prompt nothing).
        if (event not in ALIAS_EVENTS and (event != TAG_EVENT or d.key != SHA256_TAG or syncer.aliases_of is None)) \
                or (models and model not in models) or (aliases and d.alias is not None and d.alias not in aliases):
            counts["ignored"] += 1
            return JSONResponse({"ignored": event, **({"key": d.key} if d.key is not None else {})})
        try:
            if event == TAG_EVENT:
                what = syncer.prompt_version(model, d.version, aliases)
            else:
                what = syncer.prompt(model, d.alias)
        except Refused as err:
            return refuse(request, err)
        # "accepted" counts the alias deliveries (a pass each), "accepted_tag" the versions' tags.
        counts["accepted_tag" if event == TAG_EVENT else "accepted"] += 1
        if event == TAG_EVENT:
            log(f"sync serve: {event} {model} version {d.version} {d.key} (delivery {delivery_id}): its aliases {what}")
            return JSONResponse({"accepted": event, "model": model, "version": d.version, "key": d.key,
                                 "aliases": what}, status_code=202)
        log(f"sync serve: {event} {model}@{d.alias} (delivery {delivery_id}): pass {what}")
        return JSONResponse({"accepted": event, "model": model, "alias": d.alias, "pass": what}, status_code=202)

    async def health(request):
        syncs = {f"{m}@{a}": {"running": st["running"], "queued": st["again"], "passes": st["passes"],
                              "last": st["last"]} for (m, a), st in syncer.state.items()}
        return JSONResponse({"ok": True, "deliveries": dict(counts), "resolving": len(syncer.resolving),
                             "syncs": syncs})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for task in list(syncer.tasks):  # a pass interrupted is safe: blobs and pointers are atomic
            task.cancel()

    return Starlette(lifespan=lifespan, routes=[Route("/webhook", webhook, methods=["POST"]),
                                                Route("/health", health, methods=["GET"])])


def serve(args: argparse.Namespace) -> int:
    secret = os.environ.get("SKEDGE_WEBHOOK_SECRET", "") if args.secret is None else args.secret
    if not secret:
        print("sync serve: a secret is required ($SKEDGE_WEBHOOK_SECRET, or --secret)", file=sys.stderr)
        return EXIT_FAILURE

    def log(line: str) -> None:
        # Timed to the millisecond: how long a pass took from the delivery is read off the log.
        now = time.time()
        print(f"{time.strftime('%H:%M:%S', time.gmtime(now))}.{int(now % 1 * 1000):03d} {line}", file=sys.stderr, flush=True)

    async def run(model: str, alias: str) -> int:
        child = await asyncio.create_subprocess_exec(*reconcile_command(args, model, alias),
                                                     env={**os.environ, "PYTHONUNBUFFERED": "1"},  # lines as they come
                                                     stdin=asyncio.subprocess.DEVNULL,
                                                     stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            async for line in child.stdout:
                log(f"[{model}@{alias}] {line.decode('utf-8', 'replace').rstrip()}")
            rc = await child.wait()
        except asyncio.CancelledError:
            child.terminate()
            raise
        log(f"sync serve: pass {model}@{alias} exited {rc}")
        return rc

    clients: list = []

    def version_aliases(model: str, version: str) -> list:
        """The aliases naming `model` version `version` now (none when it is gone); blocking."""
        if not clients:
            clients.append(_client(args.tracking_uri)[0])
        try:
            return [str(a) for a in clients[0].get_model_version(model, version).aliases or ()]
        except Exception as err:  # MlflowException: the version (or the model) deleted since
            if "RESOURCE_DOES_NOT_EXIST" not in str(getattr(err, "error_code", "")):
                raise
            return []

    async def aliases_of(model: str, version: str) -> list:
        return await asyncio.to_thread(version_aliases, model, version)

    syncer = Syncer(run, parallel=args.parallel, retries=args.retries, log=log, aliases_of=aliases_of)
    app = make_app(secret.encode(), syncer, tolerance=args.tolerance, models=set(args.model or ()),
                   aliases=set(args.alias or ()), log=log)  # fmt: skip
    log(f"sync serve: http://{args.host}:{args.port}/webhook -> {args.publish}")
    _http.serve(app, args.host, args.port, limit_concurrency=64)
    return EXIT_OK


def _webhooks(client) -> list:
    found, token = [], None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        found += list(page)
        token = page.token
        if not token:
            return found


def webhook_create(args: argparse.Namespace) -> int:
    """Registers `serve`'s URL with MLflow for `EVENTS`, with the shared secret. A webhook of
    this name and URL already there (one made before a version's tag was subscribed to) is
    updated to `EVENTS` and the secret given, not doubled (every delivery would come twice)."""
    secret = os.environ.get("SKEDGE_WEBHOOK_SECRET", "") if args.secret is None else args.secret
    if not secret:
        print("sync webhook create: a secret is required (--secret or $SKEDGE_WEBHOOK_SECRET)", file=sys.stderr)
        return EXIT_FAILURE
    client, _ = _client(args.tracking_uri)
    description = "skedge: publish the alias's version to the edge (scripts/sync.py serve)"
    same = [h for h in _webhooks(client) if (h.name, h.url) == (args.name, args.url)]
    if same:
        hook = client.update_webhook(same[0].webhook_id, events=list(EVENTS), secret=secret, description=description)
        done = "updated"
    else:
        hook = client.create_webhook(name=args.name, url=args.url, events=list(EVENTS), secret=secret,
                                     description=description)
        done = "created"
    print(f"webhook {hook.webhook_id} {done}: {', '.join(EVENTS)} -> {hook.url}", file=sys.stderr)
    print(hook.webhook_id)
    return EXIT_OK


def trust_key(text: str) -> Path:
    """`--trust-key PUB` (an argparse type): the path, once the file is a public key skedge can
    use, read by the package's own engine with the parser of `skedge inspect --public-key` (at
    most 4096 bytes; `skedge-ed25519-public:` and 64 hex digits, never a secret key; a curve point
    not of small order). Checked as the arguments are read, so that a bad one is a usage error
    (exit 3) naming the file before anything else: `serve` would otherwise bind its port and fail
    every pass a webhook starts, and a typo show only as every artifact "not usable"."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():  # a directory; a FIFO would block the read
        raise argparse.ArgumentTypeError(f"{text}: not a regular file")
    from . import Model, SkedgeError  # noqa: PLC0415 - the extension, loaded with the package

    try:
        # The keys are read and checked before any byte of the artifact: this empty one is
        # refused (ARTIFACT_CORRUPT) only once the key was usable.
        Model.from_bytes(b"", public_key=path)
    except SkedgeError as err:
        if err.code in ("IO", "KEY_INVALID"):
            raise argparse.ArgumentTypeError(f"{text} is not a public key skedge can use: "
                                             f"error[{err.code}] {err}") from None
    return path


class _Parser(argparse.ArgumentParser):
    """Bad arguments exit 3 (argparse's 2 means "unsupported pipeline" here, and "MLflow
    unreachable" for promote)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILURE, f"{self.prog}: error: {message}\n")


def main(argv: list | None = None) -> int:
    parser = _Parser(description="Keep edge pointers in sync with MLflow model aliases.",
                     epilog="Exit codes: 0 done or in sync, 1 parity gate failed, 2 unsupported pipeline, 3 other "
                            "failure; promote: 0 promoted, 1 refused, 2 MLflow unreachable, 3 bad arguments, "
                            "alias not set or moved during the evaluation (PROMOTE_STALE).")
    commands = parser.add_subparsers(dest="command", required=True)
    prom = commands.add_parser("promote", help="move an alias to the challenger's version when the evidence "
                               "report.py push logged meets the thresholds")
    prom.add_argument("--model", required=True, help="registered model name")
    prom.add_argument("--from", dest="source", default="challenger", metavar="ALIAS", help="the alias promoted (default challenger)")
    prom.add_argument("--to", default="champion", metavar="ALIAS", help="the alias moved to its version (default champion)")
    prom.add_argument("--min-feedback", type=int, default=200, metavar="N",
                      help="labelled predictions of the challenger needed (default 200)")
    prom.add_argument("--min-accuracy-delta", type=_fraction, default=Fraction(0), metavar="D",
                      help="the challenger's accuracy must be at least the champion's + D (default 0)")
    prom.add_argument("--min-agreement", type=_fraction, metavar="A",
                      help="shadow label agreement needed (default: not checked)")
    prom.add_argument("--dry-run", action="store_true", help="evaluate and print, move nothing")
    prom.add_argument("--json", action="store_true", help="the evidence as JSON on stdout (the table on stderr)")
    prom.add_argument("--tracking-uri", help="MLflow tracking URI (default: as scripts/export.py)")
    for name, help_ in (("reconcile", "publish the alias's version unless the pointer already names it"),
                        ("rollback", "move the alias and the pointer back to the previous generation's version"),
                        ("serve", "receive MLflow webhooks and run reconcile for the model alias they name")):
        sub = commands.add_parser(name, help=help_)
        if name == "serve":
            sub.add_argument("--model", action="append", help="act only on this registered model (repeatable; "
                             "default: any)")
            sub.add_argument("--alias", action="append", help="act only on this alias (repeatable; default: any)")
            sub.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
            sub.add_argument("--port", type=_http.port, default=8788)
            sub.add_argument("--secret", help="the webhook's secret (default: $SKEDGE_WEBHOOK_SECRET, which keeps it "
                             "out of the process list)")
            # nan would pass every comparison: any timestamp accepted, replays with it
            sub.add_argument("--tolerance", type=_http.seconds, default=300.0, metavar="SECONDS",
                             help="refuse deliveries whose timestamp is further from now (default 300)")
            sub.add_argument("--parallel", type=int, default=1, help="passes (exports) running at once (default 1)")
            sub.add_argument("--retries", type=int, default=2,
                             help="tries again after a pass that failed for another reason than the version (exit 3)")
        else:
            sub.add_argument("--model", required=True, help="registered model name")
            sub.add_argument("--alias", required=True, help="the alias to follow (production)")
        sub.add_argument("--publish", required=True, metavar="DEST", help="a directory or s3://BUCKET/PREFIX")
        sub.add_argument("--tracking-uri", help="MLflow tracking URI (default: as scripts/export.py)")
        sub.add_argument("--s3-endpoint-url", metavar="URL", help="default: $AWS_ENDPOINT_URL")
        sub.add_argument("--sign-key", type=Path, help="sign the pointer (and the artifact) with this Ed25519 key; "
                         "the stored pointer is verified with NAME.pub beside it")
        sub.add_argument("--trust-key", type=trust_key, action="append", default=[], metavar="PUB",
                         help="a public key file (skedge keygen's NAME.pub) of an export host whose signature "
                              "means the artifact passed its parity gate: a version's artifact in the registry "
                              "signed by one of these keys (and naming this model, version and precision) is "
                              "published instead of exported again (repeatable; default: none, every pass "
                              "exports the version itself; a file that is not such a key: exit 3, before "
                              "anything else). rollback publishes only blobs already in DEST and "
                              "takes it so that one set of options serves the three commands")
        sub.add_argument("--skedge", type=Path, default=publish.DEFAULT_SKEDGE, help="the skedge CLI")
        sub.add_argument("--allow-unsigned", action="store_true",
                         help="without --sign-key, replace a signed pointer with an unsigned one (followers "
                              "pinning the key refuse it; default: refused, SIGNATURE_MISSING)")
        if name == "rollback":
            sub.add_argument("--to-version", metavar="VERSION",
                             help="roll back to this version's latest generation in the destination's history "
                                  "(default: the generation before the current one, skipping what was rolled "
                                  "away from)")
        if name != "rollback":
            sub.add_argument("--precision", choices=("exact", "compact"), default="exact",
                             help="as scripts/export.py: compact = float16 weights, labels checked by the gate")
            sub.add_argument("--max-label-disagreement", type=float, default=0.0, metavar="PERCENT",
                             help="as scripts/export.py, with --precision compact (default 0: refuse any)")
    hooks = commands.add_parser("webhook", help="register serve's URL with MLflow").add_subparsers(
        dest="action", required=True)
    create = hooks.add_parser("create", help="a webhook for model_version_alias.created and .deleted and "
                              "model_version_tag.set (one of this --name and --url already there is updated)")
    create.add_argument("--url", required=True, help="serve's URL, e.g. https://sync.example.com/webhook")
    create.add_argument("--secret", help="shared with serve (default: $SKEDGE_WEBHOOK_SECRET)")
    create.add_argument("--name", default="skedge-sync")
    create.add_argument("--tracking-uri", help="MLflow tracking URI (default: as scripts/export.py)")
    args = parser.parse_args(argv)
    if args.command == "promote":
        try:
            return promote(args)
        except PromoteError as err:
            print(f"sync promote: error: {err}", file=sys.stderr)
            return err.exit_code
        except Exception as err:  # MlflowException, requests errors: MLflow failing midway
            print(f"sync promote: error: MLflow failed: {type(err).__name__}: {str(err)[:300]}", file=sys.stderr)
            return UNREACHABLE
    try:
        if args.command == "webhook":
            return webhook_create(args)
        return {"reconcile": reconcile, "rollback": rollback, "serve": serve}[args.command](args)
    except publish.PublishError as err:
        print(f"sync: error[{err.code}]: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # MLflow or the store unreachable: 3, never Python's 1 (= the gate refused)
        print(f"sync: error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
