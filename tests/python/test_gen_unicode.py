"""scripts/gen_unicode.py's rules for a later Unicode version: what the Rust reader can express is
emitted, anything else stops the generator with a message naming the code point."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import gen_unicode as g  # noqa: E402

# A small "version before": word chars, white space, lower() and stripping of a few code points.
BASE = argparse.Namespace(
    word=[0x41, 0x61, 0x3A3], space=[0x20], lower={0x41: "a", 0x3A3: "\u03c3"},
    sigma_cased=[0x41, 0x61, 0x3A3], case_ignorable=[0x27, 0x1171E], strip={0xE9: "e"},
)


def later(**changed):
    m = {"version": "99.0.0", "python": "3.99", "word": BASE.word, "space": BASE.space,
         "lower": {str(c): x for c, x in BASE.lower.items()}, "sigma_cased": BASE.sigma_cased,
         "case_ignorable": BASE.case_ignorable, "strip": {str(c): x for c, x in BASE.strip.items()}}
    m.update(changed)
    return m


def test_new_characters_join_the_tables():
    c = g.changes(BASE, later(word=BASE.word + [0x10D50, 0x10D70], lower={"65": "a", "931": "\u03c3",
                                                                        "68944": "\U00010d70"},
                              strip={"233": "e", "68944": ""}))
    assert c["word"] == [(0x10D50, 0x10D50), (0x10D70, 0x10D70)]
    assert c["lower"] == [(0x10D50, "\U00010d70")]
    assert c["strip"] == [(0x10D50, "")]
    assert c["case_ignorable_left"] == [] and c["sigma_cased_left"] == []


def test_a_probe_may_leave_a_final_sigma_set():
    c = g.changes(BASE, later(case_ignorable=[0x27]))
    assert c["case_ignorable_left"] == [(0x1171E, 0x1171E)]


@pytest.mark.parametrize("changed, message", [
    ({"case_ignorable": [0x1171E]}, "U+0027 leaves case-ignorable: add it to SIGMA_PROBES"),
    ({"word": [0x41, 0x3A3]}, "\\w no longer holds U+0061"),
    ({"space": [0x20, 0x85]}, "str.isspace() changed"),
    ({"lower": {"65": "b", "931": "\u03c3"}}, "str.lower() of U+0041 changed"),
    ({"lower": {"931": "\u03c3"}}, "str.lower() of U+0041 changed"),
    ({"strip": {"233": "\u00e9"}}, "strip_accents of U+00E9 changed"),
])
def test_any_other_change_stops_the_generator(changed, message):
    with pytest.raises(SystemExit) as e:
        g.changes(BASE, later(**changed))
    assert message in str(e.value) and "Unicode 99.0.0" in str(e.value)


def test_pyodide_runs_a_script_as_python_would(tmp_path):
    """scripts/pyodide.mjs: argv, stdout bytes and the exit status pass through; the version is the
    lock file's (gen_unicode.py picks Pyodide for that Python when no native one is found)."""
    if g.find_python("3.14") is None or g.find_native_python("3.14") is not None:
        pytest.skip("Pyodide's 3.14 is not the Python gen_unicode.py would use here")
    script = tmp_path / "s.py"
    script.write_text("import json, sys, unicodedata\n"
                      "print(json.dumps([sys.argv[1:], unicodedata.unidata_version, 'é'.upper()]))\n"
                      "sys.exit(3)\n", encoding="utf-8")
    r = subprocess.run([*g.find_python("3.14"), str(script), "a", "ß"], capture_output=True, cwd=ROOT)
    assert r.returncode == 3, r.stderr
    assert json.loads(r.stdout) == [["a", "ß"], "16.0.0", "É"]
