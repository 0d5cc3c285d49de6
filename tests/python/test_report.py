"""Monitoring (issue #6): baseline parity, the snapshot collector and the push to MLflow.

Snapshots are made by the Rust monitor itself (`target/release/skedge-monitor simulate`, built
here when missing), so the Python side is tested against what the edge really sends:

- `skedge.baseline` computes, from scikit-learn's outputs, exactly the statistics the Rust
  monitor counts (three pipelines: word vocabulary, hashing, char_wb multiclass string labels);
- the collector's validator and the Rust `Snapshot::parse` agree on valid and broken snapshots;
- `report.py serve` answers 201/400/401/409/413/415/422 as documented, and loses nothing when it
  is killed (SIGKILL) and restarted in the middle of a stream;
- `report.py push` into a real `mlflow server` (conftest.py `server`: sqlite, or PostgreSQL + S3): metrics, tags
  both ways, the drift figure; French text into an English model raises `skedge.drift_alert`, an
  in-distribution stream does not; pushing twice logs nothing twice (also after a lost ledger
  line); MLflow down loses nothing and the next push catches up; a late snapshot is a revision.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"

from skedge import baseline as bl  # noqa: E402
from skedge import report  # noqa: E402
from conftest import dev_script, multiclass_corpus, read_tsv  # noqa: E402
from ports import free_port  # noqa: E402
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression, SGDClassifier  # noqa: E402
from sklearn.naive_bayes import ComplementNB  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

SKEDGE = ROOT / "target" / "release" / "skedge"
MONITOR = ROOT / "target" / "release" / "skedge-monitor"
TOKEN = "test-token-4f1c"
HOUR = 3_600_000

pytestmark = pytest.mark.skipif(
    not SKEDGE.exists(), reason="target/release/skedge is not built (scripts/setup.sh)"
)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def monitor_bin() -> Path:
    """The release skedge-monitor (cargo build: a no-op when it is fresh)."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "skedge-monitor"], cwd=ROOT, check=True)
    return MONITOR


_free_port = free_port


