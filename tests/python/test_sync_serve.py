"""`scripts/sync.py serve` (issue #14 item 2) between a real `mlflow server` (sqlite) that sends
model-registry webhooks and a real serve process, both on 127.0.0.1: an alias move publishes the
alias's version; a delivery with a bad signature, a stale timestamp or a replayed id is refused; a
version the exporter refuses is tagged and never published; two racing moves end on the later one;
a deleted alias leaves the pointer as it was; a webhook dropped while serve is down is repaired by `reconcile`. Webhooks to loopback are allowed
only in this test's MLflow (MLFLOW_WEBHOOK_ALLOWED_SCHEMES, MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS).
Outcomes are awaited (serve's /health, the pointer, the tags) with generous deadlines, never timed."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import REPO, SKEDGE, _free_port, _http_ok, _stop_group, _wait_until, binary_corpus, dev_script, requires_skedge

from skedge import publish, sync

SECRET = "webhook-secret-for-tests-only"
MODEL, ALIAS = "edge_serve", "production"


def _env(**extra) -> dict:
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "scripts"), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@contextlib.contextmanager
def _process(cmd, log_path: Path, env: dict, health: str):
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            _wait_until(lambda: _http_ok(health), proc, cmd[3], 120, log_path)
            yield proc
        finally:
            _stop_group(proc)


@pytest.fixture(scope="module")
def mlflow_hooks(tmp_path_factory):
    """An `mlflow server` of its own that delivers webhooks to loopback (the session's does not)."""
    from cryptography.fernet import Fernet

    base = tmp_path_factory.mktemp("mlflow-hooks")
    port = _free_port()
    # MLflow caches each event's webhooks for MLFLOW_WEBHOOK_CACHE_TTL (60 s): not here, where each
    # test makes its own webhook (or updates one) and moves aliases at once.
    env = _env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
               MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true", MLFLOW_WEBHOOK_CACHE_TTL="0",
               MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=Fernet.generate_key().decode())
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}",
           "--default-artifact-root", str(base / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    with _process(cmd, base / "server.log", env, uri + "/health"):
        yield {"uri": uri, "base": base}


def _serve_cmd(uri, dest, port, key):
    return [sys.executable, "-m", "skedge.sync", "serve", "--publish", str(dest), "--port", str(port),
            "--tracking-uri", uri, "--sign-key", str(key), "--skedge", str(SKEDGE), "--model", MODEL,
            "--retries", "0"]  # fmt: skip


def _health(url) -> dict:
    with urllib.request.urlopen(url + "/health", timeout=5) as r:
        return json.loads(r.read())


def _settled(url, accepted: int, timeout: float = 300, tags: int = 0) -> dict:
    """serve's /health once it accepted `accepted` alias deliveries and `tags` of a version's
    `skedge.sha256` set (each export writing a version's bytes sends one), and no pass runs or
    waits, nor are a version's aliases being read."""
    deadline = time.monotonic() + timeout
    while True:
        h = _health(url)
        busy = h["resolving"] or any(s["running"] or s["queued"] for s in h["syncs"].values())
        done = h["deliveries"]
        if done.get("accepted", 0) >= accepted and done.get("accepted_tag", 0) >= tags and not busy:
            return h
        assert time.monotonic() < deadline, f"serve did not settle: {h}"
        time.sleep(0.5)


def _post(url, body: bytes, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/webhook", data=body, method="POST",
                                 headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _signed(body: bytes, *, delivery_id=None, stamp=None, secret=SECRET) -> dict:
    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(int(time.time()) if stamp is None else stamp)
    return {"X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": sync.signature(secret.encode(), delivery_id, stamp, body)}


def _register(uri, pipes) -> list:
    train_demo = dev_script("train_demo")

    texts, _ = binary_corpus(300)
    return [str(train_demo.log_and_register(p, MODEL, tracking_uri=uri, example_texts=texts[:5],
                                            experiment="skedge-serve", alias=None, stage=None)["version"])
            for p in pipes]  # fmt: skip


@requires_skedge
def test_serve_follows_alias_moves_and_refuses_bad_deliveries(mlflow_hooks, tmp_path):
    from mlflow import MlflowClient
    from sklearn.preprocessing import Normalizer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    uri = mlflow_hooks["uri"]
    texts, labels = binary_corpus(300)
    fitted = [make_pipeline(TfidfVectorizer(), LogisticRegression(C=c, max_iter=2000)).fit(texts, labels)
              for c in (1.0, 10.0, 3.0)]  # fmt: skip
    unsupported = make_pipeline(TfidfVectorizer(), Normalizer(norm="max"), LogisticRegression(max_iter=2000))
    v1, v2, v3, bad = _register(uri, [*fitted, unsupported.fit(texts, labels)])
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    subprocess.run([str(SKEDGE), "keygen", str(tmp_path / "edge")], check=True, capture_output=True)
    key, pub = tmp_path / "edge.key", tmp_path / "edge.pub"
    dest = tmp_path / "edge"
    pointer = dest / "pointers" / MODEL / f"{ALIAS}.json"

    def stored() -> dict:
        return publish.verify_pointer(pointer.read_bytes(), skedge=SKEDGE, public_keys=[pub])

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    assert sync.main(["webhook", "create", "--url", f"{url}/webhook", "--secret", SECRET,
                      "--tracking-uri", uri]) == 0  # fmt: skip
    env = _env(SKEDGE_WEBHOOK_SECRET=SECRET)
    with _process(_serve_cmd(uri, dest, port, key), tmp_path / "serve.log", env, url + "/health"):
        # A real alias move: MLflow's delivery prompts a pass, which publishes v1 and tags it (its
        # export's skedge.sha256 prompts one more pass, in sync).
        client.set_registered_model_alias(MODEL, ALIAS, v1)
        _settled(url, 1, tags=1)
        first = stored()
        assert (first["version"], first["generation"]) == (v1, 1)
        assert client.get_model_version(MODEL, v1).tags["skedge.published"] == f"{dest} generation 1"

        # Deliveries that are not MLflow's: refused, no pass started.
        body = json.dumps({"entity": "model_version_alias", "action": "created", "timestamp": "",
                           "data": {"name": MODEL, "alias": ALIAS, "version": v2}}).encode()  # fmt: skip
        passes = _health(url)["syncs"][f"{MODEL}@{ALIAS}"]["passes"]
        refused = {
            "bad signature": _post(url, body, _signed(body, secret="not-the-secret")),
            "no signature": _post(url, body, {k: v for k, v in _signed(body).items() if k != "X-MLflow-Signature"}),
            "tampered body": _post(url, body.replace(b'"version"', b'"versioN"'), _signed(body)),
            "stale timestamp": _post(url, body, _signed(body, stamp=int(time.time()) - 3600)),
            "future timestamp": _post(url, body, _signed(body, stamp=int(time.time()) + 3600)),
            "not a number": _post(url, body, _signed(body, stamp="soon")),
        }
        assert {k: (s, b["code"]) for k, (s, b) in refused.items()} == {
            "bad signature": (401, "SIGNATURE_INVALID"),
            "no signature": (401, "SIGNATURE_MISSING"),
            "tampered body": (401, "SIGNATURE_INVALID"),
            "stale timestamp": (401, "TIMESTAMP_STALE"),
            "future timestamp": (401, "TIMESTAMP_STALE"),
            "not a number": (400, "BAD_REQUEST"),
        }
        # A valid delivery is only a prompt: its payload names v2, the alias still names v1, and
        # the pass resolves the alias itself. Its replay is recognised and starts nothing.
        headers = _signed(body)
        status, answer = _post(url, body, headers)
        assert status == 202 and answer["accepted"] == "model_version_alias.created"
        h = _settled(url, 2)
        assert _post(url, body, headers) == (200, {"duplicate": True, "delivery_id": headers["X-MLflow-Delivery-Id"]})
        assert h["syncs"][f"{MODEL}@{ALIAS}"]["passes"] == passes + 1
        assert stored() == first

        # Two racing moves end on the later one (the deliveries may arrive in either order).
        client.set_registered_model_alias(MODEL, ALIAS, v2)
        client.set_registered_model_alias(MODEL, ALIAS, v3)
        _settled(url, 4)
        last = stored()
        assert last["version"] == v3 and last["generation"] in (2, 3)

        # A version the exporter refuses: tagged with the reason, nothing published.
        files = sorted(p.relative_to(dest) for p in dest.rglob("*") if ".lock" not in p.name)
        client.set_registered_model_alias(MODEL, ALIAS, bad)
        _settled(url, 5)
        tags = client.get_model_version(MODEL, bad).tags
        assert tags["skedge.sync"].startswith("refused: unsupported pipeline"), tags
        assert "skedge.published" not in tags
        assert stored() == last
        assert sorted(p.relative_to(dest) for p in dest.rglob("*") if ".lock" not in p.name) == files

        # The alias deleted: the pass finds no version (exit 3) and the pointer keeps the last good one.
        client.delete_registered_model_alias(MODEL, ALIAS)
        h = _settled(url, 6)
        assert h["syncs"][f"{MODEL}@{ALIAS}"]["last"]["exit"] == sync.EXIT_FAILURE
        assert stored() == last

        client.set_registered_model_alias(MODEL, ALIAS, v3)
        _settled(url, 7)
        assert stored() == last  # in sync: nothing written

    # serve is down: the delivery of this move is dropped (MLflow gives up after its retries).
    client.set_registered_model_alias(MODEL, ALIAS, v1)
    assert stored() == last
    argv = ["--model", MODEL, "--alias", ALIAS, "--publish", str(dest), "--tracking-uri", uri,
            "--sign-key", str(key), "--skedge", str(SKEDGE)]  # fmt: skip
    assert sync.main(["reconcile", *argv]) == 0
    repaired = stored()
    assert (repaired["version"], repaired["generation"], repaired["previous_sha256"]) == (
        v1, last["generation"] + 1, last["sha256"])
    assert repaired["sha256"] == first["sha256"]  # the same version exports the same bytes


def _wait_for(what: str, check, log: Path, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} did not happen; serve's log:\n{log.read_text()}"
        time.sleep(0.5)


@requires_skedge
def test_a_forced_re_export_is_published_by_serve_to_every_alias_naming_the_version(mlflow_hooks, tmp_path):
    """`export.py --model-uri models:/NAME/V --force` replaces the version's bytes in the registry,
    its `skedge.sha256` tag last. MLflow delivers that as `model_version_tag.set`; serve asks MLflow
    which aliases name V and runs each one's pass, which finds its pointer's blob holding another
    body and publishes the registry's (no alias moved: before, nothing reached the edge until
    cron's reconcile). An alias naming another version gets no pass; other tags prompt nothing. A
    webhook made before the tag event was subscribed to is updated by `webhook create`, not
    doubled."""
    from mlflow import MlflowClient
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train_demo = dev_script("train_demo")
    uri, name = mlflow_hooks["uri"], "edge_forced"
    texts, labels = binary_corpus(300)
    v1, v2 = (str(train_demo.log_and_register(
        make_pipeline(TfidfVectorizer(), LogisticRegression(C=c, max_iter=2000)).fit(texts, labels), name,
        tracking_uri=uri, example_texts=texts[:5], experiment="skedge-serve", alias=None, stage=None)["version"])
        for c in (1.0, 10.0))  # fmt: skip
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    subprocess.run([str(SKEDGE), "keygen", str(tmp_path / "edge")], check=True, capture_output=True)
    key, pub = tmp_path / "edge.key", tmp_path / "edge.pub"
    dest = tmp_path / "edge"
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("text\n" + "".join(t + "\n" for t in texts[:150]), encoding="utf-8")
    env = _env(SKEDGE_WEBHOOK_SECRET=SECRET)
    common = ["--tracking-uri", uri, "--skedge", str(SKEDGE), "--sign-key", str(key)]

    def export(*argv):
        subprocess.run([sys.executable, "-m", "skedge.export", *argv, *common], check=True, env=env,
                       capture_output=True)

    def stored(alias) -> dict:
        return publish.verify_pointer((dest / publish.pointer_key(name, alias)).read_bytes(), skedge=SKEDGE,
                                      public_keys=[pub])

    def recorded() -> str:
        return client.get_model_version(name, v1).tags["skedge.sha256"]

    # v1 published to @production and @staging with a drift baseline of its own, v2 to @canary.
    for alias, version in (("production", v1), ("staging", v1), ("canary", v2)):
        client.set_registered_model_alias(name, alias, version)
        export("--model-uri", f"models:/{name}/{version}", "--out", str(tmp_path / f"{alias}.skedge"),
               *(["--baseline", str(baseline)] if version == v1 else []), "--publish", str(dest),
               "--publish-alias", alias)
    first = {alias: stored(alias) for alias in ("production", "staging", "canary")}
    assert first["production"]["sha256"] == first["staging"]["sha256"] == recorded()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # A webhook registered before serve acted on tags: alias events only. `webhook create` again
    # updates it (same name and URL) instead of adding a second one.
    old = client.create_webhook(name="skedge-sync", url=f"{url}/webhook", events=list(sync.ALIAS_EVENTS),
                                secret=SECRET)
    assert sync.main(["webhook", "create", "--url", f"{url}/webhook", "--secret", SECRET, "--tracking-uri", uri]) == 0
    mine = [h for h in client.list_webhooks(max_results=100) if h.url == f"{url}/webhook"]
    assert [h.webhook_id for h in mine] == [old.webhook_id]
    assert sorted(str(e) for e in mine[0].events) == sorted(sync.EVENTS)

    log = tmp_path / "serve.log"
    serve = [sys.executable, "-m", "skedge.sync", "serve", "--publish", str(dest), "--port", str(port),
             *common, "--model", name, "--retries", "0"]  # fmt: skip
    with _process(serve, log, env, url + "/health"):
        # Another tag of the version: answered, ignored, no pass.
        client.set_model_version_tag(name, v1, "team", "search")
        h = _wait_for("the tag's delivery", lambda: (lambda h: h["deliveries"].get("ignored") and h)(_health(url)), log)
        assert h["syncs"] == {} and not h["deliveries"].get("accepted_tag"), h

        # Exported again without the baseline, --force: the registry's bytes are replaced.
        export("--model-uri", f"models:/{name}/{v1}", "--out", str(tmp_path / "plain.skedge"), "--force")
        plain = recorded()
        assert plain != first["production"]["sha256"]
        _wait_for("the publish of the new bytes", lambda: all(stored(a)["sha256"] == plain for a in ("production",
                                                                                                     "staging")), log)
        h = _settled(url, 0, tags=1)
    for alias in ("production", "staging"):
        now = stored(alias)
        assert (now["version"], now["sha256"], now["generation"], now["previous_sha256"]) == (
            v1, plain, 2, first[alias]["sha256"]), log.read_text()
    assert stored("canary") == first["canary"]
    assert set(h["syncs"]) == {f"{name}@production", f"{name}@staging"}, h
    assert all(s["last"]["exit"] == 0 for s in h["syncs"].values()), h
    text = log.read_text()
    assert "holds another model than MLflow records for it now" in text, text
    # Each of the export's version tags was delivered; only skedge.sha256 prompted anything.
    assert (h["deliveries"]["accepted_tag"], h["deliveries"].get("accepted")) == (1, None), h
    assert h["deliveries"]["ignored"] >= 2, h


def test_delivery_ids_are_bounded_by_the_window():
    ids = sync.DeliveryIds(window=10, capacity=3)
    assert ids.add("a", 0) and not ids.add("a", 5) and ids.add("b", 5) and ids.add("c", 6)
    with pytest.raises(sync.Refused) as err:  # full of ids still in the window: retry later
        ids.add("d", 7)
    assert err.value.status == 503
    assert ids.add("d", 21) and list(ids.ids) == ["b", "c", "d"]  # "a" aged out of twice the window
    assert ids.add("e", 100) and list(ids.ids) == ["e"]


def test_verify_delivery_matches_mlflows_signature():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = json.dumps({"entity": "model_version_alias", "action": "deleted", "data": {"name": "m", "alias": "a"}})
    stamp = str(int(time.time()))
    headers = {"x-mlflow-delivery-id": "d-1", "x-mlflow-timestamp": stamp,
               "x-mlflow-signature": _generate_hmac_signature("s3cret", "d-1", stamp, body)}
    assert sync.verify_delivery(b"s3cret", headers, body.encode(), time.time(), 300) == ("d-1", int(stamp))
    assert sync.parse_event(body.encode()) == ("model_version_alias.deleted", "m", "a", None, None)
    tag = {"entity": "model_version_tag", "action": "set",
           "data": {"name": "m", "version": "3", "key": "k", "value": ""}}
    assert sync.parse_event(json.dumps(tag).encode()) == ("model_version_tag.set", "m", None, "3", "k")
    for bad in (b"[]", b"{}", b"not json", json.dumps({"entity": "model_version_alias", "action": "created",
                                                       "data": {"name": "../x", "alias": "a"}}).encode(),
                *(json.dumps({**tag, "data": {**tag["data"], **change}}).encode()
                  for change in ({"version": "3/../1"}, {"version": 3}, {"name": "a/b"}, {"key": None}))):
        with pytest.raises(sync.Refused):
            sync.parse_event(bad)


def test_prompts_during_a_pass_coalesce_into_one_more_pass():
    import asyncio

    async def scenario():
        runs, gates = [], {}

        async def run(model, alias):
            runs.append((model, alias))
            gates[(model, alias)] = gate = asyncio.Event()
            await gate.wait()
            return 0

        async def until_running(key, n):
            while sum(1 for r in runs if r == key) < n or not syncer.state[key]["running"]:
                await asyncio.sleep(0)

        syncer = sync.Syncer(run, parallel=2)
        a, b = ("m", "production"), ("m", "staging")
        assert syncer.prompt(*a) == "started"
        await until_running(a, 1)
        # three more prompts while the first pass runs: one more pass, after it
        assert [syncer.prompt(*a) for _ in range(3)] == ["coalesced"] * 3
        assert syncer.prompt(*b) == "started"  # another alias: its own worker
        await until_running(b, 1)
        gates[a].set()
        await until_running(a, 2)
        gates[a].set()
        gates[b].set()
        await syncer.idle()
        assert runs.count(a) == 2 and runs.count(b) == 1
        assert syncer.state[a]["passes"] == 2 and not syncer.state[a]["running"]

    asyncio.run(scenario())


@requires_skedge
def test_a_failed_parity_gate_tags_the_version_and_publishes_nothing(mlflow_hooks, tmp_path):
    """`--precision compact` (float16 weights): v2 is v1 with its intercept moved half-way between
    the exact and the float16 decision of a gate text (its logged input example), so rounding the
    weights flips that label and the gate refuses: exit 1, `skedge.sync = refused: ...`, and the
    pointer keeps naming v1. serve runs this same pass."""
    import copy

    import numpy as np
    train_demo = dev_script("train_demo")
    from mlflow import MlflowClient
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    uri, name = mlflow_hooks["uri"], "edge_gate"
    texts, labels = binary_corpus(300)
    good = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000)).fit(texts, labels)
    bad = copy.deepcopy(good)
    clf, x = bad[-1], bad[:-1].transform(texts[:1])
    exact = (x @ clf.coef_.T)[0, 0] + clf.intercept_[0]
    rounded = (x @ clf.coef_.astype(np.float16).astype(np.float64).T)[0, 0] + clf.intercept_[0]
    assert exact != rounded
    clf.intercept_ = clf.intercept_ - (exact + rounded) / 2
    v1, v2 = (str(train_demo.log_and_register(p, name, tracking_uri=uri, example_texts=texts[:5],
                                              experiment="skedge-serve", alias=None, stage=None)["version"])
              for p in (good, bad))  # fmt: skip
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    dest = tmp_path / "edge"
    argv = ["reconcile", "--model", name, "--alias", ALIAS, "--publish", str(dest), "--tracking-uri", uri,
            "--skedge", str(SKEDGE), "--precision", "compact"]  # fmt: skip
    pointer = dest / "pointers" / name / f"{ALIAS}.json"

    client.set_registered_model_alias(name, ALIAS, v1)
    assert sync.main(argv) == 0
    first = pointer.read_bytes()
    assert json.loads(first)["version"] == v1
    files = sorted(p.relative_to(dest) for p in dest.rglob("*"))

    client.set_registered_model_alias(name, ALIAS, v2)
    assert sync.main(argv) == sync.EXIT_MISMATCH
    tags = client.get_model_version(name, v2).tags
    reason = tags["skedge.sync"]
    assert reason.startswith("refused: the parity gate failed: compact precision gate FAILED: ") and (
        "(1 changed, 0 allowed)" in reason), reason
    assert "skedge.published" not in tags
    assert pointer.read_bytes() == first
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == files

    # Accepting the changed label publishes v2, and the refusal tag goes.
    assert sync.main([*argv, "--max-label-disagreement", "1"]) == 0
    assert json.loads(pointer.read_bytes())["version"] == v2
    tags = client.get_model_version(name, v2).tags
    assert "skedge.sync" not in tags and tags["skedge.published"] == f"{dest} generation 2"


