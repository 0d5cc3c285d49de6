"""Shared helpers for the exporter tests: small real corpora, fitting, the skedge CLI."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import joblib
import pytest

from ports import free_port

from skedge import interchange as ix

REPO = Path(__file__).resolve().parents[2]

DATA = REPO / "tests" / "data"
SKEDGE = ix.DEFAULT_SKEDGE

requires_skedge = pytest.mark.skipif(
    not SKEDGE.exists(), reason=f"{SKEDGE} is not built (cargo build --release)"
)


def dev_script(name: str):
    """A development tool of scripts/ (train_demo, make_fixtures: not part of the package),
    imported from its file once, as `python scripts/NAME.py` would run it."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


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


_free_port = free_port


# Which MLflow the round-trip tests talk to: "sqlite" (default: sqlite store, local artifact root) or
# "team" (PostgreSQL backend store + S3 artifact store served through the tracking server, as README
# "Running it for a team" describes; scripts/test_team.sh).
BACKEND = os.environ.get("SKEDGE_MLFLOW_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "team"):
    raise RuntimeError(f"SKEDGE_MLFLOW_BACKEND={BACKEND!r}: expected 'sqlite' or 'team'")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "team: also run against the team back-end (scripts/test_team.sh): one test of each "
        "kind of MLflow call the tools make")
    config.addinivalue_line(
        "markers", "analyzer: a wide parity case of each analyzer kind, lowercase and strip_accents (the "
        "later Pythons of scripts/test_pythons.sh run these alone)")


def pytest_collection_modifyitems(config, items):
    """On the team backend run only the tests that reach MLflow: the rest ran on the default pass
    (scripts/test_team.sh narrows them further to those marked `team`)."""
    if BACKEND != "team":
        return
    keep = [i for i in items if "server" in getattr(i, "fixturenames", ())]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that talked to the session's `mlflow server` also shows the server's log
    (its tracebacks, warnings and refused requests), so a failure on a CI machine can be read
    without the machine."""
    report = yield
    server = getattr(item, "funcargs", {}).get("server")
    if report.failed and isinstance(server, dict):
        log = Path(server["base"]) / "server.log"
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        # Requests answered below 400 are the bulk of the log and say nothing about a failure.
        shown = [line for line in lines if not re.search(r'" [123]\d\d [A-Z]', line)][-60:]
        report.sections.append((f"{log} ({len(lines)} lines; the last of those not a 1xx-3xx request)",
                                "\n".join(shown)))  # fmt: skip
    return report


def _wait_until(check, proc, what: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n" + log.read_text(errors="replace")[-3000:])
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


def _stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the process's own group only
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (scripts/setup.sh --team installs Debian's)")
    return found[-1].parent


@contextlib.contextmanager
def _postgres():
    """A throwaway PostgreSQL cluster under .work/ on 127.0.0.1 (trust auth, loopback only); yields
    the SQLAlchemy URI of its `mlflow` database. PostgreSQL refuses to run as root: as root the
    cluster belongs to the `postgres` user of Debian's package."""
    bindir, port = _pg_bin(), _free_port()
    data = REPO / ".work" / f"pg-{os.getpid()}-{port}"
    data.mkdir(parents=True)
    as_pg = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    run = lambda *a: subprocess.run(as_pg + [str(bindir / a[0]), *a[1:]], check=True, capture_output=True)  # noqa: E731
    try:
        run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        run("pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "60",
            "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start")  # fmt: skip
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def _moto(base: Path):
    """moto's S3 server on 127.0.0.1 with a bucket `mlflow`; yields the endpoint URL."""
    port = _free_port()
    log_path = base / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until(lambda: _http_ok(url + "/moto-api/"), proc, "moto server", 60, log_path)
            import boto3

            boto3.client("s3", endpoint_url=url, region_name="us-east-1", **MOTO_CREDENTIALS).create_bucket(
                Bucket="mlflow"
            )
            yield url
        finally:
            _stop_group(proc)


# moto accepts any credentials; never the machine's real ones.
MOTO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@contextlib.contextmanager
def moto_bucket(base: Path, bucket: str):
    """moto's S3 server (`_moto`) with `bucket` created too: {"url", "client"}."""
    import boto3

    with _moto(base) as url:
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **MOTO_CREDENTIALS)
        client.create_bucket(Bucket=bucket)
        yield {"url": url, "client": client}


def moto_env(url: str) -> dict:
    """The environment of a subprocess talking to moto at `url` (boto3 reads it)."""
    return dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=url)  # fmt: skip


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 (free port), shared by the MLflow tests of the session.
    sqlite backend: sqlite store and a temporary local artifact root (`artifacts` is that path).
    team backend: PostgreSQL store and artifacts on S3 (moto) served through the tracking server
    (`artifacts` is None, `s3` the endpoint; the bucket is `mlflow`)."""
    base = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    # No background job runner (a dozen huey consumers on a 2-core machine); telemetry off.
    env = dict(
        os.environ,
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    with contextlib.ExitStack() as stack:
        info = {"base": base, "artifacts": None, "s3": None, "backend": BACKEND}
        if BACKEND == "team":
            store = stack.enter_context(_postgres())
            info["s3"] = stack.enter_context(_moto(base))
            env.update(MLFLOW_S3_ENDPOINT_URL=info["s3"], AWS_ACCESS_KEY_ID="testing",
                       AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
            where = ["--artifacts-destination", "s3://mlflow/artifacts", "--serve-artifacts"]
        else:
            store = f"sqlite:///{base / 'mlflow.db'}"
            info["artifacts"] = base / "artifacts"
            where = ["--default-artifact-root", str(info["artifacts"])]
        log = stack.enter_context(open(base / "server.log", "wb"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store, *where,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base, start_new_session=True,
        )  # fmt: skip
        stack.callback(_stop_group, proc)
        info["uri"] = f"http://127.0.0.1:{port}"
        _wait_until(lambda: _http_ok(info["uri"] + "/health"), proc, "mlflow server", 120, base / "server.log")
        yield info
