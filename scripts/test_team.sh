#!/usr/bin/env bash
# The MLflow round trip on the team back-end (issue #16 item 1): every pytest test that talks to
# MLflow (those using the `server` fixture of tests/python/conftest.py: export from every URI form,
# parity gate, tags, --restore, publish, two-file export, `report.py push` (monitoring and experiment
# windows: tests/python/test_experiment_push.py), `sync.py promote`, the bucket push of
# tests/python/test_bucket_spool.py) runs again against an
# `mlflow server` with a PostgreSQL backend store and an S3 artifact store (moto) served through the
# tracking server. The fixture starts PostgreSQL (Debian's, data under .work/), moto and MLflow on
# 127.0.0.1 and stops them; tests that do not reach MLflow are deselected (they ran on sqlite in
# scripts/test.sh's pytest step). The champion/challenger scenario (training two models, the same
# MLflow calls as the push and promote tests here) runs on sqlite only, for CI's time budget.
# Extra arguments go to pytest (e.g. -k push).
set -euo pipefail
cd "$(dirname "$0")/.."
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 SKEDGE_MLFLOW_BACKEND=team
exec .venv/bin/python -m pytest -q -p no:cacheprovider \
  tests/python/test_mlflow.py tests/python/test_publish.py tests/python/test_publish_edge.py \
  tests/python/test_two_files.py tests/python/test_report.py tests/python/test_bucket_spool.py \
  tests/python/test_experiment_push.py tests/python/test_champion_challenger.py \
  --deselect tests/python/test_champion_challenger.py::test_scenario_shadow_stream_push_and_promotion "$@"
