"""scripts/gen_unicode.py's rules for a later Unicode version: what the Rust reader can express is
emitted, anything else stops the generator with a message naming the code point."""

import argparse
import json
import shutil
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
    if not (g.PYODIDE / "pyodide-lock.json").exists() or shutil.which("node") is None:
        pytest.skip("no Pyodide in node_modules/ (npm ci)")
    script = tmp_path / "s.py"
    script.write_text("import json, sys, unicodedata\n"
                      "print(json.dumps([sys.argv[1:], unicodedata.unidata_version, 'é'.upper()]))\n"
                      "sys.exit(3)\n", encoding="utf-8")
    pyodide = [shutil.which("node"), str(ROOT / "scripts" / "pyodide.mjs")]
    r = subprocess.run([*pyodide, str(script), "a", "ß"], capture_output=True, cwd=ROOT)
    assert r.returncode == 3, r.stderr
    assert json.loads(r.stdout) == [["a", "ß"], "16.0.0", "É"]


def test_native_pythons_are_found_before_pyodide(tmp_path, monkeypatch):
    """`$SKEDGE_PYTHON_3_X` first; Debian's build once scripts/debian_python.sh has unpacked it
    (its `.installed` list written last), never a half-unpacked one; else nothing native."""
    monkeypatch.setattr(g, "ROOT", tmp_path)
    monkeypatch.setattr(g.Path, "home", lambda: tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("SKEDGE_PYTHON_3_99", raising=False)
    assert g.find_native_python("3.99") is None
    debian = tmp_path / ".work" / "py" / "debian-3.99"
    (debian / "root" / "usr" / "bin").mkdir(parents=True)
    assert g.find_native_python("3.99") is None
    (debian / ".installed").write_text("python3.99-minimal\t3.99.0-1\n", encoding="utf-8")
    assert g.find_native_python("3.99") == str(debian / "root" / "usr" / "bin" / "python3.99")
    monkeypatch.setenv("SKEDGE_PYTHON_3_99", "/opt/python3.99")
    assert g.find_native_python("3.99") == "/opt/python3.99"
