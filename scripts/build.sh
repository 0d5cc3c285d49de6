#!/usr/bin/env bash
# Builds the npm package `skedge` into pkg/ (idempotent; pkg/ is generated and gitignored):
#   1. cargo build of the library for wasm32 (profile `wasm`: release tuned for size, no CLI
#      feature; simd128 from .cargo/config.toml, for the XXH3 checksum), twice: the full build
#      (features `crypto`, `monitor`, `explain`, `format2`) -> skedge_bg.wasm,
#      and `skedge/lite` (none: no signatures, encryption, monitor, explain, format 2) -> skedge_lite_bg.wasm;
#   2. wasm-bindgen 0.2.130 twice from each .wasm: `web` glue (ESM: browsers, bundlers, Node
#      ESM, Deno, Workers) and `nodejs` glue (CommonJS); both use the very same .wasm;
#   3. wasm-opt -Oz -ocimfs 0 from npm's binaryen@132 (never Debian's binaryen: it breaks current output);
#   4. the hand-written entry points of scripts/npm/ (the lite ones derived from them: the same
#      files pointing at core-lite.js and skedge_lite_bg.wasm; CommonJS copies of the shared ESM
#      helpers) and a package.json with `exports` conditions for `skedge` and `skedge/lite`.
# No model is embedded: artifacts are loaded at run time. Prints the wasm sizes, raw and gzip.
# Usage: scripts/build.sh            (then: cd pkg && npm pack; SKEDGE_REBUILD=1 rebuilds an up-to-date pkg/)
#        scripts/build.sh --compile  (step 1 of the full build only)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/pkg
WORK=$ROOT/target/npm
WASM_OPT=$ROOT/node_modules/.bin/wasm-opt
WASM_BINDGEN_VERSION=0.2.130
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

FULL_FEATURES=crypto,monitor,explain,format2
cargo_wasm() { cargo build --quiet --lib --target wasm32-unknown-unknown --no-default-features --profile wasm "$@"; }

# pkg/ built from these very inputs is left as it is: scripts/test.sh's steps each call this
# script, and a rebuild costs one to two minutes. The digest covers every input file's content
# (committed or not), the tools' versions and the flags cargo reads; SKEDGE_REBUILD=1 rebuilds.
STAMP=$OUT/.build-inputs
inputs() {
  rustc -V; cargo -V; wasm-bindgen --version; "$WASM_OPT" --version; node --version
  env | grep -E '^(RUSTFLAGS|CARGO_[A-Z_]*RUSTFLAGS|CARGO_PROFILE_[A-Z_]*)=' | sort || true
  find src .cargo scripts/npm tests/golden -type f -print0 | sort -z | xargs -0 sha256sum
  sha256sum Cargo.toml Cargo.lock scripts/build.sh scripts/bundle_npm.mjs
  [ ! -f LICENSE ] || sha256sum LICENSE
}
digest() { inputs | sha256sum | cut -c1-32; }
# --compile: cargo's build of the full library alone, unless pkg/ is up to date. scripts/test.sh
# runs it in the background while scripts/setup.sh installs the tools, so it needs none of them (a
# tool missing from the digest only means it matches no stamp) and leaves a missing wasm32 target
# to setup.sh.
if [ "${1:-}" = --compile ]; then
  rustup target list --installed | grep -x wasm32-unknown-unknown > /dev/null || exit 0
  [ "$(cat "$STAMP" 2>/dev/null)" = "$(digest 2>/dev/null)" ] || cargo_wasm --features "$FULL_FEATURES"
  exit 0
