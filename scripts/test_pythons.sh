#!/usr/bin/env bash
# Exports from the later Pythons skedge reads (3.12: Unicode 15.0, 3.13: 15.1, 3.14: 16.0, 3.15:
# 17.0; the machine's 3.11 is Unicode 14.0 and runs every other test). Each is the native one
# scripts/gen_unicode.py finds ($SKEDGE_PYTHON_3_12, pyenv's newest 3.12.x or `python3.12` on PATH,
# and the like), else Debian's (scripts/debian_python.sh: 3.14 and 3.15 here). First
# `gen_unicode.py --check` runs with all of them: the committed tables and digests (3.14's measured
# under Pyodide when no native 3.14 is found) must be what these interpreters give. Then for each,
# a virtualenv in .work/py/3.12 with the pinned scikit-learn and the Python package's wheel; a
# model trained there on texts of the characters the later versions assign
# (tests/pythons/train_later_unicode.py: a word TF-IDF with strip_accents 'unicode' and a char_wb
# one), exported by scripts/export.py with its parity gate (the npm package
# in Node when pkg/ is built, else the CLI), then served there by the Python package's runtime
# (tests/pythons/serve_later_unicode.py): each bit-identical to scikit-learn in that Python or the
# case fails. Last, the wide parity matrix's analyzer cases (tests/python/test_parity_wide.py -m
# analyzer: each analyzer kind × lowercase × strip_accents, 18 pipelines, on texts of every plane,
# the code points assigned after Unicode 14.0 among them) in that Python, its gate on the CLI; the
# matrix's other cases vary what does not depend on the Unicode version and run in the pytest step
# (all 183 in each later Python took 20 minutes of CI on a slow machine, 2026-12-07). A Python
# found nowhere is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# The pins of scripts/requirements.txt that a model and the analyzer cases need (not pandas: only
# the matrix's ColumnTransformer cases use it), for Python $1: numpy 2.4 and scipy 1.17 have no
# wheels for 3.15, so there the first releases that do.
PINS=$(grep -E '^(scikit-learn|numpy|scipy|joblib|threadpoolctl|pytest)==' scripts/requirements.txt | paste -sd ' ')
deps() {
  case $1 in
    3.15) sed -e 's/numpy==[^ ]*/numpy==2.5.5/' -e 's/scipy==[^ ]*/scipy==1.18.1/' <<< "$PINS" ;;
    *) echo "$PINS" ;;
  esac
}

