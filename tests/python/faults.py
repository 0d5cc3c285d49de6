"""Fault scenarios of issue #16 item 3: `kill -9` of every server of the team set-up, in the middle
of a snapshot stream and in the middle of a push, then the proof that every snapshot reached MLflow
exactly once. Run by scripts/test_faults.sh (not collected by pytest: no `test_` prefix).

    .venv/bin/python tests/python/faults.py [--spool folder|s3|both] [--victim NAME ...]

Everything runs on 127.0.0.1 with its data under .work/faults-<pid>/ (removed at the end) and
stops by itself; every wait is bounded:

- PostgreSQL (Debian's, `pg_ctl` on one data dir, fsync off as in the other tests: a kill -9 of the
  server, not of the machine, loses nothing the WAL has) as MLflow's backend store;
- an S3 server: moto's S3 app behind a write-ahead journal (`faults.py s3`): moto keeps its state in
  memory, so every request that changes it is appended to a journal file *before* moto applies it,
  and a restart replays the journal before it listens. That is what a durable object store does
  (what was acknowledged survives; a request cut by the crash may or may not have happened). One
  request at a time, so the journal's order is the order moto applied them;
- `mlflow server` (PostgreSQL store, artifacts on the S3 server through the tracking server);
- `report.py serve`, spooling to a folder, or (`--spool s3`) to `s3://snapshots/<scenario>`.

Snapshots are real: `skedge-monitor simulate` (the Rust core the npm package runs) over SST-2
sentences, on two versions of a packed fixture model, several one-hour windows each, every
snapshot its own id. The client sends them as `monitor.flush` does: a snapshot is kept until the
collector answers 201 or 409; a connection error, 401/403/408/429 or a 5xx is retried (backoff
0.05 s doubling to 1 s); any other answer is a failure of the scenario.

Each scenario is one victim (collector, s3, mlflow, postgres) and one phase; its model name and
MLflow experiment are its own. The kill points and what each proves:

- mid-stream: about half the snapshots (the cut inside a window) are stored and pushed; the victim
  is killed (SIGKILL to its process group; PostgreSQL's postmaster, whose backends then exit); the
  rest is streamed while it is down and a push is tried (exit 2 when it needs the victim; nothing
  logged by halves, nothing lost); after at least 1.5 s the victim is restarted on the same port
  and data; the stream completes (the client's retries land: a dead collector, or a dead bucket
  behind the collector's 503) and a push logs the rest, the split window as a revision. Proves: an
  acknowledged snapshot survives the crash of any server, a retried one is never stored twice, a
  push during an outage is harmless.
- mid-push: about two thirds (the cut inside a window) are stored; a push starts and is stopped at
  a known point: with a folder spool SIGSTOPped once it has logged all windows but one; with a
  bucket spool by its own hook (`SKEDGE_PUSH_STOP_BEFORE_LEDGER_WRITE`, skedge/spool.py) after
  MLflow has logged a window and before the ledger records it (the partial window when the bucket
  is the victim, so its ledger write fails). The victim is killed, the push resumed (SIGCONT) while
  the rest is streamed: it exits 2 if it needed the victim (0 if not: a dead collector; a dead S3
  with a folder spool costs only the drift figures, with a warning, or 2 when MLflow's server drops
  the connection after the failed upload); the victim is restarted, the stream completes, the push
  is run again (a bucket spool's lease left by the failed push is taken over after
  `--lease-seconds` 2). Proves: a push cut by a dead MLflow, database or bucket, even between
  MLflow and the ledger with the window growing meanwhile, is resumed by the next one without a
  window logged twice or a snapshot left out.

The check after each scenario: the spool (or bucket) holds each snapshot sent exactly once; the
ledger has each (window, revision) once and the last revision of each window lists exactly the ids
sent in it; MLflow has exactly one `seen`, `sampled` and `snapshots` point per ledger line, at
that line's timestamp, whose values are the sums over exactly that line's snapshots (so the final
revision of every window sums all snapshots sent to it: none lost, none twice); nothing was
quarantined. The summary table printed at the end is README's "Faults" table.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from ports import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
MONITOR = REPO / "target" / "release" / "skedge-monitor"
SKEDGE = REPO / "target" / "release" / "skedge"
FIXTURE = REPO / "tests" / "fixtures" / "cases" / "tfidf_l1_noidf_lr.interchange.json"
TEXTS = REPO / "tests" / "data" / "sst2_dev.tsv"
TOKEN = "faults-token"
HOUR = 3_600_000
WINDOWS = 2  # one-hour windows per model version
PER_WINDOW = 6  # snapshots per window and version
TEXTS_PER_SNAPSHOT = 4
VICTIMS = ("collector", "s3", "mlflow", "postgres")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
LEASE_SECONDS = 2
DOWN_SECONDS = 1.5  # the least time a victim stays dead
# A push whose figures fail (the S3 server behind MLflow's artifacts is dead, a folder spool) logs
# the metrics and goes on (0), or stops with 2 when MLflow's server drops the connection after
# the failed upload and the next request fails: either way nothing is lost.
FIGURES_ONLY = (0, 2)


def log(msg: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)




def wait_for(check, what: str, seconds: float, proc: subprocess.Popen | None = None, log_file: Path | None = None):
    deadline = time.monotonic() + seconds
    while True:
        if proc is not None and proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-3000:] if log_file else ""
            raise RuntimeError(f"{what} exited {proc.returncode}\n{tail}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if check():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.1)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """`sig` to a process this script started and its own process group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# The S3 server with a write-ahead journal (`faults.py s3 --port P --journal FILE`)
