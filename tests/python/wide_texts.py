"""The wide text set of tests/python/test_parity_wide.py: texts scikit-learn models meet in the wild.

(a) every held-out / test row of the corpora in tests/data; (b) synthetic tweets; (c) sentences in
20 languages and scripts; (d) seeded random Unicode from every plane; (e) edge texts (empty,
whitespace only, one char, a 1 MB mixed text, one token 300,000 times, 10,000 distinct tokens).

Everything is deterministic (seeded `random.Random`, `getrandbits` only). No lone surrogates:
neither JSON nor Rust strings can carry them.
"""

from __future__ import annotations

import random

from conftest import dev_script
from skedge.adversarial import code_point, draw as _draw


def _pick(rng: random.Random, seq):
    return seq[_draw(rng, len(seq))]


# ---------------------------------------------------------------------------------------------
# (a) corpora
# ---------------------------------------------------------------------------------------------


def corpus_test_texts() -> list[str]:
    """Every test row: the held-out splits make_fixtures.py uses, plus the test files as such."""
    mf, train_demo = dev_script("make_fixtures"), dev_script("train_demo")

    texts: list[str] = []
    for name in sorted(mf.CORPORA):
        texts += mf.CORPORA[name]().test_texts
    texts += train_demo.french()[1]  # the French demo model's held-out texts
    return texts


# ---------------------------------------------------------------------------------------------
# (b) tweets
# ---------------------------------------------------------------------------------------------

_MENTIONS = ["@user_123", "@Ünïcödé", "@ÇağlarŞ", "@ΣΟΦΙΑ", "@москва_2024", "@東京タワー", "@_", "@a"]
_HASHTAGS = ["#BestMovieEver", "#été2024", "#東京", "#İstanbul", "#ΟΔΟΣ", "#straße", "#GROẞ",
             "#١٢٣", "#ไทย", "#한국어", "#NoFilter", "#😂", "#", "##double"]
_URLS = ["https://t.co/AbC123xyz", "http://example.com/a_b?c=d&e=f#g", "www.ÉTÉ.fr/Ça",
         "https://例子.测试/路径?q=ü", "ftp://x.y/z", "https://xn--fa-hia.de/Straße"]
_EMOJI = [
    "😂", "👍", "🔥🔥🔥", "❤️", "❤\ufe0e", "❤️\u200d🔥",
    "👨\u200d👩\u200d👧\u200d👦", "👩\u200d👩\u200d👧\u200d👦", "👨🏽\u200d💻", "🧑\u200d🤝\u200d🧑",
    "🏳️\u200d🌈", "🏳️\u200d⚧️", "👋🏻👋🏼👋🏽👋🏾👋🏿", "🤷🏾\u200d♀️",
    "🇹🇷🇩🇪🇬🇷🇯🇵", "🇺🇸", "🇫", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "#️⃣", "1️⃣2️⃣3️⃣", "*️⃣", "0\u20e3", "©️ ®️ ™️", "☺️", "✌🏿", "👁️\u200d🗨️",
]
_WORDS = ["soooo", "goooood", "lolll", "noooon", "ΝΑΙΙΙΙ", "jaaaa", "dasss", "!!!!!!", "???!!!",
          "OMG", "LOL", "WTF", "this", "movie", "was", "great", "bad", "film", "génial", "nul",
          "très", "gut", "schlecht", "iyi", "kötü", "καλό", "κακό", "хорошо", "плохо", "好", "悪い",
          "좋아", "ดี", "अच्छा", "جيد", "טוב", "RT", "via", "u", "r", "2", "4", "l8r", "gr8", "xD", ":)",
          ":-(", "<3", "^_^", "¯\\_(ツ)_/¯", "...", "…", "—", "«ok»", "“quoted”", "'single'", "don't",
          "c'est", "l’été"]
