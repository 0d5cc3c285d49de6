#!/usr/bin/env bash
# Newer tools beside the pinned ones of package.json, for scripts/test_js.sh and scripts/bench.sh:
# TypeScript 7 (the native compiler), Vite 8 (on Rolldown), and the workerd Cloudflare deploys
# today (wrangler 4.86, the last for Node 20, pins one of 2026-04). Pinned, installed once into
# .work/npm-next, outside the project's package.json (two versions of a package there would fight
# over node_modules/.bin); prints its node_modules directory. Exits 1 if the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
NPM_NEXT=(typescript@7.0.2 vite@8.4.1 workerd@1.20261123.1)
next=$PWD/.work/npm-next
if [ "$(cat "$next/.installed" 2>/dev/null)" != "${NPM_NEXT[*]}" ]; then
  echo "npm_next: installing ${NPM_NEXT[*]} into .work/npm-next" >&2
  rm -rf "$next" && mkdir -p "$next" && echo '{ "private": true }' > "$next/package.json"
  (cd "$next" && npm install --silent --no-audit --no-fund "${NPM_NEXT[@]}") >&2 ||
    { echo "npm_next: could not install ${NPM_NEXT[*]}" >&2; exit 1; }
  echo "${NPM_NEXT[*]}" > "$next/.installed"
fi
echo "$next/node_modules"
