"""Incremental push and compaction, against the session's real `mlflow server` (conftest.py) and,
for a bucket, moto's S3 server (as test_bucket_spool.py):

- the checkpoint (`pushed.checkpoint.json`) makes a push read only the spool past it: a consumed
  record corrupted in place is never read again (no quarantine line), the new window is logged;
- a push stopped after its ledger lines and before its checkpoint (SIGSTOP hook, then SIGKILL):
  the next push reads that part again, finds it in the ledger and logs nothing twice;
- a late snapshot of a window pushed and consumed long ago is still its next revision, with the
  complete aggregate (the point's record in MLflow holds what is not read again);
- `report.py compact` removes only consumed segments, never the newest, and the collector still
  refuses (409) a retry of an id whose segment is gone; push still finds nothing to log;
- a bucket: a second push reads no object (nothing listed is new), a late object is read alone
  and is a revision, and the same crash before the checkpoint logs nothing twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import _moto, MOTO_CREDENTIALS  # noqa: E402
from test_report import (  # noqa: E402, F401  (fixtures used by name)
    HOUR,
    MONITOR,
    SCRIPTS,
    Collector,
    _client,
    _dump,
    _export_joblib,
    english_pipeline,
    monitor_bin,
    simulate,
    streams,
)

from skedge import report  # noqa: E402
from skedge import spool as bucket_spool  # noqa: E402

pytestmark = pytest.mark.skipif(not MONITOR.exists(), reason="target/release/skedge-monitor is not built")


@pytest.fixture(scope="module")
def artifact(english_pipeline, streams, tmp_path_factory) -> Path:
    return _export_joblib(english_pipeline, streams["validation"], tmp_path_factory.mktemp("incremental"),
                          "monitor_incremental", version="")  # fmt: skip


def _snaps(artifact: Path, streams: dict, hour: int, seed: int, n: int = 60, per: int = 20) -> list:
    """Snapshots of one closed one-hour window `hour` hours ago (n texts, `per` a snapshot)."""
    t = (int(time.time() * 1000) // HOUR - hour) * HOUR
    texts = streams["english"][seed % 200 :][:n]
    return simulate(MONITOR, artifact, texts, seed=seed, start_ms=t + 60_000 + seed, per_snapshot=per)


def _cmd(uri: str, source: str, experiment: str, *extra) -> list:
    return [sys.executable, str(SCRIPTS / "report.py"), "push", "--from", source, "--tracking-uri", uri,
            "--experiment", experiment, "--window-seconds", "3600", "--grace-seconds", "0", *extra]  # fmt: skip


def _push(uri: str, source, experiment: str, *extra, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run(_cmd(uri, str(source), experiment, *extra), capture_output=True, text=True, timeout=600,
                          env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def _stopped_push(uri: str, source, experiment: str, *extra, env=None) -> None:
    """A push that stops itself after its ledger lines, before its checkpoint, and is SIGKILLed."""
    env = dict(env or os.environ, SKEDGE_PUSH_STOP_BEFORE_CHECKPOINT="1")
    proc = subprocess.Popen(_cmd(uri, str(source), experiment, *extra), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 600
    try:
        while True:
            assert proc.poll() is None, f"exited {proc.returncode} before its fault point: {proc.stderr.read()}"
            with open(f"/proc/{proc.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    break
            assert time.monotonic() < deadline, "the push never reached its fault point"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)


def _post(spool: Path, snaps: list, expect: int = 201, extra=()) -> None:
    c = Collector(spool, extra=extra).start()
    try:
        assert [c.post(_dump(s))[0] for s in snaps] == [expect] * len(snaps)
    finally:
        c.stop()


def _seen(uri: str, experiment: str) -> dict:
    """step -> sorted (timestamp, value) of the `seen` points of the experiment's one run."""
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    [run] = client.search_runs([exp.experiment_id])
    out: dict = {}
    for m in client.get_metric_history(run.info.run_id, "seen"):
        out.setdefault(m.step, []).append((m.timestamp, m.value))
    return {k: sorted(v) for k, v in out.items()}


def _window_sums(snaps: list) -> dict:
    """window bucket -> sum of `seen` over the snapshots sent to it."""
    out: dict = {}
    for s in snaps:
        b = s["window"]["end_ms"] // HOUR
        out[b] = out.get(b, 0) + s["seen"]
    return out


