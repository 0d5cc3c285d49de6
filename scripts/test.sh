#!/usr/bin/env bash
# Sets up everything (idempotently) and runs every test of skedge: Rust (fmt, clippy, unit,
# fixtures), Python (staleness of fixtures and Unicode tables, exporter), the built npm package in
# Node, Deno, workerd and Chromium, and the MLflow round trip against a real server.
set -uo pipefail
cd "$(dirname "$0")/.."
export CI=${CI:-} MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false NEXT_TELEMETRY_DISABLED=1

# On a clean clone setup.sh spends minutes in pip, which keeps one core busy at most; meanwhile
# cargo compiles what setup.sh and the first steps build (the CLIs, the debug tests, the full wasm
# library). The steps run the same builds and report any error: cargo's lock on each output
# directory makes them wait for a build under way, not repeat it. One session of its own: with
# Linux autogroups a session gets as much CPU as any other, so pip keeps its core (clean clones,
# time to the lanes: 479-612 s so; 655 s as a niced process group of this session; 692-709 s with
# two background sessions, pip taking 296-327 s instead of about 200).
setsid -w bash -c 'scripts/setup.sh --cli; cargo test --no-run --quiet; scripts/build.sh --compile' >/dev/null 2>&1 &
prebuild_pid=$!
lane_pid=
# Only while they run: a PID waited for can be reused within a run (pid_max is 32,768 here).
trap '[ -z "$prebuild_pid" ] || kill -- -"$prebuild_pid" 2>/dev/null; [ -z "$lane_pid" ] || kill -- -"$lane_pid" 2>/dev/null; true' EXIT

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

step "build the npm package (scripts/build.sh): the parity gate then runs it in Node" scripts/build.sh
wait "$prebuild_pid" || true
prebuild_pid=
# Two lanes, each mostly keeping one core busy, start as soon as the package is built: the Python
# tests (but for $LATE_TESTS), beside the cargo checks and the runtime scripts below. Then the work
# either lane takes once its own is done (mkdir: one of them claims each part): the Python tests of
# $LATE_TESTS, then the later Pythons (scripts/test_pythons.sh). (In a row these took 31 minutes on
# the 2026-12-04 machine. On 2026-12-07's slower one the two lanes passed CI's 90 minutes; with the
# Python tests whole in the first lane and the later Pythons after the scripts, the first lane ran
# 62 minutes, the second 48.) Their servers take free ports and directories of their own (temp
# dirs, .work/<name>-<pid>); pkg/ is built by the step above and only read after it:
# scripts/build.sh leaves an up-to-date pkg/ as it is. The parts' output is shown at the end.
LATE_TESTS="tests/python/test_push_incremental.py tests/python/test_sync_serve.py"
work=$(mktemp -d)
export LATE_TESTS work
# $2 > $work/$1.log, its exit code, start time and lane ($LANE) beside it.
part() {
  local name=$1; shift
  date +%s > "$work/$name.start"; echo "$LANE" > "$work/$name.lane"
  "$@" > "$work/$name.log" 2>&1; echo $? > "$work/$name.rc"
}
# The parts no lane has claimed yet.
late_parts() {
  # shellcheck disable=SC2086  # LATE_TESTS: paths without spaces
  ! mkdir "$work/late-tests.claim" 2>/dev/null || part late-tests .venv/bin/python -m pytest -q $LATE_TESTS
  ! mkdir "$work/pythons.claim" 2>/dev/null || part pythons scripts/test_pythons.sh
}
export -f part late_parts
setsid -w bash -c '
  export SKEDGE_TEST_PORTS=26000-28999 LANE=first
  ignore=(); for f in $LATE_TESTS; do ignore+=("--ignore=$f"); done
  part pytest .venv/bin/python -m pytest -q --durations=25 tests/python "${ignore[@]}"
  late_parts' &
lane_pid=$!
export SKEDGE_TEST_PORTS=29000-31999 LANE=second  # tests/python/ports.py: the lanes' servers never draw one port
step "cargo fmt --check" cargo fmt --check
step "cargo clippy -D warnings" cargo clippy --all-targets --quiet -- -D warnings
step "cargo clippy --features python -D warnings" cargo clippy --all-targets --quiet --features python -- -D warnings
step "cargo test" cargo test --quiet
step "cargo doc -D warnings" env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
# skedge/lite's features (none): its core, linted and unit-tested natively (the package's lite
# entry is tested in the runtimes by scripts/test_js.sh).
step "cargo clippy and test --no-default-features (skedge/lite's core)" \
  bash -c 'cargo clippy --lib --no-default-features --quiet -- -D warnings && cargo test --lib --no-default-features --quiet'
step "fixtures are fresh (scripts/make_fixtures.py --check)" .venv/bin/python scripts/make_fixtures.py --check
# The Unicode tables' freshness (scripts/gen_unicode.py --check) is scripts/test_pythons.sh's first
# case: there with every later Python it finds, Pyodide for any it does not.
for t in scripts/test_*.sh; do
  [ -e "$t" ] && [ "$t" != scripts/test_pythons.sh ] && step "$t" "$t"
done
late_parts
wait "$lane_pid"
lane_pid=
# Each one's time is up to its log's last write, not to the end of the scripts it ran beside.
part_done() {
  local name=$1
  [ -f "$work/$name.rc" ] || { echo "$name: did not run (its lane stopped)"; return 1; }
  cat "$work/$name.log"
  echo "(ran $(($(stat -c %Y "$work/$name.log") - $(cat "$work/$name.start"))) s, in the $(cat "$work/$name.lane") lane)"
  return "$(cat "$work/$name.rc" 2>/dev/null || echo 1)"
}
step "Python tests (pytest tests/python, but for $LATE_TESTS)" part_done pytest
step "Python tests of $LATE_TESTS" part_done late-tests
step "scripts/test_pythons.sh" part_done pythons
rm -rf "$work"

printf '\n%s\n' "${failures[@]/#/failed: }" | grep -v '^$' || true
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
