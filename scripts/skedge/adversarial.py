"""The built-in adversarial text set, and a seeded generator of random Unicode strings.

Every string here targets a place where a Rust port of scikit-learn's analyzers can drift from
Python: `str.lower()` (final sigma, İ, Cherokee), `str.isspace()` versus Unicode White_Space
(U+001C..U+001F are whitespace in Python, not in Rust), Python's `\\w` = `str.isalnum()` or `_`
(No digits ² ½ ① are word characters, combining marks are not; Rust's `\\w` is the reverse),
NFKD in `strip_accents`, char n-grams over astral characters, long inputs and repeated tokens
for `sublinear_tf`.

Invisible characters are written as escapes so a reviewer can see them. No lone surrogates:
neither JSON nor Rust strings can carry them.
"""

from __future__ import annotations

import random

# log(9170) is the first integer whose numpy (AVX-512) log differs from libm's on the machine
# FORMAT.md was written on: a token repeated exactly 9170 times exercises `log_exceptions`.
_LOG_EXCEPTION_COUNT = 9170


def _long_texts() -> list[str]:
    """A few 10-50 KB texts, built from code so the source stays readable."""
    mixed = (
        "The film was great, le film était génial, фильм был отличный, 这部电影很好, "
        "영화가 좋았다, الفيلم كان رائعا, הסרט היה מצוין, फ़िल्म अच्छी थी, ภาพยนตร์ดีมาก 👍🏽. "
    )
    french = (
        "Élodie a trouvé ce roman « vraiment » émouvant : l’écriture est soignée, les personnages "
        "sont attachants et la fin… ÇA, c’est une surprise ! Œuvre à lire. "
    )
    whitespace = "mot\t\tword\u00a0\u00a0x\u3000\u3000y\n\n \u2028z\x1c\x1d "
    return [
        ("film " * _LOG_EXCEPTION_COUNT).rstrip(),  # ~46 KB, one token 9170 times
        (mixed * 45).strip(),  # ~12 KB of mixed scripts
        " ".join(f"{french}({i})" for i in range(60)),  # ~10 KB of French, capitals and accents
        "x" * 10000,  # one 10 KB word
        whitespace * 350,  # ~11 KB of whitespace runs
    ]


