"""skedge against its peers, in one run, on the same model and texts (issue #3).

    scripts/bench.sh [--quick] [--bundled] [--save] [--no-build]     (installs, builds, then runs this)
    .venv/bin/python scripts/bench.py [same options]

The model is what a user would train: `TfidfVectorizer(ngram_range=(1, 2), min_df=2)` +
`LogisticRegression`, fitted on SST-2 train (74,055 terms) when `../shared/data` has it, else on the
bundled sample in `benches/data` (see its SOURCES.md). It is exported with `scripts/export.py`
(parity gate included) and measured, side by side, as:

- skedge (wasm) in Node through the npm package `pkg/` (`scripts/bench_node.mjs`);
- skedge native, in process (`benches/engine.rs` in its native mode) and as the CLI `skedge predict`;
- scikit-learn: `Pipeline.predict_proba`, `joblib.load`, `pickle.loads`;
- MLflow: the same pipeline logged and registered in a temporary sqlite registry under
  `.work/bench/mlflow`, loaded as `models:/bench@champion` with `mlflow.sklearn.load_model`;
- skl2onnx + onnxruntime, in Python and in onnxruntime-node (with `locale: C.UTF-8`; its TF-IDF
  tokenizer is not scikit-learn's, so its label agreement with scikit-learn is reported).

`--only load` is scripts/bench_load.py (issue #16's load figures: the Worker under autocannon with
monitoring on, the collector under a stream of snapshots), run by scripts/bench.sh.

`--only python` runs issue #13's section alone (into `.work/bench/python.{json,md}`):
`python -m skedge.service` against the same Starlette app on `joblib.load` + scikit-learn (fresh
processes to the first answered prediction; single and 1,000-text batch requests), and
`skedge.spark.predict_udf` against `mlflow.pyfunc.spark_udf` of the registered model on one DataFrame
(Spark local[2]).

Issue #12's cold figures come from the same run: fresh Node processes (the package's import, the
first `fromBytes` with default flags and with `--no-wasm-tier-up`, the first `predict`, a signed
artifact's first load, `skedge/lite`), a fresh `workerd serve` of benches/worker/ per sample (first
request's wall and CPU time), a fresh Chromium (`Model.load` from the Cache API to the first
prediction); the table keeps the figures from before format v3 beside them.

Every timed command runs on one core (`taskset -c 0`), single-threaded (`*_NUM_THREADS=1`, onnxruntime
intra/inter-op threads 1). Cold starts are fresh processes, timed from inside the process from before
the runtime's first import to "a prediction can run"; each process's own wall time is kept too.
Quoted figures are medians (and p99 for single-text latency) over many repetitions. The machine is
shared and noisy: compare ratios, not absolute times.

Writes `.work/bench/results.json` (every raw number) and `.work/bench/results.md` (the tables);
`--save` also writes `benches/RESULTS.md` with the machine noted (keeping its load section). `--profile` instead profiles skedge's
load and single predict (V8's sampling profiler for the wasm, callgrind for native) into
`.work/bench/profile.md` (`--profile --save`: also `benches/PROFILE.md`).
"""

import sys
import time

_T0 = time.perf_counter()  # before any import: the cold-start workers time from here

import os  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Cold-start workers: a fresh interpreter each, imports inside, one JSON line out.
# ---------------------------------------------------------------------------------------------


def _worker_cold(kind: str, path: str, text: str, extra: str = "") -> None:
    t_import = time.perf_counter()
    if kind == "joblib":
        import joblib

        t_load = time.perf_counter()
        model = joblib.load(path)
        predict = lambda: model.predict_proba([text])  # noqa: E731
    elif kind == "pickle":
        import pickle

        with open(path, "rb") as f:
            data = f.read()
        t_load = time.perf_counter()
        model = pickle.loads(data)
        predict = lambda: model.predict_proba([text])  # noqa: E731
    elif kind == "mlflow":
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow
        import mlflow.sklearn

        mlflow.set_tracking_uri(extra)
        mlflow.set_registry_uri(extra)
        t_load = time.perf_counter()
        model = mlflow.sklearn.load_model(path)
        predict = lambda: model.predict_proba([text])  # noqa: E731
    elif kind == "onnxruntime":
        import numpy as np
        import onnxruntime as ort

        t_load = time.perf_counter()
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        predict = lambda: sess.run(None, {"input": np.array([[text]])})  # noqa: E731
    else:
        raise SystemExit(f"unknown cold worker {kind}")
    t_ready = time.perf_counter()
    predict()
    t_first = time.perf_counter()
    import json

    print(json.dumps({
        "kind": kind,
        "script_to_import_ms": (t_import - _T0) * 1e3,
        "import_ms": (t_load - t_import) * 1e3,
        "load_ms": (t_ready - t_load) * 1e3,
        "ready_ms": (t_ready - _T0) * 1e3,
        "first_ms": (t_first - t_ready) * 1e3,
    }))


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--cold":
    _worker_cold(*sys.argv[2:])
    sys.exit(0)


# ---------------------------------------------------------------------------------------------
# Everything else
# ---------------------------------------------------------------------------------------------

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime as dt  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".work" / "bench"
SHARED = ROOT.parent / "shared" / "data"
BUNDLED = ROOT / "benches" / "data"
PKG = ROOT / "pkg"
CLI = ROOT / "target" / "release" / "skedge"
ORT_NODE_PREFIX = WORK / "node"
MLFLOW_DIR = WORK / "mlflow"
MODEL_PARAMS = {"ngram_range": (1, 2), "min_df": 2}
SEED = 0

# The systems, in table order.
SYSTEMS = [
    ("skedge_wasm", "skedge, wasm in Node"),
    ("skedge_native", "skedge, native (Rust, in process)"),
    ("skedge_cli", "skedge CLI (`skedge predict`)"),
    ("sklearn_joblib", "scikit-learn (`joblib.load` + `predict_proba`)"),
    ("sklearn_pickle", "scikit-learn (`pickle.loads`)"),
    ("mlflow", "MLflow registry (`models:/bench@champion`)"),
    ("ort_python", "skl2onnx + onnxruntime (Python)"),
    ("ort_node", "skl2onnx + onnxruntime-node"),
]


def say(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


def one_core() -> list:
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def py_env() -> dict:
    """Single-threaded numeric libraries; OPENBLAS_CORETYPE/L2_SIZE unset for these commands only
    (they slow a current numpy; see the workplace notes)."""
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = "1"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "1"
    env["PYTHONHASHSEED"] = "0"
    return env


def run_json(cmd: list, *, env: dict | None = None, timeout: float = 600) -> tuple[dict, float]:
    """Runs `cmd`, returns its last stdout line as JSON and the wall time of the whole process."""
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(map(str, cmd))} printed no JSON:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return json.loads(lines[-1]), wall


def quantiles(values: list) -> dict:
    v = sorted(values)
    if not v:
        return {"n": 0}
    q = lambda p: v[min(len(v) - 1, round((len(v) - 1) * p))]  # noqa: E731
    return {"n": len(v), "min": v[0], "p50": q(0.5), "p99": q(0.99), "max": v[-1]}


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# 1. data and model
# ---------------------------------------------------------------------------------------------


def read_tsv(path: Path) -> tuple[list, list]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        pairs = [(r[0], int(r[1])) for r in rows]
    return [t for t, _ in pairs], [y for _, y in pairs]


def choose_data(bundled: bool) -> dict:
    shared = [SHARED / f"sst2_{s}.tsv" for s in ("train", "dev", "test")]
    if not bundled and all(p.is_file() for p in shared):
        return {"source": "SST-2 (../shared/data): train → model; dev + test → texts",
                "train": [shared[0]], "eval": shared[1:]}
    return {"source": "bundled SST-2 sample (benches/data): every 20th train row → model; "
                      "first 1,000 test rows → texts",
            "train": [BUNDLED / "sst2_train_every20th.tsv"], "eval": [BUNDLED / "sst2_test_first1000.tsv"]}


