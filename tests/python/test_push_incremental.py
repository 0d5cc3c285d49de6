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
  (also in a folder consumed before) and is a revision, and the same crash before the checkpoint
  logs nothing twice and reads nothing; objects are consumed by key (the ledger and quarantine),
  so the checkpoint keeps nothing per object, a push without one reads nothing consumed, one of
  the version before (`folders`) is ignored, and an experiment snapshot logged for one arm only is
  read again (`partial`) until every arm is;
- a checkpoint is trusted only with proof: a segment restored, cut and regrown, or recreated in
  place, or an offset inside a line, is read again from its start (nothing set aside twice, nothing
  lost); a malformed checkpoint is a full read, never a crash or exit 1, and compact removes
  nothing by it; a bucket's clock jumping or lagging, or another prefix's checkpoint, loses nothing;
- a window from before records whose snapshots were compacted takes no partial revision (the late
  snapshot is set aside), unless a push reading the spool whole (no checkpoint) wrote its missing
  record while the snapshots were there (an arm's experiment window too), from snapshots of that model, version and window only (an
  id colliding with another model's restores nothing, and is never part of a revision); a window
  waiting for its drift whose run is gone is dropped;
- a snapshot stored twice is counted once, another document under its id is set aside (once); in
  a bucket also another experiment's snapshot (another champion's folder) under a logged id.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import MOTO_CREDENTIALS, _free_port, _http_ok, _stop_group, _wait_until, moto_bucket, moto_env  # noqa: E402
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


def _stopped_push(uri: str, source, experiment: str, *extra, env=None,
                  stop=("SKEDGE_PUSH_STOP_BEFORE_CHECKPOINT", "1")) -> None:
    """A push that stops itself at its fault point `stop` (by default after its ledger lines,
    before its checkpoint), and is SIGKILLed there."""
    env = dict(env or os.environ, **dict([stop]))
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

    # consumed records corrupted in place (same inode, same length) between the fingerprinted
    # ones (the segment's first line and its last consumed one): a push that read them again
    # would set them aside in quarantine.jsonl
    data = seg.read_bytes()
    lines = data.splitlines(keepends=True)
    starts = [sum(map(len, lines[:k])) for k in range(len(lines))]
    middle = range(1, len(lines) - 1)
    assert len(middle) >= 3
    with open(seg, "r+b") as f:
        for k in middle:
            f.seek(starts[k])
            f.write(b"#" * (len(lines[k]) - 1) + b"\n")
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
    with moto_bucket(tmp_path_factory.mktemp("moto"), "snapshots") as found:
        yield found


def _env(s3: dict) -> dict:
    return moto_env(s3["url"])


