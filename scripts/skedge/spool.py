"""Monitoring snapshots in a bucket (issue #16 item 2): what the Worker and ``report.py serve
--spool s3://…`` write, and what ``report.py push --from s3://…`` reads and keeps beside them.

    <prefix>/snapshots/<model>/<version>/<window>/<id>.json   one snapshot (FORMAT.md §4), as sent
    <prefix>/experiments/<model>/<version>/<window>/<id>.json one experiment snapshot, as sent
                                                              (<model>/<version>: the champion's)
    <prefix>/ledger/pushed.jsonl                              the push ledger (lines as DIR/pushed.jsonl)
    <prefix>/ledger/quarantine.jsonl                          what push set aside (as DIR/quarantine.jsonl)
    <prefix>/ledger/lease.json                                which push may write the two above
    <prefix>/ledger/checkpoint.json                           what push has consumed (below)

A snapshot is written only if its key is absent (S3 ``If-None-Match: *``): a retry of the same id
is the same key and is refused (the collector answers 409), never a second object. Objects are
never changed; ``report.py compact --from s3://…`` deletes those push has consumed (``BucketSource.compact``).
Once an object is deleted, a retry of its id is refused (409) only by a collector that stored that
id itself or started after it was logged or set aside (``BucketSpool`` loads the ledger's and
quarantine's ids when it starts); another collector sharing the bucket answers 201 and writes the
object again, which push consumes by its key (below).

Why a lease and not a ledger alone: the ledger object is replaced by compare-and-swap (``If-Match``
on the ETag that was read), so two pushes can never both record a window; but MLflow, where the
window goes first, has no conditional write. Two pushes working at once would both create the
monitoring run of a new model version and both log a window before either records it. So one push
at a time holds ``ledger/lease.json`` (taken with ``If-None-Match: *``, or ``If-Match`` on the ETag
of a released or expired one, ``generation`` + 1 each time), the others wait. Its holder records
its own ``--lease-seconds`` in it (``seconds``) and rewrites it every quarter of that; a waiter takes
it over when its ETag has not changed for the *holder's* recorded length (so a ``compact`` run with
the default 60 s never takes over a live push holding 600 s, whose renewals are 150 s apart), timed
*on the waiter's own monotonic clock*, so no two hosts' clocks are compared. The bucket is outside
input: a recorded length is brought into ``MIN_LEASE_SECONDS``..``MAX_LEASE_SECONDS`` (1 s to an
hour, the range ``--lease-seconds`` accepts), and a lease without one (written by the version
before) or with one that is not a positive number is waited the waiter's own ``--lease-seconds``,
as before (so the rule holds once every push and compact host runs this version: one of the
version before waits its own length whatever the holder recorded). A holder that was only paused
(not dead) for that long is fenced: its next ledger write
fails the ``If-Match`` (the new holder's writes changed the ETag) and it stops (exit 2); before each
window it also checks that its renewals still succeed. What such a paused holder may have logged to
MLflow in between is caught like a crash between MLflow and the ledger: the next push reads the
run's metric history at that window's step and does not log it again (and MLflow's SQL store
ignores a metric point identical in key, step, timestamp and value, which two pushes of the same
snapshots produce).

Consumption (``BucketSource.fresh``): keys do not sort by time (``<window start ms>`` is unpadded
decimal, and a late snapshot lands in an old window's folder), so every key is listed; what is
consumed is told by keys, never by a clock (LastModified can jump, or be older than objects already
read). The ledger and quarantine objects are read whole at each push anyway, so an object is
consumed when the id in its key is in them *for its key's* ``<model>/<version>`` folder (ids
collide: another document under a logged id is read, and set aside): a monitoring snapshot's id in
a ledger line of that model and version (logged) or in a quarantine line of it (set aside; a line
without a model: any), an object that is not a valid snapshot by its key and ETag in a quarantine
line (``segment``, ``etag``); an object gone between the listing and its read is not there (not set
aside: a later listing that shows it again has it read). An experiment snapshot is logged once per
arm, and its key does not name its arms: it is consumed when a quarantine line has its id for its
folder (the champion's: the line's model, or a snapshot it holds), or when a ledger line before the
checkpoint's ledger mark has it for its folder's model and version (a snapshot logged for every arm
has one for ``arms[0]``) and the checkpoint does not name it in ``partial`` (the ids a push read and
found logged for some arms only); every other object is read. So a late object in an old folder is
read alone, and nothing per object or folder is kept:
the checkpoint ``ledger/checkpoint.json`` is ``{version, where, partial, ledger, quarantine,
pending_drift}``. It names its bucket and prefix (``where``: one copied from another prefix is
ignored) and the ledger's and quarantine's bytes (``[bytes, sha256]``: a ledger rewritten since
voids it); one written by the version before (``folders``, by window folder) is ignored, which costs
one read of the experiment snapshots the ledger names. It is written by compare-and-swap after the
ledger, under the lease: a crash in between leaves the ledger ahead of it, which only says more is
done. What still grows with the history at each push: the listing (until ``compact`` deletes the
objects consumed), and the ledger and quarantine objects, read whole (and rewritten whole at each
append).

Compaction (``report.py compact --from s3://… --keep-days N``): under the lease, so no push reads
while it deletes, the snapshot objects consumed as above (by key: the ledger, the quarantine and the
checkpoint's ``partial``) and last modified more than N days ago are deleted, a listing page at a
time, in DeleteObjects batches of at most 1,000 keys. Only keys of the shape ``snapshot_key`` writes
are deleted (any other, say one holding a control character that DeleteObjects' XML cannot carry,
is kept and counted, so it never stops the compaction of the keys after it); a batch the store
refuses whole is deleted one DeleteObject per key, and each deletion refused is counted (the first
five named), never raised. The ledger and quarantine keep their ids, so an object written again
under a deleted key (a collector's or the Worker's retry) is consumed by its key at once: never
read, never counted again, and deleted by the next compaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

from ._s3 import S3

SNAPSHOTS = "snapshots/"
#: Experiment snapshots (champion/challenger windows): a prefix of their own, so that
#: `snapshots/<model>/<version>/…` keeps holding only a version's monitoring windows.
EXPERIMENTS = "experiments/"
LEDGER_DIR = "ledger/"
LEASE = "ledger/lease.json"
CHECKPOINT = "ledger/checkpoint.json"
#: The largest checkpoint object read (a larger one is ignored, as if there were none).
MAX_CHECKPOINT_BYTES = 64 << 20
#: The largest object read as a snapshot (the collector's limit is 1 MiB; the Worker's are smaller).
MAX_OBJECT_BYTES = 8 << 20
#: Keys a listing page holds (S3's own maximum), and keys a `compact` DeleteObjects request removes
#: (S3's maximum): compaction holds one page and one batch at a time, whatever the bucket holds.
LIST_PAGE = 1000
DELETE_BATCH = 1000
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._")
#: Every key `snapshot_key` can write (relative to the prefix), and no other: `compact` deletes only
#: these, so a key someone else wrote (a control character, which DeleteObjects' XML cannot carry)
#: never reaches a delete request and never stops the compaction of the keys after it.
_SEGMENT = r"(?:-|(?:[A-Za-z0-9._]|%[0-9A-F]{2})+)"
SNAPSHOT_KEY = re.compile(rf"(?:snapshots|experiments)/{_SEGMENT}/{_SEGMENT}/(?:0|[1-9][0-9]*)/[0-9a-f]{{32}}\.json")
#: Refused deletions a compaction names (it counts them all).
REFUSED_SHOWN = 5
#: Longest key S3 and R2 store (UTF-8 bytes, prefix included; moto does not check it): a model
#: name and version of 256 characters each, escaped at up to 12 bytes a character, pass it.
MAX_KEY_BYTES = 1024
#: The lease lengths honoured: what `--lease-seconds` accepts, and the range a length recorded in
#: `lease.json` (outside input) is brought into, so that no lease in the bucket makes a waiter wait
#: longer than an hour, or poll the bucket in a busy loop.
MIN_LEASE_SECONDS = 1.0
MAX_LEASE_SECONDS = 3600.0
#: The largest `lease.json` read (a longer one is not JSON: waited as a lease of unknown length).
MAX_LEASE_BYTES = 4096


def _nat(x: Any) -> bool:
    return type(x) is int and 0 <= x < 1 << 63


def _hex64(x: Any) -> bool:
    return isinstance(x, str) and len(x) == 64 and all(c in "0123456789abcdef" for c in x)


def ledger_mark_ok(m: Any) -> bool:
    """A bucket checkpoint's mark of a ledger object: [bytes, sha256 of them]."""
    return isinstance(m, list) and len(m) == 2 and _nat(m[0]) and _hex64(m[1])


