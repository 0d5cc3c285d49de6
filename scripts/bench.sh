#!/usr/bin/env bash
# skedge against scikit-learn, joblib, pickle, MLflow, skl2onnx + onnxruntime (Python and Node), on
# the same model and texts, in one run; writes .work/bench/results.{json,md} (scripts/bench.py).
#
#   scripts/bench.sh [--quick] [--bundled] [--save] [--no-build] [--skip wasm,cold,native,cli,sklearn,mlflow,ort,ort-node]
#   scripts/bench.sh --profile [--save]   # where skedge spends load and predict time (wasm and native)
#   scripts/bench.sh --only python [--quick] [--no-build]   # only the Python service and Spark UDF
#                                          # against scikit-learn and MLflow (.work/bench/python.md)
#   scripts/bench.sh --only load [--duration S] [--save] [--no-build]   # the Worker under autocannon
#                                          # with monitoring on, the collector under a stream of
#                                          # snapshots, folder and S3 spool (.work/bench/load.md,
#                                          # scripts/bench_load.py; about 4 min at 60 s a row)
#
# Idempotent set-up first: scripts/setup.sh (toolchain, .venv, npm dev tools, CLI), the benchmark's
# own pinned Python packages in .venv, onnxruntime-node in .work/bench/node (a prefix of its own, so
# the project's package.json stays untouched), the release CLI, the npm package (scripts/build.sh)
# and the criterion bench binary — built from the same sources, so CLI, wasm and artifact agree.
# Needs no network once installed; the data is ../shared/data's SST-2, or benches/data without it.
# About 4–6 minutes on 2 cores (--quick: about 2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Pinned peers (bump together; the report records the versions it ran).
PY_DEPS=(skl2onnx==1.20.0 onnxruntime==1.32.0 onnx==1.23.2)
ORT_NODE=onnxruntime-node@1.30.0

NO_BUILD=0
ONLY=
prev=
for a in "$@"; do
  [ "$a" = "--no-build" ] && NO_BUILD=1
  [ "$prev" = "--only" ] && ONLY=$a
  prev=$a
done

export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1

if [ "$NO_BUILD" = 0 ] || [ ! -x .venv/bin/python ]; then
  scripts/setup.sh >/dev/null
fi

if [ "$ONLY" = load ]; then
  # The release CLI (packs the served artifact) and the npm package; no benchmark peers.
  if [ "$NO_BUILD" = 0 ]; then
    cargo build --release --quiet --bin skedge
    scripts/build.sh >/dev/null
  fi
  exec .venv/bin/python scripts/bench_load.py "$@"
fi

stamp=$(printf '%s\n' "${PY_DEPS[@]}" | sha256sum | cut -c1-16)
if [ "$(cat .venv/.bench-deps 2>/dev/null)" != "$stamp" ]; then
  say "installing the benchmark's Python peers into .venv: ${PY_DEPS[*]}"
  .venv/bin/pip install --disable-pip-version-check -q "${PY_DEPS[@]}"
  echo "$stamp" > .venv/.bench-deps
fi

if [ "$ONLY" = python ]; then
  # The service and Spark UDF need the CLI (export) and .venv's skedge, pyspark and MLflow only.
  [ "$NO_BUILD" = 1 ] || cargo build --release --quiet --bin skedge
  exec .venv/bin/python scripts/bench.py "$@"
fi

NODE_PREFIX=$ROOT/.work/bench/node
if [ "$(cat "$NODE_PREFIX/.installed" 2>/dev/null)" != "$ORT_NODE" ]; then
  say "installing $ORT_NODE into .work/bench/node"
  mkdir -p "$NODE_PREFIX"
  [ -f "$NODE_PREFIX/package.json" ] || echo '{"private": true, "description": "skedge benchmark peers"}' > "$NODE_PREFIX/package.json"
  # Without the skip, the install script downloads CUDA files and fails offline.
  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error "$ORT_NODE"
  echo "$ORT_NODE" > "$NODE_PREFIX/.installed"
fi

if [ "$NO_BUILD" = 0 ]; then
  say "building the release CLI, the npm package and the criterion bench"
  cargo build --release --quiet --bin skedge
  scripts/build.sh >/dev/null
  cargo bench --bench engine --no-run --quiet 2>/dev/null || cargo bench --bench engine --no-run
fi
[ -f pkg/skedge_bg.wasm ] || { echo "bench: pkg/ is missing: run scripts/build.sh" >&2; exit 1; }

exec .venv/bin/python scripts/bench.py "$@"
