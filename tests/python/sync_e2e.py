"""The Python side of tests/js/sync_e2e.test.mjs (a helper, not a pytest module).

    sync_e2e.py setup --tracking-uri URI --s3 ENDPOINT --bucket B   registers `sentiment` versions
        v1 and v2 (the same pipeline, other C) and v3 (a pipeline the exporter refuses), creates the
        bucket with a public-read policy (a static host in front of the store, as an R2 public
        bucket is) and prints {"v1": "1", "v2": "2", "v3": "3"}
    sync_e2e.py alias --tracking-uri URI --version V                moves `sentiment@production`,
        prints {"moved_at": Unix time}
    sync_e2e.py tags  --tracking-uri URI --version V                prints the version's tags
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

NAME, ALIAS = "sentiment", "production"


def setup(uri: str, s3: str, bucket: str) -> dict:
    import boto3  # noqa: PLC0415
    from conftest import MOTO_CREDENTIALS, binary_corpus, dev_script  # noqa: PLC0415
    from sklearn.preprocessing import Normalizer  # noqa: PLC0415
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415

    train_demo = dev_script("train_demo")
    store = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", **MOTO_CREDENTIALS)
    store.create_bucket(Bucket=bucket)
    store.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    texts, labels = binary_corpus(400)
    pipes = [make_pipeline(TfidfVectorizer(), LogisticRegression(C=c, max_iter=2000)) for c in (1.0, 10.0)]
    pipes.append(make_pipeline(TfidfVectorizer(), Normalizer(norm="max"), LogisticRegression(max_iter=2000)))
    out = {}
    for name, pipe in zip(("v1", "v2", "v3"), pipes):
        ids = train_demo.log_and_register(pipe.fit(texts, labels), NAME, tracking_uri=uri, example_texts=texts[:5],
                                          experiment="skedge-sync-e2e", alias=None, stage=None)  # fmt: skip
        out[name] = str(ids["version"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["setup", "alias", "tags"])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--s3")
    parser.add_argument("--bucket")
    parser.add_argument("--version")
    args = parser.parse_args()
    if args.command == "setup":
        print(json.dumps(setup(args.tracking_uri, args.s3, args.bucket)))
        return 0
    from mlflow import MlflowClient  # noqa: PLC0415

    client = MlflowClient(tracking_uri=args.tracking_uri, registry_uri=args.tracking_uri)
    if args.command == "alias":
        client.set_registered_model_alias(NAME, ALIAS, args.version)
        print(json.dumps({"moved_at": time.time()}))  # when MLflow answered: the move is committed
    else:
        print(json.dumps(client.get_model_version(NAME, args.version).tags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
