"""skedge in Spark: a pandas UDF that predicts a text column with the exact runtime.

>>> from skedge.spark import predict_udf
>>> predict = predict_udf("model.skedge")                               # doctest: +SKIP
>>> df.select("text", predict("text").alias("p")).select("text", "p.*")  # doctest: +SKIP

The UDF returns a struct column ``label`` (long or string: the model's classes), ``decision``
(array<double>, scikit-learn's ``decision_function`` row) and ``proba`` (array<double>,
``predict_proba``; null when the estimator has none); a null text gives null fields. Arrow
batches go to :meth:`skedge.Model.predict_batch` (the GIL released), so the values are the CLI's,
bit for bit.

The artifact is read and loaded once on the driver (a bad artifact or key fails here, with its
code: a path is checked by :meth:`skedge.Model.load` first, then read no further than the size it
declared; a key file is read up to 4096 bytes, as ``Model.load`` reads it), then shipped once per
executor as a Spark broadcast; each Python worker process loads it once, from a small
least-recently-used cache (:data:`CACHE_SIZE` models) keyed by its sha256 and the keys. The UDF's
``broadcast`` attribute is that broadcast: ``predict.broadcast.unpersist()`` frees the executors'
copies when the UDF is no longer used (``destroy()`` frees the driver's too; the UDF cannot run
after it).

Spark Connect (``SparkSession.builder.remote(...)``) has no SparkContext: the artifact is uploaded
to the session as a file (``addArtifacts(file=True)``, in 32 KiB chunks, named by its sha256) and
each worker reads it from the session's files, no further than its size, and checks its sha256.
The bytes never travel inside the UDF: every query's plan carries the pickled UDF, and a server
with the default 1 GiB heap ran out of memory on a 100 MB one. Such a UDF runs in the session that
made it (elsewhere: ``[IO]``); the server deletes the file with the session, and ``broadcast`` is
None.

A text the runtime refuses (over ``MAX_TEXT_BYTES``) fails the task with a
:class:`skedge.SkedgeError` whose message starts with its code (``[INPUT_TOO_LARGE]``) and names
the row within its Arrow batch (nulls counted), as a Spark function fails on bad input; filter
such rows first if the data may hold them.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from ._skedge import Model, SkedgeError

if TYPE_CHECKING:  # pyspark is optional: only this module needs it
    from pyspark.sql import SparkSession

__all__ = ["CACHE_SIZE", "predict_udf", "result_type"]

Key = Union[str, bytes, bytearray, "os.PathLike[str]"]

#: Models a Python worker process keeps loaded (least recently used first out).
CACHE_SIZE = 4
#: The largest key file read, as `Model.load` reads one (longer: `IO`).
KEY_FILE_MAX_BYTES = 4096

# (artifact sha256, keys) -> Model, per Python worker process: Spark reuses its workers
# (spark.python.worker.reuse), so a model loads once per process, not per batch or task; a
# long-lived worker serving many UDFs keeps the CACHE_SIZE most recently used.
_MODELS: OrderedDict[tuple, Model] = OrderedDict()
_LOCK = threading.Lock()


def _coded(code: str, message: str, index: int | None = None) -> SkedgeError:
    """A `SkedgeError` as the runtime raises them: `code` and `index` set on the instance."""
    err = SkedgeError(message)
    err.code, err.index = code, index
    return err


def _read(path: Any, limit: int, what: str) -> bytes:
    """At most `limit` + 1 bytes of `path` (more: `IO`, as `Model.load` refuses an over-long key
    file); an OS error is `IO` too."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise _coded("IO", f"{what} {os.fsdecode(path)!r}: {err.strerror or err}") from err
    if len(data) > limit:
        raise _coded("IO", f"{what} {os.fsdecode(path)!r}: longer than {limit} bytes")
    return data


def _key_value(key: Any) -> Any:
    """A key as the executors can read it: a path names a driver file, so ship its text."""
    if isinstance(key, os.PathLike):
        data = _read(key, KEY_FILE_MAX_BYTES, "key file")
        try:
            return data.decode("utf-8")
        except UnicodeError as err:
            raise _coded("IO", f"key file {os.fsdecode(key)!r}: not UTF-8 text ({err})") from err
    return bytes(key) if isinstance(key, bytearray) else key


class _SessionFile(NamedTuple):
    """The artifact as a file of a Spark Connect session (`SparkSession.addArtifacts`)."""

    name: str
    size: int

    def read(self, sha256: str) -> bytes:
        """The file's bytes, on a worker; the message starts with the code, as Spark passes the
        executors' errors on as text."""
        from pyspark import SparkFiles

        hint = "a Spark Connect UDF runs only in the session that made it"
        try:
            data = _read(SparkFiles.get(self.name), self.size, "artifact")
        except SkedgeError as err:
            raise _coded("IO", f"[IO] {err} ({hint})") from None
        if len(data) != self.size or hashlib.sha256(data).hexdigest() != sha256:
            raise _coded("IO", f"[IO] artifact {self.name!r}: not the {self.size} bytes uploaded ({hint})")
        return data


def _is_connect(session: Any) -> bool:
    # Connect's SparkSession is not a subclass of the classic one; its module (which needs
    # grpcio) is loaded whenever such a session exists.
    connect = sys.modules.get("pyspark.sql.connect.session")
    return connect is not None and isinstance(session, connect.SparkSession)


