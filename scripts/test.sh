#!/usr/bin/env bash
# Sets up everything (idempotently) and runs every test of skedge: Rust (fmt, clippy, unit,
# fixtures), Python (staleness of fixtures and Unicode tables, exporter), the built npm package in
# Node, Deno, workerd and Chromium, and the MLflow round trip against a real server.
set -uo pipefail
cd "$(dirname "$0")/.."
export CI=${CI:-} MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false NEXT_TELEMETRY_DISABLED=1

scripts/setup.sh --browser >/dev/null || { echo "setup failed"; exit 1; }

passed=0; failed=0; failures=()
step() {
  local name=$1; shift
  printf '\n\033[1m--- %s\033[0m\n' "$name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); printf '\033[32mok\033[0m %s (%ss)\n' "$name" $((SECONDS - t0))
  else
    failed=$((failed + 1)); failures+=("$name"); printf '\033[31mFAILED\033[0m %s\n' "$name"
  fi
}

step "cargo fmt --check" cargo fmt --check
step "cargo clippy -D warnings" cargo clippy --all-targets --quiet -- -D warnings
step "cargo clippy --features python -D warnings" cargo clippy --all-targets --quiet --features python -- -D warnings
step "cargo test" cargo test --quiet
step "build the npm package (scripts/build.sh): the parity gate then runs it in Node" scripts/build.sh
step "Unicode tables are fresh (scripts/gen_unicode.py --check)" .venv/bin/python scripts/gen_unicode.py --check
step "fixtures are fresh (scripts/make_fixtures.py --check)" .venv/bin/python scripts/make_fixtures.py --check
step "Python tests (pytest tests/python)" .venv/bin/python -m pytest -q tests/python
for t in scripts/test_*.sh; do
  [ -e "$t" ] && step "$t" "$t"
done

printf '\n%s\n' "${failures[@]/#/failed: }" | grep -v '^$' || true
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