ADVERSARIAL: list[str] = [
    # --- empty and whitespace ------------------------------------------------------------------
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    "\t\t",
    " \t ",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x1f",
    "\x85",
    "\xa0",
    "\u1680",
    "\u2000\u200a",
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u3000",
    "\u180e",
    "\u200b",
    # --- whitespace inside and around words (char analyzers keep a lone tab) ------------------------
    "a\tb",
    "\tlone tab",
    "tab\tinside words",
    "good \t\t  movie",
    "  leading and trailing  ",
    "a\x1cb\x1dc\x1ed\x1fe",
    "a\x85b",
    "a\xa0b",
    "a\u3000b",
    "word\u2028word\u2029word",
    "nbsp\u00a0and\u202fnarrow\u2009thin",
    "line\nbreak\r\nwindows\rmac",
    "vt\x0bff\x0cchars",
    # --- out of vocabulary, underscores, digits ------------------------------------------------------
    "zzzqqq xxyyzz",
    "qwertyuiop asdfghjkl zxcvbnm",
    "_",
    "__init__",
    "snake_case_word and _leading trailing_",
    "a_b c_d __ ___",
    "123",
    "4 5 6",
    "2024-01-01",
    "3.14159",
    "1,000,000",
    "10/10 would watch again",
    "007",
    # --- numbers that are not ASCII digits: Python \w, not Rust \w (No), or both (Nd, Nl) ------------
    "x² y³",
    "½ price",
    "① ② ③",
    "²³",
    "a¹b",
    "١٢٣ أرقام",
    "৩ ৪",
    "Ⅻ ⅻ roman",
    "𝟙𝟚𝟛 math digits",
    # --- combining marks -------------------------------------------------------------------------------
    "e\u0301te\u0301",
    "n\u0303o",
    "a\u0308\u0304",
    "\u0301 lone combining",
    "Z\u0351\u0361\u0328a\u0300l\u0315g\u0360o",
    "cafe\u0301 CAFE\u0301",
    # --- Greek final sigma ----------------------------------------------------------------------------------
    "ΟΔΟΣ",
    "ΣΑΣ.",
    "ΣΑΣ ΣΑΣ",
    "Σ",
    "ΌΣΟΣ ΆΣΟΣ",
    "αΣ",
    "ΑΣ1",
    "Σ.Σ",
    "ΣΣ",
    "ΣΑΣ'Σ",
    # --- casing oddities --------------------------------------------------------------------------------
    "İstanbul",
    "İİ",
    "DİYARBAKIR",
    "ı I i İ",
    "Straße STRASSE",
    "ẞ capital sharp s",
    "ﬁnance ﬂow",
    "ﬀ ﬃ ﬄ ﬅ ﬆ",
    "ＡＢＣ ａｂｃ １２３",
    "ǅ ǈ ǋ Ǆemal",
    "Ω K Å signs",
    "ᏣᎳᎩ",
    "ᲐᲑᲒ",
    "ThIs MoViE iS gReAt",
    "CAPS LOCK MOVIE",
    # --- scripts ------------------------------------------------------------------------------------------
    "안녕하세요 세계",
    "\u1100\u1161\u11a8",
    "我喜欢这部电影",
    "日本語のテキスト",
    "这部电影很好看！",
    "中文，标点。",
    "هذا فيلم رائع",
    "مَرْحَبًا",
    "ﻻ ﷺ",
    "סרט מצוין",
    "שָׁלוֹם",
    "नमस्ते दुनिया",
    "हिन्दी फ़िल्म अच्छी है",
    "क्षत्रिय",
    "ภาพยนตร์นี้ดีมาก",
    "สวัสดีครับ",
    "Hello мир 世界 עולם",
    "café Москва 東京",
    "abcабв",
    "Türkçe çok güzel, ĞÜŞİÖÇ ğüşıöç",
    # --- emoji and symbols ------------------------------------------------------------------------------------
    "👍",
    "great movie 👍👍",
    "👨\u200d👩\u200d👧\u200d👦 family",
    "❤\ufe0f love it",
    "🏳\ufe0f\u200d🌈",
    "👍🏽",
    "☺\ufe0e text style",
    "1\ufe0f\u20e3 keycap",
    "🇫🇷 flag",
    "𝑒 = mc²",
    "𝐀𝐁𝐂 bold",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\ue000 private use",
    "\U0010fffd plane 16",
    "\uffff \ufffe noncharacters",
    "\ufffd replacement",
    # --- bidi, zero-width and control characters -----------------------------------------------------------------
    "\u200fRTL mark\u200f",
    "abc\u202eevil\u202c",
    "\u200e",
    "\u061c arabic letter mark",
    "zero\u200bwidth",
    "zw\u200cnj\u200dj",
    "\ufeffBOM at start",
    "soft\xadhyphen",
    "word\u2060joiner",
    "\x00",
    "a\x00b",
    "\x07bell",
    "\x1b[31mred\x1b[0m",
    # --- long words, repeated tokens (sublinear_tf) -----------------------------------------------------------------
    "supercalifragilisticexpialidocious" * 30,
    "good good good good good",
    "bad " * 50,
    "very very very very good",
    "the the the",
    "ok " * 300,
    "film film film bon bon",
    # --- French, apostrophes, web text --------------------------------------------------------------------------
    "Élève À Ç œuvre Œdipe",
    "J'ai adoré ce film, c'était génial !",
    "À bientôt, ça va ?",
    "ÉCOLE ÉTÉ",
    "L’été dernier « super » … vraiment",
    "cœur naïve Noël",
    "Ångström Ærøskøbing Øresund",
    "ĳ Ǆ ñandú Đà Nẵng Łódź ŉ",
    "don't",
    "won't can't I'm",
    "it's rock'n'roll",
    "don’t",
    "https://example.com/path?q=1&x=2#frag",
    "www.example.org",
    "http://例子.测试",
    "john.doe+tag@example.com",
    "contact@société.fr",
    "#bestmovie #2024 @user",
    "#ÉtéIndien",
    "!!!",
    "...",
    "?!?!",
    "—–-",
    "«»“”",
    "()[]{}",
    # --- from the wide parity hunt (tests/python/test_parity_wide.py) -----------------------------------------
    "akqlrggi aivlts3m",  # murmurhash3_32(token, 0) == -2**31: HashingVectorizer's abs(INT_MIN) branch
    "aaaiTBFZ",  # the same hash, mixed case (lowercase=False)
    "ΑΣ\u200dΒ ΑΣ\ufe0fΒ ΑΣ\U000e0001Β ΑΣ👍🏽 ΑΣ🙂",  # final sigma vs case-ignorables: ZWJ, VS16, tag, skin tone
    "Α\u0345Σ ΑΣ\u0301 (ΟΔΟΣ) Σ\u0301Σ",  # ... and combining marks
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f #\ufe0f\u20e3 *\ufe0f\u20e3 👩🏽\u200d💻",
    "Vie\u0323\u0302t Nam NGƯỜI VIỆT Ặ ặ",  # Vietnamese stacked diacritics, decomposed and precomposed
    "i\u0307\u0300 Į ĄČĘĖ ķļņģ",  # Lithuanian i with dot above and grave, Latvian cedillas
    "\x80\x9f \U0001fffe \U0010fffe \ufdd0",  # C1 controls, noncharacters
] + _long_texts()


