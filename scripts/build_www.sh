#!/usr/bin/env bash
# Makes the offline demo folder self-contained, so it works from any static host:
#   vendor/skedge/     the browser build of the npm package (pkg/: browser.js, one module with the glue,
#                      and skedge_bg.wasm; run scripts/build.sh first)
#   models/            the demo artifacts with their manifests, and models/index.json
#   precache.js        the service worker's file list (the page's own files, vendor/ and models/:
#                      not the README's images beside them in www/) and version (a digest of those
#                      files and sw.js), written by scripts/serve_www.py --write-precache, which
#                      refuses to serve a folder whose files no longer match it
# The page itself (index.html, app.js, style.css, sw.js, ...) is committed in www/.
#
# Usage:
#   scripts/build_www.sh [--out DIR] [--models DIR]
#       models: every NAME.skedge + NAME.manifest.json in DIR (default .work/demo, where
#       scripts/demo.sh exports the MLflow models)
#   scripts/build_www.sh [--out DIR] --fixtures CASE[,CASE...] [--fixtures-dir DIR]
#       models: scikit-learn fixture cases (tests/fixtures/cases/CASE.interchange.json), packed
#       with target/release/skedge; used by the tests, needs no MLflow
# --out DIR (default www): another folder gets a copy of the page first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/www
MODELS=$ROOT/.work/demo
FIXTURES=
FIXTURES_DIR=$ROOT/tests/fixtures
SKEDGE=$ROOT/target/release/skedge
PY=$ROOT/.venv/bin/python
[ -x "$PY" ] || PY=python3
PAGE_FILES=(index.html app.js style.css sw.js icon.svg manifest.webmanifest)
VENDOR_FILES=(browser.js skedge_bg.wasm)

while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$(realpath -m "$2"); shift 2 ;;
    --models) MODELS=$(realpath -m "$2"); shift 2 ;;
    --fixtures) FIXTURES=$2; shift 2 ;;
    --fixtures-dir) FIXTURES_DIR=$(realpath -m "$2"); shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "build_www: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "build_www: $*" >&2; exit 1; }

mkdir -p "$OUT"
if [ "$OUT" != "$ROOT/www" ]; then
  for f in "${PAGE_FILES[@]}"; do cp "$ROOT/www/$f" "$OUT/$f"; done
fi

say "vendor/skedge: the browser build of pkg/"
for f in "${VENDOR_FILES[@]}"; do
  [ -f "$ROOT/pkg/$f" ] || die "pkg/$f is missing: run scripts/build.sh first"
done
rm -rf "$OUT/vendor/skedge" && mkdir -p "$OUT/vendor/skedge"
for f in "${VENDOR_FILES[@]}"; do cp "$ROOT/pkg/$f" "$OUT/vendor/skedge/$f"; done

