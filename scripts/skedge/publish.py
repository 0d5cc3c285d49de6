"""Publishing to the edge (issue #14): content-addressed blobs and one signed pointer per alias.

    DEST/blobs/sha256/<hex>.skedge           the artifact, immutable, written only if absent
    DEST/blobs/sha256/<hex>.manifest.json    its manifest, likewise
    DEST/pointers/<model>/<alias>.json       which blob the alias names (FORMAT.md §5)

DEST is a local directory (for a static host) or ``s3://bucket/prefix`` (any S3-compatible
store; endpoint from ``endpoint_url`` or ``AWS_ENDPOINT_URL``; needs boto3). The pointer is
replaced only by a conditional write on the version that was read (S3 ``If-Match`` on its ETag,
``If-None-Match: *`` for the first one; locally the same check under a lock, then an atomic
rename), so an older or concurrent publish can never overwrite a newer generation: it fails with
:class:`StalePublish` and is simply run again. The pointer's bytes, and the bytes its signature
covers, come from the ``skedge`` CLI (``sign-pointer`` / ``verify-pointer``): one encoder.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ._cli import program

#: The pointer documents written here (FORMAT.md §5, `pointer_version`).
POINTER_VERSION = 1
#: A pointer is small; anything larger at a pointer key is refused unread.
MAX_POINTER_BYTES = 64 * 1024
DEFAULT_SKEDGE = program("skedge")


class PublishError(Exception):
    """Publishing failed; nothing the edge reads was changed unless said otherwise. `code` is stable."""

    code = "PUBLISH_FAILED"


class StalePublish(PublishError):
    """The pointer changed between reading and writing it (a concurrent or older publish)."""

    code = "PUBLISH_STALE"


class BlobMismatch(PublishError):
    """A blob already at a content address holds other bytes: refused, never overwritten."""

    code = "BLOB_MISMATCH"


class Store(Protocol):
    def read(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, version tag) of `key`, or None when absent."""

    def put_new(self, key: str, data: bytes) -> bool:
        """Write `key` only if absent; False (and nothing written) if it exists."""

    def put_if(self, key: str, data: bytes, expected: str | None) -> None:
        """Replace `key` only if its version tag is still `expected` (None: still absent), else
        raise StalePublish."""


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
                data = f.read(MAX_POINTER_BYTES + 1) if key.startswith("pointers/") else f.read()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

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
        tmp = self._temp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def put_if(self, key: str, data: bytes, expected: str | None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read(key)
            if (current[1] if current else None) != expected:
                raise StalePublish(f"{path} changed since it was read: publish again")
            os.replace(self._temp(path, data), path)


class S3Store:
    """``s3://bucket/prefix`` through boto3, with S3's conditional writes (R2, S3, moto)."""

    def __init__(self, url: str, endpoint_url: str | None = None):
        try:
            import boto3
        except ImportError as err:
            raise PublishError("an s3:// destination needs boto3 (scripts/requirements.txt)") from err
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise PublishError(f"{url}: no bucket (s3://BUCKET/PREFIX)")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _status(err: Exception) -> int:
        return int(getattr(err, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0))

    def read(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if self._status(err) == 404:
                return None
            raise PublishError(f"s3://{self.bucket}/{self._key(key)}: {err}") from err
        limit = MAX_POINTER_BYTES + 1 if key.startswith("pointers/") else None
        return obj["Body"].read(limit), obj["ETag"]

    def put_new(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except ClientError as err:
            if self._status(err) in (409, 412):  # 409: a concurrent conditional write of the same key
                return False
            raise PublishError(f"s3://{self.bucket}/{self._key(key)}: {err}") from err
        return True

    def put_if(self, key: str, data: bytes, expected: str | None) -> None:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                                   ContentType="application/json", CacheControl="no-cache", **condition)
        except ClientError as err:
            if self._status(err) in (409, 412):
                raise StalePublish(f"s3://{self.bucket}/{self._key(key)} changed since it was read: "
                                   "publish again") from err
            raise PublishError(f"s3://{self.bucket}/{self._key(key)}: {err}") from err


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


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _skedge(skedge: Path, args: list) -> bytes:
    try:
        done = subprocess.run([str(skedge), *args], capture_output=True, check=False)
    except OSError as err:
        raise PublishError(f"cannot run {skedge}: {err} (cargo build --release --bin skedge)") from err
    if done.returncode != 0:
        raise PublishError(done.stderr.decode("utf-8", "replace").strip())
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
    raises PublishError with the CLI's `error[CODE]` otherwise."""
    if len(data) > MAX_POINTER_BYTES:
        raise PublishError(f"pointer larger than {MAX_POINTER_BYTES} bytes")
    with tempfile.TemporaryDirectory(prefix="skedge-pointer-") as tmp:
        path = Path(tmp) / "pointer.json"
        path.write_bytes(data)
        args = ["verify-pointer", str(path)]
        for key in public_keys or []:
            args += ["--public-key", str(key)]
        return json.loads(_skedge(skedge, args))


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
    if store.put_new(key, data):
        return True
    existing = store.read(key)
    if existing is None or existing[0] != data:
        raise BlobMismatch(f"{key} already exists with other bytes: refusing to overwrite or point at it")
    return False


def current_pointer(store: Store, model: str, alias: str, *, skedge: Path = DEFAULT_SKEDGE) -> tuple[dict, str] | None:
    """(the stored pointer, its version tag), or None when there is none yet."""
    found = store.read(pointer_key(model, alias))
    if found is None:
        return None
    return verify_pointer(found[0], skedge=skedge), found[1]


def point(store: Store, fields: dict, *, skedge: Path = DEFAULT_SKEDGE, sign_key: Path | None = None,
          now: str | None = None) -> Published:
    """Make `fields` (model, alias, version, run_id, sha256, size, integrity, format_version) the
    alias's pointer, one generation after the stored one; a no-op when the stored pointer already
    names the same blob for the same version. The blob must already be stored."""
    key = pointer_key(fields["model"], fields["alias"])
    found = current_pointer(store, fields["model"], fields["alias"], skedge=skedge)
    prev, tag = found if found else ({}, None)
    if prev and prev["sha256"] == fields["sha256"] and prev["version"] == fields["version"]:
        return Published(prev, written=False, blob_written=False)
    sha = fields["sha256"]
    pointer = {
        "pointer_version": POINTER_VERSION,
        **{k: fields[k] for k in ("model", "alias", "version", "run_id", "sha256", "size", "integrity")},
        "blob": blob_key(sha),
        "manifest": manifest_key(sha),
        "format_version": fields["format_version"],
        "generation": prev.get("generation", 0) + 1,
        "previous_sha256": prev.get("sha256", ""),
        "previous_generation": prev.get("generation", 0),
        "published_at": now or _now(),
    }
    data = encode_pointer(pointer, skedge=skedge, sign_key=sign_key)
    store.put_if(key, data, tag)
    return Published(json.loads(data), written=True, blob_written=False)


def publish(artifact: str | Path, manifest: dict, dest: str | Path, *, alias: str, model: str | None = None,
            skedge: Path = DEFAULT_SKEDGE, sign_key: Path | None = None, endpoint_url: str | None = None,
            now: str | None = None) -> Published:
    """Publish an exported artifact and its manifest (as `scripts/export.py` wrote them) under
    `dest` and move `alias`'s pointer to it. Model name, version and run id come from the manifest
    (the registered model's when exported from MLflow)."""
    data = Path(artifact).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha != manifest["sha256"] or len(data) != manifest["size"]:
        raise PublishError(f"{artifact} is not the artifact its manifest describes (sha256 {sha})")
    provenance = manifest.get("provenance") or {}
    fields = {
        "model": model or provenance.get("registered_model") or manifest["name"],
        "alias": alias,
        "version": str(manifest.get("version", "")),
        "run_id": provenance.get("run_id") or "",
        "sha256": sha,
        "size": len(data),
        "integrity": manifest["integrity"],
        "format_version": manifest["format_version"],
    }
    pointer_key(fields["model"], alias)  # refuse a bad name before any write
    store = open_store(dest, endpoint_url)
    blob_written = _put_blob(store, blob_key(sha), data)
    # The first export's manifest stays: a later export of the same bytes differs only in when
    # and how it ran (exported_at, export), not in what the blob is.
    store.put_new(manifest_key(sha), (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    result = point(store, fields, skedge=skedge, sign_key=sign_key, now=now)
    result.blob_written = blob_written
    return result