fi
[ -x "$WASM_OPT" ] || { echo "build: $WASM_OPT missing: run scripts/setup.sh (npm ci)" >&2; exit 1; }
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  echo "build: wasm-bindgen $WASM_BINDGEN_VERSION is required: run scripts/setup.sh" >&2; exit 1
fi
DIGEST=$(digest)
sizes() {
  for w in skedge_bg skedge_lite_bg; do
    say "pkg/$w.wasm: $(stat -c %s "$OUT/$w.wasm") bytes raw, $(gzip -9 -c "$OUT/$w.wasm" | wc -c) bytes gzip -9"
  done
}
if [ "${SKEDGE_REBUILD:-}" != 1 ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$DIGEST" ]; then
  say "pkg/ is up to date: built from these sources and tools (SKEDGE_REBUILD=1 rebuilds)"
  # The stamp's time says when pkg/ was last found to match src/: the exporter's parity gate
  # (scripts/skedge/export.py) runs pkg/ only if no source is newer.
  touch "$STAMP"
  sizes
  echo "$OUT"
  exit 0
fi

rm -rf "$WORK" "$OUT" && mkdir -p "$WORK" "$OUT"

# wasm NAME CARGO_ARGS...: pkg/NAME_bg.wasm, and the glue as $WORK/{web,node}/NAME.{js,d.ts}.
wasm() {
  local name=$1; shift
  say "cargo build (wasm32, profile wasm): $name"
  cargo_wasm "$@"
  cp "$ROOT/target/wasm32-unknown-unknown/wasm/skedge.wasm" "$WORK/$name.wasm"
  if ! "$WASM_OPT" "$WORK/$name.wasm" --print-features -o /dev/null | grep -x -- --enable-simd > /dev/null; then
    echo "build: $name.wasm has no simd128 (RUSTFLAGS or CARGO_ENCODED_RUSTFLAGS replace .cargo/config.toml's)" >&2
    exit 1
  fi
  say "wasm-bindgen (web + nodejs glue): $name"
  wasm-bindgen --target web --out-dir "$WORK/web" --out-name "$name" "$WORK/$name.wasm"
  wasm-bindgen --target nodejs --out-dir "$WORK/node" --out-name "$name" "$WORK/$name.wasm"
  if ! cmp -s "$WORK/web/${name}_bg.wasm" "$WORK/node/${name}_bg.wasm"; then
    echo "build: the web and nodejs targets produced different .wasm files; one copy cannot serve both" >&2
    exit 1
  fi
  # The glue's catching imports are `function() { return handleError(function (arg0, ...) {...},
  # arguments) }`: a JS arity (0) that differs from the wasm signature's, for which V8 compiles
  # a wasm-to-JS wrapper of its own at instantiation (about 10 more of 38 in a fresh process).
  # Declaring the parameters makes the arities match; `arguments` is unchanged.
  sed -i 's/: function() { return handleError(function (\([^)]*\)) {/: function(\1) { return handleError(function (\1) {/' \
    "$WORK/web/$name.js" "$WORK/node/$name.js"
  if grep -q ': function() { return handleError(function ([^)]' "$WORK/web/$name.js" "$WORK/node/$name.js"; then
    echo "build: a catching import of the glue still has no parameters" >&2; exit 1
  fi
  say "wasm-opt -Oz: $name"
  # -ocimfs 0: no inlining of big functions just because they have one caller. V8 compiles a
  # function lazily, whole, on its first call: inlined into Model::new, the format 2 converter,
  # decryption and signature checks were compiled on every load (54 KB of code, 100 KB in all
  # before the first fromBytes returned; 59 KB with this flag). Same size (gzip 1 % smaller).
  # --low-memory-unused: Rust's wasm never touches the first KB of memory (the stack starts at
  # 1 MB and grows down, data sits above it), so address arithmetic folds into load offsets.
  # Without --converge: a second and third round took twice the time (13 → 29 s for the full
  # build here) for 125 bytes of gzip. wasm-opt runs on one core: in the background, beside the
  # next cargo build.
  "$WASM_OPT" -Oz -ocimfs 0 --low-memory-unused "$WORK/web/${name}_bg.wasm" -o "$OUT/${name}_bg.wasm" &
  optimizing+=($!)
}
optimizing=()
wasm skedge --features "$FULL_FEATURES"
wasm skedge_lite
for p in "${optimizing[@]}"; do wait "$p"; done

# glue NAME CORE: core.js / core.cjs / core.d.ts / core.d.cts of one build. Types generated from
# src/wasm/, from the nodejs glue: the web glue's adds its init functions, whose types need the DOM
# (index.d.ts declares the package's own). Options parameters are optional (an explicit
# `unchecked_param_type` drops wasm-bindgen's `?`).
glue() {
  local name=$1 core=$2
  cp "$WORK/web/$name.js" "$OUT/$core.js"
  cp "$WORK/node/$name.js" "$OUT/$core.cjs"
  sed -e 's/options: \(FromBytesOptions\|LoadOptions\|MonitorOptions\|FlushOptions\))/options?: \1)/' \
      "$WORK/node/$name.d.ts" > "$OUT/$core.d.ts"
  cp "$OUT/$core.d.ts" "$OUT/$core.d.cts"
  if grep -q 'RequestInfo\|BufferSource\|WebAssembly\.' "$OUT/$core.d.ts"; then
    echo "build: $core.d.ts uses DOM-only types; a Node-only TypeScript project could not use it" >&2; exit 1
  fi
  for t in FromBytesOptions LoadOptions; do
    grep -q "options?: $t)" "$OUT/$core.d.ts" ||
      { echo "build: $core.d.ts no longer has the expected signatures ($t)" >&2; exit 1; }
  done
  sed -i "s|@ts-self-types=\"./$name.d.ts\"|@ts-self-types=\"./$core.d.ts\"|" "$OUT/$core.js" "$OUT/$core.cjs"
  node scripts/bundle_npm.mjs lazy-cjs "$OUT/$core.cjs" "${name}_bg.wasm"
}
glue skedge core
glue skedge_lite core-lite
grep -q "options?: MonitorOptions)" "$OUT/core.d.ts" ||
  { echo "build: core.d.ts no longer has Model.monitor(options?)" >&2; exit 1; }

ENTRIES=(browser.js workerd.js node.mjs node.cjs deno.js)
cp scripts/npm/errors.js scripts/npm/extend.js scripts/npm/index.d.ts "${ENTRIES[@]/#/scripts/npm/}" "$OUT/"
# CommonJS copies of the shared helpers and types, for node.cjs (TypeScript's `module: node16`
# reads index.d.cts for `require`).
{ sed 's/^export \(function\|class\) /\1 /' scripts/npm/errors.js; echo 'module.exports = { SkedgeError, skedgeError };'; } > "$OUT/errors.cjs"
{ sed -e "s|^import { skedgeError } from './errors.js';|const { skedgeError } = require('./errors.cjs');|" \
      -e 's/^export function /function /' scripts/npm/extend.js; echo 'module.exports = { ed25519Verifier, extend, warmSigned, warmUp };'; } > "$OUT/extend.cjs"
# skedge/lite: the same entry points on the lite build.
for e in "${ENTRIES[@]}"; do
  sed -e "s|'./core.js'|'./core-lite.js'|; s|'./core.cjs'|'./core-lite.cjs'|; s|skedge_bg.wasm|skedge_lite_bg.wasm|" \
      -e '/^  warmSigned(core);$/d' "scripts/npm/$e" > "$OUT/lite-$e"
done
sed -e "s|'./core.js'|'./core-lite.js'|; s|skedge_bg.wasm|skedge_lite_bg.wasm|" -e '/^  Monitor,$/d' -e '/^  MonitorOptions,$/d' -e '/^  FlushOptions,$/d' \
    -e '/^  FlushResult,$/d' -e '/^  SnapshotSink,$/d' -e '/^  Snapshot,$/d' -e '/^  Drift,$/d' \
    -e '/^\/\/ experiments: begin/,/^\/\/ experiments: end/d' scripts/npm/index.d.ts > "$OUT/lite.d.ts"
sed "s|'./core.js'|'./core.cjs'|" "$OUT/index.d.ts" > "$OUT/index.d.cts"
sed "s|'./core-lite.js'|'./core-lite.cjs'|" "$OUT/lite.d.ts" > "$OUT/lite.d.cts"
if grep -q "'./core.js'" "$OUT/index.d.cts" "$OUT/lite.d.cts"; then
  echo "build: a CommonJS declaration file still points at the ESM core" >&2; exit 1
fi
if grep -q 'core.js\|core.cjs\|skedge_bg' "$OUT"/lite-* "$OUT/lite.d.ts" "$OUT/lite.d.cts"; then
  echo "build: a lite entry still points at the full build" >&2; exit 1
fi
# The Node, browser and Deno entries as one module each (scripts/bundle_npm.mjs says why); the
# workerd ones keep their imports (a Worker's start-up is outside any request's CPU limit).
for e in node.mjs browser.js deno.js; do
  node scripts/bundle_npm.mjs bundle "$OUT/$e"
  node scripts/bundle_npm.mjs bundle "$OUT/lite-$e"
done
for e in node.cjs lite-node.cjs; do node scripts/bundle_npm.mjs bundle-cjs "$OUT/$e"; done
if grep -q "from '\./\|require('\./" "$OUT"/{,lite-}{node.mjs,node.cjs,browser.js,deno.js}; then
  echo "build: a bundled entry still imports a module of the package" >&2; exit 1
fi
# The warm-up of every entry's `init()` and of workerd's start-up loads the tiny golden
# (scripts/npm/extend.js, `warmUp`), in extend.js/.cjs and in the bundles that hold a copy;
# Node's `init()` and workerd's start-up also the signed golden with its public test key
# (extend.js `warmSigned`, scripts/npm/workerd.js).
WARM=$(grep -l '@TINY_SKEDGE_BASE64@\|@TINY_SIGNED_SKEDGE_BASE64@' "$OUT"/*.js "$OUT"/*.mjs "$OUT"/*.cjs)
sed -i -e "s|@TINY_SKEDGE_BASE64@|$(base64 -w0 tests/golden/tiny.skedge)|" \
  -e "s|@TINY_SIGNED_SKEDGE_BASE64@|$(base64 -w0 tests/golden/tiny.signed.skedge)|" \
  -e "s|@TEST_SIGNING_PUB@|$(cut -d: -f2 tests/golden/test-signing.pub)|" $WARM
if grep -q '@TINY_SKEDGE_BASE64@\|@TINY_SIGNED_SKEDGE_BASE64@\|@TEST_SIGNING_PUB@' "$OUT"/*.js "$OUT"/*.mjs "$OUT"/*.cjs; then
  echo "build: an entry still holds the warm-up placeholder" >&2; exit 1
fi
cp scripts/npm/README.md "$OUT/README.md"
[ -f LICENSE ] && cp LICENSE "$OUT/"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
node - "$OUT/package.json" "$VERSION" <<'EOF'
const [file, version] = process.argv.slice(2);
const pkg = {
  name: 'skedge',
  version,
  description: 'scikit-learn text classifiers, bit-exact, in browsers, Node, Deno and Cloudflare Workers (WebAssembly)',
  license: 'MIT',
  type: 'module',
  main: './node.cjs',
  module: './browser.js',
  browser: './browser.js',
  types: './index.d.ts',
  exports: {
    './lite': {
      types: { require: './lite.d.cts', default: './lite.d.ts' },
      workerd: './lite-workerd.js',
      worker: './lite-workerd.js',
      deno: './lite-deno.js',
      node: { import: './lite-node.mjs', require: './lite-node.cjs' },
      browser: './lite-browser.js',
      import: './lite-browser.js',
      default: './lite-browser.js',
    },
    '.': {
      types: { require: './index.d.cts', default: './index.d.ts' },
      workerd: './workerd.js',
      worker: './workerd.js',
      deno: './deno.js',
      node: { import: './node.mjs', require: './node.cjs' },
      browser: './browser.js',
      import: './browser.js',
      default: './browser.js',
    },
    './skedge_bg.wasm': './skedge_bg.wasm',
    './skedge_lite_bg.wasm': './skedge_lite_bg.wasm',
    './package.json': './package.json',
  },
  files: [
    'skedge_bg.wasm', 'core.js', 'core.cjs', 'core.d.ts', 'core.d.cts', 'index.d.ts', 'index.d.cts',
    'errors.js', 'errors.cjs',
    'extend.js', 'extend.cjs', 'browser.js', 'workerd.js', 'node.mjs', 'node.cjs', 'deno.js', 'README.md',
    'skedge_lite_bg.wasm', 'core-lite.js', 'core-lite.cjs', 'core-lite.d.ts', 'core-lite.d.cts',
    'lite.d.ts', 'lite.d.cts',
    'lite-browser.js', 'lite-workerd.js', 'lite-node.mjs', 'lite-node.cjs', 'lite-deno.js',
  ],
  engines: { node: '>=18' },
  keywords: ['scikit-learn', 'sklearn', 'text-classification', 'webassembly', 'wasm', 'cloudflare-workers', 'deno'],
};
require('node:fs').writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
EOF

sizes
echo "$DIGEST" > "$STAMP"
echo "$OUT"
