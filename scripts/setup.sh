#!/usr/bin/env bash
# Installs what skedge's scripts need, idempotently: Rust wasm target, pinned wasm-bindgen CLI,
# the Python virtualenv .venv with pinned packages, npm dev dependencies, Debian's PostgreSQL server
# (the team back-end tests), and the release CLI.
# Usage: scripts/setup.sh [--browser]   (--browser also installs Debian's chromium for the tests)
#        scripts/setup.sh --cli         (the release CLIs only)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WASM_BINDGEN_VERSION=0.2.130
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1
fi

# The release CLIs: the last step below. `--cli` runs only it: it needs nothing the other steps
# install, so scripts/test.sh starts it in the background before them.
build_clis() { cargo build --release --quiet --bin skedge --bin skedge-monitor; }
if [ "${1:-}" = --cli ]; then build_clis; exit; fi

if ! rustup target list --installed 2>/dev/null | grep -x wasm32-unknown-unknown > /dev/null; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # --locked fails against this registry mirror; the version pin keeps CLI and crate equal.
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --no-default-features
fi

PY=${PYTHON:-python3}
req_hash=$(sha256sum scripts/requirements.txt | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.requirements 2>/dev/null)" != "$req_hash" ]; then
  say "creating .venv with scripts/requirements.txt"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # pip byte-compiles every module (16,000, 79 s of one core here): left on, since with
  # PYTHONDONTWRITEBYTECODE set (as on these machines) every process would compile its imports.
  .venv/bin/pip install --disable-pip-version-check -q -r scripts/requirements.txt
  echo "$req_hash" > .venv/.requirements
fi

if [ -f package-lock.json ]; then
  lock_hash=$(sha256sum package-lock.json | cut -c1-16)
  if [ "$(cat node_modules/.skedge-lock 2>/dev/null)" != "$lock_hash" ]; then
    say "installing npm dev dependencies"
    # onnxruntime-node would download CUDA files at install; nothing else fetches outside npm.
    ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_hash" > node_modules/.skedge-lock
  fi
fi

if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null; then
  say "installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# PostgreSQL for the team back-end (MLflow's backend store; scripts/test_team.sh starts and stops a
# throwaway cluster under .work/). Debian's server package; installs nothing if it is there.
if ! compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; then
  say "installing Debian's PostgreSQL server for the team back-end tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi

# The Python package skedge (pyproject.toml, src/python.rs): built in place (the native module
# lands in scripts/skedge/, git-ignored) and installed editable, so .venv imports this tree's
# scripts/skedge. Rebuilt only when the Rust sources, the manifests or the tree change. In its own
# target directory: the library is also a cdylib, whose files cargo does not name by features, so
# the `python` build and the CLIs' build in one directory rebuild each other (about a minute each
# time here: the CLIs below, then tests/python/test_package.py's wheel, then the next CLI build).
py_hash=$( (echo "$ROOT"; cat pyproject.toml Cargo.toml Cargo.lock; find src -name '*.rs' | sort | xargs cat) \
  | sha256sum | cut -c1-16)
if [ "$(cat .venv/.skedge-python 2>/dev/null)" != "$py_hash" ] || ! compgen -G 'scripts/skedge/_skedge*.so' >/dev/null; then
  say "building the Python package skedge into .venv (maturin develop --release, a few minutes)"
  VIRTUAL_ENV="$ROOT/.venv" CARGO_TARGET_DIR="$ROOT/target/python" .venv/bin/maturin develop --release --quiet
  echo "$py_hash" > .venv/.skedge-python
fi

say "building the skedge CLIs (release)"
build_clis
echo "$ROOT/target/release/skedge"
