"""Load figures of issue #16: the Worker with monitoring on, and the collector under a stream.

    scripts/bench.sh --only load [--duration S | --quick] [--connections N] [--clients N] [--save] [--no-build]
    .venv/bin/python scripts/bench_load.py [same options]        (needs pkg/ and target/release/skedge)

Everything runs on 127.0.0.1 and is stopped at the end; the load generator is autocannon
(`scripts/bench_load.mjs`), each run lasting `--duration` seconds (60):

1. **Worker**: the Worker example (tests/js/examples/worker) under `wrangler dev` (workerd) serving
   the `word_tfidf_lr_binary` fixture, with monitoring on (`MONITOR_URL` = a real `report.py
   serve` with a folder spool, every prediction sampled, 5-second windows, so snapshots flow during
   the run); `--connections` (10) POST /predict at once. After the run the last window is flushed
   (POST /monitor/flush) and the spool is read: the snapshots received and the predictions they
   count, at least every 2xx answer and at most every request sent (requests in flight when
   autocannon stopped were predicted, their answers not counted).
2. **Collector**: `report.py serve` with a folder spool, then with an S3 spool on moto's server, each
   under `--clients` (8) connections POSTing real snapshots of the npm monitor, every request a new
   id (a new record, fsync'ed, or a new object). The spool is read back afterwards: it must hold
   every snapshot answered 201, and none but those sent.

Figures: requests/s (mean over the run), latency p50/p99/max, errors, timeouts, non-2xx; the load
average before and after each part (the machine is shared: the figures are only comparable at the
same load). Writes `.work/bench/load.{json,md}` (`--out DIR`: DIR/load.{json,md}); `--save` also replaces the section "Load (issue
#16)" of benches/RESULTS.md (`scripts/bench.sh --save` keeps it). Exits 1 when a target is missed
(an error, a timeout, a non-2xx answer, a snapshot missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".work" / "bench"
HERE = WORK / "load"
PY = sys.executable
NODE_DRIVER = ROOT / "scripts" / "bench_load.mjs"
SKEDGE = ROOT / "target" / "release" / "skedge"
PKG = ROOT / "pkg"
CASE = "word_tfidf_lr_binary"
RESULTS = ROOT / "benches" / "RESULTS.md"
SECTION = "## Load (issue #16)"
WINDOW_SECONDS = 5

ENV = {**os.environ, "CI": "true", "WRANGLER_SEND_METRICS": "false", "CLOUDFLARE_CF_FETCH_ENABLED": "false",
       "NO_COLOR": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
       # moto accepts any credentials; never the machine's real ones
       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
ENV.pop("AWS_ENDPOINT_URL", None)


def say(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def get_json(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


class Service:
    """A server process in its own process group, its output in `log`; stopped with its children."""

    def __init__(self, what: str, cmd: list, probe: str, log: Path, cwd: Path | None = None, timeout: float = 180):
        self.what, self.log_path = what, log
        self.log = open(log, "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=ENV, cwd=cwd,
                                     start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{what} exited {self.proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(probe, timeout=5) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} did not answer {probe} within {timeout:g} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.log.close()


def collector(spool: str, token: str, name: str, extra: tuple = ()) -> tuple[Service, str]:
    port = free_port()
    cmd = [PY, str(ROOT / "scripts" / "report.py"), "serve", "--spool", spool, "--token", token,
           "--host", "127.0.0.1", "--port", str(port), *extra]  # fmt: skip
    return Service(f"collector ({name})", cmd, f"http://127.0.0.1:{port}/healthz", HERE / f"collector-{name}.log"), \
        f"http://127.0.0.1:{port}/v1/snapshots"


def drive(*args: str) -> dict:
    done = subprocess.run(["node", str(NODE_DRIVER), *args], capture_output=True, text=True, env=ENV, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"bench_load.mjs {args[0]} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_folder_spool(spool: Path) -> list:
    from skedge import report  # noqa: PLC0415

    return report.read_spool(spool)


def bench_worker(artifact: Path, seconds: int, connections: int) -> dict:
    """Part 1: the Worker example under wrangler dev, monitoring to a real collector."""
    app = HERE / "app"
    worker = app / "worker"
    (app / "node_modules").mkdir(parents=True)
    # `skedge` resolves to the built package, as after `npm install skedge` (wrangler bundles it).
    (app / "node_modules" / "skedge").symlink_to(PKG)
    shutil.copytree(ROOT / "tests" / "js" / "examples" / "worker" / "src", worker / "src")
    shutil.copy(ROOT / "tests" / "js" / "examples" / "worker" / "wrangler.toml", worker / "wrangler.toml")
    shutil.copy(artifact, worker / "model.skedge")

    token = secrets.token_hex(16)
    spool = HERE / "spool-worker"
    coll, url = collector(str(spool), token, "worker")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        dev = Service("wrangler dev", [
            str(ROOT / "node_modules" / ".bin" / "wrangler"), "dev", "--ip", "127.0.0.1", "--port", str(port),
            "--inspector-port", str(free_port()), "--persist-to", str(HERE / "wrangler-state"), "--log-level", "warn",
            "--show-interactive-dev-session=false", "--var", f"MONITOR_URL:{url}", "--var", f"MONITOR_TOKEN:{token}",
            "--var", "MONITOR_SAMPLE_RATE:1", "--var", f"MONITOR_WINDOW_SECONDS:{WINDOW_SECONDS}",
        ], f"{base}/health", HERE / "wrangler.log", cwd=worker)  # fmt: skip
        try:
            before = loadavg()
            say(f"Worker: {connections} connections POST /predict for {seconds} s (monitoring to the collector)")
            out = drive("worker", base, str(seconds), str(connections))
            out["loadavg"] = {"before": before, "after": loadavg()}
            out["snapshots_during_run"] = get_json(url.replace("/v1/snapshots", "/healthz"))[1].get("snapshots")
            # Close the last window and hand it over: it counts the run's last predictions.
            time.sleep(WINDOW_SECONDS + 1)
            status, flushed = get_json(f"{base}/monitor/flush", "POST", {"authorization": f"Bearer {token}"})
            out["last_flush"] = {"status": status, **flushed}
            _, health = get_json(f"{base}/health")
            out["worker_monitoring"] = health.get("monitoring")
        finally:
            dev.stop()
    finally:
        coll.stop()
    snaps = read_folder_spool(spool)
    ok = sum(n for code, n in out["statuses"].items() if code.startswith("2"))
    out["answered_2xx"] = ok
    out["snapshots_received"] = len(snaps)
    out["predictions_in_snapshots"] = sum(s["seen"] for s in snaps)
    out["dropped_in_snapshots"] = sum(s["dropped"] for s in snaps)
    out["sample_rate"] = 1
    out["window_seconds"] = WINDOW_SECONDS
    # Requests in flight when autocannon stopped were predicted but not counted as answered.
    out["ok"] = (out["errors"] == 0 and out["timeouts"] == 0 and out["non2xx"] == 0 and ok > 0
                 and out["snapshots_received"] > 0 and ok <= out["predictions_in_snapshots"] <= out["sent"]
                 and out["last_flush"]["status"] == 200)  # fmt: skip
    return out


def bench_collector(kind: str, artifact: Path, seconds: int, clients: int) -> dict:
    """Part 2: the collector alone under `clients` connections of distinct snapshots."""
    token = secrets.token_hex(16)
    moto = None
    try:
        if kind == "s3":
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            moto = Service("moto", [PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                           f"{endpoint}/moto-api/", HERE / "moto.log")  # fmt: skip
            import boto3  # noqa: PLC0415

            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
            s3.create_bucket(Bucket="load")
            coll, url = collector("s3://load/stream", token, kind, ("--s3-endpoint-url", endpoint))
        else:
            spool = HERE / "spool-folder"
            coll, url = collector(str(spool), token, kind)
        try:
            before = loadavg()
            say(f"collector ({kind} spool): {clients} clients POST snapshots for {seconds} s")
            out = drive("collector", url, token, str(seconds), str(clients), str(PKG / "node.mjs"), str(artifact))
            out["loadavg"] = {"before": before, "after": loadavg()}
        finally:
            coll.stop()
        if kind == "s3":
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket="load", Prefix="stream/snapshots/")
            out["stored"] = sum(len(p.get("Contents", [])) for p in pages)
        else:
            out["stored"] = len(read_folder_spool(spool))
    finally:
        if moto:
            moto.stop()
    out["answered_201"] = out["statuses"].get("201", 0)
    # Requests in flight when autocannon stopped may be stored without their answer counted.
    out["ok"] = (out["errors"] == 0 and out["timeouts"] == 0 and out["non2xx"] == 0
                 and 0 < out["answered_201"] <= out["stored"] <= out["sent"])  # fmt: skip
    return out


def fmt_load(la: dict) -> str:
    return f"{la['before'][0]:.1f} → {la['after'][0]:.1f}"


def render(R: dict) -> str:
    w, rows = R.get("worker", {}), []
    cmd = "scripts/bench.sh --only load" + (f" --duration {R['duration']}" if R["duration"] != 60 else "")
    md = [SECTION, "",
          f"Produced by `{cmd}` on {R['date']} ({R['nproc']} cores, {R['cpu']}), everything on 127.0.0.1; "
          f"autocannon for {R['duration']} s per row. Load average (1 min) before → after each row: the machine "
          "is shared, so compare rows measured at the same load.", "",
          "| what | clients | requests/s | p50 | p99 | max | errors / timeouts / non-2xx | check | load avg |",
          "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def row(name: str, r: dict, check: str) -> None:
        if "error" in r:
            rows.append(f"| {name} | | | | | | | failed: {r['error'][:200]} | |")
            return
        lat = r["latencyMs"]
        rows.append(f"| {name} | {r['connections']} | {r['requestsPerSecond']:,.0f} | {lat['p50']:g} ms | "
                    f"{lat['p99']:g} ms | {lat['max']:g} ms | {r['errors']} / {r['timeouts']} / {r['non2xx']} | "
                    f"{check} | {fmt_load(r['loadavg'])} |")  # fmt: skip

    if "error" in w:
        row("Worker (workerd) POST /predict, monitoring on", w, "")
    elif w:
        row("Worker (workerd) POST /predict, monitoring on", w,
            f"{w['snapshots_received']} snapshots received ({w['snapshots_during_run']} during the run), "
            f"{w['predictions_in_snapshots']:,} predictions counted "
            f"for {w['answered_2xx']:,} answers and {w['sent'] - w['requests']} in flight at the end")  # fmt: skip
    for kind, name in (("folder", "collector, folder spool (fsync per snapshot)"), ("s3", "collector, S3 spool (moto)")):
        r = R.get(f"collector_{kind}")
        if r is None:
            continue
        row(name, r, "" if "error" in r else f"{r['stored']:,} stored for {r['answered_201']:,} answered 201 "
                                             f"and {r['sent'] - r['requests']} in flight at the end")
    md += rows
    snap = next((R[k]["snapshotBytes"] for k in ("collector_folder", "collector_s3") if "snapshotBytes" in R.get(k, {})), None)
    md += ["", f"The Worker serves the `{CASE}` fixture with every prediction sampled "
               f"(`MONITOR_SAMPLE_RATE=1`) and {WINDOW_SECONDS}-second windows sent to a real `report.py serve` "
               "after the responses (`ctx.waitUntil`); the last window is flushed after the run and the spool "
               "read back. The collector rows POST real snapshots of the npm monitor"
               + (f" ({snap:,} bytes)" if snap else "") + ", each with a new id: each is a new record "
               "fsync'ed before the answer (folder) or a new object written with `If-None-Match: *` (S3). "
               "Latency is per request as autocannon measures it (the load generator shares the cores).",
           "", f"Targets: {'all met' if R['ok'] else 'MISSED (see .work/bench/load.json)'}: 0 errors, 0 timeouts, "
               "0 non-2xx, every snapshot accounted for.", ""]  # fmt: skip
    return "\n".join(md) + "\n"


def _span(text: str) -> tuple[int, int] | None:
    start = text.find(SECTION)
    if start < 0:
        return None
    end = text.find("\n## ", start + len(SECTION))
    return start, (end + 1 if end >= 0 else len(text))


def section_of(path: Path) -> str:
    """The load section of benches/RESULTS.md ("" when it has none): `scripts/bench.sh --save`
    rewrites the file and keeps it."""
    text = path.read_text() if path.exists() else ""
    span = _span(text)
    return text[span[0] : span[1]] if span else ""


def save_section(path: Path, section: str) -> None:
    """Replace (or append) the load section of benches/RESULTS.md, leaving the rest as it is."""
    text = path.read_text() if path.exists() else ""
    span = _span(text)
    if span:
        text = text[: span[0]] + section + text[span[1] :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list | None = None) -> int:
    global WORK, HERE  # noqa: PLW0603 - one run per process
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=60, help="seconds of load per row (60)")
    ap.add_argument("--quick", action="store_true", help="10 seconds a row (a smoke run)")
    ap.add_argument("--connections", type=int, default=10, help="connections to the Worker (10)")
    ap.add_argument("--clients", type=int, default=8, help="connections to the collector (8)")
    ap.add_argument("--skip", default="", help="comma-separated: worker,folder,s3")
    ap.add_argument("--save", action="store_true", help="also write the section into benches/RESULTS.md")
    ap.add_argument("--out", type=Path, default=WORK, help="where load.{json,md} and the servers' files go "
                                                          "(.work/bench)")  # fmt: skip
    ap.add_argument("--only", help="accepted for scripts/bench.sh (load)")
    ap.add_argument("--no-build", action="store_true", help="accepted for scripts/bench.sh; ignored here")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration = 10
    if args.duration < 1:
        ap.error("--duration must be at least 1 second")
    skip = set(filter(None, args.skip.split(",")))
    WORK, HERE = args.out.resolve(), args.out.resolve() / "load"
    for need in (SKEDGE, PKG / "node.mjs"):
        if not need.exists():
            print(f"bench_load: {need} is missing: run scripts/bench.sh --only load (it builds them)", file=sys.stderr)
            return 3
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    artifact = HERE / f"{CASE}.skedge"
    subprocess.run([str(SKEDGE), "pack", str(ROOT / "tests" / "fixtures" / "cases" / f"{CASE}.interchange.json"),
                    "-o", str(artifact)], check=True, capture_output=True)  # fmt: skip

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "")  # fmt: skip
    R = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(),
         "cpu": cpu, "duration": args.duration}  # fmt: skip
    parts = [("worker", "worker", lambda: bench_worker(artifact, args.duration, args.connections)),
             ("collector_folder", "folder", lambda: bench_collector("folder", artifact, args.duration, args.clients)),
             ("collector_s3", "s3", lambda: bench_collector("s3", artifact, args.duration, args.clients))]  # fmt: skip
    for key, name, fn in parts:
        if name in skip:
            continue
        try:
            R[key] = fn()
        except Exception as err:  # noqa: BLE001 - one failing part must not hide the others
            say(f"{key} failed: {err}")
            R[key] = {"error": f"{type(err).__name__}: {err}"[:3000], "ok": False}
    R["ok"] = all(R[k]["ok"] for k, _, _ in parts if k in R)
    md = render(R)
    (WORK / "load.json").write_text(json.dumps(R, indent=1) + "\n")
    (WORK / "load.md").write_text(md)
    if args.save:
        save_section(RESULTS, md)
    print(md)
    say(f"wrote {WORK / 'load.json'} and {WORK / 'load.md'}" + (" and benches/RESULTS.md" if args.save else "")
        + ("" if R["ok"] else ": TARGETS MISSED"))  # fmt: skip
    return 0 if R["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
