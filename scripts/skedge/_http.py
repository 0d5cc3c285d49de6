"""What the package's HTTP servers share (the prediction service, the collector of `report.py
serve`, the webhook of `sync.py serve`): uvicorn with a deadline on each request's head and body
and on writing each response, a bound on the head's size, and a connection closed after an answer
given before its request's body was read whole.

uvicorn times only idle keep-alive, and any byte cancels that: a client that sends half a request
head, or a body a byte a minute, or that never reads its answers, would hold its connection (and,
past `limit_concurrency`, the server) for ever. After an early answer (408, 413, a 404 to a POST)
uvicorn keeps the connection to read the rest of the body, which a client may trickle for ever.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from typing import Any, Callable

#: Seconds to send a request's head (from the connection or the previous response) and its body,
#: and to keep an idle connection.
HEADER_SECONDS, BODY_SECONDS, KEEP_ALIVE_SECONDS = 10.0, 30.0, 5.0
#: Seconds a response may wait on a client that does not read it: from the moment its unsent
#: bytes pass the transport's high-water mark (64 KiB) until they drain under its low-water mark.
WRITE_SECONDS = 30.0
#: The shortest and longest any of these deadlines may be set to (a millisecond: shorter ones
#: would fire before any request is read; a day).
MIN_SECONDS, MAX_SECONDS = 0.001, 86400.0
#: Largest request head (bytes): one still incomplete past it is 400 `INVALID_HTTP` (h11 refuses
#: it, the connection closed), a complete one over it 400 `HEADERS_TOO_LARGE` (`HeadLimit`).
MAX_HEAD_BYTES = 16 << 10


def port(text: str) -> int:
    """`--port` (an argparse type): 1 to 65535. uvicorn would end in a traceback past it."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"error[INVALID_INPUT] a port is an integer from 1 to 65535, not {text!r}")
    return value


def seconds(text: str) -> float:
    """A deadline (an argparse type): a finite number of seconds from `MIN_SECONDS` to
    `MAX_SECONDS`. nan would pass a plain comparison; 0, a negative or a tiny one would fire every
    deadline at once."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and MIN_SECONDS <= value <= MAX_SECONDS):
        raise argparse.ArgumentTypeError(
            f"error[INVALID_INPUT] seconds are a number from {MIN_SECONDS:g} to {MAX_SECONDS:g}, not {text!r}")
    return value


class BodyTooLarge(Exception):
    """The body passed the limit (or its Content-Length says it would)."""


class BodyTimeout(Exception):
    """The body did not arrive within its deadline."""


def body_size(request: Any, limit: int) -> int:
    """The bytes a request's body will take: its Content-Length (h11 delivers no more and refuses a
    malformed one with its 400 before this runs), `limit` for a chunked body, 0 without a body;
    `BodyTooLarge` when it says more than `limit`."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return limit if "transfer-encoding" in request.headers else 0
    if int(length) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    return int(length)


class Budget:
    """The bytes of request bodies a server holds at once. A request whose body would pass it is
    refused at once (503, the client retries) before its body is read: reading every body would let
    256 connections hold their largest bodies together, and waiting for room would let a few slow
    senders hold back every request behind them."""

    def __init__(self, total: int):
        self.total, self.held = total, 0

    def take(self, size: int) -> bool:
        if self.held + size > self.total:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size


async def read_body(request: Any, limit: int, seconds: float) -> bytes:
    """The request's body: at most `limit` bytes, received within `seconds`; past the limit it is
    refused without reading further."""
    body_size(request, limit)

    async def receive() -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(f"the body is larger than {limit} bytes")
        return bytes(body)

    try:
        # wait_for, not asyncio.timeout: the package runs on Python 3.10 too.
        return await asyncio.wait_for(receive(), seconds)
    except asyncio.TimeoutError:
        raise BodyTimeout(f"the body was not received within {seconds:g} s") from None


def head_bytes(scope: dict) -> int:
    """The size of a request's head as h11 parsed it: request line, header lines (`name:value`,
    the shortest form), blank line. Never more than what was sent; less by the whitespace around
    header values, which h11 strips (a head padded so is bounded by h11's own limit on what it
    buffers, `h11_max_incomplete_event_size`, as every head spread over several reads is)."""
    query = scope.get("query_string", b"")
    line = len(scope["method"]) + 1 + len(scope.get("raw_path", b"")) + (1 + len(query) if query else 0) + 11
    return line + sum(len(k) + 1 + len(v) + 2 for k, v in scope.get("headers", ())) + 2


def error_fields(code: str, message: str) -> dict:
    """The collector's and `sync.py serve`'s error body; the prediction service has its own."""
    return {"code": code, "error": message}