def prepare_model(data: dict) -> dict:
    """Trains (or reuses) the pipeline and exports it; returns paths and facts."""
    import joblib
    import numpy as np
    import sklearn
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    X, y = [], []
    for p in data["train"]:
        t, lab = read_tsv(p)
        X += t
        y += lab
    texts, labels = [], []
    for p in data["eval"]:
        t, lab = read_tsv(p)
        texts += t
        labels += lab
    if any("\n" in t or "\r" in t for t in texts):
        raise SystemExit("bench: a text contains a line break; the text files hold one text per line")

    key = hashlib.sha256(json.dumps([
        [sha256_file(p) for p in data["train"]], repr(MODEL_PARAMS), sklearn.__version__, np.__version__,
    ]).encode()).hexdigest()[:16]
    mdir = WORK / f"model-{key}"
    mdir.mkdir(parents=True, exist_ok=True)
    jl, pk, sk = mdir / "model.joblib", mdir / "model.pkl", mdir / "model.skedge"
    if not jl.is_file():
        say(f"training TfidfVectorizer{MODEL_PARAMS} + LogisticRegression on {len(X):,} texts")
        pipe = Pipeline([
            ("tfidf", TfidfVectorizer(**MODEL_PARAMS)),
            ("clf", LogisticRegression(max_iter=1000, random_state=SEED)),
        ]).fit(X, y)
        joblib.dump(pipe, jl)
    pipe = joblib.load(jl)
    if not pk.is_file():
        import pickle

        pk.write_bytes(pickle.dumps(pipe, protocol=pickle.HIGHEST_PROTOCOL))

    texts_file = WORK / "texts.txt"
    texts_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
    eval_tsv = WORK / "eval.tsv"
    eval_tsv.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in zip(texts, labels)),
                        encoding="utf-8")

    # Exported every run: the artifact must be the one the current CLI and wasm package read.
    def export(out: Path, precision: str, extra: tuple = ()) -> str:
        """Runs scripts/export.py; returns its gate line."""
        say(f"exporting with scripts/export.py --precision {precision} {''.join(e + ' ' for e in extra)}(gate on the benchmark texts)")
        p = subprocess.run([sys.executable, str(ROOT / "scripts" / "export.py"), "--joblib", str(jl),
                            "--out", str(out), "--validation", str(eval_tsv), "--skedge", str(CLI),
                            "--name", "bench", "--precision", precision, *extra],
                           capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise SystemExit(f"bench: {precision} export failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return next((ln for ln in (p.stdout + p.stderr).splitlines() if "gate" in ln), "").strip()

    gate = export(sk, "exact")
    compact = mdir / "model.compact.skedge"
    compact_gate = export(compact, "compact")
    # The same model signed (issue #12's signed first load): a key of the benchmark's own.
    key = mdir / "bench-signing"
    if not key.with_suffix(".key").is_file():
        subprocess.run([str(CLI), "keygen", str(key)], check=True, capture_output=True)
    signed = mdir / "model.signed.skedge"
    export(signed, "exact", ("--sign-key", str(key.with_suffix(".key"))))

    sk_labels = [int(v) for v in pipe.predict(texts)]
    return {
        "dir": mdir, "joblib": jl, "pickle": pk, "skedge": sk, "texts_file": texts_file,
        "texts": texts, "labels": sk_labels, "n_terms": len(pipe[0].vocabulary_),
        "train_texts": len(X), "accuracy": float(np.mean(np.array(sk_labels) == np.array(labels))),
        "parity_gate": gate, "pipeline": pipe, "skedge_compact": compact, "compact_gate": compact_gate,
        "skedge_signed": signed, "public_key": key.with_suffix(".pub"),
    }


# ---------------------------------------------------------------------------------------------
# 2. peers' model files
# ---------------------------------------------------------------------------------------------


def prepare_onnx(m: dict) -> dict:
    out = m["dir"] / "model.onnx"
    info = {"path": out}
    if not out.is_file():
        say("converting with skl2onnx (locale C.UTF-8, zipmap off)")
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import StringTensorType
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        try:
            onx = convert_sklearn(
                m["pipeline"], initial_types=[("input", StringTensorType([None, 1]))],
                options={TfidfVectorizer: {"locale": "C.UTF-8"}, LogisticRegression: {"zipmap": False}})
        except Exception as err:  # noqa: BLE001 - report any conversion failure as "does not convert"
            info["error"] = f"{type(err).__name__}: {err}"
            return info
        out.write_bytes(onx.SerializeToString())
    return info


def prepare_mlflow(m: dict) -> dict:
    """Logs and registers the pipeline in a sqlite registry (once per model), alias `champion`."""
    db = MLFLOW_DIR / "mlflow.db"
    uri = f"sqlite:///{db}"
    marker = MLFLOW_DIR / "model.sha256"
    # The signature (from a numpy string array) is what lets MLflow's pyfunc, hence spark_udf, feed
    # a raw-text pipeline its texts; without it pyfunc passes a DataFrame and the vectorizer
    # iterates its column names (--only python). The sklearn flavour ignores it.
    sha = sha256_file(m["joblib"]) + " signature"
    if not (marker.is_file() and marker.read_text() == sha and db.is_file()):
        say("logging and registering the pipeline in a temporary MLflow registry (sqlite)")
        shutil.rmtree(MLFLOW_DIR, ignore_errors=True)
        MLFLOW_DIR.mkdir(parents=True)
        code = f"""
import os, warnings, joblib, numpy as np, mlflow, mlflow.sklearn
warnings.filterwarnings("ignore")
from mlflow import MlflowClient
from mlflow.models import infer_signature
mlflow.set_tracking_uri({uri!r}); mlflow.set_registry_uri({uri!r})
exp = mlflow.create_experiment("bench", artifact_location={(MLFLOW_DIR / 'artifacts').as_uri()!r})
pipe = joblib.load({str(m['joblib'])!r})
with mlflow.start_run(experiment_id=exp):
    example = np.array({m["texts"][:5]!r})
    info = mlflow.sklearn.log_model(pipe, name="model", registered_model_name="bench",
                                    signature=infer_signature(example, pipe.predict(example)))
client = MlflowClient()
v = client.get_latest_versions("bench")[0].version if hasattr(client, "get_latest_versions") else "1"
client.set_registered_model_alias("bench", "champion", v)
"""
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=py_env(),
                           check=False)
        if p.returncode != 0:
            return {"error": p.stderr[-2000:]}
        marker.write_text(sha)
    files = [f for f in (MLFLOW_DIR / "artifacts").rglob("*") if f.is_file()]
    model_files = [f for f in files if f.name.startswith("model.") and f.suffix in (".pkl", ".skops")]
    return {"uri": uri, "model_uri": "models:/bench@champion", "files": files, "model_files": model_files}


# ---------------------------------------------------------------------------------------------
# 3. measurements
# ---------------------------------------------------------------------------------------------


def cold_samples(cmd: list, n: int, env: dict | None = None) -> dict:
    samples, walls = [], []
    for _ in range(n):
        r, wall = run_json(cmd, env=env)
        samples.append(r)
        walls.append(wall * 1e3)
    keys = [k for k, v in samples[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {k: quantiles([s[k] for s in samples]) for k in keys}
    out["process_wall_ms"] = quantiles(walls)
    return out


def bench_node(m: dict, quick: bool) -> dict:
    node = ["node", str(ROOT / "scripts" / "bench_node.mjs")]
    q = ["quick"] if quick else []
    res = {}
    say("skedge wasm in Node: in-process")
    res["warm"], _ = run_json(one_core() + node + ["warm-skedge", str(PKG), str(m["skedge"]), str(m["texts_file"])] + q)
    say("skedge wasm in Node: fresh processes")
    res["cold"] = cold_samples(one_core() + node + ["cold-skedge", str(PKG), str(m["skedge"]), str(m["texts_file"])],
                               8 if quick else 30)
    res["cold_core"] = cold_samples(one_core() + node + ["cold-core", str(PKG), str(m["skedge"]), str(m["texts_file"])],
                                    8 if quick else 30)
    return res


def bench_cold(m: dict, quick: bool) -> dict:
    """Issue #12's cold figures: fresh processes (Node, workerd, Chromium), median and max."""
    node = ["node", str(ROOT / "scripts" / "bench_node.mjs")]
    args = [str(PKG), str(m["skedge"]), str(m["texts_file"])]
    n = 10 if quick else 20
    res = {}
    say(f"cold start (issue #12): {n} fresh Node processes each, default flags, --no-wasm-tier-up, lite")
    res["node"] = cold_samples(one_core() + node + ["cold-start"] + args, n)
    res["node_no_tier_up"] = cold_samples(one_core() + ["node", "--no-wasm-tier-up"] + node[1:] + ["cold-start"] + args, n)
    res["node_init"] = cold_samples(one_core() + node + ["cold-init"] + args, n)
    if (PKG / "lite-node.mjs").is_file():
        res["node_lite"] = cold_samples(one_core() + node + ["cold-start"] + args + ["lite-node.mjs"], n)
    # The floor under that first load: a one-function module that copies the artifact into wasm
    # memory and reads it once (no skedge), on each Node line.
    floor = ["cold-floor", "-", str(m["skedge"]), "-"]
    machine = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip().lstrip("v")
    res["floor"] = {machine: cold_samples(one_core() + node + floor, n)}
    # The same first load on the other maintained Node lines (scripts/node_versions.sh installs them).
    versions = subprocess.run([str(ROOT / "scripts" / "node_versions.sh")], capture_output=True, text=True,
                              check=False)
    if versions.returncode != 0:
        res["node_versions"] = {"error": versions.stderr[-3000:]}
    else:
        res["node_versions"] = {}
        for line in versions.stdout.split("\n"):
            if line.strip():
                version, directory = line.split(" ", 1)
                say(f"cold start (issue #12): {n} fresh Node {version} processes")
                res["node_versions"][version] = cold_samples(
                    one_core() + [str(Path(directory) / "node")] + node[1:] + ["cold-start"] + args, n)
                res["floor"][version] = cold_samples(
                    one_core() + [str(Path(directory) / "node")] + node[1:] + floor, n)
    # Bun (package.json's, which runs bench_node.mjs as it is): the package's Node entry there.
    bun = ROOT / "node_modules" / ".bin" / "bun"
    if bun.exists():
        say(f"cold start (issue #12): {n} fresh Bun processes, and after `await init()`")
        res["bun_version"] = subprocess.run([str(bun), "--version"], capture_output=True, text=True).stdout.strip()
        res["bun"] = cold_samples(one_core() + [str(bun)] + node[1:] + ["cold-start"] + args, n)
        res["bun_init"] = cold_samples(one_core() + [str(bun)] + node[1:] + ["cold-init"] + args, n)
    res["signed"] = cold_samples(one_core() + node + ["cold-signed", str(PKG), str(m["skedge_signed"]),
                                                       str(m["texts_file"]), str(m["public_key"])], n)
    res["signed_init"] = cold_samples(one_core() + node + ["cold-signed", str(PKG), str(m["skedge_signed"]),
                                                            str(m["texts_file"]), str(m["public_key"]), "init"], n)
    # A signed model in a Worker: `Model.load` of the bytes (WebCrypto verifies) or `fromBytes` (the wasm).
    signed = [str(PKG), str(m["skedge_signed"]), str(m["texts_file"]), "full", str(m["public_key"])]
    for key, argv in (("workerd", ["cold-workerd"] + args), ("chromium", ["cold-chromium"] + args),
                      ("workerd_signed", ["cold-workerd"] + signed + ["load"]),
                      ("workerd_signed_sync", ["cold-workerd"] + signed + ["fromBytes"])):
        say(f"cold start (issue #12): {n} fresh {key} processes")
        try:
            res[key] = cold_samples(node + argv, n)
        except Exception as err:  # noqa: BLE001 - a missing browser must not hide the rest
            say(f"{key} failed: {err}")
            res[key] = {"error": f"{type(err).__name__}: {err}"[:3000]}
    # The workerd Cloudflare runs today (scripts/npm_next.sh), at its own compatibility date. It
    # starts a Worker (its global scope: the package's instantiation and warm-up) on the first
    # request, not at start-up: a request that loads no model starts the isolate, then the first
    # request that loads the model is measured as in the older workerd above.
    nxt = subprocess.run([str(ROOT / "scripts" / "npm_next.sh")], capture_output=True, text=True, check=False)
    bin_ = Path(nxt.stdout.strip() or "-") / ".bin" / "workerd"
    if nxt.returncode != 0 or not bin_.exists():
        res["workerd_current"] = {"error": (nxt.stderr or "no workerd")[-3000:]}
    else:
        say(f"cold start (issue #12): {n} fresh processes of Cloudflare's current workerd")
        res["workerd_current_version"] = subprocess.run([str(bin_), "--version"], capture_output=True,
                                                        text=True).stdout.strip()
        try:
            res["workerd_current"] = cold_samples(node + ["cold-workerd"] + args, n, env={
                **os.environ, "SKEDGE_WORKERD": str(bin_), "SKEDGE_WORKERD_START": "1"})
        except Exception as err:  # noqa: BLE001 - as above
            res["workerd_current"] = {"error": f"{type(err).__name__}: {err}"[:3000]}
    return res


def bench_ort_node(m: dict, onnx: dict, quick: bool) -> dict:
    if "error" in onnx or not onnx["path"].is_file():
        return {"error": onnx.get("error", "no ONNX model")}
    if not (ORT_NODE_PREFIX / "node_modules" / "onnxruntime-node").is_dir():
        return {"error": f"onnxruntime-node is not installed in {ORT_NODE_PREFIX} (scripts/bench.sh installs it)"}
    node = ["node", str(ROOT / "scripts" / "bench_node.mjs")]
    q = ["quick"] if quick else []
    res = {}
    say("onnxruntime-node: in-process")
    res["warm"], _ = run_json(one_core() + node + ["warm-ort", str(ORT_NODE_PREFIX), str(onnx["path"]),
                                                    str(m["texts_file"])] + q)
    say("onnxruntime-node: fresh processes")
    res["cold"] = cold_samples(one_core() + node + ["cold-ort", str(ORT_NODE_PREFIX), str(onnx["path"]),
                                                     str(m["texts_file"])], 3 if quick else 5)
    return res


def engine_binary() -> Path:
    p = subprocess.run(["cargo", "bench", "--bench", "engine", "--no-run", "--message-format=json"],
                       cwd=ROOT, capture_output=True, text=True, check=False)
    for line in p.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "engine" \
                and msg.get("executable"):
            return Path(msg["executable"])
    raise RuntimeError(f"cannot build the engine bench:\n{p.stderr[-3000:]}")


def bench_native(m: dict, quick: bool) -> dict:
    say("skedge native: in process (benches/engine.rs native mode)")
    env = dict(os.environ, SKEDGE_BENCH_MODEL=str(m["skedge"]), SKEDGE_BENCH_TEXTS=str(m["texts_file"]))
    if quick:
        env["SKEDGE_BENCH_REPS"] = "5"
    res, _ = run_json(one_core() + [str(engine_binary())], env=env)
    return res


def bench_cli(m: dict, quick: bool) -> dict:
    say("skedge CLI: fresh processes and throughput")
    one = WORK / "one_text.txt"
    one.write_text(m["texts"][0] + "\n", encoding="utf-8")
    walls = []
    for _ in range(5 if quick else 20):
        t = time.perf_counter()
        subprocess.run(one_core() + [str(CLI), "predict", str(m["skedge"]), "--input", str(one)],
                       stdout=subprocess.DEVNULL, check=True)
        walls.append((time.perf_counter() - t) * 1e3)
    # A spawn of `true` under the same taskset: the process overhead the wall time includes.
    base = []
    for _ in range(5 if quick else 20):
        t = time.perf_counter()
        subprocess.run(one_core() + ["true"], check=True)
        base.append((time.perf_counter() - t) * 1e3)
    # Throughput: the texts repeated to about 8 MB, JSON lines out to /dev/null, load included.
    block = "\n".join(m["texts"]) + "\n"
    reps = max(1, (2 if quick else 8) * 1_000_000 // len(block.encode()))
    big = WORK / "texts_big.txt"
    big.write_text(block * reps, encoding="utf-8")
    size = big.stat().st_size
    runs = []
    for _ in range(2 if quick else 5):
        t = time.perf_counter()
        subprocess.run(one_core() + [str(CLI), "predict", str(m["skedge"]), "--input", str(big)],
                       stdout=subprocess.DEVNULL, check=True)
        runs.append(time.perf_counter() - t)
    return {"process_wall_ms": quantiles(walls), "spawn_true_ms": quantiles(base),
            "throughput_input_bytes": size, "throughput_texts": reps * len(m["texts"]),
            "throughput_wall_s": quantiles(runs)}


SKLEARN_WARM = r"""
import json, pickle, sys, time, joblib, numpy as np
from threadpoolctl import threadpool_info
jl, pk, texts_file, quick = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
texts = open(texts_file, encoding="utf-8").read().split("\n")[:-1]
def timed(n, f):
    out = []
    for _ in range(n):
        t = time.perf_counter(); f(); out.append(time.perf_counter() - t)
    return out
res = {"threadpools": [{k: d.get(k) for k in ("internal_api", "num_threads", "architecture", "version")}
                       for d in threadpool_info()]}
res["joblib_load_s"] = timed(3 if quick else 10, lambda: joblib.load(jl))
data = open(pk, "rb").read()
res["pickle_loads_s"] = timed(3 if quick else 10, lambda: pickle.loads(data))
pipe = joblib.load(jl)
for t in texts[:200]: pipe.predict_proba([t])
single = []
for _ in range(1 if quick else 2):
    for t in texts:
        s = time.perf_counter_ns(); pipe.predict_proba([t]); single.append(time.perf_counter_ns() - s)
res["single_ns"] = single
res["batch_s"] = timed(2 if quick else 7, lambda: pipe.predict_proba(texts))
res["batch_predict_s"] = timed(2 if quick else 5, lambda: pipe.predict(texts))
print(json.dumps(res))
"""

ORT_WARM = r"""
import json, sys, time, numpy as np, onnxruntime as ort
path, texts_file, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
texts = open(texts_file, encoding="utf-8").read().split("\n")[:-1]
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
def timed(n, f):
    out = []
    for _ in range(n):
        t = time.perf_counter(); f(); out.append(time.perf_counter() - t)
    return out
res = {"version": ort.__version__}
res["session_s"] = timed(3 if quick else 10, lambda: ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]))
sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
for t in texts[:200]: sess.run(None, {"input": np.array([[t]])})
single = []
for _ in range(1 if quick else 2):
    for t in texts:
        s = time.perf_counter_ns(); sess.run(None, {"input": np.array([[t]])}); single.append(time.perf_counter_ns() - s)
res["single_ns"] = single
def batch():
    out = []
    for k in range(0, len(texts), 1000):
        out.append(sess.run(None, {"input": np.array(texts[k:k + 1000]).reshape(-1, 1)}))
    return out
res["batch_s"] = timed(2 if quick else 5, batch)
out = batch()
res["labels"] = [int(v) for o in out for v in o[0]]
res["proba"] = [float(v) for o in out for v in o[1][:, 1]]
print(json.dumps(res))
"""

MLFLOW_WARM = r"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import mlflow, mlflow.sklearn
uri, model_uri, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
model = mlflow.sklearn.load_model(model_uri)
texts = open(sys.argv[4], encoding="utf-8").read().split("\n")[:-1]
labels = [int(v) for v in model.predict(texts)]
out = []
for _ in range(1 if quick else 3):
    t = time.perf_counter(); mlflow.sklearn.load_model(model_uri); out.append(time.perf_counter() - t)
print(json.dumps({"load_s": out, "mlflow_version": mlflow.__version__, "labels": labels}))
"""


def bench_sklearn(m: dict, quick: bool) -> dict:
    say("scikit-learn: in-process (joblib.load, pickle.loads, predict_proba)")
    res, _ = run_json(one_core() + [sys.executable, "-c", SKLEARN_WARM, str(m["joblib"]), str(m["pickle"]),
                                    str(m["texts_file"]), "1" if quick else "0"], env=py_env())
    res["single_ns"] = quantiles(res["single_ns"])
    for k in ("joblib_load_s", "pickle_loads_s", "batch_s", "batch_predict_s"):
        res[k] = quantiles(res[k])
    say("scikit-learn: fresh processes (joblib, pickle)")
    me = [sys.executable, str(Path(__file__).resolve()), "--cold"]
    n = 3 if quick else 5
    res["cold_joblib"] = cold_samples(one_core() + me + ["joblib", str(m["joblib"]), m["texts"][0]], n, py_env())
    res["cold_pickle"] = cold_samples(one_core() + me + ["pickle", str(m["pickle"]), m["texts"][0]], n, py_env())
    return res


def bench_mlflow(m: dict, ml: dict, quick: bool) -> dict:
    if "error" in ml:
        return {"error": ml["error"]}
    say("MLflow: load_model(models:/bench@champion), in process and in fresh processes")
    res, _ = run_json(one_core() + [sys.executable, "-c", MLFLOW_WARM, ml["uri"], ml["model_uri"],
                                    "1" if quick else "0", str(m["texts_file"])], env=py_env())
    res["load_s"] = quantiles(res["load_s"])
    me = [sys.executable, str(Path(__file__).resolve()), "--cold"]
    res["cold"] = cold_samples(one_core() + me + ["mlflow", ml["model_uri"], m["texts"][0], ml["uri"]],
                               1 if quick else 3, py_env())
    return res


def bench_ort_python(m: dict, onnx: dict, quick: bool) -> dict:
    if "error" in onnx or not onnx["path"].is_file():
        return {"error": onnx.get("error", "no ONNX model")}
    say("onnxruntime (Python): in-process")
    res, _ = run_json(one_core() + [sys.executable, "-c", ORT_WARM, str(onnx["path"]), str(m["texts_file"]),
                                    "1" if quick else "0"], env=py_env())
    res["single_ns"] = quantiles(res["single_ns"])
    res["session_s"] = quantiles(res["session_s"])
    res["batch_s"] = quantiles(res["batch_s"])
    pp = m["pipeline"].predict_proba(m["texts"])[:, 1]
    res["max_abs_dproba"] = max(abs(a - b) for a, b in zip(res.pop("proba"), pp))
    say("onnxruntime (Python): fresh processes")
    me = [sys.executable, str(Path(__file__).resolve()), "--cold"]
    res["cold"] = cold_samples(one_core() + me + ["onnxruntime", str(onnx["path"]), m["texts"][0]],
                               3 if quick else 5, py_env())
    return res


# ---------------------------------------------------------------------------------------------
# 4. sizes
# ---------------------------------------------------------------------------------------------


def dist_closure(names: list) -> list:
    """Installed distributions `names` and everything they require (markers evaluated, no extras)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen, todo = {}, list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            d = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = d
        for r in d.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def dists_bytes(names: list) -> dict:
    total, count = 0, 0
    dists = dist_closure(names)
    for d in dists:
        for f in d.files or []:
            p = Path(d.locate_file(f))
            if p.is_file():
                total += p.stat().st_size
                count += 1
    return {"bytes": total, "distributions": sorted(d.metadata["Name"] for d in dists), "files": count}


def files_bytes(paths: list, with_gzip: bool = True) -> dict:
    raw = sum(p.stat().st_size for p in paths)
    out = {"bytes": raw, "files": len(paths)}
    if with_gzip:
        out["gzip"] = sum(gz(p.read_bytes()) for p in paths)
    return out


def sizes(m: dict, onnx: dict, ml: dict) -> dict:
    say("sizes")
    s = {"artifact": {}, "runtime": {}}
    a = s["artifact"]
    for key, path in (("skedge", m["skedge"]), ("skedge_compact", m["skedge_compact"]), ("joblib", m["joblib"]),
                      ("pickle", m["pickle"])):
        data = path.read_bytes()
        a[key] = {"bytes": len(data), "gzip": gz(data)}
    if "error" not in onnx and onnx["path"].is_file():
        data = onnx["path"].read_bytes()
        a["onnx"] = {"bytes": len(data), "gzip": gz(data)}
    if "error" not in ml and ml.get("files"):
        a["mlflow_model_dir"] = files_bytes(ml["files"])
        if ml["model_files"]:
            a["mlflow_model_file"] = files_bytes(ml["model_files"]) | {"name": ml["model_files"][0].name}
    r = s["runtime"]
    wasm = PKG / "skedge_bg.wasm"
    if wasm.is_file():
        r["skedge_wasm"] = files_bytes([wasm])
        glue = [PKG / "core.js", PKG / "node.mjs", PKG / "errors.js"]
        r["skedge_wasm_js_glue"] = files_bytes([p for p in glue if p.is_file()])
        r["skedge_wasm"]["wasm_opt"] = wasm_opt_sizes(wasm)
    lite = PKG / "skedge_lite_bg.wasm"
    if lite.is_file():
        r["skedge_wasm_lite"] = files_bytes([lite])
    if CLI.is_file():
        r["skedge_native_cli"] = files_bytes([CLI])
    r["sklearn"] = dists_bytes(["scikit-learn"])
    r["onnxruntime_python"] = dists_bytes(["onnxruntime"])
    r["mlflow"] = dists_bytes(["mlflow", "scikit-learn"])
    ortn = ORT_NODE_PREFIX / "node_modules"
    if (ortn / "onnxruntime-node").is_dir():
        every = [p for d in ("onnxruntime-node", "onnxruntime-common") for p in (ortn / d).rglob("*") if p.is_file()]
        linux = [p for p in every if not any(x in p.parts for x in ("darwin", "win32", "arm64"))]
        r["ort_node_installed"] = files_bytes(every, with_gzip=False)
        r["ort_node"] = files_bytes(linux)
    return s


def wasm_opt_sizes(wasm: Path) -> dict:
    """The shipped .wasm (already `wasm-opt -Oz` by scripts/build.sh) and, for reference, the
    wasm-bindgen output before wasm-opt and the shipped file through `wasm-opt -Oz` once more."""
    out = {}
    pre = ROOT / "target" / "npm" / "web" / "skedge_bg.wasm"
    if pre.is_file():
        out["before_wasm_opt"] = files_bytes([pre])
    tool = ROOT / "node_modules" / ".bin" / "wasm-opt"
    if tool.exists():
        again = WORK / "skedge_bg.Oz.wasm"
        p = subprocess.run([str(tool), "-Oz", str(wasm), "-o", str(again)], capture_output=True, check=False)
        if p.returncode == 0:
            out["shipped_through_wasm_opt_Oz_again"] = files_bytes([again])
    return out


# ---------------------------------------------------------------------------------------------
# 5. tables
# ---------------------------------------------------------------------------------------------


def fmt_time(s: float | None) -> str:
    if s is None:
        return "n/a"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_bytes(b: int | None) -> str:
    if b is None:
        return "n/a"
    if b < 10_000:
        return f"{b} B"
    if b < 10_000_000:
        return f"{b / 1e3:.1f} kB"
    return f"{b / 1e6:.1f} MB"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}×" if x >= 100 else f"{x:.3g}×"


def summarize(R: dict) -> dict:
    """One row per system: seconds, texts/s, bytes. None where it does not apply."""
    n_texts = len(R["model"]["labels"])
    text_bytes = R["model"]["text_bytes"]
    rows = {k: {} for k, _ in SYSTEMS}

    def ms(d: dict | None, key: str = "p50") -> float | None:
        return None if not d or key not in d else d[key] / 1e3

    w, nat, cli = R.get("skedge_wasm", {}), R.get("skedge_native", {}), R.get("skedge_cli", {})
    if "warm" in w:
        rows["skedge_wasm"] |= {
            "cold": ms(w["cold"]["ready_ms"]), "cold_wall": ms(w["cold"]["process_wall_ms"]),
            "load": ms(w["warm"]["from_bytes_ms"]),
            "p50": w["warm"]["single_ns"]["p50"] / 1e9, "p99": w["warm"]["single_ns"]["p99"] / 1e9,
            "batch": ms(w["warm"]["batch_ms"]),
        }
    if "load_s" in nat:
        rows["skedge_native"] |= {
            "cold": nat["first_load_s"] + nat["read_file_s"], "load": nat["load_s"]["p50"],
            "p50": nat["single_s"]["p50"], "p99": nat["single_s"]["p99"], "batch": nat["batch_s"]["p50"],
        }
    if "process_wall_ms" in cli:
        thr = cli["throughput_wall_s"]["p50"]
        rows["skedge_cli"] |= {"cold_wall": ms(cli["process_wall_ms"]),
                               "batch": thr * n_texts / cli["throughput_texts"],
                               "cli_mb_s": cli["throughput_input_bytes"] / thr / 1e6}
    sk = R.get("sklearn", {})
    if "single_ns" in sk:
        rows["sklearn_joblib"] |= {
            "cold": ms(sk["cold_joblib"]["ready_ms"]), "cold_wall": ms(sk["cold_joblib"]["process_wall_ms"]),
            "load": sk["joblib_load_s"]["p50"],
            "p50": sk["single_ns"]["p50"] / 1e9, "p99": sk["single_ns"]["p99"] / 1e9,
            "batch": sk["batch_s"]["p50"],
        }
        rows["sklearn_pickle"] |= {
            "cold": ms(sk["cold_pickle"]["ready_ms"]), "cold_wall": ms(sk["cold_pickle"]["process_wall_ms"]),
            "load": sk["pickle_loads_s"]["p50"],
        }
    ml = R.get("mlflow", {})
    if "cold" in ml:
        rows["mlflow"] |= {"cold": ms(ml["cold"]["ready_ms"]), "cold_wall": ms(ml["cold"]["process_wall_ms"]),
                           "load": ml["load_s"]["p50"]}
    op = R.get("ort_python", {})
    if "cold" in op:
        rows["ort_python"] |= {
            "cold": ms(op["cold"]["ready_ms"]), "cold_wall": ms(op["cold"]["process_wall_ms"]),
            "load": op["session_s"]["p50"],
            "p50": op["single_ns"]["p50"] / 1e9, "p99": op["single_ns"]["p99"] / 1e9,
            "batch": op["batch_s"]["p50"],
        }
    on = R.get("ort_node", {})
    if "warm" in on:
        rows["ort_node"] |= {
            "cold": ms(on["cold"]["ready_ms"]), "cold_wall": ms(on["cold"]["process_wall_ms"]),
            "load": ms(on["warm"]["session_create_ms"]),
            "p50": on["warm"]["single_ns"]["p50"] / 1e9, "p99": on["warm"]["single_ns"]["p99"] / 1e9,
            "batch": ms(on["warm"]["batch_ms"]),
        }
    # Agreement with scikit-learn's labels.
    ref = R["model"]["labels"]
    for key, labels in (("skedge_wasm", w.get("warm", {}).get("labels")), ("mlflow", ml.get("labels")),
                        ("ort_python", op.get("labels")), ("ort_node", on.get("warm", {}).get("labels"))):
        if labels is not None and rows[key]:
            rows[key]["agree"] = sum(a == b for a, b in zip(labels, ref)) / len(ref)
    # The CLI passed export's parity gate on these very texts (bit-identical decisions); the native
    # engine is the same code; pickle.loads gives the same scikit-learn object.
    for key in ("skedge_native", "skedge_cli", "sklearn_joblib", "sklearn_pickle"):
        if rows[key]:
            rows[key]["agree"] = 1.0
    # Sizes.
    a, rt = R["sizes"]["artifact"], R["sizes"]["runtime"]
    art = {"skedge_wasm": "skedge", "skedge_native": "skedge", "skedge_cli": "skedge",
           "sklearn_joblib": "joblib", "sklearn_pickle": "pickle", "mlflow": "mlflow_model_dir",
           "ort_python": "onnx", "ort_node": "onnx"}
    run = {"skedge_wasm": "skedge_wasm", "skedge_cli": "skedge_native_cli", "sklearn_joblib": "sklearn",
           "sklearn_pickle": "sklearn", "mlflow": "mlflow", "ort_python": "onnxruntime_python", "ort_node": "ort_node"}
    for key, _ in SYSTEMS:
        if key in art and art[key] in a:
            rows[key]["art"] = a[art[key]]["bytes"]
            rows[key]["art_gz"] = a[art[key]].get("gzip")
        if key in run and run[key] in rt:
            rows[key]["rt"] = rt[run[key]]["bytes"]
            rows[key]["rt_gz"] = rt[run[key]].get("gzip")
        if rows[key].get("batch"):
            rows[key]["tps"] = n_texts / rows[key]["batch"]
            rows[key]["mbps"] = text_bytes / rows[key]["batch"] / 1e6
    return rows


COLUMNS = [
    ("cold", "cold start¹", fmt_time, "time"),
    ("cold_wall", "process wall²", fmt_time, "time"),
    ("load", "load, in process³", fmt_time, "time"),
    ("p50", "single p50⁴", fmt_time, "time"),
    ("p99", "single p99⁴", fmt_time, "time"),
    ("tps", "batch texts/s⁵", lambda x: "n/a" if x is None else f"{x:,.0f}", "rate"),
    ("art", "model bytes", fmt_bytes, "size"),
    ("art_gz", "model gzip", fmt_bytes, "size"),
    ("rt", "runtime bytes⁶", fmt_bytes, "size"),
    ("agree", "labels = sklearn", lambda x: "n/a" if x is None else f"{100 * x:.2f} %", None),
]


def tables(R: dict, rows: dict) -> str:
    ref = rows["skedge_wasm"]
    names = dict(SYSTEMS)
    out = []
    head = "| system | " + " | ".join(c[1] for c in COLUMNS) + " |"
    out += [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for key, _ in SYSTEMS:
        r = rows[key]
        if not r:
            err = R.get(key, {}).get("error", "not measured")
            out.append(f"| {names[key]} | " + " | ".join(["n/a"] * len(COLUMNS)) + f" |  <!-- {err[:80]} -->")
            continue
        out.append(f"| {names[key]} | " + " | ".join(f(r.get(k)) for k, _, f, _ in COLUMNS) + " |")
    out.append("")
    out.append("**Ratios** — how many times skedge (wasm in Node) is faster / smaller than each system "
               "(> 1× = skedge better):")
    out.append("")
    rcols = [c for c in COLUMNS if c[3]]
    out += ["| system | " + " | ".join(c[1] for c in rcols) + " |", "|" + "---|" * (len(rcols) + 1)]
    for key, _ in SYSTEMS:
        if key == "skedge_wasm" or not rows[key]:
            continue
        cells = []
        for k, _, _, kind in rcols:
            mine, theirs = ref.get(k), rows[key].get(k)
            if mine is None or theirs is None or mine == 0 or theirs == 0:
                cells.append("n/a")
            elif kind == "rate":
                cells.append(fmt_ratio(mine / theirs))
            else:
                cells.append(fmt_ratio(theirs / mine))
        out.append(f"| {names[key]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def targets(R: dict, rows: dict) -> str:
    w, sk = rows["skedge_wasm"], rows["sklearn_joblib"]
    a, rt = R["sizes"]["artifact"], R["sizes"]["runtime"]
    cli = rows["skedge_cli"]
    lines = ["| target | measured | met |", "|---|---|---|"]

    def row(name, value, ok):
        lines.append(f"| {name} | {value} | {'n/a' if ok is None else ('yes' if ok else '**no**')} |")

    core = R.get("skedge_wasm", {}).get("cold_core")
    if core:
        total, pre = core["total_ms"]["p50"] / 1e3, core["precompiled_ms"]["p50"] / 1e3
        row(f"cold start ≤ 1 ms ({R['model']['n_terms']:,} terms; fresh Node process: compile + instantiate + "
            "`fromBytes` + first prediction)",
            f"{fmt_time(total)} (compile {core['compile_ms']['p50']:.3g} ms, instantiate "
            f"{core['instantiate_ms']['p50']:.3g} ms, fromBytes {core['from_bytes_ms']['p50']:.3g} ms, first "
            f"prediction {core['first_ms']['p50']:.3g} ms; from a compiled module {fmt_time(pre)})", total <= 1e-3)
    if w.get("p50") is not None:
        row("single text p50 ≤ 5 µs (wasm, JS↔wasm crossing included)", fmt_time(w["p50"]), w["p50"] <= 5e-6)
        row("single text p99 ≤ 20 µs", fmt_time(w["p99"]), w["p99"] <= 20e-6)
    if w.get("tps") and sk.get("tps"):
        x = w["tps"] / sk["tps"]
        row("batch ≥ 20× scikit-learn `predict_proba` (predictBatch, one thread)", fmt_ratio(x), x >= 20)
    if "skedge" in a and "joblib" in a:
        x = a["skedge"]["bytes"] / a["joblib"]["bytes"]
        row("artifact (exact) ≤ 50 % of the joblib file",
            f"{100 * x:.1f} % ({fmt_bytes(a['skedge']['bytes'])} vs {fmt_bytes(a['joblib']['bytes'])}; "
            f"gzip {fmt_bytes(a['skedge']['gzip'])} vs {fmt_bytes(a['joblib']['gzip'])})", x <= 0.5)
    if "skedge_compact" in a and "joblib" in a:
        x = a["skedge_compact"]["bytes"] / a["joblib"]["bytes"]
        agreement = R["model"].get("compact_gate", "")
        row("artifact (compact) ≤ 25 % of the joblib file",
            f"{100 * x:.1f} % ({fmt_bytes(a['skedge_compact']['bytes'])}; gzip "
            f"{fmt_bytes(a['skedge_compact']['gzip'])} = {100 * a['skedge_compact']['gzip'] / a['joblib']['bytes']:.1f} %); "
            f"{agreement}", x <= 0.25)
    if "skedge_wasm" in rt:
        g = rt["skedge_wasm"]["gzip"]
        row("wasm ≤ 100 KB gzip after wasm-opt",
            f"{g:,} B gzip ({rt['skedge_wasm']['bytes']:,} B raw, `wasm-opt -Oz`)", g <= 100_000)
    if cli.get("cli_mb_s"):
        row("native CLI `skedge predict` throughput (report)",
            f"{cli['cli_mb_s']:.1f} MB/s of text (load and JSON output included)", None)
    return "\n".join(lines)


# Issue #12's "before" figures: benches/RESULTS.md as committed before format v3 (scripts/bench.sh,
# 2026-11-26), and the issue's own measurements (fresh Node 20 processes, default flags) for the
# figures that table did not have.
BEFORE_V3 = {
    "import": "6.8–8.5 ms (issue)",
    "from_bytes": "18–27 ms (issue)",
    "no_tier_up": "26 ms (issue)",
    "first_predict": "1.6–4.1 ms (issue)",
    "second_from_bytes": "6.2–6.6 ms (issue)",
    "after_init": "not measured",
    "floor": "n/a",
    "ready": "26–40 ms (the issue's import, first `fromBytes` and first `predict`)",
    "warm_from_bytes": "3.74 ms, 31.2× `joblib.load`",
    "signed": "not measured",
    "signed_init": "not measured",
    "workerd": "not measured",
    "workerd_signed": "not measured",
    "chromium": "~60 ms (demo: \"model load 59.6 ms\")",
    "p50": "6.13 µs",
    "batch": "3.82×",
    "exact": "43.6 % (0.436)",
    "compact": "25.6 % (0.256)",
    "wasm": "148,558 B",
    "wasm_lite": "n/a",
}


def cold_table(R: dict, rows: dict) -> str:
    """Issue #12's targets: before v3, now (cold figures: median and max over fresh processes)."""
    c, w, sk = R.get("cold", {}), rows["skedge_wasm"], rows["sklearn_joblib"]
    a, rt = R["sizes"]["artifact"], R["sizes"]["runtime"]
    lines = ["| figure | before v3 | now | target | met |", "|---|---|---|---|---|"]

    def row(name, before, now, target, ok):
        lines.append(f"| {name} | {BEFORE_V3.get(before, 'not measured')} | {now} | {target} | "
                     f"{'n/a' if ok is None else ('yes' if ok else '**no**')} |")

    def cold(group, key):
        d = c.get(group, {}).get(key)
        return None if not d else (d["p50"], d["max"], d["n"])

    def fmt_cold(v):
        return "not measured" if v is None else f"{v[0]:.3g} ms (max {v[1]:.3g}, n = {v[2]})"

    def check(v, limit):
        return None if v is None else v[0] <= limit

    v = cold("node", "import_ms")
    # Since the imports change the Node entries compile the .wasm on first use: the first
    # `fromBytes` pays it, and the `ready` row below shows the sum.
    row("`import 'skedge'` (the .wasm is read, compiled and instantiated by the first load)", "import",
        fmt_cold(v), "≤ 4 ms", check(v, 4))
    v = cold("node", "from_bytes_ms")
    row("first `Model.fromBytes`, fresh Node process, default flags", "from_bytes", fmt_cold(v), "≤ 1 ms", check(v, 1))
    v = cold("node_no_tier_up", "from_bytes_ms")
    row("the same with `--no-wasm-tier-up` (baseline code only)", "no_tier_up", fmt_cold(v), "≤ 2 ms", check(v, 2))
    v = cold("node", "first_predict_ms")
    row("first `predict` after it", "first_predict", fmt_cold(v), "≤ 0.5 ms", check(v, 0.5))
    v = cold("node", "ready_ms")
    row("import + first `fromBytes` + first `predict`", "ready", fmt_cold(v), "report", None)
    v, vp = cold("node_init", "from_bytes_ms"), cold("node_init", "first_predict_ms")
    if v is not None and vp is not None:
        row("after `await init()` at start-up (a server's first request): first `fromBytes`, first `predict`",
            "after_init", f"{fmt_cold(v)}; {fmt_cold(vp)}", "≤ 1 ms; ≤ 0.5 ms", check(v, 1) and check(vp, 0.5))
    for version, nv in sorted(c.get("node_versions", {}).items()):
        if version == "error":
            row("the same on the other Node lines", "node_versions", str(nv)[:120], "report", None)
            continue
        fb, ip = nv["from_bytes_ms"], nv["first_predict_ms"]
        row(f"the same on Node {version}: first `fromBytes`, fresh process; first `predict`",
            f"node_{version}", f"{fb['p50']:.3g} ms (max {fb['max']:.3g}, n = {fb['n']}); "
            f"{ip['p50']:.3g} ms (max {ip['max']:.3g})", "report", None)
    floors = [f"Node {version} {f['floor_ms']['p50']:.3g} ms (max {f['floor_ms']['max']:.3g}, "
              f"n = {f['floor_ms']['n']}; copy {f['copy_ms']['p50']:.2g}, read {f['read_ms']['p50']:.2g})"
              for version, f in sorted(c.get("floor", {}).items(), key=lambda kv: [int(x) for x in kv[0].split(".")])]
    if floors:
        row("the floor of any first load, without skedge: a one-function module copies the artifact into "
            "wasm memory and reads it once, fresh process", "floor", "; ".join(floors), "report", None)
    v, vp, vi = cold("bun", "from_bytes_ms"), cold("bun", "first_predict_ms"), cold("bun_init", "from_bytes_ms")
    if v is not None and vp is not None and vi is not None:
        row(f"the same on Bun {c.get('bun_version', '')}: first `fromBytes`, fresh process; first `predict`; "
            "first `fromBytes` after `await init()`", "bun", f"{fmt_cold(v)}; {fmt_cold(vp)}; {fmt_cold(vi)}",
            "report", None)
    v = cold("node", "second_from_bytes_ms")
    row("second `fromBytes` in the same process", "second_from_bytes", fmt_cold(v), "report", None)
    if w.get("load") is not None:
        x = sk["load"] / w["load"] if sk.get("load") else None
        row("warm `fromBytes` median (ratio to `joblib.load`)", "warm_from_bytes",
            f"{fmt_time(w['load'])}, {fmt_ratio(x)} `joblib.load`", "≤ 0.2 ms (≥ 400×)",
            w["load"] <= 0.2e-3 and (x is None or x >= 400))
    v = cold("signed", "signed_from_bytes_ms")
    row("signed artifact, first load (key pinned, fresh process)", "signed", fmt_cold(v), "≤ 2 ms", check(v, 2))
    v = cold("signed_init", "signed_from_bytes_ms")
    if v is not None:
        row("the same after `await init()` at start-up (a server's first signed load)", "signed_init",
            fmt_cold(v), "≤ 2 ms", check(v, 2))
    wd = c.get("workerd", {})
    if "first_request_ms" in wd:
        cpu = wd["first_request_cpu_ms"]
        row("workerd: cold isolate, first request that loads the model and predicts", "workerd",
            f"wall {fmt_cold(cold('workerd', 'first_request_ms'))}; CPU {cpu['p50']:.3g} ms (max {cpu['max']:.3g}); "
            f"start-up {wd['startup_ms']['p50']:.3g} ms; warm request CPU {wd['warm_request_cpu_ms']['p50']:.3g} ms",
            "CPU ≤ 10 ms", cpu["p50"] <= 10)
    else:
        row("workerd: cold isolate, first request", "workerd", wd.get("error", "not measured")[:120], "CPU ≤ 10 ms", None)
    wc = c.get("workerd_current", {})
    if "first_request_cpu_ms" in wc:
        cpu, start = wc["first_request_cpu_ms"], wc["start_request_cpu_ms"]
        row(f"the same in Cloudflare's current workerd ({c.get('workerd_current_version', '')}), which starts "
            "the Worker on its first request: that start (a request that loads no model; a hello-world "
            "Worker's costs about 7 ms), then the first request that loads the model and predicts",
            "workerd", f"start CPU {start['p50']:.3g} ms (max {start['max']:.3g}); then CPU {cpu['p50']:.3g} ms "
            f"(max {cpu['max']:.3g}), wall {fmt_cold(cold('workerd_current', 'first_request_ms'))}",
            "CPU ≤ 10 ms", cpu["p50"] <= 10)
    elif wc:
        row("the same in Cloudflare's current workerd", "workerd", wc.get("error", "not measured")[:120],
            "CPU ≤ 10 ms", None)
    ws, wss = c.get("workerd_signed", {}), c.get("workerd_signed_sync", {})
    if "first_request_cpu_ms" in ws and "first_request_cpu_ms" in wss:
        cpu, sync = ws["first_request_cpu_ms"], wss["first_request_cpu_ms"]
        row("workerd: signed artifact (key pinned), cold isolate, first request: `await Model.load(bytes)` "
            "(WebCrypto verifies) / `Model.fromBytes` (the wasm verifies)", "workerd_signed",
            f"CPU {cpu['p50']:.3g} ms (max {cpu['max']:.3g}) / {sync['p50']:.3g} ms (max {sync['max']:.3g}); "
            f"wall {fmt_cold(cold('workerd_signed', 'first_request_ms'))} / "
            f"{fmt_cold(cold('workerd_signed_sync', 'first_request_ms'))}", "CPU ≤ 10 ms", cpu["p50"] <= 10)
    else:
        row("workerd: signed artifact, first request", "workerd_signed",
            (ws.get("error") or wss.get("error") or "not measured")[:120], "CPU ≤ 10 ms", None)
    ch = c.get("chromium", {})
    if "cache_to_prediction_ms" in ch:
        v = cold("chromium", "cache_to_prediction_ms")
        row("Chromium: `Model.load` from the Cache API to first prediction", "chromium",
            f"{fmt_cold(v)}: `caches.open` + `match` {ch['cache_match_ms']['p50']:.3g} ms, `Model.load(response)` "
            f"{ch['model_load_ms']['p50']:.3g} ms (of which reading the body: a second read alone takes "
            f"{ch['second_body_read_ms']['p50']:.3g} ms), first `predict` {ch['first_predict_ms']['p50']:.3g} ms; "
            f"`init()` {ch['init_ms']['p50']:.3g} ms", "≤ 5 ms", check(v, 5))
    else:
        row("Chromium: `Model.load` from the Cache API", "chromium", ch.get("error", "not measured")[:120], "≤ 5 ms", None)
    if w.get("p50") is not None:
        row("one text, p50 warm (`predict`, crossing included)", "p50", fmt_time(w["p50"]), "≤ 4 µs", w["p50"] <= 4e-6)
    col = R.get("skedge_wasm", {}).get("warm", {}).get("batch_columnar_ms")
    if col and sk.get("tps"):
        x = len(R["model"]["labels"]) / (col["p50"] / 1e3) / sk["tps"]
        row("`predictBatch` (columnar) vs scikit-learn `predict_proba`, same texts, one core", "batch",
            f"{fmt_ratio(x)} ({len(R['model']['labels']) / (col['p50'] / 1e3):,.0f} texts/s)", "≥ 20×", x >= 20)
    if "skedge" in a and "joblib" in a:
        x, g = a["skedge"]["bytes"] / a["joblib"]["bytes"], a["skedge"]["gzip"] / a["joblib"]["gzip"]
        row("exact artifact / joblib bytes (gzip / gzip)", "exact", f"{100 * x:.1f} % ({x:.3f}; gzip {g:.3f})",
            "≤ 0.50", x <= 0.5)
    if "skedge_compact" in a and "joblib" in a:
        x = a["skedge_compact"]["bytes"] / a["joblib"]["bytes"]
        g = a["skedge_compact"]["gzip"] / a["joblib"]["gzip"]
        row("compact artifact / joblib bytes (gzip / gzip)", "compact", f"{100 * x:.1f} % ({x:.3f}; gzip {g:.3f})",
            "≤ 0.25", x <= 0.25)
    for key, name in (("skedge_wasm", "wasm"), ("skedge_wasm_lite", "wasm_lite")):
        if key in rt:
            g = rt[key]["gzip"]
            row(f"{'`skedge/lite` ' if key.endswith('lite') else ''}wasm gzip", name,
                f"{g:,} B ({rt[key]['bytes']:,} B raw)", "≤ 100 KB", g <= 100_000)
    v = cold("node_lite", "import_ms")
    if v is not None:
        row("`import 'skedge/lite'`", "wasm_lite", fmt_cold(v), "≤ 4 ms", check(v, 4))
    return "\n".join(lines)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "n/a"

    import numpy
    import sklearn

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
        "node": version(["node", "--version"]), "python": platform.python_version(),
        "rustc": version(["rustc", "--version"]), "sklearn": sklearn.__version__, "numpy": numpy.__version__,
        "loadavg_at_start": load,
    }


def footnotes(R: dict) -> str:
    m = R["model"]
    return f"""
¹ Fresh process per sample, timed inside it from before the runtime's first `import` until a prediction
can run (skedge wasm: import of the package = read + compile + instantiate the .wasm, read the artifact,
`Model.fromBytes`; scikit-learn: `import joblib` + `joblib.load`; MLflow: `import mlflow` +
`load_model("models:/bench@champion")` from the sqlite registry; onnxruntime: import + `InferenceSession`).
skedge native: the first `TextClassifier::from_bytes` in a process, file read included.
² Wall time of the whole process as its parent sees it (interpreter start-up, first prediction and exit included).
³ Median of repeated loads in a warm process (skedge wasm: `Model.fromBytes`; native: `from_bytes`).
⁴ One text per call over all {len(m['labels']):,} texts (mean {m['text_bytes'] / len(m['labels']):.0f} bytes,
tweet length), each call timed alone: skedge wasm `model.predict(text)` (JS↔wasm crossing included),
scikit-learn `predict_proba([text])`, onnxruntime `run` on a 1×1 string tensor.
⁵ All texts in one call, median: skedge wasm `predictBatch`, native a `predict` loop, CLI `skedge predict`
on the texts repeated to ~8 MB (process, load and JSON output included), scikit-learn
`Pipeline.predict_proba`, onnxruntime in chunks of 1,000 (its TF-IDF output is dense).
⁶ skedge wasm: the `.wasm` (gzip {fmt_bytes(R['sizes']['runtime'].get('skedge_wasm', {}).get('gzip'))});
native: the CLI binary; Python peers: the installed files of the package and every package it requires
(interpreter not counted); onnxruntime-node: its linux-x64 files and onnxruntime-common.
"""


def render(R: dict, rows: dict) -> str:
    m, mc = R["model"], R["machine"]
    md = [
        "# skedge benchmark",
        "",
        f"Produced by `scripts/bench.sh{' --quick' if R['quick'] else ''}` on {mc['date']}: "
        f"{mc['nproc']} cores ({mc['cpu']}), Node {mc['node']}, Python {mc['python']}, "
        f"scikit-learn {mc['sklearn']}, numpy {mc['numpy']}, {mc['rustc']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in mc['loadavg_at_start'] or [])}. Every timed command ran on one "
        "core (`taskset -c 0`), single-threaded. **The machine is shared: absolute times are noisy; "
        "read the ratios.**",
        "",
        f"Model: `TfidfVectorizer(ngram_range=(1, 2), min_df=2)` + `LogisticRegression`, {m['n_terms']:,} terms, "
        f"fitted on {m['train_texts']:,} texts; data: {m['source']}; {len(m['labels']):,} texts, "
        f"{m['text_bytes']:,} bytes; accuracy {m['accuracy']:.4f}. Export: {m['parity_gate']}",
        "",
        tables(R, rows),
        "",
        "## Targets (issue #3)",
        "",
        targets(R, rows),
        "",
        "## Cold start (issue #12)",
        "",
        "Cold figures: fresh processes on one core, median (max). Node: `scripts/bench_node.mjs cold-start` "
        "(artifact bytes read first; then the package's import, the first `fromBytes`, the first `predict`), "
        "with the machine's Node, the other maintained lines (`scripts/node_versions.sh`) and Bun; the floor: "
        "`cold-floor` (benches/PROFILE.md \"The floor of any wasm load\"); signed: the same model exported with "
        "`--sign-key`, loaded with its public key pinned; workerd: a fresh "
        "`workerd serve` of benches/worker/ per sample, the first request's wall time from the client and its CPU "
        "time from /proc (workerd's main thread), in the pinned workerd (wrangler 4.86's) and in Cloudflare's "
        "current one (`scripts/npm_next.sh`; a request that loads no model first starts the Worker, which that "
        "workerd does on the first request); Chromium: a fresh browser, the model put in the Cache API by a "
        "first tab, then `init()` and `Model.load(await caches.match(url))` to the first prediction in a new tab.",
        "",
        cold_table(R, rows),
        "",
        footnotes(R).strip(),
        "",
    ]
    ml = R.get("mlflow", {})
    if ml.get("mlflow_version"):
        md.append(f"MLflow {ml['mlflow_version']}, model file "
                  f"`{R['sizes']['artifact'].get('mlflow_model_file', {}).get('name', '?')}`. ")
    op = R.get("ort_python", {})
    if "max_abs_dproba" in op:
        md.append(f"onnxruntime {op.get('version')} (Python), onnxruntime-node "
                  f"{R.get('versions', {}).get('onnxruntime_node', '?')}: max |Δ predict_proba| vs scikit-learn "
                  f"{op['max_abs_dproba']:.3g} (skl2onnx's tokenizer is not scikit-learn's).")
    w = R.get("skedge_wasm", {})
    if "cold" in w:
        c = w["cold"]
        md += ["", "Cold start of skedge wasm, medians of the phases (ms): "
               + ", ".join(f"{k[:-3]} {c[k]['p50']:.3g}" for k in
                           ("import_ms", "read_model_ms", "from_bytes_ms", "first_ms") if k in c)
               + f"; in-process re-instantiation: compile {w['warm']['compile_ms']['p50']:.3g}, "
                 f"instantiate {w['warm']['instantiate_ms']['p50']:.3g}, fromBytes "
                 f"{w['warm']['from_bytes_fresh_instance_ms']['p50']:.3g} "
                 "(V8 may reuse compiled code within a process)."]
    return "\n".join(md) + "\n"


# ---------------------------------------------------------------------------------------------
# 5b. Python: the service and the Spark UDF (issue #13 item 3; `--only python`)
# ---------------------------------------------------------------------------------------------

# The same HTTP API (skedge.service's Starlette app) on joblib.load + scikit-learn: only the
# model differs. Run as `python -c SKLEARN_SERVICE model.joblib port`.
SKLEARN_SERVICE = r"""
import sys, joblib, numpy as np, uvicorn
from skedge.service import create_app, rows

class SklearnModel:
    def __init__(self, pipe):
        self.head, self.clf = pipe[:-1], pipe[-1]
    def info(self):
        return {"name": "bench", "version": "", "estimator": type(self.clf).__name__,
                "classes": self.clf.classes_.tolist(), "sha256": ""}
    def predict_batch(self, texts):
        X = self.head.transform(texts)
        d = np.asarray(self.clf.decision_function(X), dtype=np.float64).reshape(len(texts), -1)
        return {"label": self.clf.predict(X).tolist(), "decision": d, "proba": self.clf.predict_proba(X)}
    def predict(self, text):
        return rows(self.predict_batch([text]))[0]

uvicorn.run(create_app(SklearnModel(joblib.load(sys.argv[1]))), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning")
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(conn, body: dict) -> dict:
    conn.request("POST", "/predict", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"/predict answered {r.status}: {data[:300]!r}")
    return json.loads(data)


def _start_service(cmd: list, port: int, text: str) -> tuple[subprocess.Popen, float]:
    """Starts a service; returns it and the seconds from spawn to its first prediction."""
    import http.client

    t = time.perf_counter()
    proc = subprocess.Popen(one_core() + cmd + [str(port)], env=py_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    while time.perf_counter() - t < 120:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            _post(conn, {"text": text})
            conn.close()
            return proc, time.perf_counter() - t
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError("the service did not answer in 120 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_python_service(m: dict, quick: bool) -> dict:
    """Fresh processes (spawn → first prediction over HTTP), then warm single and batch requests
    over one keep-alive connection; the servers on core 0, the client beside them."""
    import http.client

    systems = {
        "skedge": [sys.executable, "-m", "skedge.service", str(m["skedge"]), "--host", "127.0.0.1", "--port"],
        "sklearn": [sys.executable, "-c", SKLEARN_SERVICE, str(m["joblib"])],
    }
    texts = m["texts"]
    batch = texts[:1000]
    n_cold = 3 if quick else 7
    n_single = 300 if quick else 2000
    n_batch = 3 if quick else 10
    res = {}
    for name, cmd in systems.items():
        say(f"Python service ({name}): {n_cold} fresh processes, {n_single} single, {n_batch} × 1,000-text batches")
        colds = []
        for _ in range(n_cold):
            proc, first = _start_service(cmd, _free_port(), texts[0])
            colds.append(first)
            _stop(proc)
        port = _free_port()
        proc, _ = _start_service(cmd, port, texts[0])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            labels = [_post(conn, {"text": t})["label"] for t in texts[:200]]  # warm-up, and agreement
            t = time.perf_counter()
            for i in range(n_single):
                _post(conn, {"text": texts[i % len(texts)]})
            single_s = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(n_batch):
                out = _post(conn, {"texts": batch})
            batch_s = time.perf_counter() - t
            conn.close()
        finally:
            _stop(proc)
        res[name] = {
            "cold_first_prediction_s": quantiles(colds),
            "single_per_s": n_single / single_s,
            "batch_texts_per_s": n_batch * len(batch) / batch_s,
            "labels_agree_with_sklearn": sum(int(a) == b for a, b in zip(labels, m["labels"])),
            "labels_checked": len(labels),
            "batch_labels_agree_with_sklearn": sum(p["label"] == b for p, b in zip(out["predictions"], m["labels"])),
        }
    return res


# Run as `python -c SPARK_UDFS artifact tracking_uri model_uri texts_file rows out.json`: one JVM,
# local[2], both UDFs on the same DataFrame; a first pass (the model loads in the workers) and a
# warm one, each written to Spark's no-op sink.
SPARK_UDFS = r"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
import mlflow, mlflow.pyfunc
from pyspark.sql import SparkSession
from pyspark.sql.functions import col
from skedge.spark import predict_udf

artifact, uri, model_uri, texts_file, n, out = sys.argv[1:7]
mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
texts = open(texts_file, encoding="utf-8").read().split("\n")[:-1]
rows = [(i, texts[i % len(texts)]) for i in range(int(n))]
spark = (SparkSession.builder.master("local[2]").appName("skedge-bench")
         .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.shuffle.partitions", "2")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
df = spark.createDataFrame(rows, "id long, text string").repartition(4).cache()
df.count()
res = {"rows": len(rows), "partitions": df.rdd.getNumPartitions()}

def timed(column):
    out = []
    for _ in range(2):
        t = time.perf_counter()
        df.select(column.alias("p")).write.format("noop").mode("overwrite").save()
        out.append(len(rows) / (time.perf_counter() - t))
    return {"first_rows_per_s": out[0], "warm_rows_per_s": out[1]}

sk = predict_udf(artifact)
res["skedge"] = timed(sk("text"))
ours = {r["id"]: r["label"] for r in df.limit(2000).select("id", sk("text").label.alias("label")).collect()}
try:
    ml = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="long", env_manager="local")
    res["mlflow"] = timed(ml(col("text")))
    theirs = {r["id"]: r["label"] for r in df.limit(2000).select("id", ml(col("text")).alias("label")).collect()}
    res["mlflow"]["labels_agree_with_skedge"] = sum(ours[i] == theirs.get(i) for i in ours)
    res["mlflow"]["labels_checked"] = len(ours)
except Exception as err:
    res["mlflow"] = {"error": f"{type(err).__name__}: {err}"[:3000]}
spark.stop()
open(out, "w").write(json.dumps(res))
"""


def bench_python_spark(m: dict, ml: dict, quick: bool) -> dict:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return {"error": "pyspark is not installed (scripts/requirements.txt)"}
    if "error" in ml:
        return {"error": ml["error"]}
    n = 20_000 if quick else 100_000
    say(f"Spark (local[2]): skedge.spark.predict_udf and mlflow.pyfunc.spark_udf on {n:,} rows")
    out = WORK / "spark.json"
    p = subprocess.run([sys.executable, "-c", SPARK_UDFS, str(m["skedge"]), ml["uri"], ml["model_uri"],
                        str(m["texts_file"]), str(n), str(out)], capture_output=True, text=True,
                       env=py_env(), timeout=1800, check=False)
    if p.returncode != 0:
        return {"error": p.stderr[-3000:]}
    res = json.loads(out.read_text())
    if "error" not in res["mlflow"]:
        res["ratio_warm"] = res["skedge"]["warm_rows_per_s"] / res["mlflow"]["warm_rows_per_s"]
        res["ratio_first"] = res["skedge"]["first_rows_per_s"] / res["mlflow"]["first_rows_per_s"]
    return res


def render_python(R: dict) -> str:
    md = ["## Python: the service and Spark (issue #13)", "",
          f"Produced by `scripts/bench.sh --only python{' --quick' if R['quick'] else ''}` on "
          f"{R['machine'].get('date', '')}. Model: {R['model']}.", ""]
    s = R["service"]
    if "error" in s:
        md += [f"Service: failed: {s['error'][:500]}", ""]
    else:
        md += ["`python -m skedge.service` against the same Starlette app on `joblib.load` + scikit-learn "
               "(`SKLEARN_SERVICE`), each server on one core; cold: fresh processes, spawn → first "
               "`POST /predict` answered, median (max) of "
               f"{s['skedge']['cold_first_prediction_s']['n']}; throughput over one keep-alive connection.",
               "", "| | skedge | scikit-learn | ratio |", "|---|---:|---:|---:|"]
        a, b = s["skedge"], s["sklearn"]
        ca, cb = a["cold_first_prediction_s"], b["cold_first_prediction_s"]
        md += [f"| process start → first prediction | {fmt_time(ca['p50'])} ({fmt_time(ca['max'])}) | "
               f"{fmt_time(cb['p50'])} ({fmt_time(cb['max'])}) | {fmt_ratio(cb['p50'] / ca['p50'])} |",
               f"| single `{{\"text\"}}` requests/s | {a['single_per_s']:,.0f} | {b['single_per_s']:,.0f} | "
               f"{fmt_ratio(a['single_per_s'] / b['single_per_s'])} |",
               f"| batch `{{\"texts\"}}` (1,000) texts/s | {a['batch_texts_per_s']:,.0f} | "
               f"{b['batch_texts_per_s']:,.0f} | {fmt_ratio(a['batch_texts_per_s'] / b['batch_texts_per_s'])} |",
               "", f"Labels equal scikit-learn's: skedge {a['labels_agree_with_sklearn']}/{a['labels_checked']} "
               f"single, {a['batch_labels_agree_with_sklearn']}/1,000 batch.", ""]
    sp = R["spark"]
    if "error" in sp:
        md += [f"Spark: not measured: {sp['error'][-800:]}", ""]
    else:
        md += [f"Spark local[2], {sp['rows']:,} rows in {sp['partitions']} partitions, written to the no-op "
               "sink; first pass (the model loads in the Python workers), then warm.", "",
               "| rows/s | skedge.spark.predict_udf | mlflow.pyfunc.spark_udf | ratio |", "|---|---:|---:|---:|"]
        for k, label in (("first_rows_per_s", "first pass"), ("warm_rows_per_s", "warm")):
            theirs = sp["mlflow"].get(k)
            md.append(f"| {label} | {sp['skedge'][k]:,.0f} | "
                      + (f"{theirs:,.0f} | {fmt_ratio(sp['skedge'][k] / theirs)} |" if theirs else
                         f"failed: {sp['mlflow'].get('error', '')[:200]} | n/a |"))
        if "labels_checked" in sp["mlflow"]:
            md += ["", f"Labels equal MLflow's: {sp['mlflow']['labels_agree_with_skedge']}/"
                       f"{sp['mlflow']['labels_checked']}."]
        md.append("")
    return "\n".join(md) + "\n"


def bench_python(args, m: dict) -> int:
    """`--only python`: this section alone, into .work/bench/python.{json,md}."""
    R = {"quick": args.quick, "machine": machine(),
         "model": f"{m['n_terms']:,} terms, {len(m['texts']):,} texts"}
    ml = prepare_mlflow(m)
    for key, fn in (("service", lambda: bench_python_service(m, args.quick)),
                    ("spark", lambda: bench_python_spark(m, ml, args.quick))):
        try:
            R[key] = fn()
        except Exception as err:  # noqa: BLE001 - one failing part must not hide the other
            say(f"{key} failed: {err}")
            R[key] = {"error": f"{type(err).__name__}: {err}"[:3000]}
    md = render_python(R)
    (WORK / "python.json").write_text(json.dumps(R, indent=1, default=str) + "\n")
    (WORK / "python.md").write_text(md)
    print(md)
    say(f"wrote {WORK / 'python.json'} and {WORK / 'python.md'}")
    return 0


# ---------------------------------------------------------------------------------------------
# 6. profiles (--profile)
# ---------------------------------------------------------------------------------------------


def _short(name: str) -> str:
    import re

    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    name = re.sub(r"\[[0-9a-f]{16}\]", "", name)
    return name if len(name) <= 110 else name[:107] + "..."


def _cpuprofile_self_us(directory: Path) -> tuple:
    """Self time in µs per function name over the `.cpuprofile` files of `directory`, and how
    many files there were."""
    from collections import Counter

    self_us: Counter = Counter()
    files = list(directory.glob("*.cpuprofile"))
    for f in files:
        prof = json.loads(f.read_text())
        nodes = {n["id"]: n["callFrame"] for n in prof["nodes"]}
        for sample, delta in zip(prof["samples"], prof["timeDeltas"]):
            cf = nodes[sample]
            self_us[_short(cf["functionName"]) or f"({Path(cf['url']).name or 'native'})"] += delta
    return self_us, len(files)


def cpuprofile_table(directory: Path, top: int) -> list:
    """Self time per function name, in % of all samples, largest first."""
    self_us, _ = _cpuprofile_self_us(directory)
    total = sum(self_us.values()) or 1
    return [(100 * t / total, n) for n, t in self_us.most_common(top)]


def cpuprofile_ms(directory: Path, top: int) -> list:
    """Self time per function name, in ms per file (one per fresh process), idle left out."""
    self_us, files = _cpuprofile_self_us(directory)
    del self_us["(idle)"]
    return [(t / 1e3 / max(1, files), n) for n, t in self_us.most_common(top)]


def callgrind_table(out: Path, top: int, inclusive: bool) -> tuple[int, list]:
    cmd = ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", str(out)]
    text = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    import re

    total, rows = 0, []
    for line in text.splitlines():
        mt = re.match(r"\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", line)
        if mt:
            total = int(mt.group(1).replace(",", ""))
        mr = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*?):(.*) \[(.*)\]$", line)
        if mr:
            fn = mr.group(4)
            if inclusive and ("skedge" not in fn or fn.startswith("engine::")):
                continue
            rows.append((float(mr.group(2)), int(mr.group(1).replace(",", "")), _short(fn)))
    return total, rows[:top]


def profile(m: dict) -> str:
    """Where the time goes in skedge's load and single predict, wasm (V8 sampling profiler on the
    wasm-bindgen output before wasm-opt, which keeps Rust names) and native (callgrind's instruction
    counts on the engine bench binary, which the machine's noise does not change)."""
    prof = WORK / "profile"
    shutil.rmtree(prof, ignore_errors=True)
    prof.mkdir(parents=True)
    md = ["# skedge profile", "",
          f"Model: {m['n_terms']:,} terms ({m['skedge'].stat().st_size:,} artifact bytes); texts: "
          f"{len(m['texts']):,} SST-2 sentences. Produced by `scripts/bench.sh --profile`.", ""]
    named = ROOT / "target" / "npm" / "web" / "skedge_bg.wasm"
    wasm = named if named.is_file() else PKG / "skedge_bg.wasm"
    say("node --cpu-prof: skedge wasm cold start, fresh processes")
    d = prof / "wasm-cold"
    runs = 12
    for _ in range(runs):
        run_json(one_core() + ["node", "--cpu-prof", f"--cpu-prof-dir={d}", "--cpu-prof-interval", "20",
                               str(ROOT / "scripts" / "bench_node.mjs"), "cold-core", str(PKG), str(m["skedge"]),
                               str(m["texts_file"]), "-", str(wasm)])
    md += ["## wasm in Node: cold start (compile, instantiate, first `fromBytes`, first `predict`)", "",
           f"Self time in ms per fresh process (V8 sampling profiler, 20 µs, {runs} processes, idle left out; "
           f"`{wasm.relative_to(ROOT)}`). The first call of each function runs V8's baseline (Liftoff) "
           "code: the same `fromBytes` takes a fifth of the time once V8 has optimised it.", "",
           "| ms | function |", "|---:|---|"]
    md += [f"| {ms:.2f} | `{name}` |" for ms, name in cpuprofile_ms(d, 20)]
    md.append("")
    for what in ("load", "predict"):
        say(f"node --cpu-prof: skedge wasm {what}")
        d = prof / f"wasm-{what}"
        env = dict(os.environ, SKEDGE_PROFILE_SECONDS="6")
        run_json(one_core() + ["node", "--cpu-prof", f"--cpu-prof-dir={d}", "--cpu-prof-interval", "100",
                               str(ROOT / "scripts" / "bench_node.mjs"), "profile-skedge", str(PKG),
                               str(m["skedge"]), str(m["texts_file"]), what, str(wasm)], env=env)
        md += [f"## wasm in Node: {'`Model.fromBytes` in a loop' if what == 'load' else '`model.predict(text)` over the texts'}",
               "", f"Self time (V8 sampling profiler, 100 µs; `{wasm.relative_to(ROOT)}`):", "",
               "| self % | function |", "|---:|---|"]
        md += [f"| {pct:.1f} | `{name}` |" for pct, name in cpuprofile_table(d, 15)]
        md.append("")
    if shutil.which("valgrind") and shutil.which("callgrind_annotate"):
        texts300 = prof / "texts300.txt"
        texts300.write_text("\n".join(m["texts"][:300]) + "\n", encoding="utf-8")
        exe = engine_binary()
        for what, reps, note in (("load", "10", "11 loads (1 + 10) and 1 predict"),
                                 ("single", "10", "1 load, then 300 texts × 10 rounds of `predict`")):
            say(f"callgrind: skedge native {what}")
            out = prof / f"callgrind.{what}.out"
            env = dict(os.environ, SKEDGE_BENCH_MODEL=str(m["skedge"]), SKEDGE_BENCH_TEXTS=str(texts300),
                       SKEDGE_BENCH_ONLY=what, SKEDGE_BENCH_REPS=reps)
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe)],
                           env=env, capture_output=True, check=True)
            total, excl = callgrind_table(out, 15, inclusive=False)
            _, incl = callgrind_table(out, 12, inclusive=True)
            md += [f"## native: {what} ({note}), callgrind", "",
                   f"{total:,} instructions in all. Exclusive (self) cost:", "",
                   "| self % | instructions | function |", "|---:|---:|---|"]
            md += [f"| {pct:.1f} | {ir:,} | `{fn}` |" for pct, ir, fn in excl]
            md += ["", "Inclusive cost of skedge's functions:", "", "| incl. % | instructions | function |",
                   "|---:|---:|---|"]
            md += [f"| {pct:.1f} | {ir:,} | `{fn}` |" for pct, ir, fn in incl]
            md.append("")
    else:
        md.append("valgrind not found: no native profile.")
    return "\n".join(md) + "\n"


