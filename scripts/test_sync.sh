#!/usr/bin/env bash
# Edge sync end to end (issue #14): builds and installs the npm package into a temporary app (as
# scripts/test_monitor.sh does) and runs tests/js/sync_e2e.test.mjs: a real mlflow server sending
# webhooks, `scripts/sync.py serve` publishing to moto's S3 server, and followers (Node, the Worker
# example under workerd, the demo page in headless Chromium; SKEDGE_NO_BROWSER=1 leaves it out) while the alias moves v1 -> v2 under load, to a v3 the exporter refuses,
# and back with `sync.py rollback`. Prints the time from the alias move to the last follower
# switching (README "Keeping the edge in sync"). Every server listens on 127.0.0.1 and is stopped
# by the test; the temporary directory is removed unless KEEP=1. SKEDGE_FOLLOW_INTERVAL (seconds,
# default 1) is every follower's polling interval.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CI=${CI:-} WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false DO_NOT_TRACK=1
export MLFLOW_DISABLE_TELEMETRY=true NO_COLOR=${NO_COLOR:-}
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/skedge-sync.XXXXXX")
cleanup() {
  local rc=$?
  if [ "${KEEP:-}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
export SKEDGE_ROOT=$ROOT SKEDGE_TMP=$T

if [ -z "${SKEDGE_NO_BUILD:-}" ]; then
  scripts/build.sh >/dev/null
  cargo build --quiet --release --bin skedge
fi

say "npm pack and install into a temporary app"
TARBALL=$(cd pkg && npm pack --silent --pack-destination "$T" | tail -1)
APP=$T/app
mkdir -p "$APP"
cp -r tests/js/. "$APP/"
rm -f "$APP/examples/worker/model.skedge"
printf '{ "name": "skedge-sync-tests", "private": true, "type": "module" }\n' > "$APP/package.json"
(cd "$APP" && npm install --silent --no-audit --no-fund --no-save "$T/$TARBALL")

if [ -z "${SKEDGE_NO_BROWSER:-}" ]; then
  say "the demo page (www/) with one fixture model, for the Chromium follower"
  scripts/build_www.sh --out "$T/www" --fixtures word_tfidf_lr_binary --fixtures-dir tests/fixtures >/dev/null
  export WWW_DIR=$T/www
fi

say "node --test sync_e2e.test.mjs"
(cd "$APP" && node --test --test-concurrency=1 --test-reporter=spec sync_e2e.test.mjs)
