"""Snapshots through object storage (issue #16 item 2), against real servers on 127.0.0.1: moto's
S3 server (started here) and the session's `mlflow server` (conftest.py `server`: sqlite, or
PostgreSQL + S3 on scripts/test_team.sh).

- `report.py serve --spool s3://…` stores each snapshot as its own object under
  `snapshots/<model>/<version>/<window>/<id>.json`, written only if absent: 201, then 409 for the
  same id (also from a restarted collector), 503 SPOOL_UNAVAILABLE when the bucket fails;
- two `report.py push --from s3://…` started at once log every window to MLflow once (metric
  history points counted), the ledger object has one line per window;
- a push stopped after MLflow logged a window and before its ledger line, then SIGKILLed while it
  holds the lease: the next push takes the lease over, logs nothing twice and loses nothing;
- the same crash, then a late snapshot of that window: the window is logged whole as its next
  revision, none of its snapshots left out;
- a push paused that long and then resumed is fenced: its ledger write fails, it exits 2, and
  MLflow still has every window once;
- the lease records its holder's `--lease-seconds` and a waiter waits that, not its own: a
  `compact --lease-seconds 1` never takes over a live push holding 600 s (it waits for its
  release), a dead holder's lease is taken over once its recorded length passed (shorter or longer
  than the waiter's own), a lease of the version before (no length) is waited the waiter's own, and
  a malformed or hostile one (not a number, infinite, huge, tiny, not JSON, too deep, control
  characters) never crashes the waiter nor makes it wait beyond `MAX_LEASE_SECONDS`;
- `--cache DIR`: a later push reads only new objects; objects that are not snapshots (or not under
  their own key) are set aside in `ledger/quarantine.jsonl`, once;
- one snapshot id under two keys is counted once when a window from before records is read again
  by id (`BucketSource.find`);
- an object gone between the listing and its read is not set aside (no quarantine line): a later
  listing that shows it again reads it then, and it is its window's next revision;
- `report.py compact --from s3://…` deletes, under the push lease (taken over from a dead push),
  listing by pages and deleting by batches, only the consumed snapshot objects past the retention:
  never one not consumed yet, one set aside as not a snapshot, or the ledger objects; a later push
  reads only the new object and adds it to its window's record, a retry written again under a
  deleted key is never read nor counted, and a collector started after its id was logged refuses
  it (409); a key not of the snapshot-key shape (a control character) is kept and counted, never
  stops the compaction of the others, and never reaches the log; a batch DeleteObjects refuses is
  deleted one key at a time;
- a window from before records whose objects were compacted takes no partial revision: the late
  snapshot is set aside with the reason, nothing is logged; unless the first push without a
  checkpoint (an upgrade's) wrote its missing record from its objects while they were there;
- a second, different document under a snapshot id already read (in the same push, or logged for
  another model) is set aside with the reason and its document, once, never logged nor silently
  dropped; compaction then deletes it (the quarantine holds it).
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

from conftest import moto_bucket, moto_env  # noqa: E402
from test_report import (  # noqa: E402, F401  (fixtures used by name)
    HOUR,
    MONITOR,
    SCRIPTS,
    Collector,
    _client,
    _dump,
    _export_joblib,
    english_pipeline,
    simulate,
    streams,
)

from skedge import report  # noqa: E402
from skedge import spool as bucket_spool  # noqa: E402

pytestmark = pytest.mark.skipif(not MONITOR.exists(), reason="target/release/skedge-monitor is not built")

WINDOWS = 6


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 (its own, stopped at the end of the module) and a client."""
    with moto_bucket(tmp_path_factory.mktemp("moto"), "snapshots") as found:
        yield found


def _env(s3: dict) -> dict:
    return moto_env(s3["url"])


@pytest.fixture(scope="module")
def artifact(english_pipeline, streams, tmp_path_factory) -> Path:
    return _export_joblib(english_pipeline, streams["validation"], tmp_path_factory.mktemp("bucket"),
                          "monitor_bucket", version="")  # fmt: skip


@pytest.fixture(scope="module")
def windows(artifact, streams) -> list:
    """Snapshots of WINDOWS closed one-hour windows (two monitors each: several objects a window)."""
    t0 = (int(time.time() * 1000) // HOUR - 20) * HOUR
    texts = streams["english"]
    out = []
    for k in range(WINDOWS):
        for seed in (1, 2):
            part = texts[(k * 40 + seed * 13) % 300 :][:40]
            out += simulate(MONITOR, artifact, part, seed=100 * k + seed, start_ms=t0 + k * HOUR + seed * 60_000,
                            per_snapshot=20)  # fmt: skip
    return out


def _put_all(s3: dict, prefix: str, snaps: list) -> None:
    """What a Worker does: each snapshot as its own object, written only if absent."""
    for s in snaps:
        s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/{bucket_spool.snapshot_key(s)}",
                                Body=_dump(s), IfNoneMatch="*")  # fmt: skip


def _experiment(name: str) -> str:
    """An experiment of its own: the MLflow server outlives this module (the session's)."""
    return f"skedge-bucket-{name}-{uuid.uuid4().hex[:8]}"


def _push_cmd(uri: str, source: str, experiment: str, *extra) -> list:
    return [sys.executable, str(SCRIPTS / "report.py"), "push", "--from", source, "--tracking-uri", uri,
            "--experiment", experiment, "--window-seconds", "3600", "--grace-seconds", "0", *extra]  # fmt: skip


def _ledger(s3: dict, prefix: str) -> list:
    try:
        body = s3["client"].get_object(Bucket="snapshots", Key=f"{prefix}/ledger/pushed.jsonl")["Body"].read()
    except s3["client"].exceptions.NoSuchKey:
        return []
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def _seen_history(uri: str, experiment: str) -> list:
    """Every `seen` point of the experiment's monitoring run(s)."""
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    assert len(runs) <= 1, "one monitoring run for one model version"
    return [m for r in runs for m in client.get_metric_history(r.info.run_id, "seen")]


def _points(uri: str, experiment: str) -> list:
    """(step, timestamp) of every `seen` point of the experiment's monitoring run(s)."""
    return sorted((m.step, m.timestamp) for m in _seen_history(uri, experiment))