cargo build --quiet --release --bin skedge
T=$(mktemp -d "${TMPDIR:-/tmp}/skedge-pythons.XXXXXX")
trap 'rm -rf "$T"' EXIT
# The Python package's wheel (abi3: one for every CPython from 3.10 on), built as
# tests/python/test_package.py builds it, is installed into each virtualenv: its runtime serves
# the model exported there (tests/pythons/serve_later_unicode.py).
VIRTUAL_ENV= CARGO_TARGET_DIR=$ROOT/target/python .venv/bin/maturin build --release --quiet -o "$T/wheel" >&2
wheel=$(echo "$T"/wheel/skedge-*.whl)
passed=0; failed=0
case_ok() { echo "ok $1"; passed=$((passed + 1)); }
case_failed() { echo "FAILED $1"; failed=$((failed + 1)); }
# Installs wheels for Python $1 into directory $2 with this checkout's pip, for a Python without
# pip of its own (Debian's: its pip would also need the ssl module it lacks). The wheels are chosen
# by that Python's tags; pip would still hold their Requires-Python against its own 3.11.
pip_for() {
  local minor=$1 site=$2; shift 2
  .venv/bin/pip install --disable-pip-version-check -q --target "$site" --upgrade --python-version "$minor" \
    --ignore-requires-python \
    --implementation cp --abi "cp${minor/./}" --only-binary=:all: --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 "$@"
}
# The site-packages of the virtualenv $venv.
site() { "$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
# The later Pythons of scripts/gen_unicode.py, found as it finds native ones: "MINOR PATH" lines
# (no PATH: not found). Its search is stdlib only.
later=$(.venv/bin/python -c 'import sys; sys.path.insert(0, "scripts"); import gen_unicode as g
for m in g.LATER_PYTHONS: print(m, g.find_native_python(m) or "")')
found=()  # "MINOR PATH FROM" of each Python found
checking=()  # SKEDGE_PYTHON_3_X=PATH of each
while read -r minor python <&3; do
  if [ -z "$python" ] && ! python=$(scripts/debian_python.sh "$minor" 2>"$T/debian.log"); then
    echo "test_pythons: no Python $minor here, natively or from Debian: skipped" >&2
    tail -3 "$T/debian.log" >&2
    continue
  fi
  from=native
  if [[ $python == "$ROOT/.work/py/debian-$minor/"* ]]; then
    from="Debian sid's $(grep "^python$minor-minimal" ".work/py/debian-$minor/.installed" | tr '\t' ' ')"
  fi
  found+=("$minor $python $from")
  checking+=("SKEDGE_PYTHON_${minor/./_}=$python")
done 3<<< "$later"
if env "${checking[@]}" .venv/bin/python scripts/gen_unicode.py --check > "$T/gen.log" 2>&1; then
  case_ok "gen_unicode.py --check with ${checking[*]}: the committed tables and digests are theirs"
else
  case_failed "gen_unicode.py --check with ${checking[*]}"; tail -5 "$T/gen.log"
fi
# One Python: its virtualenv, its exports, its analyzer cases; prints "ok ..." and "FAILED ..." lines.
one_python() {
  local minor=$1 python=$2 from=$3 venv unicode strip info what name model
  local -a DEPS
  read -ra DEPS <<< "$(deps "$minor")"
  venv=$ROOT/.work/py/$minor
  if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$python ${DEPS[*]}" ]; then
    say "a virtualenv for Python $minor ($python) in .work/py/$minor: ${DEPS[*]}"
    rm -rf "$venv"
    if "$python" -c 'import ensurepip' 2>/dev/null; then
      "$python" -m venv "$venv"
      "$venv/bin/pip" install --disable-pip-version-check -q "${DEPS[@]}"
    else
      "$python" -m venv --without-pip "$venv"
      pip_for "$minor" "$(site)" "${DEPS[@]}"
    fi
    echo "$python ${DEPS[*]}" > "$venv/.installed"
  fi
  if [ -x "$venv/bin/pip" ]; then
    "$venv/bin/pip" install --disable-pip-version-check -q --no-deps --force-reinstall "$wheel"
  else
    pip_for "$minor" "$(site)" --no-deps "$wheel"
  fi
  unicode=$("$venv/bin/python" -c 'import unicodedata; print(unicodedata.unidata_version)')
  # strip_accents 'unicode' (NFKD, the most Unicode-dependent step) and char_wb: the other
  # strip_accents values are among the wide matrix's analyzer cases below
  for strip in unicode char; do
    info=
    case $strip in char) what="char_wb analyzer" ;; *) what="strip_accents $strip" ;; esac
    name="Python $minor (Unicode $unicode, $from), $what"
    model=$T/$minor-$strip.joblib
    if "$venv/bin/python" tests/pythons/train_later_unicode.py "$model" "$strip" &&
       PYTHONPATH=scripts "$venv/bin/python" scripts/export.py --joblib "$model" --trust-pickle \
         --validation "$model.csv" --out "$T/$minor-$strip.skedge" > "$T/$minor-export.log" 2>&1 &&
       info=$(target/release/skedge inspect "$T/$minor-$strip.skedge") &&
       [[ $info == *"\"unicode_version\": \"$unicode\""* ]] &&
       "$venv/bin/python" tests/pythons/serve_later_unicode.py "$model" "$T/$minor-$strip.skedge" "$model.csv" \
         > "$T/$minor-serve.log" 2>&1; then
      case_ok "$name: $(grep -o 'parity gate passed.*' "$T/$minor-export.log"); $(cat "$T/$minor-serve.log")"
    else
      case_failed "$name"; tail -20 "$T/$minor-export.log"; tail -5 "$T/$minor-serve.log" 2>/dev/null
      echo "skedge inspect: $(grep unicode_version <<< "${info:-}" || echo "no unicode_version")"
    fi
  done
  name="Python $minor (Unicode $unicode, $from), the wide parity matrix's analyzer cases"
  if PYTHONPATH=scripts "$venv/bin/python" -m pytest -q -p no:cacheprovider -m analyzer \
       tests/python/test_parity_wide.py > "$T/$minor-wide.log" 2>&1; then
    case_ok "$name: $(tail -1 "$T/$minor-wide.log")"
  else
    case_failed "$name"; grep -E '^(FAILED|ERROR|E  )' "$T/$minor-wide.log" | head -20; tail -1 "$T/$minor-wide.log"
  fi
}
# Two Pythons at a time (their outputs shown in order): at the end of scripts/test.sh this runs
# alone, and one Python at a time would leave a core idle.
jobs_running=()  # "PID MINOR", oldest first
reap_oldest() {
  local pid minor
  read -r pid minor <<< "${jobs_running[0]}"
  wait "$pid" || echo "FAILED Python $minor: stopped with exit code $?" >> "$T/$minor.out"
  jobs_running=("${jobs_running[@]:1}")
}
for entry in "${found[@]}"; do
  read -r minor python from <<< "$entry"
  (one_python "$minor" "$python" "$from") > "$T/$minor.out" 2>&1 &
  jobs_running+=("$! $minor")
  [ ${#jobs_running[@]} -lt 2 ] || reap_oldest
done
while [ ${#jobs_running[@]} -gt 0 ]; do reap_oldest; done
for entry in "${found[@]}"; do
  read -r minor _ <<< "$entry"
  cat "$T/$minor.out"
  passed=$((passed + $(grep -c '^ok ' "$T/$minor.out" || true)))
  failed=$((failed + $(grep -c '^FAILED ' "$T/$minor.out" || true)))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
