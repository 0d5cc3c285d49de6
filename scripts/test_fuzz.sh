#!/usr/bin/env bash
# Bounded coverage-guided fuzzing (cargo fuzz / libFuzzer) of the artifact parser, the body reader
# (format 3 manifest and sections, format 2 postcard converted at load),
# `predict` on arbitrary bytes-as-text, the monitoring snapshot parser and the publish pointer's
# reader (fields and signature, as a follower gets it), seeded from the goldens,
# the parity fixtures and tests/fuzz/seeds; replays
# every committed crash (tests/fuzz/regressions) first. Run by scripts/test.sh (about 3 minutes
# with the build); for a long run: FUZZ_SECONDS=900 nice -n 19 scripts/test_fuzz.sh
#
# Environment: FUZZ_SECONDS per target (default 15), FUZZ_TARGETS (default: all five).
# Works on the stable toolchain: `--sanitizer none` needs no nightly flags (the crate forbids
# unsafe code; libFuzzer's coverage instrumentation is stable rustc's -Cpasses=sancov-module).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${FUZZ_SECONDS:-15}
TARGETS=${FUZZ_TARGETS:-artifact artifact_body predict snapshot pointer}
FUZZ=tests/fuzz
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION (about 2 minutes, once)"
  cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --quiet
fi

say "building the fuzz targets"
nice cargo fuzz build --fuzz-dir "$FUZZ" --sanitizer none -O 2>&1 | grep -v '^\s*Compiling' >&2 || true
BIN=$FUZZ/target/x86_64-unknown-linux-gnu/release
for t in $TARGETS; do
  [ -x "$BIN/$t" ] || { echo "fuzz: target $t did not build" >&2; exit 1; }
done

# Seeds (regenerated each run, so they follow the fixtures): the goldens of both formats and both
# checksums (XXH3, xxHash64), plain, signed and encrypted; the parity fixtures packed by the CLI (the
# small ones, to keep executions fast); their bodies; and texts from tests/data with a first byte that picks the model.
SKEDGE=${SKEDGE:-target/release/skedge}
if [ ! -x "$SKEDGE" ]; then
  cargo build --release --quiet --bin skedge
fi
SEEDS=$FUZZ/corpus/seeds
rm -rf "$SEEDS"
mkdir -p "$SEEDS"/{artifact,artifact_body,predict}
cp -r "$FUZZ/seeds/snapshot" "$SEEDS/snapshot"
cp -r "$FUZZ/seeds/pointer" "$SEEDS/pointer"
cp tests/golden/*.skedge "$SEEDS/artifact/"
for f in tests/golden/v2/*.skedge; do cp "$f" "$SEEDS/artifact/v2-$(basename "$f")"; done
for f in tests/golden/xxh64/*.skedge; do cp "$f" "$SEEDS/artifact/xxh64-$(basename "$f")"; done
for f in tests/fixtures/cases/*.interchange.json; do
  [ -e "$f" ] || continue
  out=$SEEDS/artifact/$(basename "$f" .interchange.json).skedge
  "$SKEDGE" pack "$f" -o "$out" 2>/dev/null || { echo "fuzz: cannot pack $f" >&2; exit 1; }
  [ "$(stat -c%s "$out")" -le 40000 ] || rm "$out"
done
for f in "$SEEDS"/artifact/*.skedge; do
  case $f in *signed* | *encrypted*) continue ;; esac
  tail -c +25 "$f" > "$SEEDS/artifact_body/$(basename "$f" .skedge).body"
done
python3 - "$SEEDS/predict" <<'EOF'
import glob, sys
out, i = sys.argv[1], 0
texts = []
for f in sorted(glob.glob("tests/data/*.tsv")):
    texts += [l.split("\t")[0] for l in open(f, encoding="utf-8").read().splitlines()[1:31]]
texts += ["", "ΣΊΣΥΦΟΣ ς", "İstanbul ǅ ﬁ", "e\u0301te\u0301", " \t\n ", "a" * 300, "😀👍🏽", "\u00ad\u200b\ufeff"]
for i, t in enumerate(texts):
    open(f"{out}/{i:04d}", "wb").write(bytes([i % 256]) + t.encode())
EOF

total=0
for t in $TARGETS; do
  corpus=$FUZZ/corpus/$t
  regressions=$FUZZ/regressions/$t
  mkdir -p "$corpus" "$FUZZ/artifacts/$t"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    say "$t: replaying $(ls "$regressions" | wc -l) regression inputs"
    "$BIN/$t" -runs=0 "$regressions"/* >/dev/null 2>&1 || {
      "$BIN/$t" -runs=0 "$regressions"/* 2>&1 | tail -20 >&2
      echo "fuzz: $t: a regression input fails again" >&2
      exit 1
    }
  fi
  say "$t: fuzzing for ${SECONDS_PER_TARGET}s"
  log=$FUZZ/artifacts/$t/last-run.log
  # New inputs go to the first directory (kept between runs); seeds and regressions are read.
  dirs=("$corpus" "$SEEDS/$t")
  [ -d "$regressions" ] && dirs+=("$regressions")
  if ! nice "$BIN/$t" "${dirs[@]}" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$FUZZ/artifacts/$t/" >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "fuzz: $t found a crash: see $FUZZ/artifacts/$t/ (add it to $regressions and a test)" >&2
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz: $t: $runs executions, $cov, no crash"
  total=$((total + runs))
done
echo "fuzz: $total executions in total, no crash"
