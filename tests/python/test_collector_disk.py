"""A collector whose disk fills (issue #16 item 3), on a real small disk: a 256 KiB tmpfs mounted
as the spool (root only; skipped with the reason otherwise), a real `report.py serve` on it, a
real npm monitor (the built package in Node) and the session's real `mlflow server`.

A ballast file leaves room for a few snapshots; the stream is then refused with 507 SPOOL_FULL
(a coded body), `/healthz` says so, the spool stays readable with exactly the snapshots answered
201 (no torn line), the npm monitor keeps its snapshot (`lastError` shows 507). Once the ballast
is deleted the held snapshots are sent again and stored, a restarted collector knows them all,
and `report.py push` logs every snapshot to MLflow once.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import _free_port  # noqa: E402, F401
from test_report import (  # noqa: E402, F401  (fixtures used by name)
    HOUR,
    MONITOR,
    ROOT,
    TOKEN,
    Collector,
    _client,
    _dump,
    _push,
    english_artifact,
    english_pipeline,
    mlflow_server,
    simulate,
    streams,
)

from skedge import report  # noqa: E402

NODE_PKG = ROOT / "pkg" / "node.mjs"
pytestmark = [
    pytest.mark.skipif(not MONITOR.exists(), reason="target/release/skedge-monitor is not built"),
    pytest.mark.skipif(not NODE_PKG.exists(), reason="the npm package pkg/ is not built (scripts/build.sh)"),
]

#: Room the ballast leaves on the disk: a few snapshots, never the whole stream.
ROOM = 8 << 10

# The npm monitor as a Node service uses it: predictions, a closed window, flushes on command.
NODE_CLIENT = """
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const [pkg, artifact, url, token] = process.argv.slice(2);
const { Model } = await import(pkg);
const model = Model.fromBytes(readFileSync(artifact));
const monitor = model.monitor({ sampleRate: 1, seed: 5 });
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'predict') {
    for (const t of ['great food', 'terrible service, cold soup', 'the wait was long']) model.predict(t);
    console.log(JSON.stringify(monitor.snapshot()));
  } else {
    console.log(JSON.stringify(await monitor.flush(url, { token })));
  }
}
"""


@pytest.fixture()
def disk(tmp_path):
    """A 256 KiB tmpfs at tmp_path/disk, unmounted afterwards whatever happens."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the test runs as root here and on CI)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