rm -rf "$OUT/models" && mkdir -p "$OUT/models"
if [ -n "$FIXTURES" ]; then
  say "models: fixture cases $FIXTURES"
  [ -x "$SKEDGE" ] || die "$SKEDGE is missing: run scripts/setup.sh"
  for case in ${FIXTURES//,/ }; do
    src=$FIXTURES_DIR/cases/$case.interchange.json
    [ -f "$src" ] || die "no fixture $src"
    log=$("$SKEDGE" pack "$src" -o "$OUT/models/$case.skedge" 2>&1) || die "skedge pack $case: $log"
    log=$("$PY" scripts/manifest.py --skedge "$SKEDGE" "$OUT/models/$case.skedge" 2>&1) || die "manifest $case: $log"
  done
else
  say "models: $MODELS"
  shopt -s nullglob
  found=("$MODELS"/*.skedge)
  [ ${#found[@]} -gt 0 ] || die "no *.skedge in $MODELS (scripts/demo.sh exports them there; or use --fixtures)"
  for f in "${found[@]}"; do
    m=${f%.skedge}.manifest.json
    [ -f "$m" ] || die "$f has no manifest ${m##*/}"
    cp "$f" "$m" "$OUT/models/"
  done
fi
chmod 644 "$OUT"/models/*

say "models/index.json and precache.js"
"$PY" - "$OUT" "$FIXTURES_DIR" "${FIXTURES:+fixtures}" <<'EOF'
import json, sys
from pathlib import Path

out, fixtures_dir, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
SENTIMENT = {"0": "negative", "1": "positive"}
# How the demo presents the models scripts/demo.sh exports (by registered name); others by name.
KNOWN = {
    "sentiment_model": dict(
        label="English reviews — words", language="en", class_names=SENTIMENT, order=0,
        description="TF-IDF over words + logistic regression, trained on 3,000 UCI product, movie "
                    "and restaurant review sentences.",
        examples=["Great phone, works perfectly and the sound is excellent.",
                  "Worst restaurant ever. Cold food and a rude waiter.",
                  "I loved this movie, the acting was wonderful.",
                  "Not bad at all!"]),
    "sentiment_model_fr": dict(
        label="French TV reviews — words", language="fr", class_names=SENTIMENT, order=1,
        description="TF-IDF over words + logistic regression, trained on 1,200 Allociné TV series reviews.",
        examples=["J'adore cette série, vivement la suite !",
                  "Nul, mal joué, des scénarios sans intérêt.",
                  "Pas terrible au début, mais la deuxième saison est géniale.",
                  "Quelle déception, c'est vraiment n'importe quoi."]),
    "sentiment_model_char": dict(
        label="English reviews — characters (char_wb)", language="en", class_names=SENTIMENT, order=2,
        description="TF-IDF over character n-grams inside word boundaries: robust to typos and "
                    "words it never saw.",
        examples=["Sooo goood, loved evry minute!!",
                  "absolutly horible, never comming back",
                  "Grreat food, amazng service!",
                  "The batery died after two days, very dissapointed."]),
    # fixture cases (scripts/test_www.sh)
    "word_tfidf_lr_binary": dict(label="English reviews — words (fixture)", language="en",
                                 class_names=SENTIMENT, order=0),
    "lr_multinomial_3class_strings_fr": dict(
        label="French book reviews — 3 classes (fixture)", language="fr", order=1,
        class_names={"neg": "negative", "mid": "mixed", "pos": "positive"}),
    "charwb25_tfidf_linearsvc": dict(label="English reviews — char_wb, LinearSVC (fixture)",
                                     language="en", class_names=SENTIMENT, order=2),
}

def fixture_examples(case, n=3, limit=110):
    path = fixtures_dir / "cases" / f"{case}.expected.jsonl"
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        t = json.loads(line)["text"]
        if 12 <= len(t) <= limit and t.isprintable():
            texts.append(t)
        if len(texts) == n:
            break
    return texts

models = []
for mpath in sorted((out / "models").glob("*.manifest.json")):
    man = json.loads(mpath.read_text(encoding="utf-8"))
    name = man.get("name") or mpath.name[: -len(".manifest.json")]
    known = KNOWN.get(name, {})
    ident = mpath.name[: -len(".manifest.json")]
    entry = {
        "id": ident,
        "label": known.get("label", name),
        "file": man["file"],
        "manifest": mpath.name,
        "language": known.get("language", "fr" if name.endswith("_fr") else "en"),
        "description": known.get("description") or man.get("provenance", {}).get("description", ""),
        "examples": known.get("examples") or (fixture_examples(ident) if mode else []),
    }
    names = known.get("class_names")
    if names and all(str(c) in names for c in man.get("classes", [])):
        entry["class_names"] = {str(c): names[str(c)] for c in man["classes"]}
    models.append((known.get("order", 99), name, entry))
models.sort(key=lambda m: m[:2])
index = {"format": "skedge-demo-models", "version": 1, "models": [m[2] for m in models]}
(out / "models" / "index.json").write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

print(f"{len(models)} model(s)", file=sys.stderr)
EOF
"$PY" scripts/serve_www.py --dir "$OUT" --write-precache "${PAGE_FILES[@]}"
echo "$OUT"