# ---------------------------------------------------------------------------------------------


def serve_s3(port: int, journal: Path) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: PLC0415
    from werkzeug.serving import run_simple  # noqa: PLC0415

    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def call(environ: dict) -> None:
        for _ in app(environ, lambda *a, **k: None):
            pass

    # Replay: a torn last line (a crash in the middle of the append) is a request never applied.
    if journal.exists():
        replayed = 0
        for line in journal.read_bytes().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                break
            body = base64.b64decode(entry["body"])
            environ = dict(entry["environ"], **{"wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
                                                "wsgi.version": (1, 0), "wsgi.multithread": False,
                                                "wsgi.multiprocess": False, "wsgi.run_once": False,
                                                "wsgi.input_terminated": True})  # fmt: skip
            call(environ)
            replayed += 1
        print(f"replayed {replayed} request(s)", file=sys.stderr, flush=True)
    out = open(journal, "ab")  # noqa: SIM115  (open for the life of the server)

    def durable(environ: dict, start_response):
        with one_at_a_time:
            if environ["REQUEST_METHOD"] not in ("GET", "HEAD") and not environ.get("PATH_INFO", "").startswith("/moto-api"):
                length = environ.get("CONTENT_LENGTH")
                body = environ["wsgi.input"].read(int(length)) if length else environ["wsgi.input"].read()
                environ["wsgi.input"] = io.BytesIO(body)
                environ.pop("HTTP_TRANSFER_ENCODING", None)
                environ["CONTENT_LENGTH"] = str(len(body))
                kept = {k: v for k, v in environ.items() if isinstance(v, str) and not k.startswith("werkzeug.")}
                out.write(json.dumps({"environ": kept, "body": base64.b64encode(body).decode()}).encode() + b"\n")
                out.flush()  # in the kernel before moto applies it: survives a kill -9 of this process
            return list(app(environ, start_response))

    run_simple("127.0.0.1", port, durable, threaded=True)