# Code points to draw from: (weight, ranges). Surrogates are never produced.
_POOLS = [
    (30, [(0x61, 0x7A), (0x41, 0x5A)]),
    (12, [(0x20, 0x20)]),
    (4, [(0x30, 0x39), (0x5F, 0x5F), (0x21, 0x2F)]),
    (8, [(0xA0, 0x24F)]),
    (6, [(0x370, 0x3FF), (0x400, 0x4FF)]),
    (5, [(0x300, 0x36F), (0x900, 0x97F), (0xE00, 0xE7F)]),
    (6, [(0x09, 0x0D), (0x1C, 0x1F), (0x85, 0x85), (0x2000, 0x200F), (0x2028, 0x202F), (0x3000, 0x3000)]),
    (5, [(0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0x3040, 0x30FF)]),
    (4, [(0x1F300, 0x1F6FF), (0x1D400, 0x1D7FF), (0xFE00, 0xFE0F)]),
    (3, [(0x2150, 0x24FF), (0xFB00, 0xFB4F), (0xFF00, 0xFFEF)]),
    (4, [(0x0, 0xD7FF), (0xE000, 0x10FFFF)]),
]


def draw(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n) from getrandbits only (stable across Python versions)."""
    bits = max(1, n.bit_length())
    while True:
        r = rng.getrandbits(bits)
        if r < n:
            return r


def code_point(rng: random.Random, pools: list) -> int:
    """A code point from weighted pools `[(weight, [(lo, hi), ...]), ...]`: a pool by weight,
    then uniform over its ranges."""
    pick = draw(rng, sum(w for w, _ in pools))
    for weight, ranges in pools:
        if pick < weight:
            break
        pick -= weight
    sizes = [hi - lo + 1 for lo, hi in ranges]
    k = draw(rng, sum(sizes))
    for (lo, _hi), size in zip(ranges, sizes):
        if k < size:
            return lo + k
        k -= size
    raise AssertionError("unreachable: k < sum(sizes)")


def random_texts(count: int = 30, seed: int = 20260101, max_len: int = 60) -> list[str]:
    """`count` random Unicode strings, the same for a given seed on every machine."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        length = draw(rng, max_len + 1)
        out.append("".join(chr(code_point(rng, _POOLS)) for _ in range(length)))
    return out


def _self_check() -> None:
    for text in ADVERSARIAL + random_texts():
        text.encode("utf-8")  # raises on a lone surrogate


_self_check()
