#!/usr/bin/env bash
# Monitoring end to end (issue #6): builds and installs the npm package into a temporary app (as
# scripts/test_js.sh does) and runs tests/js/monitor_e2e.test.mjs: a real mlflow server, the
# collector (scripts/report.py serve), the Worker example under workerd and a page in headless
# Chromium predicting with monitoring on, `report.py push`, and the MLflow client reading back.
# Every server listens on 127.0.0.1 and is stopped by the test; the temporary directory is removed
# unless KEEP=1. Then tests/js/snapshots_bucket_e2e.test.mjs: the Worker example writing its
# snapshots to an R2 bucket (no collector), copied to moto's S3 server, `report.py push --from
# s3://…` into MLflow. The collector, push and baseline details are tested in
# tests/python/test_report.py and tests/python/test_bucket_spool.py.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CI=${CI:-} WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false DO_NOT_TRACK=1
export MLFLOW_DISABLE_TELEMETRY=true NO_COLOR=${NO_COLOR:-}
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/skedge-monitor.XXXXXX")
cleanup() {
  local rc=$?
  if [ "${KEEP:-}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
export SKEDGE_ROOT=$ROOT SKEDGE_TMP=$T

scripts/build.sh >/dev/null
cargo build --quiet --release --bin skedge --bin skedge-monitor
if ! grep -q 'stopMonitoring' pkg/core.d.ts; then
  echo "test_monitor: the npm package has no Model.monitor(): the monitoring binding (issue #6) is not" \
       "merged into src/wasm/ yet" >&2
  exit 1
fi
if ! grep -q 'MONITOR_URL' tests/js/examples/worker/src/index.js; then
  echo "test_monitor: the Worker example has no MONITOR_* switch yet (issue #6)" >&2
  exit 1
fi

say "npm pack and install into a temporary app"
TARBALL=$(cd pkg && npm pack --silent --pack-destination "$T" | tail -1)
APP=$T/app
mkdir -p "$APP"
cp -r tests/js/. "$APP/"
rm -f "$APP/examples/worker/model.skedge"
printf '{ "name": "skedge-monitor-tests", "private": true, "type": "module" }\n' > "$APP/package.json"
(cd "$APP" && npm install --silent --no-audit --no-fund --no-save "$T/$TARBALL")

say "node --test monitor_e2e.test.mjs snapshots_bucket_e2e.test.mjs"
(cd "$APP" && node --test --test-concurrency=1 --test-reporter=tap monitor_e2e.test.mjs snapshots_bucket_e2e.test.mjs)
