"""Trains a small text model whose vocabulary and validation texts hold characters that Unicode
15.0, 15.1, 16.0 and 17.0 assign (so a model read with another version's tables would tokenise them
apart), for scripts/test_pythons.sh, under Python 3.12 to 3.15 with scikit-learn: a word (1, 2)-gram
TF-IDF with `strip_accents` None, 'unicode' or 'ascii', or (`char`) a char_wb (2, 4)-gram one, which
also sees how `lower()` ends a Greek word after U+1171E (case-ignorable before 16.0) and U+0295
(cased before 17.0).

    python train_later_unicode.py OUT.joblib none|unicode|ascii|char   # also writes OUT.joblib.csv
"""

import csv
import random
import sys

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

rng = random.Random(7)
POOL = (
    [chr(c) for c in range(0x1E4D0, 0x1E4EC)]  # Nag Mundari letters (15.0)
    + [chr(c) for c in range(0x11F04, 0x11F11)]  # Kawi letters (15.0)
    + [chr(c) for c in range(0x1E030, 0x1E06E)]  # Cyrillic modifier letters (15.0; NFKD: Cyrillic)
    + [chr(c) for c in range(0x2EBF0, 0x2EC18)]  # CJK Unified Ideographs Extension I (15.1)
    + [chr(c) for c in range(0x10D50, 0x10D66)]  # Garay capital letters (16.0; lower(): U+10D70...)
    + [chr(c) for c in range(0x16D40, 0x16D6D)]  # Kirat Rai (16.0)
    + [chr(c) for c in range(0x11380, 0x113B6)]  # Tulu-Tigalari (16.0; some decompose under NFKD)
    + [chr(c) for c in range(0x16EA0, 0x16EB9)]  # Beria Erfe capital letters (17.0; lower(): U+16EBB...)
    + [chr(c) for c in range(0x10940, 0x1095A)]  # Sidetic (17.0)
    + [chr(c) for c in range(0x11DB0, 0x11DDC)]  # Tolong Siki (17.0)
    + [chr(c) for c in range(0x1E6C0, 0x1E6DF)]  # Tai Yo (17.0)
    + [chr(c) for c in range(0x323B0, 0x323D0)]  # CJK Unified Ideographs Extension J (17.0)
    + list("éÉß")
)
BASE = ["good film", "bad film", "great", "awful", "lovely day", "terrible plot", "Ωραία ΤΑΙΝΙΑΣ",
        "ΚΑΛΟ\U0001171eΣ", "ΚΑΚΟ\U0001171eΣ λόγος", "ΚΑΛΟ\u0295Σ", "\u0295Σ ΚΑΚΟΣ"]


def word() -> str:
    return "".join(rng.choice(POOL) for _ in range(rng.randint(1, 4)))


def main() -> None:
    out, strip = sys.argv[1], sys.argv[2]
    texts = [rng.choice(BASE) + " " + " ".join(word() for _ in range(rng.randint(1, 5))) for _ in range(400)]
    labels = [int(any(w in t for w in ("good", "great", "lovely", "Ωραία", "ΚΑΛΟ"))) for t in texts]
    if strip == "char":
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))
    else:
        vec = TfidfVectorizer(ngram_range=(1, 2), strip_accents=None if strip == "none" else strip)
    joblib.dump(make_pipeline(vec, LogisticRegression(max_iter=200)).fit(texts, labels), out)
    with open(out + ".csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for _ in range(300):
            w.writerow([" ".join(word() for _ in range(rng.randint(1, 6))) + " " + rng.choice(BASE), 0])


if __name__ == "__main__":
    main()
