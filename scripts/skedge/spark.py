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
code), then shipped once per executor as a Spark broadcast; each Python worker process loads it
once, from a cache keyed by its sha256 and the keys. Without a SparkContext (Spark Connect) the
bytes travel inside the UDF instead, still loaded once per worker process. A text the runtime
refuses (over ``MAX_TEXT_BYTES``) fails the task with a :class:`skedge.SkedgeError`, as a Spark
function fails on bad input; filter such rows first if the data may hold them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

from ._skedge import Model

if TYPE_CHECKING:  # pyspark is optional: only this module needs it
    from pyspark.sql import SparkSession

__all__ = ["predict_udf", "result_type"]

Key = Union[str, bytes, bytearray, "os.PathLike[str]"]

# (artifact sha256, keys) -> Model, per Python worker process: Spark reuses its workers
# (spark.python.worker.reuse), so a model loads once per process, not per batch or task.
_MODELS: dict[tuple, Model] = {}
_LOCK = threading.Lock()


def _key_value(key: Any) -> Any:
    """A key as the executors can read it: a path names a driver file, so ship its text."""
    if isinstance(key, os.PathLike):
        with open(key, encoding="utf-8") as f:
            return f.read()
    return bytes(key) if isinstance(key, bytearray) else key


def _model(sha256: str, source: Any, public_key: Any, decryption_key: Any) -> Model:
    cache_key = (sha256, repr(public_key), repr(decryption_key))
    model = _MODELS.get(cache_key)
    if model is None:
        with _LOCK:
            model = _MODELS.get(cache_key)
            if model is None:
                data = source if isinstance(source, bytes) else source.value  # a Broadcast
                model = Model.from_bytes(data, public_key=public_key, decryption_key=decryption_key)
                _MODELS[cache_key] = model
    return model


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
    a path is read here, on the driver. ``spark`` defaults to the active session.
    """
    import pandas as pd
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import pandas_udf

    if isinstance(artifact, (bytes, bytearray, memoryview)):
        data = bytes(artifact)
    else:
        with open(artifact, "rb") as f:
            data = f.read()
    if isinstance(public_key, (list, tuple)):
        public_key = [_key_value(k) for k in public_key]
    elif public_key is not None:
        public_key = _key_value(public_key)
    if decryption_key is not None:
        decryption_key = _key_value(decryption_key)
    # Load on the driver: a bad artifact or key fails now, and the classes give the label's type.
    classes = Model.from_bytes(data, public_key=public_key, decryption_key=decryption_key).info()["classes"]
    sha256 = hashlib.sha256(data).hexdigest()

    session = spark or SparkSession.active()
    try:
        source: Any = session.sparkContext.broadcast(data)
    except Exception:  # Spark Connect has no SparkContext: the UDF carries the bytes
        source = data

    def predict(texts: pd.Series) -> pd.DataFrame:
        model = _model(sha256, source, public_key, decryption_key)
        present = texts.notna().to_numpy()
        n = len(texts)
        labels: list[Any] = [None] * n
        decisions: list[Any] = [None] * n
        probas: list[Any] = [None] * n
        rows = present.nonzero()[0]
        if len(rows):
            batch = model.predict_batch(texts[present].tolist())
            proba = batch["proba"]
            for j, i in enumerate(rows):
                labels[i] = batch["label"][j]
                decisions[i] = batch["decision"][j]
                probas[i] = None if proba is None else proba[j]
        return pd.DataFrame({"label": labels, "decision": decisions, "proba": probas})

    # pyspark reads the type hints to pick the UDF kind; here they would be strings.
    predict.__annotations__ = {"texts": pd.Series, "return": pd.DataFrame}
    return pandas_udf(predict, result_type(classes))  # type: ignore[call-overload]
