#!/usr/bin/env bash
# Sets up everything (idempotently) and runs every test of skedge: Rust (fmt, clippy, unit,
# fixtures), Python (staleness of fixtures and Unicode tables, exporter), the built npm package in
# Node, Deno, workerd and Chromium, and the MLflow round trip against a real server.
set -uo pipefail
cd "$(dirname "$0")/.."
export CI=${CI:-} MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false NEXT_TELEMETRY_DISABLED=1

# On a clean clone setup.sh spends minutes in pip, which keeps one core busy at most; meanwhile
# cargo compiles what the first steps build (the CLIs, the debug tests, the full wasm library).
# The steps run the same builds and report any error: cargo's lock on each output directory makes
# them wait for a build under way, not repeat it.
setsid bash -c 'cargo build --release --quiet --bin skedge --bin skedge-monitor
  cargo test --no-run --quiet
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then scripts/build.sh --compile; fi' \
  >/dev/null 2>&1 &
prebuild_pid=$!
lane_pid=
kill_tree() { local c; for c in $(pgrep -P "$1"); do kill_tree "$c"; done; kill "$1" 2>/dev/null; }
# Only while they run: a PID waited for can be reused within a run (pid_max is 32,768 here).
trap '[ -z "$prebuild_pid" ] || kill -- -"$prebuild_pid" 2>/dev/null; [ -z "$lane_pid" ] || kill_tree "$lane_pid"; true' EXIT

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
wait "$prebuild_pid" || true
prebuild_pid=
step "Unicode tables are fresh (scripts/gen_unicode.py --check)" .venv/bin/python scripts/gen_unicode.py --check
step "fixtures are fresh (scripts/make_fixtures.py --check)" .venv/bin/python scripts/make_fixtures.py --check
# Two lanes: pytest in the background, the runtime scripts here. Each side mostly keeps one core
# busy, and their servers take free ports and directories of their own (temp dirs,
# .work/<name>-<pid>); pkg/ is built by the step above and only read after it. The background
# lane, once pytest is done, takes scripts from the end of the list while this one takes them
# from the start (a lane claims a script with mkdir, which is atomic): on a clean clone of the
# slower machine of 2026-12-05 the scripts ran 5 minutes longer than pytest. The longest come
# first, so whichever lane waits for the other waits least. Its output is shown when it ends.
tests=(scripts/test_faults.sh scripts/test_team.sh scripts/test_js.sh scripts/test_fuzz.sh)
for t in scripts/test_*.sh; do [[ " ${tests[*]} " == *" $t "* ]] || tests+=("$t"); done
lane=$(mktemp -d)
claim() { [ -e "$1" ] && mkdir "$lane/claimed-${1##*/}" 2>/dev/null; }
logged() { # NAME CMD...: CMD's output to $lane/NAME.log, its status and seconds to $lane/NAME.rc
  local name=$1 t0=$SECONDS; shift
  "$@" >"$lane/$name.log" 2>&1
  echo "$? $((SECONDS - t0))" >"$lane/$name.rc"
}
(
  logged pytest .venv/bin/python -m pytest -q tests/python
  for ((i = ${#tests[@]} - 1; i >= 0; i--)); do
    if claim "${tests[i]}"; then logged "${tests[i]##*/}" "${tests[i]}"; fi
  done
) &
lane_pid=$!
for t in "${tests[@]}"; do
  if claim "$t"; then step "$t" "$t"; fi
done
wait "$lane_pid"
lane_pid=
replay() {
  cat "$lane/$1.log"
  local rc secs
  read -r rc secs <"$lane/$1.rc" || { echo "$1 left no status"; return 1; }
  echo "($1 ran $secs s, beside the steps above)"
  return "$rc"
}
step "Python tests (pytest tests/python)" replay pytest
for t in "${tests[@]}"; do
  if [ -f "$lane/${t##*/}.rc" ]; then step "$t (beside pytest)" replay "${t##*/}"; fi
done
rm -rf "$lane"

printf '\n%s\n' "${failures[@]/#/failed: }" | grep -v '^$' || true
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
