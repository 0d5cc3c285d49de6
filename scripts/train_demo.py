"""Train the demo sentiment pipelines and register them in MLflow (README command 1).

    .venv/bin/python scripts/train_demo.py [--tracking-uri URI] [--all] [--serialization skops]

Data: tests/data/ (real labelled sentences, see its SOURCES.md). The English model
`sentiment_model` is `TfidfVectorizer(word 1-2 grams, sublinear_tf) + LogisticRegression`, trained
on the UCI Amazon/IMDb/Yelp sentences with a seeded stratified 80/20 split; accuracy and F1 on the
held-out 20% are logged. With `--all` also `sentiment_model_fr` (Allociné TV reviews, accents
stripped) and `sentiment_model_char` (char_wb 2-5 grams on the UCI sentences).

Each model is logged with a signature inferred from a numpy *object* array of raw strings, so the
pyfunc flavour really takes raw text (a pandas/list signature makes MLflow's pyfunc split or refuse
it), with an input example, and registered; the new version gets the alias `production` and, for
teams still on the deprecated stages, the stage `Production` (older versions archived).

Tracking URI: --tracking-uri, else MLFLOW_TRACKING_URI, else the embedded sqlite store
`.work/mlflow/mlflow.db` (artifacts in `.work/mlflow/artifacts`). Re-running registers a new
version.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from skedge import registry  # noqa: E402  (sets MLflow's fail-fast and telemetry environment first)

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

DATA = registry.REPO_ROOT / "tests" / "data"
EXPERIMENT = "skedge-demo"
LABELS = {"0": "negative", "1": "positive"}
SEED = 20260101


def read_tsv(path: Path) -> tuple[list, list]:
    """Texts and labels (`negative`/`positive`) of a `text<TAB>label` file, no quote handling."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0][:2] != ["text", "label"]:
        raise SystemExit(f"{path}: expected a 'text<TAB>label' header")
    return [r[0] for r in rows[1:]], [LABELS[r[1]] for r in rows[1:]]


def english() -> tuple[list, list, list, list]:
    """The UCI sentences, split 80/20 (stratified, seeded)."""
    texts, labels = [], []
    for name in ("uci_amazon_cells.tsv", "uci_imdb.tsv", "uci_yelp.tsv"):
        t, y = read_tsv(DATA / name)
        texts += t
        labels += y
    return train_test_split(texts, labels, test_size=0.2, random_state=SEED, stratify=labels)


def french() -> tuple[list, list, list, list]:
    """Allociné: the first 1,200 train rows; of the first 300 test rows, those whose text is not
    among them (292)."""
    xtr, ytr = (v[:1200] for v in read_tsv(DATA / "fr_allocine_tv_train_first1500.tsv"))
    seen = set(xtr)
    test = [(t, y) for t, y in zip(*read_tsv(DATA / "fr_allocine_tv_test_first300.tsv")) if t not in seen]
    return xtr, [t for t, _ in test], ytr, [y for _, y in test]


def word_pipeline(strip_accents: str | None = None) -> Pipeline:
    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents=strip_accents),
            ),
            ("clf", LogisticRegression(C=10.0, max_iter=1000)),
        ]
    )


def char_pipeline() -> Pipeline:
    return Pipeline(
        [
            ("tfidf", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
            ("clf", LogisticRegression(C=10.0, max_iter=1000)),
        ]
    )


#: name -> (data loader, pipeline factory, description)
MODELS = {
    "sentiment_model": (
        english,
        word_pipeline,
        "English sentiment (UCI Amazon/IMDb/Yelp sentences), TF-IDF word 1-2 grams "
        "+ LogisticRegression",
    ),
    "sentiment_model_fr": (
        french,
        lambda: word_pipeline(strip_accents="unicode"),
        "French sentiment (Allociné TV-series reviews), TF-IDF word 1-2 grams, accents stripped",
    ),
    "sentiment_model_char": (
        english,
        char_pipeline,
        "English sentiment (UCI sentences), TF-IDF char_wb 2-5 grams + LogisticRegression",
    ),
}


def evaluate(pipeline: Any, texts: list, labels: list) -> dict:
    predicted = pipeline.predict(texts)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, pos_label="positive")),
        "f1_macro": float(f1_score(labels, predicted, average="macro")),
    }


def pip_requirements(serialization_format: str) -> list:
    """Exact pins of what loading the model needs (no slow requirement inference)."""
    import scipy  # noqa: PLC0415

    reqs = [
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={np.__version__}",
        f"scipy=={scipy.__version__}",
    ]
    if serialization_format == "skops":
        import skops  # noqa: PLC0415

        reqs.append(f"skops=={skops.__version__}")
    elif serialization_format == "cloudpickle":
        import cloudpickle  # noqa: PLC0415

        reqs.append(f"cloudpickle=={cloudpickle.__version__}")
    return reqs


