"""The prediction service in Python: the HTTP API of the Worker example, on the Python runtime.

    python -m skedge.service model.skedge --host 127.0.0.1 --port 8000

    GET  /health                      -> {status, model: {name, version, estimator, classes, sha256},
                                          monitoring: null}
    POST /predict {"text": "..."}     -> {label, decision, proba}
    POST /predict {"texts": [...]}    -> {predictions: [{label, decision, proba}, ...]}
    POST /predict {"text": "...", "explain": 5} -> the prediction and its top 5 features

Errors: ``{"error": {"code", "message"}}`` with 400 (bad input, and JSON's non-standard NaN,
Infinity and -Infinity, which the Worker's JSON.parse refuses too), 404 (no route), 405 (not POST),
408 (``BODY_TIMEOUT``: the body not received within ``--body-timeout``, 30 s), 413 (too large),
503 (``BUSY``, with ``retry-after: 1``: the body would take the bodies of the requests in
progress past ``--body-memory``, 64 MiB, so it is not read), 500 (anything else, without its
message). Every input is bounded as in the Worker (tests/js/examples/worker/src/index.js): a
body of at most 16 MiB + 1 KiB, at most 1,000 texts
per request, ``explain`` for at most 50 features of a text of at most 64 Ki characters (UTF-16
code units, the Worker's ``text.length``: a character outside the BMP counts 2); a request's head
must arrive within ``--header-timeout`` (10 s) and 16 KiB, a response must drain within
``--write-timeout`` (30 s), or the connection is closed (``skedge._http``). Unknown keys are
ignored, as in the Worker, but a body of more than 4,096 JSON values (strings, and commas outside
strings) is 413 ``INPUT_TOO_LARGE`` before it is parsed, where the Worker parses it: parsing
``[{},{},...]`` costs some 30 times its size in memory. Bodies over 1 MiB are parsed (in the threadpool) and
predicted two at a time.

The model is loaded once at start (``create_app``), with ``--public-key`` / ``--decryption-key``
(key files) or ``SKEDGE_PUBLIC_KEY`` / ``SKEDGE_DECRYPTION_KEY`` (key text) as the Worker takes
them: a model that does not load stops the start with its code. Needs starlette and uvicorn
(``pip install "skedge[service]"``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from . import MAX_TEXT_BYTES, Model, SkedgeError, _cli, _http

try:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
except ModuleNotFoundError as _err:
    # The [service] extra: `--help` works without it, `main` then says what to install.
    _MISSING: ModuleNotFoundError | None = _cli.extra_missing(_err, "service")
    if _MISSING is None:
        raise
    Starlette = run_in_threadpool = Request = Response = Route = _cli.Absent(_MISSING)
else:
    _MISSING = None

MAX_BODY_BYTES = MAX_TEXT_BYTES + 1024  # one text at the engine's limit, as JSON
MAX_TEXTS = 1000
MAX_EXPLAIN_FEATURES = 50
MAX_EXPLAIN_CHARS = 64 * 1024
#: The most JSON values a body may hold (see `too_many_values`); 1,000 texts are 2,000.
MAX_VALUES = 4096
#: Bodies over this many bytes are parsed (in the threadpool) and predicted at most `LARGE_AT_ONCE`
#: at a time: each costs up to 8 times its size while parsed (decoded, 4 bytes a character past
#: the BMP), and its text's tokens while predicted.
LARGE_BODY_BYTES, LARGE_AT_ONCE = 1 << 20, 2
STATUS = {"INVALID_INPUT": 400, "INPUT_TOO_LARGE": 413}
#: Bytes of request bodies held at once (`--body-memory`, in MiB), and the least it may be: one
#: largest body. 256 connections sending 16 MiB each would otherwise hold 4 GiB.
BODY_MEMORY, MIN_BODY_MEMORY_MIB = 64 << 20, 17


class Failure(Exception):
    """An answer other than 200: status, code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def invalid(message: str) -> Failure:
    return Failure(400, "INVALID_INPUT", message)


_TOKEN = re.compile(rb'"[^"]*"|,')


def too_many_values(body: bytes) -> bool:
    """Whether `body` holds more than `MAX_VALUES` strings and commas outside strings: each value
    json.loads allocates is a string or follows a comma, but for one per level of nesting (at most
    the recursion limit, past which the body is 400). A body of small values is refused before it
    is parsed (an 8 MB `[{},{},...]` took 225 MB); one long text is scanned once at C speed, and
    the scan stops at the limit."""
    if body.count(b",") + body.count(b'"') // 2 <= MAX_VALUES:
        return False  # an upper bound: commas and quotes inside strings counted too
    # Escapes removed left to right (`\\` first) leave every string as `"[^"]*"`; in valid JSON a
    # backslash appears only inside a string.
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    for n, _ in enumerate(_TOKEN.finditer(plain), 1):
        if n > MAX_VALUES:
            return True
    return False


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # JSON.parse refuses NaN and Infinity: so does the Worker


