"""Publishing to the edge (issue #14): content-addressed blobs and one signed pointer per alias.

    DEST/blobs/sha256/<hex>.skedge           the artifact, immutable, written only if absent
    DEST/blobs/sha256/<hex>.manifest.json    its manifest, likewise
    DEST/pointers/<model>/<alias>.json       which blob the alias names (FORMAT.md §5)
    DEST/history/<model>/<alias>/<N>.json    generation N of that pointer, immutable

DEST is a local directory (for a static host) or ``s3://bucket/prefix`` (any S3-compatible
store; endpoint from ``endpoint_url`` or ``AWS_ENDPOINT_URL``; needs boto3). The pointer is
replaced only by a conditional write on the version that was read (S3 ``If-Match`` on its ETag,
``If-None-Match: *`` for the first one; locally the same check under a lock, then an atomic
rename), so an older or concurrent publish can never overwrite a newer generation: it fails with
:class:`StalePublish` and is simply run again. The version "read" is the one read when the pass
began (:func:`read_state`), not just before the write: an export takes seconds, and a pointer
written by someone else meanwhile must make this publish stale. Each generation is also claimed
as an immutable history object (written only if absent) before the pointer moves: a pointer put
back from an older generation (a replay, a restored backup) cannot make a publisher hand out a
generation number again, and `sync.py rollback` walks back through the history. A pointer found
without its history entry (a destination published before the history existed) has it written
first, by the next publish or rollback. The history lives in the destination, so a second record
of the generations handed out can be kept outside it (a :class:`Ledger`; `sync.py` keeps one in
MLflow): a destination restored from a backup, recreated or wiped cannot make a publisher hand out
a generation number followers have already seen. The pointer's bytes, and the bytes its signature
covers, come from the ``skedge`` CLI (``sign-pointer`` / ``verify-pointer``): one encoder.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ._cli import program
from ._s3 import S3

#: The pointer documents written here (FORMAT.md §5, `pointer_version`).
POINTER_VERSION = 1
#: A pointer is small; anything larger at a pointer key is refused unread.
MAX_POINTER_BYTES = 64 * 1024
DEFAULT_SKEDGE = program("skedge")
#: How long a blob another publisher is writing (our conditional write found it taken) may take to
#: become readable before the publish gives up (PUBLISH_FAILED: run again).
BLOB_SETTLE_SECONDS = 20.0


class PublishError(Exception):
    """Publishing failed; nothing the edge reads was changed unless said otherwise. `code` is stable."""

    code = "PUBLISH_FAILED"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class StalePublish(PublishError):
    """The pointer changed between reading and writing it (a concurrent or older publish)."""

    code = "PUBLISH_STALE"


class BlobMismatch(PublishError):
    """A blob already at a content address holds other bytes: refused, never overwritten."""

    code = "BLOB_MISMATCH"


class PointerInvalid(PublishError):
    """The stored pointer is malformed, or is not the pointer of the key it was read from."""

    code = "POINTER_INVALID"


class UnsignedOverSigned(PublishError):
    """An unsigned pointer would replace a signed one: followers pinning the key would refuse it
    for good. Refused unless explicitly allowed."""

    code = "SIGNATURE_MISSING"


class Store(Protocol):
    def read(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, version tag) of `key`, or None when absent."""

    def put_new(self, key: str, data: bytes) -> bool:
        """Write `key` only if absent; False (and nothing written) if it exists."""

    def put_if(self, key: str, data: bytes, expected: str | None) -> None:
        """Replace `key` only if its version tag is still `expected` (None: still absent), else
        raise StalePublish."""

    def names(self, prefix: str) -> list:
        """The names of the objects directly under `prefix/`."""

    def size(self, key: str) -> int | None:
        """The size of `key` in bytes, or None when absent (nothing read)."""


