#!/usr/bin/env bash
# The MLflow round trip on the team back-end (issue #16 item 1): export from every URI form, parity
# gate, tags, --restore, publish, two-file export, `report.py push` (from a spool and a bucket, two
# pushes at once; experiment windows make the same calls), the sync service and `sync.py promote`,
# against an `mlflow server` with a PostgreSQL backend store and an S3 artifact store (moto) served
# through the tracking server. The fixture starts PostgreSQL (Debian's, data under .work/), moto
# and MLflow on 127.0.0.1 and stops them. These are the pytest tests marked `team`
# (tests/python/conftest.py): one of each kind of MLflow call the tools make. Every test ran on sqlite in scripts/test.sh's pytest
# step; re-running all 111 that reach MLflow here took 25 minutes on a slow 2-core machine and put
# CI over its hour (2026-12-07). Extra arguments go to pytest (e.g. -k push; -m '' for all 111).
set -euo pipefail
cd "$(dirname "$0")/.."
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 SKEDGE_MLFLOW_BACKEND=team
exec .venv/bin/python -m pytest -q -p no:cacheprovider -m team tests/python "$@"
