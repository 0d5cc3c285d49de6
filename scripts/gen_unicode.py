#!/usr/bin/env python3
"""Generate skedge's Unicode tables and their Python-derived test digests.

skedge must reproduce scikit-learn's text preprocessing bit for bit, so every
Unicode property it uses is taken from the running CPython itself (its
``unicodedata`` module and ``str`` methods), never from Rust's own tables:

* ``src/text/unicode_tables.rs``: compact static tables used by
  ``src/text/unicode.rs`` (word chars, whitespace, lowercase mapping, the
  Final_Sigma context sets, and per-character accent stripping).
* ``tests/fixtures/unicode/digests.json`` (and ``digests-VERSION.json`` of each
  later version): SHA-256 digests of Python's *own*
  behaviour (``re`` ``\\w``, ``str.isspace``, ``str.lower`` and scikit-learn's
  ``strip_accents_unicode`` / ``strip_accents_ascii``) over every code point,
  plus explicit multi-character cases. These are computed from Python's
  functions, not from the tables, so ``tests/unicode.rs`` checks the tables
  and the Rust code that reads them end to end.

Later Unicode versions: scikit-learn follows the Unicode of the Python it runs in, and an
artifact records its exporter's. The running Python (3.11, Unicode 14.0) gives the base tables;
each Python of ``LATER_PYTHONS`` (3.12: 15.0, 3.13: 15.1, 3.14: 16.0, 3.15: 17.0;
``$SKEDGE_PYTHON_3_12``, pyenv's, on PATH, Debian's unpacked by scripts/debian_python.sh, else
CPython under Pyodide from node_modules/, see ``find_python``) is run with
``--props-out`` and gives what its version adds to the one before: the characters it assigns (their
classes, ``lower()`` and stripping). Anything else fails the script (white space, an old
character's ``lower()`` or stripping, a character leaving ``\\w``), except a character leaving a
Final_Sigma set, which must be one of ``SIGMA_PROBES`` so the digests test its contexts. Each
also writes its own digests, ``tests/fixtures/unicode/digests-VERSION.json``. ``--check`` without
one of those Pythons checks the rest and says what it could not measure.

Usage (from the repository root)::

    .venv/bin/python scripts/gen_unicode.py           # (re)write both files
    .venv/bin/python scripts/gen_unicode.py --check   # exit 1 if they are stale
    .venv/bin/python scripts/gen_unicode.py --sizes   # also print table sizes
    .venv/bin/python scripts/gen_unicode.py --explain FILE
        # name the code points behind a digest mismatch; tests/unicode.rs
        # writes FILE and prints this command when it fails

Output is deterministic: running it twice gives identical bytes, and the Rust
file is already in `cargo fmt` layout (for the max_width in rustfmt.toml). The
Unicode version of the Python used is recorded as ``UNICODE_VERSION``.

Final_Sigma: CPython lowers U+03A3 to final sigma U+03C2 when it follows a
cased char and does not precede one, skipping case-ignorable chars both ways
(``handle_capital_sigma`` in unicodeobject.c). Python exposes neither property,
so both sets are measured: for each char X, ``c1 = (X + "\u03a3").lower()``
ends with U+03C2 and ``c2 = ("A" + X + "\u03a3").lower()`` does. CPython
tests case-ignorable first, so c1 = cased and not case-ignorable, c2 =
case-ignorable or cased; case-ignorable is therefore ``c2 and not c1``, and
"cased" as the rule sees it is c1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import unicodedata
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES_PATH = ROOT / "src" / "text" / "unicode_tables.rs"
DIGESTS_PATH = ROOT / "tests" / "fixtures" / "unicode" / "digests.json"
COMMAND = ".venv/bin/python scripts/gen_unicode.py"
# Later Pythons whose Unicode versions skedge also reads, as changes to the running Python's
# tables (each found by `find_python`).
LATER_PYTHONS = ("3.12", "3.13", "3.14", "3.15")
# Characters whose Final_Sigma class changes between the versions skedge reads, so `lower_cases`
# puts each in the contexts that rule reads: Unicode 16.0 made U+1171E AHOM CONSONANT SIGN MEDIAL
# RA a spacing mark, no longer case-ignorable; 17.0 made U+0295 LATIN LETTER PHARYNGEAL VOICED
# FRICATIVE an uncased letter (Lo), no longer cased.
SIGMA_PROBES = "\U0001171e\u0295"
PYODIDE = ROOT / "node_modules" / "pyodide"
LATER_MARK = "// ---- Later Unicode versions"

MAX_CP = 0x10FFFF
SURROGATES = range(0xD800, 0xE000)
BLOCK_SIZE = 4096  # code points per sub-digest block
BLOCK_DIGEST_HEX = 16  # sub-digests are truncated to this many hex digits


def rustfmt_max_width() -> int:
    """`max_width` from the repository's rustfmt.toml (rustfmt's default is 100),
    so the generated file is already formatted and `cargo fmt` leaves it alone."""
    path = ROOT / "rustfmt.toml"
    if path.exists():
        m = re.search(r"^\s*max_width\s*=\s*(\d+)", path.read_text(encoding="utf-8"), re.M)
        if m:
            return int(m.group(1))
    return 100


MAX_WIDTH = rustfmt_max_width()
ARRAY_WIDTH = MAX_WIDTH * 60 // 100  # rustfmt's `array_width` heuristic
STRIP_SHIFT = 5  # strip trie: 2**STRIP_SHIFT code points per leaf block

# Hangul syllables decompose algorithmically (Unicode ch. 3.12); the tables
# leave them out and unicode.rs computes them.
HANGUL_S_BASE = 0xAC00
HANGUL_S_COUNT = 11172
HANGUL_L_BASE = 0x1100
HANGUL_V_BASE = 0x1161
HANGUL_T_BASE = 0x11A7
HANGUL_T_COUNT = 28
HANGUL_N_COUNT = 588

CAPITAL_SIGMA = "\u03a3"
FINAL_SIGMA = "\u03c2"


# --- scikit-learn's functions, verbatim (sklearn/feature_extraction/text.py) --
def strip_accents_unicode(s):
    try:
        # If `s` is ASCII-compatible, then it does not contain any accented
        # characters and we can avoid an expensive list comprehension
        s.encode("ASCII", errors="strict")
        return s
    except UnicodeEncodeError:
        normalized = unicodedata.normalize("NFKD", s)
        return "".join([c for c in normalized if not unicodedata.combining(c)])


def strip_accents_ascii(s):
    nkfd_form = unicodedata.normalize("NFKD", s)
    return nkfd_form.encode("ASCII", "ignore").decode("ASCII")


# ---------------------------------------------------------------------------
def fail(msg: str) -> None:
    sys.exit(f"gen_unicode.py: {msg}")


def code_points():
    """Every code point except surrogates (Rust `char`s), in order."""
    return [c for c in range(MAX_CP + 1) if c not in SURROGATES]


def to_ranges(cps):
    """Sorted code points -> inclusive (lo, hi) ranges."""
    out = []
    for c in cps:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return [tuple(r) for r in out]


WORD_RE = re.compile(r"\w")
SPACE_RE = re.compile(r"\s")


def py_is_word(ch: str) -> bool:
    return WORD_RE.fullmatch(ch) is not None


class Props:
    """All per-code-point facts, taken from Python."""

    def __init__(self):
        self.cps = code_points()
        self.word = []
        self.space = []
        self.lower = {}  # cp -> lower string, where it differs from chr(cp)
        self.sigma_cased = []
        self.case_ignorable = []
        self.strip = {}  # cp -> strip_accents_unicode(chr(cp)), where it differs
        for c in self.cps:
            ch = chr(c)
            word = ch.isalnum() or ch == "_"
            if word != py_is_word(ch):
                fail(f"re \\w and isalnum()/_ disagree on U+{c:04X}")
            if word:
                self.word.append(c)
            space = ch.isspace()
            if space != (SPACE_RE.fullmatch(ch) is not None):
                fail(f"re \\s and str.isspace() disagree on U+{c:04X}")
            if space != (len(("a" + ch + "b").split()) == 2):
                fail(f"str.split() and str.isspace() disagree on U+{c:04X}")
            if space:
                self.space.append(c)
            low = ch.lower()
            if low != ch:
                self.lower[c] = low
            # Python's Final_Sigma context sets, measured (see module doc).
            c1 = (ch + CAPITAL_SIGMA).lower().endswith(FINAL_SIGMA)
            c2 = ("A" + ch + CAPITAL_SIGMA).lower().endswith(FINAL_SIGMA)
            if c1 and not c2:
                fail(f"U+{c:04X}: sigma probe inconsistent")
            if c1:
                self.sigma_cased.append(c)
            if c2 and not c1:
                self.case_ignorable.append(c)
            stripped = strip_accents_unicode(ch)
            if strip_accents_ascii(ch) != "".join(x for x in stripped if x < "\x80"):
                fail(f"U+{c:04X}: strip_accents_ascii != ASCII part of strip_accents_unicode")
            if HANGUL_S_BASE <= c < HANGUL_S_BASE + HANGUL_S_COUNT:
                if stripped != hangul(c):
                    fail(f"U+{c:04X}: Hangul decomposition is not algorithmic")
            elif stripped != ch:
                self.strip[c] = stripped
        self.check_sigma_derivation()

    def check_sigma_derivation(self):
        cased = set(self.sigma_cased)
        ign = set(self.case_ignorable)
        known_cased = "AzΣσΩǅªⅠⒶ\U00010400"
        known_ignorable = "'.:^`\u00ad\u00b7\u0301\u0345\u02b0\u200d\u2019\ufe13"
        known_neither = "1 _-\u05d0\u4e00"
        for ch in known_cased:
            if ord(ch) not in cased or ord(ch) in ign:
                fail(f"sigma derivation: U+{ord(ch):04X} should be cased")
        for ch in known_ignorable:
            if ord(ch) not in ign:
                fail(f"sigma derivation: U+{ord(ch):04X} should be case-ignorable")
        for ch in known_neither:
            if ord(ch) in cased or ord(ch) in ign:
                fail(f"sigma derivation: U+{ord(ch):04X} should be neither")


def hangul(c: int) -> str:
    s = c - HANGUL_S_BASE
    out = chr(HANGUL_L_BASE + s // HANGUL_N_COUNT)
    out += chr(HANGUL_V_BASE + (s % HANGUL_N_COUNT) // HANGUL_T_COUNT)
    if s % HANGUL_T_COUNT:
        out += chr(HANGUL_T_BASE + s % HANGUL_T_COUNT)
    return out


# --- Rust emission ----------------------------------------------------------
def rust_str(s: str) -> str:
    out = []
    for ch in s:
        if " " <= ch <= "~" and ch not in '"\\':
            out.append(ch)
        else:
            out.append("\\u{%x}" % ord(ch))
    return "".join(out)


def fill_lines(items, indent="    "):
    """Lay out short items the way rustfmt's "mixed" array layout does
    (lines shorter than max_width), so `cargo fmt` leaves the file alone."""
    width = MAX_WIDTH - 1
    lines, cur = [], indent
    for it in items:
        piece = it + ","
        if cur == indent:
            cur += piece
        elif len(cur) + 1 + len(piece) <= width:
            cur += " " + piece
        else:
            lines.append(cur)
            cur = indent + piece
    if cur != indent:
        lines.append(cur)
    return lines


def emit_tuples(out, head, items):
    """`head` + an array of tuple literals, laid out as rustfmt does: on one
    line if short (rustfmt's `array_width`), on the next line if it fits there,
    else one item per line."""
    inline = "&[" + ", ".join(items) + "]"
    if len(inline) - 1 <= ARRAY_WIDTH and len(head) + len(inline) + 1 <= MAX_WIDTH:
        out.append(head + inline + ";")
    elif len(inline) - 1 <= ARRAY_WIDTH and 4 + len(inline) + 1 <= MAX_WIDTH:
        out.append(head.rstrip())  # "... ="
        out.append("    " + inline + ";")
    else:
        out.append(head + "&[")
        out.extend(f"    {it}," for it in items)
        out.append("];")
    out.append("")


def emit_ranges(out, name, doc, ranges):
    out.append(f"/// {doc}")
    head = f"pub(crate) static {name}: &[(u32, u32)] = "
    emit_tuples(out, head, [f"(0x{lo:04X}, 0x{hi:04X})" for lo, hi in ranges])


def emit_columns(out, name, doc, ranges):
    """A base range table as two columns, `NAME_FIRST` and `NAME_LEN` (`last - first`): the
    starts and the short lengths each compress better apart than as `(first, last)` pairs."""
    if any(hi - lo >= 1 << 16 for lo, hi in ranges):
        fail(f"{name}: a range longer than 65,536 code points does not fit u16")
    out.append(f"/// {doc}")
    out.append(f"/// Starts of the ranges, sorted; each runs to `{name}_FIRST[i] + {name}_LEN[i]`.")
    out.append(f"pub(crate) static {name}_FIRST: &[u32] = &[")
    out.extend(fill_lines([f"0x{lo:04X}" for lo, _ in ranges]))
    out.append("];")
    out.append("")
    out.append(f"/// `last - first` of each range of `{name}_FIRST`.")
    out.append(f"pub(crate) static {name}_LEN: &[u16] = &[")
    out.extend(fill_lines([str(hi - lo) for lo, hi in ranges]))
    out.append("];")
    out.append("")


def ascii_mask(cps):
    mask = 0
    for c in cps:
        if c < 128:
            mask |= 1 << c
    digits = f"{mask:032X}"
    return "0x" + "_".join(digits[i : i + 4] for i in range(0, 32, 4))


def lower_runs(lower):
    """1:1 lowercase mappings as runs (first, count, stride, delta)."""
    runs = []
    for c in sorted(lower):
        if len(lower[c]) != 1:
            continue
        delta = ord(lower[c]) - c
        if runs:
            first, count, stride, d = runs[-1]
            if d == delta:
                if count == 1 and c - first in (1, 2):
                    runs[-1] = [first, 2, c - first, d]
                    continue
                if count > 1 and c == first + count * stride:
                    runs[-1][1] += 1
                    continue
        runs.append([c, 1, 1, delta])
    for r in runs:
        if r[1] >= 1 << 16 or r[2] >= 1 << 16:
            fail("lower run does not fit u16")
    # unicode.rs finds the run with the largest `first <= cp`: spans must be disjoint.
    for a, b in zip(runs, runs[1:]):
        if a[0] + (a[1] - 1) * a[2] >= b[0]:
            fail(f"lower runs at U+{a[0]:04X} and U+{b[0]:04X} overlap")
    return [tuple(r) for r in runs]


def strip_trie(strip):
    """strip: cp -> output. Returns (index, blocks, singles, offsets, blob).

    Output ids: 0 = unchanged; 1..=len(singles) = that single char (sorted by
    target code point); above that, id - len(singles) - 1 = k selects the
    string blob[offsets[k]..offsets[k + 1]] (byte offsets; the empty string
    is one of them). A block stores `id + size - low` for its code point
    `low = cp & (size - 1)` (0: unchanged), so code points whose outputs run
    on with them (A-Z in each mathematical alphabet, the fullwidth forms)
    store one value: the blocks compress by about 0.9 KB more."""
    singles = sorted({ord(v) for v in strip.values() if len(v) == 1})
    first_seen = {}
    for c in sorted(strip):
        v = strip[c]
        if len(v) != 1 and v not in first_seen:
            first_seen[v] = c
    multis = sorted(first_seen, key=first_seen.get)
    ids = {chr(t): i + 1 for i, t in enumerate(singles)}
    for i, v in enumerate(multis):
        ids[v] = len(singles) + 1 + i
    size = 1 << STRIP_SHIFT
    nblocks = max(strip) // size + 1
    blocks, block_ids, index = [], {}, []
    for b in range(nblocks):
        key = tuple(ids[strip[c]] + size - (c & (size - 1)) if c in strip else 0
                    for c in range(b * size, (b + 1) * size))
        if key not in block_ids:
            block_ids[key] = len(block_ids)
            blocks.extend(key)
        index.append(block_ids[key])
    offsets = [0]
    blob = ""
    for v in multis:
        blob += v
        offsets.append(len(blob.encode("utf-8")))
    for name, arr in (("index", index), ("blocks", blocks), ("offsets", offsets)):
        if max(arr) >= 1 << 16:
            fail(f"strip trie {name} does not fit u16")
    # Self-check: decode exactly as unicode.rs does.
    raw = blob.encode("utf-8")
    for c in range(len(index) * size):
        stored = blocks[(index[c >> STRIP_SHIFT] << STRIP_SHIFT) | (c & (size - 1))]
        oid = stored + (c & (size - 1)) - size
        if stored == 0:
            got = None
        elif oid <= len(singles):
            got = chr(singles[oid - 1])
        else:
            k = oid - len(singles) - 1
            got = raw[offsets[k] : offsets[k + 1]].decode("utf-8")
        if got != strip.get(c):
            fail(f"strip trie self-check failed at U+{c:04X}")
    if max(strip) >= len(index) * size:
        fail("strip trie does not cover all entries")
    return index, blocks, singles, offsets, blob


def gen_tables(p: Props) -> tuple[str, dict]:
    version = unicodedata.unidata_version
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    runs = lower_runs(p.lower)
    multi = sorted((c, v) for c, v in p.lower.items() if len(v) != 1)
    index, blocks, singles, offsets, blob = strip_trie(p.strip)
    word_r = to_ranges(p.word)
    space_r = to_ranges(p.space)
    cased_r = to_ranges(p.sigma_cased)
    ign_r = to_ranges(p.case_ignorable)

    o = []
    o.append(f"// @generated by scripts/gen_unicode.py from CPython {py} (unicodedata {version}).")
    o.append(f"// DO NOT EDIT. Regenerate with `{COMMAND}`;")
    o.append(f"// `{COMMAND} --check` fails when this file is stale.")
    o.append("")
    o.append("//! Unicode tables measured from CPython, used by `super::unicode`.")
    o.append("//!")
    o.append("//! Ranges are inclusive `(first, last)` code points, sorted and disjoint (the largest")
    o.append("//! as two columns, `NAME_FIRST` and `NAME_LEN = last - first`).")
    o.append("")
    o.append("/// `unicodedata.unidata_version` of the Python these tables came from.")
    o.append(f'pub(crate) const UNICODE_VERSION: &str = "{version}";')
    o.append("")
    o.append("/// `major.minor` of that Python.")
    o.append(f'pub(crate) const PYTHON_VERSION: &str = "{py}";')
    o.append("")
    o.append("/// Bit `c` is set when ASCII char `c` is a word char (`c.isalnum() or c == '_'`).")
    o.append(f"pub(crate) const WORD_ASCII: u128 = {ascii_mask(p.word)};")
    o.append("")
    o.append("/// Bit `c` is set when ASCII char `c` satisfies `str.isspace()`.")
    o.append(f"pub(crate) const SPACE_ASCII: u128 = {ascii_mask(p.space)};")
    o.append("")
    emit_columns(o, "WORD", "Code points where `c.isalnum() or c == '_'` (Python `re` `\\w`).", word_r)
    emit_ranges(o, "SPACE", "Code points where `str.isspace()` (Python `re` `\\s`, `str.split()`).", space_r)
    o.append("/// 1:1 lowercase mappings, as runs `(first, count, stride, delta)`: for")
    o.append("/// `k in 0..count`, `chr(first + k * stride).lower() == chr(first + k * stride + delta)`.")
    o.append("/// Sorted by `first`; runs do not overlap.")
    emit_tuples(
        o,
        "pub(crate) static LOWER_RUNS: &[(u32, u16, u16, i32)] = ",
        [f"(0x{a:04X}, {n}, {st}, {d})" for a, n, st, d in runs],
    )
    o.append("/// Code points whose `lower()` is not a single char, sorted.")
    emit_tuples(
        o,
        "pub(crate) static LOWER_MULTI: &[(u32, &str)] = ",
        [f'(0x{c:04X}, "{rust_str(v)}")' for c, v in multi],
    )
    emit_columns(
        o,
        "SIGMA_CASED",
        "Chars that are cased and not case-ignorable in CPython's Final_Sigma rule:\n"
        '/// `(X + "\\u{3a3}").lower().endswith("\\u{3c2}")`.',
        cased_r,
    )
    emit_columns(
        o,
        "CASE_IGNORABLE",
        "Chars CPython's Final_Sigma rule skips as case-ignorable: `(\"A\" + X +\n"
        '/// "\\u{3a3}").lower().endswith("\\u{3c2}")` but not `(X + "\\u{3a3}")...`.',
        ign_r,
    )
    o.append("/// log2 of the leaf block size of the accent-stripping trie.")
    o.append(f"pub(crate) const STRIP_SHIFT: u32 = {STRIP_SHIFT};")
    o.append("")
    o.append("/// Accent-stripping trie, level 1: leaf block number for `cp >> STRIP_SHIFT`.")
    o.append("/// Code points past the end are unchanged. Hangul syllables are not included.")
    o.append("pub(crate) static STRIP_INDEX: &[u16] = &[")
    o.extend(fill_lines([str(x) for x in index]))
    o.append("];")
    o.append("")
    o.append("/// Accent-stripping trie, level 2: `id + (1 << STRIP_SHIFT) - low` at")
    o.append("/// `(block << STRIP_SHIFT) | low` (`low = cp & mask`) for the output id `id`;")
    o.append("/// 0 means the char is unchanged.")
    o.append("pub(crate) static STRIP_BLOCKS: &[u16] = &[")
    o.extend(fill_lines([str(x) for x in blocks]))
    o.append("];")
    o.append("")
    o.append("/// Output ids `1..=STRIP_SINGLE.len()`: `strip_accents_unicode(chr(cp))` is the")
    o.append("/// single char `STRIP_SINGLE[id - 1]`. Sorted.")
    o.append("pub(crate) static STRIP_SINGLE: &[u32] = &[")
    o.extend(fill_lines([f"0x{x:04X}" for x in singles]))
    o.append("];")
    o.append("")
    o.append("/// Higher output ids: with `k = id - STRIP_SINGLE.len() - 1`, the output is")
    o.append("/// `STRIP_BLOB[STRIP_OFFSETS[k]..STRIP_OFFSETS[k + 1]]` (byte offsets).")
    o.append("pub(crate) static STRIP_OFFSETS: &[u16] = &[")
    o.extend(fill_lines([str(x) for x in offsets]))
    o.append("];")
    o.append("")
    o.append("/// Concatenated outputs of `strip_accents_unicode(chr(cp))` (NFKD, combining")
    o.append("/// marks removed) that are not a single char (the empty string is one of them).")
    o.append('pub(crate) static STRIP_BLOB: &str = "\\')
    line = ""
    for ch in blob:
        piece = rust_str(ch)
        if len(line) + len(piece) > 88:
            o.append(line + "\\")
            line = ""
        line += piece
    o.append(line + '";')
    text = "\n".join(o) + "\n"

    def pack(fmt, rows):
        return b"".join(struct.pack("<" + fmt, *r) for r in rows)

    def columns(ranges):  # emit_columns' two statics
        return pack("I", [(lo,) for lo, _ in ranges]) + pack("H", [(hi - lo,) for lo, hi in ranges])

    # Little-endian images of the statics (as laid out in a wasm data segment),
    # for --sizes only.
    images = {
        "WORD": columns(word_r),
        "SPACE": pack("II", space_r),
        "LOWER_RUNS": pack("IHHi", runs),
        "LOWER_MULTI": pack("III", [(c, 0, 0) for c, _ in multi]) + "".join(v for _, v in multi).encode(),
        "SIGMA_CASED": columns(cased_r),
        "CASE_IGNORABLE": columns(ign_r),
        "STRIP_INDEX": pack("H", [(x,) for x in index]),
        "STRIP_BLOCKS": pack("H", [(x,) for x in blocks]),
        "STRIP_SINGLE": pack("I", [(x,) for x in singles]),
        "STRIP_OFFSETS": pack("H", [(x,) for x in offsets]),
        "STRIP_BLOB": blob.encode("utf-8"),
    }
    return text, images


# --- digests of Python's behaviour -----------------------------------------
def per_code_point_digest(cps, f):
    """sha256 over the concatenation of f(cp) (UTF-8) for every cp, plus one
    truncated sha256 per BLOCK_SIZE block of code points."""
    total = hashlib.sha256()
    blocks = []
    nblocks = (MAX_CP + 1) // BLOCK_SIZE
    by_block = [[] for _ in range(nblocks)]
    for c in cps:
        by_block[c // BLOCK_SIZE].append(f(chr(c)))
    for parts in by_block:
        data = "".join(parts).encode("utf-8")
        total.update(data)
        blocks.append(hashlib.sha256(data).hexdigest()[:BLOCK_DIGEST_HEX])
    return {"sha256": total.hexdigest(), "blocks": blocks}


# What each code point contributes to a digest stream (tests/unicode.rs builds
# the same stream from the Rust functions).
PER_CODE_POINT = {
    "is_word": lambda ch: "1" if py_is_word(ch) else "0",
    "is_space": lambda ch: "1" if ch.isspace() else "0",
    "lower": lambda ch: ch.lower() + "\n",
    "strip_accents_unicode": lambda ch: strip_accents_unicode(ch) + "\n",
    "strip_accents_ascii": lambda ch: strip_accents_ascii(ch) + "\n",
}


def explain(path: Path) -> int:
    """Compare per-code-point outputs that tests/unicode.rs wrote on a digest
    mismatch with Python's, and print the code points that differ."""
    data = json.loads(path.read_text(encoding="utf-8"))
    name = data["function"]
    f = PER_CODE_POINT[name]
    bad = [(cp, out) for cp, out in data["outputs"] if f(chr(cp)) != out]
    for cp, out in bad[:30]:
        print(f"{name}: U+{cp:04X} {unicodedata.name(chr(cp), '?')}: Python {f(chr(cp))!r}, Rust {out!r}")
    print(f"{len(bad)} of {len(data['outputs'])} code points differ")
    return 1 if bad else 0


def lower_cases(p: Props):
    """Multi-char strings for str.lower(), mostly Final_Sigma contexts."""
    S = CAPITAL_SIGMA
    befores = [
        "", "A", "a", "\u0391", "\u03b1", "1", " ", ".", "'", "_", "-",
        "A\u0301", "A\u00ad", "A'", "A.", "A:", "A\u0345", "\u0345", "\u0301",
        "A\u02b0", "\u02b0", "\u00aa", "\u01c5", "\u2160", "\u24b6", "1\u0301",
        "A \u0301", "\U00010400", "\u0130", "\u00df", "A\u200d", S, "\u03c3",
    ] + [f for x in SIGMA_PROBES for f in (x, "A" + x)]
    afters = [
        "", "b", "B", "\u0391", "\u03b1", "1", " ", ".", "'", "_",
        "\u0301", "\u0301b", "\u0301 ", "\u00ad\u0391", "\u00ad", "'s", ".b",
        "\u0345", "\u0345A", "\u02b0", "\u02b0 ", "\u00aa", "\u2160", S,
        "\u200d\u200d", "\u200db",
    ] + [f for x in SIGMA_PROBES for f in (x, x + "b", x + "\u03b1")]
    cases = []
    for b in befores:
        for a in afters:
            cases.append(b + S + a)
    cases += [
        "\u039f\u0394\u039f\u03a3",
        "\u039f\u0394\u039f\u03a3 \u039f\u0394\u039f\u03a3.",
        "\u03a3\u0391\u03a3",
        "\u03a3\u03a3\u03a3",
        "\u03a3\u0301\u03a3",
        "\u0391\u03a3\u0391",
        "\u0391\u03a3\u00ad\u0391",
        "A\u0301\u03a3",
        "A\u03a3b",
        "HELLO \u0130STANBUL \u00c4\u00d6\u00dc \u1e9e \u2126 \u212a \u212b",
        "Caf\u00c9 NA\u00cfVE \u0132 \u01c4 \u01c5 \u01c6",
        "\uff21\uff22\uff23 \U00010400\U00010427 \U0001e900",
    ]
    rng = random.Random(20240521)
    pool = sorted(set(S + "AaZ1 ._'\u0301\u00ad\u0345\u0130\u00df\u01c5\u2160\u0391\u03c3"))
    ign = p.case_ignorable
    cased = p.sigma_cased
    for _ in range(400):
        n = rng.randint(1, 8)
        s = []
        for _ in range(n):
            r = rng.random()
            if r < 0.3:
                s.append(S)
            elif r < 0.5:
                s.append(chr(rng.choice(ign)))
            elif r < 0.7:
                s.append(chr(rng.choice(cased)))
            elif r < 0.85:
                s.append(rng.choice(pool))
            else:
                s.append(chr(rng.choice(p.cps)))
        cases.append("".join(s))
    lower_keys = sorted(p.lower)
    for _ in range(100):
        cases.append("".join(chr(rng.choice(lower_keys)) for _ in range(rng.randint(1, 12))))
    return [[s, s.lower()] for s in cases]


def strip_cases(p: Props):
    """Multi-char strings for both strip_accents functions."""
    cases = [
        "",
        "hello world",
        "caf\u00e9",
        "cafe\u0301",
        "na\u00efve r\u00e9sum\u00e9",
        "\u00c5ngstr\u00f6m \u212b",
        "\ufb01anc\u00e9e",
        "\ud55c\uad6d\uc5b4",
        "\ud55c\u0301",
        "\u1100\u1161\u11a8",
        "a\u0301\u0316",
        "a\u0316\u0301",
        "\u1e0b\u0323",
        "q\u0307\u0323",
        "\u2460\u2461\u2473 \u00bd \u00b2",
        "\ufdfa",
        "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48",
        "\U0001d400\U0001d41a\U0001d7ce",
        "\u0344\u0301\u0345",
        "\u1fb7\u1fc2\u1ff4",
        "\u00c0 la carte \u2014 \u201cquotes\u201d \u2026",
        "Stra\u00dfe \u0141\u00f3d\u017a \u00d8re",
        "\u3300\u32ff\u33ff",
        "tab\tnew\nline\u00a0nbsp",
    ]
    rng = random.Random(1729)
    keys = sorted(p.strip)
    for _ in range(300):
        n = rng.randint(1, 10)
        s = []
        for _ in range(n):
            r = rng.random()
            if r < 0.5:
                s.append(chr(rng.choice(keys)))
            elif r < 0.6:
                s.append(chr(HANGUL_S_BASE + rng.randrange(HANGUL_S_COUNT)))
            elif r < 0.85:
                s.append(chr(rng.randrange(0x20, 0x7F)))
            else:
                s.append(chr(rng.choice(p.cps)))
        cases.append("".join(s))
    out = []
    for s in cases:
        u, a = strip_accents_unicode(s), strip_accents_ascii(s)
        # The per-character tables are exact only if stripping commutes with
        # concatenation; confirm it on every case.
        if u != "".join(strip_accents_unicode(c) for c in s):
            fail(f"strip_accents_unicode is not per-character on {s!r}")
        if a != "".join(strip_accents_ascii(c) for c in s):
            fail(f"strip_accents_ascii is not per-character on {s!r}")
        out.append([s, u, a])
    return out


def digests_path(version: str) -> Path:
    """The running Python's digests, or a later version's beside them."""
    if version == unicodedata.unidata_version:
        return DIGESTS_PATH
    return DIGESTS_PATH.with_name(f"digests-{version}.json")


def find_native_python(minor: str) -> str | None:
    """`$SKEDGE_PYTHON_3_12` (and the like), pyenv's newest 3.12.x, `python3.12` on PATH, or the
    Debian build scripts/debian_python.sh unpacked into .work/ (it must have run: nothing here
    downloads)."""
    env = os.environ.get("SKEDGE_PYTHON_" + minor.replace(".", "_"))
    if env:
        return env
    found = sorted(
        Path.home().glob(f".pyenv/versions/{minor}.*/bin/python{minor}"),
        key=lambda q: [int(x) if x.isdigit() else -1 for x in q.parts[-3].split(".")],
    )
    if found:
        return str(found[-1])
    on_path = shutil.which("python" + minor)  # not pyenv's shim, which fails for a version not selected
    if on_path and "/shims/" not in on_path:
        return on_path
    debian = ROOT / ".work" / "py" / f"debian-{minor}"
    if not (debian / ".installed").exists():
        return None
    return str(debian / "root" / "usr" / "bin" / f"python{minor}")


def find_python(minor: str) -> list[str] | None:
    """The command that runs a script under Python `minor`: a native one, else CPython under
    Pyodide (the npm package, pinned in package.json) if it is that version. Pyodide's CPython is
    CPython's own C code and Unicode database compiled to WebAssembly: the same answers, slower."""
    native = find_native_python(minor)
    if native:
        return [native]
    node = shutil.which("node")
    try:
        pyodide = json.loads((PYODIDE / "pyodide-lock.json").read_text(encoding="utf-8"))["info"]["python"]
    except (OSError, ValueError, KeyError):
        return None
    if node and pyodide.startswith(minor + "."):
        return [node, str(ROOT / "scripts" / "pyodide.mjs")]
    return None


def measure(python: list[str]) -> dict:
    """Props and digests of another Python (this script run there with --props-out)."""
    r = subprocess.run([*python, __file__, "--props-out"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(python)} --props-out failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def props_out(p: Props) -> str:
    return json.dumps(
        {
            "version": unicodedata.unidata_version,
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "word": p.word,
            "space": p.space,
            "lower": p.lower,
            "sigma_cased": p.sigma_cased,
            "case_ignorable": p.case_ignorable,
            "strip": p.strip,
            "digests": gen_digests(p),
        }
    )


def measured_props(m: dict) -> argparse.Namespace:
    """Another Python's measured props in the shape of `Props` (the base of the next version's)."""
    return argparse.Namespace(
        word=m["word"], space=m["space"], sigma_cased=m["sigma_cased"], case_ignorable=m["case_ignorable"],
        lower={int(c): x for c, x in m["lower"].items()}, strip={int(c): x for c, x in m["strip"].items()},
    )


def changes(base, later: dict) -> dict:
    """What a later Unicode version changes in the tables of the version before it (`base`: the
    base tables' Props, or the previous later version's). What skedge reads (unicode.rs) and this
    checks: the characters a version assigns join `\\w`, get a `lower()` or a stripping where the
    version before gave the character itself (Unicode 15.0 to 17.0 do only that to `\\w`, `lower()`
    and stripping), and may join or leave the Final_Sigma sets (16.0 moves one character out of
    case-ignorable, 17.0 one out of cased), which the digests test for `SIGMA_PROBES`."""
    v = later["version"]

    def changed(name, old, new, may_leave=False):
        old, new = set(old), set(new)
        for c in sorted(old - new):
            if not may_leave:
                fail(f"Unicode {v}: {name} no longer holds U+{c:04X}: not supported")
            if chr(c) not in SIGMA_PROBES:
                fail(f"Unicode {v}: U+{c:04X} leaves {name}: add it to SIGMA_PROBES")
        return to_ranges(sorted(new - old)), to_ranges(sorted(old - new))

    def mapped(name, old, new):
        new = {int(c): x for c, x in new.items()}
        for c, x in old.items():
            if new.get(c) != x:
                fail(f"Unicode {v}: {name} of U+{c:04X} changed: not supported")
        return sorted((c, x) for c, x in new.items() if c not in old)

    if set(later["space"]) != set(base.space):
        fail(f"Unicode {v}: str.isspace() changed: not supported")
    word, _ = changed("\\w", base.word, later["word"])
    sigma_cased, sigma_cased_left = changed("Final_Sigma cased", base.sigma_cased, later["sigma_cased"], True)
    case_ignorable, case_ignorable_left = changed(
        "case-ignorable", base.case_ignorable, later["case_ignorable"], True
    )
    return {
        "version": v,
        "python": later["python"],
        "word": word,
        "lower": mapped("str.lower()", base.lower, later["lower"]),
        "sigma_cased": sigma_cased,
        "sigma_cased_left": sigma_cased_left,
        "case_ignorable": case_ignorable,
        "case_ignorable_left": case_ignorable_left,
        "strip": mapped("strip_accents", base.strip, later["strip"]),
    }


def gen_later(later: list) -> str:
    """The tables of the later versions, appended to the base's."""
    o = [
        LATER_MARK + " (each from its own Python): what each changes in the tables above and",
        "// in the versions before it. gen_unicode.py checks that nothing else changes.",
        "",
    ]
    o.append("/// `(unicodedata.unidata_version, Python)` of each later version skedge reads.")
    emit_tuples(o, "pub(crate) static LATER: &[(&str, &str)] = ", [f'("{a["version"]}", "{a["python"]}")' for a in later])
    sets = (
        ("WORD", "word", "adds to `WORD`"),
        ("SIGMA_CASED", "sigma_cased", "adds to `SIGMA_CASED`"),
        ("SIGMA_CASED_LEFT", "sigma_cased_left", "takes out of `SIGMA_CASED`"),
        ("CASE_IGNORABLE", "case_ignorable", "adds to `CASE_IGNORABLE`"),
        ("CASE_IGNORABLE_LEFT", "case_ignorable_left", "takes out of `CASE_IGNORABLE`"),
    )
    maps = (
        ("LOWER", "lower", "`chr(cp).lower()` of code points it gives one to, sorted"),
        ("STRIP", "strip", "`strip_accents_unicode(chr(cp))` of code points it gives one to, sorted"),
    )
    tags = [a["version"].replace(".", "_") for a in later]
    for a, tag in zip(later, tags):
        for table, key, what in sets:
            emit_ranges(o, f"{table}_{tag}", f"Unicode {a['version']}: code points it {what}.", a[key])
        for table, key, what in maps:
            o.append(f"/// Unicode {a['version']}: {what}.")
            emit_tuples(o, f"pub(crate) static {table}_{tag}: &[(u32, &str)] = ",
                        [f'(0x{c:04X}, "{rust_str(x)}")' for c, x in a[key]])
    for table, _, _ in sets:
        o.append(f"/// `{table}_*` of each entry of `LATER`, in order.")
        emit_tuples(o, f"pub(crate) static LATER_{table}: &[&[(u32, u32)]] = ", [f"{table}_{t}" for t in tags])
    for table, _, _ in maps:
        o.append(f"/// `{table}_*` of each entry of `LATER`, in order.")
        emit_tuples(o, f"pub(crate) static LATER_{table}: &[&[(u32, &str)]] = ", [f"{table}_{t}" for t in tags])
    return "\n".join(o).rstrip("\n") + "\n"


def gen_digests(p: Props) -> str:
    cps = p.cps
    doc = (
        "Digests of CPython's own behaviour, generated by scripts/gen_unicode.py. "
        "For each function F in per_code_point, take every code point cp in "
        "0..=0x10FFFF except surrogates, in order, and concatenate F(chr(cp)) "
        "as UTF-8: is_word and is_space give '1' or '0' (re \\w match, "
        "str.isspace()); lower, strip_accents_unicode and strip_accents_ascii "
        "give the function's output followed by '\\n' (str.lower(), sklearn's "
        "functions). sha256 is the digest of the whole stream; blocks[i] is the "
        "first %d hex digits of the sha256 of the part of the stream for code "
        "points i*%d..(i+1)*%d. lower_cases are [input, input.lower()]; "
        "strip_cases are [input, strip_accents_unicode(input), "
        "strip_accents_ascii(input)]." % (BLOCK_DIGEST_HEX, BLOCK_SIZE, BLOCK_SIZE)
    )
    data = {
        "description": doc,
        "unicode_version": unicodedata.unidata_version,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "block_size": BLOCK_SIZE,
        "per_code_point": {name: per_code_point_digest(cps, f) for name, f in PER_CODE_POINT.items()},
        "lower_cases": lower_cases(p),
        "strip_cases": strip_cases(p),
    }
    return dump_json(data)


def dump_json(data) -> str:
    """Deterministic JSON, ASCII only, one list item per line."""

    def enc(v, indent):
        pad = " " * indent
        if isinstance(v, dict):
            items = [f"{pad} {json.dumps(k)}: {enc(v[k], indent + 1)}" for k in sorted(v)]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(v, list) and len(v) > 3:
            items = [f"{pad} {json.dumps(x, ensure_ascii=True)}" for x in v]
            return "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return json.dumps(v, ensure_ascii=True)

    return enc(data, 0) + "\n"


def check_sklearn_copy():
    """If scikit-learn is importable, make sure the copies above match it."""
    try:
        from sklearn.feature_extraction import text as sk
    except ImportError:
        return
    probes = ["", "abc", "caf\u00e9", "\ufb01", "\ud55c", "\u00c5\u212b", "a\u0301\u0316", "\ufdfa"]
    for s in probes:
        if sk.strip_accents_unicode(s) != strip_accents_unicode(s):
            fail(f"copied strip_accents_unicode differs from sklearn's on {s!r}")
        if sk.strip_accents_ascii(s) != strip_accents_ascii(s):
            fail(f"copied strip_accents_ascii differs from sklearn's on {s!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the generated files are stale")
    ap.add_argument("--sizes", action="store_true", help="print table sizes in bytes")
    ap.add_argument(
        "--explain",
        metavar="FILE",
        type=Path,
        help="list the code points where the outputs tests/unicode.rs wrote to FILE differ from Python",
    )
    ap.add_argument("--props-out", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.explain:
        sys.exit(explain(args.explain))
    if args.props_out:  # run by a base Python's gen_unicode.py, under a later Python
        print(props_out(Props()))
        return

    check_sklearn_copy()
    props = Props()
    tables, images = gen_tables(props)
    outputs = {DIGESTS_PATH: gen_digests(props)}
    later, missing, before = [], [], props
    for minor in LATER_PYTHONS:
        python = find_python(minor)
        if python is None:
            missing.append(minor)
            continue
        measured = measure(python)
        later.append(changes(before, measured))
        outputs[digests_path(measured["version"])] = measured["digests"]
        before = measured_props(measured)
    if missing and not args.check:
        fail(f"Python {', '.join(missing)} not found (pyenv, PATH, $SKEDGE_PYTHON_3_12 and the like, "
             "Pyodide in node_modules/ (npm ci), or Debian's: scripts/debian_python.sh 3.X)")
    outputs[TABLES_PATH] = tables + "\n" + gen_later(later)
    if missing:
        # --check without them: the base and the versions found, not the later tables' text.
        print(f"gen_unicode.py: Python {', '.join(missing)} not found: the later versions' tables are "
              "not checked here (scripts/test_pythons.sh checks them with Debian's builds)",
              file=sys.stderr)
        base_part = outputs.pop(TABLES_PATH).split(LATER_MARK)[0]
        committed = TABLES_PATH.read_text(encoding="utf-8") if TABLES_PATH.exists() else ""
        if committed.split(LATER_MARK)[0] != base_part:
            print(f"stale: {TABLES_PATH.relative_to(ROOT)} (regenerate with `{COMMAND}`)", file=sys.stderr)
            sys.exit(1)

    if args.sizes:
        for name, img in images.items():
            print(f"{name:16} {len(img):7} bytes  {len(zlib.compress(img, 9)):6} gzipped")
        everything = b"".join(images.values())
        print(f"{'total':16} {len(everything):7} bytes  {len(zlib.compress(everything, 9)):6} gzipped")

    if args.check:
        stale = [
            path
            for path, text in outputs.items()
            if not path.exists() or path.read_text(encoding="utf-8") != text
        ]
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (regenerate with `{COMMAND}`)", file=sys.stderr)
        sys.exit(1 if stale else 0)

    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