class Ledger(Protocol):
    """The highest generation handed out per model and alias of one destination, kept outside it
    (`sync.MlflowLedger`: a registered-model tag). The destination's history is the first record;
    this one survives the destination being restored from a backup, recreated or wiped."""

    def recorded(self, model: str, alias: str) -> int:
        """The highest generation recorded (0: none)."""

    def record(self, model: str, alias: str, generation: int) -> None:
        """Raise the record to `generation` (never lower it); PublishError when it cannot be written."""


def dest_id(dest: str | Path) -> str:
    """A destination's name in a ledger: ``s3://bucket/prefix`` without a trailing ``/``, or a
    directory's absolute path. A destination restored to the same name keeps its record; one moved
    to another bucket, prefix or path starts a new one."""
    dest = str(dest)
    if dest.startswith("s3://"):
        return dest.rstrip("/")
    return os.path.abspath(dest)


class LocalStore:
    """A directory. Blobs: a complete temporary file hard-linked to its name (fails if the name
    exists, so a blob is never overwritten or seen half-written). Pointers: compare and rename
    under an exclusive lock on a `.lock` file beside them; the version tag is the bytes' sha256."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def read(self, key: str) -> tuple[bytes, str] | None:
        try:
            with open(self._path(key), "rb") as f:
                data = f.read(MAX_POINTER_BYTES + 1) if _small(key) else f.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise PublishError(f"{self._path(key)}: {err}") from err
        return data, hashlib.sha256(data).hexdigest()

    def names(self, prefix: str) -> list:
        try:
            return [p.name for p in self._path(prefix).iterdir() if not p.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as err:
            raise PublishError(f"{self._path(prefix)}: {err}") from err

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise PublishError(f"{self._path(key)}: {err}") from err

    def _temp(self, path: Path, data: bytes) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        return tmp

    def put_new(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        try:
            tmp = self._temp(path, data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        except OSError as err:
            raise PublishError(f"{path}: {err}") from err
        return True

    def put_if(self, key: str, data: bytes, expected: str | None) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_name(path.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                current = self.read(key)
                if (current[1] if current else None) != expected:
                    raise StalePublish(f"{path} changed since it was read: publish again")
                os.replace(self._temp(path, data), path)
        except OSError as err:
            raise PublishError(f"{path}: {err}") from err


class S3Store(S3):
    """``s3://bucket/prefix`` with S3's conditional writes."""

    error = PublishError

    def read(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        with self.errors(key):
            try:
                obj = self.client.get_object(Bucket=self.name, Key=self.key(key))
            except ClientError as err:
                if self.status(err) == 404:
                    return None
                raise
            return obj["Body"].read(MAX_POINTER_BYTES + 1 if _small(key) else None), obj["ETag"]

    def names(self, prefix: str) -> list:
        full = self.key(prefix).rstrip("/") + "/"
        with self.errors(prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=full)
            found = [o["Key"][len(full):] for page in pages for o in page.get("Contents", [])]
        return [name for name in found if name and "/" not in name]

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        with self.errors(key):
            try:
                return int(self.client.head_object(Bucket=self.name, Key=self.key(key))["ContentLength"])
            except ClientError as err:
                if self.status(err) == 404:
                    return None
                raise

    def put_new(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        with self.errors(key):
            try:
                self.client.put_object(Bucket=self.name, Key=self.key(key), Body=data, IfNoneMatch="*")
            except ClientError as err:
                if self.status(err) in (409, 412):  # 409: a concurrent conditional write of the same key
                    return False
                raise
        return True

    def put_if(self, key: str, data: bytes, expected: str | None) -> None:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}
        with self.errors(key):
            try:
                self.client.put_object(Bucket=self.name, Key=self.key(key), Body=data,
                                       ContentType="application/json", CacheControl="no-cache", **condition)
            except ClientError as err:
                if self.status(err) in (409, 412):
                    raise StalePublish(f"{self.where(key)} changed since it was read: publish again") from err
                raise


def open_store(dest: str | Path, endpoint_url: str | None = None) -> Store:
    """The store for a DEST: ``s3://bucket/prefix`` or a local directory."""
    dest = str(dest)
    return S3Store(dest, endpoint_url) if dest.startswith("s3://") else LocalStore(dest)


def blob_key(sha256: str) -> str:
    return f"blobs/sha256/{sha256}.skedge"


def manifest_key(sha256: str) -> str:
    return f"blobs/sha256/{sha256}.manifest.json"


def pointer_key(model: str, alias: str) -> str:
    for what, value in (("model", model), ("alias", alias)):
        if not value or "/" in value or value in (".", "..") or any(ord(c) < 32 for c in value):
            raise PublishError(f"{what} {value!r} cannot name a pointer (no '/', '.', '..' or control characters)")
    return f"pointers/{model}/{alias}.json"


def history_prefix(model: str, alias: str) -> str:
    pointer_key(model, alias)
    return f"history/{model}/{alias}"


def history_key(model: str, alias: str, generation: int) -> str:
    return f"{history_prefix(model, alias)}/{generation}.json"


def _small(key: str) -> bool:
    """Pointers and history entries are read no further than a pointer's limit."""
    return key.startswith(("pointers/", "history/"))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _skedge(skedge: Path, args: list) -> bytes:
    try:
        done = subprocess.run([str(skedge), *args], capture_output=True, check=False)
    except OSError as err:
        raise PublishError(f"cannot run {skedge}: {err} (cargo build --release --bin skedge)") from err
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        # The CLI's own code (`error[POINTER_INVALID]: ...`) is the error's code: one vocabulary.
        code = re.search(r"error\[([A-Z_]+)\]", message)
        raise PublishError(message, code.group(1) if code else None)
    return done.stdout


def encode_pointer(fields: dict, *, skedge: Path = DEFAULT_SKEDGE, sign_key: Path | None = None) -> bytes:
    """The stored bytes of a pointer: checked (and signed with `sign_key`) by the skedge CLI."""
    with tempfile.TemporaryDirectory(prefix="skedge-pointer-") as tmp:
        path = Path(tmp) / "pointer.json"
        path.write_text(json.dumps({**fields, "signature": None}), encoding="utf-8")
        if sign_key:
            return _skedge(skedge, ["sign-pointer", str(path), "--sign-key", str(sign_key)])
        return _skedge(skedge, ["verify-pointer", str(path)])


def verify_pointer(data: bytes, *, skedge: Path = DEFAULT_SKEDGE, public_keys: list | None = None) -> dict:
    """The pointer in `data` after the CLI checked its fields (and its signature, with keys);
    raises PublishError with the CLI's `error[CODE]` (as its `code`) otherwise."""
    if len(data) > MAX_POINTER_BYTES:
        raise PointerInvalid(f"pointer larger than {MAX_POINTER_BYTES} bytes")
    with tempfile.TemporaryDirectory(prefix="skedge-pointer-") as tmp:
        path = Path(tmp) / "pointer.json"
        path.write_bytes(data)
        args = ["verify-pointer", str(path)]
        for key in public_keys or []:
            args += ["--public-key", str(key)]
        return json.loads(_skedge(skedge, args))


def public_key_of(sign_key: Path | None) -> Path | None:
    """The public half beside a signing key (`skedge keygen NAME`: NAME.key, NAME.pub), as
    scripts/export.py expects it; what the stored pointer is verified against when signing."""
    if not sign_key:
        return None
    pub = Path(sign_key).with_suffix(".pub")
    if not pub.is_file():
        raise PublishError(f"{pub} not found: the public half of {sign_key} must be beside it "
                           "(skedge keygen writes both)")
    return pub


@dataclass
class Published:
    """What a publish did: the pointer now stored, and whether this call wrote it."""

    pointer: dict
    written: bool
    blob_written: bool

    def describe(self, dest: str) -> str:
        p = self.pointer
        what = "published" if self.written else "already published"
        return (f"{what}: {dest}/{pointer_key(p['model'], p['alias'])} -> {p['blob']} "
                f"(version {p['version']}, generation {p['generation']})")


def _put_blob(store: Store, key: str, data: bytes) -> bool:
    """Write the blob at its content address only if absent; True when this call wrote it.

    When the key is taken, what is there must be these bytes, else BLOB_MISMATCH. A conditional
    write can also be refused while another publisher's upload of the same key is in flight (S3
    409): the key then reads as absent, or (a store without atomic writes) as a prefix of the
    bytes, until that upload lands. Both are read again, backing off, for up to
    BLOB_SETTLE_SECONDS; only bytes that really differ are a mismatch, and a key still absent
    then is PUBLISH_FAILED (run again), never BLOB_MISMATCH."""
    if store.put_new(key, data):
        return True
    deadline = time.monotonic() + BLOB_SETTLE_SECONDS
    delay = 0.05
    while True:
        existing = store.read(key)
        found = None if existing is None else existing[0]
        if found == data:
            return False
        in_flight = found is None or (len(found) < len(data) and data.startswith(found))
        if not in_flight or time.monotonic() >= deadline:
            break
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
        delay = min(2 * delay, 1.0)
    if found is None:
        raise PublishError(f"{key} was being written by another publisher (the conditional write was refused) "
                           f"but could not be read after {BLOB_SETTLE_SECONDS:g} s: publish again")
    raise BlobMismatch(f"{key} already exists with other bytes ({len(found)} bytes, sha256 "
                       f"{hashlib.sha256(found).hexdigest()}): refusing to overwrite or point at it")


def _checked(found: bytes, model: str, alias: str, *, skedge: Path) -> dict:
    pointer = verify_pointer(found, skedge=skedge)
    if (pointer["model"], pointer["alias"]) != (model, alias):
        # A pointer copied to another key (a mix-up, or on purpose) would make a publisher or a
        # follower act on another model's versions: the key names the pointer, the pointer its key.
        raise PointerInvalid(f"{pointer_key(model, alias)} holds the pointer of {pointer['model']}@"
                             f"{pointer['alias']}: remove or replace it; nothing was written")
    return pointer


@dataclass
class PointerState:
    """The alias's pointer as read at the start of a pass: what a publish replaces, and the version
    tag its conditional write expects, so a pointer written by anyone meanwhile makes it stale."""

    model: str
    alias: str
    pointer: dict | None = None
    tag: str | None = None
    #: Why the stored pointer cannot stand as it is ("" when it can): it fails verification
    #: against the signing key, a later generation was published (a replay, a restore), or the
    #: blob it names is gone (a partial restore: followers could never load it).
    problem: str = ""
    #: The highest generation handed out (0 when none): the history's, or the ledger's if higher.
    high_water: int = 0
    #: The generations in the history, ascending.
    history: list = field(default_factory=list)
    #: The ledger's record (0 without a ledger) and the ledger, which a publish from this state
    #: raises before moving the pointer.
    recorded: int = 0
    ledger: Ledger | None = field(default=None, repr=False)
    #: False when the stored pointer failed verification against the signing key's public half.
    verified: bool = True

    def names(self, version: str) -> bool:
        """The stored pointer names `version` and can stay: nothing to publish (whether its blob
        holds the model the registry records for the version now is `sync.py`'s to ask)."""
        return bool(self.pointer) and self.pointer["version"] == version and not self.problem

    def where_high_water(self) -> str:
        """Which record holds the high-water mark, for messages."""
        if self.recorded > max(self.history, default=0):
            return f"recorded in {getattr(self.ledger, 'name', 'the ledger')}"
        return "history"


def read_state(store: Store, model: str, alias: str, *, skedge: Path = DEFAULT_SKEDGE,
               public_key: Path | None = None, ledger: Ledger | None = None) -> PointerState:
    """The stored pointer (fields and key checked: POINTER_INVALID otherwise), whether it verifies
    against `public_key`, and the high-water mark: the history's, or `ledger`'s when higher (a
    destination restored from a backup or recreated has lost generations followers have seen)."""
    state = PointerState(model, alias, ledger=ledger)
    generations = []
    for name in store.names(history_prefix(model, alias)):
        stem = name.removesuffix(".json")
        if name.endswith(".json") and stem.isdigit():
            generations.append(int(stem))
    state.history = sorted(generations)
    state.recorded = ledger.recorded(model, alias) if ledger else 0
    state.high_water = max(*generations, state.recorded, 0)
    found = store.read(pointer_key(model, alias))
    if found is None:
        if state.high_water:
            state.problem = f"no pointer, but generation {state.high_water} was published ({state.where_high_water()})"
        return state
    state.pointer, state.tag = _checked(found[0], model, alias, skedge=skedge), found[1]
    if public_key:
        try:
            verify_pointer(found[0], skedge=skedge, public_keys=[public_key])
        except PublishError as err:
            state.problem = f"the stored pointer does not verify with {public_key}: {err}"
            state.verified = False
    if not state.problem and state.pointer["generation"] < state.high_water:
        state.problem = (f"the stored pointer is generation {state.pointer['generation']}, but generation "
                         f"{state.high_water} was published ({state.where_high_water()}): a replayed or "
                         "restored pointer")
    if not state.problem:
        blob, size = state.pointer["blob"], store.size(state.pointer["blob"])
        if size != state.pointer["size"]:
            found = "missing" if size is None else f"{size} bytes, not {state.pointer['size']}"
            state.problem = f"the blob the stored pointer names, {blob}, is {found}"
    return state


def remember(state: PointerState) -> None:
    """Raise the ledger's record to what the destination shows (its history, the stored pointer)
    when it is lower: a destination published before it had a ledger gets its record on the first
    pass, even one that writes nothing."""
    if state.ledger is None:
        return
    shown = max(state.history[-1] if state.history else 0, (state.pointer or {}).get("generation", 0))
    if shown > state.recorded:
        state.ledger.record(state.model, state.alias, shown)
        state.recorded = shown


def seed_history(store: Store, state: PointerState) -> None:
    """Write the stored pointer's own history entry when it has none (a destination published
    before the history existed, or one whose history was lost), so rollbacks walk back from it as
    from any other generation. Its `rollback_to` is the generation it replaced (whether it was
    itself a rollback is not recorded). A pointer failing verification is not enshrined."""
    p = state.pointer
    if not p or p["generation"] in state.history or not state.verified:
        return
    entry = {"pointer": p, "rollback_to": p["previous_generation"], "rolled_back_from": 0}
    # Written only if absent: a concurrent seed of the same pointer is the same entry.
    store.put_new(history_key(state.model, state.alias, p["generation"]),
                  (json.dumps(entry, indent=1) + "\n").encode())
    state.history = sorted({*state.history, p["generation"]})


def current_pointer(store: Store, model: str, alias: str, *, skedge: Path = DEFAULT_SKEDGE) -> tuple[dict, str] | None:
    """(the stored pointer, its version tag), or None when there is none yet."""
    found = store.read(pointer_key(model, alias))
    if found is None:
        return None
    return _checked(found[0], model, alias, skedge=skedge), found[1]


def read_history(store: Store, model: str, alias: str, generation: int, *, skedge: Path = DEFAULT_SKEDGE,
                 public_key: Path | None = None) -> dict | None:
    """History entry `generation` ({"pointer", "rollback_to", "rolled_back_from"}) with its pointer
    checked (and verified with `public_key`), or None when there is none."""
    found = store.read(history_key(model, alias, generation))
    if found is None:
        return None
    try:
        entry = json.loads(found[0])
        raw = json.dumps(entry["pointer"]).encode()
        rollback_to, rolled_back_from = int(entry["rollback_to"]), int(entry["rolled_back_from"])
    except (ValueError, KeyError, TypeError) as err:
        raise PointerInvalid(f"{history_key(model, alias, generation)}: not a history entry ({err})") from None
    pointer = _checked(raw, model, alias, skedge=skedge)
    if public_key:
        verify_pointer(raw, skedge=skedge, public_keys=[public_key])
    if pointer["generation"] != generation or not 0 <= rollback_to < generation:
        raise PointerInvalid(f"{history_key(model, alias, generation)} holds generation {pointer['generation']}")
    return {"pointer": pointer, "rollback_to": rollback_to, "rolled_back_from": rolled_back_from}


def point(store: Store, fields: dict, *, skedge: Path = DEFAULT_SKEDGE, sign_key: Path | None = None,
          now: str | None = None, state: PointerState | None = None, allow_unsigned: bool = False,
          rollback: tuple[int, int] | None = None, ledger: Ledger | None = None) -> Published:
    """Make `fields` (model, alias, version, run_id, sha256, size, integrity, format_version) the
    alias's pointer, one generation above both the stored one and the high-water mark (the
    history's, or the ledger's when higher). A no-op when the stored pointer already names the same
    blob for the same version and can stay (see PointerState.problem). The blob must already be
    stored.

    In order: the stored pointer's own history entry when it has none (`seed_history`), the new
    generation's entry (the claim), the ledger's record, then the pointer: a pointer never moves to
    a generation that is not recorded in both places.

    `state`: the pointer as read when the pass began (read now, with `ledger`, when None); the
    write is conditional on it, and its ledger is the one raised. `rollback`: (the generation
    rolled back from, the history's `rollback_to` for the new one) when this is a rollback."""
    model, alias = fields["model"], fields["alias"]
    key = pointer_key(model, alias)
    if state is None:
        state = read_state(store, model, alias, skedge=skedge, public_key=public_key_of(sign_key), ledger=ledger)
    elif (state.model, state.alias) != (model, alias):
        raise PublishError(f"the pointer read was {state.model}@{state.alias}, not {model}@{alias}")
    prev = state.pointer or {}
    if prev and not state.problem and prev["sha256"] == fields["sha256"] and prev["version"] == fields["version"]:
        remember(state)
        return Published(prev, written=False, blob_written=False)
    if prev.get("signature") and not sign_key and not allow_unsigned:
        raise UnsignedOverSigned(f"{key} is signed and no signing key was given: an unsigned pointer would be "
                                 "refused by every follower pinning the key (give the key, or allow unsigned "
                                 "explicitly)")
    sha = fields["sha256"]
    generation = max(prev.get("generation", 0), state.high_water) + 1
    pointer = {
        "pointer_version": POINTER_VERSION,
        **{k: fields[k] for k in ("model", "alias", "version", "run_id", "sha256", "size", "integrity")},
        "blob": blob_key(sha),
        "manifest": manifest_key(sha),
        "format_version": fields["format_version"],
        "generation": generation,
        "previous_sha256": prev.get("sha256", ""),
        "previous_generation": prev.get("generation", 0),
        "published_at": now or _now(),
    }
    data = encode_pointer(pointer, skedge=skedge, sign_key=sign_key)
    rolled_back_from, rollback_to = rollback or (0, prev.get("generation", 0))
    entry = {"pointer": json.loads(data), "rollback_to": rollback_to, "rolled_back_from": rolled_back_from}
    # The generation is claimed first, written only if absent: two publishers that read the same
    # pointer cannot both hand out generation N, and no publisher can hand it out again after the
    # pointer was put back to an older one. A claim whose pointer write then fails stays in the
    # history unused; the next publish goes above it.
    seed_history(store, state)
    if not store.put_new(history_key(model, alias, generation), (json.dumps(entry, indent=1) + "\n").encode()):
        raise StalePublish(f"generation {generation} of {model}@{alias} was published by another publish since "
                           f"the pointer was read ({history_key(model, alias, generation)}): publish again")
    # Recorded outside the destination before any follower can see it: a destination restored or
    # recreated later still cannot make a publisher hand it out again. A record whose pointer write
    # then fails is a generation skipped, like the claim.
    if state.ledger is not None:
        state.ledger.record(model, alias, generation)
        state.recorded = max(state.recorded, generation)
    store.put_if(key, data, state.tag)
    return Published(json.loads(data), written=True, blob_written=False)


def publish(artifact: str | Path, manifest: dict, dest: str | Path, *, alias: str, model: str | None = None,
            skedge: Path = DEFAULT_SKEDGE, sign_key: Path | None = None, endpoint_url: str | None = None,
            now: str | None = None, state: PointerState | None = None, allow_unsigned: bool = False,
            ledger: Ledger | None = None, pinned: bool = False) -> Published:
    """Publish an exported artifact and its manifest (as `scripts/export.py` wrote them) under
    `dest` and move `alias`'s pointer to it. Model name, version and run id come from the manifest
    (the registered model's when exported from MLflow). `state`: the pointer read when the pass
    began (`read_state`), so that any publish since then makes this one PUBLISH_STALE; read now
    (with `ledger`) when None. An export asked for as ``models:/NAME/STAGE`` or
    ``models:/NAME/latest`` is refused (`check_source`), unless `pinned`: the caller names the
    version itself and checks it again before publishing (`sync.py`, publishing the registry's
    artifact of the alias's version, whatever URI its export was asked for by)."""
    if not pinned:
        check_source(manifest)
    try:
        data = Path(artifact).read_bytes()
    except OSError as err:
        raise PublishError(f"{artifact}: {err}") from err
    sha = hashlib.sha256(data).hexdigest()
    if sha != manifest["sha256"] or len(data) != manifest["size"]:
        raise PublishError(f"{artifact} is not the artifact its manifest describes (sha256 {sha})")
    fields = manifest_fields(manifest, alias=alias, model=model)
    pointer_key(fields["model"], alias)  # refuse a bad name before any write
    store = open_store(dest, endpoint_url)
    if state is None:
        state = read_state(store, fields["model"], alias, skedge=skedge, public_key=public_key_of(sign_key),
                           ledger=ledger)
    blob_written = _put_blob(store, blob_key(sha), data)
    # The first export's manifest stays: a later export of the same bytes differs only in when
    # and how it ran (exported_at, export), not in what the blob is.
    store.put_new(manifest_key(sha), (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    result = point(store, fields, skedge=skedge, sign_key=sign_key, now=now, state=state,
                   allow_unsigned=allow_unsigned)
    result.blob_written = blob_written
    return result


def check_source(manifest: dict) -> None:
    """Refuse to publish an export asked for by a reference nothing re-checks: ``models:/NAME/STAGE``
    or ``models:/NAME/latest`` (the manifest's `export` record). Each names whatever version is in
    the stage, or was registered last, when it is read: it can move during the export, no registry
    webhook says so (`sync.py serve` follows aliases), and a pointer is named by an alias that
    `sync.py` keeps on that MLflow alias's version. ``models:/NAME@ALIAS`` is resolved again after
    the export; ``models:/NAME/VERSION``, a logged model or a run never move."""
    request = manifest.get("export") or {}
    uri = str(request.get("model_uri") or "")
    if not uri.startswith("models:/"):
        return
    from .registry import RegistryError, parse_model_uri  # noqa: PLC0415

    try:
        parsed = parse_model_uri(uri)
    except RegistryError:
        return
    if parsed.kind in ("stage", "latest"):
        what = f"the stage {parsed.stage!r}" if parsed.kind == "stage" else "the latest version"
        raise PublishError(f"{uri} names {what}, which can move during the export and is not checked again: "
                           f"not published. Publish models:/{parsed.name}@ALIAS (checked again after the "
                           f"export) or the version itself, models:/{parsed.name}/{manifest.get('version') or 'VERSION'}"
                           " with --publish-alias")


def manifest_fields(manifest: dict, *, alias: str, model: str | None = None) -> dict:
    """The pointer fields `publish` takes from an export's manifest."""
    provenance = manifest.get("provenance") or {}
    return {
        "model": model or provenance.get("registered_model") or manifest["name"],
        "alias": alias,
        "version": str(manifest.get("version", "")),
        "run_id": provenance.get("run_id") or "",
        "sha256": manifest["sha256"],
        "size": manifest["size"],
        "integrity": manifest["integrity"],
        "format_version": manifest["format_version"],
    }