# ---------------------------------------------------------------------------------------------


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("--bundled", action="store_true", help="use benches/data even when ../shared/data exists")
    ap.add_argument("--save", action="store_true", help="also write benches/RESULTS.md")
    ap.add_argument("--skip", default="", help="comma-separated: wasm,cold,native,cli,sklearn,mlflow,ort,ort-node")
    ap.add_argument("--no-build", action="store_true", help="accepted for scripts/bench.sh; ignored here")
    ap.add_argument("--only", choices=["python"],
                    help="run one section alone: python (the service and Spark UDF against scikit-learn "
                         "and MLflow); writes .work/bench/python.{json,md}")
    ap.add_argument("--profile", action="store_true",
                    help="only profile skedge (node --cpu-prof of the wasm, callgrind of the native engine) "
                         "for load and single predict; writes .work/bench/profile.md")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    WORK.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    R = {"quick": args.quick, "machine": machine()}
    data = choose_data(args.bundled)
    m = prepare_model(data)
    if args.only == "python":
        return bench_python(args, m)
    if args.profile:
        md = profile(m)
        (WORK / "profile.md").write_text(md)
        if args.save:
            (ROOT / "benches" / "PROFILE.md").write_text(md)
        print(md)
        say(f"wrote {WORK / 'profile.md'}" + (" and benches/PROFILE.md" if args.save else ""))
        return 0
    R["model"] = {"source": data["source"], "n_terms": m["n_terms"], "train_texts": m["train_texts"],
                  "accuracy": m["accuracy"], "parity_gate": m["parity_gate"], "labels": m["labels"],
                  "compact_gate": m["compact_gate"], "text_bytes": sum(len(t.encode()) for t in m["texts"]), "skedge": str(m["skedge"])}
    onnx = prepare_onnx(m) if not {"ort", "ort-node"} <= skip else {"error": "skipped"}
    ml = prepare_mlflow(m) if "mlflow" not in skip else {"error": "skipped"}
    try:
        R["versions"] = {"onnxruntime_node": json.loads(
            (ORT_NODE_PREFIX / "node_modules" / "onnxruntime-node" / "package.json").read_text())["version"]}
    except OSError:
        R["versions"] = {}

    R["step_s"] = {"prepare": round(time.perf_counter() - t_start, 1)}
    steps = [
        ("skedge_wasm", "wasm", lambda: bench_node(m, args.quick)),
        ("cold", "cold", lambda: bench_cold(m, args.quick)),
        ("skedge_native", "native", lambda: bench_native(m, args.quick)),
        ("skedge_cli", "cli", lambda: bench_cli(m, args.quick)),
        ("sklearn", "sklearn", lambda: bench_sklearn(m, args.quick)),
        ("mlflow", "mlflow", lambda: bench_mlflow(m, ml, args.quick)),
        ("ort_python", "ort", lambda: bench_ort_python(m, onnx, args.quick)),
        ("ort_node", "ort-node", lambda: bench_ort_node(m, onnx, args.quick)),
    ]
    for key, name, fn in steps:
        if name in skip:
            R[key] = {"error": "skipped"}
            continue
        t = time.perf_counter()
        try:
            R[key] = fn()
        except Exception as err:  # noqa: BLE001 - one failing peer must not hide the others
            say(f"{key} failed: {err}")
            R[key] = {"error": f"{type(err).__name__}: {err}"[:3000]}
        R["step_s"][key] = round(time.perf_counter() - t, 1)
    R["sizes"] = sizes(m, onnx, ml)
    R["elapsed_s"] = time.perf_counter() - t_start

    rows = summarize(R)
    R["summary"] = rows
    md = render(R, rows)
    (WORK / "results.json").write_text(json.dumps(R, indent=1, default=str) + "\n")
    (WORK / "results.md").write_text(md)
    if args.save:
        import bench_load  # noqa: PLC0415  (scripts/, beside this file)

        kept = bench_load.section_of(bench_load.RESULTS)  # measured by `--only load`, not by this run
        bench_load.RESULTS.write_text(md)
        if kept:
            bench_load.save_section(bench_load.RESULTS, kept)
    print(md)
    say(f"wrote {WORK / 'results.json'} and {WORK / 'results.md'}"
        + (" and benches/RESULTS.md" if args.save else "") + f" in {R['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
