"""The example service (`python -m skedge.service`) over real HTTP: a uvicorn process on
127.0.0.1, started and stopped here, answering as the Worker example does."""

from __future__ import annotations

import http.client
import json
import pathlib
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from ports import free_port
import skedge
from skedge import service

REPO = pathlib.Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "fixtures" / "cases"
SKEDGE = REPO / "target" / "release" / "skedge"

pytestmark = pytest.mark.skipif(
    not SKEDGE.exists(), reason=f"{SKEDGE} is not built (cargo build --release)"
)




def start(artifact: pathlib.Path, *args: str, log: pathlib.Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skedge.service", str(artifact), "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 - the child holds it
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the service did not start in 60 s")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("service") / "model.skedge"
    proc = subprocess.run(
        [SKEDGE, "pack", CASES / "lr_multinomial_3class_strings_fr.interchange.json", "-o", out],
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return out


@pytest.fixture(scope="module")
def server(artifact, tmp_path_factory):
    proc, port = start(artifact, log=tmp_path_factory.mktemp("log") / "service.log")
    yield port
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def call(port: int, method: str, path: str, body=None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        assert r.getheader("content-type", "").startswith("application/json"), (r.status, data[:200])
        return r.status, json.loads(data)
    finally:
        conn.close()


def post(port: int, body) -> tuple[int, dict]:
    return call(port, "POST", "/predict", json.dumps(body).encode(), {"content-type": "application/json"})


def expected_texts() -> list[str]:
    lines = (CASES / "lr_multinomial_3class_strings_fr.expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def test_health(server, artifact):
    status, body = call(server, "GET", "/health")
    info = skedge.Model.load(artifact).info()
    assert status == 200
    assert body == {
        "status": "ok",
        "model": {k: info[k] for k in ("name", "version", "estimator", "classes", "sha256")},
        "monitoring": None,
    }


def test_predict_single_batch_and_explain_equal_the_runtime(server, artifact):
    model = skedge.Model.load(artifact)
    texts = expected_texts()[:200]
    for text in texts[:20]:
        assert post(server, {"text": text}) == (200, model.predict(text))
    status, body = post(server, {"texts": texts})
    assert status == 200
    assert body["predictions"] == [model.predict(t) for t in texts]
    status, body = post(server, {"text": texts[0], "explain": 3})
    assert status == 200
    want = model.explain(texts[0], 3)
    want["features"] = [dict(f, spans=[list(s) for s in f["spans"]]) for f in want["features"]]
    assert body == want
    assert post(server, {"text": texts[0], "explain": 0}) == (200, model.predict(texts[0]))
    assert post(server, {"texts": []}) == (200, {"predictions": []})


def test_errors_are_coded_and_bounded(server):
    def code(status_body):
        status, body = status_body
        return status, body["error"]["code"]

    bad_json = call(server, "POST", "/predict", b"{not json")
    assert code(bad_json) == (400, "INVALID_INPUT")
    assert code(call(server, "POST", "/predict", b"\xff\xfe")) == (400, "INVALID_INPUT")
    assert code(call(server, "POST", "/predict", b"[" * 100_000)) == (400, "INVALID_INPUT")
    assert code(post(server, {"text": "lone \ud800"})) == (400, "INVALID_INPUT")
    assert code(post(server, {"texts": ["ok", "lone \udc00"]})) == (400, "INVALID_INPUT")
    for body in ([], {"txt": "x"}, {"text": 3}, {"texts": "x"}, {"texts": ["a", 1]},
                 {"text": "x", "explain": 51}, {"text": "x", "explain": True}, {"text": "x", "explain": 1.5},
                 {"text": "x", "texts": ["y"]}):
        assert code(post(server, body)) == (400, "INVALID_INPUT"), body
    assert code(post(server, {"texts": ["a"] * 1001})) == (413, "INPUT_TOO_LARGE")
    assert code(post(server, {"text": "a" * (64 * 1024 + 1), "explain": 5})) == (413, "INPUT_TOO_LARGE")
    # The engine's limit (16 MiB of UTF-8) inside a body under the service's.
    assert code(post(server, {"text": "a" * (skedge.MAX_TEXT_BYTES + 1)})) == (413, "INPUT_TOO_LARGE")
    assert code(post(server, {"texts": ["ok", "a" * (skedge.MAX_TEXT_BYTES + 1)]})) == (413, "INPUT_TOO_LARGE")
    # A body over the limit, declared or not (chunked: refused once read past the limit).
    chunk = b"a" * 65536
    big = (chunk for _ in range(service.MAX_BODY_BYTES // len(chunk) + 2))
    assert code(call(server, "POST", "/predict", big)) == (413, "INPUT_TOO_LARGE")
    assert code(call(server, "POST", "/predict", b"{}", {"content-length": str(10**12)})) == (413, "INPUT_TOO_LARGE")
    assert code(call(server, "GET", "/predict")) == (405, "METHOD_NOT_ALLOWED")
    assert code(call(server, "POST", "/health")) == (405, "METHOD_NOT_ALLOWED")
    assert code(call(server, "GET", "/nothing")) == (404, "NOT_FOUND")
    # A whole head over 16 KiB (h11 bounds only an incomplete one): refused, in this API's shape.
    assert code(call(server, "GET", "/health", headers={"x-pad": "a" * 20_000})) == (400, "HEADERS_TOO_LARGE")
    # Still serving.
    assert call(server, "GET", "/health")[0] == 200


def test_slow_clients_are_cut_off(artifact, tmp_path):
    """A request head or body sent a byte at a time does not hold its connection (slowloris)."""

    def read_all(s: socket.socket) -> bytes:
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out

    proc, port = start(artifact, "--header-timeout", "1", "--body-timeout", "1", log=tmp_path / "service.log")
    try:
        connect = lambda: socket.create_connection(("127.0.0.1", port), timeout=30)  # noqa: E731
        with connect() as idle:
            assert read_all(idle) == b""  # closed without a request
        with connect() as partial:
            partial.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty")
            assert read_all(partial) == b""
        with connect() as trickle:
            trickle.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"text\": ")
            data = read_all(trickle)
            assert data.startswith(b"HTTP/1.1 408") and b'"BODY_TIMEOUT"' in data, data
        with connect() as keep:  # the next request's head on a kept-alive connection is timed too
            body = b'{"text": "ok"}'
            keep.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            first = b""
            while not first.endswith(b"}"):
                first += keep.recv(65536)
            assert first.startswith(b"HTTP/1.1 200"), first
            keep.sendall(b"GET /health HTTP/1.1\r\nHo")
            assert read_all(keep) == b""
        with connect() as big:
            big.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (64 << 10))
            assert read_all(big).startswith(b"HTTP/1.1 400")  # an unfinished head over 16 KiB
        assert post(port, {"text": "still serving"})[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_a_model_that_does_not_load_stops_the_start(artifact, tmp_path):
    bad = tmp_path / "bad.skedge"
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    for path, args, code in (
        (bad, [], "ARTIFACT_CORRUPT"),
        (tmp_path / "missing.skedge", [], "IO"),
        (artifact, ["--public-key", str(tmp_path / "missing.pub")], "IO"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "skedge.service", str(path), "--port", str(free_port()), *args],
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 1
        assert f"error[{code}]" in proc.stderr.decode()


def test_non_finite_numbers_are_json_null_as_the_cli_writes_them():
    """A model whose own numbers give a NaN decision (scikit-learn's too) still answers JSON:
    `json.dumps` alone would write `NaN`, which JSON parsers refuse."""

    def strict(text: str):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the body"))

    body = service.json_response({"label": 1, "decision": [float("nan")], "proba": [float("inf"), 0.5]}).body
    assert strict(body.decode()) == {"label": 1, "decision": [None], "proba": [None, 0.5]}
    assert strict(service.json_response({"decision": [1.5]}).body.decode()) == {"decision": [1.5]}


def _answer_then_end(s: socket.socket, trickle: bytes, rounds: int = 60) -> tuple[bytes, bool]:
    """What the server sends, and whether it ended the connection, while the client sends
    `trickle` whenever nothing arrived for a second (at most `rounds` of them: a guard, not a
    deadline). An ended connection may read as EOF or as a reset (bytes were still arriving)."""
    got = b""
    for _ in range(rounds):
        readable, _, _ = select.select([s], [], [], 1)
        if readable:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
            continue
        try:
            s.sendall(trickle)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server is gone: what it sent is still to be read
    return got, False


def test_an_early_answer_closes_the_connection_though_the_client_trickles(artifact, tmp_path):
    """A response sent before the body was read whole (408, 413, 404 or 405 to a request with a
    body) closes the connection: uvicorn kept it to read the rest of the body, and a client
    trickling a byte a second held it for ever; 255 of them made every other request 503."""
    proc, port = start(artifact, "--body-timeout", "1", log=tmp_path / "service.log")
    cases = {
        "408": (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"text\": ", b" "),
        "408 chunked": (b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\n \r\n"),
        "413": (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", b"x" * 1000),
        "404": (b"POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab", b" "),
        "405": (b"PUT /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab", b" "),
    }
    try:
        for name, (head, trickle) in cases.items():
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(head)
                got, ended = _answer_then_end(s, trickle)
            assert got.startswith(b"HTTP/1.1 " + name[:3].encode()), (name, got)
            assert b"connection: close" in got.lower(), (name, got)
            assert ended, (name, got)
        assert post(port, {"text": "still serving"})[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_a_client_that_does_not_read_its_answers_is_cut_off(artifact, tmp_path):
    """Pipelined explain requests whose answers are never read: the connection is closed once a
    response has waited `--write-timeout` on the client, not held for ever."""
    text = " ".join(expected_texts())
    while len(text) < 65536:
        text += " " + text
    # under the explain limit (the texts hold emoji: 2 UTF-16 units each); each answer some 170 KB
    body = json.dumps({"text": text[:60000], "explain": 50}).encode()
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    proc, port = start(artifact, "--write-timeout", "1", log=tmp_path / "service.log")
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        with s:
            try:
                for _ in range(200):
                    s.sendall(request)
            except (socket.timeout, ConnectionResetError, BrokenPipeError):
                pass  # the server stopped reading (its answers wait) or closed already
            # The connection's state, read without reading the answers (which would let them drain).
            for _ in range(120):
                state = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
                if state not in (1, 4, 5):  # ESTABLISHED, FIN_WAIT1, FIN_WAIT2: still ours
                    break
                time.sleep(0.5)
            assert state not in (1, 4, 5), state  # CLOSE (reset) or CLOSE_WAIT (the server's FIN)
        assert post(port, {"text": "still serving"})[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_a_client_gone_mid_body_leaves_no_traceback(artifact, tmp_path):
    log = tmp_path / "service.log"
    proc, port = start(artifact, log=log)
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"text\": ")
            # the next request is answered after the loop saw the disconnect
            assert post(port, {"text": "still serving"})[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text() and "ClientDisconnect" not in log.read_text(), log.read_text()


def _post_raw(port: int, body: bytes) -> tuple[int, bytes, bytes]:
    """POST /predict on a connection of its own, the body sent beside the answer's reading (a
    server answering early may close before it is all sent): status, head, body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        head = b"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)

        def send() -> None:
            try:
                s.sendall(head + body)
            except OSError:
                pass  # answered and closed before the whole body was sent

        sender = threading.Thread(target=send)
        sender.start()
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass  # the close of a connection with unread bytes: what came before it was read
        sender.join()
    answer_head, _, answer_body = got.partition(b"\r\n\r\n")
    return int(answer_head.split(b" ")[1]), answer_head.lower(), answer_body


def test_bodies_past_the_body_memory_are_refused_unread_and_retried(artifact, tmp_path):
    """`--body-memory`: while a client sends a 16 MiB body, a request whose body would take the
    bodies held past 17 MiB is 503 BUSY with retry-after, at once and unread; smaller ones and
    requests without a body are served; once the large body is gone, the refused one is served.
    Without it 256 connections could make the service hold 4 GiB of bodies."""
    proc, port = start(artifact, "--body-memory", "17", log=tmp_path / "service.log")
    two_mib = json.dumps({"text": "bien " * (2 << 18)}).encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as large:
            large.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{\"text\": \"" % (16 << 20))
            # served until the service has read the large request's head (a guard, not a deadline)
            for _ in range(600):
                status, head, body = _post_raw(port, two_mib)
                if status == 503:
                    break
            assert (status, json.loads(body)["error"]["code"]) == (503, "BUSY"), body
            assert b"\r\nretry-after: 1" in head and b"\r\nconnection: close" in head, head
            assert post(port, {"text": "petit"})[0] == 200
            assert call(port, "GET", "/health")[0] == 200
        # the large body's client gone, its bytes are given back (a guard again)
        for _ in range(600):
            if (status := _post_raw(port, two_mib)[0]) != 503:
                break
            time.sleep(0.1)
        assert status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


@pytest.mark.parametrize("args", [
    ["--port", "99999"], ["--port", "0"], ["--port", "x"], ["--body-timeout", "nan"], ["--header-timeout", "-1"],
    ["--write-timeout", "inf"], ["--body-timeout", "0"], ["--header-timeout", "1e9"], ["--body-timeout", "1e-300"],
    ["--body-memory", "16"], ["--body-memory", "x"], ["--body-memory", "-5"], ["--body-memory", "99999999"],
])  # fmt: skip
def test_bad_options_are_usage_errors(args, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "skedge.service", str(tmp_path / "m.skedge"), *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and f"argument {args[0]}: error[INVALID_INPUT]" in proc.stderr, proc.stderr


def test_what_h11_refuses_is_answered_in_the_services_json(server):
    """Malformed framing and an unfinished head over 16 KiB: uvicorn answered them in plain text."""
    for raw in (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (64 << 10)):  # fmt: skip
        with socket.create_connection(("127.0.0.1", server), timeout=30) as s:
            s.sendall(raw)
            got = b""
            while chunk := s.recv(65536):
                got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in head.lower(), got
        assert json.loads(body)["error"]["code"] == "INVALID_HTTP", got


def test_non_standard_json_constants_are_refused_as_the_worker_does(server):
    """JSON.parse refuses NaN and Infinity (400 INVALID_INPUT in the Worker); json.loads took them."""
    for raw in (b'{"text": "a", "x": NaN}', b'{"text": "a", "x": -Infinity}', b'{"texts": ["a"], "x": [Infinity]}',
                b'{"text": "a", "explain": NaN}'):  # fmt: skip
        status, body = call(server, "POST", "/predict", raw)
        assert (status, body["error"]["code"]) == (400, "INVALID_INPUT"), raw
    assert call(server, "POST", "/predict", b'{"text": "a", "x": 1e999}')[0] == 200  # JSON.parse's Infinity too


def test_the_explain_limit_counts_utf16_units_as_the_worker(server):
    """The Worker's `text.length` counts a character outside the BMP as 2: 40,000 emoji are 80,000
    units there, over the 65,536 explain takes, and so here."""
    def status(text: str) -> int:
        return post(server, {"text": text, "explain": 1})[0]

    assert status("\U0001F600" * 32768) == 200  # 65,536 units
    assert status("\U0001F600" * 32768 + "a") == 413
    assert status("\U0001F600" * 40000) == 413
    assert status("é" * 65536) == 200  # in the BMP: a unit a character


def test_unknown_keys_are_ignored_but_a_body_of_many_values_is_refused_unparsed(server):
    """Unknown keys are ignored, as the Worker ignores them; but `[{},{},...]` costs ~30 times its
    size parsed (8 MB took 225 MB), so a body of more than 4,096 values is 413 before parsing."""
    assert post(server, {"text": "a", "meta": {"id": 3, "tags": ["x", "y"]}})[0] == 200
    assert post(server, {"texts": ["a, \"b\"\\"] * 1000, "meta": [1] * 2000})[0] == 200  # commas in texts
    many = b'{"text": "a", "x": [' + b",".join([b"{}"] * 4096) + b"]}"
    status, body = call(server, "POST", "/predict", many)
    assert (status, body["error"]["code"]) == (413, "INPUT_TOO_LARGE"), body
    assert service.too_many_values(b'{"x":[' + b",".join([b'""'] * 3000) + b"]}")
    assert not service.too_many_values(json.dumps({"texts": [",,,\"\\" * 100] * 1000}).encode())
