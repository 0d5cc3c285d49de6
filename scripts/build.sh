#!/usr/bin/env bash
# Builds the npm package `skedge` into pkg/ (idempotent; pkg/ is generated and gitignored):
#   1. cargo build of the library for wasm32 (profile `wasm`: release tuned for size, no CLI feature);
#   2. wasm-bindgen 0.2.130 twice from the same .wasm: `web` glue (ESM: browsers, bundlers, Node
#      ESM, Deno, Workers) and `nodejs` glue (CommonJS); both use the very same skedge_bg.wasm;
#   3. wasm-opt -Oz --converge from npm's binaryen@132 (never Debian's binaryen: it breaks current output);
#   4. the hand-written entry points of scripts/npm/ and a package.json with `exports` conditions.
# No model is embedded: artifacts are loaded at run time. Prints the wasm size, raw and gzip.
# Usage: scripts/build.sh            (then: cd pkg && npm pack)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/pkg
WORK=$ROOT/target/npm
WASM_OPT=$ROOT/node_modules/.bin/wasm-opt
WASM_BINDGEN_VERSION=0.2.130
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

[ -x "$WASM_OPT" ] || { echo "build: $WASM_OPT missing: run scripts/setup.sh (npm ci)" >&2; exit 1; }
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  echo "build: wasm-bindgen $WASM_BINDGEN_VERSION is required: run scripts/setup.sh" >&2; exit 1
fi

say "cargo build (wasm32, profile wasm)"
cargo build --quiet --lib --target wasm32-unknown-unknown --no-default-features --profile wasm
RAW=$ROOT/target/wasm32-unknown-unknown/wasm/skedge.wasm

say "wasm-bindgen (web + nodejs glue)"
rm -rf "$WORK" && mkdir -p "$WORK"
wasm-bindgen --target web --out-dir "$WORK/web" "$RAW"
wasm-bindgen --target nodejs --out-dir "$WORK/node" "$RAW"
if ! cmp -s "$WORK/web/skedge_bg.wasm" "$WORK/node/skedge_bg.wasm"; then
  echo "build: the web and nodejs targets produced different .wasm files; one copy cannot serve both" >&2
  exit 1
fi

say "wasm-opt -Oz"
rm -rf "$OUT" && mkdir -p "$OUT"
"$WASM_OPT" -Oz --converge "$WORK/web/skedge_bg.wasm" -o "$OUT/skedge_bg.wasm"

cp "$WORK/web/skedge.js" "$OUT/core.js"
cp "$WORK/node/skedge.js" "$OUT/core.cjs"
# Types generated from src/wasm/; options parameters are optional (an explicit
# `unchecked_param_type` drops wasm-bindgen's `?`).
sed -e 's/options: \(FromBytesOptions\|LoadOptions\|MonitorOptions\|FlushOptions\))/options?: \1)/' \
    "$WORK/web/skedge.d.ts" > "$OUT/core.d.ts"
for t in FromBytesOptions LoadOptions MonitorOptions FlushOptions; do
  grep -q "options?: $t)" "$OUT/core.d.ts" ||
    { echo "build: core.d.ts no longer has the expected signatures ($t)" >&2; exit 1; }
done
sed -i 's|@ts-self-types="./skedge.d.ts"|@ts-self-types="./core.d.ts"|' "$OUT/core.js" "$OUT/core.cjs"
cp scripts/npm/*.js scripts/npm/*.mjs scripts/npm/*.cjs scripts/npm/index.d.ts "$OUT/"
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
    '.': {
      types: './index.d.ts',
      workerd: './workerd.js',
      worker: './workerd.js',
      deno: './deno.js',
      node: { import: './node.mjs', require: './node.cjs' },
      browser: './browser.js',
      import: './browser.js',
      default: './browser.js',
    },
    './skedge_bg.wasm': './skedge_bg.wasm',
    './package.json': './package.json',
  },
  files: [
    'skedge_bg.wasm', 'core.js', 'core.cjs', 'core.d.ts', 'index.d.ts', 'errors.js',
    'browser.js', 'workerd.js', 'node.mjs', 'node.cjs', 'deno.js', 'README.md',
  ],
  engines: { node: '>=18' },
  keywords: ['scikit-learn', 'sklearn', 'text-classification', 'webassembly', 'wasm', 'cloudflare-workers', 'deno'],
};
require('node:fs').writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
EOF

raw=$(stat -c %s "$OUT/skedge_bg.wasm")
gz=$(gzip -9 -c "$OUT/skedge_bg.wasm" | wc -c)
say "pkg/ written: skedge_bg.wasm $raw bytes raw, $gz bytes gzip -9"
echo "$OUT"
