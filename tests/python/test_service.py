"""The example service (`python -m skedge.service`) over real HTTP: a uvicorn process on
127.0.0.1, started and stopped here, answering as the Worker example does."""

from __future__ import annotations

import http.client
import json
import pathlib
import signal
import socket
import subprocess
import sys
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
