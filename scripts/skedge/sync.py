"""Keeping the edge in sync with the MLflow registry (issue #14 item 2).

    python scripts/sync.py reconcile --model NAME --alias ALIAS --publish DEST [--tracking-uri URI]
    python scripts/sync.py rollback  --model NAME --alias ALIAS --publish DEST [--tracking-uri URI]
    python scripts/sync.py serve --publish DEST [--host 127.0.0.1] [--port 8788]   # secret: $SKEDGE_WEBHOOK_SECRET
    (reconcile and serve: [--sign-key KEY] [--s3-endpoint-url URL] [--precision compact [--max-label-disagreement P]])
    python scripts/sync.py webhook create --url URL --secret SECRET [--tracking-uri URI]

``reconcile`` is one idempotent pass (for cron: webhook deliveries can be lost): it resolves the
alias itself, and when the pointer at DEST does not name that version yet, exports the version
(``models:/NAME/VERSION``, so an alias moving meanwhile cannot mix versions) through the parity
gate and publishes it; a failed gate publishes nothing and the pointer keeps naming the last good
version, and tags the version ``skedge.sync = refused: <reason>`` (a failed gate or an unsupported
pipeline is a property of the version: running again gives the same answer). Exits 0 when the
pointer already names the alias's version (nothing written).

``rollback`` points the alias and the pointer back at the version of the previous generation's blob
(still there: blobs are never deleted). It moves the MLflow alias **first**, then writes the pointer
(a new, higher generation naming the old blob): the registry is what ``reconcile`` converges to, so
if the second step fails, the next ``reconcile`` completes the rollback. In the other order, a
``reconcile`` running between the two steps (or after a failed alias move) would re-publish the
version being rolled back from.

``serve`` receives MLflow's model-registry webhooks (``model_version_alias.created`` and
``.deleted``; the webhook is registered by ``webhook create``). A delivery is accepted only with a
valid ``X-MLflow-Signature`` (``v1,`` + base64 HMAC-SHA256 with the shared secret over
``<X-MLflow-Delivery-Id>.<X-MLflow-Timestamp>.<body>``), a timestamp within ``--tolerance`` seconds
of now, and a delivery id not seen within that window (a replay older than the window is stale; the
ids kept are bounded by it). It is answered at once (202) and only *prompts* a pass: one worker per
model and alias runs ``reconcile`` in a child process, which resolves the alias itself, so a forged,
reordered or lost payload can never choose a version. Prompts arriving while a pass runs coalesce
into one more pass after it, so two racing alias moves end on the later one.

Exit codes: 0 done or already in sync, 1 the parity gate failed, 2 unsupported pipeline, 3 any other
failure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from . import publish
from ._cli import tool_command

EXIT_OK, EXIT_MISMATCH, EXIT_UNSUPPORTED, EXIT_FAILURE = 0, 1, 2, 3
#: The registry events `serve` acts on (MLflow >= 3.3).
ALIAS_EVENTS = ("model_version_alias.created", "model_version_alias.deleted")


def _client(tracking_uri: str | None):
    from . import registry  # the exporter's MLflow helpers; imports MLflow lazily

    uri = registry.resolve_tracking_uri(tracking_uri)
    registry.prepare_tracking(uri)
    return registry.client(uri), uri


def _tag(client, model: str, version: str, dest: str, generation: int) -> None:
    client.set_model_version_tag(model, version, "skedge.published", f"{dest} generation {generation}")


class _Tee(io.TextIOBase):
    """stderr, and the lines written to it: the export's own words become the refusal's reason."""

    def __init__(self, out):
        self.out, self.lines = out, []

    def write(self, s: str) -> int:
        self.out.write(s)
        self.lines += [line for line in s.splitlines() if line.strip()]
        return len(s)

    def flush(self) -> None:
        self.out.flush()


def _reason(rc: int, lines: list) -> str:
    """What refused the version, in one line: the export's verdict (`parity gate FAILED: ...`) or error."""
    what = "the parity gate failed" if rc == EXIT_MISMATCH else "unsupported pipeline"
    for line in lines:
        low = line.lower()
        if low.startswith(("error", "unsupported", "refused")) or "gate failed" in low:
            return f"{what}: {line.strip().removeprefix('error: ')}"[:500]
    return what