class BucketError(Exception):
    """The bucket is unreachable or failing (nothing lost: run again)."""


class KeyTooLong(ValueError):
    """A snapshot's key would pass `MAX_KEY_BYTES` (a long escaped model name or version): no
    bucket stores it, so the collector refuses it (422) before writing, rather than answer 503
    to a retry that can never succeed."""


class LeaseLost(BucketError):
    """Another push took the lease over (this one was paused for a whole lease): it stops."""


def segment(text: str) -> str:
    """A model name or version as one key segment: every UTF-8 byte outside `[A-Za-z0-9._]` as
    `%XX` (`-` too, so the empty version, written `-`, is no other version's segment)."""
    if not text:
        return "-"
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode("utf-8"))


def snapshot_key(doc: dict) -> str:
    """`snapshots/<model>/<version>/<window start ms>/<id>.json` of a monitoring snapshot,
    `experiments/<champion model>/<champion version>/<window start ms>/<id>.json` of an
    experiment snapshot."""
    if doc.get("format") == "skedge-experiment-snapshot":
        top, m = EXPERIMENTS, doc["arms"][0]["model"]
    else:
        top, m = SNAPSHOTS, doc["model"]
    return f"{top}{segment(m['name'])}/{segment(m['version'])}/{int(doc['window']['start_ms'])}/{doc['id']}.json"