def log_and_register(
    pipeline: Any,
    name: str,
    *,
    tracking_uri: str,
    example_texts: list,
    params: dict | None = None,
    metrics: dict | None = None,
    experiment: str = EXPERIMENT,
    serialization_format: str = "skops",
    alias: str | None = "production",
    stage: str | None = "Production",
    description: str = "",
    register: bool = True,
    **log_model_kwargs: Any,
) -> dict:
    """Log `pipeline` (sklearn flavour, raw-text signature, input example) in a new run of
    `experiment`, register it as `name`, set `alias` and `stage`. Returns the ids:
    {"name", "version", "run_id", "model_id", "model_uri"}."""
    import mlflow  # noqa: PLC0415
    from mlflow.models import infer_signature  # noqa: PLC0415

    registry.prepare_tracking(tracking_uri)
    experiment_id = registry.ensure_experiment(experiment, tracking_uri)
    example = np.array(example_texts, dtype=object)
    signature = infer_signature(example, pipeline.predict(example_texts))
    with registry.using(tracking_uri), warnings.catch_warnings():
        # mlflow warns about pickle formats and deprecated stages; both are deliberate here.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(params or {})
            mlflow.log_metrics(metrics or {})
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=signature,
                input_example=example,
                serialization_format=serialization_format,
                pip_requirements=pip_requirements(serialization_format),
                registered_model_name=name if register else None,
                **log_model_kwargs,
            )
        result = {
            "name": name if register else None,
            "version": str(info.registered_model_version) if register else None,
            "run_id": run.info.run_id,
            "model_id": info.model_id,
            "model_uri": info.model_uri,
        }
        if not register:
            return result
        client = registry.client(tracking_uri)
        version = result["version"]
        if description:
            client.update_registered_model(name, description=description)
        if alias:
            client.set_registered_model_alias(name, alias, version)
        if stage:
            # Archive the stage's other versions by hand: MLflow 3.17's archive_existing_versions
            # compares an integer column with a string, which PostgreSQL refuses (sqlite casts).
            for other in client.search_model_versions(f"name = '{name}'"):
                if other.current_stage == stage and str(other.version) != str(version):
                    client.transition_model_version_stage(name, other.version, "Archived")
            client.transition_model_version_stage(name, version, stage)
    return result


def write_heldout(path: Path, texts: Any, labels: Any) -> None:
    """The held-out split as a CSV (`text,label`): the exporter's `--validation` file, so the
    parity gate, the accuracy and the drift baseline see hundreds of real texts, not the 8 of
    the input example."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, [str(y) for y in labels]))


def train_one(name: str, tracking_uri: str, serialization_format: str, heldout_dir: Path | None = None) -> dict:
    load, factory, description = MODELS[name]
    xtr, xte, ytr, yte = load()
    t0 = time.perf_counter()
    pipeline = factory().fit(xtr, ytr)
    seconds = time.perf_counter() - t0
    metrics = evaluate(pipeline, xte, yte)
    vec, clf = pipeline.named_steps["tfidf"], pipeline.named_steps["clf"]
    params = {
        "analyzer": vec.analyzer,
        "ngram_range": f"{vec.ngram_range[0]},{vec.ngram_range[1]}",
        "sublinear_tf": vec.sublinear_tf,
        "strip_accents": vec.strip_accents,
        "vocabulary_size": len(vec.vocabulary_),
        "C": clf.C,
        "max_iter": clf.max_iter,
        "n_train": len(xtr),
        "n_test": len(xte),
        "seed": SEED,
        "data": "tests/data",
    }
    # A few real held-out texts as the input example; all of them for the exporter's --validation.
    example = list(xte[:8])
    if heldout_dir is not None:
        write_heldout(heldout_dir / f"{name}.heldout.csv", xte, yte)
    ids = log_and_register(
        pipeline,
        name,
        tracking_uri=tracking_uri,
        example_texts=example,
        params=params,
        metrics={**metrics, "train_seconds": seconds},
        serialization_format=serialization_format,
        description=description,
    )
    print(
        f"registered {name} version {ids['version']} "
        f"(run {ids['run_id']}, model {ids['model_id']}): "
        f"accuracy {metrics['accuracy']:.3f}, F1 {metrics['f1']:.3f} on {len(xte)} held-out texts; "
        f"alias 'production', stage 'Production'"
    )
    return ids


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else .work/mlflow")
    parser.add_argument("--all", action="store_true", help="also the French and char_wb models")
    parser.add_argument(
        "--serialization",
        default="skops",
        choices=["skops", "cloudpickle", "pickle"],
        help="sklearn flavour serialization (default: skops, MLflow 3's default)",
    )
    parser.add_argument(
        "--heldout-dir",
        type=Path,
        help="write each model's held-out split there as NAME.heldout.csv (text,label), for "
        "scripts/export.py --validation",
    )
    args = parser.parse_args(argv)
    tracking_uri = registry.resolve_tracking_uri(args.tracking_uri)
    try:
        registry.prepare_tracking(tracking_uri)
        for name in MODELS if args.all else ["sentiment_model"]:
            train_one(name, tracking_uri, args.serialization, args.heldout_dir)
    except registry.RegistryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    print(f"MLflow tracking URI: {registry.redact_uri(tracking_uri)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