_CASED = [
    "THIS MOVIE IS AMAZING", "I LOVE IT SO MUCH", "WORST. FILM. EVER.", "ThIs Is MiXeD cAsE",
    "İYİ", "ıIiİ", "DİYARBAKIR'DA", "Iğdır", "ışık IŞIK", "İSTANBUL'DA ÇOK GÜZEL", "iİıI",
    "Straße", "STRASSE", "ẞ", "GROẞ", "Fußball FUẞBALL", "Maße MASSE", "ß", "ẞẞ",
    "ΟΔΥΣΣΕΥΣ", "ΣΟΦΟΣ.", "Σ", "ΑΣ", "ΑΣ1", "ΑΣ_", "Α'Σ'", "ΑΣ\u0301", "(ΟΔΟΣ)", "ΟΔΟΣ#tag",
    "ΣΑΣ@", "ΑΣ🙂Β", "ΑΣ\u200dΒ", "ΑΣ\u00adΒ", "ΑΣ'Β", "ΑΣ.Β", "ΑΣ:Β", "ΑΣΣΣ", "ΣΣΣ", "Σ\u0301Σ",
    "ΑΣ👍🏽", "ΑΣ\ufe0fΒ", "ΑΣ\U000e0001Β", "Α\u0345Σ", "ᾼΣ", "ΆΣ ΈΣ ΉΣ", "όΣ", "ΑΣΑ ΣΑ ΑΣ",
    "Į ąčęėįšųūž ĄČĘĖĮŠŲŪŽ", "i\u0307\u0300 I\u0300 Ĩ J\u0303", "Ķ Ļ Ņ Ģ ķ ļ ņ ģ ā ē ī ū ĀĒĪŪ",
    "Tiếng Việt có dấu: Ặ ặ Ẫ ẫ Ở ở Ự ự Ỗ ỗ", "Vie\u0323\u0302t Nam", "NGƯỜI VIỆT", "ǅ ǈ ǋ ǲ",
    "ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ", "ŉ ǰ ΐ ΰ և", "ᾈ ᾉ ᾊ ᾮ ᾯ ῼ",
]


def tweets(count: int = 160, seed: int = 7) -> list[str]:
    """Synthetic tweets: mentions, hashtags, URLs, emoji sequences, elongations, casing traps."""
    rng = random.Random(seed)
    parts = [_MENTIONS, _HASHTAGS, _URLS, _EMOJI, _WORDS, _WORDS, _WORDS, _CASED, _CASED]
    seps = [" ", " ", " ", "", "  ", "\n", "\t", "\u00a0", "\u200b", "\u3000", ",", "."]
    out = []
    for _ in range(count):
        n = 1 + _draw(rng, 14)
        pieces = []
        for _ in range(n):
            pieces.append(_pick(rng, _pick(rng, parts)))
            pieces.append(_pick(rng, seps))
        text = "".join(pieces)
        r = _draw(rng, 6)
        if r == 0:
            text = text.upper()
        elif r == 1:
            text = text.title()
        elif r == 2:  # elongate a letter
            i = _draw(rng, max(1, len(text)))
            text = text[:i] + text[i:i + 1] * (3 + _draw(rng, 12)) + text[i + 1:]
        out.append(text)
    # a few fixed ones that exercise one thing each
    out += _CASED + _EMOJI + [
        "RT @user_123: soooooo goooood!!! #BestMovieEver https://t.co/AbC123xyz 😂😂😂",
        "@ΣΟΦΙΑ ΟΔΟΣ ΟΔΟΣ ΟΔΟΣ #ΟΔΟΣ",
        "İstanbul'da İYİ bir FİLM izledim!! #İstanbul 🇹🇷",
        "GROẞE Straße, große STRASSE 🇩🇪",
        "👩🏽\u200d💻👨🏿\u200d🚀 #STEM",
    ]
    return out


# ---------------------------------------------------------------------------------------------
# (c) twenty languages and scripts
# ---------------------------------------------------------------------------------------------

