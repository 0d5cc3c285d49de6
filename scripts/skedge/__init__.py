"""skedge: scikit-learn text classifiers, bit-exact, at the edge — the runtime in Python.

A fitted scikit-learn text pipeline, exported to a skedge artifact (``skedge-export``, or
``scripts/export.py`` in a checkout), predicts here with the same labels and decision values as
scikit-learn, bit for bit, and probabilities within 1e-12: the same Rust engine as the ``skedge``
CLI and the npm package, without scikit-learn.

>>> import skedge
>>> model = skedge.Model.load("model.skedge")                       # doctest: +SKIP
>>> model.predict("a great film")                                   # doctest: +SKIP
{'label': 1, 'decision': [1.52...], 'proba': [0.17..., 0.82...]}
>>> model.predict_batch(["a great film", "dull"])["decision"].shape  # doctest: +SKIP
(2, 1)

In Spark, :func:`skedge.spark.predict_udf` (``import skedge.spark``; needs pyspark) predicts a text
column with the same engine, the artifact shipped once per executor.

Errors are :class:`SkedgeError`, whose ``code`` is the CLI's and the npm package's. A model pickles
(copy, joblib, multiprocessing) as its artifact's bytes and pinned public keys; an encrypted one
does not (``NOT_PICKLABLE``).

The tools are modules, imported on their own (this module imports neither scikit-learn nor
MLflow): ``skedge.export`` (console script ``skedge-export``), ``skedge.sync`` (``skedge-sync``),
``skedge.report`` (``skedge-report``), ``skedge.manifest`` (``skedge-manifest``), ``skedge.registry``,
``skedge.publish``, ``skedge.service`` (``python -m skedge.service``). ``python -m skedge`` lists
them and the extra each needs (``pip install "skedge[export]"``).
"""

from ._skedge import MAX_TEXT_BYTES, Experiment, Model, SkedgeError, __version__
from ._types import BatchPrediction, Explanation, Feature, Info, Prediction

__all__ = [
    "MAX_TEXT_BYTES",
    "BatchPrediction",
    "Experiment",
    "Explanation",
    "Feature",
    "Info",
    "Model",
    "Prediction",
    "SkedgeError",
    "__version__",
]
