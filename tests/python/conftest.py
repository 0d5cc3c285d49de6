"""Shared helpers for the exporter tests: small real corpora, fitting, the skedge CLI."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import joblib
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import interchange as ix  # noqa: E402

DATA = REPO / "tests" / "data"
SKEDGE = ix.DEFAULT_SKEDGE

requires_skedge = pytest.mark.skipif(
    not SKEDGE.exists(), reason=f"{SKEDGE} is not built (cargo build --release)"
)


def read_tsv(name: str) -> tuple[list, list]:
    with open(DATA / name, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [r[0] for r in rows], [r[1] for r in rows]


def binary_corpus(n: int = 400) -> tuple[list, list]:
    """UCI yelp sentences, int labels 0/1."""
    texts, labels = read_tsv("uci_yelp.tsv")
    return texts[:n], [int(y) for y in labels[:n]]


def multiclass_corpus(n: int = 450) -> tuple[list, list]:
    """French book reviews, ratings bucketed into "neg" / "mid" / "pos"."""
    texts, ratings = read_tsv("fr_book_reviews_500_per_bucket.tsv")
    buckets = ["neg" if float(r) <= 2.0 else "mid" if float(r) <= 3.5 else "pos" for r in ratings]
    # the file holds 500 rows per bucket in file order; take some of each
    picked = [i for i in range(len(texts)) if i % (len(texts) // n or 1) == 0][:n]
    return [texts[i] for i in picked], [buckets[i] for i in picked]


def fit(pipe, corpus=binary_corpus):
    texts, labels = corpus()
    return pipe.fit(texts, labels)


def dump(model, tmp_path: Path, name: str = "model.joblib") -> Path:
    path = tmp_path / name
    joblib.dump(model, path)
    return path


def no_leftovers(directory: Path, keep: set) -> list:
    """Files in `directory` other than `keep` (names): what an export must not leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 (free port, sqlite, temporary artifact root), shared
    by the MLflow tests of the session."""
    base = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = open(base / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    # No background job runner (a dozen huey consumers on a 2-core machine); telemetry off.
    env = dict(
        os.environ,
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}",
            "--default-artifact-root", str(base / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                log.flush()
                raise RuntimeError(
                    f"mlflow server exited {proc.returncode}:\n"
                    + (base / "server.log").read_text(errors="replace")[-3000:]
                )
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer /health within 120 s")
            time.sleep(0.5)
        yield {"uri": uri, "base": base, "artifacts": base / "artifacts"}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group only
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()