LANGUAGES: dict[str, list[str]] = {
    "en": ["The quick brown fox didn't jump over the lazy dog; it napped instead.",
           "I'd give this film 10/10 — honestly the best thing I've seen in years!"],
    "fr": ["Élodie a trouvé ce roman « vraiment » émouvant : l’écriture est soignée.",
           "Où est passé le garçon ? À côté de l'église, près du cœur de la forêt."],
    "de": ["Die Straße war nass, und der Fußgänger trug GROẞE Schuhe.",
           "Übermäßig schöne Grüße aus Köln – äußerst spaßig!"],
    "es": ["¿Dónde está la biblioteca? ¡Qué película tan increíble, señor!",
           "El niño comió piña y jalapeños en la mañana."],
    "tr": ["İstanbul'da ılık bir akşam; IĞDIR'dan gelen işçiler şarkı söylüyordu.",
           "Çok güzel bir film değildi ama oyunculuk İYİYDİ."],
    "el": ["Η ΟΔΟΣ ΤΟΥ ΟΔΥΣΣΕΑ ήταν μακριά· ο Σωκράτης είπε: «ΓΝΩΘΙ ΣΑΥΤΟΝ».",
           "Καλημέρα σας! Τι κάνετε; ΣΉΜΕΡΑ ΕΊΝΑΙ ΩΡΑΊΑ ΜΈΡΑ ΓΙΑ ΠΕΡΊΠΑΤΟ."],
    "ru": ["Съешь же ещё этих мягких французских булок, да выпей чаю.",
           "ЭТОТ ФИЛЬМ БЫЛ ПРОСТО ПОТРЯСАЮЩИМ, ёлки-палки!"],
    "ar": ["هذا الفيلم رائع جداً، وأنصح الجميع بمشاهدته.",
           "مَرْحَبًا بِكُمْ فِي الْمَدِينَةِ الْمُنَوَّرَةِ ١٢٣٤"],
    "he": ["הסרט היה מצוין ואני ממליץ עליו לכולם.", "שָׁלוֹם עֲלֵיכֶם, מָה שְׁלוֹמְךָ?"],
    "hi": ["यह फ़िल्म बहुत अच्छी थी, मैं इसे फिर से देखूँगा।", "क्षत्रिय ज्ञान श्री ऋषि ॐ १२३"],
    "bn": ["আমি বাংলায় গান গাই, এই সিনেমাটি দারুণ ছিল।", "ক্ষ জ্ঞ ৎ ৩৪৫ ঢ়"],
    "th": ["ภาพยนตร์เรื่องนี้ดีมากครับ ผมชอบมาก", "สวัสดีปีใหม่ ๒๕๖๗ ขอให้มีความสุข"],
    "zh": ["这部电影非常好看，我推荐给大家！", "繁體中文：我們今天去看電影吧。𠀀𪚥"],
    "ja": ["この映画はとても面白かったです。カタカナとひらがな、漢字。",
           "ｶﾀｶﾅ ﾊﾝｶｸ ｶﾞｷﾞ ＡＢＣ１２３ ㍿ ㌔"],
    "ko": ["이 영화는 정말 재미있었어요! 강력 추천합니다.", "한국어 ᄀᄁ ㄱㄲ 가각 힣"],
    "ka": ["ეს ფილმი ძალიან კარგი იყო, გირჩევთ ნახოთ.", "ᲛᲗᲐᲕᲠᲣᲚᲘ ᲐᲡᲝᲔᲑᲘ Ⴀ ⴀ"],
    "hy": ["Այս ֆիլմը շատ լավն էր, խորհուրդ եմ տալիս։", "ԵՐԵՎԱՆ և Երևան, ﬓ ﬔ"],
    "am": ["ይህ ፊልም በጣም ጥሩ ነበር። እንዲያዩት እመክራለሁ።", "ሰላም ፩፪፫ ኢትዮጵያ"],
    "ta": ["இந்த படம் மிகவும் நன்றாக இருந்தது.", "தமிழ் ௧௨௩ க்ஷ ஸ்ரீ"],
    "vi": ["Bộ phim này rất hay, tôi sẽ xem lại lần nữa!",
           "Tiếng Việt: Ặ ặ Ẫ ẫ Ở ở Ự ự — NGƯỜI VIỆT NAM"],
}


def multilingual() -> list[str]:
    """Each sentence, the lower/upper-cased variants, and one mixed paragraph per language pair."""
    out = []
    for sentences in LANGUAGES.values():
        for s in sentences:
            out += [s, s.upper(), s.lower(), s.title()]
    langs = list(LANGUAGES)
    for i, a in enumerate(langs):
        b = langs[(i + 7) % len(langs)]
        out.append(" ".join(LANGUAGES[a] + LANGUAGES[b]))
    return out


# ---------------------------------------------------------------------------------------------
# (d) random Unicode
# ---------------------------------------------------------------------------------------------

WHITESPACE = ["\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", " ", "\x85", "\xa0",
              "\u1680"] + [chr(c) for c in range(0x2000, 0x200B)] + [
              "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u180e", "\u200b", "\ufeff"]

