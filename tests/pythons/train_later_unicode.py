"""Trains a small text model whose vocabulary and validation texts hold characters that Unicode
15.0 and 15.1 assign (so a model read with another version's tables would tokenise them apart), for
scripts/test_pythons.sh, under Python 3.12 or 3.13 with scikit-learn.

    python train_later_unicode.py OUT.joblib none|unicode|ascii   # also writes OUT.joblib.csv
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
    + list("éÉß")
)
BASE = ["good film", "bad film", "great", "awful", "lovely day", "terrible plot", "Ωραία ΤΑΙΝΙΑΣ"]


def word() -> str:
    return "".join(rng.choice(POOL) for _ in range(rng.randint(1, 4)))


def main() -> None:
    out, strip = sys.argv[1], sys.argv[2]
    texts = [rng.choice(BASE) + " " + " ".join(word() for _ in range(rng.randint(1, 5))) for _ in range(400)]
    labels = [int(any(w in t for w in ("good", "great", "lovely", "Ωραία"))) for t in texts]
    vec = TfidfVectorizer(ngram_range=(1, 2), strip_accents=None if strip == "none" else strip)
    joblib.dump(make_pipeline(vec, LogisticRegression(max_iter=200)).fit(texts, labels), out)
    with open(out + ".csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for _ in range(300):
            w.writerow([" ".join(word() for _ in range(rng.randint(1, 6))) + " " + rng.choice(BASE), 0])


if __name__ == "__main__":
    main()
