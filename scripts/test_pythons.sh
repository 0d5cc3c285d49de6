#!/usr/bin/env bash
# Exports from the later Pythons skedge reads (3.12: Unicode 15.0, 3.13: 15.1, 3.14: 16.0; the
# machine's 3.11 is Unicode 14.0 and runs every other test): for each native one scripts/gen_unicode.py
# finds ($SKEDGE_PYTHON_3_12, pyenv's newest 3.12.x or `python3.12` on PATH, and the like), a
# virtualenv in .work/py/3.12 with the pinned scikit-learn, a model trained there on texts of the
# characters that version assigns (tests/pythons/train_later_unicode.py), exported by
# scripts/export.py with its parity gate (the npm package in Node when pkg/ is built, else the CLI),
# then served there by the Python package's runtime (the wheel installed into the virtualenv,
# tests/pythons/serve_later_unicode.py): with strip_accents None, 'unicode' and 'ascii', each
# bit-identical to scikit-learn in that Python or the case fails. A Python not installed natively
# is reported and skipped (gen_unicode.py may still measure its tables under Pyodide, which has no
# scikit-learn).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# The pins of scripts/requirements.txt that a model needs.
DEPS=(scikit-learn==1.9.1 numpy==2.4.6 scipy==1.17.1 joblib==1.6.0)

cargo build --quiet --release --bin skedge
T=$(mktemp -d "${TMPDIR:-/tmp}/skedge-pythons.XXXXXX")
trap 'rm -rf "$T"' EXIT
# The Python package's wheel (abi3: one for every CPython from 3.10 on), built as
# tests/python/test_package.py builds it, is installed into each virtualenv: its runtime serves
# the model exported there (tests/pythons/serve_later_unicode.py).
VIRTUAL_ENV= CARGO_TARGET_DIR=$ROOT/target/python .venv/bin/maturin build --release --quiet -o "$T/wheel" >&2
wheel=$(echo "$T"/wheel/skedge-*.whl)
passed=0; failed=0
# The later Pythons of scripts/gen_unicode.py, found as it finds native ones: "MINOR PATH" lines
# (no PATH: not found). Its search is stdlib only: any Python 3 runs it.
host=.venv/bin/python
[ -x "$host" ] || host=python3
later=$("$host" -c 'import sys; sys.path.insert(0, "scripts"); import gen_unicode as g
for m in g.LATER_PYTHONS: print(m, g.find_native_python(m) or "")')
while read -r minor python <&3; do
  if [ -z "$python" ]; then
    echo "test_pythons: no native Python $minor here: skipped" >&2
    continue
  fi
  venv=$ROOT/.work/py/$minor
  if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$python ${DEPS[*]}" ]; then
    say "a virtualenv for Python $minor ($python) in .work/py/$minor: ${DEPS[*]}"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --disable-pip-version-check -q "${DEPS[@]}"
    echo "$python ${DEPS[*]}" > "$venv/.installed"
  fi
  "$venv/bin/pip" install --disable-pip-version-check -q --no-deps --force-reinstall "$wheel"
  unicode=$("$venv/bin/python" -c 'import unicodedata; print(unicodedata.unidata_version)')
  for strip in none unicode ascii; do
    info=
    name="Python $minor (Unicode $unicode), strip_accents $strip"
    model=$T/$minor-$strip.joblib
    if "$venv/bin/python" tests/pythons/train_later_unicode.py "$model" "$strip" &&
       PYTHONPATH=scripts "$venv/bin/python" scripts/export.py --joblib "$model" --trust-pickle \
         --validation "$model.csv" --out "$T/$minor-$strip.skedge" > "$T/export.log" 2>&1 &&
       info=$(target/release/skedge inspect "$T/$minor-$strip.skedge") &&
       [[ $info == *"\"unicode_version\": \"$unicode\""* ]] &&
       "$venv/bin/python" tests/pythons/serve_later_unicode.py "$model" "$T/$minor-$strip.skedge" "$model.csv" \
         > "$T/serve.log" 2>&1; then
      echo "ok $name: $(grep -o 'parity gate passed.*' "$T/export.log"); $(cat "$T/serve.log")"
      passed=$((passed + 1))
    else
      echo "FAILED $name"; tail -20 "$T/export.log"; tail -5 "$T/serve.log" 2>/dev/null
      echo "skedge inspect: $(grep unicode_version <<< "${info:-}" || echo "no unicode_version")"
      failed=$((failed + 1))
    fi
  done
done 3<<< "$later"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