# The code points Unicode 15.0 to 17.0 assigned (Pythons 3.12 to 3.15; 15,104 of them, here in 53
# ranges, gaps of up to 64 unassigned ones merged in; listed from CPython 3.15.2's unicodedata
# against 3.11's). The machine's 3.11 reads them as unassigned, the later Pythons as letters, marks,
# digits and symbols: scripts/test_pythons.sh runs this matrix under each.
LATER_UNICODE = [
    (0x88F, 0x897), (0xC5C, 0xC5C), (0xCDC, 0xCF3), (0xECE, 0xECE), (0x1ACF, 0x1AEB),
    (0x1B4E, 0x1B7F), (0x1C89, 0x1C8A), (0x20C1, 0x20C1), (0x2427, 0x2429), (0x2B96, 0x2B96),
    (0x2FFC, 0x2FFF), (0x31E4, 0x31EF), (0xA7CB, 0xA7F1), (0xFBC3, 0xFBD2), (0xFD90, 0xFDCE),
    (0x105C0, 0x105F3), (0x10940, 0x10959), (0x10D40, 0x10D8F), (0x10EC2, 0x10EFF),
    (0x1123F, 0x11241), (0x11380, 0x113E2), (0x116D0, 0x116E3), (0x11B00, 0x11B09),
    (0x11B60, 0x11B67), (0x11BC0, 0x11BF9), (0x11DB0, 0x11DE9), (0x11F00, 0x11F5A),
    (0x1342F, 0x143FA), (0x16100, 0x16139), (0x16D40, 0x16D79), (0x16EA0, 0x16ED3),
    (0x16FF2, 0x16FF6), (0x187F8, 0x187FF), (0x18CFF, 0x18D1E), (0x18D80, 0x18DF2),
    (0x1B132, 0x1B155), (0x1CC00, 0x1CEF0), (0x1D2C0, 0x1D2D3), (0x1DF25, 0x1DF2A),
    (0x1E030, 0x1E08F), (0x1E4D0, 0x1E4F9), (0x1E5D0, 0x1E5FF), (0x1E6C0, 0x1E6FF),
    (0x1F6D8, 0x1F6DC), (0x1F774, 0x1F77F), (0x1F7D9, 0x1F7D9), (0x1F8B2, 0x1F8D8),
    (0x1FA54, 0x1FAF8), (0x1FBCB, 0x1FBFA), (0x2B739, 0x2B73F), (0x2CEA2, 0x2CEAD),
    (0x2EBF0, 0x2EE5D), (0x31350, 0x33479),
]

# (weight, ranges) over every plane; lone surrogates excluded (see _code_point)
_RANDOM_POOLS = [
    (10, [(0x0, 0x10FFFF)]),                     # anything, mostly unassigned planes 3-13
    (10, [(0x0, 0xFFFF)]),                       # the BMP
    (8, [(0x10000, 0x3FFFF)]),                   # planes 1-3
    (3, [(0xE0000, 0xE01EF)]),                   # tags and variation selectors supplement
    (3, [(0xF0000, 0x10FFFF)]),                  # private use planes 15-16
    (3, [(0xE000, 0xF8FF)]),                     # BMP private use
    (4, [(0xFE00, 0xFE0F), (0x180B, 0x180F)]),   # variation selectors, Mongolian FVS
    (4, [(0xFFFE, 0xFFFF), (0x1FFFE, 0x1FFFF), (0x10FFFE, 0x10FFFF), (0xFDD0, 0xFDEF)]),
    (6, [(0x0, 0x1F), (0x7F, 0x9F)]),            # C0 and C1 controls
    (8, [(0x300, 0x36F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F)]),
    (20, [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x370, 0x3FF), (0x400, 0x52F)]),
    (6, [(0x1E00, 0x1FFF), (0x2C00, 0x2C7F), (0xA640, 0xA69F), (0x10400, 0x1044F), (0x1E900, 0x1E95F)]),
    (5, [(0x30, 0x39), (0x660, 0x669), (0xB2, 0xB3), (0xBC, 0xBE), (0x2150, 0x218F), (0x2460, 0x24FF)]),
    (5, [(0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F)]),
    (4, [(0x1F000, 0x1FAFF)]),
    (10, [(lo, hi) for lo, hi in LATER_UNICODE if hi - lo < 1000]),  # the new scripts, not
    (2, [(lo, hi) for lo, hi in LATER_UNICODE if hi - lo >= 1000]),  # only new ideographs
    (3, [(0x0130, 0x0131), (0x03A3, 0x03A3), (0x1E9E, 0x1E9E), (0xDF, 0xDF), (0x295, 0x295)]),
]


def _code_point(rng: random.Random, pools=_RANDOM_POOLS) -> str:
    while True:
        cp = code_point(rng, pools)
        if not 0xD800 <= cp <= 0xDFFF:  # pools over whole planes include the surrogates
            return chr(cp)


