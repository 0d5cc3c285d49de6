#!/usr/bin/env bash
# README's first command, as a user runs it (without the server at its end: SERVE=0): scripts/demo.sh
# trains the demo models into the embedded MLflow, exports them from the registry through the parity
# gate, predicts with the CLI and builds the offline page. Then checks what it says it made: each
# model's artifact and manifest (its gate passed in the npm package), the CLI's predictions, and
# www/ with those models and the package (scripts/test_www.sh tests the page in Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(mktemp -d "${TMPDIR:-/tmp}/skedge-demo.XXXXXX")
trap 'rm -rf "$T"' EXIT

if ! SERVE=0 scripts/demo.sh > "$T/demo.log" 2>&1; then
  tail -40 "$T/demo.log"
  echo "test_demo: scripts/demo.sh failed (its output above)" >&2
  exit 1
fi
# The CLI's predictions of demo.sh's four texts: the first and third praise, the others complain.
labels=$(grep -o '"label": *"[a-z]*"' "$T/demo.log" | head -4 | sed 's/.*"\([a-z]*\)"$/\1/' | paste -sd ' ')
if ! .venv/bin/python - "$labels" <<'EOF'; then
import json
import pathlib
import sys

failed = False


def check(what, ok, detail=""):
    global failed
    print(f"{'ok' if ok else 'FAILED'} {what}{'' if ok else ': ' + detail}")
    failed |= not ok


models = ["sentiment_model", "sentiment_model_char", "sentiment_model_fr"]
for name in models:
    base = pathlib.Path(".work/demo") / name
    manifest = json.loads(base.with_suffix(".manifest.json").read_text(encoding="utf-8"))
    parity = manifest["parity"]
    check(f"{name}: {manifest['size']:,} bytes, parity gate passed in the npm package",
          base.with_suffix(".skedge").stat().st_size == manifest["size"] and parity["passed"]
          and parity["runtime"].startswith("wasm"), json.dumps(parity))
labels = sys.argv[1]
check("the CLI's predictions of the demo texts", labels == "positive negative positive negative", labels)
index = json.loads(pathlib.Path("www/models/index.json").read_text(encoding="utf-8"))
ids = sorted(m["id"] for m in index["models"])
check("www/: the three models and the browser package",
      ids == models and pathlib.Path("www/vendor/skedge/skedge_bg.wasm").exists(), str(ids))
sys.exit(1 if failed else 0)
EOF
  tail -40 "$T/demo.log"
  exit 1
fi
