"""Issue #18: one snapshot must not block `report.py push`, nor a slow client hold the collector.

The schema enforces MLflow's name rules and bounded times and refuses lone surrogates (Python and
Rust agree); class names become metric keys by a collision-free escape that MLflow accepts; push
validates every spool record again and sets aside (quarantines) bad lines and windows MLflow
refuses, pushing the others; spool files are never followed through a symlink; `--save-plots`
stays in its folder; header and body timeouts close slowloris connections; a second collector on
a locked spool exits 3.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_report import (  # noqa: F401 - fixtures
    SCRIPTS,
    TOKEN,
    _free_port,
    _push,
    _stop,
    _wait_http,
    mlflow_server,
    monitor_bin,
)

from skedge import report

T0 = 1_767_225_600_000


def _edited(doc: dict, edit: dict) -> dict:
    """`doc` with each `a__b__c=value` of `edit` set at doc["a"]["b"]["c"]."""
    for path, value in edit.items():
        at = doc
        *parents, last = path.split("__")
        for p in parents:
            at = at[p]
        at[last] = value
    return doc


def _snapshot(**edit) -> dict:
    doc = {
        "format": "skedge-monitor-snapshot", "version": 1, "id": uuid.uuid4().hex,
        "model": {"name": "hardening", "version": "1", "sha256": "ab" * 32},
        "window": {"index": 0, "start_ms": T0, "end_ms": T0 + 60_000},
        "sample_rate": 1.0, "seen": 2, "dropped": 0, "classes": ["neg", "pos"],
        "stats": {"count": 2, "label_counts": [1, 1], "confidence": None, "oov": None,
                  "length": [0, 0, 2] + [0] * 13, "latency": None},
        "texts": [],
    }  # fmt: skip
    return _edited(doc, edit)


REFUSED = {
    "name with /": {"model__name": "a/b"},
    "name with :": {"model__name": "models:a"},
    "name ending in a backslash": {"model__name": "name\\"},
    "empty name": {"model__name": ""},
    "blank name": {"model__name": "   "},
    "name ..": {"model__name": ".."},
    "name starting with ..": {"model__name": "..x"},
    "name with a newline": {"model__name": "a\nb"},
    "version with /": {"model__version": "1/2"},
    "end_ms 2^64-1": {"window__end_ms": 2**64 - 1},
    "end_ms in year 10000": {"window__end_ms": report.MAX_TIME_MS + 1},
}
ACCEPTED = {
    "plain": {},
    "unicode name with spaces": {"model__name": "critiques de livres é"},
    "no version": {"model__version": ""},
    "classes MLflow could not key": {"classes": ["x/..", "a//b"]},
    "classes that collided": {"classes": ["a?", "a!"]},
    "last instant of 9999": {"window__end_ms": report.MAX_TIME_MS},
}


def _check(monitor_bin: Path, body: bytes) -> bool:
    proc = subprocess.run([str(monitor_bin), "check"], input=body, capture_output=True)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


@pytest.mark.parametrize("case", list(REFUSED))
def test_schema_refuses_what_mlflow_or_a_date_cannot_take(case, monitor_bin):
    body = json.dumps(_snapshot(**REFUSED[case])).encode()
    with pytest.raises(report.SnapshotError) as err:
        report.parse_snapshot(body)
    assert err.value.status == 422
    assert not _check(monitor_bin, body), "the Rust validator must agree"


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_schema_accepts(case, monitor_bin):
    body = json.dumps(_snapshot(**ACCEPTED[case]), ensure_ascii=False).encode()
    report.parse_snapshot(body)
    assert _check(monitor_bin, body)


@pytest.mark.parametrize("where", ["classes", "texts", "model__name"])
def test_lone_surrogates_are_refused_at_the_schema(where, monitor_bin):
    value = ["\ud800x", "ok"] if where == "classes" else ["\udc00"] if where == "texts" else "m\ud800"
    edit = {where: value}
    if where == "texts":
        edit["stats__count"] = 2
    body = json.dumps(_snapshot(**edit)).encode()  # "\ud800" escaped: valid JSON
    with pytest.raises(report.SnapshotError) as err:
        report.parse_snapshot(body)
    assert err.value.status == 422, err.value
    assert not _check(monitor_bin, body)


def test_metric_keys_are_escaped_without_collisions():
    from mlflow.utils.validation import _validate_metric_name  # noqa: PLC0415 - MLflow's own rule

    labels = ["a?", "a!", "a_", "x/..", "a//b", "", "-", "-2D", ".", "..", "/", "a b", "é", "C3-A9",
              "\\", "neg", "pos", "0", "1", "x" * 300, "x" * 299 + "y", "ü" * 120, "ü" * 119 + "v"]  # fmt: skip
    keys = [f"label_share.{report.escape_label(label)}" for label in labels]
    assert len(set(keys)) == len(labels), "two classes share a metric key"
    for key in keys:
        _validate_metric_name(key)
        assert len(key) <= 250
    assert report.escape_label("neg") == "neg" and report.escape_label("a?") == "a-3F"


# ---------------------------------------------------------------------------------------------
# the collector


class _Collector:
    def __init__(self, spool: Path, *extra: str):
        self.port = _free_port()
        cmd = [sys.executable, str(SCRIPTS / "report.py"), "serve", "--spool", str(spool), "--token", TOKEN,
               "--host", "127.0.0.1", "--port", str(self.port), *extra]  # fmt: skip
        self.log = open(spool.parent / f"collector-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc, "the collector", 60)

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        return s

    def post(self, body: bytes) -> tuple[int, bytes]:
        with self.connect() as s:
            s.sendall(
                b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + body
            )
            data = _read_all(s)
        return int(data.split(b" ", 2)[1]), data


def _read_all(s: socket.socket) -> bytes:
    """Everything until the server closes; socket.timeout if it never does."""
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_collector_answers_422_never_500_for_crafted_snapshots(tmp_path):
    c = _Collector(tmp_path / "spool")
    try:
        for edit in ({"classes": ["\ud800", "x"]}, {"model__name": "a/b"}, {"window__end_ms": 2**64 - 1},
                     {"model__name": ""}, {"stats__latency": {"counts": [0] * 6 + [2] + [0] * 9,
                                                              "sum_ms": 1.7e308, "max_ms": 1.7e308}}):  # fmt: skip
            status, data = c.post(json.dumps(_snapshot(**edit)).encode())
            assert status == 422 and b'"code":"SNAPSHOT_INVALID"' in data, data
        assert c.post(json.dumps(_snapshot(classes=["a?", "a!"])).encode())[0] == 201
    finally:
        c.stop()


def test_slow_clients_are_cut_off(tmp_path):
    """Idle, partial-header and partial-body connections do not stay open (slowloris)."""
    c = _Collector(tmp_path / "spool", "--header-timeout", "1", "--body-timeout", "1")
    try:
        with c.connect() as idle:
            assert _read_all(idle) == b""  # closed without a request
        with c.connect() as partial:
            partial.sendall(b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Ty")
            assert _read_all(partial) == b""
        with c.connect() as trickle:
            trickle.sendall(
                b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n".encode()
                + b'{"format": '
            )
            data = _read_all(trickle)
            assert data.startswith(b"HTTP/1.1 408"), data
        with c.connect() as keep:  # a second request's headers are timed too
            keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = b""
            while not first.endswith(b"}"):  # the whole first response, body included
                first += keep.recv(65536)
            assert first.startswith(b"HTTP/1.1 200"), first
            keep.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            assert _read_all(keep) == b""
        with c.connect() as big:
            big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (64 << 10))
            refused = _read_all(big)  # an unfinished head over 16 KiB: h11's refusal, coded
            assert refused.startswith(b"HTTP/1.1 400"), refused
            assert json.loads(refused.split(b"\r\n\r\n", 1)[1])["code"] == "INVALID_HTTP", refused
        with c.connect() as framing:
            framing.sendall(b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n")
            refused = _read_all(framing)
            assert refused.startswith(b"HTTP/1.1 400") and b"application/json" in refused, refused
            assert json.loads(refused.split(b"\r\n\r\n", 1)[1])["code"] == "INVALID_HTTP", refused
        assert c.proc.poll() is None
    finally:
        c.stop()


def test_a_whole_head_over_16_kib_is_refused_coded(tmp_path):
    """h11 bounds only a head still incomplete: one that arrives whole in one read (a single
    sendall on loopback) reached the collector, and 100 KB of headers were stored with 201."""
    c = _Collector(tmp_path / "spool")

    def post(pad: int, short: int = 0) -> tuple[int, bytes]:
        """With `short` headers `a:b`, written without a space: counted as sent, not one byte more."""
        body = json.dumps(_snapshot()).encode()
        with c.connect() as s:
            head = (b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\nX-Pad: {'a' * pad}\r\n"
                    f"Connection: close\r\n".encode() + b"a:b\r\n" * short + b"\r\n")  # fmt: skip
            assert len(head) <= 16384 or not short
            s.sendall(head + body)
            data = _read_all(s)
        return int(data.split(b" ", 2)[1]), data

    try:
        status, data = post(20_000)
        assert status == 400, data
        assert json.loads(data.split(b"\r\n\r\n", 1)[1]) == {
            "code": "HEADERS_TOO_LARGE", "error": "the request head is larger than 16384 bytes"}  # fmt: skip
        assert post(100_000)[0] == 400  # h11's refusal (INVALID_HTTP) if the head came in more than one read
        assert post(15_000)[0] == 201  # a head under the limit, padding and all
        assert post(1, short=3_100)[0] == 201  # 15,7xx bytes of `a:b` lines
        assert c.proc.poll() is None
    finally:
        c.stop()
    assert len(report.read_spool(tmp_path / "spool")) == 2


def test_second_collector_on_a_locked_spool_exits_3(tmp_path):
    c = _Collector(tmp_path / "spool")
    try:
        proc = subprocess.run(
            [sys.executable, str(SCRIPTS / "report.py"), "serve", "--spool", str(tmp_path / "spool"),
             "--token", TOKEN, "--port", str(_free_port())],  # fmt: skip
            capture_output=True, timeout=60, start_new_session=True,
        )
        assert proc.returncode == 3 and b"used by another collector" in proc.stderr
    finally:
        c.stop()


# ---------------------------------------------------------------------------------------------
# push


def _record(doc: dict) -> bytes:
    return (json.dumps({"received_ms": T0, "snapshot": doc}) + "\n").encode()


def test_push_quarantines_bad_lines_and_refused_windows_and_pushes_the_rest(mlflow_server, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    good = _snapshot(classes=["a?", "a!"], model__name="hardening_ok")
    good["stats"]["label_counts"] = [2, 0]
    refused = _snapshot(model__name="hardening_refused", model__version="abc")  # not a version MLflow has
    lines = [
        _record(good),
        b'{"received_ms": 1, "snapshot": {"id": 5}}\n',  # crafted: crashed push with exit 1
        b"not json at all\n",
        b'{"snapshot": []}\n',
        _record(_snapshot(model__name="../../escape")),  # refused by the schema now
        _record(refused),
        json.dumps({"received_ms": 1, "snapshot": _snapshot(classes=["\ud800", "x"])}).encode() + b"\n",
    ]
    (spool / "snapshots-000001.jsonl").write_bytes(b"".join(lines))
    outside = tmp_path / "outside.jsonl"
    elsewhere = _snapshot(model__name="hardening_symlink")
    outside.write_bytes(_record(elsewhere))
    (spool / "snapshots-000002.jsonl").symlink_to(outside)
    plots = tmp_path / "plots"

    proc = _push(spool, mlflow_server, "--close-all", "--save-plots", str(plots))
    assert proc.returncode == 0, proc.stderr
    assert "quarantined 5 spool line(s)" in proc.stderr, proc.stderr
    assert "quarantined window" in proc.stderr and "hardening_refused" in proc.stderr

    quarantine = report.read_ledger(spool, report.QUARANTINE)
    windows = [q for q in quarantine if "ids" in q]
    assert [w["ids"] for w in windows] == [[refused["id"]]]
    assert len([q for q in quarantine if "line_sha256" in q]) == 5

    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name(report.DEFAULT_EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], "tags.`skedge.model_name` = 'hardening_ok'")
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    assert metrics["label_share.a-3F"] == 1.0 and metrics["label_share.a-21"] == 0.0
    assert not client.search_runs([exp.experiment_id], "tags.`skedge.model_name` = 'hardening_symlink'")
    assert outside.read_bytes() == _record(elsewhere), "the symlinked segment was changed"
    bucket = good["window"]["end_ms"] // 3_600_000
    assert [p.name for p in plots.iterdir()] == [f"hardening_ok-v1-window-{bucket}.png"]

    again = _push(spool, mlflow_server, "--close-all")
    assert again.returncode == 0, again.stderr
    assert "nothing to push" in again.stderr and "quarantined" not in again.stderr
    assert len(report.read_ledger(spool, report.QUARANTINE)) == len(quarantine)


def test_each_name_keeps_one_run_whatever_quotes_it_holds_among_many_alike(mlflow_server, tmp_path):
    """Names holding ' (quoted with " in the run search) or both quotes (no filter on them: every
    page is read and matched), seven of each sharing every other tag: more than the five runs one
    search used to read. Each name keeps one monitoring run across pushes (before: a new run at
    every push, a split history, which five decoy names could force on any model)."""
    names = [f"O'Brien {i}" for i in range(7)] + [f"say \"O'Brien\" {i}" for i in range(7)]
    spool = tmp_path / "spool"
    spool.mkdir()
    experiment = f"hardening-quotes-{uuid.uuid4().hex[:8]}"
    for w in range(2):
        start = T0 + w * 3_600_000 + 60_000
        docs = [_snapshot(model__name=n, window__start_ms=start, window__end_ms=start + 60_000) for n in names]
        (spool / f"snapshots-{w + 1:06d}.jsonl").write_bytes(b"".join(_record(d) for d in docs))
        proc = _push(spool, mlflow_server, "--experiment", experiment, "--close-all")
        assert proc.returncode == 0, proc.stderr

    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    assert sorted(r.data.tags["skedge.model_name"] for r in runs) == sorted(names), "a name has two runs"
    for r in runs:
        assert len(client.get_metric_history(r.info.run_id, "seen")) == 2, r.data.tags["skedge.model_name"]


def test_plot_path_stays_in_its_folder(tmp_path):
    for name in ("../../etc/x", "a/../../b", "..", "x\\..\\y"):
        g = report.Group(name, "1/../..", "ab" * 32, 7)
        path = report.plot_path(tmp_path, g)
        assert path.parent == tmp_path.resolve(), path


def test_spool_files_are_streamed_and_never_followed(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    target = tmp_path / "target.jsonl"
    original = _record(_snapshot())
    target.write_bytes(original)
    (spool / "snapshots-000001.jsonl").symlink_to(target)
    assert report.read_spool(spool) == []
    with pytest.raises(OSError):
        report.append_durably(spool / "snapshots-000001.jsonl", b"x\n")
    assert target.read_bytes() == original
    big = spool / "snapshots-000002.jsonl"
    with open(big, "wb") as f:  # a line far over the record limit, then a valid one
        f.write(b"x" * (report.MAX_RECORD_BYTES + 10) + b"\n")
        f.write(_record(_snapshot()))
    bad: list = []
    assert len(report.read_spool(spool, bad)) == 1 and bad == [(big.name, None)]


# ---------------------------------------------------------------------------------------------
# what cannot be a measurement (audit of the monitoring path)


def _experiment(**edit) -> dict:
    """A valid shadow experiment snapshot (two pairs, |Δ proba| 0.25 and 0.25)."""
    stats = {"count": 2, "label_counts": [1, 1], "confidence": None, "oov": None,
             "length": [0, 0, 2] + [0] * 13, "latency": None}  # fmt: skip

    def arm(role: str, version: str, served: int) -> dict:
        return {"arm": role, "model": {"name": "hardening_exp", "version": version, "sha256": "cd" * 32},
                "served": served, "stats": stats, "feedback": {"count": 0, "correct": 0, "confusion": [[0, 0], [0, 0]]}}  # fmt: skip

    doc = {
        "format": "skedge-experiment-snapshot", "version": 1, "id": uuid.uuid4().hex, "mode": "shadow",
        "sample_rate": 1.0, "share": 0.0, "window": {"index": 0, "start_ms": T0, "end_ms": T0 + 60_000},
        "seen": 2, "dropped": 0, "classes": ["neg", "pos"],
        "arms": [arm("champion", "1", 2), arm("challenger", "2", 0)],
        "shadow": {"pairs": 2, "agree": 2, "confusion": [[1, 0], [0, 1]], "proba_pairs": 2,
                   "sum_abs_dproba": 0.5, "max_abs_dproba": 0.25},
        "feedback_expired": 0, "feedback_unknown": 0, "feedback_duplicate": 0,
    }  # fmt: skip
    return _edited(doc, edit)


_TIMED = {"counts": [0, 0, 0, 0, 0, 0, 2] + [0] * 9, "sum_ms": 1.5, "max_ms": 0.75}
UNMEASURABLE = {
    # the audit's window mean of 1.797e308 ms: a sum no two predictions of at most 1e6 ms can make
    "latency sum over count × max": _snapshot(stats__latency=dict(_TIMED, sum_ms=1.5e308, max_ms=1e6)),
    "latency sum without a timed prediction": _snapshot(
        stats__latency={"counts": [0] * 16, "sum_ms": 3.0, "max_ms": 3.0}),  # fmt: skip
    "shadow mean |Δ proba| above its max": _experiment(shadow__sum_abs_dproba=0.6),
    "shadow mean |Δ proba| above 1": _experiment(shadow__sum_abs_dproba=3.0, shadow__max_abs_dproba=1.0),
    "duplicate classes": _snapshot(classes=["pos", "pos"]),
    "duplicate experiment classes": _experiment(classes=["neg", "neg"]),
    "classes over 64 KiB": _snapshot(classes=["a" * (32 << 10), "b" * (32 << 10) + "c"]),
}
MEASURABLE = {
    "latency sum = count × max": _snapshot(stats__latency=_TIMED),
    "shadow sum = pairs × max": _experiment(),
    "classes of exactly 64 KiB": _snapshot(classes=["a" * (32 << 10), "b" * (32 << 10)]),
}


@pytest.mark.parametrize("case", list(UNMEASURABLE))
def test_schema_refuses_sums_no_measurement_makes_and_ambiguous_classes(case, monitor_bin):
    body = json.dumps(UNMEASURABLE[case]).encode()
    with pytest.raises(report.SnapshotError) as err:
        report.parse_snapshot(body)
    assert err.value.status == 422, err.value
    assert not _check(monitor_bin, body), "the Rust validator must agree"


@pytest.mark.parametrize("case", list(MEASURABLE))
def test_schema_accepts_sums_at_their_bounds(case, monitor_bin):
    body = json.dumps(MEASURABLE[case]).encode()
    report.parse_snapshot(body)
    assert _check(monitor_bin, body)


_ONE = [0, 0, 0, 0, 0, 0, 1] + [0] * 9
LATENCY_BEYOND = {
    # the audit's: two such snapshots made a window's sum inf, and push left out its latency metrics
    "sum and max 1.7e308": _snapshot(stats__latency={"counts": [0] * 6 + [2] + [0] * 9, "sum_ms": 1.7e308,
                                                     "max_ms": 1.7e308}),  # fmt: skip
    "sum over 1e15": _snapshot(stats__latency={"counts": [0] * 6 + [2] + [0] * 9, "sum_ms": 1.5e15, "max_ms": 1e15}),
    "max over 1e15": _snapshot(stats__latency={"counts": _ONE, "sum_ms": 1.0, "max_ms": 1.000001e15}),
    "an arm's sum over 1e15": _experiment(),
}
_arm = LATENCY_BEYOND["an arm's sum over 1e15"]["arms"][1]
_arm["stats"] = dict(_arm["stats"], latency={"counts": _ONE, "sum_ms": 2e15, "max_ms": 2e15})


@pytest.mark.parametrize("case", list(LATENCY_BEYOND))
def test_latency_sums_and_maxima_over_1e15_ms_are_refused(case):
    body = json.dumps(LATENCY_BEYOND[case]).encode()
    with pytest.raises(report.SnapshotError) as err:
        report.parse_snapshot(body)
    assert err.value.status == 422 and "1000000000000000" in str(err.value), err.value
    at_bound = _snapshot(stats__latency={"counts": _ONE, "sum_ms": 1e15, "max_ms": 1e15})
    report.parse_snapshot(json.dumps(at_bound).encode())


def test_statistics_of_different_kinds_are_not_merged():
    """As the Rust `Stats::merge`: a confidence (or OOV) histogram present in one window only
    would be divided by both counts (the audit's halved confidence_mean)."""
    with_conf = _snapshot(stats__confidence=[0] * 9 + [2])
    without = _snapshot()
    with pytest.raises(ValueError):
        report.merge_stats(with_conf["stats"], without["stats"])
    with pytest.raises(ValueError):
        report.aggregate([with_conf, without])
    other = _snapshot(classes=["pos", "neg"])
    odd = report.nonconforming([other, with_conf, _snapshot(), _snapshot()], None)
    assert set(odd) == {other["id"], with_conf["id"]}, "the majority's classes and kind win"
    assert "classes" in odd[other["id"]] and "kind" in odd[with_conf["id"]]
    # the artifact's classes win over any majority
    fixed = [other, _snapshot(), _snapshot()]
    assert set(report.nonconforming(fixed, ["pos", "neg"])) == {fixed[1]["id"], fixed[2]["id"]}


def test_collector_refuses_a_window_ending_ahead_of_its_clock(tmp_path):
    now = int(time.time() * 1000)
    c = _Collector(tmp_path / "spool", "--clock-skew-seconds", "600")
    try:
        ahead = _snapshot(window__start_ms=4_102_444_800_000, window__end_ms=4_102_444_860_000)  # 2100
        status, data = c.post(json.dumps(ahead).encode())
        assert status == 422 and b'"code":"CLOCK_SKEW"' in data, data
        near = _snapshot(window__start_ms=now, window__end_ms=now + 300_000)  # within 600 s
        assert c.post(json.dumps(near).encode())[0] == 201
        beyond = _snapshot(window__start_ms=now, window__end_ms=now + 900_000)
        assert c.post(json.dumps(beyond).encode())[0] == 422
    finally:
        c.stop()


@pytest.mark.parametrize("args", [
    ["push", "--spool", ".", "--window-seconds", "0.0004"],
    ["push", "--spool", ".", "--window-seconds", "inf"],
    ["push", "--spool", ".", "--window-seconds", "nan"],
    ["push", "--spool", ".", "--grace-seconds", "inf"],
    ["push", "--spool", ".", "--grace-seconds", "-1"],
    ["push", "--spool", ".", "--clock-skew-seconds", "inf"],
    ["push", "--spool", ".", "--lease-seconds", "inf"],
    ["serve", "--spool", ".", "--token", "t", "--max-bytes", str(16 << 20)],
    ["serve", "--spool", ".", "--token", "t", "--max-bytes", "0"],
])  # fmt: skip
def test_numbers_out_of_range_are_usage_errors_not_tracebacks(args, tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)  # fmt: skip
    assert proc.returncode == 2, (proc.returncode, proc.stderr)  # argparse's, not push's alert code 1
    assert "Traceback" not in proc.stderr and "report.py: error: --" in proc.stderr, proc.stderr


def test_an_early_answer_closes_the_connection_and_a_client_gone_leaves_no_traceback(tmp_path):
    """408, 413 and 404 answered before the body was read whole close the connection though the
    client trickles bytes (uvicorn kept it to read the rest, for ever); a client gone mid-body
    is not a 50-line traceback in the log."""
    from test_service import _answer_then_end

    c = _Collector(tmp_path / "spool", "--body-timeout", "1")
    auth = f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n".encode()
    cases = {
        "408": (b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 100\r\n\r\n{", b" "),
        "413": (b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 99999999999\r\n\r\n", b"x"),
        "404": (b"POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab", b" "),
    }
    try:
        for name, (head, trickle) in cases.items():
            with c.connect() as s:
                s.sendall(head)
                got, ended = _answer_then_end(s, trickle)
            assert got.startswith(b"HTTP/1.1 " + name.encode()) and b"connection: close" in got.lower(), got
            assert ended, (name, got)
        for _ in range(3):
            with c.connect() as s:
                s.sendall(b"POST /v1/snapshots HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 100\r\n\r\n{")
            assert c.post(json.dumps(_snapshot()).encode())[0] == 201
    finally:
        c.stop()
    log = "".join(p.read_text() for p in tmp_path.glob("collector-*.log"))
    assert "Traceback" not in log and "ClientDisconnect" not in log, log


@pytest.mark.parametrize("args", [["--port", "99999"], ["--header-timeout", "nan"], ["--body-timeout", "-1"],
                                  ["--write-timeout", "inf"]])  # fmt: skip
def test_bad_connection_options_are_usage_errors(args, tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "serve", "--spool", ".", "--token", "t", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and f"argument {args[0]}: error[INVALID_INPUT]" in proc.stderr, proc.stderr