def is_snapshot_key(rel: str) -> bool:
    """Whether `rel` has the shape of a key `snapshot_key` writes."""
    return SNAPSHOT_KEY.fullmatch(rel) is not None


class Refused:
    """The deletions a store refused during one compaction: how many, and the first
    `REFUSED_SHOWN` (key, error), whatever the bucket holds."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list = []

    def add(self, rel: str, error: str) -> None:
        self.count += 1
        if len(self.first) < REFUSED_SHOWN:
            self.first.append((rel, error))


def is_bucket(where: Any) -> bool:
    return str(where).startswith("s3://")


class Bucket(S3):
    """A spool's bucket (``s3://bucket/prefix``), with S3's conditional writes."""

    error = BucketError

    def get(self, rel: str, limit: int | None = None) -> tuple[bytes, str] | None:
        """(bytes, ETag) of `rel`, None when absent; at most `limit + 1` bytes are read."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        with self.errors(rel):
            try:
                obj = self.client.get_object(Bucket=self.name, Key=self.key(rel))
            except ClientError as err:
                if self.status(err) == 404:
                    return None
                raise
            with contextlib.closing(obj["Body"]) as body:
                return body.read(None if limit is None else limit + 1), obj["ETag"]

    def put(self, rel: str, data: bytes, *, if_match: str | None = None) -> str | None:
        """Write `rel` if it is absent (`if_match` None) or still has the ETag `if_match`; the new
        ETag, or None when the condition failed (nothing written)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        with self.errors(rel):
            try:
                done = self.client.put_object(Bucket=self.name, Key=self.key(rel), Body=data,
                                              ContentType="application/json", **condition)  # fmt: skip
            except ClientError as err:
                # 412: the condition failed; 409: a concurrent conditional write of the same key
                if self.status(err) in (409, 412):
                    return None
                raise
        return done["ETag"]

    def listing(self, rel_prefix: str) -> Iterator[tuple[str, str]]:
        """(key, ETag) under `rel_prefix` (keys relative to the bucket's prefix), in S3's (UTF-8
        byte) order."""
        start = len(self.key(""))
        with self.errors(rel_prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=self.key(rel_prefix))
            for page in pages:
                for obj in page.get("Contents", []):
                    yield obj["Key"][start:], obj.get("ETag", "")

    def keys(self, rel_prefix: str) -> Iterator[str]:
        return (k for k, _ in self.listing(rel_prefix))


def id_of(rel: str) -> str:
    """The snapshot id a key names (its last segment, without `.json`)."""
    return rel.rsplit("/", 1)[-1].removesuffix(".json")


def _entries_of(data: bytes) -> list[dict]:
    """The JSON objects of ledger lines, unreadable or torn lines left out."""
    out = []
    for line in data.split(b"\n"):
        with contextlib.suppress(ValueError, TypeError, RecursionError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                out.append(entry)
    return out


class BucketSpool:
    """The collector's side (`report.py serve --spool s3://…`): one object per snapshot, written
    only if absent. Any number of collectors can share a bucket."""

    def __init__(self, url: str, endpoint_url: str | None = None):
        self.bucket = Bucket(url, endpoint_url)
        self.path = self.bucket.url
        # ids already stored (for /healthz, and to answer 409 without a request)
        self.ids = {id_of(k) for top in (SNAPSHOTS, EXPERIMENTS) for k in self.bucket.keys(top)
                    if k.endswith(".json")}  # fmt: skip
        # and those push logged or set aside: a retry of a snapshot whose object `report.py
        # compact` deleted is refused too (409) -- by this collector only if the id was logged
        # before it started (or it stored it): another one answers 201 and writes it again, and
        # push consumes that object by its key
        for name in ("pushed.jsonl", "quarantine.jsonl"):
            found = self.bucket.get(LEDGER_DIR + name)
            for entry in _entries_of(found[0] if found else b""):
                ids = entry.get("ids")
                self.ids.update(i for i in (ids if isinstance(ids, list) else ()) if isinstance(i, str))
        self.mutex = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def store(self, snap: Any, doc: dict) -> bool:
        """Write the snapshot as its own object; False when its key (id) is already stored."""
        if snap.id in self.ids:
            return False
        rel = snapshot_key(doc)
        size = len(self.bucket.key(rel).encode("utf-8"))
        if size > MAX_KEY_BYTES:
            raise KeyTooLong(f"its bucket key would be {size} bytes, over S3's and R2's limit of {MAX_KEY_BYTES} "
                             "(the model name and version, each UTF-8 byte outside [A-Za-z0-9._] written as 3): "
                             "use a shorter name or version, or a folder spool")  # fmt: skip
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        stored = self.bucket.put(rel, body) is not None
        with self.mutex:
            self.ids.add(snap.id)
        return stored

    def full(self) -> bool:
        """Never: a bucket that refuses a write answers 503 for that snapshot (the collector's
        health is its disk's)."""
        return False

    def close(self) -> None:
        pass


def lease_length(doc: dict) -> float | None:
    """The lease length a holder recorded in `lease.json` (`seconds`), brought into
    [`MIN_LEASE_SECONDS`, `MAX_LEASE_SECONDS`] (an infinite or huge one waits an hour, a tiny one a
    second); None when there is none (a lease of the version before) or it is not a positive
    number: the waiter then waits its own `--lease-seconds`, as before."""
    s = doc.get("seconds")
    if type(s) not in (int, float) or not s > 0:  # bool is not a length; NaN fails `> 0`
        return None
    # compared before any conversion: float() of a huge JSON integer raises OverflowError
    return float(min(max(s, MIN_LEASE_SECONDS), MAX_LEASE_SECONDS))


def _holder(doc: dict) -> str:
    """A lease holder's name as the log shows it: never the bucket's control characters, nor more
    than 200 characters of it."""
    owner = doc.get("owner")
    if owner is None:
        return "?"
    if isinstance(owner, str) and owner.isprintable() and len(owner) <= 200:
        return owner
    return repr(owner)[:200]


class Lease:
    """`ledger/lease.json`: `{"owner", "generation", "released", "beat", "written_ms", "seconds"}`,
    rewritten (If-Match) by its holder every quarter of `seconds` (its own length, recorded for the
    waiters: they take it over once it has not changed for that long); see the module docstring. A
    renewal that fails its If-Match marks the lease lost (`check` raises); one whose answer was lost
    is tried again, and its ETag mismatch then stops this push safely (the next one waits a lease)."""

    def __init__(self, bucket: Bucket, seconds: float, log: Callable[[str], None]):
        self.bucket, self.seconds, self.log = bucket, seconds, log
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.etag: str | None = None
        self.generation = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _doc(self, released: bool = False, beat: int = 0) -> bytes:
        return json.dumps({"owner": self.owner, "generation": self.generation, "released": released,
                           "beat": beat, "written_ms": int(time.time() * 1000),
                           "seconds": self.seconds}).encode()  # fmt: skip

    def acquire(self) -> None:
        seen, since, told = None, time.monotonic(), False
        while True:
            found = self.bucket.get(LEASE, limit=MAX_LEASE_BYTES)
            take, current = False, {}
            wait = self.seconds  # a lease of unknown length: this push's own, as before `seconds`
            if found is None:
                take = True
            else:
                # any bytes at all (the bucket is outside input): not a JSON object is {}
                with contextlib.suppress(ValueError, TypeError, RecursionError):
                    current = json.loads(found[0])
                    current = current if isinstance(current, dict) else {}
                wait = lease_length(current) or self.seconds
                if current.get("released") is True:
                    take = True
                elif found[1] != seen:
                    seen, since = found[1], time.monotonic()  # alive (or first seen): wait a lease
                elif time.monotonic() - since >= wait:
                    take = True
                    self.log(f"lease of {_holder(current)} not renewed for {wait:g} s: taking it over")
            if take:
                gen = current.get("generation", 0)
                self.generation = (gen if _nat(gen) else 0) + 1
                self.etag = self.bucket.put(LEASE, self._doc(), if_match=found[1] if found else None)
                if self.etag is not None:
                    break
                seen, since = None, time.monotonic()  # someone else took it first
            elif not told:
                told = True
                self.log(f"waiting for the push lease held by {_holder(current)} ({self.bucket.where(LEASE)}; "
                         f"taken over once not renewed for {wait:g} s)")  # fmt: skip
            time.sleep(min(1.0, wait / 4))
        self._thread = threading.Thread(target=self._renew, name="skedge-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        beat = 0
        while not self._stop.wait(self.seconds / 4):
            beat += 1
            try:
                etag = self.bucket.put(LEASE, self._doc(beat=beat), if_match=self.etag)
            except BucketError:
                continue  # the bucket blinked: a later renewal (or the ledger's If-Match) tells
            if etag is None:
                self.lost = True
                return
            self.etag = etag

    def check(self) -> None:
        if self.lost:
            raise LeaseLost(f"another push took over {self.bucket.where(LEASE)}: this one stops (run it again)")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost and self.etag is not None:
            with contextlib.suppress(BucketError):
                self.bucket.put(LEASE, self._doc(released=True), if_match=self.etag)


class BucketSource:
    """What `report.py push --from s3://…` reads and writes: the snapshots (each validated by
    `parse`, which returns the document or raises, and checked against its key), the ledger and
    quarantine objects (appended by compare-and-swap), under the lease."""

    def __init__(self, url: str, endpoint_url: str | None, parse: Callable[[bytes], dict], *,
                 lease_seconds: float = 60.0, log: Callable[[str], None] = print,
                 cache: Path | None = None):  # fmt: skip
        self.bucket = Bucket(url, endpoint_url)
        # Objects read, kept by (bucket, key, ETag): a snapshot is written once and never changed,
        # so a later push reads only the new ones (an object rewritten anyway has another ETag).
        self.cache = Path(cache) if cache else None
        self.fetched = 0  # objects this source read from the bucket
        self.vanished = 0  # objects listed and gone when read (`_fetch`)
        self.path = self.bucket.url
        self.parse = parse
        self.lease_seconds = lease_seconds
        self.log = log
        self.lease: Lease | None = None
        self._ledgers: dict = {}  # name -> [bytes, ETag or None], read once under the lease
        self._appends = 0
        # Fault injection for the crash test (tests/python/test_bucket_spool.py): stop this
        # process (SIGSTOP) before its Nth ledger write, after MLflow has the window.
        fault = os.environ.get("SKEDGE_PUSH_STOP_BEFORE_LEDGER_WRITE", "")
        self._stop_at = int(fault) if fault.isdigit() else 0

    def where(self, name: str) -> str:
        return self.bucket.where(LEDGER_DIR + name)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.lease = Lease(self.bucket, self.lease_seconds, self.log)
        self.lease.acquire()
        try:
            yield
        finally:
            self.lease.release()

    def check(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def _listing(self, top: str) -> Iterator[tuple[str, str, int | None]]:
        """(key, ETag, LastModified in ms or None) of the objects under `top`, in key order."""
        b = self.bucket
        start = len(b.key(""))
        with b.errors(top):
            pages = b.client.get_paginator("list_objects_v2").paginate(
                Bucket=b.name, Prefix=b.key(top), PaginationConfig={"PageSize": LIST_PAGE})
            for page in pages:
                for obj in page.get("Contents", []):
                    lm = obj.get("LastModified")
                    yield obj["Key"][start:], obj.get("ETag", ""), int(lm.timestamp() * 1000) if lm else None

    def _fetch(self, listed: list) -> Iterator[tuple[str, str, bytes | None, dict | None]]:
        """(key, ETag of the bytes read, body or None when over `MAX_OBJECT_BYTES`, document or
        None) of each (key, ETag) listed, read by 8 threads (through the cache when there is one),
        in the order listed. An object gone since the listing (a lifecycle rule, a compaction) is
        left out, counted in `vanished`: it is not there, and a later listing that shows it again
        has it read then (set aside, it would be a quarantine line of no object, and its key no
        ETag to be known consumed by)."""
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)

        def valid(rel: str, body: bytes) -> dict | None:
            try:
                doc = self.parse(body)
            except Exception:  # noqa: BLE001  (any way a body is not a snapshot)
                return None
            return doc if snapshot_key(doc) == rel else None  # only under its own key

        def read(item: tuple[str, str]) -> tuple[str, str | None, bytes | None, dict | None, bool]:
            """(key, ETag (None: gone), body, document or None, whether it was read from the bucket)."""
            rel, etag = item
            kept = None
            if self.cache is not None:
                kept = self.cache / hashlib.sha256(f"{self.bucket.where(rel)}\0{etag}".encode()).hexdigest()
                with contextlib.suppress(FileNotFoundError):
                    body = kept.read_bytes()
                    doc = valid(rel, body)
                    if doc is not None:  # else read it again: only the bucket's copy can be set aside
                        return rel, etag, body, doc, False
            found = self.bucket.get(rel, limit=MAX_OBJECT_BYTES)
            if found is None:
                return rel, None, None, None, True
            if len(found[0]) > MAX_OBJECT_BYTES:
                return rel, found[1], None, None, True
            doc = valid(rel, found[0])
            if kept is not None and doc is not None and found[1] == etag:
                tmp = kept.with_name(f".{kept.name}.{os.getpid()}.{threading.get_ident()}")
                tmp.write_bytes(found[0])
                os.replace(tmp, kept)
            return rel, found[1], found[0], doc, True

        with ThreadPoolExecutor(8) as pool:
            for rel, etag, body, doc, fetched in pool.map(read, listed):
                self.fetched += fetched
                if etag is None:
                    self.vanished += 1
                    continue
                yield rel, etag, body, doc

    def snapshots(self, bad: list | None = None) -> list[dict]:
        """Every valid snapshot (first object of each id, in key order); objects that are not a
        valid snapshot under their own key go to `bad` as (key, bytes or None)."""
        listed = [(k, e) for top in (SNAPSHOTS, EXPERIMENTS) for k, e, _ in self._listing(top)]
        seen, out = set(), []
        for rel, _, body, doc in self._fetch(listed):
            if doc is None:
                if bad is not None:
                    bad.append((rel, body))
            elif doc["id"] not in seen:
                seen.add(doc["id"])
                out.append(doc)
        if self.cache is not None:
            self.log(f"{self.bucket.where(SNAPSHOTS)} and {EXPERIMENTS}: {len(listed)} object(s), {self.fetched} read from the "
                     f"bucket, the others from {self.cache}")  # fmt: skip
        return out

    #: The ledger and quarantine are read whole at each push (`_read`): what is consumed is told
    #: from them by key (`fresh`'s `consumed`), not from a checkpoint that grows with the objects.
    whole_ledger = True

    def fresh(self, checkpoint: dict, bad: list | None = None,
              consumed: Callable[[str, str], bool] | None = None) -> tuple[list[dict], list]:  # fmt: skip
        """The valid snapshots of the objects listed that `consumed(key, ETag)` does not call
        consumed (the push tells it from the ledger and quarantine by key: see the module
        docstring), and the marks of those read: `[key, token, ETag, sha256 of the body]`, token
        ("id", id), ("bad", sha256) or ("twin", sha256); objects that are not a valid snapshot
        under their own key go to `bad` as (key, bytes or None, 0, ETag of the bytes read). An
        object whose id an object read before it (in key order) has with another document (ids
        collide: two monitors) goes to `twins` (`{"segment", "etag", "line_sha256", "id",
        "snapshot"}`; the push sets it aside)."""
        self.reread = []  # nothing is trusted by folder: nothing to read again whole
        listed, skipped = [], 0
        for top in (SNAPSHOTS, EXPERIMENTS):
            for rel, etag, _ in self._listing(top):
                if consumed is not None and consumed(rel, etag):
                    skipped += 1
                else:
                    listed.append((rel, etag))
        seen: dict = {}
        out, marks = [], []
        self.twins: list = []
        for rel, etag, body, doc in self._fetch(listed):
            digest = hashlib.sha256(body if body is not None else f"{rel}: over-long line at byte 0".encode()).hexdigest()
            if doc is None:
                if bad is not None:
                    bad.append((rel, body, 0, etag))
                marks.append([rel, ("bad", digest), etag, digest])
                continue
            first = seen.get(doc["id"])
            if first is not None and first != doc:
                self.twins.append({"segment": rel, "etag": etag, "line_sha256": digest, "id": doc["id"], "snapshot": doc})
                marks.append([rel, ("twin", digest), etag, digest])
                continue
            marks.append([rel, ("id", doc["id"]), etag, digest])
            if first is None:
                seen[doc["id"]] = doc
                out.append(doc)
        gone = f"; {self.vanished} gone since listed (not there: read when listed again)" if self.vanished else ""
        self.log(f"{self.bucket.where(SNAPSHOTS)} and {EXPERIMENTS}: {skipped + len(listed)} object(s), {self.fetched} "
                 "read from the bucket" + (f", the others from {self.cache}" if self.cache is not None else "")
                 + f"; {skipped} consumed (by their key, in the ledger or quarantine), not read{gone}")  # fmt: skip
        return out, marks

    def advance(self, checkpoint: dict, marks: list, consumed: Callable) -> tuple[dict, list]:
        """`{"where"}`: the checkpoint's binding to this bucket and prefix; nothing per object (the
        ledger and quarantine say what is consumed; the push adds `partial`)."""
        return {"where": self.bucket.where("")}, []

    def read_checkpoint(self) -> dict:
        """The checkpoint object (at most `MAX_CHECKPOINT_BYTES`), {} when there is none, it is not
        JSON, or it was taken of another bucket or prefix (copied: everything is read)."""
        found = self.bucket.get(CHECKPOINT, MAX_CHECKPOINT_BYTES)
        self._checkpoint_etag = found[1] if found else None
        if found is None:
            return {}
        if len(found[0]) > MAX_CHECKPOINT_BYTES:
            self.log(f"warning: {self.bucket.where(CHECKPOINT)} is over {MAX_CHECKPOINT_BYTES >> 20} MiB: ignored, "
                     "the ledger and quarantine are read from their start")
            return {}
        with contextlib.suppress(ValueError, RecursionError):
            doc = json.loads(found[0])
            if isinstance(doc, dict) and doc.get("where") == self.bucket.where(""):
                return doc
        return {}

    def write_checkpoint(self, doc: dict) -> None:
        """Replaced by compare-and-swap on the ETag read (fails, `LeaseLost`, if another push
        wrote it since)."""
        self.check()
        etag = self.bucket.put(CHECKPOINT, json.dumps(doc, separators=(",", ":")).encode(),
                               if_match=getattr(self, "_checkpoint_etag", None))  # fmt: skip
        if etag is None:
            raise LeaseLost(f"{self.bucket.where(CHECKPOINT)} was written by another push: this one stops (run it again)")
        self._checkpoint_etag = etag

    def find(self, ids: set, match: Callable[[dict], bool] | None = None) -> list[dict]:
        """The snapshots of these ids still in the bucket (by key name, then read): the first
        valid object of each id in key order that `match` takes, as `snapshots` and `fresh` take
        it. Keys are told apart by folder (window start, model), not by id alone, so one id can be
        under two keys (two monitors whose ids collide): `match` picks the caller's window and
        model, and the caller adds up what it gets, once per id."""
        listed = [(k, e) for top in (SNAPSHOTS, EXPERIMENTS) for k, e, _ in self._listing(top) if id_of(k) in ids]
        seen, out = set(), []
        for *_, doc in self._fetch(listed):
            if (doc is not None and doc["id"] in ids and doc["id"] not in seen
                    and (match is None or match(doc))):  # fmt: skip
                seen.add(doc["id"])
                out.append(doc)
        return out

    def compact(self, keep: Callable[[str, str], str | None], before_ms: int) -> tuple[int, dict, Refused]:
        """Deletes the snapshot objects (under `snapshots/` and `experiments/`, of the shape
        `snapshot_key` writes: any other key is kept, "not a snapshot key") that `keep(key, ETag)`
        gives no reason to keep (None) and that were last modified before `before_ms`, under the
        lease (`lock`): a page of the listing at a time (`LIST_PAGE` keys), in batches of at most
        `DELETE_BATCH` keys (DeleteObjects; one DeleteObject each where the store answers that it
        does not implement it, or refuses the batch), the lease checked before each batch
        (`LeaseLost`: another push took it over, this compaction stops). `ledger/` (ledger,
        quarantine, checkpoint, lease) is never listed here. Returns (objects deleted, {why kept:
        count}, the deletions the store refused)."""
        removed, refused = 0, Refused()
        kept: dict[str, int] = {}
        batch: list[str] = []

        def flush() -> None:
            nonlocal removed
            if batch:
                self.check()
                removed += self._delete(batch, refused)
                batch.clear()

        for top in (SNAPSHOTS, EXPERIMENTS):
            for rel, etag, modified in self._listing(top):
                why = "not a snapshot key" if not is_snapshot_key(rel) else keep(rel, etag)
                if why is None and (modified is None or modified >= before_ms):
                    why = "recent"
                if why is not None:
                    kept[why] = kept.get(why, 0) + 1
                    continue
                batch.append(rel)
                if len(batch) >= DELETE_BATCH:
                    flush()
        flush()
        return removed, kept, refused

    def _delete(self, rels: list, refused: Refused | None = None) -> int:
        """Deletes one batch of keys: the number deleted; each key the store refused goes to
        `refused`. A batch DeleteObjects refuses whole (a key its XML cannot carry, a store
        without it) is deleted one DeleteObject per key, so one key never holds back the others;
        only an unreachable bucket raises (`BucketError`: nothing is lost, run it again)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        b = self.bucket
        refused = refused if refused is not None else Refused()
        with b.errors(rels[0]):
            if not getattr(self, "_one_by_one", False):
                try:
                    done = b.client.delete_objects(Bucket=b.name, Delete={
                        "Objects": [{"Key": b.key(r)} for r in rels], "Quiet": True})  # fmt: skip
                except ClientError as err:
                    if b.status(err) == 501 or err.response.get("Error", {}).get("Code") == "NotImplemented":
                        self._one_by_one = True  # an S3-compatible store without DeleteObjects
                else:
                    start = len(b.key(""))
                    errors = done.get("Errors", [])
                    for e in errors:
                        refused.add(str(e.get("Key", ""))[start:], f"{e.get('Code')}: {e.get('Message')}")
                    return len(rels) - len(errors)
        deleted = 0
        for r in rels:
            with b.errors(r):
                try:
                    b.client.delete_object(Bucket=b.name, Key=b.key(r))
                except ClientError as err:
                    refused.add(r, f"{err.response.get('Error', {}).get('Code')}: {err}")
                    continue
            deleted += 1
        return deleted

    def entries(self, name: str = "pushed.jsonl") -> Iterator[dict]:
        return iter(self.ledger(name))

    def holds(self, name: str, mark: Any) -> bool:
        """Whether the ledger object `name` still begins with the bytes a checkpoint's `mark`
        ([bytes, sha256 of them], ending a line) was taken of (None: no mark, nothing to hold)."""
        if mark is None:
            return True
        if not ledger_mark_ok(mark):
            return False
        data = self._read(name)[0]
        return (len(data) >= mark[0] and data[mark[0] - 1 : mark[0]] in (b"", b"\n")
                and hashlib.sha256(data[: mark[0]]).hexdigest() == mark[1])  # fmt: skip

    def head(self, name: str, mark: Any) -> list:
        """The entries of a ledger object before a checkpoint's `mark` ([] when it no longer
        `holds` it, or there is none)."""
        if mark is None or not self.holds(name, mark):
            return []
        return _entries_of(self._read(name)[0][: mark[0]])

    def tail(self, name: str, mark: Any) -> tuple[list, list]:
        """The entries of a ledger object past a checkpoint's `mark` (read whole when it no longer
        `holds` it; None: all) and the mark of where its complete lines end."""
        data = self._read(name)[0]
        end = data.rfind(b"\n") + 1
        offset = mark[0] if ledger_mark_ok(mark) and mark[0] <= end and self.holds(name, mark) else 0
        return _entries_of(data[offset:end]), [end, hashlib.sha256(data[:end]).hexdigest()]

    def _read(self, name: str) -> list:
        if name not in self._ledgers:
            found = self.bucket.get(LEDGER_DIR + name)
            self._ledgers[name] = [found[0], found[1]] if found else [b"", None]
        return self._ledgers[name]

    def ledger(self, name: str = "pushed.jsonl") -> list[dict]:
        """The JSON objects of a ledger object, unreadable or torn lines left out."""
        return _entries_of(self._read(name)[0])

    def append(self, name: str, entry: dict) -> None:
        """One line more in a ledger object, by compare-and-swap on the ETag read: fails
        (`LeaseLost`) if anyone else wrote it since."""
        self.check()
        cached = self._read(name)
        if name == "pushed.jsonl":
            self._appends += 1
            if self._appends == self._stop_at:
                os.kill(os.getpid(), signal.SIGSTOP)
        data = cached[0] + (json.dumps(entry) + "\n").encode()
        etag = self.bucket.put(LEDGER_DIR + name, data, if_match=cached[1])
        if etag is None:
            raise LeaseLost(f"{self.where(name)} was written by another push: this one stops (run it again)")
        self._ledgers[name] = [data, etag]
