#!/usr/bin/env bash
# README command 1: set up, build the npm package, train the demo sentiment models into an
# embedded MLflow (sqlite in .work/mlflow), export them from the registry behind the parity gate
# (run in the package), predict with the artifact, then build and serve the offline page (SERVE=0
# stops before serving; scripts/test_demo.sh runs it so in every test run).
# Safe to re-run: each run registers a new model version and moves the `production` alias to it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "setup (Rust CLI, Python .venv with scikit-learn and MLflow)"
scripts/setup.sh >/dev/null
# First, so that the exports' parity gate runs the artifacts in the npm package the page ships.
say "building the npm package (scripts/build.sh: WebAssembly, about a minute the first time)"
scripts/build.sh >/dev/null

# The demo always uses the project's embedded MLflow, never a server MLFLOW_TRACKING_URI points at.
TRACKING="sqlite:///$ROOT/.work/mlflow/mlflow.db"
OUT=.work/demo/sentiment_model.skedge

say "training the demo model and registering it in MLflow ($TRACKING)"
.venv/bin/python scripts/train_demo.py --all --tracking-uri "$TRACKING" --heldout-dir .work/demo 2>&1 |
  sed -e '/^$/d' -e '/ INFO mlflow/d' -e '/View run/d' -e '/View experiment/d' \
    -e '/Successfully registered model/d' -e '/Created version/d' -e '/already exists. Creating a new/d'

say "exporting models:/sentiment_model@production (parity gate, manifest, write-back to MLflow)"
.venv/bin/python scripts/export.py --model-uri models:/sentiment_model@production \
  --tracking-uri "$TRACKING" --validation .work/demo/sentiment_model.heldout.csv --out "$OUT"

say "predicting with the artifact (target/release/skedge predict)"
texts=$'The food was absolutely wonderful, I will come back.\nTerrible service, the worst experience ever.\nGreat phone for the price.\nIt broke after two days.'
paste -d '\t' <(printf '%s\n' "$texts") <(printf '%s\n' "$texts" | target/release/skedge predict "$OUT") |
  while IFS=$'\t' read -r text json; do printf '  %-55s %s\n' "$text" "$json"; done

say "done"
cat <<EOF
  artifact   $ROOT/$OUT
  manifest   $ROOT/${OUT%.skedge}.manifest.json   (sha256, size, integrity, classes, parity)
  report     $ROOT/${OUT%.skedge}.parity.json
  restore    .venv/bin/python scripts/export.py --restore models:/sentiment_model@production --tracking-uri $TRACKING --out FILE
  MLflow UI  .venv/bin/mlflow ui --backend-store-uri $TRACKING --host 127.0.0.1 --port 5000
             then open http://127.0.0.1:5000 (model sentiment_model: skedge.* tags; its run: skedge/ artifacts)
EOF

for m in sentiment_model_fr sentiment_model_char; do
  say "exporting models:/$m@production"
  .venv/bin/python scripts/export.py --model-uri "models:/$m@production" \
    --tracking-uri "$TRACKING" --validation ".work/demo/$m.heldout.csv" --out ".work/demo/$m.skedge"
done
say "the offline browser demo (www/): npm package, models, service worker"
scripts/build_www.sh --models .work/demo >/dev/null
if [ "${SERVE:-1}" = 1 ]; then
  say "serving www/ on 127.0.0.1 — open the URL below (Ctrl-C stops; SERVE=0 skips)"
  exec .venv/bin/python scripts/serve_www.py --port "${PORT:-8000}" --quiet
fi
