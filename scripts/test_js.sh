#!/usr/bin/env bash
# Tests the npm package as users get it: builds pkg/ (scripts/build.sh), `npm pack`s it, installs
# the tarball into a temporary app, packs every parity fixture (tests/fixtures/cases) with the CLI,
# and runs, against that install: Node ESM and CJS (parity, API, errors, keys, monitoring,
# Model.follow against a local pointer server), the TypeScript declarations (TypeScript 5.9 and 7 on
# four kinds of project), the README snippets, Deno, Bun, the Cloudflare Worker example under workerd
# (wrangler dev on 127.0.0.1, plus a bounded load test and a signed/encrypted model with its key in a
# secret binding), the package in `workerd serve` itself (the pinned workerd and the one Cloudflare
# runs today), a plain <script type="module"> page and a Vite build (Vite 7 and 8) in headless
# Chromium (playwright-core), the Node example; the Node tests again on Node 22, 24 and 26
# (scripts/node_versions.sh; NODE_VERSIONS= to skip); and the wasm-bindgen-test suite in Node and in
# Chromium. Servers listen on 127.0.0.1 only and are stopped at the end; the temporary directory is
# removed unless KEEP=1.
# Usage: scripts/test_js.sh [node|deno|bun|worker|browser|wasm ...]   (default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CI=${CI:-} WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false DO_NOT_TRACK=1
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1 NO_COLOR=${NO_COLOR:-}
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/skedge-js.XXXXXX")
cleanup() {
  local rc=$?
  # Servers are started and stopped by the tests themselves; nothing is left running here.
  if [ "${KEEP:-}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT
export SKEDGE_ROOT=$ROOT SKEDGE_TMP=$T SKEDGE_CASES=$T/cases

scripts/build.sh >/dev/null
cargo build --quiet --release --bin skedge

say "npm pack"
TARBALL=$(cd pkg && npm pack --silent --pack-destination "$T" | tail -1)
TARBALL=$T/$TARBALL
ls -l "$TARBALL" >&2

say "packing the parity fixtures"
mkdir -p "$SKEDGE_CASES"
shopt -s nullglob
fixtures=(tests/fixtures/cases/*.interchange.json)
[ ${#fixtures[@]} -gt 0 ] || { echo "test_js: no tests/fixtures/cases/*.interchange.json" >&2; exit 1; }
for f in "${fixtures[@]}"; do
  name=$(basename "$f" .interchange.json)
  [ -f "tests/fixtures/cases/$name.expected.jsonl" ] || { echo "test_js: $name has no expected outputs" >&2; exit 1; }
  target/release/skedge pack "$f" -o "$SKEDGE_CASES/$name.skedge" 2>/dev/null
  cp "tests/fixtures/cases/$name.expected.jsonl" "$SKEDGE_CASES/"
done
echo "${#fixtures[@]} cases" >&2

say "installing the tarball into a temporary app"
APP=$T/app
mkdir -p "$APP"
cp -r tests/js/. "$APP/"
printf '{ "name": "skedge-js-tests", "private": true, "type": "module" }\n' > "$APP/package.json"
(cd "$APP" && npm install --silent --no-audit --no-fund --no-save "$TARBALL")
export SKEDGE_APP=$APP

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(wasm node deno bun worker browser)
want() { local w; for w in "${what[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

# The tools' next versions beside the pinned ones (TypeScript 7, Vite 8, Cloudflare's current
# workerd): types.test.mjs, browser.test.mjs and workerd.test.mjs run with both.
if want node || want browser || want worker; then
  SKEDGE_NEXT=$(scripts/npm_next.sh)
  export SKEDGE_NEXT
fi

status=0
if want wasm; then
  say "wasm-bindgen-test (Node, then Chromium)"
  for where in node chromium; do
    log=$T/wasm-bindgen-test-$where.log
    env=(CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner WASM_BINDGEN_TEST_TIMEOUT=120)
    [ "$where" = chromium ] && env+=(WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver)
    if env "${env[@]}" cargo test --target wasm32-unknown-unknown --lib wasm:: >"$log" 2>&1 &&
       grep -Eq 'test result: ok\. [1-9][0-9]* passed' "$log"; then
      echo "wasm-bindgen-test ($where): $(grep -Eo '[0-9]+ passed; [0-9]+ failed' "$log" | tail -1)"
    else
      echo "wasm-bindgen-test ($where): FAILED (or ran no test)"; tail -40 "$log"; status=1
    fi
  done
fi

files=()
want node && files+=("$APP/node-esm.test.mjs" "$APP/node-cjs.test.cjs" "$APP/node-example.test.mjs"
                     "$APP/keys.test.mjs" "$APP/host-verify.test.mjs" "$APP/monitor.test.mjs" "$APP/lite.test.mjs"
                     "$APP/api.test.mjs" "$APP/types.test.mjs" "$APP/readme.test.mjs"
                     "$APP/follow.test.mjs" "$APP/experiment.test.mjs" "$APP/records.test.mjs" "$APP/hostile.test.mjs")
want deno && files+=("$APP/deno.test.mjs")
want bun && files+=("$APP/bun.test.mjs")
want worker && files+=("$APP/worker.test.mjs" "$APP/workerd.test.mjs")
want browser && files+=("$APP/browser.test.mjs")
if [ ${#files[@]} -gt 0 ]; then
  say "node --test (${#files[@]} files)"
  (cd "$APP" && node --test --test-concurrency=1 --test-reporter=tap "${files[@]}") || status=1
fi

# The package's Node tests again on the other maintained Node lines (the machine's Node runs
# everything above; scripts/node_versions.sh installs them). Node 22 and later bundle OpenSSL 3.5,
# which treats some signatures differently from Node 20's 3.0 (tests/js/host-verify.test.mjs).
if want node; then
  node_files=(node-esm.test.mjs node-cjs.test.cjs node-example.test.mjs keys.test.mjs host-verify.test.mjs
              monitor.test.mjs lite.test.mjs api.test.mjs follow.test.mjs experiment.test.mjs records.test.mjs
              hostile.test.mjs)
  if versions=$(scripts/node_versions.sh); then
    while read -r v bin; do
      [ -n "$v" ] || continue
      say "node --test on Node $v (${#node_files[@]} files)"
      (cd "$APP" && PATH=$bin:$PATH node --test --test-concurrency=1 --test-reporter=tap "${node_files[@]}" \
        </dev/null) || status=1
    done <<< "$versions"
  else
    status=1
  fi
fi
exit $status
