"""`skedge.spark.predict_udf` in real pyspark (local[1], 127.0.0.1, no UI) against scikit-learn.

Pipelines fitted here by scikit-learn on UCI texts are packed by the real CLI; a DataFrame of
SST-2 and French review texts goes through the UDF in several partitions: labels and decisions
equal scikit-learn's bit for bit, probabilities within 1e-12. Sealed artifacts load with the keys
`Model.from_bytes` takes; a bad key, a missing or endless file fails on the driver with its code;
a text refused on an executor keeps its code and names its row; labels beyond 2**53 stay exact.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import skedge
from conftest import SKEDGE, binary_corpus, multiclass_corpus, read_tsv, requires_skedge
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from skedge import interchange as ix

pyspark = pytest.importorskip("pyspark")
from pyspark.sql import SparkSession  # noqa: E402
from skedge.spark import predict_udf  # noqa: E402

pytestmark = [
    requires_skedge,
    pytest.mark.skipif(shutil.which("java") is None, reason="pyspark needs Java (17) on PATH"),
    # pyspark 4.3 warns that it does not yet fully support pandas 3; what it runs here is tested.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]
PROBA_TOLERANCE = 1e-12


def bits(values) -> list[int]:
    return [struct.unpack("<q", struct.pack("<d", float(v)))[0] for v in values]


@pytest.fixture(scope="module")
def spark():
    # The workers must be this interpreter (pandas, pyarrow, skedge); PYTHONPATH reaches them.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("skedge-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def pack(model, path, *extra) -> None:
    inter = ix.to_interchange(model, {"name": path.stem, "version": "1"})
    src = path.with_suffix(".interchange.json")
    src.write_text(ix.dumps_interchange(inter), encoding="utf-8")
    proc = subprocess.run([SKEDGE, "pack", src, "-o", path, *extra], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()


def texts() -> list[str]:
    sst2, _ = read_tsv("sst2_dev.tsv")
    fr, _ = read_tsv("fr_allocine_tv_test_first300.tsv")
    return sst2 + fr[:100]


def run(spark, udf, rows: list[str]) -> list:
    df = spark.createDataFrame([(i, t) for i, t in enumerate(rows)], "id long, text string")
    out = df.repartition(3).select("id", udf("text").alias("p")).select("id", "p.*")
    return sorted(out.collect(), key=lambda r: r["id"])


def check(got: list, model, rows: list[str]) -> None:
    want_labels = model.predict(rows).tolist()
    want_decision = np.asarray(model.decision_function(rows), dtype=np.float64).reshape(len(rows), -1)
    want_proba = model.predict_proba(rows) if hasattr(model, "predict_proba") else None
    assert [r["label"] for r in got] == want_labels
    assert [type(r["label"]) for r in got] == [type(v) for v in want_labels]
    assert bits(v for r in got for v in r["decision"]) == bits(want_decision.ravel())
    if want_proba is None:
        assert all(r["proba"] is None for r in got)
    else:
        proba = np.array([r["proba"] for r in got])
        assert proba.shape == want_proba.shape
        assert np.abs(proba - want_proba).max() <= PROBA_TOLERANCE


def test_binary_int_labels_with_proba(spark, tmp_path):
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=4.0))
    model.fit(*binary_corpus(1000))
    pack(model, tmp_path / "lr.skedge")
    rows = texts()
    got = run(spark, predict_udf(tmp_path / "lr.skedge"), rows)
    check(got, model, rows)


def test_multiclass_string_labels_without_proba(spark, tmp_path):
    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)), LinearSVC())
    model.fit(*multiclass_corpus())
    pack(model, tmp_path / "svc.skedge")
    rows = texts()
    got = run(spark, predict_udf((tmp_path / "svc.skedge").read_bytes()), rows)
    check(got, model, rows)


def test_sealed_artifacts_and_null_texts(spark, tmp_path):
    for args in (["signer"], ["other"], ["secret", "--encryption"]):
        proc = subprocess.run([SKEDGE, "keygen", tmp_path / args[0], *args[1:]], capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(*binary_corpus())
    sealed = tmp_path / "sealed.skedge"
    pack(model, sealed, "--sign-key", tmp_path / "signer.key", "--encrypt-key", tmp_path / "secret.key")
    rows = texts()[:200]
    udf = predict_udf(sealed, public_key=tmp_path / "signer.pub", decryption_key=tmp_path / "secret.key")
    got = run(spark, udf, [*rows, None])
    check(got[:-1], model, rows)
    assert got[-1]["label"] is None and got[-1]["decision"] is None and got[-1]["proba"] is None

    # Keys are checked on the driver, before any job: the codes of Model.from_bytes.
    with pytest.raises(skedge.SkedgeError) as err:
        predict_udf(sealed, public_key=tmp_path / "signer.pub")
    assert err.value.code == "DECRYPTION_KEY_MISSING"
    with pytest.raises(skedge.SkedgeError) as err:
        predict_udf(sealed, public_key=(tmp_path / "other.pub").read_text(), decryption_key=tmp_path / "secret.key")
    assert err.value.code == "SIGNATURE_INVALID"


def test_readme_snippet_runs(spark, tmp_path):
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(*binary_corpus())
    pack(model, tmp_path / "model.skedge")
    readme = (ix.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("In Spark, `skedge.spark.predict_udf`", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    rows = texts()[:50]
    scope = {"df": spark.createDataFrame([(t,) for t in rows], "text string")}
    exec(compile(snippet.replace('"model.skedge"', repr(str(tmp_path / "model.skedge"))), "README.md", "exec"), scope)
    got = scope["scored"].collect()
    assert [r["text"] for r in got] == rows
    assert [r["label"] for r in got] == model.predict(rows).tolist()


def test_a_worker_process_loads_a_model_once(tmp_path):
    # What each Python worker runs per batch: the second batch reuses the first one's model.
    from skedge import spark as sk

    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(*binary_corpus())
    pack(model, tmp_path / "m.skedge")
    data = (tmp_path / "m.skedge").read_bytes()
    first = sk._model("sha", data, None, None)
    assert sk._model("sha", data, None, None) is first
    assert sk._model("another sha", data, None, None) is not first


def test_long_labels_beyond_2_53_stay_exact_beside_a_null_text(spark, tmp_path):
    # A null text in the batch once made pandas store the labels as float64: 2**60 + 1 came
    # back as 2**60.
    texts_, y = binary_corpus()
    classes = [2**60 + 1, 2**60 + 3]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts_, [classes[v] for v in y])
    pack(model, tmp_path / "big.skedge")
    rows = texts_[:6]
    udf = predict_udf(tmp_path / "big.skedge")
    df = spark.createDataFrame([(i, t) for i, t in enumerate([*rows, None])], "id long, text string")
    got = sorted(df.coalesce(1).select("id", udf("text").alias("p")).select("id", "p.*").collect(),
                 key=lambda r: r["id"])
    want = model.predict(rows).tolist()
    assert set(want) == set(classes)
    assert [r["label"] for r in got] == [*want, None]
    # The broadcast is exposed, to be released when the UDF is done with.
    assert udf.broadcast is not None
    udf.broadcast.unpersist(blocking=True)


def executor_error(spark, tmp_path) -> str:
    """The error of a batch whose third row is over the text limit: its code and its row kept
    (also run under Spark Connect, test_spark_connect.py)."""
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(*binary_corpus())
    pack(model, tmp_path / "m.skedge")
    udf = predict_udf(tmp_path / "m.skedge")
    rows = [None, "ok", "x" * (skedge.MAX_TEXT_BYTES + 1)]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(rows)], "id long, text string").coalesce(1)
    with pytest.raises(Exception) as err:
        df.select(udf("text").alias("p")).collect()
    text = str(err.value)
    assert type(err.value).__name__ == "PythonException", text[:2000]
    assert "[INPUT_TOO_LARGE] row 2 (from 0, nulls counted) of an Arrow batch of 3 rows" in text, text[-3000:]
    return text


def test_an_executor_error_keeps_its_code_and_names_its_row(spark, tmp_path):
    text = executor_error(spark, tmp_path)
    assert "texts[1]" not in text


def test_the_driver_reads_files_with_codes_and_bounds(tmp_path):
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(*binary_corpus())
    pack(model, tmp_path / "m.skedge")
    data = (tmp_path / "m.skedge").read_bytes()
    (tmp_path / "binary.pub").write_bytes(bytes(range(200, 232)))
    cases = {
        "missing artifact": (lambda: predict_udf(tmp_path / "missing.skedge"), "IO"),
        "endless artifact": (lambda: predict_udf("/dev/zero"), "ARTIFACT_CORRUPT"),
        "key file not UTF-8": (lambda: predict_udf(data, public_key=tmp_path / "binary.pub"), "IO"),
        "endless key file": (lambda: predict_udf(tmp_path / "m.skedge", public_key=pathlib.Path("/dev/zero")), "IO"),
    }
    for what, (call, code) in cases.items():
        with pytest.raises(skedge.SkedgeError) as err:
            call()
        assert err.value.code == code, (what, err.value)
    # The bounded reader itself: an over-long or unreadable file is IO, never MemoryError or OSError.
    from skedge import spark as sk

    for call in (lambda: sk._key_value(pathlib.Path("/dev/zero")), lambda: sk._read(tmp_path, 10, "artifact"),
                 lambda: sk._key_value(tmp_path / "binary.pub")):
        with pytest.raises(skedge.SkedgeError) as err:
            call()
        assert err.value.code == "IO"


def test_a_worker_keeps_the_most_recently_used_models(tmp_path):
    from skedge import spark as sk

    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(*binary_corpus())
    pack(model, tmp_path / "m.skedge")
    data = (tmp_path / "m.skedge").read_bytes()
    sk._MODELS.clear()
    first = sk._model("sha 0", data, None, None)
    for i in range(1, sk.CACHE_SIZE):
        sk._model(f"sha {i}", data, None, None)
    assert sk._model("sha 0", data, None, None) is first  # used again: now the most recent
    sk._model("sha new", data, None, None)  # evicts "sha 1", the least recently used
    assert len(sk._MODELS) == sk.CACHE_SIZE
    assert ("sha 1", "None", "None") not in sk._MODELS
    assert sk._model("sha 0", data, None, None) is first
    sk._MODELS.clear()