def _assert_last_revisions(seen: dict, snaps: list) -> None:
    """The last revision of every window sums all of its snapshots, each once."""
    want = _window_sums(snaps)
    got = {max(points)[0] // HOUR - 1: max(points)[1] for points in seen.values()}
    assert got == want


def _experiment(name: str) -> str:
    return f"skedge-incremental-{name}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------


def test_a_push_reads_only_what_is_past_the_checkpoint(server, artifact, streams, tmp_path):
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("skip")
    old = _snaps(artifact, streams, hour=6, seed=1) + _snaps(artifact, streams, hour=5, seed=2)
    _post(spool, old)
    first = _push(uri, spool, experiment)
    assert first.stderr.count("logged monitor_incremental") == 2, first.stderr
    ck = json.loads((spool / report.CHECKPOINT).read_text())
    [seg] = spool.glob("snapshots-*.jsonl")
    assert ck["segments"][seg.name]["offset"] == seg.stat().st_size and ck["done"] == []

    # every consumed record corrupted in place (same inode, same length): a push that read them
    # again would set them aside in quarantine.jsonl
    data = seg.read_bytes()
    lines = data.splitlines(keepends=True)
    with open(seg, "r+b") as f:
        f.write(b"".join(b"#" * (len(line) - 1) + b"\n" for line in lines))
    assert seg.stat().st_size == len(data)
    new = _snaps(artifact, streams, hour=3, seed=3)
    _post(spool, new)
    second = _push(uri, spool, experiment)
    assert second.stderr.count("logged monitor_incremental") == 1, second.stderr
    assert not (spool / report.QUARANTINE).exists(), "a consumed record was read again"
    again = _push(uri, spool, experiment)
    assert "nothing to push" in again.stderr and not (spool / report.QUARANTINE).exists(), again.stderr
    seen = _seen(uri, experiment)
    assert sorted(len(v) for v in seen.values()) == [1, 1, 1]
    _assert_last_revisions(seen, old + new)


def test_a_crash_after_the_ledger_before_the_checkpoint_logs_nothing_twice(server, artifact, streams, tmp_path):
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("crash")
    first = _snaps(artifact, streams, hour=8, seed=4)
    _post(spool, first)
    _push(uri, spool, experiment)
    before = (spool / report.CHECKPOINT).read_bytes()
    ledger_lines = len(report.read_ledger(spool))

    # a late snapshot of the consumed window and a new window, pushed by a push killed just
    # before its checkpoint: MLflow and the ledger have both, the checkpoint neither
    late = _snaps(artifact, streams, hour=8, seed=5, n=20)
    later = _snaps(artifact, streams, hour=7, seed=6)
    _post(spool, late + later)
    _stopped_push(uri, spool, experiment)
    assert (spool / report.CHECKPOINT).read_bytes() == before
    assert len(report.read_ledger(spool)) == ledger_lines + 2
    logged = _seen(uri, experiment)

    rerun = _push(uri, spool, experiment)
    assert "logged monitor_incremental" not in rerun.stderr and "nothing to push" in rerun.stderr, rerun.stderr
    assert _seen(uri, experiment) == logged
    assert len(report.read_ledger(spool)) == ledger_lines + 2
    assert (spool / report.CHECKPOINT).read_bytes() != before
    # the late snapshot made revision 1 of its window, with the whole window's aggregate
    assert sorted(len(v) for v in logged.values()) == [1, 2]
    _assert_last_revisions(logged, first + late + later)
    ledger = report.read_ledger(spool)
    last = max((e for e in ledger if e["bucket"] == first[0]["window"]["end_ms"] // HOUR), key=lambda e: e["revision"])
    assert last["revision"] == 1 and sorted(last["ids"]) == sorted(s["id"] for s in first + late)
    assert "merged" not in last, "its own earlier snapshots are not another source's"


def test_a_late_snapshot_long_after_its_window_was_consumed_is_a_revision(server, artifact, streams, tmp_path):
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("late")
    early = _snaps(artifact, streams, hour=10, seed=7) + _snaps(artifact, streams, hour=9, seed=8)
    _post(spool, early)
    _push(uri, spool, experiment)
    for k in range(3):  # more windows, more checkpoints
        _post(spool, _snaps(artifact, streams, hour=8 - k, seed=9 + k, n=20))
        _push(uri, spool, experiment)
    late = _snaps(artifact, streams, hour=10, seed=20, n=20)
    _post(spool, late)
    rev = _push(uri, spool, experiment)
    assert rev.stderr.count("logged monitor_incremental") == 1 and "[revision 1]" in rev.stderr, rev.stderr
    seen = _seen(uri, experiment)
    [(_, v0), (_, v1)] = seen[0]
    assert v1 == v0 + sum(s["seen"] for s in late)
    assert "nothing to push" in _push(uri, spool, experiment).stderr


def test_compaction_removes_only_consumed_segments_and_keeps_refusing_their_ids(server, artifact, streams,
                                                                              tmp_path):  # fmt: skip
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("compact")
    small = ["--segment-bytes", "1"]  # a segment per record
    pushed = _snaps(artifact, streams, hour=12, seed=30) + _snaps(artifact, streams, hour=11, seed=31)
    _post(spool, pushed, extra=small)
    _push(uri, spool, experiment)
    # a window still open (it ends in the future): its segment must survive compaction
    now = int(time.time() * 1000)
    [open_snap] = simulate(MONITOR, artifact, streams["english"][:5], seed=32, start_ms=now - 1000, per_snapshot=0)
    open_snap["window"]["end_ms"] = max(open_snap["window"]["end_ms"], now)
    _post(spool, [open_snap], extra=small)
    waiting = subprocess.run(_cmd(uri, str(spool), experiment, "--grace-seconds", "3600"), capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    assert waiting.returncode == 0 and "still open" in waiting.stderr, waiting.stderr
    segments = sorted(p.name for p in spool.glob("snapshots-*.jsonl"))
    assert len(segments) == len(pushed) + 1

    compact = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "compact", "--spool", str(spool),
                              "--keep-days", "0"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert compact.returncode == 0, compact.stderr
    left = sorted(p.name for p in spool.glob("snapshots-*.jsonl"))
    assert left == segments[-1:], compact.stderr  # the open window's, the newest
    assert f"removed {len(pushed)} segment(s)" in compact.stderr, compact.stderr
    assert [s["id"] for s in report.read_spool(spool)] == [open_snap["id"]]

    # the collector (restarted: nothing of the removed segments in memory) still refuses them
    _post(spool, pushed[:3], expect=409, extra=small)
    assert "nothing to push" in _push(uri, spool, experiment, "--grace-seconds", "3600").stderr
    seen = _seen(uri, experiment)
    assert sorted(len(v) for v in seen.values()) == [1, 1]
    _assert_last_revisions(seen, pushed)
    # a retention keeps recent segments; then the open window is pushed and compaction frees it too
    keep = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "compact", "--spool", str(spool),
                           "--keep-days", "1"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert keep.returncode == 0 and "removed 0 segment(s)" in keep.stderr, keep.stderr


# ---------------------------------------------------------------------------------------------
# a bucket
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    import boto3  # noqa: PLC0415

    with _moto(tmp_path_factory.mktemp("moto")) as url:
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **MOTO_CREDENTIALS)
        client.create_bucket(Bucket="snapshots")
        yield {"url": url, "client": client}


def _env(s3: dict) -> dict:
    return dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=s3["url"])  # fmt: skip


def _put(s3: dict, prefix: str, snaps: list) -> None:
    for s in snaps:
        s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/{bucket_spool.snapshot_key(s)}",
                                Body=_dump(s), IfNoneMatch="*")  # fmt: skip


def test_a_bucket_push_reads_only_new_objects_and_survives_a_crash_before_the_checkpoint(server, s3, artifact,
                                                                                          streams):  # fmt: skip
    uri, prefix, experiment = server["uri"], "incremental", _experiment("bucket")
    source, env = f"s3://snapshots/{prefix}", _env(s3)
    first = _snaps(artifact, streams, hour=6, seed=40) + _snaps(artifact, streams, hour=5, seed=41)
    _put(s3, prefix, first)
    one = _push(uri, source, experiment, env=env)
    assert f"{len(first)} object(s), {len(first)} read from the bucket" in one.stderr, one.stderr
    two = _push(uri, source, experiment, env=env)
    assert f"{len(first)} object(s), 0 read from the bucket" in two.stderr and "nothing to push" in two.stderr

    late = _snaps(artifact, streams, hour=6, seed=42, n=20)
    _put(s3, prefix, late)
    three = _push(uri, source, experiment, env=env)
    assert f"{len(first) + 1} object(s), 1 read from the bucket" in three.stderr, three.stderr
    assert "[revision 1]" in three.stderr, three.stderr

    # a push killed after its ledger write, before the checkpoint: the next one reads the new
    # objects again, finds them in the ledger and logs nothing twice
    later = _snaps(artifact, streams, hour=4, seed=43)
    _put(s3, prefix, later)
    key = f"{prefix}/{bucket_spool.CHECKPOINT}"
    before = s3["client"].get_object(Bucket="snapshots", Key=key)["Body"].read()
    _stopped_push(uri, source, experiment, "--lease-seconds", "2", env=env)
    assert s3["client"].get_object(Bucket="snapshots", Key=key)["Body"].read() == before
    logged = _seen(uri, experiment)
    rerun = _push(uri, source, experiment, "--lease-seconds", "2", env=env)
    assert "logged monitor_incremental" not in rerun.stderr and "nothing to push" in rerun.stderr, rerun.stderr
    assert f"{len(later)} read from the bucket" in rerun.stderr, rerun.stderr
    assert _seen(uri, experiment) == logged
    assert sorted(len(v) for v in logged.values()) == [1, 1, 2]
    _assert_last_revisions(logged, first + late + later)
    final = _push(uri, source, experiment, env=env)
    assert "0 read from the bucket" in final.stderr and "nothing to push" in final.stderr, final.stderr