def parse(body: bytes) -> Any:
    """The request's JSON, or `Failure`: 413 past `MAX_VALUES`, 400 for anything not JSON."""
    if too_many_values(body):
        raise Failure(413, "INPUT_TOO_LARGE", f"the body holds more than {MAX_VALUES} JSON values")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep, NaN
        raise invalid('the body must be JSON: {"text": "..."} or {"texts": [...]}') from None


def utf16_length(text: str) -> int:
    """`text.length` in JS: a character outside the BMP is 2 UTF-16 code units (lone surrogates,
    which JSON can carry as escapes, 1)."""
    if len(text) > MAX_EXPLAIN_CHARS:  # never fewer units than characters: not worth encoding
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _finite(value: Any) -> Any:
    """NaN and infinities as JSON `null`, as the CLI writes them (`json.dumps` writes `NaN`, which
    is not JSON). A decision is NaN only for a model whose own numbers give it, scikit-learn's too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def json_response(body: Any, status: int = 200) -> Response:
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere: the rare case pays the walk
        text = json.dumps(_finite(body), ensure_ascii=False, separators=(",", ":"))
    return Response(
        text,
        status_code=status,
        media_type="application/json; charset=utf-8",
    )


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


def is_integer(v: Any) -> bool:
    """JS's Number.isInteger on a JSON value (5 and 5.0, not true)."""
    return (type(v) is int) or (type(v) is float and v.is_integer())


def rows(batch: dict) -> list[dict]:
    """`predict_batch`'s stacked arrays as the Worker's list of predictions."""
    proba = batch["proba"].tolist() if batch["proba"] is not None else None
    return [
        {"label": label, "decision": decision, "proba": proba[i] if proba is not None else None}
        for i, (label, decision) in enumerate(zip(batch["label"], batch["decision"].tolist()))
    ]