def _upload(session: Any, data: bytes, sha256: str) -> _SessionFile:
    """The artifact as a file of the Connect `session`, named by its sha256: a second upload of
    the same bytes is accepted, never one of other bytes under the name."""
    name = f"skedge-{sha256}.skedge"
    with tempfile.TemporaryDirectory(prefix="skedge-spark-") as folder:
        path = os.path.join(folder, name)
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError as err:
            raise _coded("IO", f"artifact copy {path!r} for Spark Connect: {err.strerror or err}") from err
        session.addArtifacts(path, file=True)
    return _SessionFile(name, len(data))


def _model(sha256: str, source: Any, public_key: Any, decryption_key: Any) -> Model:
    cache_key = (sha256, repr(public_key), repr(decryption_key))
    with _LOCK:
        model = _MODELS.get(cache_key)
        if model is None:
            if isinstance(source, bytes):
                data = source
            elif isinstance(source, _SessionFile):
                data = source.read(sha256)
            else:
                data = source.value  # a Broadcast
            model = Model.from_bytes(data, public_key=public_key, decryption_key=decryption_key)
            _MODELS[cache_key] = model
            while len(_MODELS) > CACHE_SIZE:
                _MODELS.popitem(last=False)
        else:
            _MODELS.move_to_end(cache_key)
    return model


def _row_error(err: SkedgeError, rows: Any, n: int) -> SkedgeError:
    """`predict_batch`'s error, its index (among the batch's non-null texts) turned into the row
    of the Arrow batch, and its code in the message: Spark passes executors' errors on as text."""
    code = getattr(err, "code", "") or "UNKNOWN"
    index = getattr(err, "index", None)
    row = int(rows[index]) if isinstance(index, int) and 0 <= index < len(rows) else None
    message, where = str(err), f"an Arrow batch of {n} rows"
    if row is not None:
        where = f"row {row} (from 0, nulls counted) of {where}"
        message = message.removeprefix(f"texts[{index}]: ")  # counted among the non-null texts only
    return _coded(code, f"[{code}] {where}: {message}", row)


def result_type(classes: Sequence[Any]) -> Any:
    """The UDF's Spark type for a model of these classes."""
    from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType

    label = LongType() if all(isinstance(c, int) for c in classes) else StringType()
    return StructType(
        [
            StructField("label", label),
            StructField("decision", ArrayType(DoubleType(), containsNull=False)),
            StructField("proba", ArrayType(DoubleType(), containsNull=False)),
        ]
    )


def predict_udf(
    artifact: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    public_key: Key | Sequence[Key] | None = None,
    decryption_key: Key | None = None,
    spark: SparkSession | None = None,
) -> Any:
    """A pandas UDF predicting a string column with the model of ``artifact`` (a path or bytes).

    ``public_key`` and ``decryption_key`` are :meth:`skedge.Model.from_bytes`'s; a key given as
    a path is read here, on the driver. ``spark`` defaults to the active session. Every failure
    here is a :class:`skedge.SkedgeError` with ``Model.load``'s code (``IO``,
    ``ARTIFACT_CORRUPT``, ``SIGNATURE_INVALID``, ...); Spark's own (the session, the upload)
    are Spark's. The UDF's ``broadcast`` attribute is the artifact's Spark broadcast, to
    ``unpersist()`` when done; under Spark Connect it is None (the artifact is a session file).
    """
    import pandas as pd
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import pandas_udf

    # Checked by the runtime first, with its codes and its bounded reads (a missing file is IO,
    # /dev/zero ARTIFACT_CORRUPT, a key file over 4096 bytes or not UTF-8 IO); the classes give
    # the label's type.
    if isinstance(artifact, (bytes, bytearray, memoryview)):
        data = bytes(artifact)
        info = Model.from_bytes(data, public_key=public_key, decryption_key=decryption_key).info()
    else:
        info = Model.load(artifact, public_key=public_key, decryption_key=decryption_key).info()
        # No further than the size it declared: the bytes just checked, unless the file changed.
        data = _read(artifact, int(info["bytes"]), "artifact")
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise _coded("IO", f"artifact {os.fsdecode(artifact)!r} changed while it was read")
    if isinstance(public_key, (list, tuple)):
        public_key = [_key_value(k) for k in public_key]
    elif public_key is not None:
        public_key = _key_value(public_key)
    if decryption_key is not None:
        decryption_key = _key_value(decryption_key)
    classes = info["classes"]
    sha256 = hashlib.sha256(data).hexdigest()

    session = spark or SparkSession.active()
    source: Any
    if _is_connect(session):
        source, broadcast = _upload(session, data, sha256), None
    else:
        source = broadcast = session.sparkContext.broadcast(data)

    def predict(texts: pd.Series) -> pd.DataFrame:
        model = _model(sha256, source, public_key, decryption_key)
        present = texts.notna().to_numpy()
        n = len(texts)
        labels: list[Any] = [None] * n
        decisions: list[Any] = [None] * n
        probas: list[Any] = [None] * n
        rows = present.nonzero()[0]
        if len(rows):
            try:
                batch = model.predict_batch(texts[present].tolist())
            except SkedgeError as err:
                raise _row_error(err, rows, n) from None
            proba = batch["proba"]
            for j, i in enumerate(rows):
                labels[i] = batch["label"][j]
                decisions[i] = batch["decision"][j]
                probas[i] = None if proba is None else proba[j]
        # object dtype: pandas would make Python ints with a None float64, and a long label
        # beyond 2**53 would come back rounded.
        labels_column = pd.Series(labels, dtype=object)
        return pd.DataFrame({"label": labels_column, "decision": decisions, "proba": probas})

    # pyspark reads the type hints to pick the UDF kind; here they would be strings.
    predict.__annotations__ = {"texts": pd.Series, "return": pd.DataFrame}
    udf = pandas_udf(predict, result_type(classes))  # type: ignore[call-overload]
    udf.broadcast = broadcast
    return udf
