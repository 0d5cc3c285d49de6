"""The Python side of tests/js/monitor_e2e.test.mjs (a helper, not a pytest module).

    monitor_e2e.py setup  --tracking-uri URI --work DIR   registers `monitor_e2e` versions 1 and 2
        (the same English pipeline, SST-2), exports each through the registry with its drift
        baseline (the 400 first SST-2 dev sentences) and prints {"v1": path, "v2": path,
        "english": [...], "french": [...]} (the in-distribution and the drifted stream)
    monitor_e2e.py verify --tracking-uri URI              prints what MLflow holds for both versions:
        model-version tags, the monitoring run's tags, latest metrics, per-window sums, figures
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

ROOT = Path(__file__).resolve().parents[2]

NAME = "monitor_e2e"


def setup(uri: str, work: Path) -> dict:
    from skedge import baseline as bl  # noqa: PLC0415
    from skedge import export  # noqa: PLC0415
    from conftest import dev_script, read_tsv  # noqa: PLC0415
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415

    train_demo = dev_script("train_demo")

    work.mkdir(parents=True, exist_ok=True)
    train, labels = read_tsv("sst2_train_first2000.tsv")
    dev, _ = read_tsv("sst2_dev.tsv")
    french, _ = read_tsv("fr_allocine_tv_test_first300.tsv")
    validation = dev[:400]
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(
        train, [int(y) for y in labels]
    )
    val = work / "validation.tsv"
    val.write_text("text\tlabel\n" + "".join(f"{t}\t0\n" for t in validation), encoding="utf-8")

    def hook(inter):
        inter["metadata"]["baseline"] = bl.compute_baseline(pipeline, validation, inter)

    out = {"english": dev[400:], "french": french}
    for _ in range(2):
        ids = train_demo.log_and_register(
            pipeline, NAME, tracking_uri=uri, example_texts=validation[:6],
            experiment="skedge-monitor-e2e", alias=None, stage=None,
        )  # fmt: skip
        v = ids["version"]
        path = work / f"{NAME}_v{v}.skedge"
        rc = export.main(
            ["--model-uri", f"models:/{NAME}/{v}", "--out", str(path), "--validation", str(val),
             "--tracking-uri", uri],  # fmt: skip
            interchange_hook=hook,
        )
        if rc != 0:
            raise SystemExit(f"export of {NAME} version {v} failed ({rc})")
        out[f"v{v}"] = str(path)
    return out


def verify(uri: str) -> dict:
    import mlflow  # noqa: PLC0415

    c = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    out = {}
    for mv in c.search_model_versions(f"name = '{NAME}'"):
        tags = dict(mv.tags or {})
        entry = {"tags": tags, "run": None}
        run_id = tags.get("skedge.monitoring_run_id")
        if run_id:
            run = c.get_run(run_id)
            sums = {}
            for key in ("seen", "sampled"):
                latest = {}
                for m in c.get_metric_history(run_id, key):
                    if m.step not in latest or m.timestamp >= latest[m.step][0]:
                        latest[m.step] = (m.timestamp, m.value)
                sums[key] = sum(v for _, v in latest.values())
            entry["run"] = {
                "id": run_id,
                "tags": {k: v for k, v in run.data.tags.items() if k.startswith("skedge.")},
                "metrics": run.data.metrics,
                "sums": sums,
                "figures": sorted(a.path for a in c.list_artifacts(run_id, "drift")),
            }
        out[str(mv.version)] = entry
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["setup", "verify"])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.command == "setup":
        result = setup(args.tracking_uri, args.work)
    else:
        result = verify(args.tracking_uri)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