def _quarantined(s3: dict, prefix: str) -> list:
    """The lines of a bucket's quarantine."""
    body = s3["client"].get_object(Bucket="snapshots", Key=f"{prefix}/ledger/quarantine.jsonl")["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def _other_champion(doc: dict) -> dict:
    """An experiment snapshot under `doc`'s id whose arms are another model's (another folder)."""
    twin = json.loads(json.dumps(doc))
    for arm in twin["arms"]:
        arm["model"]["name"] += "_other"
    return twin


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

    # a push killed after its ledger write, before the checkpoint: the next one finds the new
    # objects' ids in the ledger (by key: not even read again) and logs nothing twice
    later = _snaps(artifact, streams, hour=4, seed=43)
    _put(s3, prefix, later)
    key = f"{prefix}/{bucket_spool.CHECKPOINT}"
    before = s3["client"].get_object(Bucket="snapshots", Key=key)["Body"].read()
    _stopped_push(uri, source, experiment, "--lease-seconds", "2", env=env)
    assert s3["client"].get_object(Bucket="snapshots", Key=key)["Body"].read() == before
    logged = _seen(uri, experiment)
    rerun = _push(uri, source, experiment, "--lease-seconds", "2", env=env)
    assert "logged monitor_incremental" not in rerun.stderr and "nothing to push" in rerun.stderr, rerun.stderr
    total = len(first) + len(late) + len(later)
    assert f"{total} object(s), 0 read from the bucket" in rerun.stderr, rerun.stderr
    assert _seen(uri, experiment) == logged
    assert sorted(len(v) for v in logged.values()) == [1, 1, 2]
    _assert_last_revisions(logged, first + late + later)
    final = _push(uri, source, experiment, env=env)
    assert "0 read from the bucket" in final.stderr and "nothing to push" in final.stderr, final.stderr


# ---------------------------------------------------------------------------------------------
# a checkpoint is trusted only with proof (fingerprints), and never crashes a push
# ---------------------------------------------------------------------------------------------


def _store(spool: Path, snaps: list, segment_bytes: int = 64 << 20) -> None:
    """Stored by the collector's own `Spool` (no HTTP: faster, and a window ahead is accepted)."""
    sp = report.Spool(spool, segment_bytes=segment_bytes)
    try:
        for s in snaps:
            assert sp.store(report.Snapshot.model_validate(s), s)
    finally:
        sp.close()


def _quarantine(spool: Path) -> list:
    return report.read_ledger(spool, report.QUARANTINE)


def test_a_segment_not_holding_what_was_consumed_is_read_again(server, artifact, streams, tmp_path):
    """A segment restored in place from an older copy (same inode) and grown again by the
    collector: the checkpoint's offset falls inside a new record, its fingerprint of the last
    consumed line does not match, and the segment is read from its start; what was logged or set
    aside before stays so (no second quarantine line, the snapshot ahead is not logged)."""
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("restored")
    a = _snaps(artifact, streams, hour=9, seed=50)
    [ahead] = _snaps(artifact, streams, hour=-30, seed=51, n=20)  # its window ends in 29 h
    _store(spool, [ahead, *a])
    [seg] = spool.glob("snapshots-*.jsonl")
    with open(seg, "ab") as f:
        f.write(b'{"not": "a record"}\n')
    backup = seg.read_bytes()
    _store(spool, _snaps(artifact, streams, hour=8, seed=52))
    first = _push(uri, spool, experiment)
    assert first.stderr.count("logged monitor_incremental") == 2, first.stderr
    aside = _quarantine(spool)
    assert len(aside) == 2 and sorted(e.get("ids", ["line"])[0] for e in aside) == sorted([ahead["id"], "line"])

    with open(seg, "r+b") as f:  # `cp backup seg`: O_TRUNC keeps the inode
        f.truncate(0)
        f.write(backup)
    b = _snaps(artifact, streams, hour=7, seed=53)
    _store(spool, b)  # the collector appends past the checkpoint's offset again
    second = _push(uri, spool, experiment)
    assert _quarantine(spool) == aside, "set aside twice"
    assert second.stderr.count("logged monitor_incremental") == 1, second.stderr
    assert "read again whole" in second.stderr, second.stderr
    seen = _seen(uri, experiment)
    assert sorted(len(v) for v in seen.values()) == [1, 1, 1]
    assert max(seen[max(seen)])[1] == sum(s["seen"] for s in b)
    assert "nothing to push" in _push(uri, spool, experiment).stderr


def test_a_mid_line_offset_or_a_recreated_segment_is_read_from_its_start(server, artifact, streams, tmp_path):
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("recreated")
    _store(spool, _snaps(artifact, streams, hour=12, seed=60))
    _push(uri, spool, experiment)
    # the segments removed by hand, the collector starts again: a new snapshots-000001.jsonl
    # (the file system may hand the freed inode out again), shorter or longer than the old one
    [seg] = spool.glob("snapshots-*.jsonl")
    seg.unlink()
    b = _snaps(artifact, streams, hour=11, seed=61, n=100)
    _store(spool, b)
    _push(uri, spool, experiment)
    # a checkpoint whose offset is not at a line's end (7 bytes into the next record)
    c = _snaps(artifact, streams, hour=10, seed=62)
    _store(spool, c)
    ck = json.loads((spool / report.CHECKPOINT).read_text())
    ck["segments"][seg.name]["offset"] += 7
    (spool / report.CHECKPOINT).write_text(json.dumps(ck))
    third = _push(uri, spool, experiment)
    assert third.returncode == 0 and not (spool / report.QUARANTINE).exists(), third.stderr
    seen = _seen(uri, experiment)
    _assert_last_revisions(seen, _snaps(artifact, streams, hour=12, seed=60) + b + c)
    assert sorted(len(v) for v in seen.values()) == [1, 1, 1]


def test_a_hostile_checkpoint_means_a_full_read_never_a_crash(server, artifact, streams, tmp_path, capsys):
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("hostile")
    small = 1  # a segment per record, so that compact has something it could remove
    _store(spool, _snaps(artifact, streams, hour=14, seed=70), segment_bytes=small)
    _push(uri, spool, experiment)
    good = json.loads((spool / report.CHECKPOINT).read_text())
    [name, *_] = sorted(good["segments"])
    everything, k = [], 0

    def segment(**change):
        return lambda c: c["segments"][name].update(change)

    mutations = [
        segment(offset="12"), segment(offset=12.5), segment(offset=True), segment(offset=-1),
        segment(ino=None), segment(last=[0]), segment(head=7),
        lambda c: c["segments"].__setitem__(name, [1, 2]),
        lambda c: c.__setitem__("segments", []),
        lambda c: c.__setitem__("done", [[1]]),
        lambda c: c.__setitem__("arms", [["a", "b", 3, "d"]]),
        lambda c: c.__setitem__("pending_drift", ["x"]),
        lambda c: c.__setitem__("pending_drift", [{"run_id": 1}]),
        lambda c: c.__setitem__("ledger", [c["ledger"][0], "x", c["ledger"][2]]),
        lambda c: c.__setitem__("ledger", {"ino": 1}),
        lambda c: c.__setitem__("spool", [0, 0]),
        lambda c: c.__setitem__("version", True),
        lambda c: c.update(surprise=1),
    ]
    for mutate in mutations:
        k += 1
        ck = json.loads(json.dumps(good))
        mutate(ck)
        (spool / report.CHECKPOINT).write_text(json.dumps(ck))
        new = _snaps(artifact, streams, hour=13, seed=70 + k, n=20)
        everything += new
        _store(spool, new, segment_bytes=small)
        # in this process (a crash is an exception here): as 40 runs of report.py, 160 s of MLflow imports
        assert report.main(_cmd(uri, str(spool), experiment)[2:]) == 0, (ck, capsys.readouterr().err)
        capsys.readouterr()
        good = json.loads((spool / report.CHECKPOINT).read_text())
        (spool / report.CHECKPOINT).write_text(json.dumps(ck))  # compact meets it as push did
        assert report.main(["compact", "--spool", str(spool), "--keep-days", "0"]) == 0, ck
        err = capsys.readouterr().err
        assert "removed 0 segment(s)" in err, (ck, err)
        (spool / report.CHECKPOINT).write_text(json.dumps(good))
    # not JSON, nested past the recursion limit, not a file
    for body in (b"{", b"[" * 100_000 + b"]" * 100_000):
        (spool / report.CHECKPOINT).write_bytes(body)
        assert report.main(_cmd(uri, str(spool), experiment)[2:]) == 0, capsys.readouterr().err
    (spool / report.CHECKPOINT).unlink()
    (spool / report.CHECKPOINT).mkdir()
    done = subprocess.run(_cmd(uri, str(spool), experiment), capture_output=True, text=True, timeout=600)
    assert done.returncode != 1, done.stderr
    assert not (spool / report.QUARANTINE).exists()
    seen = _seen(uri, experiment)
    _assert_last_revisions(seen, _snaps(artifact, streams, hour=14, seed=70) + everything)


def test_compact_trusts_the_checkpoint_no_more_than_push(server, artifact, streams, tmp_path):
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("compact-trust")
    small = ["--segment-bytes", "1"]
    pushed = _snaps(artifact, streams, hour=16, seed=80) + _snaps(artifact, streams, hour=15, seed=81)
    _post(spool, pushed, extra=small)
    _push(uri, spool, experiment)
    _post(spool, _snaps(artifact, streams, hour=14, seed=82, n=20), extra=small)  # the newest, not pushed

    def compact() -> str:
        done = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "compact", "--spool", str(spool),
                               "--keep-days", "0"], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    # a ledger cut since the checkpoint (push would read everything again): nothing removed
    ledger = (spool / report.LEDGER).read_bytes()
    (spool / report.LEDGER).write_bytes(ledger[: ledger.index(b"\n") + 1])
    assert "removed 0 segment(s)" in compact()
    (spool / report.LEDGER).write_bytes(ledger)
    # a consumed segment rewritten in place since (its fingerprint fails): kept, the others go
    segs = sorted(spool.glob("snapshots-*.jsonl"))
    data = segs[0].read_bytes()
    with open(segs[0], "r+b") as f:
        f.write(data.replace(b'"seen":', b'"seen" :', 1)[: len(data)])
    out = compact()
    assert f"removed {len(pushed) - 1} segment(s)" in out, out
    assert sorted(spool.glob("snapshots-*.jsonl")) == [segs[0], segs[-1]]
    # the collector starting while compact removes a segment it listed: not a crash
    report._cut_torn_tail(segs[1])
    _post(spool, pushed[:2], expect=409, extra=small)


