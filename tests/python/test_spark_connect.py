"""`skedge.spark.predict_udf` under Spark Connect: a real Connect server on 127.0.0.1 (spark-submit
of pyspark's own SparkConnectServer, local[1], 1 GiB heap), a `SparkSession.builder.remote` client.

There is no SparkContext, so no broadcast: the artifact goes to the session as a file. Checked
against scikit-learn on SST-2 and French texts (labels and decisions bit for bit, probabilities
within 1e-12), with null texts, labels beyond 2**53, a sealed artifact, an executor's coded error,
a UDF used in another session, and a 100 MB artifact (shipped inside the UDF, it ran the server
out of memory).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import sys

import numpy as np
import pyspark
import pytest
from conftest import SKEDGE, _stop_group, _wait_until, binary_corpus, multiclass_corpus, read_tsv, requires_skedge
from ports import free_port
from pyspark.sql import SparkSession
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC
from skedge.spark import predict_udf
from test_spark import bits, check, executor_error, pack

pytestmark = [
    requires_skedge,
    pytest.mark.skipif(shutil.which("java") is None, reason="the Spark Connect server needs Java (17) on PATH"),
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    """`sc://127.0.0.1:PORT` of a Spark Connect server for this module (its JVM, about 1 GiB, is
    stopped when the module's tests end, not kept to the end of the run); its output in server.log."""
    base = tmp_path_factory.mktemp("spark-connect")
    port = free_port()
    home = pathlib.Path(pyspark.__file__).parent
    env = dict(
        os.environ,
        SPARK_HOME=str(home),
        # The server's Python workers must be this interpreter (pandas, pyarrow, skedge).
        PYSPARK_PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
    )
    env.pop("SPARK_REMOTE", None)
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.local.dir": str(base / "local"),  # the sessions' files too
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "100",
    }
    args = [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--master", "local[1]", "--driver-memory", "1g"]  # fmt: skip
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    log_path = base / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base,
                                start_new_session=True)  # fmt: skip
        try:
            _wait_until(lambda: _listening(port), proc, "Spark Connect server", 120, log_path)
            yield {"url": f"sc://127.0.0.1:{port}", "log": log_path, "proc": proc}
        finally:
            _stop_group(proc)


@pytest.fixture(scope="module")
def spark(connect_server):
    # getOrCreate marks the whole process as Connect (SPARK_CONNECT_MODE_ENABLED): undone after,
    # or a classic session made later in this process (tests/python/test_spark.py) would be remote.
    before = os.environ.get("SPARK_CONNECT_MODE_ENABLED")
    session = SparkSession.builder.remote(connect_server["url"]).getOrCreate()
    try:
        yield session
    finally:
        session.stop()
        if before is None:
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


def texts() -> list[str]:
    sst2, _ = read_tsv("sst2_dev.tsv")
    fr, _ = read_tsv("fr_allocine_tv_test_first300.tsv")
    return sst2 + fr[:100]


def run(spark, udf, rows: list, partitions: int = 3) -> list:
    df = spark.createDataFrame([(i, t) for i, t in enumerate(rows)], "id long, text string")
    out = df.repartition(partitions).select("id", udf("text").alias("p")).select("id", "p.*")
    return sorted(out.collect(), key=lambda r: r["id"])


def test_predictions_equal_scikit_learns(spark, tmp_path):
    assert type(spark).__module__ == "pyspark.sql.connect.session"
    rows = texts()
    lr = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=4.0))
    lr.fit(*binary_corpus(1000))
    pack(lr, tmp_path / "lr.skedge")
    udf = predict_udf(tmp_path / "lr.skedge")  # the active session: the Connect one
    assert udf.broadcast is None
    check(run(spark, udf, rows), lr, rows)

    svc = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)), LinearSVC())
    svc.fit(*multiclass_corpus())
    pack(svc, tmp_path / "svc.skedge")
    check(run(spark, predict_udf((tmp_path / "svc.skedge").read_bytes(), spark=spark), rows), svc, rows)


def test_null_texts_and_long_labels_stay_exact(spark, tmp_path):
    texts_, y = binary_corpus()
    classes = [2**60 + 1, 2**60 + 3]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts_, [classes[v] for v in y])
    pack(model, tmp_path / "big-labels.skedge")
    rows = texts_[:40]
    got = run(spark, predict_udf(tmp_path / "big-labels.skedge"), [None, *rows, None], partitions=1)
    want = model.predict(rows).tolist()
    assert set(want) == set(classes)
    assert [r["label"] for r in got] == [None, *want, None]
    assert all(r["decision"] is None and r["proba"] is None for r in (got[0], got[-1]))
    want_decision = np.asarray(model.decision_function(rows), dtype=np.float64)
    assert bits(r["decision"][0] for r in got[1:-1]) == bits(want_decision)


def test_a_sealed_artifact_loads_with_its_keys(spark, tmp_path):
    for args in (["signer"], ["secret", "--encryption"]):
        proc = subprocess.run([SKEDGE, "keygen", tmp_path / args[0], *args[1:]], capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(*binary_corpus())
    sealed = tmp_path / "sealed.skedge"
    pack(model, sealed, "--sign-key", tmp_path / "signer.key", "--encrypt-key", tmp_path / "secret.key")
    rows = texts()[:100]
    udf = predict_udf(sealed, public_key=tmp_path / "signer.pub", decryption_key=tmp_path / "secret.key")
    check(run(spark, udf, rows), model, rows)


def test_an_executor_error_keeps_its_code_and_names_its_row(spark, tmp_path):
    executor_error(spark, tmp_path)


def test_a_udf_runs_only_in_the_session_that_made_it(spark, tmp_path):
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(*binary_corpus())
    pack(model, tmp_path / "m.skedge")
    udf = predict_udf(tmp_path / "m.skedge", spark=spark)
    other = spark.newSession()
    try:
        with pytest.raises(Exception) as err:
            other.createDataFrame([("good",)], "text string").select(udf("text")).collect()
    finally:
        other.stop()
    text = str(err.value)
    assert type(err.value).__name__ == "PythonException", text[:2000]
    assert "[IO] artifact " in text and "a Spark Connect UDF runs only in the session that made it" in text, text[-3000:]
    # The session that made it still runs it.
    assert run(spark, udf, ["good"])[0]["label"] == model.predict(["good"])[0]


def test_a_100_mb_artifact_stays_out_of_the_plan(spark, tmp_path, connect_server):
    # Last in this file: shipped inside the UDF, these bytes ran the server out of heap (1 GiB)
    # and could take it down.
    model = make_pipeline(HashingVectorizer(n_features=2**22, alternate_sign=False), LinearSVC())
    model.fit(*multiclass_corpus())
    pack(model, tmp_path / "wide.skedge")
    size = (tmp_path / "wide.skedge").stat().st_size
    assert size > 100_000_000
    udf = predict_udf(tmp_path / "wide.skedge")
    rows = texts()[:300]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(rows)], "id long, text string")
    # The relation the client sends (before its plan compression) holds the pickled UDF, not
    # the artifact.
    assert df.select(udf("text"))._plan.plan(spark.client).ByteSize() < 1 << 20
    query = df.select("id", udf("text").alias("p")).select("id", "p.*")
    got = sorted(query.collect(), key=lambda r: r["id"])
    assert connect_server["proc"].poll() is None, connect_server["log"].read_text(errors="replace")[-3000:]
    check(got, model, rows)