def wait_stopped(proc: subprocess.Popen, seconds: float = 300) -> None:
    """Until `proc` is stopped (state T: SIGSTOP, by us or by its own fault hook)."""

    def stopped() -> bool:
        assert proc.poll() is None, f"the push exited {proc.returncode} before its stop point"
        with open(f"/proc/{proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"

    wait_for(stopped, "the push reaching its stop point", seconds)


# ---------------------------------------------------------------------------------------------
# The servers
# ---------------------------------------------------------------------------------------------


class Service:
    """One server: start, kill -9, restart on the same port and data."""

    name = ""

    def __init__(self, base: Path):
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_file = base / f"{self.name}.log"

    def popen(self, cmd: list, env: dict | None = None, cwd: Path | None = None) -> None:
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                         start_new_session=True)  # fmt: skip

    def kill(self) -> None:
        kill_group(self.proc)

    def dead(self) -> bool:
        return self.proc.poll() is not None

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, signal.SIGTERM)


class Postgres(Service):
    name = "postgres"

    def __init__(self, base: Path):
        super().__init__(base)
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
        if not found:
            raise RuntimeError("PostgreSQL is not installed (scripts/setup.sh --team installs Debian's)")
        self.bin = found[-1].parent
        self.data = base / "pg"
        self.data.mkdir()
        self.as_pg = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(base, "postgres", "postgres")
            shutil.chown(self.data, "postgres", "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.log_file = self.data / "server.log"
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlflow")
        self.uri = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/mlflow"

    def run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.as_pg + [str(self.bin / cmd[0]), *cmd[1:]], check=True, capture_output=True)

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-w", "-t", "60",
                 "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off", "start")  # fmt: skip

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        pid = self.postmaster()
        os.kill(pid, signal.SIGKILL)
        # its backends notice the postmaster's death and exit; a restart needs them gone
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), "postmaster gone", 20)
        wait_for(lambda: not any(self._backends()), "PostgreSQL backends gone", 30)

    def _backends(self):
        """Processes of this cluster: backends rename themselves ("postgres: … idle"), but every
        one of them runs in the data directory."""
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(p / "cwd") == str(self.data):
                        yield p

    def restart(self) -> None:
        self.start()

    def dead(self) -> bool:
        return not (self.data / "postmaster.pid").exists() or not Path(f"/proc/{self.postmaster()}").exists()

    def stop(self) -> None:
        subprocess.run(self.as_pg + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)  # fmt: skip


class S3(Service):
    name = "s3"

    def __init__(self, base: Path):
        super().__init__(base)
        self.journal = base / "s3.journal"
        self.url = f"http://127.0.0.1:{self.port}"
        self.restart()
        import boto3  # noqa: PLC0415

        client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        client.create_bucket(Bucket="mlflow")
        client.create_bucket(Bucket="snapshots")
        self.client = client

    def restart(self) -> None:
        self.popen([sys.executable, __file__, "s3", "--port", str(self.port), "--journal", str(self.journal)])
        wait_for(lambda: http_ok(self.url + "/moto-api/"), "S3 server", 120, self.proc, self.log_file)


class MLflow(Service):
    name = "mlflow"

    def __init__(self, base: Path, store: str, s3: str):
        super().__init__(base)
        self.store, self.s3 = store, s3
        self.uri = f"http://127.0.0.1:{self.port}"
        self.restart()

    def restart(self) -> None:
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
                   MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_S3_ENDPOINT_URL=self.s3, **CREDENTIALS)  # fmt: skip
        env.pop("MLFLOW_TRACKING_URI", None)
        self.popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.store,
                    "--artifacts-destination", "s3://mlflow/artifacts", "--serve-artifacts",
                    "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                   env=env, cwd=self.base)  # fmt: skip
        wait_for(lambda: http_ok(self.uri + "/health"), "mlflow server", 180, self.proc, self.log_file)


class Collector(Service):
    name = "collector"

    def __init__(self, base: Path, spool: str, s3: str):
        super().__init__(base)
        self.spool, self.s3 = spool, s3
        self.restart()

    def restart(self) -> None:
        env = dict(os.environ, AWS_ENDPOINT_URL=self.s3, **CREDENTIALS)
        self.popen([sys.executable, str(SCRIPTS / "report.py"), "serve", "--spool", self.spool, "--token", TOKEN,
                    "--host", "127.0.0.1", "--port", str(self.port)], env=env)  # fmt: skip
        wait_for(lambda: http_ok(f"http://127.0.0.1:{self.port}/healthz"), "collector", 60, self.proc, self.log_file)

    def post(self, body: bytes) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/v1/snapshots", body=body,
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})  # fmt: skip
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()