def create_app(model: Model, body_seconds: float = _http.BODY_SECONDS, body_memory: int = BODY_MEMORY) -> Starlette:
    """The service around a loaded model; a request's body must arrive within `body_seconds`, and
    the bodies of the requests in progress hold at most `body_memory` bytes."""
    info = model.info()
    health = {
        "status": "ok",
        "model": {k: info[k] for k in ("name", "version", "estimator", "classes", "sha256")},
        "monitoring": None,
    }

    async def get_health(request: Request) -> Response:
        return json_response(health)

    large = asyncio.Semaphore(LARGE_AT_ONCE)
    bodies = _http.Budget(body_memory)

    async def predict(request: Request) -> Response:
        try:
            size = _http.body_size(request, MAX_BODY_BYTES)
        except _http.BodyTooLarge:
            raise Failure(413, "INPUT_TOO_LARGE", f"the body is larger than {MAX_BODY_BYTES} bytes") from None
        if not bodies.take(size):
            raise Failure(503, "BUSY", f"the service holds at most {bodies.total} bytes of request bodies at once: retry")
        try:
            return await received(request)
        finally:
            bodies.give(size)

    async def received(request: Request) -> Response:
        try:
            # in a list that `answer` empties: no frame keeps the body once its text is parsed
            held = [await _http.read_body(request, MAX_BODY_BYTES, body_seconds)]
        except _http.BodyTooLarge:
            raise Failure(413, "INPUT_TOO_LARGE", f"the body is larger than {MAX_BODY_BYTES} bytes") from None
        except _http.BodyTimeout as e:
            raise Failure(408, "BODY_TIMEOUT", str(e)) from None
        if len(held[0]) <= LARGE_BODY_BYTES:
            return await answer(held)  # parsed in microseconds: not worth a thread
        # Off the event loop, and a few at a time: the memory of the large bodies parsed and
        # predicted at once is bounded (json.loads holds the GIL: the scan keeps each call short).
        async with large:
            return await answer(held, threaded=True)

    async def answer(held: list, threaded: bool = False) -> Response:
        raw = held.pop()
        body = await run_in_threadpool(parse, raw) if threaded else parse(raw)
        del raw
        if not isinstance(body, dict) or not ("text" in body or "texts" in body):
            raise invalid('expected {"text": "..."} or {"texts": [...]}')
        if "text" in body and "texts" in body:  # answering one would drop the other silently
            raise invalid('give "text" or "texts", not both')
        if "texts" in body:
            texts = body["texts"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise invalid('"texts" must be an array of strings')
            if len(texts) > MAX_TEXTS:
                raise Failure(413, "INPUT_TOO_LARGE", f"at most {MAX_TEXTS} texts per request")
            batch = await run_in_threadpool(model.predict_batch, texts)
            return json_response({"predictions": rows(batch)})
        text, explain = body["text"], body.get("explain")
        if not isinstance(text, str):
            raise invalid('"text" must be a string')
        if explain not in (None, False, 0):
            if not is_integer(explain) or not 1 <= explain <= MAX_EXPLAIN_FEATURES:
                raise invalid(f'"explain" must be an integer from 1 to {MAX_EXPLAIN_FEATURES}')
            if utf16_length(text) > MAX_EXPLAIN_CHARS:
                raise Failure(
                    413, "INPUT_TOO_LARGE", f"explain takes texts of at most {MAX_EXPLAIN_CHARS} characters"
                )
            return json_response(await run_in_threadpool(model.explain, text, int(explain)))
        return json_response(await run_in_threadpool(model.predict, text))

    async def failure(request: Request, e: Exception) -> Response:
        # A coded error (ours or the runtime's) says what was wrong; anything else is answered
        # without its message.
        if isinstance(e, Failure):
            response = error_response(e.status, e.code, str(e))
            if e.status == 503:
                response.headers["retry-after"] = "1"
            return response
        if isinstance(e, SkedgeError):
            return error_response(STATUS.get(e.code, 500), e.code, str(e))
        return error_response(500, "INTERNAL", "internal error")

    async def not_found(request: Request, e: Exception) -> Response:
        return error_response(404, "NOT_FOUND", f"no route {request.url.path}")

    async def not_allowed(request: Request, e: Exception) -> Response:
        allowed = "GET" if request.url.path == "/health" else "POST"
        return error_response(405, "METHOD_NOT_ALLOWED", f"use {allowed}")

    return Starlette(
        routes=[
            Route("/health", get_health, methods=["GET"]),
            Route("/predict", predict, methods=["POST"]),
        ],
        exception_handlers={
            404: not_found,
            405: not_allowed,
            Failure: failure,
            SkedgeError: failure,
            Exception: failure,
        },
    )


def body_memory_mib(text: str) -> int:
    """`--body-memory` (an argparse type): whole MiB, at least one largest body's, at most 1 TiB."""
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 7 else 0
    if not MIN_BODY_MEMORY_MIB <= value <= 1 << 20:
        raise argparse.ArgumentTypeError(
            f"error[INVALID_INPUT] the body memory is a whole number of MiB from {MIN_BODY_MEMORY_MIB} "
            f"(one largest body) to {1 << 20}, not {text!r}")
    return value


def load(path: str | os.PathLike, public_key: str | None = None, decryption_key: str | None = None) -> Model:
    """The model, with key files given or the keys' text from SKEDGE_PUBLIC_KEY /
    SKEDGE_DECRYPTION_KEY (the Worker's variables)."""
    pub = Path(public_key) if public_key else os.environ.get("SKEDGE_PUBLIC_KEY") or None
    dec = Path(decryption_key) if decryption_key else os.environ.get("SKEDGE_DECRYPTION_KEY") or None
    return Model.load(path, public_key=pub, decryption_key=dec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skedge.service", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="the artifact (.skedge)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_http.port, default=8000)
    parser.add_argument("--public-key", help="refuse the model unless signed by this key file (NAME.pub)")
    parser.add_argument("--decryption-key", help="decrypt the model with this key file")
    parser.add_argument("--header-timeout", type=_http.seconds, default=_http.HEADER_SECONDS, metavar="SECONDS",
                        help="close a connection whose request head is not complete after this (default %(default)g)")
    parser.add_argument("--body-timeout", type=_http.seconds, default=_http.BODY_SECONDS, metavar="SECONDS",
                        help="answer 408 to a request whose body is not complete after this (default %(default)g)")
    parser.add_argument("--write-timeout", type=_http.seconds, default=_http.WRITE_SECONDS, metavar="SECONDS",
                        help="close a connection whose client does not read a response for this long "
                             "(default %(default)g)")
    parser.add_argument("--body-memory", type=body_memory_mib, default=BODY_MEMORY >> 20, metavar="MIB",
                        help="answer 503 BUSY (retry-after: 1) to a request whose body would take the bodies of the "
                             "requests in progress past this many MiB (default %(default)s)")
    args = parser.parse_args(argv)
    if _MISSING is not None:
        raise _MISSING
    try:
        model = load(args.model, args.public_key, args.decryption_key)
    except SkedgeError as e:
        print(f"skedge.service: error[{e.code}]: {e}", file=sys.stderr)
        return 1
    _http.serve(create_app(model, args.body_timeout, args.body_memory << 20), args.host, args.port, header_seconds=args.header_timeout,
                write_seconds=args.write_timeout, error_body=lambda code, message: {"error": {"code": code, "message": message}})
    return 0


if __name__ == "__main__":
    sys.exit(_cli.run("service", main))