def _wait_http(url: str, proc: subprocess.Popen, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within {seconds} s")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    """Stop a process this test started (its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class Collector:
    """`report.py serve` in a subprocess on a free loopback port."""

    def __init__(self, spool: Path, port: int | None = None, max_bytes: int | None = None, extra=()):
        self.spool, self.port = spool, port or _free_port()
        self.max_bytes = max_bytes
        self.extra = list(extra)
        self.proc = None

    def start(self) -> "Collector":
        cmd = [sys.executable, str(SCRIPTS / "report.py"), "serve", "--spool", str(self.spool),
               "--token", TOKEN, "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        if self.max_bytes:
            cmd += ["--max-bytes", str(self.max_bytes)]
        cmd += self.extra
        self.log_path = self.spool.parent / f"collector-{self.port}.log"
        self.log = open(self.spool.parent / f"collector-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc, "the collector", 60)
        return self

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)
        self.log.close()

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()

    def post(self, body: bytes, *, token: str | None = TOKEN, ctype="application/json",
             headers: dict | None = None, chunked=False, path="/v1/snapshots") -> tuple[int, dict]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Content-Type": ctype} if ctype else {}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        try:
            if chunked:
                def gen():
                    for i in range(0, len(body), 65536):
                        yield body[i : i + 65536]

                conn.request("POST", path, body=gen(), headers=h, encode_chunked=True)
            else:
                conn.request("POST", path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            try:
                doc = json.loads(data) if data else {}
            except ValueError:
                doc = {"raw": data.decode("utf-8", "replace")}
            return r.status, doc
        finally:
            conn.close()


def simulate(monitor_bin: Path, artifact: Path, texts: list, *, seed: int, start_ms: int,
             rate: float = 1.0, per_snapshot: int = 0, step_ms: float = 10.0) -> list:  # fmt: skip
    """Snapshots of the Rust monitor over `texts` (JSON documents)."""
    proc = subprocess.run(
        [str(monitor_bin), "simulate", str(artifact), "--format", "jsonl", "--sample-rate", str(rate),
         "--seed", str(seed), "--per-snapshot", str(per_snapshot), "--start-ms", str(start_ms),
         "--step-ms", str(step_ms), "--time"],  # fmt: skip
        input="".join(json.dumps({"text": t}) + "\n" for t in texts).encode(),
        capture_output=True,
        check=True,
    )
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def _dump(doc: dict) -> bytes:
    return json.dumps(doc).encode()


def _export_joblib(pipeline, texts: list, tmp: Path, name: str, version: str = "1") -> Path:
    """Export with the drift baseline of `texts` through export.py's interchange hook."""
    from skedge import export  # noqa: PLC0415
    import joblib  # noqa: PLC0415

    src = tmp / f"{name}.joblib"
    joblib.dump(pipeline, src)
    val = tmp / f"{name}.val.tsv"
    val.write_text("text\tlabel\n" + "".join(f"{t}\t0\n" for t in texts), encoding="utf-8")
    out = tmp / f"{name}.skedge"

    def hook(inter):
        inter["metadata"]["baseline"] = bl.compute_baseline(pipeline, texts, inter)

    rc = export.export(src, out, validation=val, name=name, version=version, interchange_hook=hook,
                       log=lambda s: None)  # fmt: skip
    assert rc == 0, f"export of {name} failed ({rc})"
    return out


# ---------------------------------------------------------------------------------------------
# data and models
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def streams():
    train, ytrain = read_tsv("sst2_train_first2000.tsv")
    dev, _ = read_tsv("sst2_dev.tsv")
    french, _ = read_tsv("fr_allocine_tv_test_first300.tsv")
    return {
        "train": (train, [int(y) for y in ytrain]),
        "validation": dev[:400],
        "english": dev[400:],
        "french": french,
    }


@pytest.fixture(scope="session")
def english_pipeline(streams):
    texts, labels = streams["train"]
    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(texts, labels)


@pytest.fixture(scope="session")
def english_artifact(english_pipeline, streams, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("en")
    return _export_joblib(english_pipeline, streams["validation"], tmp, "monitor_en")


# ---------------------------------------------------------------------------------------------
# 1. baseline parity: skedge.baseline == the Rust monitor
# ---------------------------------------------------------------------------------------------


def _pipelines(streams):
    texts, labels = streams["train"]
    fr_texts, fr_labels = multiclass_corpus(450)
    return {
        "word_tfidf_lr": (make_pipeline(TfidfVectorizer(ngram_range=(1, 2), stop_words="english"),
                                        LogisticRegression(max_iter=1000)).fit(texts, labels),
                          streams["validation"]),  # fmt: skip
        "hashing_sgd_no_proba": (make_pipeline(HashingVectorizer(n_features=2**12), SGDClassifier(random_state=0))
                                 .fit(texts, labels), streams["validation"]),  # fmt: skip
        "charwb_cnb_3class_fr": (make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2),
                                               ComplementNB()).fit(fr_texts, fr_labels),
                                 fr_texts[:150] + ["", "!!!", "é" * 40000]),  # fmt: skip
    }


def test_baseline_matches_the_rust_monitor(streams, monitor_bin, tmp_path):
    for name, (pipe, texts) in _pipelines(streams).items():
        artifact = _export_joblib(pipe, texts, tmp_path, name)
        info = json.loads(subprocess.run([str(monitor_bin), "baseline", str(artifact)],
                                         capture_output=True, check=True).stdout)  # fmt: skip
        stored = info["baseline"]
        [snap] = simulate(monitor_bin, artifact, texts, seed=1, start_ms=1_767_225_600_000)
        edge = dict(snap["stats"], latency=None)
        assert edge == dict(stored, latency=None), name
        assert stored["count"] == len(texts)
        if name == "hashing_sgd_no_proba":
            assert stored["oov"] is None and stored["confidence"] is None
        else:
            assert stored["oov"]["total_features"] > 0 and stored["confidence"] is not None
        if name == "charwb_cnb_3class_fr":
            assert len(stored["label_counts"]) == 3 and stored["length"][15] == 1
            assert stored["oov"]["no_features"] >= 1  # the empty text


def test_sampling_rate_and_determinism(english_artifact, streams, monitor_bin):
    texts = streams["english"]
    a = simulate(monitor_bin, english_artifact, texts, seed=5, rate=0.3, start_ms=1_767_225_600_000)
    b = simulate(monitor_bin, english_artifact, texts, seed=5, rate=0.3, start_ms=1_767_225_600_000)
    assert [s["stats"]["label_counts"] for s in a] == [s["stats"]["label_counts"] for s in b]
    # A seed reproduces the sample, never the ids: two monitors given one seed and started in the
    # same millisecond (isolates of a fleet) keep their snapshots apart in the collector.
    assert a[0]["id"] != b[0]["id"]
    (s,) = a
    assert s["seen"] == len(texts) and 0.2 * len(texts) < s["stats"]["count"] < 0.4 * len(texts)
    assert s["texts"] == []


# ---------------------------------------------------------------------------------------------
# 2. the validator: Python == Rust
# ---------------------------------------------------------------------------------------------


def _mutations(good: dict) -> list:
    import copy  # noqa: PLC0415

    def w(path, value):
        doc = copy.deepcopy(good)
        at = doc
        for p in path[:-1]:
            at = at[p]
        if value is KeyError:
            del at[path[-1]]
        else:
            at[path[-1]] = value
        return doc

    n = len(good["classes"])
    return [
        ("ok", good),
        ("format", w(["format"], "x")),
        ("version", w(["version"], 2)),
        ("version as string", w(["version"], "1")),
        ("id short", w(["id"], "abc")),
        ("id upper", w(["id"], good["id"].upper())),
        ("sha", w(["model", "sha256"], "0" * 63)),
        ("missing seen", w(["seen"], KeyError)),
        ("negative", w(["seen"], -1)),
        ("float count", w(["seen"], 1.5)),
        ("bool count", w(["dropped"], True)),
        ("too big", w(["seen"], 2**64)),
        ("seen < count", w(["seen"], 0)),
        ("rate", w(["sample_rate"], 1.01)),
        ("rate int ok", w(["sample_rate"], 1)),
        ("window order", w(["window", "end_ms"], 0)),
        ("extra field", w(["extra"], 1)),
        ("extra stats field", w(["stats", "extra"], 1)),
        ("labels sum", w(["stats", "label_counts"], [0] * n)),
        ("labels length", w(["stats", "label_counts"], [good["stats"]["count"]] + [0] * n)),
        ("confidence bins", w(["stats", "confidence"], [0] * 9)),
        ("confidence null ok", w(["stats", "confidence"], None)),
        ("oov sum", w(["stats", "oov", "no_features"], 10**6)),
        ("oov features", w(["stats", "oov", "oov_features"], 10**9)),
        ("length bins", w(["stats", "length"], [0] * 17)),
        ("latency missing ok", w(["stats", "latency"], KeyError)),
        ("latency negative", w(["stats", "latency"], {"counts": [0] * 16, "sum_ms": -1, "max_ms": 0})),
        ("texts without opt-in ok", w(["texts"], ["a"])),
        ("text too long", w(["texts"], ["a" * 1025])),
        ("classes empty", w(["classes"], [])),
        ("name too long", w(["model", "name"], "n" * 257)),
        ("not an object", [good]),
    ]


def test_python_validator_agrees_with_rust(english_artifact, streams, monitor_bin):
    [good] = simulate(monitor_bin, english_artifact, streams["english"][:80], seed=2, start_ms=1_767_225_600_000)
    cases = _mutations(good) + [("not json", b"{"), ("nan", b'{"seen": NaN}'),
                                ("duplicate key", _dump(good)[:-1] + b', "seen": 1}')]  # fmt: skip
    # JSON's `-0`: serde_json reads the float -0.0, which a count refuses and a time in ms takes
    latency = {"counts": [0] * 16, "sum_ms": 7777777, "max_ms": 0}
    cases += [("-0 count", _dump(dict(good, dropped=7777777)).replace(b"7777777", b"-0")),
              ("-0 latency ok", _dump({**good, "stats": {**good["stats"], "latency": latency}}).replace(b"7777777", b"-0"))]  # fmt: skip
    for name, case in cases:
        body = case if isinstance(case, bytes) else _dump(case)
        rust = subprocess.run([str(monitor_bin), "check"], input=body, capture_output=True)
        try:
            report.parse_snapshot(body)
            py_ok = True
        except report.SnapshotError:
            py_ok = False
        assert rust.returncode in (0, 1), rust.stderr
        assert py_ok == (rust.returncode == 0), f"{name}: python {py_ok}, rust {rust.stdout!r}"
        if name.endswith("ok"):
            assert py_ok, name


# ---------------------------------------------------------------------------------------------
# 3. the collector
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def snapshots(english_artifact, streams, monitor_bin):
    return simulate(monitor_bin, english_artifact, streams["english"], seed=11, per_snapshot=4,
                    start_ms=1_767_225_600_000)  # fmt: skip


def test_collector_statuses(snapshots, tmp_path):
    c = Collector(tmp_path / "spool", max_bytes=32 << 10).start()
    try:
        s0 = snapshots[0]
        assert c.post(_dump(s0), token=None)[0] == 401
        assert c.post(_dump(s0), token="wrong")[0] == 401
        assert c.post(_dump(s0), token=None, headers={"X-Skedge-Token": "wrong"})[0] == 401
        assert c.post(b"{not json")[0] == 400
        assert c.post(b"\xff\xfe")[0] == 400
        assert c.post(b'{"seen": NaN}')[0] == 400
        assert c.post(b"[1, 2]")[0] == 422
        bad = dict(s0, seen=-1)
        status, doc = c.post(_dump(bad))
        assert status == 422 and "seen" in doc["error"]
        assert c.post(_dump(s0), ctype="application/x-www-form-urlencoded")[0] == 415
        huge = _dump(dict(s0, texts=["x" * 1000] * 64))  # > 32 KiB
        assert c.post(huge)[0] == 413
        assert c.post(huge, chunked=True)[0] == 413  # no Content-Length: counted while reading
        assert c.post(_dump(s0))[0] == 201
        status, doc = c.post(_dump(s0))
        assert status == 409 and doc["id"] == s0["id"]
        # sendBeacon's form: text/plain and the token in the query
        assert c.post(_dump(snapshots[1]), token=None, ctype="text/plain",
                      path=f"/v1/snapshots?token={TOKEN}")[0] == 201  # fmt: skip
        assert c.post(_dump(snapshots[2]), token=None, headers={"X-Skedge-Token": TOKEN})[0] == 201
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{c.port}/v1/snapshots", timeout=5)
        assert err.value.code == 405
        assert c.post(_dump(s0), path="/elsewhere")[0] == 404
        pre = urllib.request.Request(f"http://127.0.0.1:{c.port}/v1/snapshots", method="OPTIONS",
                                     headers={"Origin": "http://127.0.0.1:9", "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "authorization,content-type"})  # fmt: skip
        with urllib.request.urlopen(pre, timeout=5) as r:
            assert r.status == 200 and r.headers["access-control-allow-origin"] == "*"
    finally:
        c.stop()
    stored = report.read_spool(tmp_path / "spool")
    assert [s["id"] for s in stored] == [snapshots[i]["id"] for i in (0, 1, 2)]


def test_refusals_are_coded_and_logged_rate_limited(snapshots, tmp_path):
    """Every refusal names its reason (`code`, what `monitor.flush()` reports as `lastError`),
    and the collector logs it: once per kind within --refusal-log-interval, then the count of the
    ones not shown (at the next line of that kind, or at shutdown)."""
    c = Collector(tmp_path / "spool", extra=["--refusal-log-interval", "3600"]).start()
    s0 = _dump(snapshots[0])
    try:
        assert c.post(s0, token=None) == (401, {"code": "TOKEN_MISSING", "error": "missing token"})
        for _ in range(5):
            assert c.post(s0, token="wrong") == (401, {"code": "TOKEN_INVALID", "error": "wrong token"})
        assert c.post(b"{x")[1]["code"] == "NOT_JSON"
        assert c.post(b"[1]")[1]["code"] == "SNAPSHOT_INVALID"
        assert c.post(s0, ctype="text/html")[1]["code"] == "UNSUPPORTED_MEDIA_TYPE"
        assert c.post(s0, path="/v2/elsewhere") == (404, {"code": "NOT_FOUND",
                                                          "error": "no such path: POST /v1/snapshots, GET /healthz"})  # fmt: skip
        assert c.post(s0)[0] == 201
        assert c.post(s0)[1]["code"] == "DUPLICATE"
        for path in ("/healthz", "/health"):
            with urllib.request.urlopen(f"http://127.0.0.1:{c.port}{path}", timeout=5) as r:
                assert json.loads(r.read()) == {"ok": True, "snapshots": 1}, path
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{c.port}/v1/snapshots", timeout=5)
        assert err.value.code == 405 and json.loads(err.value.read())["code"] == "METHOD_NOT_ALLOWED"
        while b"METHOD_NOT_ALLOWED" not in c.log_path.read_bytes():  # written before the answer
            time.sleep(0.05)
        running = c.log_path.read_text()
    finally:
        c.stop()
    refused = [line for line in running.splitlines() if line.startswith("report.py serve: refused")]
    assert [line.split()[3:5] for line in refused] == [
        ["401", "TOKEN_MISSING"], ["401", "TOKEN_INVALID"], ["400", "NOT_JSON"], ["422", "SNAPSHOT_INVALID"],
        ["415", "UNSUPPORTED_MEDIA_TYPE"], ["404", "NOT_FOUND"], ["405", "METHOD_NOT_ALLOWED"],
    ]  # fmt: skip
    assert "from 127.0.0.1: wrong token" in refused[1]
    assert TOKEN not in running and "DUPLICATE" not in running
    after = c.log_path.read_text()[len(running):]
    assert "refused 401 TOKEN_INVALID: 4 more not shown" in after


def test_refusal_log_counts_what_it_did_not_show():
    lines = []
    log = report.RefusalLog(interval=0, log=lines.append)
    log.note(401, "TOKEN_INVALID", "10.0.0.1", "wrong token")
    log.interval = 3600
    log.note(401, "TOKEN_INVALID", "10.0.0.1", "wrong token")
    log.note(401, "TOKEN_INVALID", "10.0.0.2", "wrong token")
    log.note(401, "TOKEN_MISSING", "10.0.0.2", "missing token")
    log.interval = 0
    log.note(401, "TOKEN_INVALID", "10.0.0.3", "wrong token")
    log.close()
    assert lines == [
        "report.py serve: refused 401 TOKEN_INVALID from 10.0.0.1: wrong token",
        "report.py serve: refused 401 TOKEN_MISSING from 10.0.0.2: missing token",
        "report.py serve: refused 401 TOKEN_INVALID from 10.0.0.3: wrong token (and 2 more like it since the "
        "last such line)",
    ]


def test_second_collector_on_a_spool_is_refused(tmp_path):
    c = Collector(tmp_path / "spool").start()
    try:
        proc = subprocess.run(
            [sys.executable, str(SCRIPTS / "report.py"), "serve", "--spool", str(tmp_path / "spool"),
             "--token", TOKEN, "--port", str(_free_port())],  # fmt: skip
            capture_output=True, timeout=60, start_new_session=True,
        )
        assert proc.returncode != 0 and b"used by another collector" in proc.stderr
    finally:
        c.stop()


def test_collector_killed_and_restarted_mid_stream_loses_nothing(snapshots, tmp_path):
    spool = tmp_path / "spool"
    c = Collector(spool).start()
    port = c.port
    delivered, errors, killed_at = {}, [], []
    done = threading.Event()
    # The client stops at a quarter and at half of the stream until the collector is killed, so
    # the kills land mid-stream however fast the machine is; it then posts into the dead port.
    pause_at = {len(snapshots) // 4, len(snapshots) // 2}
    reached, resume = threading.Event(), threading.Event()

    def client():
        # what monitor.flush does: retry until the collector answers 201 (stored) or 409 (had it)
        for i, s in enumerate(snapshots):
            if i in pause_at:
                reached.set()
                resume.wait(120)
                resume.clear()
            for _ in range(600):
                try:
                    status, _ = c.post(_dump(s))
                except OSError:
                    time.sleep(0.05)
                    continue
                if status in (201, 409):
                    delivered[s["id"]] = status
                    break
                errors.append(status)
                break
        done.set()

    t = threading.Thread(target=client, daemon=True)
    t.start()
    # kill -9 twice in the middle of the stream, restart on the same port and spool
    for _ in range(2):
        assert reached.wait(120)
        reached.clear()
        killed_at.append(len(delivered))
        c.kill()
        resume.set()
        time.sleep(0.3)
        c = Collector(spool, port=port).start()
    t.join(timeout=300)
    c.stop()
    assert done.is_set() and not errors
    assert all(0 < k < len(snapshots) for k in killed_at), killed_at  # really mid-stream
    assert set(delivered) == {s["id"] for s in snapshots}
    stored = report.read_spool(spool)
    assert sorted(s["id"] for s in stored) == sorted(delivered)
    # no record twice in the files either
    lines = [json.loads(x)["snapshot"]["id"] for seg in sorted(spool.glob("snapshots-*.jsonl"))
             for x in seg.read_bytes().splitlines() if x.strip()]  # fmt: skip
    assert len(lines) == len(set(lines)) == len(snapshots)


def test_torn_last_line_is_cut_on_restart(snapshots, tmp_path):
    spool = tmp_path / "spool"
    c = Collector(spool).start()
    assert c.post(_dump(snapshots[0]))[0] == 201
    c.stop()
    [seg] = spool.glob("snapshots-*.jsonl")
    with open(seg, "ab") as f:
        f.write(b'{"received_ms": 1, "snapshot": {"id": "torn')  # a write cut by a crash
    c = Collector(spool).start()
    try:
        assert c.post(_dump(snapshots[0]))[0] == 409
        assert c.post(_dump(snapshots[1]))[0] == 201
    finally:
        c.stop()
    assert [s["id"] for s in report.read_spool(spool)] == [snapshots[0]["id"], snapshots[1]["id"]]
    assert seg.read_bytes().endswith(b"\n") and b"torn" not in seg.read_bytes()


# ---------------------------------------------------------------------------------------------
# 4. push into a real MLflow server
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlflow_server(server):
    """The session's real `mlflow server` (conftest.py: sqlite, or PostgreSQL + S3 on the team run)."""
    return server["uri"]


@pytest.fixture(scope="session")
def registered(mlflow_server, english_pipeline, streams, tmp_path_factory):
    """monitor_en versions 1 and 2 (the same pipeline), each exported through the registry with
    its drift baseline and published (artifact + skedge.* tags)."""
    from skedge import export  # noqa: PLC0415
    train_demo = dev_script("train_demo")

    tmp = tmp_path_factory.mktemp("registered")
    val = tmp / "val.tsv"
    val.write_text("text\tlabel\n" + "".join(f"{t}\t0\n" for t in streams["validation"]), encoding="utf-8")
    out = {}
    for v in ("1", "2"):
        ids = train_demo.log_and_register(
            english_pipeline, "monitor_en", tracking_uri=mlflow_server,
            example_texts=streams["validation"][:6], experiment="skedge-monitor-tests", alias=None, stage=None,
        )  # fmt: skip
        assert ids["version"] == v

        def hook(inter):
            inter["metadata"]["baseline"] = bl.compute_baseline(english_pipeline, streams["validation"], inter)

        path = tmp / f"monitor_en_v{v}.skedge"
        rc = export.main(["--model-uri", f"models:/monitor_en/{v}", "--out", str(path), "--validation", str(val),
                          "--tracking-uri", mlflow_server], interchange_hook=hook)  # fmt: skip
        assert rc == 0
        out[v] = path
    return out


def _push(spool: Path, uri: str, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "report.py"), "push", "--spool", str(spool), "--tracking-uri", uri,
         "--window-seconds", "3600", "--grace-seconds", "0", *extra],  # fmt: skip
        capture_output=True, text=True, timeout=600,
    )


def _client(uri):
    import mlflow  # noqa: PLC0415

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.mark.team
def test_push_to_mlflow_drift_idempotency_outage_and_revisions(registered, mlflow_server, streams, monitor_bin,
                                                                tmp_path):  # fmt: skip
    uri = mlflow_server
    spool = tmp_path / "spool"
    now_hour = int(time.time() * 1000) // HOUR
    t_window = (now_hour - 5) * HOUR  # a closed window, five hours ago
    english = simulate(monitor_bin, registered["1"], streams["english"], seed=21, rate=0.5, per_snapshot=60,
                       start_ms=t_window + 60_000)  # fmt: skip
    french = simulate(monitor_bin, registered["2"], streams["french"], seed=22, rate=0.5, per_snapshot=60,
                      start_ms=t_window + 60_000)  # fmt: skip
    c = Collector(spool).start()
    try:
        for s in english + french:
            assert c.post(_dump(s))[0] == 201
    finally:
        c.stop()

    # --- MLflow down: nothing lost, nothing recorded
    dead = f"http://127.0.0.1:{_free_port()}"
    segments = {p.name: p.read_bytes() for p in spool.glob("snapshots-*.jsonl")}
    down = _push(spool, dead)
    assert down.returncode == 2, down.stderr
    assert "unreachable" in down.stderr and "nothing was removed" in down.stderr
    assert {p.name: p.read_bytes() for p in spool.glob("snapshots-*.jsonl")} == segments
    assert not (spool / "pushed.jsonl").exists()
    assert len(report.read_spool(spool)) == len(english) + len(french)

    # --- the real push: French into the English model alerts, English does not
    first = _push(spool, uri, "--save-plots", str(tmp_path / "plots"))
    assert first.returncode == 1, first.stdout + first.stderr
    assert "DRIFT ALERT" in first.stderr and "monitor_en v2" in first.stderr
    assert "monitor_en v1" not in first.stderr.split("DRIFT ALERT", 1)[1]
    client = _client(uri)
    v1 = client.get_model_version("monitor_en", "1")
    v2 = client.get_model_version("monitor_en", "2")
    assert "skedge.drift_alert" not in v1.tags
    assert "oov_shift" in v2.tags["skedge.drift_alert"]
    runs = {}
    for v, mv in (("1", v1), ("2", v2)):
        run = client.get_run(mv.tags["skedge.monitoring_run_id"])
        assert run.data.tags["skedge.model_name"] == "monitor_en"
        assert run.data.tags["skedge.model_version"] == v
        assert run.data.tags["skedge.sha256"] == english[0]["model"]["sha256"] if v == "1" else True
        runs[v] = run
    m1, m2 = runs["1"].data.metrics, runs["2"].data.metrics
    assert m1["seen"] == len(streams["english"]) and m2["seen"] == len(streams["french"])
    assert m1["drift_alert"] == 0 and m2["drift_alert"] == 1
    assert m1["drift.oov_shift"] < 0.05 < 0.5 < m2["drift.oov_shift"]
    assert m1["drift.label_psi"] < 0.1 and m1["drift.confidence_psi"] < 0.1
    assert m2["drift.confidence_psi"] > 0.25 and m2["drift.oov_psi"] > 1
    hist = client.get_metric_history(runs["2"].info.run_id, "drift.oov_shift")
    assert [(h.step, h.timestamp) for h in hist] == [(0, t_window + HOUR)], "step 0: the run's first window"
    assert runs["2"].data.tags["skedge.step_origin_ms"] == str(t_window)
    files = {a.path for a in client.list_artifacts(runs["2"].info.run_id, "drift")}
    assert {"drift/latest.png", f"drift/window-{t_window // HOUR}.png"} <= files
    assert list((tmp_path / "plots").glob("*.png"))
    print("\nDRIFT FIGURES", json.dumps({v: {k: r.data.metrics[k] for k in sorted(r.data.metrics)
                                              if k.startswith("drift.") or k in ("oov_rate", "sampled", "seen")}
                                          for v, r in runs.items()}, indent=1))  # fmt: skip

    def points():
        return {v: len(client.get_metric_history(r.info.run_id, "seen")) for v, r in runs.items()}

    # --- idempotent: the same spool again logs nothing
    assert points() == {"1": 1, "2": 1}
    again = _push(spool, uri)
    assert again.returncode == 0 and "nothing to push" in again.stderr, again.stderr
    assert points() == {"1": 1, "2": 1}

    # --- a lost ledger line (crash between MLflow and the ledger): still nothing logged twice
    ledger = spool / "pushed.jsonl"
    lines = ledger.read_bytes().splitlines(keepends=True)
    ledger.write_bytes(b"".join(lines[:-1]))
    recovered = _push(spool, uri)
    assert recovered.returncode in (0, 1), recovered.stderr
    assert points() == {"1": 1, "2": 1}
    assert len(ledger.read_bytes().splitlines()) == len(lines)

    # --- new snapshots while MLflow is down, then the next push catches up
    later = simulate(monitor_bin, registered["1"], streams["english"][:200], seed=23, rate=0.5,
                     start_ms=t_window + 2 * HOUR + 1000)  # fmt: skip
    c = Collector(spool).start()
    try:
        assert c.post(_dump(later[0]))[0] == 201
        assert c.post(_dump(english[0]))[0] == 409  # already pushed: still a duplicate
    finally:
        c.stop()
    assert _push(spool, dead).returncode == 2
    assert points() == {"1": 1, "2": 1}
    caught_up = _push(spool, uri)
    assert caught_up.returncode == 0, caught_up.stderr
    assert points() == {"1": 2, "2": 1}

    # --- a late snapshot for an already pushed window: logged once more as a revision
    late = simulate(monitor_bin, registered["1"], streams["english"][:50], seed=24, rate=1.0,
                    start_ms=t_window + 30 * 60_000)  # fmt: skip
    c = Collector(spool).start()
    try:
        assert c.post(_dump(late[0]))[0] == 201
    finally:
        c.stop()
    rev = _push(spool, uri)
    assert rev.returncode == 0 and "revision 1" in rev.stderr, rev.stderr
    seen = client.get_metric_history(runs["1"].info.run_id, "seen")
    assert sorted(h.step for h in seen) == [0, 0, 2]  # window index since the run's first window
    at_step = sorted((h.timestamp, h.value) for h in seen if h.step == 0)
    assert at_step == [(t_window + HOUR, len(streams["english"])), (t_window + HOUR + 1, len(streams["english"]) + 50)]
    assert _push(spool, uri).returncode == 0
    assert len(client.get_metric_history(runs["1"].info.run_id, "seen")) == 3


def _post_all(spool: Path, snaps: list) -> None:
    c = Collector(spool).start()
    try:
        for s in snaps:
            assert c.post(_dump(s))[0] == 201
    finally:
        c.stop()


def _history(client, run_id: str, key: str) -> list:
    return sorted((h.step, h.timestamp, h.value) for h in client.get_metric_history(run_id, key))


def test_drift_of_pushed_windows_is_computed_once_the_artifact_is_at_hand(english_pipeline, mlflow_server, streams,
                                                                          monitor_bin, tmp_path):  # fmt: skip
    """An artifact exported from a file (no registry version): pushed without `--artifact`, its
    windows get no drift (and a warning says they link to no model version); pushed again with
    `--artifact`, their drift is logged at their steps, once; the French window's alert is
    cleared by the later, healthy English window; thresholds and the baseline's source are
    params of the run."""
    uri = mlflow_server
    artifact = _export_joblib(english_pipeline, streams["validation"], tmp_path, "monitor_file", version="")
    spool = tmp_path / "spool"
    t0 = (int(time.time() * 1000) // HOUR - 8) * HOUR
    french = simulate(monitor_bin, artifact, streams["french"], seed=31, start_ms=t0 + 60_000)
    english = simulate(monitor_bin, artifact, streams["english"], seed=32, start_ms=t0 + HOUR + 60_000)
    _post_all(spool, french + english)

    first = _push(spool, uri)
    assert first.returncode == 0, first.stderr
    assert "runs an artifact with no registry version" in first.stderr
    assert first.stderr.count("no drift baseline for monitor_file") == 1, first.stderr
    client = _client(uri)
    exp = client.get_experiment_by_name(report.DEFAULT_EXPERIMENT)
    [run] = client.search_runs([exp.experiment_id], "tags.`skedge.model_name` = 'monitor_file'")
    run_id = run.info.run_id
    assert _history(client, run_id, "seen") == [(0, t0 + HOUR, len(streams["french"])),
                                                (1, t0 + 2 * HOUR, len(streams["english"]))]  # fmt: skip
    assert not any(k.startswith("drift") for k in run.data.metrics), "no baseline: no drift, no drift_alert"
    assert "baseline.source" not in run.data.params and run.data.params["psi_threshold"] == "0.25"

    waiting = _push(spool, uri)
    assert waiting.returncode == 0 and "nothing to push" in waiting.stderr, waiting.stderr
    assert "2 pushed window(s) still without drift" in waiting.stderr

    later = _push(spool, uri, "--artifact", str(artifact))
    # the French window drifts, but only the run's latest window (English, healthy) moves the tags
    assert later.returncode == 0, later.stderr
    assert "DRIFT ALERT" not in later.stderr and "oov_shift 0.7" in later.stderr, later.stderr
    run = client.get_run(run_id)
    assert "skedge.drift_alert" not in run.data.tags
    assert _history(client, run_id, "drift_alert") == [(0, t0 + HOUR, 1.0), (1, t0 + 2 * HOUR, 0.0)]
    shift = _history(client, run_id, "drift.oov_shift")
    assert [st for st, _, _ in shift] == [0, 1] and shift[0][2] > 0.5 > 0.05 > shift[1][2]
    assert len(client.get_metric_history(run_id, "seen")) == 2, "the windows themselves are not logged again"
    params = run.data.params
    assert params["baseline.source"] == artifact.resolve().as_uri()
    assert params["baseline.texts"] == str(len(streams["validation"]))
    assert (params["psi_threshold"], params["oov_shift_threshold"], params["min_samples"]) == ("0.25", "0.1", "50")
    assert params["window_seconds"] == "3600"

    again = _push(spool, uri, "--artifact", str(artifact))
    assert again.returncode == 0 and "nothing to push" in again.stderr, again.stderr
    for key in ("drift.oov_shift", "drift.label_psi", "drift_alert", "seen"):
        assert len(client.get_metric_history(run_id, key)) == 2, key
    ledger = report.read_ledger(spool)
    assert [e.get("kind") for e in ledger] == [None, None, "drift", "drift"]
    assert report.unevaluated(ledger) == []


@pytest.mark.team
def test_alert_cleared_on_the_version_and_metrics_linked_to_the_logged_model(registered, mlflow_server, streams,
                                                                              monitor_bin, tmp_path):  # fmt: skip
    """A registered version with its artifact published: French raises `skedge.drift_alert` on
    the version, a later healthy English window removes it; the window metrics are linked to
    the version's LoggedModel (MLflow 3 `model_id`)."""
    uri = mlflow_server
    spool = tmp_path / "spool"
    half = HOUR // 2  # its own runs: the window length is part of a run's identity
    t0 = (int(time.time() * 1000) // half - 12) * half
    french = simulate(monitor_bin, registered["2"], streams["french"], seed=41, start_ms=t0 + 1000)
    _post_all(spool, french)
    push = lambda: _push(spool, uri, "--window-seconds", "1800")  # noqa: E731
    alert = push()
    assert alert.returncode == 1, alert.stderr
    client = _client(uri)
    assert "oov_shift" in client.get_model_version("monitor_en", "2").tags["skedge.drift_alert"]
    english = simulate(monitor_bin, registered["2"], streams["english"], seed=42, start_ms=t0 + 3 * half + 1000)
    _post_all(spool, english)
    healthy = push()
    assert healthy.returncode == 0, healthy.stderr
    assert "cleared skedge.drift_alert of run" in healthy.stderr and "monitor_en version 2" in healthy.stderr
    mv = client.get_model_version("monitor_en", "2")
    assert "skedge.drift_alert" not in mv.tags
    exp = client.get_experiment_by_name(report.DEFAULT_EXPERIMENT)
    [run] = client.search_runs([exp.experiment_id], "tags.`skedge.model_version` = '2' and "
                               "tags.`skedge.window_seconds` = '1800.0'")  # fmt: skip
    assert "skedge.drift_alert" not in run.data.tags
    assert _history(client, run.info.run_id, "drift_alert") == [(0, t0 + half, 1.0), (3, t0 + 4 * half, 0.0)]
    assert run.data.params["baseline.source"] == "models:/monitor_en/2"
    model_id = report.model_id_of(mv)
    assert model_id and run.data.tags["skedge.model_id"] == model_id
    linked = {m.key for m in client.get_logged_model(model_id).metrics or []}
    assert {"seen", "drift.oov_shift", "drift_alert"} <= linked, linked
    assert "did not link" not in alert.stderr + healthy.stderr


def test_a_run_from_before_step_origins_keeps_its_epoch_steps(english_pipeline, mlflow_server, streams, monitor_bin,
                                                              tmp_path):  # fmt: skip
    """A monitoring run made by an older push (no `skedge.step_origin_ms` tag, steps = window
    index since the epoch) goes on with such steps: its plots stay one series."""
    uri = mlflow_server
    artifact = _export_joblib(english_pipeline, streams["validation"], tmp_path, "monitor_old", version="")
    t0 = (int(time.time() * 1000) // HOUR - 3) * HOUR
    [snap] = simulate(monitor_bin, artifact, streams["english"][:100], seed=51, start_ms=t0 + 1000)
    client = _client(uri)
    exp_id = report.registry.ensure_experiment(report.DEFAULT_EXPERIMENT, uri)
    old = client.create_run(exp_id, tags={
        "skedge.monitoring": "true", "skedge.model_name": "monitor_old", "skedge.model_version": "",
        "skedge.sha256": snap["model"]["sha256"], "skedge.window_seconds": "3600.0"})  # fmt: skip
    _post_all(tmp_path / "spool", [snap])
    push = _push(tmp_path / "spool", uri, "--artifact", str(artifact))
    assert push.returncode == 0, push.stderr
    assert [(h.step, h.timestamp) for h in client.get_metric_history(old.info.run_id, "seen")] == [
        (t0 // HOUR, t0 + HOUR)]  # fmt: skip


def _steps(client, run_id: str, key: str) -> list:
    return sorted((h.step, h.timestamp, h.value) for h in client.get_metric_history(run_id, key))


def _run_of(client, name: str):
    exp = client.get_experiment_by_name(report.DEFAULT_EXPERIMENT)
    [run] = client.search_runs([exp.experiment_id], f"tags.`skedge.model_name` = '{name}'")
    return run


def test_two_sources_of_one_window_add_up(english_pipeline, mlflow_server, streams, monitor_bin, tmp_path):
    """Two collectors' spools (or a folder and a bucket) with snapshots of the same model version
    and window, pushed one after the other: the second adds its snapshots to the point the first
    logged (a revision with both), never takes that point for its own; a late snapshot in the
    first adds to both. `dropped` (cumulative per monitor) is logged as the window's largest."""
    uri = mlflow_server
    artifact = _export_joblib(english_pipeline, streams["validation"], tmp_path, "monitor_two", version="")
    t0 = (int(time.time() * 1000) // HOUR - 6) * HOUR
    english = simulate(monitor_bin, artifact, streams["english"][:300], seed=61, per_snapshot=100,
                       start_ms=t0 + 60_000)  # fmt: skip
    french = simulate(monitor_bin, artifact, streams["french"][:200], seed=62, per_snapshot=100,
                      start_ms=t0 + 60_000)  # fmt: skip
    english[1]["dropped"], french[0]["dropped"] = 3, 7
    a, b = tmp_path / "a", tmp_path / "b"
    _post_all(a, english[:2])
    _post_all(b, french)
    push = lambda spool: _push(spool, uri, "--artifact", str(artifact))  # noqa: E731
    first = push(a)
    assert first.returncode == 0, first.stderr
    second = push(b)
    assert second.returncode in (0, 1), second.stderr
    assert "2 snapshot(s) another source logged" in second.stderr, second.stderr
    client = _client(uri)
    run_id = _run_of(client, "monitor_two").info.run_id
    n_en = sum(s["stats"]["count"] for s in english[:2])
    n_fr = sum(s["stats"]["count"] for s in french)
    assert _steps(client, run_id, "sampled") == [(0, t0 + HOUR, n_en), (0, t0 + HOUR + 1, n_en + n_fr)]
    assert _steps(client, run_id, "snapshots") == [(0, t0 + HOUR, 2), (0, t0 + HOUR + 1, 4)]
    assert _steps(client, run_id, "dropped") == [(0, t0 + HOUR, 3), (0, t0 + HOUR + 1, 7)]
    [entry] = report.read_ledger(b)
    assert entry["ids"] == sorted(s["id"] for s in french) and (entry["revision"], entry["merged"]) == (1, 2)
    assert "nothing to push" in push(a).stderr and "nothing to push" in push(b).stderr

    _post_all(a, english[2:])  # a late snapshot of the same window reaches the first source
    late = push(a)
    assert late.returncode in (0, 1), late.stderr
    assert "revision 2" in late.stderr and "2 snapshot(s) another source logged" in late.stderr, late.stderr
    latest = _steps(client, run_id, "sampled")[-1]
    assert latest == (0, t0 + HOUR + 2, n_en + n_fr + english[2]["stats"]["count"]), "nothing of b's is hidden"
    assert _steps(client, run_id, "seen")[-1][2] == sum(s["seen"] for s in english + french)


def test_snapshots_that_cannot_be_aggregated_are_set_aside_not_pushed(english_pipeline, mlflow_server, streams,
                                                                      monitor_bin, tmp_path):  # fmt: skip
    """A snapshot whose classes differ from its artifact's (same sha256), or whose statistics are
    of another kind (confidence null where the others have it), is quarantined with its reason;
    the rest of its window is logged in full and only those ids are recorded as pushed."""
    import copy  # noqa: PLC0415

    uri = mlflow_server
    artifact = _export_joblib(english_pipeline, streams["validation"], tmp_path, "monitor_odd", version="")
    t0 = (int(time.time() * 1000) // HOUR - 7) * HOUR
    legit = simulate(monitor_bin, artifact, streams["english"][:400], seed=71, per_snapshot=100,
                     start_ms=t0 + 60_000)  # fmt: skip
    swapped = copy.deepcopy(legit[0])
    swapped["id"], swapped["classes"] = "f" * 32, list(reversed(legit[0]["classes"]))
    bare = copy.deepcopy(legit[1])
    bare["id"], bare["stats"]["confidence"] = "e" * 32, None
    spool = tmp_path / "spool"
    _post_all(spool, [swapped, bare, *legit])  # the odd ones arrive first
    proc = _push(spool, uri, "--artifact", str(artifact))
    assert proc.returncode == 0, proc.stderr
    client = _client(uri)
    m = _run_of(client, "monitor_odd").data.metrics
    assert (m["snapshots"], m["sampled"], m["seen"]) == (len(legit), sum(s["stats"]["count"] for s in legit),
                                                        sum(s["seen"] for s in legit))  # fmt: skip
    quarantined = {tuple(q["ids"]): q["reason"] for q in report.read_ledger(spool, report.QUARANTINE)}
    assert set(quarantined) == {(swapped["id"],), (bare["id"],)}
    assert "classes" in quarantined[(swapped["id"],)] and "kind" in quarantined[(bare["id"],)]
    assert sorted(i for e in report.read_ledger(spool) for i in e["ids"]) == sorted(s["id"] for s in legit)
    again = _push(spool, uri, "--artifact", str(artifact))
    assert again.returncode == 0 and "nothing to push" in again.stderr, again.stderr


def test_clocks_ahead_and_late_windows_leave_the_alert_to_the_latest_window(english_pipeline, mlflow_server,
                                                                            streams, monitor_bin, tmp_path):  # fmt: skip
    """A spooled snapshot from a clock far ahead (a bucket the Worker wrote, or an older collector)
    is set aside, not left "open"; a point beyond the clock that an older push logged does not
    keep a later healthy window from clearing the alert; a late snapshot of an older drifting
    window is logged as its revision but does not set the alert again."""
    uri = mlflow_server
    artifact = _export_joblib(english_pipeline, streams["validation"], tmp_path, "monitor_skew", version="")
    t0 = (int(time.time() * 1000) // HOUR - 9) * HOUR
    french = simulate(monitor_bin, artifact, streams["french"][:300], seed=81, per_snapshot=100, start_ms=t0 + 60_000)
    english = simulate(monitor_bin, artifact, streams["english"][:400], seed=82, per_snapshot=100,
                       start_ms=t0 + 2 * HOUR + 60_000)  # fmt: skip
    [ahead] = simulate(monitor_bin, artifact, streams["english"][:100], seed=83, start_ms=4_102_444_800_000)
    spool = tmp_path / "spool"
    _post_all(spool, french[:2])
    push = lambda *extra: _push(spool, uri, "--artifact", str(artifact), *extra)  # noqa: E731
    assert push().returncode == 1  # French into the English model
    client = _client(uri)
    run_id = _run_of(client, "monitor_skew").info.run_id
    assert "skedge.drift_alert" in client.get_run(run_id).data.tags
    # what an older push made of a clock in 2100: a point far beyond every real window
    from mlflow.entities import Metric  # noqa: PLC0415

    client.log_batch(run_id, metrics=[Metric("sampled", 100.0, 4_102_448_400_000, 1_000_000)])
    with open(spool / "snapshots-000001.jsonl", "ab") as f:  # as a bucket or an older collector has it
        f.write((json.dumps({"received_ms": int(time.time() * 1000), "snapshot": ahead}) + "\n").encode())

    _post_all(spool, english)
    healthy = push("--close-all")
    assert healthy.returncode == 0, healthy.stderr
    assert "the device's clock is ahead" in healthy.stderr and "still open" not in healthy.stderr
    assert [q["ids"] for q in report.read_ledger(spool, report.QUARANTINE)] == [[ahead["id"]]]
    assert "cleared skedge.drift_alert of run" in healthy.stderr, healthy.stderr
    assert "skedge.drift_alert" not in client.get_run(run_id).data.tags

    _post_all(spool, french[2:])  # late: the older French window's last snapshot
    late = push()
    assert late.returncode == 0, late.stderr
    assert "revision 1" in late.stderr and "DRIFT ALERT" not in late.stderr, late.stderr
    assert "skedge.drift_alert" not in client.get_run(run_id).data.tags
    assert (0, t0 + HOUR + 1, 1.0) in _steps(client, run_id, "drift_alert"), "the history keeps it"