def test_a_late_snapshot_of_a_window_without_record_is_never_a_partial_revision(server, artifact, streams,
                                                                                tmp_path):  # fmt: skip
    """A point logged before window records (simulated: its record removed from the artifact
    store) whose snapshots `compact` removed: a late snapshot cannot be added to it, so it is set
    aside with the reason, not logged as a revision counting only itself (readers take the
    latest point)."""
    if server.get("artifacts") is None:
        pytest.skip("needs the sqlite backend's local artifact store")
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("legacy")
    small = ["--segment-bytes", "1"]
    old = _snaps(artifact, streams, hour=18, seed=90)
    _post(spool, old, extra=small)
    _push(uri, spool, experiment)
    _post(spool, _snaps(artifact, streams, hour=17, seed=91, n=20), extra=small)
    _push(uri, spool, experiment)
    compact = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "compact", "--spool", str(spool),
                              "--keep-days", "0"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert f"removed {len(old)} segment(s)" in compact.stderr, compact.stderr
    bucket = old[0]["window"]["end_ms"] // HOUR
    records = list(Path(server["artifacts"]).rglob(f"skedge/window/{bucket}/*.json"))
    client = _client(uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    records = [p for p in records if run.info.run_id in str(p)]
    assert records
    for p in records:
        p.unlink()
    before = _seen(uri, experiment)
    late = _snaps(artifact, streams, hour=18, seed=92, n=20)
    _post(spool, late, extra=small)
    third = _push(uri, spool, experiment)
    assert "quarantined window" in third.stderr and "before window records" in third.stderr, third.stderr
    assert _seen(uri, experiment) == before
    [aside] = _quarantine(spool)
    assert aside["ids"] == [late[0]["id"]] and aside["snapshots"][0]["id"] == late[0]["id"]


def _pushed_before_records(server, spool, experiment: str, old: list, other: list, extra: list) -> tuple:
    """`old` and `other` posted and pushed, then `old`'s window made one logged by a push from
    before window records (its record folder removed) in a spool without checkpoint: (the
    window's bucket, its record folder, the MLflow run)."""
    import shutil  # noqa: PLC0415

    uri = server["uri"]
    _post(spool, old + other, extra=extra)
    _push(uri, spool, experiment)
    bucket = old[0]["window"]["end_ms"] // HOUR
    client = _client(uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    [folder] = [p for p in Path(server["artifacts"]).rglob(f"skedge/window/{bucket}") if run.info.run_id in str(p)]
    shutil.rmtree(folder)
    (spool / report.CHECKPOINT).unlink()
    return bucket, folder, run


def test_the_first_push_without_checkpoint_writes_the_missing_record_while_the_spool_holds_it(
        server, artifact, streams, tmp_path):  # fmt: skip
    """A window logged by a push from before window records (simulated: its records removed), on
    a spool with no checkpoint (that push wrote none): the first push of this version reads the
    spool whole, finds the point's snapshots in it (the ledger line names them, the point's counts
    match) and writes the point's missing record. So once `compact` has removed those snapshots,
    a late one is still that window's next revision with the whole aggregate, not set aside."""
    if server.get("artifacts") is None:
        pytest.skip("needs the sqlite backend's local artifact store")
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("restore")
    small = ["--segment-bytes", "1"]
    old = _snaps(artifact, streams, hour=22, seed=120)
    other = _snaps(artifact, streams, hour=21, seed=121, n=20)
    bucket, folder, _ = _pushed_before_records(server, spool, experiment, old, other, small)

    first = _push(uri, spool, experiment)
    assert first.stderr.count("wrote the missing record") == 1, first.stderr
    assert f"window {bucket} of run" in first.stderr, first.stderr
    [rec] = folder.glob("*.json")
    assert sorted(json.loads(rec.read_text())["ids"]) == sorted(s["id"] for s in old)
    compact = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "compact", "--spool", str(spool),
                              "--keep-days", "0"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert f"removed {len(old + other) - 1} segment(s)" in compact.stderr, compact.stderr
    late = _snaps(artifact, streams, hour=22, seed=122, n=20)
    _post(spool, late, extra=small)
    third = _push(uri, spool, experiment)
    assert "[revision 1]" in third.stderr and "wrote the missing record" not in third.stderr, third.stderr
    assert not (spool / report.QUARANTINE).exists()
    seen = _seen(uri, experiment)
    assert sorted(len(v) for v in seen.values()) == [1, 2]
    _assert_last_revisions(seen, old + other + late)


def test_an_experiment_window_from_before_records_gets_its_record_while_the_spool_holds_it(server, tmp_path):
    """As for monitoring windows: an arm's experiment window logged by a push from before window
    records (simulated: both arms' records removed), on a spool with no checkpoint, gets its
    missing record from the first push (its ledger line names the snapshot, the point's served,
    feedback and snapshot counts match), so once `compact` has removed the snapshot a late one is
    each arm's next revision with the whole window, not set aside."""
    import shutil  # noqa: PLC0415

    if server.get("artifacts") is None:
        pytest.skip("needs the sqlite backend's local artifact store")
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("restore-arms")
    small = ["--segment-bytes", "1"]
    old, other = _experiment_snapshots(tmp_path, (22, 21))
    _post(spool, [old, other], extra=small)
    _push(uri, spool, experiment)
    client = _client(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 2
    bucket = old["window"]["end_ms"] // HOUR
    folders = [p for p in Path(server["artifacts"]).rglob(f"skedge/experiment/{bucket}")
               if any(r.info.run_id in str(p) for r in runs)]  # fmt: skip
    assert len(folders) == 2
    for folder in folders:
        shutil.rmtree(folder)
    (spool / report.CHECKPOINT).unlink()

    first = _push(uri, spool, experiment)
    assert first.stderr.count(f"wrote the missing record of experiment window {bucket} of run") == 2, first.stderr
    for folder in folders:
        [rec] = folder.glob("*.json")
        assert json.loads(rec.read_text())["ids"] == [old["id"]]
    compact = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "compact", "--spool", str(spool),
                              "--keep-days", "0"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "removed 1 segment(s)" in compact.stderr, compact.stderr
    [late] = _experiment_snapshots(tmp_path, (22,), seed=10)
    assert late["id"] != old["id"]
    _post(spool, [late], extra=small)
    third = _push(uri, spool, experiment)
    assert third.stderr.count("[revision 1]") == 2 and "wrote the missing record" not in third.stderr, third.stderr
    assert not (spool / report.QUARANTINE).exists()
    for r in runs:
        sha = r.data.tags["skedge.sha256"]
        want = sum(a["served"] for d in (old, late) for a in d["arms"] if a["model"]["sha256"] == sha)
        points = [m for m in client.get_metric_history(r.info.run_id, "skedge.served")
                  if m.timestamp // HOUR - 1 == bucket]  # fmt: skip
        assert len(points) == 2 and max((m.timestamp, m.value) for m in points)[1] == want


def test_a_colliding_id_of_another_model_is_never_aggregated_into_a_window_from_before_records(
        server, artifact, streams, tmp_path):  # fmt: skip
    """Snapshot ids are `xxh64(instance, index)`: a challenger's monitor started with the same seed
    in the same millisecond on the same traffic has the champion's ids, counts and another label
    histogram. With the champion's snapshot of a window logged before window records gone (its
    segment compacted) and the challenger's under that id in the spool, the first push without a
    checkpoint does not restore the window's record from it (it says why), and a late snapshot of
    that window is set aside, not a revision that aggregates the challenger's snapshot."""
    if server.get("artifacts") is None:
        pytest.skip("needs the sqlite backend's local artifact store")
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("collide")
    small = ["--segment-bytes", "1"]
    old = _snaps(artifact, streams, hour=23, seed=140)
    other = _snaps(artifact, streams, hour=21, seed=141, n=20)
    bucket, folder, run = _pushed_before_records(server, spool, experiment, old, other, small)

    twin = json.loads(json.dumps(old[0]))
    twin["model"] = dict(twin["model"], name="monitor_incremental_challenger",
                         sha256=hashlib.sha256(b"challenger").hexdigest())  # fmt: skip
    twin["stats"]["label_counts"] = twin["stats"]["label_counts"][::-1]
    assert twin["stats"]["label_counts"] != old[0]["stats"]["label_counts"]
    # the champion's segment removed as `compact` removes a consumed one, and the challenger's
    # snapshot appended as the collector writes a record (today's refuses its id, 409: the ledger
    # names it; a spool assembled from two, or written before that rule, can hold it)
    [held] = [p for p in spool.glob(f"{report.SEGMENT_PREFIX}*.jsonl") if old[0]["id"] in p.read_text()]
    held.unlink()
    n = max(int(p.stem[len(report.SEGMENT_PREFIX) :]) for p in spool.glob(f"{report.SEGMENT_PREFIX}*.jsonl"))
    line = json.dumps({"received_ms": int(time.time() * 1000), "snapshot": twin}) + "\n"
    (spool / f"{report.SEGMENT_PREFIX}{n + 1:06d}.jsonl").write_text(line, encoding="utf-8")

    first = _push(uri, spool, experiment)
    assert "wrote the missing record" not in first.stderr, first.stderr
    assert f"the missing record of window {bucket} of run {run.info.run_id} not written" in first.stderr, first.stderr
    assert old[0]["id"] in first.stderr and "another model" in first.stderr, first.stderr
    assert not list(folder.glob("*.json"))

    late = _snaps(artifact, streams, hour=23, seed=142, n=20)
    _post(spool, late, extra=small)
    second = _push(uri, spool, experiment)
    assert "[revision 1]" not in second.stderr, second.stderr
    # the challenger's snapshot: another document under an id logged for the champion, set aside
    # (never logged for the challenger either) by the first push, which read it
    assert "whose id another, different snapshot has" in first.stderr, first.stderr
    [dup, aside] = report.read_ledger(spool, report.QUARANTINE)
    assert dup["duplicate_of"] == old[0]["id"] and dup["snapshot"] == twin, dup
    assert aside["ids"] == sorted(s["id"] for s in late) and "another model" in aside["reason"], aside
    seen = _seen(uri, experiment)
    assert sorted(len(v) for v in seen.values()) == [1, 1]
    _assert_last_revisions(seen, old + other)


def test_find_takes_the_first_snapshot_of_an_id_that_is_of_the_window(artifact, streams, tmp_path):
    """`LocalSource.find` with `of_window`: under an id held first by another model's snapshot
    and then by the window's own, the window's own (the first of each id `match` takes); a
    `restore_records` or a revision never gets the other one."""
    [mine] = _snaps(artifact, streams, hour=23, seed=150, n=20)
    twin = json.loads(json.dumps(mine))
    twin["model"] = dict(twin["model"], name="monitor_incremental_challenger")
    spool = tmp_path / "spool"
    spool.mkdir()
    for n, doc in enumerate((twin, mine), 1):
        line = json.dumps({"received_ms": n, "snapshot": doc}) + "\n"
        (spool / f"{report.SEGMENT_PREFIX}{n:06d}.jsonl").write_text(line, encoding="utf-8")
    source, bucket = report.LocalSource(spool), mine["window"]["end_ms"] // HOUR
    assert source.find({mine["id"]}) == [twin]
    match = lambda s: report.of_window(s, mine["model"], bucket, HOUR)  # noqa: E731
    assert source.find({mine["id"]}, match) == [mine]
    assert source.find({mine["id"]}, lambda s: report.of_window(s, mine["model"], bucket + 1, HOUR)) == []


def test_a_different_document_under_an_id_already_read_is_set_aside_an_identical_one_counted_once(
        server, artifact, streams, tmp_path):  # fmt: skip
    """A spool holding a snapshot twice (identical: counted once, nothing set aside) and then
    another document with its id (ids collide: set aside with the reason and its document, by its
    line, once, also when the spool is read again whole); the rest is logged."""
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("twins")
    snaps = _snaps(artifact, streams, hour=24, seed=160)
    a = snaps[0]
    twin = json.loads(json.dumps(a))
    twin["seen"] += 1
    spool.mkdir()
    for n, doc in enumerate([*snaps, a, twin], 1):
        line = json.dumps({"received_ms": n, "snapshot": doc}) + "\n"
        (spool / f"{report.SEGMENT_PREFIX}{n:06d}.jsonl").write_text(line, encoding="utf-8")
    first = _push(uri, spool, experiment)
    assert "quarantined 1 snapshot(s) whose id another, different snapshot has" in first.stderr, first.stderr
    [aside] = _quarantine(spool)
    assert aside["duplicate_of"] == a["id"] and aside["snapshot"] == twin and "ids" not in aside, aside
    assert aside["segment"] == f"{report.SEGMENT_PREFIX}{len(snaps) + 2:06d}.jsonl" and "ids collide" in aside["reason"]
    seen = _seen(uri, experiment)
    assert sorted(len(v) for v in seen.values()) == [1]
    _assert_last_revisions(seen, snaps)
    assert "nothing to push" in _push(uri, spool, experiment).stderr
    (spool / report.CHECKPOINT).unlink()  # read whole again: nothing set aside twice
    assert "nothing to push" in _push(uri, spool, experiment).stderr
    assert len(_quarantine(spool)) == 1 and _seen(uri, experiment) == seen
    compact = subprocess.run([sys.executable, str(SCRIPTS / "report.py"), "compact", "--spool", str(spool),
                              "--keep-days", "0"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert f"removed {len(snaps) + 1} segment(s)" in compact.stderr, compact.stderr


def test_pending_drift_keeps_no_ids_and_drops_windows_of_gone_runs(server, artifact, streams, tmp_path):
    uri, spool, experiment = server["uri"], tmp_path / "spool", _experiment("pending")
    snaps = _snaps(artifact, streams, hour=20, seed=95) + _snaps(artifact, streams, hour=19, seed=96)
    _post(spool, snaps)
    done = subprocess.run(_cmd(uri, str(spool), experiment), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ck = json.loads((spool / report.CHECKPOINT).read_text())
    assert len(ck["pending_drift"]) == 2
    assert all(set(e) == {"run_id", "bucket", "revision", "window_seconds", "model"} for e in ck["pending_drift"])
    client = _client(uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    client.delete_run(run.info.run_id)
    again = _push(uri, spool, experiment, "--artifact", str(artifact))
    assert "is gone from MLflow" in again.stderr, again.stderr
    assert json.loads((spool / report.CHECKPOINT).read_text())["pending_drift"] == []
    skipped = [e for e in report.read_ledger(spool) if e.get("kind") == "drift"]
    assert len(skipped) == 2 and all(e["skipped"] == "its run is gone from MLflow" for e in skipped)


#: moto's S3 server whose clock (LastModified) is off by the seconds written in the file argv[2].
SKEWED_MOTO = """
import datetime, sys
from pathlib import Path
import moto.s3.models as m
from moto.core import utils
real = utils.utcnow
def skewed():
    p = Path(sys.argv[2])
    return real() + datetime.timedelta(seconds=float(p.read_text()) if p.exists() else 0.0)
m.utcnow = skewed
from moto.server import main
sys.exit(main(["-H", "127.0.0.1", "-p", sys.argv[1]]))
"""


@pytest.fixture(scope="module")
def skewed_s3(tmp_path_factory):
    import boto3  # noqa: PLC0415

    base = tmp_path_factory.mktemp("skewed-moto")
    port, skew = _free_port(), base / "skew"
    with open(base / "moto.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", SKEWED_MOTO, str(port), str(skew)], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until(lambda: _http_ok(url + "/moto-api/"), proc, "moto server", 60, base / "moto.log")
            client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **MOTO_CREDENTIALS)
            client.create_bucket(Bucket="snapshots")
            yield {"url": url, "client": client, "skew": lambda s: skew.write_text(str(s))}
        finally:
            _stop_group(proc)


def test_a_bucket_checkpoint_trusts_keys_not_clocks(server, skewed_s3, artifact, streams):
    """The bucket's clock jumps 3 h ahead then back, objects appear with a LastModified 2 h
    older than some read before, and a checkpoint copied from another prefix: every snapshot is
    still logged (consumption is told by keys and the ledger; the checkpoint is bound to the prefix
    and the ledger)."""
    s3, uri, experiment = skewed_s3, server["uri"], _experiment("clocks")
    source, env = "s3://snapshots/clocks", _env(skewed_s3)
    everything = _snaps(artifact, streams, hour=12, seed=100)
    _put(s3, "clocks", everything)
    _push(uri, source, experiment, env=env)
    s3["skew"](3 * 3600)
    for hour, seed, skew in ((11, 101, 3 * 3600), (10, 102, 0), (9, 103, -2 * 3600)):
        s3["skew"](skew)
        new = _snaps(artifact, streams, hour=hour, seed=seed)
        _put(s3, "clocks", new)
        everything += new
        s3["skew"](0)
        _push(uri, source, experiment, env=env)
    seen = _seen(uri, experiment)
    assert sorted(len(v) for v in seen.values()) == [1, 1, 1, 1]
    _assert_last_revisions(seen, everything)
    nothing = _push(uri, source, experiment, env=env)
    assert "nothing to push" in nothing.stderr and " 0 read from the bucket" in nothing.stderr, nothing.stderr

    # another prefix's checkpoint copied in: not this prefix's, ignored (a full read)
    other = _snaps(artifact, streams, hour=12, seed=104)
    _put(s3, "elsewhere", other)
    _push(uri, "s3://snapshots/elsewhere", _experiment("elsewhere"), env=env)
    key = bucket_spool.CHECKPOINT
    body = s3["client"].get_object(Bucket="snapshots", Key=f"elsewhere/{key}")["Body"].read()
    s3["client"].put_object(Bucket="snapshots", Key=f"clocks/{key}", Body=body)
    late = _snaps(artifact, streams, hour=8, seed=105)
    _put(s3, "clocks", late)
    after = _push(uri, source, experiment, env=env)
    assert after.stderr.count("logged monitor_incremental") == 1, after.stderr
    _assert_last_revisions(_seen(uri, experiment), everything + late)


# ---------------------------------------------------------------------------------------------
# a bucket: consumed by key (the ledger and quarantine), nothing per object in the checkpoint
# ---------------------------------------------------------------------------------------------


def _object_checkpoint(s3: dict, prefix: str) -> dict:
    key = f"{prefix}/{bucket_spool.CHECKPOINT}"
    return json.loads(s3["client"].get_object(Bucket="snapshots", Key=key)["Body"].read())


def test_a_bucket_is_consumed_by_key_and_its_checkpoint_keeps_nothing_per_object(server, s3, artifact, streams):
    """The checkpoint holds no folder or object (it grew about as the objects: ~113 B each); a
    late object in a folder consumed long ago is read alone; with the checkpoint gone nothing
    consumed is read again (the ledger says it, by key); a checkpoint of the version before
    (`folders`, per window folder) is ignored, never trusted: nothing is lost or logged twice."""
    uri, prefix, experiment = server["uri"], "bykey", _experiment("bykey")
    source, env = f"s3://snapshots/{prefix}", _env(s3)
    first = _snaps(artifact, streams, hour=6, seed=110) + _snaps(artifact, streams, hour=5, seed=111)
    first.append(dict(first[0], id=uuid.uuid4().hex))  # a second object in first[0]'s window folder
    _put(s3, prefix, first)
    _push(uri, source, experiment, env=env)
    ck = _object_checkpoint(s3, prefix)
    assert set(ck) == {"version", "where", "partial", "ledger", "quarantine", "pending_drift"} and ck["partial"] == []

    # a late snapshot in a folder consumed before (same monitor instance, same window start):
    # only it is read, not the folder's two others, and it is that window's next revision
    late = dict(first[0], id=uuid.uuid4().hex)
    _put(s3, prefix, [late])
    folder = bucket_spool.snapshot_key(late).rsplit("/", 1)[0]
    assert len(s3["client"].list_objects_v2(Bucket="snapshots", Prefix=f"{prefix}/{folder}/")["Contents"]) == 3
    one = _push(uri, source, experiment, env=env)
    assert f"{len(first) + 1} object(s), 1 read from the bucket" in one.stderr, one.stderr
    assert "[revision 1]" in one.stderr, one.stderr

    # no checkpoint at all: still nothing read (the ids in the keys are in the ledger)
    s3["client"].delete_object(Bucket="snapshots", Key=f"{prefix}/{bucket_spool.CHECKPOINT}")
    gone = _push(uri, source, experiment, env=env)
    assert f"{len(first) + 1} object(s), 0 read from the bucket" in gone.stderr and "nothing to push" in gone.stderr

    # the version before's checkpoint, as it wrote it after that push (every folder consumed,
    # with the signature of its listing): ignored, and the push after it loses nothing
    listed = s3["client"].list_objects_v2(Bucket="snapshots", Prefix=f"{prefix}/snapshots/")["Contents"]
    folders: dict = {}
    for o in listed:
        rel = o["Key"][len(prefix) + 1 :]
        folders.setdefault(rel.rsplit("/", 1)[0] + "/", []).append((rel, o["ETag"]))
    old = {k: v for k, v in _object_checkpoint(s3, prefix).items() if k != "partial"}
    old.update(done=[], arms=[], folders={f: [len(objs), hashlib.sha256("".join(
        f"{rel}\t{etag}\n" for rel, etag in sorted(objs)).encode()).hexdigest()] for f, objs in folders.items()})
    s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/{bucket_spool.CHECKPOINT}",
                            Body=json.dumps(old).encode())  # fmt: skip
    later = [dict(first[3], id=uuid.uuid4().hex)] + _snaps(artifact, streams, hour=4, seed=112)  # first[3]: hour 5
    _put(s3, prefix, later)
    after = _push(uri, source, experiment, env=env)
    total = len(first) + 1 + len(later)
    assert f"{total} object(s), {len(later)} read from the bucket" in after.stderr, after.stderr
    assert "folders" not in _object_checkpoint(s3, prefix)
    seen = _seen(uri, experiment)
    assert sorted(len(v) for v in seen.values()) == [1, 2, 2]
    _assert_last_revisions(seen, first + [late] + later)
    final = _push(uri, source, experiment, env=env)
    assert f"{total} object(s), 0 read from the bucket" in final.stderr and "nothing to push" in final.stderr


def _experiment_snapshots(tmp_path: Path, hours: tuple, seed: int = 0) -> list:
    """An experiment snapshot (two models, shadow mode) per window `hours` hours ago."""
    import skedge  # noqa: PLC0415

    cases = SCRIPTS.parent / "tests" / "fixtures" / "cases"
    models = []
    for name in ("lr_multinomial_3class_strings_fr", "ovr_lr_3class_fr"):
        out = tmp_path / f"{name}.skedge"
        subprocess.run([str(SCRIPTS.parent / "target" / "release" / "skedge"), "pack",
                        str(cases / f"{name}.interchange.json"), "-o", str(out)],
                       check=True, capture_output=True)  # fmt: skip
        models.append(skedge.Model.load(out))
    texts = [json.loads(line)["text"] for line in (cases / "ovr_lr_3class_fr.expected.jsonl").read_text().splitlines()]
    now = int(time.time() * 1000) // HOUR
    docs = []
    for k, hour in enumerate(hours):
        exp = skedge.Experiment(*models, seed=seed + k, mode="shadow")
        for t in texts[:40]:
            exp.predict(t, key=t)
        doc = exp.snapshot()
        doc["window"]["start_ms"], doc["window"]["end_ms"] = (now - hour) * HOUR + 1, (now - hour) * HOUR + 60_000
        docs.append(doc)
    return docs


def test_a_bucket_experiment_snapshot_logged_for_one_arm_is_read_until_every_arm_is(server, s3, tmp_path,
                                                                                     monkeypatch, capsys):  # fmt: skip
    """An experiment snapshot's key does not name its arms: one a push logged for one arm only
    (killed before the other arm's window) and that the next push left waiting (its windows
    still open for that push) is named in the checkpoint's `partial`, so the push after reads it
    again and logs its other arm, instead of taking it for consumed because the ledger has it;
    `compact` deletes neither object until both are logged for every arm."""
    uri, prefix, experiment = server["uri"], "arms", _experiment("arms")
    source, env = f"s3://snapshots/{prefix}", _env(s3)
    docs = _experiment_snapshots(tmp_path, (6, 5))
    _put(s3, prefix, docs)
    # killed after its first arm window's ledger line, before the second's (the first arm's other
    # window is in MLflow, not in the ledger; the second arm has nothing anywhere)
    _stopped_push(uri, source, experiment, "--lease-seconds", "2", env=env,
                  stop=("SKEDGE_PUSH_STOP_BEFORE_LEDGER_WRITE", "2"))
    ledger = [json.loads(x) for x in s3["client"].get_object(Bucket="snapshots", Key=f"{prefix}/ledger/pushed.jsonl")[
        "Body"].read().splitlines()]  # fmt: skip
    assert len(ledger) == 1 and ledger[0]["kind"] == "experiment"
    [half] = ledger[0]["ids"]

    waiting = _push(uri, source, experiment, "--lease-seconds", "2", "--grace-seconds", str(10 * 3600), env=env)
    assert "still open" in waiting.stderr, waiting.stderr
    assert _object_checkpoint(s3, prefix)["partial"] == [half]
    for k, v in env.items():
        monkeypatch.setenv(k, v)

    def compact() -> str:
        capsys.readouterr()
        assert report.main(["compact", "--from", source, "--keep-days", "0"]) == 0
        return capsys.readouterr().err

    kept = compact()
    assert "removed 0 object(s)" in kept and "kept 2 (2 not consumed yet)" in kept, kept

    done = _push(uri, source, experiment, "--lease-seconds", "2", env=env)
    assert "2 object(s), 2 read from the bucket" in done.stderr, done.stderr
    client = _client(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 2
    want = {a["model"]["sha256"]: sorted(d["arms"][i]["served"] for d in docs) for i, a in enumerate(docs[0]["arms"])}
    served = {r.data.tags["skedge.sha256"]: sorted(m.value for m in client.get_metric_history(r.info.run_id,
                                                                                              "skedge.served"))
              for r in runs}  # fmt: skip
    assert served == want, "each arm's two windows, each once"
    assert _object_checkpoint(s3, prefix)["partial"] == []
    again = _push(uri, source, experiment, "--lease-seconds", "2", env=env)
    assert "2 object(s), 0 read from the bucket" in again.stderr and "nothing to push" in again.stderr, again.stderr
    assert "removed 2 object(s)" in compact()
    after = _push(uri, source, experiment, "--lease-seconds", "2", env=env)
    assert "0 object(s)" in after.stderr and "nothing to push" in after.stderr, after.stderr


def test_a_bucket_checkpoint_is_checked_field_by_field_and_marks_end_a_line(s3, monkeypatch):
    """`partial` must be a list of short strings, and a checkpoint of the version before
    (`folders`) is not this version's: either is ignored (the ledger still says what is
    consumed). A ledger mark inside a line is no mark a push wrote: not held (read from its start)."""
    good = {"version": report.CHECKPOINT_VERSION, "where": "s3://snapshots/p/", "partial": ["a" * 32], "ledger": None}
    assert report.checked_checkpoint(good) == good
    for partial in ([1], "x", ["a" * 200], None, [["a"]]):
        assert report.checked_checkpoint(dict(good, partial=partial)) == {}, partial
    assert report.checked_checkpoint(dict(good, folders={})) == {}
    lines = b'{"kind": "drift", "ids": []}\n{"ids": ["' + b"b" * 32 + b'"]}\n'
    s3["client"].put_object(Bucket="snapshots", Key="marks/ledger/pushed.jsonl", Body=lines)
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)
    source = bucket_spool.BucketSource("s3://snapshots/marks", s3["url"], report._parse_object, log=lambda _: None)
    at_line = lines.index(b"\n") + 1
    for end, held in ((at_line, True), (at_line + 3, False), (0, True), (len(lines), True)):
        mark = [end, hashlib.sha256(lines[:end]).hexdigest()]
        assert source.holds("pushed.jsonl", mark) is held, end
    mark = [at_line, hashlib.sha256(lines[:at_line]).hexdigest()]
    assert source.head("pushed.jsonl", mark) == [{"kind": "drift", "ids": []}]


def test_an_experiment_twin_under_another_champion_is_read_and_set_aside(server, s3, tmp_path, monkeypatch, capsys):
    """Another experiment's snapshot (another champion: another key folder) under an id already
    logged and vouched for (the checkpoint's ledger mark is past it): its key does not say it
    consumed (a ledger line names the id for the champion's folder only), so it is read and set
    aside with its document, once; the logged one is not read again; `compact` then deletes both."""
    uri, prefix, experiment = server["uri"], "exptwin", _experiment("exptwin")
    source, env = f"s3://snapshots/{prefix}", _env(s3)
    [doc] = _experiment_snapshots(tmp_path, (6,))
    _put(s3, prefix, [doc])
    _push(uri, source, experiment, env=env)  # both arms logged
    assert "nothing to push" in _push(uri, source, experiment, env=env).stderr  # the checkpoint vouches for the id
    twin = _other_champion(doc)
    _put(s3, prefix, [twin])
    out = _push(uri, source, experiment, env=env).stderr
    assert "2 object(s), 1 read from the bucket" in out and "nothing to push" in out, out
    assert "quarantined 1 snapshot(s) whose id another, different snapshot has" in out, out
    [aside] = _quarantined(s3, prefix)
    assert aside["duplicate_of"] == doc["id"] and aside["snapshot"] == twin and "ids" not in aside, aside
    assert aside["segment"] == bucket_spool.snapshot_key(twin) and aside["etag"]
    client = _client(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert sorted(r.data.tags["skedge.sha256"] for r in runs) == sorted(a["model"]["sha256"] for a in doc["arms"])
    again = _push(uri, source, experiment, env=env).stderr
    assert "2 object(s), 0 read from the bucket" in again and "nothing to push" in again, again
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    assert report.main(["compact", "--from", source, "--keep-days", "0"]) == 0
    assert "removed 2 object(s)" in capsys.readouterr().err


def test_an_experiment_twin_of_an_id_set_aside_is_set_aside_not_read_for_ever(server, s3, tmp_path, monkeypatch,
                                                                               capsys):  # fmt: skip
    """An experiment snapshot set aside (its window ends ahead of push's clock) and, later, another
    experiment's (another champion's folder) under its id: the second is not the one set aside, so
    its key does not say it consumed; it is read once and set aside as a second document of the id
    (before: read at every push and skipped, never set aside nor deleted)."""
    uri, prefix, experiment = server["uri"], "exptwinaside", _experiment("exptwinaside")
    source, env = f"s3://snapshots/{prefix}", _env(s3)
    [doc] = _experiment_snapshots(tmp_path, (6,))
    ahead = json.loads(json.dumps(doc))
    ahead["window"]["start_ms"], ahead["window"]["end_ms"] = (int(time.time() * 1000) // HOUR + 3) * HOUR + 1, (
        int(time.time() * 1000) // HOUR + 3) * HOUR + 60_000  # fmt: skip
    _put(s3, prefix, [ahead])
    first = _push(uri, source, experiment, env=env).stderr
    assert "the device's clock is ahead" in first and "nothing to push" in first, first
    twin = _other_champion(doc)
    _put(s3, prefix, [twin])
    out = _push(uri, source, experiment, env=env).stderr
    assert "2 object(s), 1 read from the bucket" in out and "nothing to push" in out, out
    assert "quarantined 1 snapshot(s) whose id another, different snapshot has" in out, out
    aside = _quarantined(s3, prefix)
    assert [a.get("duplicate_of") for a in aside] == [None, doc["id"]] and aside[1]["snapshot"] == twin, aside
    assert "set aside for another model" in aside[1]["reason"]
    again = _push(uri, source, experiment, env=env).stderr
    assert "2 object(s), 0 read from the bucket" in again and "nothing to push" in again, again
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    assert report.main(["compact", "--from", source, "--keep-days", "0"]) == 0
    assert "removed 2 object(s)" in capsys.readouterr().err


def test_the_log_of_twins_set_aside_counts_snapshots_not_ids(server, s3, artifact, streams):
    """Two other documents under one id (three monitors' ids collide; other model folders, read
    after the first by key): both are set aside, and the log says 2 snapshots of 1 id (before: 1,
    the ids)."""
    uri, prefix, experiment = server["uri"], "twincount", _experiment("twincount")
    source, env = f"s3://snapshots/{prefix}", _env(s3)
    [a] = _snaps(artifact, streams, hour=30, seed=170, n=20)
    twins = []
    for suffix in ("_b", "_c"):
        twin = json.loads(json.dumps(a))
        twin["model"]["name"] += suffix
        twins.append(twin)
    _put(s3, prefix, [a, *twins])
    out = _push(uri, source, experiment, env=env).stderr
    assert "quarantined 2 snapshot(s) whose id another, different snapshot has (1 id(s);" in out, out
    aside = _quarantined(s3, prefix)
    assert [(x["duplicate_of"], x["snapshot"]) for x in aside] == [(a["id"], t) for t in twins], aside