def reconcile(args: argparse.Namespace, log=lambda s: print(s, file=sys.stderr)) -> int:
    from . import export  # the gate and the publish hook

    client, uri = _client(args.tracking_uri)
    try:
        version = str(client.get_model_version_by_alias(args.model, args.alias).version)
    except Exception as err:  # MlflowException: the alias (or the model) is not there
        if "RESOURCE_DOES_NOT_EXIST" not in str(getattr(err, "error_code", "")) and "not found" not in str(err):
            raise
        log(f"no version: {args.model}@{args.alias} is not set; the pointer keeps what it names")
        return EXIT_FAILURE
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
        if args.precision != "exact":
            argv += ["--precision", args.precision, "--max-label-disagreement", str(args.max_label_disagreement)]
        tee = _Tee(sys.stderr)
        with contextlib.redirect_stderr(tee):
            rc = export.main(argv)
    if rc != EXIT_OK:
        log(f"not published: the export of {args.model} version {version} exited {rc}; the pointer is unchanged")
        if rc in (EXIT_MISMATCH, EXIT_UNSUPPORTED):
            client.set_model_version_tag(args.model, version, "skedge.sync", f"refused: {_reason(rc, tee.lines)}")
        return rc
    pointer, _ = publish.current_pointer(store, args.model, args.alias, skedge=args.skedge)
    _tag(client, args.model, version, args.publish, pointer["generation"])
    if "skedge.sync" in (client.get_model_version(args.model, version).tags or {}):
        client.delete_model_version_tag(args.model, version, "skedge.sync")  # an earlier refusal, now untrue
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


# ---------------------------------------------------------------------------------------------
# serve: MLflow webhooks -> one reconcile pass per model and alias
# ---------------------------------------------------------------------------------------------

#: A delivery's body is a few hundred bytes; anything larger is refused unread.
MAX_WEBHOOK_BYTES = 64 * 1024
#: Seconds to receive a delivery's body.
BODY_SECONDS = 10.0


