"""The Python runtime in a later Python: the skedge wheel (abi3, built once by
scripts/test_pythons.sh) installed into that Python's virtualenv loads the artifact exported there
and predicts every validation text as scikit-learn does in the same process: labels and decision
values bit-identical, probabilities within 1e-12.

    python serve_later_unicode.py MODEL.joblib ARTIFACT.skedge TEXTS.csv
"""

import csv
import sys
import unicodedata

import joblib
import numpy as np

import skedge


def main() -> None:
    model_path, artifact, texts_csv = sys.argv[1:]
    with open(texts_csv, encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    pipe = joblib.load(model_path)
    labels, decisions = pipe.predict(texts), np.atleast_1d(pipe.decision_function(texts))
    probas = pipe.predict_proba(texts)
    model = skedge.Model.load(artifact)
    if model.info()["unicode_version"] != unicodedata.unidata_version:
        sys.exit(f"the artifact says Unicode {model.info()['unicode_version']}, this Python has {unicodedata.unidata_version}")
    worst = 0.0
    for i, text in enumerate(texts):
        got = model.predict(text)
        want_decision = np.atleast_1d(decisions[i]).tolist()
        if got["label"] != labels[i].item() or got["decision"] != want_decision:
            sys.exit(f"text {i} {text!r}: skedge {got}, scikit-learn {labels[i]!r} {want_decision}")
        worst = max(worst, float(np.max(np.abs(np.array(got["proba"]) - probas[i]))))
    if worst > 1e-12:
        sys.exit(f"max |Δproba| = {worst:.3g} > 1e-12")
    print(f"skedge {skedge.__version__} in Python {sys.version.split()[0]}: {len(texts)} texts, labels and "
          f"decisions bit-identical, max |Δproba| = {worst:.3g}")


if __name__ == "__main__":
    main()