def _assert_each_window_once(uri: str, experiment: str, s3: dict, prefix: str, snaps: list) -> None:
    points = _points(uri, experiment)
    assert len(points) == WINDOWS and len({p[0] for p in points}) == WINDOWS, points
    ledger = _ledger(s3, prefix)
    assert len(ledger) == WINDOWS and len({e["bucket"] for e in ledger}) == WINDOWS
    assert sorted(i for e in ledger for i in e["ids"]) == sorted(s["id"] for s in snaps)


def _wait_stopped(proc: subprocess.Popen, seconds: float = 600) -> None:
    """Until `proc` stopped itself (SIGSTOP: state T in /proc); fails if it exits instead."""
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"exited {proc.returncode} before its fault point"
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        assert time.monotonic() < deadline, "the push never reached its fault point"
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------


def test_key_segments_are_injective():
    assert bucket_spool.segment("") == "-"
    assert bucket_spool.segment("-") == "%2D"
    assert bucket_spool.segment("sentiment v2") == "sentiment%20v2"
    assert bucket_spool.segment("é") == "%C3%A9"
    doc = {"id": "ab" * 16, "model": {"name": "m", "version": "", "sha256": "0" * 64},
           "window": {"index": 0, "start_ms": 5, "end_ms": 6}}  # fmt: skip
    assert bucket_spool.snapshot_key(doc) == f"snapshots/m/-/5/{'ab' * 16}.json"