class Refused(Exception):
    """A delivery that is not acted on: `status` and a stable `code` for the answer."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def signature(secret: bytes, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's ``X-MLflow-Signature`` of a delivery (mlflow/webhooks/delivery.py: ``v1,`` and the
    base64 HMAC-SHA256 of ``<delivery id>.<timestamp>.<body>``)."""
    mac = hmac.new(secret, f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_delivery(secret: bytes, headers, body: bytes, now: float, tolerance: float) -> tuple[str, int]:
    """(delivery id, timestamp) of an authentic, fresh delivery; raises Refused otherwise. The
    timestamp is signed with the body, so a captured delivery cannot be re-dated."""
    delivery_id = headers.get("x-mlflow-delivery-id") or ""
    stamp = headers.get("x-mlflow-timestamp") or ""
    given = headers.get("x-mlflow-signature") or ""
    if not given:
        raise Refused(401, "SIGNATURE_MISSING", "no X-MLflow-Signature: create the webhook with a secret")
    if not delivery_id or len(delivery_id) > 200 or not stamp.isdigit() or len(stamp) > 12:
        raise Refused(400, "BAD_REQUEST", "X-MLflow-Delivery-Id and X-MLflow-Timestamp (Unix seconds) are required")
    expected = signature(secret, delivery_id, stamp, body).encode()
    # Standard Webhooks allows several space-separated signatures (a secret being rotated).
    if not any(hmac.compare_digest(s.encode(), expected) for s in given.split()):
        raise Refused(401, "SIGNATURE_INVALID", "X-MLflow-Signature does not match the secret")
    if abs(now - int(stamp)) > tolerance:
        raise Refused(401, "TIMESTAMP_STALE", f"X-MLflow-Timestamp is more than {tolerance:g} s from now")
    return delivery_id, int(stamp)


class DeliveryIds:
    """The delivery ids accepted within the timestamp window. Older ones need no memory: their
    timestamp is refused as stale. At most `capacity` are kept; when that many are all still in
    the window a delivery is answered 503 (MLflow retries it) rather than forgetting an id early."""

    def __init__(self, window: float, capacity: int = 100_000):
        self.window, self.capacity = window, capacity
        self.ids: collections.OrderedDict = collections.OrderedDict()  # id -> monotonic time accepted

    def add(self, delivery_id: str, now: float) -> bool:
        """False when `delivery_id` was already accepted (a replay or a retry)."""
        while self.ids and next(iter(self.ids.values())) < now - 2 * self.window:
            self.ids.popitem(last=False)
        if delivery_id in self.ids:
            return False
        if len(self.ids) >= self.capacity:
            raise Refused(503, "BUSY", "too many deliveries in the timestamp window: retry later")
        self.ids[delivery_id] = now
        return True


def parse_event(body: bytes) -> tuple[str, str, str]:
    """(event, model, alias) of a delivery's JSON body (MLflow's envelope: entity, action, data)."""
    try:
        doc = json.loads(body)
        event = f"{doc['entity']}.{doc['action']}"
        data = doc["data"]
        model, alias = data.get("name"), data.get("alias")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Refused(400, "BAD_REQUEST", "not an MLflow webhook body (entity, action, data)") from None
    if event in ALIAS_EVENTS:
        if not isinstance(model, str) or not isinstance(alias, str):
            raise Refused(400, "BAD_REQUEST", "data.name and data.alias must be strings")
        try:
            publish.pointer_key(model, alias)
        except publish.PublishError as err:
            raise Refused(400, "BAD_REQUEST", str(err)) from None
    return event, model, alias


class Syncer:
    """One worker per (model, alias): a prompt starts a pass, or, while one runs, asks for one more
    after it (any number of prompts meanwhile coalesce into that one). `run(model, alias)` is the
    pass (a coroutine returning an exit code); at most `parallel` passes run at once."""

    def __init__(self, run, parallel: int = 1, retries: int = 2, max_keys: int = 1000, log=None):
        self.run, self.retries, self.max_keys = run, retries, max_keys
        self.slots = asyncio.Semaphore(parallel)
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self.state: dict = {}  # (model, alias) -> {"running", "again", "passes", "last"}
        self.tasks: set = set()

    def prompt(self, model: str, alias: str) -> str:
        key = (model, alias)
        st = self.state.get(key)
        if st is None:
            if len(self.state) >= self.max_keys:
                raise Refused(503, "BUSY", f"more than {self.max_keys} model aliases: restrict serve with --model")
            st = self.state[key] = {"running": False, "again": False, "passes": 0, "last": None}
        if st["running"]:
            st["again"] = True
            return "coalesced"
        st["running"] = True
        task = asyncio.get_running_loop().create_task(self._worker(key, st))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return "started"

    async def _worker(self, key, st) -> None:
        try:
            while True:
                st["again"] = False
                rc = await self._pass(key)
                st["passes"] += 1
                st["last"] = {"exit": rc, "finished_at": time.time()}
                if not st["again"]:
                    return
        finally:
            st["running"] = False

    async def _pass(self, key) -> int:
        for attempt in range(self.retries + 1):
            async with self.slots:
                rc = await self.run(*key)
            # 0 done, 1/2 the version is refused (tagged): the same answer every time. 3 may be
            # passing (S3 or MLflow unreachable, a concurrent publish): a few more tries, then
            # `reconcile` from cron.
            if rc != EXIT_FAILURE or attempt == self.retries:
                return rc
            await asyncio.sleep(2.0 * 4**attempt)
        return rc

    async def idle(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def reconcile_command(args: argparse.Namespace, model: str, alias: str) -> list:
    """The child process of a pass: `reconcile` with serve's destination and keys."""
    cmd = [*tool_command("sync"), "reconcile", "--model", model, "--alias", alias,
           "--publish", args.publish, "--skedge", str(args.skedge)]
    for flag, value in (("--tracking-uri", args.tracking_uri), ("--s3-endpoint-url", args.s3_endpoint_url),
                        ("--sign-key", args.sign_key)):
        if value:
            cmd += [flag, str(value)]
    if args.precision != "exact":
        cmd += ["--precision", args.precision, "--max-label-disagreement", str(args.max_label_disagreement)]
    return cmd


def make_app(secret: bytes, syncer: Syncer, *, tolerance: float = 300.0, models=(), aliases=(), log=None):
    """The Starlette application of `serve`: POST /webhook, GET /health."""
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.responses import JSONResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    seen = DeliveryIds(tolerance)
    counts: collections.Counter = collections.Counter()
    last_logged: dict = {}

    def refuse(request, err: Refused) -> JSONResponse:
        counts[err.code] += 1
        # One line per kind of refusal a minute: a scanner or a wrong secret shows, never floods.
        if time.monotonic() - last_logged.get(err.code, -1e9) > 60:
            last_logged[err.code] = time.monotonic()
            who = request.client.host if request.client else "?"
            log(f"sync serve: refused {err.status} {err.code} from {who}: {err} ({counts[err.code]} so far)")
        return JSONResponse({"code": err.code, "error": str(err)}, status_code=err.status)

    async def webhook(request):
        try:
            length = request.headers.get("content-length", "")
            if length and (not length.isdigit() or int(length) > MAX_WEBHOOK_BYTES):
                raise Refused(413, "TOO_LARGE", f"a webhook body is at most {MAX_WEBHOOK_BYTES} bytes")
            body = bytearray()
            try:
                async with asyncio.timeout(BODY_SECONDS):  # a slow sender holds no connection for long
                    async for chunk in request.stream():
                        body += chunk
                        if len(body) > MAX_WEBHOOK_BYTES:
                            raise Refused(413, "TOO_LARGE", f"a webhook body is at most {MAX_WEBHOOK_BYTES} bytes")
            except TimeoutError:
                raise Refused(408, "BODY_TIMEOUT", f"the body was not received within {BODY_SECONDS:g} s") from None
            body = bytes(body)
            delivery_id, _ = verify_delivery(secret, request.headers, body, time.time(), tolerance)
            event, model, alias = parse_event(body)
            if not seen.add(delivery_id, time.monotonic()):
                counts["duplicate"] += 1
                return JSONResponse({"duplicate": True, "delivery_id": delivery_id})
        except Refused as err:
            return refuse(request, err)
        if event not in ALIAS_EVENTS or (models and model not in models) or (aliases and alias not in aliases):
            counts["ignored"] += 1
            return JSONResponse({"ignored": event})
        try:
            what = syncer.prompt(model, alias)
        except Refused as err:
            return refuse(request, err)
        counts["accepted"] += 1
        log(f"sync serve: {event} {model}@{alias} (delivery {delivery_id}): pass {what}")
        return JSONResponse({"accepted": event, "model": model, "alias": alias, "pass": what}, status_code=202)

    async def health(request):
        syncs = {f"{m}@{a}": {"running": st["running"], "queued": st["again"], "passes": st["passes"],
                              "last": st["last"]} for (m, a), st in syncer.state.items()}
        return JSONResponse({"ok": True, "deliveries": dict(counts), "syncs": syncs})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for task in list(syncer.tasks):  # a pass interrupted is safe: blobs and pointers are atomic
            task.cancel()

    return Starlette(lifespan=lifespan, routes=[Route("/webhook", webhook, methods=["POST"]),
                                                Route("/health", health, methods=["GET"])])


def serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415

    secret = os.environ.get("SKEDGE_WEBHOOK_SECRET", "") if args.secret is None else args.secret
    if not secret:
        print("sync serve: a secret is required ($SKEDGE_WEBHOOK_SECRET, or --secret)", file=sys.stderr)
        return EXIT_FAILURE

    def log(line: str) -> None:
        # Timed to the millisecond: how long a pass took from the delivery is read off the log.
        now = time.time()
        print(f"{time.strftime('%H:%M:%S', time.gmtime(now))}.{int(now % 1 * 1000):03d} {line}", file=sys.stderr, flush=True)

    async def run(model: str, alias: str) -> int:
        child = await asyncio.create_subprocess_exec(*reconcile_command(args, model, alias),
                                                     env={**os.environ, "PYTHONUNBUFFERED": "1"},  # lines as they come
                                                     stdin=asyncio.subprocess.DEVNULL,
                                                     stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            async for line in child.stdout:
                log(f"[{model}@{alias}] {line.decode('utf-8', 'replace').rstrip()}")
            rc = await child.wait()
        except asyncio.CancelledError:
            child.terminate()
            raise
        log(f"sync serve: pass {model}@{alias} exited {rc}")
        return rc

    syncer = Syncer(run, parallel=args.parallel, retries=args.retries, log=log)
    app = make_app(secret.encode(), syncer, tolerance=args.tolerance, models=set(args.model or ()),
                   aliases=set(args.alias or ()), log=log)  # fmt: skip
    log(f"sync serve: http://{args.host}:{args.port}/webhook -> {args.publish}")
    uvicorn.run(app, host=args.host, port=args.port, workers=1, lifespan="on", log_level="warning",
                access_log=False, server_header=False, timeout_keep_alive=5, limit_concurrency=64)
    return EXIT_OK


def webhook_create(args: argparse.Namespace) -> int:
    """Registers `serve`'s URL with MLflow for the alias events, with the shared secret."""
    secret = os.environ.get("SKEDGE_WEBHOOK_SECRET", "") if args.secret is None else args.secret
    if not secret:
        print("sync webhook create: a secret is required (--secret or $SKEDGE_WEBHOOK_SECRET)", file=sys.stderr)
        return EXIT_FAILURE
    client, _ = _client(args.tracking_uri)
    hook = client.create_webhook(name=args.name, url=args.url, events=list(ALIAS_EVENTS), secret=secret,
                                 description="skedge: publish the alias's version to the edge (scripts/sync.py serve)")
    print(f"webhook {hook.webhook_id}: {', '.join(ALIAS_EVENTS)} -> {hook.url}", file=sys.stderr)
    print(hook.webhook_id)
    return EXIT_OK


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description="Keep edge pointers in sync with MLflow model aliases.",
                                     epilog="Exit codes: 0 done or in sync, 1 parity gate failed, 2 unsupported "
                                            "pipeline, 3 other failure.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("reconcile", "publish the alias's version unless the pointer already names it"),
                        ("rollback", "move the alias and the pointer back to the previous generation's version"),
                        ("serve", "receive MLflow webhooks and run reconcile for the model alias they name")):
        sub = commands.add_parser(name, help=help_)
        if name == "serve":
            sub.add_argument("--model", action="append", help="act only on this registered model (repeatable; "
                             "default: any)")
            sub.add_argument("--alias", action="append", help="act only on this alias (repeatable; default: any)")
            sub.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
            sub.add_argument("--port", type=int, default=8788)
            sub.add_argument("--secret", help="the webhook's secret (default: $SKEDGE_WEBHOOK_SECRET, which keeps it "
                             "out of the process list)")
            sub.add_argument("--tolerance", type=float, default=300.0, metavar="SECONDS",
                             help="refuse deliveries whose timestamp is further from now (default 300)")
            sub.add_argument("--parallel", type=int, default=1, help="passes (exports) running at once (default 1)")
            sub.add_argument("--retries", type=int, default=2,
                             help="tries again after a pass that failed for another reason than the version (exit 3)")
        else:
            sub.add_argument("--model", required=True, help="registered model name")
            sub.add_argument("--alias", required=True, help="the alias to follow (production)")
        sub.add_argument("--publish", required=True, metavar="DEST", help="a directory or s3://BUCKET/PREFIX")
        sub.add_argument("--tracking-uri", help="MLflow tracking URI (default: as scripts/export.py)")
        sub.add_argument("--s3-endpoint-url", metavar="URL", help="default: $AWS_ENDPOINT_URL")
        sub.add_argument("--sign-key", type=Path, help="sign the pointer (and the artifact) with this Ed25519 key")
        sub.add_argument("--skedge", type=Path, default=publish.DEFAULT_SKEDGE, help="the skedge CLI")
        if name != "rollback":
            sub.add_argument("--precision", choices=("exact", "compact"), default="exact",
                             help="as scripts/export.py: compact = float16 weights, labels checked by the gate")
            sub.add_argument("--max-label-disagreement", type=float, default=0.0, metavar="PERCENT",
                             help="as scripts/export.py, with --precision compact (default 0: refuse any)")
    hooks = commands.add_parser("webhook", help="register serve's URL with MLflow").add_subparsers(
        dest="action", required=True)
    create = hooks.add_parser("create", help="a webhook for model_version_alias.created and .deleted")
    create.add_argument("--url", required=True, help="serve's URL, e.g. https://sync.example.com/webhook")
    create.add_argument("--secret", help="shared with serve (default: $SKEDGE_WEBHOOK_SECRET)")
    create.add_argument("--name", default="skedge-sync")
    create.add_argument("--tracking-uri", help="MLflow tracking URI (default: as scripts/export.py)")
    args = parser.parse_args(argv)
    try:
        if args.command == "webhook":
            return webhook_create(args)
        return {"reconcile": reconcile, "rollback": rollback, "serve": serve}[args.command](args)
    except publish.PublishError as err:
        print(f"sync: error[{err.code}]: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # MLflow or the store unreachable: 3, never Python's 1 (= the gate refused)
        print(f"sync: error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
