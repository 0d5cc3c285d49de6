#!/usr/bin/env bash
# kill -9 of every server of the team set-up, mid-stream and mid-push (issue #16 item 3):
# tests/python/faults.py starts PostgreSQL, an S3 server (moto behind a write-ahead journal), MLflow
# and `report.py serve` on 127.0.0.1 (data under .work/faults-<pid>/, removed at the end), kills
# each of them in the middle of a snapshot stream and of a push, restarts it, and checks that every
# snapshot sent is in MLflow exactly once; first with a folder spool, then with an s3:// spool.
# Prints the table of README "Running it for a team" (Faults). Extra arguments go to faults.py
# (e.g. --spool folder --victim mlflow --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
cargo build --quiet --release --bin skedge --bin skedge-monitor
exec .venv/bin/python tests/python/faults.py "$@"