def test_a_pass_that_raises_or_is_killed_is_retried_and_shown_in_health():
    """A pass whose child could not start (an exception) or was killed by a signal (rc < 0) is
    passing trouble like exit 3: tried again, and its outcome is in /health's `last`."""
    import asyncio

    async def scenario(outcomes):
        calls = []

        async def run(model, alias):
            calls.append(1)
            outcome = outcomes[len(calls) - 1]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        syncer = sync.Syncer(run, retries=2, backoff=0, log=lambda s: None)
        syncer.prompt("m", "production")
        await syncer.idle()
        return len(calls), syncer.state[("m", "production")]

    calls, st = asyncio.run(scenario([OSError("fork failed"), -9, 0]))
    assert calls == 3 and st["passes"] == 1 and st["last"]["exit"] == 0 and not st["running"]
    calls, st = asyncio.run(scenario([OSError("fork failed")] * 3))
    assert calls == 3 and st["last"]["exit"] == sync.EXIT_FAILURE and not st["running"]
    calls, st = asyncio.run(scenario([-15, -15, -15]))
    assert calls == 3 and st["last"]["exit"] == -15


def test_serve_gives_every_pass_its_trusted_export_keys(tmp_path, capsys):
    """`serve --trust-key PUB` (repeatable) reaches each child `reconcile`, which parses it: a pass
    started by a webhook trusts the same export keys as cron's."""
    argv = ["--publish", str(tmp_path / "edge"), "--trust-key", str(tmp_path / "a.pub"), "--trust-key",
            str(tmp_path / "b.pub")]
    import argparse

    args = argparse.Namespace(publish=str(tmp_path / "edge"), skedge=SKEDGE, tracking_uri=None, s3_endpoint_url=None,
                              sign_key=None, trust_key=[tmp_path / "a.pub", tmp_path / "b.pub"],
                              allow_unsigned=False, precision="exact", max_label_disagreement=0.0)
    cmd = sync.reconcile_command(args, "m", "production")
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "--trust-key"] == argv[3::2], cmd
    for sub in ("reconcile", "rollback", "serve"):  # each accepts it (usage errors are exit 2 from argparse)
        with pytest.raises(SystemExit) as stop:
            sync.main([sub, "--help"])
        assert stop.value.code == 0 and "--trust-key PUB" in capsys.readouterr().out