class NodeMonitor:
    """The Node client above, one command per line."""

    def __init__(self, tmp: Path, artifact: Path, url: str):
        script = tmp / "client.mjs"
        script.write_text(NODE_CLIENT)
        self.proc = subprocess.Popen(["node", str(script), NODE_PKG.as_uri(), str(artifact), url, TOKEN],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the Node client exited {self.proc.wait(10)}"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(60)


def _health(c: Collector) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{c.port}/healthz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _fill(mnt: Path, room: int) -> Path:
    """A ballast file taking all of the disk's free space but `room` bytes."""
    ballast = mnt / "ballast"
    vfs = os.statvfs(mnt)
    size = vfs.f_bavail * vfs.f_frsize - room
    with open(ballast, "wb") as f:
        for _ in range(size // 4096):
            f.write(b"\0" * 4096)
        f.flush()
        os.fsync(f.fileno())
    return ballast


def test_full_disk_refuses_with_507_keeps_what_it_took_and_recovers(disk, english_artifact, mlflow_server, streams,
                                                                     tmp_path):  # fmt: skip
    # Not test_report's `registered`: imported here it would be a second session fixture, registering
    # monitor_en versions that test_report's own expects to create as 1 and 2.
    artifact = english_artifact
    t_window = (int(time.time() * 1000) // HOUR - 5) * HOUR  # a closed window, five hours ago
    snaps = simulate(MONITOR, artifact, streams["english"][:240], seed=31, per_snapshot=3, start_ms=t_window + 60_000)
    assert len(snaps) * min(len(_dump(s)) for s in snaps) > 4 * ROOM, "the stream must not fit in the room"

    spool = disk  # the collector's log goes beside the spool: tmp_path, not the small disk
    c = Collector(spool).start()
    node = None
    try:
        ballast = _fill(disk, ROOM)
        stored, held = [], []
        for i, s in enumerate(snaps):
            status, body = c.post(_dump(s))
            if status != 201:
                assert status == 507, (status, body)
                assert body["code"] == "SPOOL_FULL" and set(body) == {"code", "error"}, body
                assert "not stored" in body["error"]
                held = snaps[i:]
                break
            stored.append(s)
        assert stored and held, f"{len(stored)} stored before the disk was full, {len(held)} held"

        # Full: the collector keeps serving, says why, and takes nothing half-way.
        assert c.post(_dump(held[0]))[0] == 507, "a retry while still full"
        assert c.post(_dump(stored[0]))[1]["code"] == "DUPLICATE"
        status, health = _health(c)
        assert (status, health["ok"], health["code"], health["snapshots"]) == (507, False, "SPOOL_FULL", len(stored))
        segments = sorted(spool.glob("snapshots-*.jsonl"))
        assert all(seg.read_bytes().endswith(b"\n") for seg in segments), "a torn line was left behind"
        lines = [x for seg in segments for x in seg.read_bytes().splitlines()]
        assert [json.loads(x)["snapshot"]["id"] for x in lines] == [s["id"] for s in stored]
        assert [s["id"] for s in report.read_spool(spool)] == [s["id"] for s in stored]

        # The npm monitor's snapshot: refused with 507, kept, lastError says why.
        node = NodeMonitor(tmp_path, artifact, f"http://127.0.0.1:{c.port}/v1/snapshots")
        node_snap = node.ask("predict")
        refused = node.ask("flush")
        assert (refused["sent"], refused["pending"], refused["lastError"]["status"], refused["lastError"]["code"]) \
            == (0, 1, 507, "SPOOL_FULL"), refused

        # Space freed: health tells at once, every held snapshot is stored on its retry.
        ballast.unlink()
        assert _health(c) == (200, {"ok": True, "snapshots": len(stored)})
        assert [c.post(_dump(s))[0] for s in held] == [201] * len(held)
        assert node.ask("flush") == {"sent": 1, "rejected": 0, "pending": 0, "dropped": 0, "lastError": None}
    finally:
        if node:
            node.close()
        c.stop()

    everything = [*snaps, node_snap]
    c = Collector(spool).start()  # a restart reads the spool: nothing accepted was lost
    try:
        assert _health(c) == (200, {"ok": True, "snapshots": len(everything)})
    finally:
        c.stop()
    ids = [s["id"] for s in report.read_spool(spool)]
    assert len(ids) == len(set(ids)) and set(ids) == {s["id"] for s in everything}

    # Into MLflow: each window's `seen` is the sum over its snapshots, each counted once.
    experiment = f"skedge-disk-{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # the second push logs nothing
        done = _push(spool, mlflow_server, "--experiment", experiment, "--close-all")
        assert done.returncode == 0, done.stdout + done.stderr
    client = _client(mlflow_server)
    [run] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    seen = sorted((m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, "seen"))
    by_window: dict = {}
    for s in everything:
        end = (s["window"]["end_ms"] // HOUR + 1) * HOUR  # push's windows: by the snapshot's end
        by_window[end] = by_window.get(end, 0) + s["seen"]
    assert seen == sorted(by_window.items()), (seen, by_window)


def _doc() -> dict:
    return {"format": "skedge-monitor-snapshot", "version": 1, "id": uuid.uuid4().hex,
            "model": {"name": "disk", "version": "1", "sha256": "ab" * 32},
            "window": {"index": 0, "start_ms": 1_767_225_600_000, "end_ms": 1_767_225_660_000},
            "sample_rate": 1.0, "seen": 2, "dropped": 0, "classes": ["neg", "pos"],
            "stats": {"count": 2, "label_counts": [1, 1], "confidence": None, "oov": None,
                      "length": [0, 0, 2] + [0] * 13, "latency": None},
            "texts": []}  # fmt: skip


def test_a_segment_a_refused_append_created_gets_its_folder_entry_fsynced_once_a_record_is_stored(disk, monkeypatch):
    """The disk fills as a new segment starts: the refused append has created the segment file.
    Once space is freed the next record there is acknowledged, so the folder (the segment's entry)
    is fsync'ed too, or a power cut could lose the whole segment with its acknowledged record
    (before: the folder was fsync'ed only when the file did not exist yet, so never). os.fsync is
    wrapped to record what it syncs, and still syncs it."""
    spool = report.Spool(disk, segment_bytes=1)  # a segment per record
    try:
        assert spool.store(*report.parse_snapshot(json.dumps(_doc()).encode()))
        ballast = _fill(disk, 0)
        held = report.parse_snapshot(json.dumps(_doc()).encode())
        with pytest.raises(report.SpoolFull):
            spool.store(*held)
        first, second = sorted(disk.glob("snapshots-*.jsonl"))
        assert second.stat().st_size == 0, "the refused append left the new segment, empty"
        ballast.unlink()
        synced, real = [], os.fsync

        def fsync(fd: int) -> None:
            synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        assert spool.store(*held)
        monkeypatch.undo()
        assert synced == [os.path.realpath(second), os.path.realpath(disk)], synced
        assert [s["id"] for s in report.read_spool(disk)] == [json.loads(first.read_bytes())["snapshot"]["id"],
                                                              held[0].id]  # fmt: skip
    finally:
        spool.close()