# ---------------------------------------------------------------------------------------------
# Snapshots and the client
# ---------------------------------------------------------------------------------------------


def make_snapshots(base: Path, name: str, seed: int, t0: int) -> list:
    """Real snapshots of two versions of `name`, WINDOWS windows each, in the order they close."""
    texts = [line.split("\t")[0] for line in TEXTS.read_text(encoding="utf-8").splitlines()[1:]]
    per_window = PER_WINDOW * TEXTS_PER_SNAPSHOT
    out = []
    for version in ("1", "2"):
        inter = json.loads(FIXTURE.read_text())
        inter["metadata"].update(name=name, version=version)
        src, art = base / f"{name}-{version}.json", base / f"{name}-{version}.skedge"
        src.write_text(json.dumps(inter))
        subprocess.run([str(SKEDGE), "pack", str(src), "--out", str(art)], check=True, capture_output=True)
        offset = (seed * 37 + int(version) * 101) % (len(texts) - WINDOWS * per_window)
        lines = "".join(json.dumps({"text": t}) + "\n" for t in texts[offset : offset + WINDOWS * per_window])
        done = subprocess.run(
            [str(MONITOR), "simulate", str(art), "--format", "jsonl", "--seed", str(seed * 10 + int(version)),
             "--per-snapshot", str(TEXTS_PER_SNAPSHOT), "--start-ms", str(t0 + 60_000),
             "--step-ms", str(HOUR // per_window), "--time"],
            input=lines.encode(), capture_output=True, check=True,
        )  # fmt: skip
        out += [json.loads(x) for x in done.stdout.decode().splitlines()]
    out.sort(key=lambda s: (s["window"]["end_ms"], s["model"]["version"]))
    assert len({s["id"] for s in out}) == len(out) == 2 * WINDOWS * PER_WINDOW, len(out)
    return out


class Client:
    """Sends snapshots as `monitor.flush` does, in a thread; counts retries."""

    RETRY = {401, 403, 408, 429} | set(range(500, 600))

    def __init__(self, collector: Collector):
        self.collector = collector
        self.retries = 0
        self.failures: list = []
        self.sent: list = []
        self.thread: threading.Thread | None = None

    def send(self, snaps: list, deadline: float = 120) -> None:
        limit = time.monotonic() + deadline
        for s in snaps:
            body, delay = json.dumps(s).encode(), 0.05
            while True:
                try:
                    status = self.collector.post(body)
                except OSError:
                    status = 0
                if status in (201, 409):
                    self.sent.append(s)
                    break
                if status and status not in self.RETRY:
                    self.failures.append((s["id"], status))
                    break
                self.retries += 1
                if time.monotonic() > limit:
                    self.failures.append((s["id"], "gave up"))
                    break
                time.sleep(delay)
                delay = min(1.0, delay * 2)

    def start(self, snaps: list) -> None:
        self.thread = threading.Thread(target=self.send, args=(snaps,), daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(timeout=180)
        assert not self.thread.is_alive(), "the client did not finish"


# ---------------------------------------------------------------------------------------------
# The scenarios
# ---------------------------------------------------------------------------------------------


class Team:
    def __init__(self, base: Path, spool_kind: str):
        self.base, self.spool_kind = base, spool_kind
        t = time.monotonic()
        self.pg = Postgres(base)
        self.s3 = S3(base)
        self.mlflow = MLflow(base, self.pg.uri, self.s3.url)
        log(f"PostgreSQL :{self.pg.port}, S3 :{self.s3.port}, MLflow :{self.mlflow.port} up in {time.monotonic() - t:.1f} s")

    def env(self) -> dict:
        return dict(os.environ, AWS_ENDPOINT_URL=self.s3.url, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1",
                    **CREDENTIALS)  # fmt: skip

    def stop(self) -> None:
        for s in (self.mlflow, self.s3, self.pg):
            with contextlib.suppress(Exception):
                s.stop()


class Scenario:
    def __init__(self, team: Team, victim: str, phase: str, seed: int):
        self.team, self.victim, self.phase = team, victim, phase
        self.name = f"faults-{team.spool_kind}-{victim}-{phase}"
        self.dir = team.base / self.name
        self.dir.mkdir()
        if team.spool_kind == "s3":
            self.spool = f"s3://snapshots/{self.name}"
        else:
            self.spool = str(self.dir / "spool")
        self.experiment = self.name
        t0 = (int(time.time() * 1000) // HOUR - 10 * WINDOWS) * HOUR
        self.snaps = make_snapshots(self.dir, self.name, seed, t0)
        self.codes: list = []
        self.pushes: list = []
        self.restart_s = self.recovery_s = 0.0

    def restart(self, victim: Service) -> None:
        t = time.monotonic()
        victim.restart()
        self.restart_s = time.monotonic() - t

    def services(self) -> dict:
        t = self.team
        return {"collector": self.collector, "s3": t.s3, "mlflow": t.mlflow, "postgres": t.pg}

    def push(self, *, wait: bool = True, stop_after: int = 0, env: dict | None = None):
        cmd = [sys.executable, str(SCRIPTS / "report.py"), "push", "--from", self.spool, "--tracking-uri",
               self.team.mlflow.uri, "--experiment", self.experiment, "--window-seconds", "3600",
               "--grace-seconds", "0", "--lease-seconds", str(LEASE_SECONDS)]  # fmt: skip
        proc = subprocess.Popen(cmd, env=dict(self.team.env(), **(env or {})), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)  # fmt: skip
        lines: list = []

        def read():
            logged = 0
            for line in proc.stderr:
                lines.append(line)
                logged += line.startswith("logged ")
                if stop_after and logged == stop_after and line.startswith("logged "):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGSTOP)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def finish() -> int:
            try:
                rc = proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                rc = "timeout"
            reader.join(timeout=10)
            self.codes.append(rc)
            self.pushes.append("".join(lines))
            (self.dir / f"push-{len(self.pushes)}.log").write_text(self.pushes[-1])
            return rc

        if wait:
            return finish()
        return proc, finish

    def run(self) -> dict:
        kind = self.team.spool_kind
        self.collector = Collector(self.dir, self.spool, self.team.s3.url)
        client = Client(self.collector)
        victim = self.services()[self.victim]
        n = len(self.snaps)
        # whether a push needs the victim (with a folder spool the S3 server only holds figures)
        needed = self.victim in ("mlflow", "postgres") or (self.victim == "s3" and kind == "s3")
        expected = (2,) if needed else (0,) if self.victim == "collector" else FIGURES_ONLY
        key = lambda x: (x["model"]["version"], x["window"]["end_ms"] // HOUR)  # noqa: E731

        def splitting(cut: int) -> int:
            """The first cut from `cut` on that leaves part of a window for later."""
            while not any(key(x) == key(self.snaps[cut - 1]) for x in self.snaps[cut:]):
                cut += 1
            return cut

        try:
            if self.phase == "mid-stream":
                half = splitting(n // 2)
                client.send(self.snaps[:half])
                assert self.push() == 0, self.pushes[-1]
                t_kill = time.monotonic()
                victim.kill()
                client.start(self.snaps[half:])
                if self.victim != "collector":
                    assert self.push() in expected, self.pushes[-1]  # while the victim is down
                time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - t_kill)))
                self.restart(victim)
            else:
                # the cut splits a window: the push logs part of it, the rest arrives later
                cut = splitting(2 * n // 3 - PER_WINDOW // 2)
                client.send(self.snaps[:cut])
                # push's order: by version, then window; the last one sent before the cut is partial
                groups = sorted({key(x) for x in self.snaps[:cut]})
                partial = groups.index(key(self.snaps[cut - 1])) + 1
                if kind == "s3":
                    # stopped by its own hook before a ledger write, MLflow having that window: the
                    # partial window when the bucket dies (its ledger write fails), else one that
                    # leaves a window to push after the kill
                    at = partial if self.victim == "s3" else min(partial, len(groups) - 1)
                    proc, finish = self.push(wait=False, env={"SKEDGE_PUSH_STOP_BEFORE_LEDGER_WRITE": str(at)})
                else:  # SIGSTOPped once it logged a window, one left to push
                    proc, finish = self.push(wait=False, stop_after=len(groups) - 1)
                wait_stopped(proc)
                t_kill = time.monotonic()
                victim.kill()
                os.killpg(proc.pid, signal.SIGCONT)
                client.start(self.snaps[cut:])
                if needed:
                    assert finish() in expected, self.pushes[-1]
                    self.restart(victim)
                else:
                    time.sleep(DOWN_SECONDS)
                    self.restart(victim)
                    assert finish() in expected, self.pushes[-1]
            client.join()
            final = self.push()
            assert final == 0, self.pushes[-1]
            self.recovery_s = time.monotonic() - t_kill
        finally:
            with contextlib.suppress(Exception):
                self.collector.stop()
            if victim is not self.collector and victim.dead():
                victim.restart()  # a failed scenario leaves the servers up for the next one
        assert not client.failures, client.failures
        result = self.check(client)
        result.update(victim=self.victim, phase=self.phase, spool=kind, sent=len(client.sent), retries=client.retries,
                      codes=self.codes, restart_s=self.restart_s, recovery_s=self.recovery_s)  # fmt: skip
        return result

    # -- the check ------------------------------------------------------------------------------

    def stored_ids(self) -> list:
        if self.team.spool_kind == "s3":
            prefix = self.spool[len("s3://snapshots/") :] + "/snapshots/"
            pages = self.team.s3.client.get_paginator("list_objects_v2").paginate(Bucket="snapshots", Prefix=prefix)
            return [o["Key"].rsplit("/", 1)[1].removesuffix(".json") for p in pages for o in p.get("Contents", [])]
        ids = []
        for seg in sorted(Path(self.spool).glob("snapshots-*.jsonl")):
            ids += [json.loads(x)["snapshot"]["id"] for x in seg.read_bytes().splitlines() if x.strip()]
        return ids

    def ledger(self, name: str) -> list:
        if self.team.spool_kind == "s3":
            key = self.spool[len("s3://snapshots/") :] + f"/ledger/{name}"
            try:
                body = self.team.s3.client.get_object(Bucket="snapshots", Key=key)["Body"].read()
            except self.team.s3.client.exceptions.NoSuchKey:
                return []
        else:
            path = Path(self.spool) / name
            body = path.read_bytes() if path.exists() else b""
        return [json.loads(x) for x in body.splitlines() if x.strip()]

    def check(self, client: Client) -> dict:
        from mlflow.tracking import MlflowClient  # noqa: PLC0415

        by_id = {s["id"]: s for s in self.snaps}
        sent = [s["id"] for s in client.sent]
        assert sorted(sent) == sorted(by_id), "every snapshot was acknowledged once"
        stored = self.stored_ids()
        assert sorted(stored) == sorted(by_id), f"stored {len(stored)} ids for {len(by_id)} snapshots sent"
        assert self.ledger("quarantine.jsonl") == [], self.ledger("quarantine.jsonl")
        ledger = [e for e in self.ledger("pushed.jsonl") if e.get("kind") != "drift"]
        keys = [(e["run_id"], e["bucket"], e["revision"]) for e in ledger]
        assert len(keys) == len(set(keys)), "a (window, revision) twice in the ledger"
        windows: dict = {}
        for s in self.snaps:
            windows.setdefault((s["model"]["version"], s["window"]["end_ms"] // HOUR), set()).add(s["id"])
        last: dict = {}
        for e in ledger:
            k = (e["model"]["version"], e["bucket"])
            if k not in last or e["revision"] > last[k]["revision"]:
                last[k] = e
        assert sorted(last) == sorted(windows), f"windows pushed {sorted(last)} != sent {sorted(windows)}"
        for k, ids in windows.items():
            assert set(last[k]["ids"]) == ids, f"window {k}: the last revision has {len(last[k]['ids'])} of {len(ids)} ids"
        client_ = MlflowClient(self.team.mlflow.uri)
        for run_id in {e["run_id"] for e in ledger}:
            mine = [e for e in ledger if e["run_id"] == run_id]
            for key, field in (("seen", "seen"), ("sampled", None), ("snapshots", None)):
                points = sorted((m.timestamp, m.value) for m in client_.get_metric_history(run_id, key))
                want = []
                for e in mine:
                    ts = (e["bucket"] + 1) * HOUR + e["revision"]
                    if e.get("ids_unknown"):  # a revision whose ledger line was lost: superseded by the next
                        assert [t for t, _ in points].count(ts) == 1, f"run {run_id} {key}: no point at {ts}"
                        want.append(next(p for p in points if p[0] == ts))
                        continue
                    snaps = [by_id[i] for i in e["ids"]]
                    value = (sum(s["seen"] for s in snaps) if key == "seen" else
                             sum(s["stats"]["count"] for s in snaps) if key == "sampled" else len(snaps))  # fmt: skip
                    want.append((ts, float(value)))
                assert points == sorted(want), f"run {run_id} {key}: MLflow {points} != ledger {sorted(want)}"
        return {"stored": len(stored), "windows": len(last), "revisions": len(ledger) - len(last)}


def summary(rows: list) -> str:
    head = ("spool", "victim", "phase", "snapshots sent", "retries", "stored once", "windows (+revisions)",
            "push exit codes", "restart s", "kill → pushed s")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['spool']} | {r['victim']} | {r['phase']} | {r['sent']} | {r['retries']} | {r['stored']} | "
                     f"{r['windows']} (+{r['revisions']}) | {' '.join(map(str, r['codes']))} | "
                     f"{r['restart_s']:.1f} | {r['recovery_s']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "s3":
        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--journal", type=Path, required=True)
        a = p.parse_args()
        serve_s3(a.port, a.journal)
        return 0
    p = argparse.ArgumentParser(description="kill -9 of every server, mid-stream and mid-push (issue #16)")
    p.add_argument("--spool", choices=("folder", "s3", "both"), default="both")
    p.add_argument("--victim", action="append", choices=VICTIMS, help="default: all four")
    p.add_argument("--phase", action="append", choices=("mid-stream", "mid-push"), help="default: both")
    p.add_argument("--keep", action="store_true", help="keep .work/faults-<pid>/ (logs, data)")
    a = p.parse_args()
    for need in (MONITOR, SKEDGE):
        if not need.exists():
            print(f"{need} is not built (cargo build --release)", file=sys.stderr)
            return 3
    kinds = ["folder", "s3"] if a.spool == "both" else [a.spool]
    rows, failed = [], []
    started = time.monotonic()
    base = REPO / ".work" / f"faults-{os.getpid()}"
    base.mkdir(parents=True)
    try:
        for kind in kinds:
            (base / kind).mkdir()
            team = Team(base / kind, kind)
            try:
                seed = 0
                for victim in a.victim or VICTIMS:
                    for phase in a.phase or ("mid-stream", "mid-push"):
                        seed += 1
                        t = time.monotonic()
                        try:
                            rows.append(Scenario(team, victim, phase, seed).run())
                            log(f"ok {kind} {victim} {phase} ({time.monotonic() - t:.1f} s)")
                        except Exception as err:  # noqa: BLE001  (reported, the others go on)
                            failed.append(f"{kind} {victim} {phase}: {type(err).__name__}: {err}")
                            log(f"FAILED {failed[-1]}")
            finally:
                team.stop()
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(summary(rows))
    print(f"\n{len(rows)} scenario(s) in {time.monotonic() - started:.0f} s")
    for f in failed:
        print(f"failed: {f}")
    print(f"{len(rows)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
