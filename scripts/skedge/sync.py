"""Keeping the edge in sync with the MLflow registry (issue #14 item 2): one-shot commands.

    python scripts/sync.py reconcile --model NAME --alias ALIAS --publish DEST [--tracking-uri URI]
    python scripts/sync.py rollback  --model NAME --alias ALIAS --publish DEST [--tracking-uri URI]

``reconcile`` is one idempotent pass (for cron: webhook deliveries can be lost): it resolves the
alias itself, and when the pointer at DEST does not name that version yet, exports the version
(``models:/NAME/VERSION``, so an alias moving meanwhile cannot mix versions) through the parity
gate and publishes it; a failed gate publishes nothing and the pointer keeps naming the last good
version. Exits 0 when the pointer already names the alias's version (nothing written).

``rollback`` points the alias and the pointer back at the version of the previous generation's blob
(still there: blobs are never deleted). It moves the MLflow alias **first**, then writes the pointer
(a new, higher generation naming the old blob): the registry is what ``reconcile`` converges to, so
if the second step fails, the next ``reconcile`` completes the rollback. In the other order, a
``reconcile`` running between the two steps (or after a failed alias move) would re-publish the
version being rolled back from.

Exit codes: 0 done or already in sync, 1 the parity gate failed, 3 any other failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

from . import publish

EXIT_OK, EXIT_MISMATCH, EXIT_FAILURE = 0, 1, 3


def _client(tracking_uri: str | None):
    from . import registry  # the exporter's MLflow helpers; imports MLflow lazily

    uri = registry.resolve_tracking_uri(tracking_uri)
    registry.prepare_tracking(uri)
    return registry.client(uri), uri


def _tag(client, model: str, version: str, dest: str, generation: int) -> None:
    client.set_model_version_tag(model, version, "skedge.published", f"{dest} generation {generation}")


def reconcile(args: argparse.Namespace, log=lambda s: print(s, file=sys.stderr)) -> int:
    from . import export  # the gate and the publish hook

    client, uri = _client(args.tracking_uri)
    version = str(client.get_model_version_by_alias(args.model, args.alias).version)
    store = publish.open_store(args.publish, args.s3_endpoint_url)
    found = publish.current_pointer(store, args.model, args.alias, skedge=args.skedge)
    if found and found[0]["version"] == version:
        log(f"in sync: {args.model}@{args.alias} is version {version}, pointer generation {found[0]['generation']}")
        return EXIT_OK
    with tempfile.TemporaryDirectory(prefix="skedge-sync-") as tmp:
        out = Path(tmp) / f"{args.model}.skedge"
        argv = ["--model-uri", f"models:/{args.model}/{version}", "--out", str(out), "--skedge", str(args.skedge),
                "--publish", args.publish, "--publish-alias", args.alias, "--name", args.model]
        if uri:
            argv += ["--tracking-uri", uri]
        if args.sign_key:
            argv += ["--sign-key", str(args.sign_key)]
        if args.s3_endpoint_url:
            argv += ["--s3-endpoint-url", args.s3_endpoint_url]
        rc = export.main(argv)
    if rc != EXIT_OK:
        log(f"not published: the export of {args.model} version {version} exited {rc}; the pointer is unchanged")
        return rc
    pointer, _ = publish.current_pointer(store, args.model, args.alias, skedge=args.skedge)
    _tag(client, args.model, version, args.publish, pointer["generation"])
    return EXIT_OK


def rollback(args: argparse.Namespace, log=lambda s: print(s, file=sys.stderr)) -> int:
    client, _ = _client(args.tracking_uri)
    store = publish.open_store(args.publish, args.s3_endpoint_url)
    found = publish.current_pointer(store, args.model, args.alias, skedge=args.skedge)
    if not found or not found[0]["previous_sha256"]:
        log(f"rollback: {args.publish} has no earlier generation for {args.model}@{args.alias}")
        return EXIT_FAILURE
    current = found[0]
    sha = current["previous_sha256"]
    blob = store.read(publish.blob_key(sha))
    raw = store.read(publish.manifest_key(sha))
    if blob is None or raw is None or hashlib.sha256(blob[0]).hexdigest() != sha:
        log(f"rollback: the blob {publish.blob_key(sha)} or its manifest is missing or altered")
        return EXIT_FAILURE
    man = json.loads(raw[0])
    provenance = man.get("provenance") or {}
    version = str(provenance.get("version") or man.get("version", ""))
    client.set_registered_model_alias(args.model, args.alias, version)  # first: see the module's docs
    log(f"rollback: {args.model}@{args.alias} -> version {version}")
    done = publish.point(store, {
        "model": args.model, "alias": args.alias, "version": version, "run_id": provenance.get("run_id") or "",
        "sha256": sha, "size": len(blob[0]), "integrity": man["integrity"], "format_version": man["format_version"],
    }, skedge=args.skedge, sign_key=args.sign_key)  # fmt: skip
    _tag(client, args.model, version, args.publish, done.pointer["generation"])
    log(done.describe(args.publish))
    return EXIT_OK


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description="Keep edge pointers in sync with MLflow model aliases.",
                                     epilog="Exit codes: 0 done or in sync, 1 parity gate failed, 3 other failure.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("reconcile", "publish the alias's version unless the pointer already names it"),
                        ("rollback", "move the alias and the pointer back to the previous generation's version")):
        sub = commands.add_parser(name, help=help_)
        sub.add_argument("--model", required=True, help="registered model name")
        sub.add_argument("--alias", required=True, help="the alias to follow (production)")
        sub.add_argument("--publish", required=True, metavar="DEST", help="a directory or s3://BUCKET/PREFIX")
        sub.add_argument("--tracking-uri", help="MLflow tracking URI (default: as scripts/export.py)")
        sub.add_argument("--s3-endpoint-url", metavar="URL", help="default: $AWS_ENDPOINT_URL")
        sub.add_argument("--sign-key", type=Path, help="sign the pointer (and the artifact) with this Ed25519 key")
        sub.add_argument("--skedge", type=Path, default=publish.DEFAULT_SKEDGE, help="the skedge CLI")
    args = parser.parse_args(argv)
    try:
        return (reconcile if args.command == "reconcile" else rollback)(args)
    except publish.PublishError as err:
        print(f"sync: error[{err.code}]: {err}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