@requires_skedge
def test_a_trust_key_skedge_cannot_use_is_refused_before_anything_else(tmp_path, capsys):
    """`--trust-key PUB` is read as the arguments are, by the package's engine (the key parser of
    `skedge inspect --public-key`): a file that is missing, not a regular file, larger than a key
    file, a secret key or no key at all is a usage error (exit 3) naming it, before `reconcile` and
    `rollback` reach MLflow (nothing listens at their tracking URI here) and before `serve` binds
    its port. serve checked nothing: every pass a webhook started then failed, exit 3."""
    subprocess.run([str(SKEDGE), "keygen", str(tmp_path / "export")], check=True, capture_output=True)
    good = tmp_path / "export.pub"
    (tmp_path / "garbage.pub").write_text("not a key\n")
    (tmp_path / "large.pub").write_text(good.read_text() + " " * 5000)
    bad = {tmp_path / "missing.pub": "no such file", tmp_path: "not a regular file",
           tmp_path / "export.key": "secret (signing) key", tmp_path / "garbage.pub": "error[KEY_INVALID]",
           tmp_path / "large.pub": "longer than 4096 bytes"}  # fmt: skip
    dead = f"http://127.0.0.1:{_free_port()}"
    common = ["--publish", str(tmp_path / "edge"), "--tracking-uri", dead, "--skedge", str(SKEDGE)]
    for path, why in bad.items():
        for sub in ("reconcile", "rollback"):
            with pytest.raises(SystemExit) as stop:
                sync.main([sub, "--model", MODEL, "--alias", ALIAS, *common, "--trust-key", str(good),
                           "--trust-key", str(path)])
            err = capsys.readouterr().err
            assert stop.value.code == sync.EXIT_FAILURE, err
            assert f"argument --trust-key: {path}" in err and why in err and "usage:" in err, err
            assert "MLflow" not in err and "Connection" not in err, err
    port = _free_port()
    for path in (tmp_path / "missing.pub", tmp_path / "export.key", tmp_path / "garbage.pub"):
        cmd = [sys.executable, "-m", "skedge.sync", "serve", *common, "--port", str(port),
               "--trust-key", str(path)]  # fmt: skip
        done = subprocess.run(cmd, env=_env(SKEDGE_WEBHOOK_SECRET=SECRET), capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
        assert done.returncode == sync.EXIT_FAILURE, done.stderr
        assert f"argument --trust-key: {path}" in done.stderr, done.stderr
        assert "sync serve: http://" not in done.stderr, done.stderr  # its port was never bound
    assert not (tmp_path / "edge").exists()
    # A usable key: serve starts and answers.
    cmd = [sys.executable, "-m", "skedge.sync", "serve", *common, "--port", str(port), "--trust-key", str(good)]
    with _process(cmd, tmp_path / "serve.log", _env(SKEDGE_WEBHOOK_SECRET=SECRET), f"http://127.0.0.1:{port}/health"):
        assert _health(f"http://127.0.0.1:{port}")["ok"] is True


def test_an_early_answer_closes_the_connection_and_a_client_gone_leaves_no_traceback(tmp_path):
    """A 413 answered before the body was read, and a 404 to a POST with a body, close the
    connection though the client trickles bytes (uvicorn kept it open to read the rest, for
    ever); a client gone mid-body is not a 50-line traceback in the log."""
    import socket

    from test_service import _answer_then_end

    port = _free_port()
    cmd = [sys.executable, "-m", "skedge.sync", "serve", "--publish", str(tmp_path / "edge"), "--port", str(port),
           "--tracking-uri", f"http://127.0.0.1:{_free_port()}"]  # fmt: skip
    log = tmp_path / "serve.log"
    cases = {
        "413": (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", b"x"),
        "404": (b"POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab", b" "),
    }
    with _process(cmd, log, _env(SKEDGE_WEBHOOK_SECRET=SECRET), f"http://127.0.0.1:{port}/health"):
        for name, (head, trickle) in cases.items():
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(head)
                got, ended = _answer_then_end(s, trickle)
            assert got.startswith(b"HTTP/1.1 " + name.encode()) and b"connection: close" in got.lower(), got
            assert ended, (name, got)
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            assert _health(f"http://127.0.0.1:{port}")["ok"] is True
    assert "Traceback" not in log.read_text() and "ClientDisconnect" not in log.read_text(), log.read_text()


@pytest.mark.parametrize("args", [["--port", "99999"], ["--port", "-1"], ["--tolerance", "nan"],
                                  ["--tolerance", "-5"]])  # fmt: skip
def test_bad_serve_options_are_usage_errors(args, tmp_path):
    """`--port 99999` was uvicorn's traceback; `--tolerance nan` accepted every timestamp (no
    comparison with nan is true), replays included."""
    cmd = [sys.executable, "-m", "skedge.sync", "serve", "--publish", str(tmp_path / "edge"), *args]
    done = subprocess.run(cmd, env=_env(SKEDGE_WEBHOOK_SECRET=SECRET), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == sync.EXIT_FAILURE, done.stderr  # sync's usage errors are 3
    assert "Traceback" not in done.stderr and f"argument {args[0]}: error[INVALID_INPUT]" in done.stderr, done.stderr