class HeadLimit:
    """ASGI middleware answering 400 `HEADERS_TOO_LARGE` to a request whose head is over `limit`
    bytes: h11's `max_incomplete_event_size` bounds only a head still incomplete, so one that
    arrived whole in one read (100 KB of headers in one packet) reached the application."""

    def __init__(self, app: Any, limit: int = MAX_HEAD_BYTES,
                 error_body: Callable[[str, str], dict] = error_fields):  # fmt: skip
        self.app, self.limit, self.error_body = app, limit, error_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or head_bytes(scope) <= self.limit:
            return await self.app(scope, receive, send)
        refusal = self.error_body("HEADERS_TOO_LARGE", f"the request head is larger than {self.limit} bytes")
        body = json.dumps(refusal, separators=(",", ":")).encode()
        # the body is never read: the connection closes after the answer
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


class CloseUnread:
    """ASGI middleware: a response started before its request's body was read whole says
    `connection: close` (h11 then closes the connection once it is sent), and a client gone
    mid-body ends its request quietly.

    uvicorn would keep the connection open to read the rest of the body (discarded), and cancel
    its keep-alive timer at every byte: a client trickling one a second held it for ever. Starlette
    re-raises `ClientDisconnect` after its handlers, which uvicorn logs as a 50-line traceback."""

    def __init__(self, app: Any):
        from starlette.requests import ClientDisconnect  # noqa: PLC0415

        self.app, self.disconnect = app, ClientDisconnect

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # h11 has refused a request with both or a malformed one: no Transfer-Encoding and a
        # Content-Length of 0 (or none) is a request without a body.
        headers = dict(scope.get("headers", ()))
        whole = b"transfer-encoding" not in headers and headers.get(b"content-length", b"0").strip() in (b"0", b"")

        async def reading() -> dict:
            nonlocal whole
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                whole = True  # the last of the body, or the client gone
            return message

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start" and not whole:
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                message = {**message, "headers": [*kept, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, reading, sending)
        except self.disconnect:
            pass  # nobody to answer, nothing to log: the client left before its body was sent


def header_deadline_protocol(seconds: float, write_seconds: float = WRITE_SECONDS,
                             error_body: Callable[[str, str], dict] = error_fields):  # fmt: skip
    """uvicorn's h11 protocol, closing a connection whose request head is not complete `seconds`
    after it opened or after the previous response, or whose response does not drain within
    `write_seconds` once the transport paused writing (a client that does not read, or pipelines
    requests without reading their answers). What h11 refuses (malformed framing, a head still
    incomplete past `MAX_HEAD_BYTES`) is answered 400 `INVALID_HTTP` in `error_body`'s JSON, not
    uvicorn's plain text."""
    import h11  # noqa: PLC0415
    from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: PLC0415

    refusal = json.dumps(error_body("INVALID_HTTP", "the request is not valid HTTP/1.1: malformed framing, "
                                    f"or a head still incomplete past {MAX_HEAD_BYTES} bytes"),
                         separators=(",", ":")).encode()  # fmt: skip

    class HeaderDeadline(H11Protocol):
        _deadline = None
        _write_deadline = None

        def send_400_response(self, msg: str) -> None:
            # uvicorn's own, with a coded body instead of its text
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(refusal)).encode()),
                       (b"connection", b"close")]  # fmt: skip
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                          h11.Data(data=refusal), h11.EndOfMessage()):  # fmt: skip
                self.transport.write(self.conn.send(event))
            self.transport.close()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            self._write_disarm()
            super().connection_lost(exc)

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._write_deadline is None:
                self._write_deadline = self.loop.call_later(write_seconds, self._write_expired)

        def resume_writing(self) -> None:
            self._write_disarm()
            super().resume_writing()

        def _write_disarm(self) -> None:
            if self._write_deadline is not None:
                self._write_deadline.cancel()
                self._write_deadline = None

        def _write_expired(self) -> None:
            self._write_deadline = None
            # abort, not close: close waits for the unsent bytes the client does not read
            self.transport.abort()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

    return HeaderDeadline


def serve(app: Any, host: str, port: int, *, header_seconds: float = HEADER_SECONDS,
          write_seconds: float = WRITE_SECONDS, limit_concurrency: int = 256,
          error_body: Callable[[str, str], dict] = error_fields) -> None:  # fmt: skip
    """Runs `app` until interrupted, one worker, the deadlines and limits above (`error_body`: the
    JSON of a refusal this module answers, from its code and message)."""
    import uvicorn  # noqa: PLC0415

    uvicorn.run(
        CloseUnread(HeadLimit(app, MAX_HEAD_BYTES, error_body)),
        host=host,
        port=port,
        workers=1,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        http=header_deadline_protocol(header_seconds, write_seconds, error_body),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=limit_concurrency,
    )