def random_unicode(count: int = 220, seed: int = 20261126, max_len: int = 90) -> list[str]:
    """Seeded random strings over every plane, whitespace of every kind between runs, and runs of
    combining marks; plus one string per whitespace kind and a few structured ones."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        length = _draw(rng, max_len + 1)
        chars = []
        while len(chars) < length:
            r = _draw(rng, 10)
            if r < 6:
                chars.append(_code_point(rng))
            elif r < 8:
                chars.append(_pick(rng, WHITESPACE))
            elif r < 9:  # a run of combining marks after a base
                chars.append(_pick(rng, "aΣİeéßẞ中1_ "))
                for _ in range(1 + _draw(rng, 25)):
                    chars.append(chr(0x300 + _draw(rng, 0x70)))
            else:  # a short word
                chars += list(_pick(rng, _WORDS + _CASED))
        out.append("".join(chars))
    out += WHITESPACE
    out += [w * 3 for w in WHITESPACE]
    out += ["a" + w + "b" for w in WHITESPACE] + [w + "a" + w for w in WHITESPACE]
    out += [
        "".join(WHITESPACE),
        "x" + "\u0301" * 500,
        "\u0301" * 200,
        "e" + "\u0301\u0316" * 100 + "Σ",
        "\ufffe\uffff\U0001fffe\U0001ffff\U0010fffe\U0010ffff",
        "\ufdd0\ufdef noncharacter \U000efffe",
        "a\ufe00b\ufe0fc\U000e0100d\U000e01ef",
        "".join(chr(c) for c in range(0x0, 0x20)),
        "".join(chr(c) for c in range(0x7F, 0xA0)),
        "\U000e0001\U000e0020\U000e007f tags",
        "\U00030000\U0003134a\U000323af CJK ext G/H",
        "\U000f0000\U0010fffd private",
        "\u0378\u0379\u0380 unassigned Greek",
        "\U0001e900\U0001e922 Adlam \U00010400\U00010428 Deseret",
        "\u1e9e\u00df\u1e9e\u00df",
        "\u0130\u0131\u0130\u0131",
        # U+0295 is cased (Ll) up to Unicode 16.0 and not (Lo) in 17.0: a final sigma after it
        # lowers to ς on 3.11-3.14, to σ on 3.15.
        "\u0295\u03a3 \u0295\u03a3\u03a3 a\u0295\u03a3 \u03a3\u0295",
        # Garay (16.0) and Beria Erfe (17.0) capitals and small letters
        "\U00010d50\U00010d51\U00010d70 \U00016ea0\U00016ea1\U00016ebb\U00016ebc Garay, Beria Erfe",
    ]
    return out


# ---------------------------------------------------------------------------------------------
# (e) edge texts
# ---------------------------------------------------------------------------------------------

def mixed_text(n_bytes: int, seed: int = 5) -> str:
    """About `n_bytes` UTF-8 bytes of everything above, seeded."""
    rng = random.Random(seed)
    pool = tweets(60, seed=seed) + multilingual() + random_unicode(60, seed=seed)
    parts, size = [], 0
    while size < n_bytes:
        piece = _pick(rng, pool)
        parts.append(piece)
        size += len(piece.encode("utf-8")) + 1
    return " ".join(parts)


def repeated_token(times: int = 300_000, token: str = "soooo") -> str:
    """One token `times` times: sublinear_tf on a count > 2**16."""
    return " ".join([token] * times)


def distinct_tokens(n: int = 10_000) -> str:
    """`n` distinct word tokens (base-26 letters, each used once)."""
    def word(i: int) -> str:
        s = ""
        i += 26 * 27  # at least 3 letters
        while i:
            i, r = divmod(i, 26)
            s = chr(0x61 + r) + s
        return s
    return " ".join(word(i) for i in range(n))


def small_edges() -> list[str]:
    return ["", " ", "  ", "\t\n", "\u3000", "\x85", "a", "A", "Σ", "ς", "İ", "ß", "ẞ", "_", "1", "²",
            "\x00", "\u0301", "😂", "🇫🇷", "中", "ﬁ", "ǅ", "a b", "ab", "ΑΣ"]


def big_edges() -> list[str]:
    """The large texts: 1 MB mixed, one token 300,000 times, 10,000 distinct tokens."""
    return [mixed_text(1 << 20), repeated_token(), distinct_tokens()]


def wide_texts(big: bool = True) -> list[str]:
    texts = corpus_test_texts() + tweets() + multilingual() + random_unicode() + small_edges()
    if big:
        texts += big_edges()
    for t in texts:
        t.encode("utf-8")  # raises on a lone surrogate
    return texts
