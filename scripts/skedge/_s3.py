"""The S3 client of the bucket spool (spool.py) and of the publisher (publish.py): ``s3://bucket/prefix``
through boto3 (endpoint from `endpoint_url` or ``AWS_ENDPOINT_URL``; R2, S3, moto), keys relative to
the prefix, and every failure in the user's own error type (the spool's ``BucketError``, the
publisher's ``PublishError``: each has its codes and exit paths)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


class S3:
    #: What a failure is raised as; each user sets its own.
    error: type[Exception] = Exception

    def __init__(self, url: str, endpoint_url: str | None = None):
        try:
            import boto3  # noqa: PLC0415
            from botocore.config import Config  # noqa: PLC0415
        except ImportError as err:
            raise self.error(f"{url} needs boto3 (scripts/requirements.txt)") from err
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise self.error(f"{url}: no bucket (s3://BUCKET/PREFIX)")
        self.url = url.rstrip("/")
        self.name, self.prefix = bucket, prefix.strip("/")
        # botocore's defaults wait 60 s per read, four times: a black-holed endpoint held a publish
        # pass for three minutes. A pass fails in seconds instead, and its caller runs it again.
        config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"},
                        max_pool_connections=16)  # fmt: skip
        try:
            self.client = boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
                                       config=config)  # fmt: skip
        except Exception as err:  # a malformed endpoint URL (ValueError), no region (BotoCoreError)
            raise self.error(f"{url}: {err}") from err

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def where(self, rel: str) -> str:
        return f"s3://{self.name}/{self.key(rel)}"

    @staticmethod
    def status(err: Exception) -> int:
        """The HTTP status of a botocore ClientError (0 for anything else)."""
        return int(getattr(err, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0))

    @contextlib.contextmanager
    def errors(self, rel: str) -> Iterator[None]:
        """S3's answers, the network and credentials (ClientError, BotoCoreError, OSError) as
        `self.error`: a failed pass is the caller's coded error, never a traceback."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            yield
        except (ClientError, BotoCoreError, OSError) as err:
            raise self.error(f"{self.where(rel)}: {err}") from err
