"""The prediction service in Python: the HTTP API of the Worker example, on the Python runtime.

    python -m skedge.service model.skedge --host 127.0.0.1 --port 8000

    GET  /health                      -> {status, model: {name, version, estimator, classes, sha256},
                                          monitoring: null}
    POST /predict {"text": "..."}     -> {label, decision, proba}
    POST /predict {"texts": [...]}    -> {predictions: [{label, decision, proba}, ...]}
    POST /predict {"text": "...", "explain": 5} -> the prediction and its top 5 features

Errors: ``{"error": {"code", "message"}}`` with 400 (bad input), 404 (no route), 405 (not POST),
408 (``BODY_TIMEOUT``: the body not received within ``--body-timeout``, 30 s), 413 (too large),
500 (anything else, without its message). Every input is bounded as in the Worker
(tests/js/examples/worker/src/index.js): a body of at most 16 MiB + 1 KiB, at most 1,000 texts
per request, ``explain`` for at most 50 features of a text of at most 64 Ki characters; a
request's head must arrive within ``--header-timeout`` (10 s) and 16 KiB, or the connection is
closed (``skedge._http``).

The model is loaded once at start (``create_app``), with ``--public-key`` / ``--decryption-key``
(key files) or ``SKEDGE_PUBLIC_KEY`` / ``SKEDGE_DECRYPTION_KEY`` (key text) as the Worker takes
them: a model that does not load stops the start with its code. Needs starlette and uvicorn
(``pip install "skedge[service]"``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
STATUS = {"INVALID_INPUT": 400, "INPUT_TOO_LARGE": 413}


class Failure(Exception):
    """An answer other than 200: status, code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def invalid(message: str) -> Failure:
    return Failure(400, "INVALID_INPUT", message)


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


def create_app(model: Model, body_seconds: float = _http.BODY_SECONDS) -> Starlette:
    """The service around a loaded model; a request's body must arrive within `body_seconds`."""
    info = model.info()
    health = {
        "status": "ok",
        "model": {k: info[k] for k in ("name", "version", "estimator", "classes", "sha256")},
        "monitoring": None,
    }

    async def get_health(request: Request) -> Response:
        return json_response(health)

    async def predict(request: Request) -> Response:
        try:
            body = json.loads((await _http.read_body(request, MAX_BODY_BYTES, body_seconds)).decode("utf-8"))
        except _http.BodyTooLarge:
            raise Failure(413, "INPUT_TOO_LARGE", f"the body is larger than {MAX_BODY_BYTES} bytes") from None
        except _http.BodyTimeout as e:
            raise Failure(408, "BODY_TIMEOUT", str(e)) from None
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
            raise invalid('the body must be JSON: {"text": "..."} or {"texts": [...]}') from None
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
            if len(text) > MAX_EXPLAIN_CHARS:
                raise Failure(
                    413, "INPUT_TOO_LARGE", f"explain takes texts of at most {MAX_EXPLAIN_CHARS} characters"
                )
            return json_response(await run_in_threadpool(model.explain, text, int(explain)))
        return json_response(await run_in_threadpool(model.predict, text))

    async def failure(request: Request, e: Exception) -> Response:
        # A coded error (ours or the runtime's) says what was wrong; anything else is answered
        # without its message.
        if isinstance(e, Failure):
            return error_response(e.status, e.code, str(e))
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
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--public-key", help="refuse the model unless signed by this key file (NAME.pub)")
    parser.add_argument("--decryption-key", help="decrypt the model with this key file")
    parser.add_argument("--header-timeout", type=float, default=_http.HEADER_SECONDS, metavar="SECONDS",
                        help="close a connection whose request head is not complete after this (default %(default)g)")
    parser.add_argument("--body-timeout", type=float, default=_http.BODY_SECONDS, metavar="SECONDS",
                        help="answer 408 to a request whose body is not complete after this (default %(default)g)")
    args = parser.parse_args(argv)
    if _MISSING is not None:
        raise _MISSING
    try:
        model = load(args.model, args.public_key, args.decryption_key)
    except SkedgeError as e:
        print(f"skedge.service: error[{e.code}]: {e}", file=sys.stderr)
        return 1
    _http.serve(create_app(model, args.body_timeout), args.host, args.port, header_seconds=args.header_timeout,
                error_body=lambda code, message: {"error": {"code": code, "message": message}})
    return 0


if __name__ == "__main__":
    sys.exit(_cli.run("service", main))
