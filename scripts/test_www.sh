#!/usr/bin/env bash
# Tests the offline demo (www/) in headless Chromium (playwright-core, /usr/bin/chromium):
# builds the npm package when its sources changed, builds a copy of the demo whose models are
# three scikit-learn fixture cases (packed by the CLI: no MLflow needed), serves it on 127.0.0.1
# (a free port) and runs tests/js/www.test.mjs. Screenshots go to .work/www/. KEEP=1 keeps the
# temp copy. SKEDGE_NO_BUILD=1 uses pkg/ and target/release/skedge as they are (as scripts/test_sync.sh
# does: while pkg/ must not change under other jobs). UPDATE_SCREENSHOT=1 also rewrites the README's www/screenshot.png: from the MLflow demo
# models when scripts/demo.sh has exported them (DEMO_MODELS, default .work/demo), else from the
# fixture models.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CASES=${WWW_TEST_CASES:-word_tfidf_lr_binary,lr_multinomial_3class_strings_fr,charwb25_tfidf_linearsvc}
FIXTURES_DIR=${FIXTURES_DIR:-$ROOT/tests/fixtures}
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

[ -x /usr/bin/chromium ] || scripts/setup.sh --browser >/dev/null
[ -f node_modules/playwright-core/package.json ] ||
  { echo "test_www: node_modules/playwright-core is missing: run scripts/setup.sh" >&2; exit 1; }

# The package: rebuilt when missing or older than its sources.
if [ -n "${SKEDGE_NO_BUILD:-}" ]; then
  [ -f pkg/skedge_bg.wasm ] && [ -x target/release/skedge ] ||
    { echo "test_www: SKEDGE_NO_BUILD=1 needs pkg/ (scripts/build.sh) and target/release/skedge" >&2; exit 1; }
else
  if [ ! -f pkg/skedge_bg.wasm ] || [ -n "$(find src Cargo.toml Cargo.lock scripts/npm scripts/build.sh -newer pkg/skedge_bg.wasm -print -quit)" ]; then
    say "building the npm package (scripts/build.sh)"
    scripts/build.sh >/dev/null
  fi
  cargo build --quiet --release --bin skedge
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/skedge-www.XXXXXX")
cleanup() {
  local rc=$?
  if [ "${KEEP:-}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
  exit $rc
}
trap cleanup EXIT

say "building the demo into $T/www with fixture models"
scripts/build_www.sh --out "$T/www" --fixtures "$CASES" --fixtures-dir "$FIXTURES_DIR" >/dev/null

mkdir -p .work/www
say "node --test tests/js/www.test.mjs"
WWW_DIR=$T/www FIXTURES_DIR=$FIXTURES_DIR SHOTS_DIR=$ROOT/.work/www \
  node --test --test-concurrency=1 --test-reporter=spec tests/js/www.test.mjs

if [ "${UPDATE_SCREENSHOT:-}" = 1 ] && compgen -G "${DEMO_MODELS:-$ROOT/.work/demo}/*.skedge" >/dev/null; then
  say "README screenshot from the demo models in ${DEMO_MODELS:-.work/demo}"
  scripts/build_www.sh --out "$T/demo" --models "${DEMO_MODELS:-$ROOT/.work/demo}" >/dev/null
  WWW_DIR=$T/demo SHOTS_DIR=$ROOT/.work/www/demo \
    node --test --test-reporter=spec --test-name-pattern='^screenshots$' tests/js/www.test.mjs
fi