def test_collector_spools_to_a_bucket(s3, windows, tmp_path, monkeypatch):
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)
    snaps = windows[:3]
    # the last --spool wins: the bucket instead of the folder Collector names
    extra = ["--spool", "s3://snapshots/collector", "--s3-endpoint-url", s3["url"]]
    c = Collector(tmp_path / "unused", extra=extra).start()
    try:
        assert [c.post(_dump(s))[0] for s in snaps] == [201, 201, 201]
        status, body = c.post(_dump(snaps[0]))
        assert (status, body["code"]) == (409, "DUPLICATE")
    finally:
        c.stop()
    c = Collector(tmp_path / "unused", extra=extra).start()  # a restarted (or another) collector
    try:
        assert c.post(_dump(snaps[1]))[0] == 409
        assert c.post(b'{"format": 1}')[0] == 422
    finally:
        c.stop()
    listed = s3["client"].list_objects_v2(Bucket="snapshots", Prefix="collector/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"collector/{bucket_spool.snapshot_key(s)}" for s in snaps)
    name = snaps[0]["model"]["name"]
    assert all(o["Key"].startswith(f"collector/snapshots/{name}/-/") for o in listed)
    stored = s3["client"].get_object(Bucket="snapshots", Key=f"collector/{bucket_spool.snapshot_key(snaps[0])}")
    assert json.loads(stored["Body"].read()) == snaps[0]

    # a bucket that fails after the collector started: 503 with a code, the client retries later
    s3["client"].create_bucket(Bucket="gone")
    c = Collector(tmp_path / "unused", extra=["--spool", "s3://gone/x", "--s3-endpoint-url", s3["url"]]).start()
    try:
        s3["client"].delete_bucket(Bucket="gone")
        status, body = c.post(_dump(snaps[0]))
        assert (status, body["code"]) == (503, "SPOOL_UNAVAILABLE"), body
    finally:
        c.stop()


@pytest.mark.team
def test_two_pushes_at_once_log_every_window_once(server, s3, windows, tmp_path):
    uri, prefix, experiment = server["uri"], "twice", _experiment("twice")
    _put_all(s3, prefix, windows)
    source = f"s3://snapshots/{prefix}"
    procs = [subprocess.Popen(_push_cmd(uri, source, experiment), env=_env(s3), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    _assert_each_window_once(uri, experiment, s3, prefix, windows)
    logged = [err.count("logged monitor_bucket") for _, err in outs]
    assert sorted(logged) == [0, WINDOWS], outs  # one push did it all, the other found it done

    again = subprocess.run(_push_cmd(uri, source, experiment), env=_env(s3), capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert again.returncode == 0 and "nothing to push" in again.stderr, again.stderr
    _assert_each_window_once(uri, experiment, s3, prefix, windows)


def _stopped_push(uri: str, s3: dict, source: str, experiment: str, at: int) -> subprocess.Popen:
    """A push that stops itself (SIGSTOP) before its `at`-th ledger write: MLflow has that window,
    the ledger not, and the push holds the lease."""
    env = dict(_env(s3), SKEDGE_PUSH_STOP_BEFORE_LEDGER_WRITE=str(at))
    proc = subprocess.Popen(_push_cmd(uri, source, experiment, "--lease-seconds", "2"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    _wait_stopped(proc)
    return proc


@pytest.mark.team
def test_push_killed_between_mlflow_and_the_ledger_then_run_again(server, s3, windows):
    uri, prefix, experiment = server["uri"], "killed", _experiment("killed")
    _put_all(s3, prefix, windows)
    source = f"s3://snapshots/{prefix}"
    proc = _stopped_push(uri, s3, source, experiment, at=3)
    try:
        assert len(_ledger(s3, prefix)) == 2 and len(_points(uri, experiment)) == 3  # really in the middle
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)

    rerun = subprocess.run(_push_cmd(uri, source, experiment, "--lease-seconds", "2"), env=_env(s3),
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "taking it over" in rerun.stderr, rerun.stderr
    # the window MLflow got before the kill is recorded, not said to be logged again
    assert rerun.stderr.count("logged monitor_bucket") == WINDOWS - 3, rerun.stderr
    assert rerun.stderr.count("recorded, not logged again") == 1, rerun.stderr
    _assert_each_window_once(uri, experiment, s3, prefix, windows)


def test_a_window_that_grew_after_a_crash_between_mlflow_and_the_ledger_is_logged_whole(server, s3, windows):
    """MLflow got part of a window from a push that died before its ledger line, and the window's
    last snapshot arrived afterwards: the point MLflow has is recorded with the ids its record
    (skedge/window/…) names, and the next push logs the whole window as the next revision, so no
    snapshot is left out (found by tests/python/faults.py: the bucket killed at that ledger write)."""
    uri, prefix, experiment = server["uri"], "grown", _experiment("grown")
    third = sorted({s["window"]["end_ms"] // HOUR for s in windows})[2]
    late = [s for s in windows if s["window"]["end_ms"] // HOUR == third][-1]
    _put_all(s3, prefix, [s for s in windows if s is not late])
    source = f"s3://snapshots/{prefix}"
    proc = _stopped_push(uri, s3, source, experiment, at=3)  # MLflow has the third window, part of it
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    _put_all(s3, prefix, [late])
    rerun = subprocess.run(_push_cmd(uri, source, experiment, "--lease-seconds", "2"), env=_env(s3),
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert rerun.returncode == 0 and "[revision 1]" in rerun.stderr, rerun.stderr
    ledger = _ledger(s3, prefix)
    part = sorted(s["id"] for s in windows if s["window"]["end_ms"] // HOUR == third and s is not late)
    recovered = [e for e in ledger if e.get("recovered")]
    assert [(e["bucket"], e["revision"], e["ids"]) for e in recovered] == [(third, 0, part)], ledger
    [whole] = [e for e in ledger if e["bucket"] == third and e["revision"] == 1]
    assert sorted(whole["ids"]) == sorted(s["id"] for s in windows if s["window"]["end_ms"] // HOUR == third)
    seen = {}
    for m in _seen_history(uri, experiment):
        seen.setdefault(m.step, []).append((m.timestamp, m.value))
    assert sorted(len(v) for v in seen.values()) == [1] * (WINDOWS - 1) + [2]
    for points in seen.values():  # the last revision of every window sums all of its snapshots
        ts, value = max(points)
        bucket = ts // HOUR - 1
        assert value == sum(s["seen"] for s in windows if s["window"]["end_ms"] // HOUR == bucket)


def test_a_paused_push_is_fenced_when_it_resumes(server, s3, windows):
    uri, prefix, experiment = server["uri"], "fenced", _experiment("fenced")
    _put_all(s3, prefix, windows)
    source = f"s3://snapshots/{prefix}"
    paused = _stopped_push(uri, s3, source, experiment, at=2)
    try:
        other = subprocess.run(_push_cmd(uri, source, experiment, "--lease-seconds", "2"), env=_env(s3),
                               capture_output=True, text=True, timeout=600)  # fmt: skip
        assert other.returncode == 0 and "taking it over" in other.stderr, other.stderr
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
    out, err = paused.communicate(timeout=600)
    assert paused.returncode == 2, err
    assert "another push" in err and "nothing was removed" in err, err
    _assert_each_window_once(uri, experiment, s3, prefix, windows)


def test_a_cache_folder_reads_each_object_once(server, s3, windows, tmp_path):
    """`--cache DIR`: objects are immutable, so a later push reads only the new ones from the
    bucket; a late snapshot is still a revision of its window, with the complete aggregate."""
    uri, prefix, experiment = server["uri"], "cached", _experiment("cached")
    _put_all(s3, prefix, windows[:-1])
    source, cache = f"s3://snapshots/{prefix}", tmp_path / "cache"

    def push() -> str:
        done = subprocess.run(_push_cmd(uri, source, experiment, "--cache", str(cache)), env=_env(s3),
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    n = len(windows) - 1
    assert f"{n} object(s), {n} read from the bucket" in push()
    assert len(list(cache.iterdir())) == n
    _put_all(s3, prefix, windows[-1:])
    late = push()
    assert f"{n + 1} object(s), 1 read from the bucket" in late and "[revision 1]" in late, late
    again = push()
    assert f"{n + 1} object(s), 0 read from the bucket" in again and "nothing to push" in again, again
    seen = sorted((m.step, m.timestamp, m.value) for m in _seen_history(uri, experiment))
    assert len(seen) == WINDOWS + 1 and seen[-1][2] == sum(s["seen"] for s in windows if s["window"]["start_ms"]
                                                           >= windows[-1]["window"]["start_ms"] // HOUR * HOUR)


def test_objects_that_are_not_snapshots_are_set_aside_once(server, s3, windows):
    """An object that is not JSON, and a valid snapshot under another snapshot's key, go to
    `ledger/quarantine.jsonl` (once, however many pushes see them: by key and ETag, so they are not
    read again); the valid windows are pushed."""
    uri, prefix, experiment = server["uri"], "odd", _experiment("odd")
    first = [s for s in windows if s["window"]["start_ms"] < windows[0]["window"]["start_ms"] + HOUR]
    _put_all(s3, prefix, first)
    put = lambda key, body: s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/{key}", Body=body)  # noqa: E731
    put(f"snapshots/x/-/0/{'0' * 32}.json", b"not json")
    put(bucket_spool.snapshot_key(dict(windows[-1], id="f" * 32)), _dump(windows[-1]))  # not its own key
    source = f"s3://snapshots/{prefix}"

    def push() -> str:
        done = subprocess.run(_push_cmd(uri, source, experiment), env=_env(s3), capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    def quarantine() -> list:
        body = s3["client"].get_object(Bucket="snapshots", Key=f"{prefix}/ledger/quarantine.jsonl")["Body"].read()
        return [json.loads(line) for line in body.splitlines()]

    push()
    # set aside by key and ETag: the next push knows them consumed without reading them
    assert f"{len(first) + 2} object(s), 0 read from the bucket" in push()
    set_aside = quarantine()
    odd = sorted([f"snapshots/x/-/0/{'0' * 32}.json", bucket_spool.snapshot_key(dict(windows[-1], id="f" * 32))])
    assert sorted(e["segment"] for e in set_aside) == odd and all(e["etag"] for e in set_aside)
    assert len(_points(uri, experiment)) == 1 and len(_ledger(s3, prefix)) == 1
    # lines of a push from before `etag`: those objects are read again and set aside once more,
    # with their ETag, then never read again
    old = b"".join(json.dumps({k: v for k, v in e.items() if k != "etag"}).encode() + b"\n" for e in set_aside)
    s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/ledger/quarantine.jsonl", Body=old)
    assert f"{len(first) + 2} object(s), 2 read from the bucket" in push()
    assert f"{len(first) + 2} object(s), 0 read from the bucket" in push()
    assert sorted(e["segment"] for e in quarantine()) == sorted(odd * 2)


def test_a_snapshot_id_under_two_keys_is_counted_once_in_a_window_from_before_records(server, s3, windows):
    """Two objects holding one snapshot id under different keys (each valid under its own: two
    monitors whose ids collide, ids being a hash of the artifact, the seed, the start time and the
    window index, and whose windows started apart), then a late snapshot of a window logged by a
    push from before window records (simulated: its records removed): the late revision adds the
    window's snapshots read again by id (`BucketSource.find`), each id once, as `fresh` and the
    folder spool count it."""
    if server.get("artifacts") is None:
        pytest.skip("needs the sqlite backend's local artifact store")
    uri, prefix, experiment = server["uri"], "twin", _experiment("twin")
    third = sorted({s["window"]["end_ms"] // HOUR for s in windows})[2]
    window = [s for s in windows if s["window"]["end_ms"] // HOUR == third]
    late, twinned = window[-1], window[0]
    _put_all(s3, prefix, [s for s in windows if s is not late])
    source = f"s3://snapshots/{prefix}"
    first = subprocess.run(_push_cmd(uri, source, experiment), env=_env(s3), capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert first.returncode == 0, first.stderr
    client = _client(uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    records = [p for p in Path(server["artifacts"]).rglob(f"skedge/window/{third}/*.json") if run.info.run_id in str(p)]
    assert records
    for p in records:
        p.unlink()
    twin = json.loads(json.dumps(twinned))
    twin["window"]["start_ms"] += 1  # same id, another folder: another key
    assert bucket_spool.snapshot_key(twin) != bucket_spool.snapshot_key(twinned)
    _put_all(s3, prefix, [twin, late])
    second = subprocess.run(_push_cmd(uri, source, experiment), env=_env(s3), capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert second.returncode == 0 and "[revision 1]" in second.stderr, second.stderr
    ts, value = max((m.timestamp, m.value) for m in _seen_history(uri, experiment) if m.timestamp // HOUR - 1 == third)
    assert value == sum(s["seen"] for s in window), (value, twinned["seen"])


#: A push whose listing is followed, before any object is read, by the removal of one object (what
#: a lifecycle rule or a compaction may do between the two): `python -c VANISH KEY ENDPOINT push …`.
VANISH = """
import sys
import boto3
from skedge import report, spool

key, url = sys.argv[1], sys.argv[2]
read = spool.BucketSource._fetch

def fetch(self, listed):
    if any(rel == key for rel, _ in listed):
        boto3.client("s3", endpoint_url=url).delete_object(Bucket=self.bucket.name, Key=self.bucket.key(key))
    return read(self, listed)

spool.BucketSource._fetch = fetch
sys.exit(report.main(sys.argv[3:]))
"""


def test_an_object_gone_between_listing_and_read_is_not_set_aside(server, s3, windows):
    """An object listed and gone when it is read is not there: not set aside as "not a valid
    snapshot record" (a quarantine line of no object, with no ETag); when a later listing shows it
    again, it is read then and logged as its window's next revision, nothing lost."""
    uri, prefix, experiment = server["uri"], "vanish", _experiment("vanish")
    _put_all(s3, prefix, windows)
    source, gone = f"s3://snapshots/{prefix}", windows[0]
    key = bucket_spool.snapshot_key(gone)
    cmd = _push_cmd(uri, source, experiment)
    first = subprocess.run([sys.executable, "-c", VANISH, key, s3["url"], *cmd[2:]], env=_env(s3),
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "quarantined" not in first.stderr and "1 gone since listed" in first.stderr, first.stderr
    listed = s3["client"].list_objects_v2(Bucket="snapshots", Prefix=f"{prefix}/ledger/")["Contents"]
    assert not [o["Key"] for o in listed if o["Key"].endswith("quarantine.jsonl")], "an absent object set aside"
    assert gone["id"] not in {i for e in _ledger(s3, prefix) for i in e["ids"]}

    _put_all(s3, prefix, [gone])  # listed again (restored, or a listing that lagged the removal)
    again = subprocess.run(cmd, env=_env(s3), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{len(windows)} object(s), 1 read from the bucket" in again.stderr, again.stderr
    assert again.stderr.count("[revision 1]") == 1, again.stderr
    ledger = _ledger(s3, prefix)
    assert sorted([i for e in ledger if e["revision"] == 0 for i in e["ids"]] + [gone["id"]]) == sorted(
        s["id"] for s in windows)  # fmt: skip
    [revision] = [e for e in ledger if e["revision"] == 1]
    assert sorted(revision["ids"]) == sorted(s["id"] for s in windows
                                             if s["window"]["end_ms"] // HOUR == gone["window"]["end_ms"] // HOUR)
    last: dict = {}
    for m in _seen_history(uri, experiment):
        last[m.step] = max(last.get(m.step, (0, 0)), (m.timestamp, m.value))
    want: dict = {}
    for s in windows:
        want[s["window"]["end_ms"] // HOUR] = want.get(s["window"]["end_ms"] // HOUR, 0) + s["seen"]
    assert {ts // HOUR - 1: v for ts, v in last.values()} == want
    final = subprocess.run(cmd, env=_env(s3), capture_output=True, text=True, timeout=600)
    assert "nothing to push" in final.stderr and f"{len(windows)} object(s), 0 read" in final.stderr, final.stderr


def _keys(s3: dict, prefix: str) -> list:
    pages = s3["client"].get_paginator("list_objects_v2").paginate(Bucket="snapshots", Prefix=f"{prefix}/")
    return sorted(o["Key"][len(prefix) + 1 :] for page in pages for o in page.get("Contents", []))


def test_compaction_deletes_only_consumed_objects_and_nothing_is_counted_twice(server, s3, windows, tmp_path,
                                                                               monkeypatch, capsys):  # fmt: skip
    uri, prefix, experiment = server["uri"], "compact", _experiment("compact")
    source = f"s3://snapshots/{prefix}"
    third = sorted({s["window"]["end_ms"] // HOUR for s in windows})[2]
    late = [s for s in windows if s["window"]["end_ms"] // HOUR == third][-1]
    early = [s for s in windows if s is not late]
    _put_all(s3, prefix, early)
    odd = f"snapshots/x/-/0/{'0' * 32}.json"
    s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/{odd}", Body=b"not json")

    def push() -> str:
        done = subprocess.run(_push_cmd(uri, source, experiment), env=_env(s3), capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    push()
    _put_all(s3, prefix, [late])  # not consumed yet: never deleted
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)
    # small pages and batches: several of each, deleting while the listing goes on
    monkeypatch.setattr(bucket_spool, "LIST_PAGE", 3)
    monkeypatch.setattr(bucket_spool, "DELETE_BATCH", 4)

    def compact(*extra) -> str:
        capsys.readouterr()
        assert report.main(["compact", "--from", source, *extra]) == 0
        return capsys.readouterr().err

    everything = _keys(s3, prefix)
    kept = compact("--keep-days", "1")
    assert "removed 0 object(s)" in kept and f"{len(early)} written within 1 day(s)" in kept, kept
    assert _keys(s3, prefix) == everything
    # a push that died holding the lease: compaction waits a whole lease, then takes it over
    lease = {"owner": "dead:1:x", "generation": 7, "released": False, "beat": 0, "written_ms": 0}
    s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/{bucket_spool.LEASE}", Body=json.dumps(lease).encode())
    out = compact("--keep-days", "0", "--lease-seconds", "1")
    assert "taking it over" in out and f"removed {len(early)} object(s)" in out, out
    assert "1 not consumed yet" in out and "1 set aside as not a valid snapshot" in out, out
    ledger_objects = sorted(k for k in everything if k.startswith(bucket_spool.LEDGER_DIR))
    assert set(ledger_objects) >= {"ledger/pushed.jsonl", "ledger/quarantine.jsonl", "ledger/checkpoint.json",
                                   bucket_spool.LEASE}  # fmt: skip
    assert _keys(s3, prefix) == sorted([*ledger_objects, odd, bucket_spool.snapshot_key(late)])
    held = json.loads(s3["client"].get_object(Bucket="snapshots", Key=f"{prefix}/{bucket_spool.LEASE}")["Body"].read())
    assert held["generation"] == 8 and held["released"] is True

    # the next push reads the late object alone and adds it to what its window's record holds
    after = push()
    assert "2 object(s), 1 read from the bucket" in after and after.count("[revision 1]") == 1, after
    last: dict = {}
    for m in _seen_history(uri, experiment):
        last[m.step] = max(last.get(m.step, (0, 0)), (m.timestamp, m.value))
    want: dict = {}
    for s in windows:
        want[s["window"]["end_ms"] // HOUR] = want.get(s["window"]["end_ms"] // HOUR, 0) + s["seen"]
    assert {ts // HOUR - 1: v for ts, v in last.values()} == want
    assert len(_points(uri, experiment)) == WINDOWS + 1

    # a retry written again under a deleted key (what the Worker's If-None-Match lets through) is
    # consumed by its key: not read, not counted; a collector started since it was logged refuses a
    # retry of one (409: it loaded the ledger's ids)
    _put_all(s3, prefix, early[:1])
    again = push()
    assert "nothing to push" in again and "3 object(s), 0 read from the bucket" in again, again
    assert len(_points(uri, experiment)) == WINDOWS + 1
    c = Collector(tmp_path / "unused", extra=["--spool", source, "--s3-endpoint-url", s3["url"]]).start()
    try:
        assert c.post(_dump(early[1]))[0] == 409
    finally:
        c.stop()
    assert "removed 2 object(s)" in compact("--keep-days", "0")
    assert _keys(s3, prefix) == sorted([*ledger_objects, odd])
    assert "nothing to push" in push()


def test_a_window_from_before_records_whose_objects_were_compacted_takes_no_partial_revision(
        server, s3, windows, monkeypatch, capsys):  # fmt: skip
    """A point logged by a push from before window records (simulated: its records removed) whose
    objects `compact` deleted: a late snapshot cannot be added to it (which snapshots the point
    holds is known from the ledger, their statistics are gone), so it is set aside with the reason,
    nothing is logged, and the next push does not read it again."""
    if server.get("artifacts") is None:
        pytest.skip("needs the sqlite backend's local artifact store")
    uri, prefix, experiment = server["uri"], "legacy", _experiment("legacy")
    source = f"s3://snapshots/{prefix}"
    third = sorted({s["window"]["end_ms"] // HOUR for s in windows})[2]
    late = [s for s in windows if s["window"]["end_ms"] // HOUR == third][-1]
    _put_all(s3, prefix, [s for s in windows if s is not late])
    cmd = _push_cmd(uri, source, experiment)
    first = subprocess.run(cmd, env=_env(s3), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    client = _client(uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    records = [p for p in Path(server["artifacts"]).rglob(f"skedge/window/{third}/*.json") if run.info.run_id in str(p)]
    assert records
    for p in records:
        p.unlink()
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)
    assert report.main(["compact", "--from", source, "--keep-days", "0"]) == 0
    assert f"removed {len(windows) - 1} object(s)" in capsys.readouterr().err
    before = _points(uri, experiment)
    _put_all(s3, prefix, [late])
    second = subprocess.run(cmd, env=_env(s3), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "quarantined window" in second.stderr and "before window records" in second.stderr, second.stderr
    assert "no longer in the spool" in second.stderr, second.stderr
    assert _points(uri, experiment) == before
    body = s3["client"].get_object(Bucket="snapshots", Key=f"{prefix}/ledger/quarantine.jsonl")["Body"].read()
    [aside] = [json.loads(line) for line in body.splitlines()]
    assert aside["ids"] == [late["id"]] and aside["snapshots"][0]["id"] == late["id"]
    third_push = subprocess.run(cmd, env=_env(s3), capture_output=True, text=True, timeout=600)
    assert "nothing to push" in third_push.stderr and "1 object(s), 0 read" in third_push.stderr, third_push.stderr
    # set aside with its document: the quarantine keeps it, the object can go
    assert report.main(["compact", "--from", source, "--keep-days", "0"]) == 0
    assert "removed 1 object(s)" in capsys.readouterr().err


def test_a_different_document_under_an_id_already_read_is_set_aside(server, s3, windows, monkeypatch, capsys):
    uri, prefix, experiment = server["uri"], "twins", _experiment("twins")
    source = f"s3://snapshots/{prefix}"
    two = sorted({s["window"]["end_ms"] // HOUR for s in windows})[:2]
    snaps = [s for s in windows if s["window"]["end_ms"] // HOUR in two]
    # another monitor's snapshot with snaps[0]'s id (ids collide), read after it (key order)
    same_push = json.loads(json.dumps(snaps[0]))
    same_push["model"]["name"] += "_twin"
    assert bucket_spool.snapshot_key(same_push) > bucket_spool.snapshot_key(snaps[0])
    _put_all(s3, prefix, [*snaps, same_push])
    cmd = _push_cmd(uri, source, experiment)

    def push() -> str:
        done = subprocess.run(cmd, env=_env(s3), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stderr

    def quarantine() -> list:
        body = s3["client"].get_object(Bucket="snapshots", Key=f"{prefix}/ledger/quarantine.jsonl")["Body"].read()
        return [json.loads(line) for line in body.splitlines()]

    first = push()
    assert "quarantined 1 snapshot(s) whose id another, different snapshot has" in first, first
    [aside] = quarantine()
    assert aside["duplicate_of"] == snaps[0]["id"] and "ids" not in aside, aside
    assert aside["snapshot"] == same_push and aside["segment"] == bucket_spool.snapshot_key(same_push)
    assert "ids collide" in aside["reason"] and aside["etag"]
    # one logged for another model already: read (its model's key does not say it consumed), set aside
    later = json.loads(json.dumps(snaps[1]))
    later["model"]["name"] += "_other"
    _put_all(s3, prefix, [later])
    second = push()
    assert "1 read from the bucket" in second and "nothing to push" in second, second
    assert quarantine()[1]["duplicate_of"] == snaps[1]["id"] and quarantine()[1]["snapshot"] == later
    assert "logged for another model" in quarantine()[1]["reason"]
    third = push()
    assert f"{len(snaps) + 2} object(s), 0 read from the bucket" in third and "nothing to push" in third, third
    assert len(quarantine()) == 2
    # the run of snaps' model only, each window with its own snapshots, each once
    points = _seen_history(uri, experiment)
    assert sorted(m.value for m in points) == sorted(
        sum(s["seen"] for s in snaps if s["window"]["end_ms"] // HOUR == b) for b in two)  # fmt: skip
    ledger = _ledger(s3, prefix)
    assert sorted(i for e in ledger for i in e["ids"]) == sorted(s["id"] for s in snaps)
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)
    assert report.main(["compact", "--from", source, "--keep-days", "0"]) == 0
    assert f"removed {len(snaps) + 2} object(s)" in capsys.readouterr().err


def test_the_first_push_without_checkpoint_writes_the_missing_record_from_the_objects(server, s3, windows,
                                                                                      monkeypatch, capsys):  # fmt: skip
    """A window logged by a push from before window records (simulated: its records removed) and
    a bucket without checkpoint (the version before wrote none this one trusts): the first push
    reads the window's objects (consumed, so not read by `fresh`) and writes the point's missing
    record; once `compact` has deleted them, a late snapshot is still the window's next revision
    with the whole window."""
    if server.get("artifacts") is None:
        pytest.skip("needs the sqlite backend's local artifact store")
    uri, prefix, experiment = server["uri"], "restore", _experiment("restore")
    source = f"s3://snapshots/{prefix}"
    third = sorted({s["window"]["end_ms"] // HOUR for s in windows})[2]
    late = [s for s in windows if s["window"]["end_ms"] // HOUR == third][-1]
    _put_all(s3, prefix, [s for s in windows if s is not late])
    cmd = _push_cmd(uri, source, experiment)

    def push() -> str:
        done = subprocess.run(cmd, env=_env(s3), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stderr

    push()
    client = _client(uri)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    [folder] = [p for p in Path(server["artifacts"]).rglob(f"skedge/window/{third}") if run.info.run_id in str(p)]
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    s3["client"].delete_object(Bucket="snapshots", Key=f"{prefix}/{bucket_spool.CHECKPOINT}")
    first = push()
    assert first.count("wrote the missing record") == 1, first
    assert f"wrote the missing record of window {third} of run {run.info.run_id}" in first, first
    [rec] = folder.glob("*.json")
    assert sorted(json.loads(rec.read_text())["ids"]) == sorted(
        s["id"] for s in windows if s["window"]["end_ms"] // HOUR == third and s is not late)  # fmt: skip
    assert "wrote the missing record" not in push()  # a checkpoint again: not looked for
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)
    assert report.main(["compact", "--from", source, "--keep-days", "0"]) == 0
    assert f"removed {len(windows) - 1} object(s)" in capsys.readouterr().err
    _put_all(s3, prefix, [late])
    after = push()
    assert after.count("[revision 1]") == 1 and "quarantined" not in after, after
    last: dict = {}
    for m in _seen_history(uri, experiment):
        last[m.step] = max(last.get(m.step, (0, 0)), (m.timestamp, m.value))
    want: dict = {}
    for s in windows:
        want[s["window"]["end_ms"] // HOUR] = want.get(s["window"]["end_ms"] // HOUR, 0) + s["seen"]
    assert {ts // HOUR - 1: v for ts, v in last.values()} == want


def test_a_key_not_of_a_snapshot_shape_never_stops_compaction(s3, monkeypatch, capsys):
    """A key that names a consumed id but is not of the shape `snapshot_key` writes (here a
    control character, which DeleteObjects' XML cannot carry: moto answers 500, AWS 400
    MalformedXML) is kept and counted, never sent: the rest is deleted, now and at every later
    compaction, and no control character reaches the log. A batch DeleteObjects refuses is
    deleted one DeleteObject at a time, each refusal recorded, never raised."""
    prefix, x = "hostile", "ab" * 16
    line = {"run_id": "r", "bucket": 1, "revision": 0, "window_seconds": 3600,
            "model": {"name": "m", "version": "1", "sha256": "0" * 64}, "ids": [x]}  # fmt: skip
    s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/ledger/pushed.jsonl",
                            Body=(json.dumps(line) + "\n").encode())  # fmt: skip
    hostile = [f"snapshots/m/1/\x01/{x}.json", f"snapshots/m/1/01/{x}.json", f"snapshots/m/1/1/{x}.json.x",
               f"snapshots/m/1/2/{x.upper()}.json", f"experiments/m/1/3/{x}.json/y"]  # fmt: skip
    shaped = [f"snapshots/m/1/{n}/{x}.json" for n in range(3)]
    for k in hostile + shaped:
        s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/{k}", Body=b"{}")
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(bucket_spool, "DELETE_BATCH", 2)
    for removed in (len(shaped), 0):
        capsys.readouterr()
        assert report.main(["compact", "--from", f"s3://snapshots/{prefix}", "--keep-days", "0"]) == 0
        err = capsys.readouterr().err
        assert f"removed {removed} object(s)" in err and f"{len(hostile)} not a snapshot key" in err, err
        assert "\x01" not in err
        assert _keys(s3, prefix) == sorted(["ledger/lease.json", "ledger/pushed.jsonl", *hostile])

    # a batch the store refuses whole: one DeleteObject per key instead, nothing raised
    source = bucket_spool.BucketSource(f"s3://snapshots/{prefix}", s3["url"], report._parse_object, log=lambda _: None)
    refused = bucket_spool.Refused()
    assert source._delete(hostile[:2], refused) == 2 and refused.count == 0
    assert _keys(s3, prefix) == sorted(["ledger/lease.json", "ledger/pushed.jsonl", *hostile[2:]])


def test_refused_deletions_are_counted_and_only_the_first_five_kept():
    refused = bucket_spool.Refused()
    for n in range(1200):
        refused.add(f"snapshots/m/1/0/{n:032x}.json", "AccessDenied: no")
    assert refused.count == 1200
    assert [k for k, _ in refused.first] == [f"snapshots/m/1/0/{n:032x}.json" for n in range(5)]


def _lease(s3: dict, prefix: str) -> dict:
    key = f"{prefix}/{bucket_spool.LEASE}"
    return json.loads(s3["client"].get_object(Bucket="snapshots", Key=key)["Body"].read())


def test_a_compact_with_a_short_lease_never_takes_over_a_live_push_holding_a_longer_one(server, s3, windows):
    """A push holding a 600 s lease is live between two renewals (150 s apart; here: stopped for
    several times the compact's own 1 s lease): `compact --lease-seconds 1` waits the holder's
    recorded 600 s, not its own 1 s, so it takes the lease only once the push released it. The push
    is never fenced, every window is in MLflow once, and the compaction then deletes them all."""
    uri, prefix, experiment = server["uri"], "longer", _experiment("longer")
    _put_all(s3, prefix, windows)
    source = f"s3://snapshots/{prefix}"
    env = dict(_env(s3), SKEDGE_PUSH_STOP_BEFORE_LEDGER_WRITE="2")
    push = subprocess.Popen(_push_cmd(uri, source, experiment, "--lease-seconds", "600"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    compact, said = None, []
    try:
        _wait_stopped(push)
        held = _lease(s3, prefix)
        compact = subprocess.Popen([sys.executable, str(SCRIPTS / "report.py"), "compact", "--from", source,
                                    "--keep-days", "0", "--lease-seconds", "1"], env=_env(s3),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for line in compact.stderr:
            said.append(line)
            if "waiting for the push lease" in line:
                break
        assert said and "waiting for the push lease" in said[-1], said
        # several of the compact's own lease lengths: the version before took the lease over here
        time.sleep(4)
        assert _lease(s3, prefix)["owner"] == held["owner"], "a live push's lease was taken over"
    finally:
        os.killpg(push.pid, signal.SIGCONT)
        if compact is not None and push.poll() is not None:
            compact.kill()
    _, err = push.communicate(timeout=600)
    assert push.returncode == 0, err
    _, rest = compact.communicate(timeout=600)
    out = "".join(said) + rest
    assert compact.returncode == 0 and "taking it over" not in out, out
    assert f"removed {len(windows)} object(s)" in out, out
    _assert_each_window_once(uri, experiment, s3, prefix, windows)
    assert held["seconds"] == 600 and held["released"] is False
    after = _lease(s3, prefix)
    assert (after["generation"], after["released"], after["seconds"]) == (held["generation"] + 1, True, 1)


def _compact_under(s3: dict, prefix: str, body: bytes, monkeypatch, capsys, *extra) -> tuple[str, dict]:
    """`report.py compact` (in this process) of a prefix holding only `lease.json` = `body`, not
    renewed by anyone: (what it logged, the lease it left)."""
    s3["client"].put_object(Bucket="snapshots", Key=f"{prefix}/{bucket_spool.LEASE}", Body=body)
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    assert report.main(["compact", "--from", f"s3://snapshots/{prefix}", "--keep-days", "0", *extra]) == 0
    return capsys.readouterr().err, _lease(s3, prefix)


@pytest.mark.parametrize(("recorded", "own", "waited"), [(3, "1", "3"), (1, "60", "1")])
def test_a_stale_lease_is_taken_over_once_its_holders_length_passed(s3, monkeypatch, capsys, recorded, own, waited):
    """A lease its holder (dead) recorded `seconds` in is taken over once it has not changed for
    that long, whether the waiter's own `--lease-seconds` is shorter or longer."""
    prefix = f"stale-{recorded}-{own}"
    dead = {"owner": "dead:1:x", "generation": 4, "released": False, "beat": 9, "written_ms": 0, "seconds": recorded}
    err, held = _compact_under(s3, prefix, json.dumps(dead).encode(), monkeypatch, capsys, "--lease-seconds", own)
    assert f"lease of dead:1:x not renewed for {waited} s: taking it over" in err, err
    assert (held["generation"], held["released"], held["seconds"]) == (5, True, float(own))


def test_a_lease_of_the_version_before_is_waited_the_takers_own_length(s3, monkeypatch, capsys):
    """`lease.json` without `seconds` (written by the version before): waited the taker's own
    `--lease-seconds`, as then; the lease it writes records it."""
    old = {"owner": "old:1:x", "generation": 2, "released": False, "beat": 3, "written_ms": 0}
    err, held = _compact_under(s3, "old-lease", json.dumps(old).encode(), monkeypatch, capsys, "--lease-seconds", "2")
    assert "lease of old:1:x not renewed for 2 s: taking it over" in err, err
    assert (held["generation"], held["released"], held["seconds"]) == (3, True, 2)


def _lease_body(seconds: str, owner: str = '"h:1:x"', generation: str = "1") -> bytes:
    return f'{{"owner": {owner}, "generation": {generation}, "released": false, "seconds": {seconds}}}'.encode()


#: (what, lease.json, seconds waited): with `--lease-seconds 1` (2 for "tiny") and a
#: `MAX_LEASE_SECONDS` of 2.
_HOSTILE = [
    ("string", _lease_body('"600"'), "1"),  # not a number: the taker's own length
    ("bool", _lease_body("true"), "1"),
    ("null", _lease_body("null"), "1"),
    ("negative", _lease_body("-5"), "1"),
    ("zero", _lease_body("0"), "1"),
    ("nan", _lease_body("NaN"), "1"),
    ("list", _lease_body("[600]"), "1"),
    ("infinite", _lease_body("1e999"), "2"),  # capped at MAX_LEASE_SECONDS
    ("huge", _lease_body("1" + "0" * 400), "2"),  # an integer float() overflows on: capped
    ("tiny", _lease_body("1e-300", generation="1" + "0" * 30), "1"),  # MIN_LEASE_SECONDS: no busy loop
    ("control", _lease_body("1", owner='"\\u001b[2Jh\\u0007"'), "1"),  # never reaches the log
    ("owner-object", _lease_body("1", owner='{"a": [1]}', generation='"7"'), "1"),
    ("deep", b"[" * 3000, "1"),  # deeper than json's recursion limit
    ("array", b"[1, 2]", "1"),
    ("binary", b"\xff\xfe not JSON", "1"),
    ("long", b"{" + b" " * 5000 + b"}", "1"),  # over MAX_LEASE_BYTES: read truncated, not JSON
]  # fmt: skip


@pytest.mark.parametrize(("body", "waited"), [c[1:] for c in _HOSTILE], ids=[c[0] for c in _HOSTILE])
def test_a_malformed_lease_length_never_makes_a_taker_wait_without_bound_or_crash(s3, monkeypatch, capsys,
                                                                                   body, waited):  # fmt: skip
    """`seconds` is outside input: one that is not a positive number is ignored (the taker's own
    length, 1 s here), an infinite or huge one is capped at `MAX_LEASE_SECONDS` (2 s here; an
    hour otherwise), a tiny one raised to `MIN_LEASE_SECONDS` (taker's own: 2 s then); a body that
    is not a JSON object is a lease of unknown length. The taker never crashes, takes the lease over
    (generation + 1, or 1) and logs no control character."""
    monkeypatch.setattr(bucket_spool, "MAX_LEASE_SECONDS", 2.0, raising=False)
    own = "2" if b"1e-300" in body else "1"  # a tiny length is raised to 1 s, not the taker's own
    err, held = _compact_under(s3, f"hostile-lease-{uuid.uuid4().hex[:8]}", body, monkeypatch, capsys,
                               "--lease-seconds", own)  # fmt: skip
    assert f"not renewed for {waited} s: taking it over" in err, err
    assert not any(ord(c) < 32 and c != "\n" for c in err), repr(err)
    assert held["generation"] in (1, 2) and held["released"] is True and held["seconds"] == float(own)


@pytest.mark.parametrize("seconds", ["0.5", "3601"])
def test_a_lease_length_out_of_range_is_a_usage_error(seconds, capsys):
    """`--lease-seconds` only in the range a waiter honours a recorded length in: a longer lease
    would be taken over live, after the hour a waiter caps it to."""
    with pytest.raises(SystemExit) as exited:
        report.main(["compact", "--from", "s3://snapshots/never", "--lease-seconds", seconds])
    assert exited.value.code == 2 and f"--lease-seconds must be 1 to 3600, not {float(seconds)}" in capsys.readouterr().err


def test_a_snapshot_whose_key_would_pass_1024_bytes_is_refused_before_anything_is_written(s3, tmp_path,
                                                                                         monkeypatch):  # fmt: skip
    """A valid name of 256 CJK characters is 2,304 bytes in a key (`%E6%BC%A2` a character): S3 and
    R2 refuse a key over 1,024 bytes (moto does not), so the collector answered 503 to that snapshot
    for ever and the edge retried it for ever. It is refused with 422 and its code (the edge does
    not retry a 422), nothing written; a key of exactly 1,024 bytes, prefix included, is stored."""
    for k, v in _env(s3).items():
        monkeypatch.setenv(k, v)

    def doc(name: str) -> dict:
        return {"format": "skedge-monitor-snapshot", "version": 1, "id": uuid.uuid4().hex,
                "model": {"name": name, "version": "1", "sha256": "ab" * 32},
                "window": {"index": 0, "start_ms": 1_767_225_600_000, "end_ms": 1_767_225_660_000},
                "sample_rate": 1.0, "seen": 2, "dropped": 0, "classes": ["neg", "pos"],
                "stats": {"count": 2, "label_counts": [1, 1], "confidence": None, "oov": None,
                          "length": [0, 0, 2] + [0] * 13, "latency": None},
                "texts": []}  # fmt: skip

    prefix = "keylen"
    fits, over, widest = doc("漢" * 105 + "a" * 8), doc("漢" * 105 + "a" * 9), doc("漢" * 256)
    assert len(f"{prefix}/{bucket_spool.snapshot_key(fits)}".encode()) == 1024  # S3's limit, to the byte
    c = Collector(tmp_path / "unused", extra=["--spool", f"s3://snapshots/{prefix}", "--s3-endpoint-url",
                                              s3["url"]]).start()  # fmt: skip
    try:
        assert c.post(_dump(fits))[0] == 201
        for d in (over, widest, over):  # and again: refused as before, not a duplicate
            status, body = c.post(_dump(d))
            assert (status, body["code"]) == (422, "SNAPSHOT_KEY_TOO_LONG"), body
            assert "over S3's and R2's limit of 1024" in body["error"], body
    finally:
        c.stop()
    listed = s3["client"].list_objects_v2(Bucket="snapshots", Prefix=f"{prefix}/")["Contents"]
    assert [o["Key"] for o in listed] == [f"{prefix}/{bucket_spool.snapshot_key(fits)}"]
