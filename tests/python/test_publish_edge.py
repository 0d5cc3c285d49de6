"""Publishing to the edge (issue #14 item 1): content-addressed blobs and signed pointers, in a
local directory and in a real S3-compatible server on 127.0.0.1 (moto's server mode, which
implements S3's conditional writes `If-None-Match: *` and `If-Match`), started and stopped here."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import SKEDGE, _free_port, binary_corpus, dev_script, dump, fit, requires_skedge

from skedge import export
from skedge import publish
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

pytestmark = requires_skedge


def _export(tmp_path, name, c, *extra, hook=None):
    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression(C=c, max_iter=2000)))
    out = tmp_path / f"{name}.skedge"
    texts, labels = binary_corpus(60)
    validation = tmp_path / "validation.tsv"
    validation.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
    rc = export.main(["--joblib", str(dump(model, tmp_path, f"{name}.joblib")), "--out", str(out),
                      "--validation", str(validation), "--name", "sentiment", "--version", name, *extra],
                     interchange_hook=hook)
    return rc, out


def _keep_export_keys(monkeypatch) -> None:
    """export.main sets the process's keys (export.KEYS): put them back after the test."""
    for field in ("sign_key", "public_key", "encrypt_key"):
        monkeypatch.setattr(export.KEYS, field, getattr(export.KEYS, field))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two exported versions (v1, v2) with their manifests, and a signing key pair."""
    base = tmp_path_factory.mktemp("models")
    found = {}
    for name, c in (("1", 1.0), ("2", 10.0)):
        rc, out = _export(base, name, c)
        assert rc == 0
        found[name] = (out, json.loads(out.with_suffix(".manifest.json").read_text()))
    subprocess.run([str(SKEDGE), "keygen", str(base / "edge")], check=True, capture_output=True)
    subprocess.run([str(SKEDGE), "keygen", str(base / "other")], check=True, capture_output=True)
    return found, base / "edge.key", base / "edge.pub", base / "other.pub"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server", reason="moto[server] (scripts/requirements.txt)")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start (exit {proc.poll()})") from None
            time.sleep(0.2)
    saved = dict(os.environ)
    # moto accepts any credentials; never the machine's real ones.
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    try:
        yield url
    finally:
        os.environ.clear()
        os.environ.update(saved)
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(params=["local", "s3"])
def dest(request, tmp_path):
    """A fresh destination of each kind: (DEST string, endpoint URL or None)."""
    if request.param == "local":
        return str(tmp_path / "edge"), None
    endpoint = request.getfixturevalue("s3_endpoint")
    import boto3

    bucket = f"edge-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/fleet", endpoint


def _read(dest, endpoint, key):
    found = publish.open_store(dest, endpoint).read(key)
    return found and found[0]


def test_publish_v1_then_v2_generations_and_idempotence(models, dest):
    (found, key, pub, _) = models
    (v1, m1), (v2, m2) = found["1"], found["2"]
    target, endpoint = dest
    kw = {"alias": "production", "skedge": SKEDGE, "sign_key": key, "endpoint_url": endpoint}

    first = publish.publish(v1, m1, target, **kw)
    assert first.written and first.blob_written
    p = first.pointer
    assert (p["model"], p["alias"], p["version"], p["generation"]) == ("sentiment", "production", "1", 1)
    assert (p["previous_sha256"], p["previous_generation"]) == ("", 0)
    assert p["sha256"] == m1["sha256"] and p["size"] == m1["size"] and p["integrity"] == m1["integrity"]
    assert p["blob"] == f"blobs/sha256/{m1['sha256']}.skedge" and p["format_version"] == m1["format_version"]
    assert _read(target, endpoint, p["blob"]) == v1.read_bytes()
    assert json.loads(_read(target, endpoint, p["manifest"]))["sha256"] == m1["sha256"]

    again = publish.publish(v1, m1, target, **kw)  # same bytes: nothing written, same pointer
    assert not again.written and not again.blob_written and again.pointer == p
    stored = _read(target, endpoint, "pointers/sentiment/production.json")
    assert json.loads(stored) == p

    second = publish.publish(v2, m2, target, **kw)
    q = second.pointer
    assert (q["version"], q["generation"], q["previous_generation"]) == ("2", 2, 1)
    assert q["previous_sha256"] == m1["sha256"] and q["sha256"] == m2["sha256"]
    stored = _read(target, endpoint, "pointers/sentiment/production.json")
    assert publish.verify_pointer(stored, skedge=SKEDGE, public_keys=[pub]) == q
    assert _read(target, endpoint, p["blob"]) == v1.read_bytes()  # the old blob stays for rollback


def test_stale_or_concurrent_pointer_write_is_refused(models, dest):
    (found, key, _, _) = models
    target, endpoint = dest
    kw = {"alias": "production", "skedge": SKEDGE, "sign_key": key, "endpoint_url": endpoint}
    publish.publish(*found["1"], target, **kw)
    store = publish.open_store(target, endpoint)
    _, read_at_gen1 = publish.current_pointer(store, "sentiment", "production", skedge=SKEDGE)
    newer = publish.publish(*found["2"], target, **kw).pointer  # another publisher moves it meanwhile
    older = json.dumps({"generation": 2, "version": "1"}).encode()
    with pytest.raises(publish.StalePublish):
        store.put_if("pointers/sentiment/production.json", older, read_at_gen1)
    with pytest.raises(publish.StalePublish):  # two first publishes racing: the second loses
        store.put_if("pointers/sentiment/production.json", older, None)
    assert json.loads(_read(target, endpoint, "pointers/sentiment/production.json")) == newer


def test_blob_is_never_overwritten(models, dest):
    (found, key, _, _) = models
    (v1, m1) = found["1"]
    target, endpoint = dest
    blob = f"blobs/sha256/{m1['sha256']}.skedge"
    assert publish.open_store(target, endpoint).put_new(blob, b"not the artifact")
    with pytest.raises(publish.BlobMismatch):
        publish.publish(v1, m1, target, alias="production", skedge=SKEDGE, sign_key=key, endpoint_url=endpoint)
    assert _read(target, endpoint, blob) == b"not the artifact"
    assert _read(target, endpoint, "pointers/sentiment/production.json") is None


class _Racing:
    """A real store (a directory, or moto's S3) in which another publisher is writing the same
    blob: our conditional write of a blob is refused as S3 refuses it while a concurrent one is in
    flight (409), and the other upload lands `after` seconds later, with `lands` (None: never)."""

    def __init__(self, inner, after: float, lands):
        self.inner, self.after, self.lands = inner, after, lands
        self.timers: list = []

    def put_new(self, key, data):
        if not key.endswith(".skedge"):
            return self.inner.put_new(key, data)
        if self.lands is not None:
            self.timers.append(threading.Timer(self.after, self.inner.put_new, (key, self.lands)))
            self.timers[-1].start()
        return False

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_blob_another_publisher_is_still_writing_is_read_again_not_a_mismatch(models, dest, monkeypatch):
    """Two publishers of the same bytes: the second's conditional write is refused before the
    first's upload is readable. It reads again for a bounded time: the same bytes landing are
    published over, other bytes are BLOB_MISMATCH, nothing landing is PUBLISH_FAILED (run again)."""
    (found, key, _, _) = models
    (v1, m1), (v2, m2) = found["1"], found["2"]
    target, endpoint = dest
    kw = {"alias": "production", "skedge": SKEDGE, "sign_key": key, "endpoint_url": endpoint}
    real, racing = publish.open_store, []

    def opened(after, lands):
        def open_store(d, e=None):
            racing.append(_Racing(real(d, e), after, lands))
            return racing[-1]
        return open_store

    with monkeypatch.context() as m:
        m.setattr(publish, "open_store", opened(0.8, v1.read_bytes()))
        started = time.monotonic()
        done = publish.publish(v1, m1, target, **kw)
        assert time.monotonic() - started >= 0.8
    assert done.written and not done.blob_written and done.pointer["generation"] == 1
    assert _read(target, endpoint, done.pointer["blob"]) == v1.read_bytes()

    with monkeypatch.context() as m:
        m.setattr(publish, "BLOB_SETTLE_SECONDS", 1.0)
        m.setattr(publish, "open_store", opened(0, None))
        with pytest.raises(publish.PublishError) as err:
            publish.publish(v2, m2, target, **kw)
        assert err.value.code == "PUBLISH_FAILED" and "publish again" in str(err.value)
        m.setattr(publish, "open_store", opened(0.3, b"other bytes at the content address"))
        with pytest.raises(publish.BlobMismatch):
            publish.publish(v2, m2, target, **kw)
        for timer in racing[-1].timers:
            timer.join()
    assert json.loads(_read(target, endpoint, "pointers/sentiment/production.json")) == done.pointer


def test_pointer_signature_verifies_and_any_change_fails(models, tmp_path):
    (found, key, pub, other) = models
    target = tmp_path / "edge"
    p = publish.publish(*found["1"], str(target), alias="production", skedge=SKEDGE, sign_key=key).pointer
    stored = (target / "pointers/sentiment/production.json").read_bytes()
    assert publish.verify_pointer(stored, skedge=SKEDGE, public_keys=[pub]) == p
    with pytest.raises(publish.PublishError, match="SIGNATURE_INVALID"):
        publish.verify_pointer(stored, skedge=SKEDGE, public_keys=[other])
    for field, value in (("generation", 7), ("version", "2"), ("published_at", "2030-01-01T00:00:00Z"),
                         ("size", p["size"] + 1)):
        with pytest.raises(publish.PublishError, match="SIGNATURE_INVALID"):
            publish.verify_pointer(json.dumps({**p, field: value}).encode(), skedge=SKEDGE, public_keys=[pub])
    with pytest.raises(publish.PublishError, match="SIGNATURE_MISSING"):
        publish.verify_pointer(json.dumps({**p, "signature": None}).encode(), skedge=SKEDGE, public_keys=[pub])
    with pytest.raises(publish.PublishError, match="POINTER_INVALID"):  # pointing at another blob key
        publish.verify_pointer(json.dumps({**p, "blob": "blobs/evil.skedge"}).encode(), skedge=SKEDGE)
    # Fields that contradict its sha256 (FORMAT.md §5), or could not name its key, are refused
    # before the signature is looked at.
    for field, value in (("manifest", "blobs/evil.manifest.json"), ("integrity", "sha256-" + "A" * 43 + "="),
                         ("model", ".."), ("alias", "a/b"), ("published_at", "2026-12-03 00:00:00")):
        with pytest.raises(publish.PublishError, match="POINTER_INVALID"):
            publish.verify_pointer(json.dumps({**p, field: value}).encode(), skedge=SKEDGE, public_keys=[pub])
    # An artifact format this build cannot read: a follower refuses before fetching the blob.
    for version in (1, 9, 1 << 16):
        with pytest.raises(publish.PublishError, match="ARTIFACT_VERSION_UNSUPPORTED"):
            publish.verify_pointer(json.dumps({**p, "format_version": version}).encode(), skedge=SKEDGE,
                                   public_keys=[pub])


def test_export_publish_flag_and_failed_gate_publishes_nothing(models, tmp_path, capsys):
    (_, key, pub, _) = models
    target = tmp_path / "edge"
    rc, out = _export(tmp_path, "1", 1.0, "--publish", str(target), "--publish-alias", "production",
                      "--sign-key", str(key))
    assert rc == 0 and "published:" in capsys.readouterr().err
    stored = (target / "pointers/sentiment/production.json").read_bytes()
    assert publish.verify_pointer(stored, skedge=SKEDGE, public_keys=[pub])["generation"] == 1

    def tamper(inter):
        row = inter["pipeline"]["classifier"]["coef"][0]
        j = max(range(len(row)), key=lambda i: abs(row[i]))
        row[j] = -row[j]

    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    rc, _ = _export(tmp_path, "2", 10.0, "--publish", str(target), "--publish-alias", "production",
                    hook=tamper)
    assert rc == 1
    rc, _ = _export(tmp_path, "3", 3.0, "--publish", str(target), "--publish-alias", "production", "--dry-run")
    assert rc == 0
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert (target / "pointers/sentiment/production.json").read_bytes() == stored

    # Usage errors (exit 3), before any work: nothing exported, nothing published.
    capsys.readouterr()
    for extra in (["--publish", str(target)], ["--publish-alias", "production"],
                  ["--allow-unsigned"], ["--s3-endpoint-url", "http://127.0.0.1:9"]):
        with pytest.raises(SystemExit) as e:
            _export(tmp_path, "4", 1.0, *extra)
        assert e.value.code == 3, extra
        assert "--publish" in capsys.readouterr().err
    assert not (tmp_path / "4.skedge").exists()
    with pytest.raises(SystemExit) as e:
        export.main(["--restore", "models:/m/1", "--out", str(tmp_path / "r.skedge"), "--publish", str(target)])
    assert e.value.code == 3 and "--restore only writes --out" in capsys.readouterr().err
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before


@pytest.mark.team
def test_sync_reconcile_and_rollback_against_mlflow(server, models, tmp_path, capsys):
    """reconcile publishes the alias's version once (then exits 0 writing nothing); a moved alias
    is followed; rollback moves the alias back, then the pointer to the previous blob."""
    train_demo = dev_script("train_demo")
    from mlflow import MlflowClient
    from skedge import sync

    (_, key, pub, _) = models
    uri = server["uri"]
    texts, labels = binary_corpus(300)
    versions = []
    for c in (1.0, 10.0):
        pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(C=c, max_iter=2000)).fit(texts, labels)
        ids = train_demo.log_and_register(pipe, "edge_sync", tracking_uri=uri, example_texts=texts[:5],
                                          experiment="skedge-edge-sync", alias=None, stage=None)
        versions.append(str(ids["version"]))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias("edge_sync", "production", versions[0])
    target = tmp_path / "edge"
    argv = ["--model", "edge_sync", "--alias", "production", "--publish", str(target), "--tracking-uri", uri,
            "--sign-key", str(key), "--skedge", str(SKEDGE)]
    pointer = target / "pointers/edge_sync/production.json"

    def stored():
        return publish.verify_pointer(pointer.read_bytes(), skedge=SKEDGE, public_keys=[pub])

    assert sync.main(["reconcile", *argv]) == 0
    first = stored()
    assert (first["version"], first["generation"]) == (versions[0], 1)
    assert client.get_model_version("edge_sync", versions[0]).tags["skedge.published"] == f"{target} generation 1"
    assert sync.main(["reconcile", *argv]) == 0  # already in sync: nothing written
    assert stored() == first and "in sync" in capsys.readouterr().err

    client.set_registered_model_alias("edge_sync", "production", versions[1])  # a webhook lost: cron repairs
    assert sync.main(["reconcile", *argv]) == 0
    second = stored()
    assert (second["version"], second["generation"], second["previous_sha256"]) == (versions[1], 2, first["sha256"])

    assert sync.main(["rollback", *argv]) == 0
    back = stored()
    assert (back["version"], back["sha256"], back["generation"]) == (versions[0], first["sha256"], 3)
    assert back["previous_sha256"] == second["sha256"]
    assert str(client.get_model_version_by_alias("edge_sync", "production").version) == versions[0]
    assert sync.main(["reconcile", *argv]) == 0 and stored() == back


def test_exported_unsigned_then_reconciled_signed_is_re_sealed(server, models, tmp_path, capsys, monkeypatch):
    """README's order: `export.py --model-uri models:/m@production --out model.skedge` (unsigned,
    written back to MLflow), then `sync.py reconcile --sign-key`: the same model signed is
    re-sealed, published and the pointer signed, with no --force (sync has none). A version
    published with another body is refused with advice naming only what exists: export.py's
    --force, not a sync flag."""
    train_demo = dev_script("train_demo")
    from mlflow import MlflowClient
    from skedge import sync

    _keep_export_keys(monkeypatch)
    (_, key, pub, _) = models
    uri, name = server["uri"], "edge_reseal"
    texts, labels = binary_corpus(300)
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000)).fit(texts, labels)
    version = str(train_demo.log_and_register(pipe, name, tracking_uri=uri, example_texts=texts[:5],
                                              experiment="skedge-edge-reseal", alias="production")["version"])
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert export.main(["--model-uri", f"models:/{name}@production", "--out", str(tmp_path / "model.skedge"),
                        "--tracking-uri", uri, "--skedge", str(SKEDGE)]) == 0
    unsigned = client.get_model_version(name, version).tags["skedge.sha256"]

    target = tmp_path / "edge"
    argv = ["--model", name, "--alias", "production", "--publish", str(target), "--tracking-uri", uri,
            "--skedge", str(SKEDGE)]
    capsys.readouterr()
    assert sync.main(["reconcile", *argv, "--sign-key", str(key)]) == 0
    err = capsys.readouterr().err
    assert "(signature added): re-sealed" in err and "--force" not in err, err
    pointer = publish.verify_pointer((target / f"pointers/{name}/production.json").read_bytes(), skedge=SKEDGE,
                                     public_keys=[pub])
    tags = client.get_model_version(name, version).tags
    assert pointer["version"] == version and pointer["sha256"] == tags["skedge.sha256"] != unsigned
    blob = (target / publish.blob_key(pointer["sha256"])).read_bytes()
    inspected = tmp_path / "blob.skedge"
    inspected.write_bytes(blob)
    info = json.loads(subprocess.run([str(SKEDGE), "inspect", str(inspected), "--public-key", str(pub)],
                                     capture_output=True, check=True).stdout)
    assert info["signed"] and info["signature_verified"]
    assert tags["skedge.published"] == f"{target} generation 1" and "skedge.sync" not in tags

    # Another model body published for the version (another drift baseline, --force): a pass to a
    # new destination is refused, exit 3, the advice naming export.py's --force, not sync's.
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("text\n" + "".join(t + "\n" for t in texts[:150]), encoding="utf-8")
    assert export.main(["--model-uri", f"models:/{name}/{version}", "--out", str(tmp_path / "other.skedge"),
                        "--tracking-uri", uri, "--skedge", str(SKEDGE), "--baseline", str(baseline),
                        "--sign-key", str(key), "--force"]) == 0
    capsys.readouterr()
    elsewhere = tmp_path / "edge2"
    argv[argv.index(str(target))] = str(elsewhere)
    assert sync.main(["reconcile", *argv, "--sign-key", str(key)]) == sync.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "another model body" in err and "pass --force" not in err, err
    assert f"run scripts/export.py --model-uri models:/{name}/{version} --out FILE --force" in err
    assert not (elsewhere / "pointers").exists()


def _put(dest, endpoint, key, data: bytes) -> None:
    """Writes `key` unconditionally: what a replay, a restored backup or a mix-up does."""
    if endpoint is None:
        path = os.path.join(dest, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return
    import boto3

    bucket, _, prefix = dest[len("s3://"):].partition("/")
    boto3.client("s3", endpoint_url=endpoint).put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


def test_a_pointer_of_another_model_or_alias_is_refused(models, dest):
    """A pointer copied to another key is not that key's pointer: reading it is POINTER_INVALID,
    and nothing is published over it (a publisher would chain another model's generations)."""
    (found, key, _, _) = models
    target, endpoint = dest
    kw = {"skedge": SKEDGE, "sign_key": key, "endpoint_url": endpoint}
    staging = publish.publish(*found["1"], target, alias="staging", **kw)
    other = publish.publish(*found["1"], target, alias="production", model="other", **kw)
    store = publish.open_store(target, endpoint)
    for source in (staging, other):
        raw = _read(target, endpoint, publish.pointer_key(source.pointer["model"], source.pointer["alias"]))
        _put(target, endpoint, "pointers/sentiment/production.json", raw)
        with pytest.raises(publish.PublishError) as err:
            publish.current_pointer(store, "sentiment", "production", skedge=SKEDGE)
        assert err.value.code == "POINTER_INVALID" and "sentiment/production.json holds the pointer of" in str(err.value)
        with pytest.raises(publish.PointerInvalid):
            publish.read_state(store, "sentiment", "production", skedge=SKEDGE)
        with pytest.raises(publish.PublishError) as err:
            publish.publish(*found["2"], target, alias="production", **kw)
        assert err.value.code == "POINTER_INVALID"
        assert _read(target, endpoint, "pointers/sentiment/production.json") == raw


def test_a_pointer_moved_since_the_pass_read_it_makes_the_publish_stale(models, dest):
    """The pointer read when a pass began is what the write is conditional on: a publish by
    anyone since then (during the export) is PUBLISH_STALE, not re-read and overwritten."""
    (found, key, _, _) = models
    target, endpoint = dest
    kw = {"alias": "production", "skedge": SKEDGE, "sign_key": key, "endpoint_url": endpoint}
    store = publish.open_store(target, endpoint)
    before_any = publish.read_state(store, "sentiment", "production", skedge=SKEDGE)
    first = publish.publish(*found["1"], target, **kw).pointer  # another publisher, meanwhile
    with pytest.raises(publish.StalePublish) as err:
        publish.publish(*found["2"], target, state=before_any, **kw)
    assert err.value.code == "PUBLISH_STALE"
    at_gen1 = publish.read_state(store, "sentiment", "production", skedge=SKEDGE)
    second = publish.publish(*found["2"], target, **kw).pointer
    with pytest.raises(publish.StalePublish):  # would have been taken as "already published"
        publish.publish(*found["2"], target, state=at_gen1, **kw)
    stored = json.loads(_read(target, endpoint, "pointers/sentiment/production.json"))
    assert (first["generation"], second["generation"], stored) == (1, 2, second)


def test_a_replayed_pointer_is_never_continued_below_the_high_water_mark(models, dest):
    """An older pointer put back (a replay, a restored backup) is not in sync even when it names
    the version: the next publish goes above every generation ever published, which followers
    take, instead of re-issuing generations they refuse as stale."""
    (found, key, pub, _) = models
    target, endpoint = dest
    kw = {"alias": "production", "skedge": SKEDGE, "sign_key": key, "endpoint_url": endpoint}
    gen1 = publish.publish(*found["1"], target, **kw).pointer
    raw1 = _read(target, endpoint, "pointers/sentiment/production.json")
    publish.publish(*found["2"], target, **kw)
    publish.publish(*found["1"], target, **kw)  # generation 3, what the followers serve
    _put(target, endpoint, "pointers/sentiment/production.json", raw1)
    store = publish.open_store(target, endpoint)
    state = publish.read_state(store, "sentiment", "production", skedge=SKEDGE, public_key=pub)
    assert state.high_water == 3 and "replayed" in state.problem and not state.names(gen1["version"])
    again = publish.publish(*found["1"], target, **kw)
    assert again.written and (again.pointer["generation"], again.pointer["previous_generation"]) == (4, 1)
    # two publishers that read the same pointer: the generation is claimed once
    history = publish.history_key("sentiment", "production", 4)
    assert json.loads(_read(target, endpoint, history))["pointer"] == again.pointer
    assert not store.put_new(history, b"{}")


def test_unsigned_over_signed_is_refused_and_a_pointer_that_fails_verification_is_repaired(models, dest):
    (found, key, pub, _) = models
    target, endpoint = dest
    kw = {"alias": "production", "skedge": SKEDGE, "endpoint_url": endpoint}
    publish.publish(*found["1"], target, sign_key=key, **kw)
    with pytest.raises(publish.PublishError) as err:
        publish.publish(*found["2"], target, **kw)
    assert err.value.code == "SIGNATURE_MISSING"
    assert json.loads(_read(target, endpoint, "pointers/sentiment/production.json"))["generation"] == 1
    unsigned = publish.publish(*found["2"], target, allow_unsigned=True, **kw).pointer
    assert unsigned["signature"] is None and unsigned["generation"] == 2
    # Publishing the same version with the key: the stored pointer does not verify, so it is
    # replaced by a signed one (not "already published").
    signed = publish.publish(*found["2"], target, sign_key=key, **kw)
    assert signed.written and signed.pointer["generation"] == 3
    stored = _read(target, endpoint, "pointers/sentiment/production.json")
    assert publish.verify_pointer(stored, skedge=SKEDGE, public_keys=[pub]) == signed.pointer
    assert not publish.publish(*found["2"], target, sign_key=key, **kw).written


def test_unreachable_or_unwritable_destinations_are_publish_errors(models, tmp_path, monkeypatch, capsys):
    """A closed port, a file in the way: PUBLISH_FAILED (export exit 3), in
    seconds, never a traceback or the parity gate's exit 1."""
    (found, _, _, _) = models
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    closed = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    store = publish.open_store("s3://bucket/fleet", closed)
    assert (store.client.meta.config.connect_timeout, store.client.meta.config.read_timeout) == (5, 30)
    with pytest.raises(publish.PublishError) as err:
        store.read("pointers/sentiment/production.json")
    assert err.value.code == "PUBLISH_FAILED" and "127.0.0.1" in str(err.value)
    with pytest.raises(publish.PublishError):
        publish.publish(*found["1"], "s3://bucket/fleet", alias="production", skedge=SKEDGE, endpoint_url=closed)
    assert time.monotonic() - started < 60

    rc, _ = _export(tmp_path, "1", 1.0, "--publish", "s3://bucket/fleet", "--publish-alias", "production",
                    "--s3-endpoint-url", closed)
    err_text = capsys.readouterr().err
    assert rc == 3 and "error[PUBLISH_FAILED]" in err_text and "Traceback" not in err_text

    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    with pytest.raises(publish.PublishError) as err:
        publish.publish(*found["1"], str(in_the_way), alias="production", skedge=SKEDGE)
    assert err.value.code == "PUBLISH_FAILED"


def test_sync_races_rollbacks_signatures_and_replays_against_mlflow(server, models, tmp_path, capsys, monkeypatch):
    """What the audit reproduced (/tmp/audit-sync): a reconcile whose alias moved during its export
    publishes nothing; rollback walks back instead of re-publishing what it rolled away from; an
    unsigned rollback over a signed chain is refused, and a pointer that fails verification or was
    put back from an older generation is re-published above every generation, not "in sync"; a
    pointer of another model at the key is refused. export.py --publish models:/NAME@ALIAS checks
    its alias after the export too."""
    train_demo = dev_script("train_demo")
    from mlflow import MlflowClient
    from skedge import sync

    (found, key, pub, _) = models
    uri, name = server["uri"], "edge_walk"
    texts, labels = binary_corpus(300)
    v1, v2, v3 = (str(train_demo.log_and_register(
        make_pipeline(TfidfVectorizer(), LogisticRegression(C=c, max_iter=2000)).fit(texts, labels), name,
        tracking_uri=uri, example_texts=texts[:5], experiment="skedge-edge-walk", alias=None, stage=None)["version"])
        for c in (1.0, 10.0, 3.0))  # fmt: skip
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    target = tmp_path / "edge"
    unsigned = ["--model", name, "--alias", "production", "--publish", str(target), "--tracking-uri", uri,
                "--skedge", str(SKEDGE)]  # fmt: skip
    argv = [*unsigned, "--sign-key", str(key)]
    pointer = target / f"pointers/{name}/production.json"

    def stored(**kw):
        return publish.verify_pointer(pointer.read_bytes(), skedge=SKEDGE, **kw)

    def alias():
        return str(client.get_model_version_by_alias(name, "production").version)

    def at(version):
        client.set_registered_model_alias(name, "production", version)
        assert sync.main(["reconcile", *argv]) == 0
        return stored(public_keys=[pub])

    assert [at(v)["generation"] for v in (v1, v2, v3)] == [1, 2, 3]
    gen3 = pointer.read_bytes()

    # A cron pass starts on v2; during its export the alias moves to v1 and serve's pass publishes
    # it. The cron pass must not put v2 over it.
    from skedge import export

    real = export.main
    nested = []

    def racing(a, **kw):
        if not nested:
            nested.append(1)
            client.set_registered_model_alias(name, "production", v1)
            assert sync.main(["reconcile", *argv]) == 0
        return real(a, **kw)

    client.set_registered_model_alias(name, "production", v2)
    capsys.readouterr()
    monkeypatch.setattr(export, "main", racing)
    assert sync.main(["reconcile", *argv]) == sync.EXIT_FAILURE
    monkeypatch.undo()
    assert "error[PUBLISH_STALE]" in capsys.readouterr().err
    assert (stored()["version"], stored()["generation"], alias()) == (v1, 4, v1)

    # Rollbacks pop: v1 (gen 4) -> v3 (what it replaced) -> v2 -> v1 -> nothing earlier.
    walked = []
    for _ in range(3):
        assert sync.main(["rollback", *argv]) == 0
        walked.append((stored(public_keys=[pub])["version"], alias()))
    assert walked == [(v3, v3), (v2, v2), (v1, v1)]
    assert stored()["generation"] == 7
    capsys.readouterr()
    assert sync.main(["rollback", *argv]) == sync.EXIT_FAILURE
    assert "no earlier generation" in capsys.readouterr().err and stored()["generation"] == 7
    assert client.get_model_version(name, v3).tags["skedge.rolled_back"] == f"{target} generation 6 -> version {v2}"
    assert sync.main(["reconcile", *argv]) == 0 and stored()["generation"] == 7  # in sync

    # Unsigned over signed: refused before the alias moves.
    assert sync.main(["rollback", *unsigned, "--to-version", v3]) == sync.EXIT_FAILURE
    assert "error[SIGNATURE_MISSING]" in capsys.readouterr().err
    assert (stored()["generation"], alias()) == (7, v1)
    assert sync.main(["rollback", *unsigned, "--to-version", v3, "--allow-unsigned"]) == 0
    assert (stored()["signature"], stored()["generation"], alias()) == (None, 8, v3)
    # The key's reconcile repairs it: a pointer that does not verify is not in sync.
    assert sync.main(["reconcile", *argv]) == 0
    assert (stored(public_keys=[pub])["version"], stored()["generation"]) == (v3, 9)

    # generation 3 (v3, signed, what the alias names) put back: above the high-water mark again.
    pointer.write_bytes(gen3)
    assert sync.main(["reconcile", *argv]) == 0
    assert (stored(public_keys=[pub])["version"], stored()["generation"], stored()["previous_generation"]) == (v3, 10, 3)

    # export.py --publish models:/NAME@ALIAS: the alias moved during the export, nothing published.
    def move(inter):
        client.set_registered_model_alias(name, "production", v2)

    rc = export.main(["--model-uri", f"models:/{name}@production", "--out", str(tmp_path / "x.skedge"),
                      "--tracking-uri", uri, "--skedge", str(SKEDGE), "--sign-key", str(key),
                      "--publish", str(target)], interchange_hook=move)  # fmt: skip
    assert rc == 3 and "error[PUBLISH_STALE]" in capsys.readouterr().err
    assert stored()["generation"] == 10

    # Another model's pointer at this key: refused by reconcile and rollback, nothing written.
    other = publish.publish(*found["1"], str(target), alias="production", skedge=SKEDGE, sign_key=key)
    raw = (target / publish.pointer_key(other.pointer["model"], "production")).read_bytes()
    pointer.write_bytes(raw)
    for command in ("reconcile", "rollback"):
        assert sync.main([command, *argv]) == sync.EXIT_FAILURE
        assert "error[POINTER_INVALID]" in capsys.readouterr().err
        assert pointer.read_bytes() == raw


def _objects(dest, endpoint) -> dict:
    """Every object of a destination: {key: bytes} (a backup)."""
    if endpoint is None:
        return {str(p.relative_to(dest)): p.read_bytes() for p in sorted(Path(dest).rglob("*"))
                if p.is_file() and not p.name.endswith(".lock")}
    import boto3

    bucket, _, prefix = dest[len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
            for o in page.get("Contents", [])]
    return {k[len(prefix) + 1:]: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _restore(dest, endpoint, backup: dict) -> None:
    """The destination emptied (a bucket recreated, a folder wiped), then `backup` put back."""
    if endpoint is None:
        shutil.rmtree(dest, ignore_errors=True)
    else:
        import boto3

        bucket, _, prefix = dest[len("s3://"):].partition("/")
        s3 = boto3.client("s3", endpoint_url=endpoint)
        for k in _objects(dest, endpoint):
            s3.delete_object(Bucket=bucket, Key=f"{prefix}/{k}")
    for k, data in backup.items():
        _put(dest, endpoint, k, data)


def _versions(server, name, cs, experiment):
    train_demo = dev_script("train_demo")
    texts, labels = binary_corpus(300)
    return [str(train_demo.log_and_register(
        make_pipeline(TfidfVectorizer(), LogisticRegression(C=c, max_iter=2000)).fit(texts, labels), name,
        tracking_uri=server["uri"], example_texts=texts[:5], experiment=experiment, alias=None,
        stage=None)["version"]) for c in cs]  # fmt: skip


def test_a_restored_or_wiped_destination_never_hands_out_a_generation_again(server, models, dest, capsys):
    """The history lives in the destination; MLflow keeps the high-water mark too (a registered-
    model tag per destination and alias). A destination put back from a backup, or emptied, is
    published over above every generation followers have seen: they refuse a lower or equal one,
    and would keep serving the version of the generation they saw."""
    from mlflow import MlflowClient
    from skedge import sync

    (_, key, pub, _) = models
    target, endpoint = dest
    uri, name = server["uri"], f"edge_ledger_{'s3' if endpoint else 'local'}"
    v1, v2 = _versions(server, name, (1.0, 10.0), "skedge-edge-ledger")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    argv = ["--model", name, "--alias", "production", "--publish", target, "--tracking-uri", uri,
            "--sign-key", str(key), "--skedge", str(SKEDGE), *(["--s3-endpoint-url", endpoint] if endpoint else [])]

    def at(version):
        client.set_registered_model_alias(name, "production", version)
        assert sync.main(["reconcile", *argv]) == 0
        raw = _read(target, endpoint, f"pointers/{name}/production.json")
        return publish.verify_pointer(raw, skedge=SKEDGE, public_keys=[pub])

    assert at(v1)["generation"] == 1
    backup = _objects(target, endpoint)
    assert at(v2)["generation"] == 2  # what the followers serve
    _restore(target, endpoint, backup)  # generation 1, naming v1, and its history only
    capsys.readouterr()
    p = at(v1)  # the restored pointer names v1, but followers serve v2 (generation 2): not in sync
    assert (p["version"], p["generation"], p["previous_generation"]) == (v1, 3, 1)
    assert "generation 2 was published (recorded in MLflow)" in capsys.readouterr().err
    _restore(target, endpoint, {})  # wiped
    p = at(v1)
    assert (p["version"], p["generation"], p["previous_generation"]) == (v1, 4, 0)
    assert sync.main(["reconcile", *argv]) == 0 and at(v1)["generation"] == 4  # in sync now
    record = client.get_registered_model(name).tags[sync.MlflowLedger(client, target).key("production")]
    assert json.loads(record) == {"dest": publish.dest_id(target), "alias": "production", "generation": 4}


@pytest.mark.filterwarnings("ignore:.*transition_model_version_stage.*:FutureWarning")
def test_a_destination_older_than_its_history_walks_back_and_moving_references_are_refused(
        server, models, tmp_path, capsys, monkeypatch):
    """A destination published before history/ (and MLflow's mark) existed: the first pass records
    the mark, the first publish writes the stored pointer's history entry before its own, and
    rollbacks walk back as on a new destination. `export.py --publish` of models:/NAME/latest or
    models:/NAME/STAGE (moving references nothing checks again) is refused, nothing written."""
    from mlflow import MlflowClient
    from skedge import sync

    _keep_export_keys(monkeypatch)
    (_, key, pub, _) = models
    uri, name = server["uri"], "edge_legacy"
    v1, v2, v3 = _versions(server, name, (1.0, 10.0, 3.0), "skedge-edge-legacy")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    target = tmp_path / "edge"
    argv = ["--model", name, "--alias", "production", "--publish", str(target), "--tracking-uri", uri,
            "--sign-key", str(key), "--skedge", str(SKEDGE)]
    pointer, history = target / f"pointers/{name}/production.json", target / f"history/{name}/production"

    def stored():
        return publish.verify_pointer(pointer.read_bytes(), skedge=SKEDGE, public_keys=[pub])

    def alias():
        return str(client.get_model_version_by_alias(name, "production").version)

    for version in (v1, v2):
        client.set_registered_model_alias(name, "production", version)
        assert sync.main(["reconcile", *argv]) == 0
    ledger = sync.MlflowLedger(client, str(target))
    shutil.rmtree(target / "history")  # as published before the history existed
    client.delete_registered_model_tag(name, ledger.key("production"))
    assert sync.main(["reconcile", *argv]) == 0  # in sync: nothing written, MLflow's mark recorded
    assert not (target / "history").exists() and ledger.recorded(name, "production") == 2

    client.set_registered_model_alias(name, "production", v3)
    assert sync.main(["reconcile", *argv]) == 0 and stored()["generation"] == 3
    assert sorted(os.listdir(history)) == ["2.json", "3.json"]  # generation 2 seeded first
    assert json.loads((history / "2.json").read_text())["rollback_to"] == 1
    walked = []
    for _ in range(2):
        assert sync.main(["rollback", *argv]) == 0
        walked.append((stored()["version"], stored()["generation"], alias()))
    assert walked == [(v2, 4, v2), (v1, 5, v1)]
    capsys.readouterr()
    assert sync.main(["rollback", *argv]) == sync.EXIT_FAILURE
    assert "no earlier generation" in capsys.readouterr().err and stored()["generation"] == 5

    client.transition_model_version_stage(name, v3, "Production")
    before = pointer.read_bytes()
    for source in (f"models:/{name}/latest", f"models:/{name}/Production"):
        with pytest.raises(SystemExit) as usage:  # a usage error: before the export
            export.main(["--model-uri", source, "--out", str(tmp_path / "moving.skedge"), "--tracking-uri", uri,
                         "--skedge", str(SKEDGE), "--sign-key", str(key), "--publish", str(target),
                         "--publish-alias", "production"])  # fmt: skip
        err = capsys.readouterr().err
        assert usage.value.code == 3 and "is not checked again" in err, err
        assert f"models:/{name}@ALIAS" in err and not (tmp_path / "moving.skedge").exists()
    assert pointer.read_bytes() == before and sorted(os.listdir(history))[-1] == "5.json"
    # and publish() itself, for callers of the module, refuses the export such a URI made
    man = {"export": {"model_uri": f"models:/{name}/latest"}, "version": v3}
    with pytest.raises(publish.PublishError, match="is not checked again: not published"):
        publish.check_source(man)

    # export.py --publish of a registered model's alias raises MLflow's mark as sync.py does
    client.set_registered_model_alias(name, "production", v3)
    rc = export.main(["--model-uri", f"models:/{name}@production", "--out", str(tmp_path / "v3.skedge"),
                      "--tracking-uri", uri, "--skedge", str(SKEDGE), "--sign-key", str(key),
                      "--publish", str(target)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert stored()["generation"] == 6 and ledger.recorded(name, "production") == 6


def test_a_pointer_whose_blob_is_gone_is_not_in_sync(models, dest):
    """A destination restored without its blobs: the pointer names a blob no follower can load.
    It is not "already published": the blob is written again and the pointer republished."""
    (found, key, pub, _) = models
    target, endpoint = dest
    kw = {"alias": "production", "skedge": SKEDGE, "sign_key": key, "endpoint_url": endpoint}
    first = publish.publish(*found["1"], target, **kw).pointer
    _restore(target, endpoint, {k: v for k, v in _objects(target, endpoint).items() if not k.startswith("blobs/")})
    state = publish.read_state(publish.open_store(target, endpoint), "sentiment", "production", skedge=SKEDGE,
                               public_key=pub)
    assert not state.names("1") and f"{first['blob']}, is missing" in state.problem
    again = publish.publish(*found["1"], target, **kw)
    assert again.written and again.blob_written and again.pointer["generation"] == 2
    assert _read(target, endpoint, first["blob"]) == found["1"][0].read_bytes()


def _stored(target, name, alias="production", pub=None) -> dict:
    raw = (Path(target) / publish.pointer_key(name, alias)).read_bytes()
    return publish.verify_pointer(raw, skedge=SKEDGE, public_keys=[pub] if pub else None)


def test_a_version_exported_again_with_other_bytes_is_published_again(server, models, tmp_path, capsys, monkeypatch):
    """"In sync" is the pointer naming the alias's version *and* the bytes the registry records for
    it now (its `skedge.sha256` tag): after `export.py --model-uri models:/NAME/V --force` replaced
    them, reconcile publishes the version again at a new generation instead of leaving the fleet
    on the old blob. Bytes that reconcile's own export cannot make are refused (exit 3), not
    "in sync"; a version the registry records no bytes for stays as before."""
    from mlflow import MlflowClient
    from skedge import sync

    _keep_export_keys(monkeypatch)
    (_, key, pub, _) = models
    uri, name = server["uri"], "edge_reexport"
    (v1,) = _versions(server, name, (1.0,), "skedge-edge-reexport")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(name, "production", v1)
    target = tmp_path / "edge"
    texts, _ = binary_corpus(300)
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("text\n" + "".join(t + "\n" for t in texts[:150]), encoding="utf-8")
    common = ["--tracking-uri", uri, "--skedge", str(SKEDGE), "--sign-key", str(key)]
    argv = ["--model", name, "--alias", "production", "--publish", str(target), *common]

    def recorded():
        return client.get_model_version(name, v1).tags["skedge.sha256"]

    # Published first by export.py with a drift baseline of its own (another body than sync's export).
    assert export.main(["--model-uri", f"models:/{name}@production", "--out", str(tmp_path / "custom.skedge"),
                        "--baseline", str(baseline), "--publish", str(target), *common]) == 0
    first = _stored(target, name, pub=pub)
    assert (first["version"], first["generation"], first["sha256"]) == (v1, 1, recorded())
    # Exported again without it, replacing what the registry publishes for the version.
    assert export.main(["--model-uri", f"models:/{name}/{v1}", "--out", str(tmp_path / "plain.skedge"), "--force",
                        *common]) == 0
    plain = recorded()
    assert plain != first["sha256"]
    capsys.readouterr()
    assert sync.main(["reconcile", *argv]) == 0
    err = capsys.readouterr().err
    second = _stored(target, name, pub=pub)
    assert (second["version"], second["sha256"], second["generation"], second["previous_sha256"]) == (
        v1, plain, 2, first["sha256"]), err
    assert f"holds another model than MLflow records for it now (sha256 {plain}: exported again)" in err
    assert client.get_model_version(name, v1).tags["skedge.published"] == f"{target} generation 2"
    assert sync.main(["reconcile", *argv]) == 0 and _stored(target, name) == second
    assert "in sync" in capsys.readouterr().err

    # The registry's bytes made with an option sync does not take: refused, the pointer unchanged.
    assert export.main(["--model-uri", f"models:/{name}/{v1}", "--out", str(tmp_path / "custom2.skedge"),
                        "--baseline", str(baseline), "--force", *common]) == 0
    assert recorded() == first["sha256"]
    capsys.readouterr()
    assert sync.main(["reconcile", *argv]) == sync.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "another model body" in err and f"models:/{name}/{v1} --out FILE --force" in err, err
    assert _stored(target, name) == second

    # No bytes recorded (the tag removed): nothing to compare, the pointer naming the version stays.
    client.delete_model_version_tag(name, v1, "skedge.sha256")
    assert sync.main(["reconcile", *argv]) == 0 and _stored(target, name) == second
    assert "in sync" in capsys.readouterr().err


def _keypair(tmp_path, name: str) -> tuple[Path, Path]:
    subprocess.run([str(SKEDGE), "keygen", str(tmp_path / name)], check=True, capture_output=True)
    return tmp_path / f"{name}.key", tmp_path / f"{name}.pub"


def test_registry_bytes_sync_cannot_make_reach_every_destination_once(server, models, tmp_path, capsys, monkeypatch):
    """With `--trust-key PUB` (the export host's key), the registry's artifact signed with it is
    what a version is: after `export.py --force --sign-key EXPORT_KEY` replaced it with bytes
    sync's own export cannot make (a drift baseline of its own), each destination's pass
    publishes those bytes (as they are unsigned; with --sign-key re-sealed, the same body), a
    second pass writes nothing, and no export runs nor is anything written back. Its signed
    precision must be `--precision`'s: another is not usable, and the pass's own export (another
    body than the registry's) is refused, exit 3, the pointer kept."""
    from mlflow import MlflowClient
    from skedge import registry, sync

    _keep_export_keys(monkeypatch)
    (_, key, pub, _) = models
    export_key, export_pub = _keypair(tmp_path, "export")
    uri, name = server["uri"], "edge_registry_bytes"
    (v1,) = _versions(server, name, (1.0,), "skedge-edge-registry-bytes")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(name, "production", v1)
    texts, _ = binary_corpus(300)
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("text\n" + "".join(t + "\n" for t in texts[:150]), encoding="utf-8")
    plain, signed, compact = tmp_path / "plain", tmp_path / "signed", tmp_path / "compact"
    keys = {signed: ["--sign-key", str(key)]}

    def reconcile(dest, *extra):
        rc = sync.main(["reconcile", "--model", name, "--alias", "production", "--tracking-uri", uri, "--skedge",
                        str(SKEDGE), "--publish", str(dest), "--trust-key", str(export_pub), *keys.get(dest, []),
                        *extra])
        return rc, capsys.readouterr().err

    def tags() -> dict:
        return {k: v for k, v in client.get_model_version(name, v1).tags.items() if k != "skedge.published"}

    def held(dest) -> tuple[dict, bytes, dict]:
        p = _stored(dest, name, pub=pub if dest == signed else None)
        return (p, (dest / publish.blob_key(p["sha256"])).read_bytes(),
                json.loads((dest / publish.manifest_key(p["sha256"])).read_text()))

    def force(*extra):
        assert export.main(["--model-uri", f"models:/{name}/{v1}", "--out", str(tmp_path / "forced.skedge"),
                            "--tracking-uri", uri, "--skedge", str(SKEDGE), "--force", "--sign-key", str(export_key),
                            *extra]) == 0
        capsys.readouterr()
        return tags()

    for dest in (plain, signed):  # generation 1: sync's own export (the registry's is unsigned)
        assert reconcile(dest)[0] == 0
    old_body = registry.body_sha256(held(plain)[1])
    forced = force("--baseline", str(baseline))
    assert forced["skedge.body_sha256"] != old_body
    for dest in (plain, signed):
        rc, err = reconcile(dest)
        assert rc == 0 and "holds another model than MLflow records for it now" in err, err
        assert "parity gate" not in err, err  # no export ran
        pointer, blob, _ = held(dest)
        assert (pointer["version"], pointer["generation"]) == (v1, 2), err
        assert registry.body_sha256(blob) == forced["skedge.body_sha256"], err
    assert held(plain)[0]["sha256"] == forced["skedge.sha256"] != held(signed)[0]["sha256"]
    inspected = tmp_path / "signed.skedge"
    inspected.write_bytes(held(signed)[1])
    info = json.loads(subprocess.run([str(SKEDGE), "inspect", str(inspected), "--public-key", str(pub)],
                                     capture_output=True, check=True).stdout)
    assert info["signed"] and info["signature_verified"]
    assert tags() == forced  # nothing exported or written back; no skedge.sync refusal
    for dest in (plain, signed):
        rc, err = reconcile(dest)
        assert rc == 0 and "in sync" in err and "not in sync" not in err, err
        assert held(dest)[0]["generation"] == 2

    # A compact destination while the registry holds exact bytes: not usable; its own export is
    # another body than the registry's, refused.
    rc, err = reconcile(compact, "--precision", "compact")
    assert rc == sync.EXIT_FAILURE and "precision 'exact'" in err and "not usable" in err, err
    assert not (compact / "pointers").exists()
    # The registry's artifact made compact (--force): the compact destination publishes it, the
    # exact ones keep generation 2.
    small = force("--precision", "compact")
    rc, err = reconcile(compact, "--precision", "compact")
    assert rc == 0 and "parity gate" not in err, err
    assert held(compact)[0]["sha256"] == small["skedge.sha256"] and held(compact)[2]["precision"] == "compact"
    for dest in (plain, signed):
        rc, err = reconcile(dest)
        assert rc == sync.EXIT_FAILURE and "precision 'compact'" in err, err
        assert held(dest)[0]["generation"] == 2
    assert tags() == small


def _plant(client, name: str, version: str, tmp_path: Path, files: dict, tags: dict) -> None:
    """What a registry writer without the export key can do (MLflow's ordinary API): log files to
    the version's run and set its tags."""
    run_id = client.get_model_version(name, version).run_id
    folder = tmp_path / "planted"
    folder.mkdir(exist_ok=True)
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data) if isinstance(data, bytes) else shutil.copytree(data, path, dirs_exist_ok=True)
        if path.is_dir():
            client.log_artifacts(run_id, str(path), f"skedge/{name}/{version}/planted/{rel}")
        else:
            client.log_artifact(run_id, str(path), f"skedge/{name}/{version}/planted")
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, v)


def _planted_tags(name: str, version: str, rel: str, data: bytes) -> dict:
    from skedge import registry

    return {"skedge.artifact_path": f"skedge/{name}/{version}/planted/{rel}", "skedge.size": str(len(data)),
            "skedge.parity": "passed", "skedge.body_sha256": registry.body_sha256(data) or "none",
            "skedge.sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("attack", ["other_key", "unsigned", "replayed", "joblib_signed"])
def test_registry_artifacts_a_pinned_key_did_not_sign_for_the_version_are_never_published(
        server, models, tmp_path, capsys, monkeypatch, attack):
    """The audit's attacks: a registry writer without the export key plants an artifact as the
    version's (its file, a manifest beside it, the version's tags) and the alias's pass, trusting
    the export key, must not publish it: another model signed by another key, to a signed
    destination (it was re-signed with the edge key); another model unsigned with a hand-written
    manifest, to an unsigned one; an artifact the export key did sign, but for another version,
    its manifest rewritten to name this one; another model the export key signed, exported from a
    joblib file with `--name`/`--version` naming this version (no registry behind it: its signed
    provenance names no run). Each is not usable (the reason logged), the pass
    exports the version itself, which is not the planted body: refused, exit 3, the pointer kept.
    Without --trust-key the registry's bytes are never taken at all."""
    from mlflow import MlflowClient
    from skedge import sync

    _keep_export_keys(monkeypatch)
    (_, key, pub, other_pub) = models
    export_key, export_pub = _keypair(tmp_path, "export")
    uri, name = server["uri"], f"edge_planted_{attack}"
    v1, v2 = _versions(server, name, (1.0, 10.0), "skedge-edge-planted")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    dest = tmp_path / "edge"
    trusting = ["--trust-key", str(export_pub)]
    sealing = [] if attack == "unsigned" else ["--sign-key", str(key)]

    def reconcile(*extra):
        rc = sync.main(["reconcile", "--model", name, "--alias", "production", "--tracking-uri", uri, "--skedge",
                        str(SKEDGE), "--publish", str(dest), *sealing, *extra])
        return rc, capsys.readouterr().err

    # v2 exported on the export host (signed, gated, written back); v1 published.
    assert export.main(["--model-uri", f"models:/{name}/{v2}", "--out", str(tmp_path / "v2.skedge"),
                        "--tracking-uri", uri, "--skedge", str(SKEDGE), "--sign-key", str(export_key)]) == 0
    client.set_registered_model_alias(name, "production", v1)
    assert reconcile(*trusting)[0] == 0
    first = _stored(dest, name, pub=pub if sealing else None)

    if attack == "replayed":
        data = (tmp_path / "v2.skedge").read_bytes()
        man = json.loads((tmp_path / "v2.manifest.json").read_text())
        man.update(version=v1, provenance={**man.get("provenance", {}), "version": v1})
    else:
        # The attacker's model (labels flipped), exported on the attacker's machine as version v1.
        texts, labels = binary_corpus(300)
        evil = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000)).fit(texts, [1 - y for y in labels])
        out = tmp_path / "evil.skedge"
        assert export.main(["--joblib", str(dump(evil, tmp_path, "evil.joblib")), "--out", str(out),
                            "--trust-pickle", "--name", name, "--version", v1, "--skedge", str(SKEDGE),
                            *{"other_key": ["--sign-key", str(other_pub.with_suffix(".key"))],
                              "joblib_signed": ["--sign-key", str(export_key)]}.get(attack, [])
                            ]) == 0  # fmt: skip
        data = out.read_bytes()
        man = json.loads(out.with_suffix(".manifest.json").read_text())
        if attack == "unsigned":  # written by hand: only what a pointer takes
            raw = hashlib.sha256(data).digest()
            man = {"sha256": raw.hex(), "size": len(data), "version": v1, "name": name, "format_version": 3,
                   "integrity": "sha256-" + base64.b64encode(raw).decode(), "precision": "exact",
                   "provenance": {"registered_model": name, "version": v1}}
    _plant(client, name, v1, tmp_path, {"planted.skedge": data, "planted.manifest.json": json.dumps(man).encode()},
           _planted_tags(name, v1, "planted.skedge", data))
    capsys.readouterr()
    rc, err = reconcile(*trusting)
    now = _stored(dest, name, pub=pub if sealing else None)
    assert now == first and not any(p.read_bytes() == data for p in (dest / "blobs").rglob("*.skedge")), err
    assert rc == sync.EXIT_FAILURE and "not usable" in err and "another model body" in err, err
    assert "re-sealed" not in err and "the same model" not in err, err
    expected = {"other_key": "SIGNATURE_INVALID", "unsigned": "SIGNATURE_MISSING",
                "replayed": f"names {name!r} version {v2!r}", "joblib_signed": "its signed provenance names"}[attack]
    assert expected in err, err
    # Without --trust-key: nothing the registry holds is taken, nothing said about its artifact.
    rc, err = reconcile()
    assert rc == sync.EXIT_FAILURE and "another model body" in err and "not usable" not in err, err
    assert _stored(dest, name, pub=pub if sealing else None) == first


def test_a_planted_file_of_another_size_is_never_downloaded_to_compare(server, models, tmp_path, capsys,
                                                                      monkeypatch):
    """Without --trust-key, the pass's own export compares its bytes with the file the version's
    tags name (the same model under another seal is re-sealed, not refused). The tags are anyone's
    to set: one naming a large file (`skedge.size` saying small) is not downloaded, being no seal of
    the export's body: refused as another body (exit 3), nothing fetched from that path."""
    from mlflow import MlflowClient
    from skedge import registry, sync

    _keep_export_keys(monkeypatch)
    uri, name = server["uri"], "edge_planted_big"
    (v1,) = _versions(server, name, (1.0,), "skedge-edge-planted-big")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(name, "production", v1)
    big = b"\0" * (4 << 20)
    tags = _planted_tags(name, v1, "big.skedge", big)
    tags["skedge.size"] = "100"
    _plant(client, name, v1, tmp_path, {"big.skedge": big}, tags)
    fetched = []
    real = registry.download

    def recording(**kw):  # the real download, recorded
        fetched.append(kw.get("artifact_path"))
        return real(**kw)

    monkeypatch.setattr(registry, "download", recording)
    capsys.readouterr()
    rc = sync.main(["reconcile", "--model", name, "--alias", "production", "--tracking-uri", uri, "--skedge",
                    str(SKEDGE), "--publish", str(tmp_path / "edge")])
    err = capsys.readouterr().err
    assert rc == sync.EXIT_FAILURE and "another model body" in err, err
    assert not any("planted" in (p or "") for p in fetched), fetched


def test_a_directory_named_as_the_registry_artifact_is_not_downloaded(server, models, tmp_path, capsys, monkeypatch):
    """`skedge.artifact_path` naming a directory: MLflow's listing gives it no size, and its
    download fetches the whole tree. Neither the pass nor its own export downloads it; nothing of
    it is published (the export, seeing no file to compare, refuses: exit 3)."""
    from mlflow import MlflowClient
    from skedge import registry, sync

    _keep_export_keys(monkeypatch)
    (_, _, _, _) = models
    _, export_pub = _keypair(tmp_path, "export")
    uri, name = server["uri"], "edge_planted_dir"
    (v1,) = _versions(server, name, (1.0,), "skedge-edge-planted-dir")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(name, "production", v1)
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(4):
        (tree / f"part{i}").write_bytes(b"\0" * (1 << 20))
    _plant(client, name, v1, tmp_path, {"big.skedge": tree, "big.manifest.json": b"{}"},
           {**_planted_tags(name, v1, "big.skedge", b"x" * 100), "skedge.body_sha256": "none"})
    fetched = []
    real = registry.download

    def recording(**kw):  # the real download, its paths recorded
        fetched.append(kw.get("artifact_path"))
        return real(**kw)

    monkeypatch.setattr(registry, "download", recording)
    capsys.readouterr()
    rc = sync.main(["reconcile", "--model", name, "--alias", "production", "--tracking-uri", uri, "--skedge",
                    str(SKEDGE), "--publish", str(tmp_path / "edge"), "--trust-key", str(export_pub)])
    err = capsys.readouterr().err
    assert f"skedge/{name}/{v1}/planted/big.skedge" not in fetched, (fetched, err)
    assert "is a directory or has no size in the listing" in err, err
    assert rc == sync.EXIT_FAILURE and not (tmp_path / "edge" / "pointers").exists(), err


def test_a_trusted_artifact_is_published_with_only_what_its_signature_vouches_for(server, models, tmp_path, capsys,
                                                                                 monkeypatch):
    """The manifest beside the registry's artifact is anyone's file (MLflow write access): a pass
    publishing the artifact a pinned key signed writes DEST's manifest from the verified bytes and
    the signed metadata only. A registry writer's `parity` (a gate that "passed" on a million
    texts), `metrics`, `export`, `exported_at`, provenance fields or fields of their own never
    reach DEST; what the signature carries (metrics, provenance, classes, versions) does, as the
    artifact says it, for a destination publishing it as it is and for one re-sealing it."""
    from mlflow import MlflowClient
    from skedge import registry, sync

    _keep_export_keys(monkeypatch)
    (_, key, pub, _) = models
    export_key, export_pub = _keypair(tmp_path, "export")
    uri, name = server["uri"], "edge_vouched_manifest"
    (v1,) = _versions(server, name, (1.0,), "skedge-edge-vouched")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(name, "production", v1)
    assert export.main(["--model-uri", f"models:/{name}/{v1}", "--out", str(tmp_path / "v1.skedge"),
                        "--tracking-uri", uri, "--skedge", str(SKEDGE), "--sign-key", str(export_key)]) == 0
    signed = json.loads(subprocess.run([str(SKEDGE), "inspect", str(tmp_path / "v1.skedge"), "--public-key",
                                        str(export_pub)], capture_output=True, check=True).stdout)
    assert signed["signature_verified"]
    # The registry writer rewrites the manifest beside the version's artifact (its bytes untouched).
    mv = client.get_model_version(name, v1)
    man_rel = registry.manifest_path_for(mv.tags["skedge.artifact_path"])
    planted = json.loads((tmp_path / "v1.manifest.json").read_text())
    planted.update(parity={"passed": True, "texts": 1_000_000, "mismatches": 0, "max_proba_diff": 0.0,
                           "tolerance": 1e-12, "runtime": "planted"},
                   metrics={"accuracy": 0.999}, export={"model_uri": "planted"}, exported_at="2099-01-01T00:00:00Z",
                   provenance={**planted["provenance"], "approved_by": "planted"}, note="planted",
                   classes=["planted", "planted"], estimator="Planted", sklearn_version="99")  # fmt: skip
    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / man_rel.name).write_text(json.dumps(planted))
    client.log_artifact(mv.run_id, str(folder / man_rel.name), str(man_rel.parent))
    capsys.readouterr()

    for dest, extra in ((tmp_path / "plain", []), (tmp_path / "signed", ["--sign-key", str(key)])):
        rc = sync.main(["reconcile", "--model", name, "--alias", "production", "--tracking-uri", uri, "--skedge",
                        str(SKEDGE), "--publish", str(dest), "--trust-key", str(export_pub), *extra])
        err = capsys.readouterr().err
        assert rc == 0 and "signed by a --trust-key" in err and "parity gate" not in err, err  # no export ran
        pointer = _stored(dest, name, pub=pub if extra else None)
        man = json.loads((dest / publish.manifest_key(pointer["sha256"])).read_text())
        assert not {"parity", "export", "exported_at", "note"} & set(man), man
        assert man["metrics"] == signed["metrics"] and man["provenance"] == signed["provenance"], man
        assert (man["classes"], man["estimator"], man["sklearn_version"]) == (
            signed["classes"], signed["estimator"], signed["sklearn_version"]), man
        assert (man["name"], man["version"], man["precision"]) == (name, v1, "exact")
        assert (man["sha256"], man["size"], man["format_version"]) == (
            pointer["sha256"], pointer["size"], pointer["format_version"])
        assert "planted" not in json.dumps(man), man


def test_destinations_sealing_one_version_otherwise_stay_in_sync(server, models, tmp_path, capsys, monkeypatch):
    """The version's `skedge.sha256` names the last export's seal only: a destination signed with
    another key, or not signed, holds other bytes of the same model (`skedge.body_sha256`) and is
    in sync. Compared by bytes, the unsigned one failed every pass (exit 3: the signature would be
    removed) and two keys re-exported and re-tagged each other's version on every pass."""
    from mlflow import MlflowClient
    from skedge import sync

    _keep_export_keys(monkeypatch)
    (_, key, _, other_pub) = models
    other = Path(other_pub).with_suffix(".key")
    uri, name = server["uri"], "edge_seals"
    (v1,) = _versions(server, name, (1.0,), "skedge-edge-seals")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias(name, "production", v1)
    base = ["reconcile", "--model", name, "--alias", "production", "--tracking-uri", uri, "--skedge", str(SKEDGE)]
    dests = [(tmp_path / "plain", []), (tmp_path / "signed", ["--sign-key", str(key)]),
             (tmp_path / "other", ["--sign-key", str(other)])]
    for d, extra in dests:  # each publishes once: generation 1
        assert sync.main([*base, "--publish", str(d), *extra]) == 0
    capsys.readouterr()
    tags = client.get_model_version(name, v1).tags
    for _ in range(2):
        for d, extra in dests:
            assert sync.main([*base, "--publish", str(d), *extra]) == 0
            err = capsys.readouterr().err
            assert "in sync" in err and "not in sync" not in err, err
            assert _stored(d, name)["generation"] == 1
    after = client.get_model_version(name, v1).tags
    assert {k: after[k] for k in ("skedge.sha256", "skedge.body_sha256", "skedge.published")} == {
        k: tags[k] for k in ("skedge.sha256", "skedge.body_sha256", "skedge.published")}


def test_a_rollback_to_a_version_exported_again_since_is_refused(server, models, tmp_path, capsys, monkeypatch):
    """A rollback to a generation whose blob holds its version as exported before `--force`
    replaced it would be undone by the next reconcile (publishing the registry's bytes), and a
    second rollback would swing back: refused, naming how to serve the version's bytes now."""
    from mlflow import MlflowClient
    from skedge import sync

    _keep_export_keys(monkeypatch)
    (_, key, pub, _) = models
    uri, name = server["uri"], "edge_rb_reexport"
    v1, v2 = _versions(server, name, (1.0, 10.0), "skedge-edge-rb-reexport")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    target = tmp_path / "edge"
    texts, _ = binary_corpus(300)
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("text\n" + "".join(t + "\n" for t in texts[:150]), encoding="utf-8")
    common = ["--tracking-uri", uri, "--skedge", str(SKEDGE), "--sign-key", str(key)]
    argv = ["--model", name, "--alias", "production", "--publish", str(target), *common]
    client.set_registered_model_alias(name, "production", v1)
    assert export.main(["--model-uri", f"models:/{name}@production", "--out", str(tmp_path / "custom.skedge"),
                        "--baseline", str(baseline), "--publish", str(target), *common]) == 0  # generation 1
    client.set_registered_model_alias(name, "production", v2)
    assert sync.main(["reconcile", *argv]) == 0  # generation 2
    assert export.main(["--model-uri", f"models:/{name}/{v1}", "--out", str(tmp_path / "plain.skedge"), "--force",
                        *common]) == 0
    capsys.readouterr()
    assert sync.main(["rollback", *argv]) == sync.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "holds another model than MLflow records for it now" in err and "run reconcile" in err, err
    assert _stored(target, name, pub=pub)["generation"] == 2
    assert client.get_model_version_by_alias(name, "production").version == v2
    # What the message says: the alias set to version 1, reconcile publishes its bytes now.
    client.set_registered_model_alias(name, "production", v1)
    assert sync.main(["reconcile", *argv]) == 0
    now = _stored(target, name, pub=pub)
    assert (now["version"], now["generation"], now["sha256"]) == (
        v1, 3, client.get_model_version(name, v1).tags["skedge.sha256"])


def test_an_in_sync_pass_writes_a_missing_or_older_published_tag_without_ping_pong(
        server, models, tmp_path, capsys, monkeypatch):
    """`skedge.published` names where a version was last published. A pointer published without
    it (export.py --publish, or a pass whose tagging failed after the pointer moved) gets it from
    the next pass that finds it in sync: missing, or naming this destination at a lower
    generation. A tag naming another destination, or this one at a higher generation (another
    alias's pointer), is left: each in-sync pass of each would otherwise re-tag it in turn."""
    from mlflow import MlflowClient
    from skedge import sync

    _keep_export_keys(monkeypatch)
    (_, key, pub, _) = models
    uri, name = server["uri"], "edge_retag"
    v1, v2 = _versions(server, name, (1.0, 10.0), "skedge-edge-retag")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    target, elsewhere = tmp_path / "edge", tmp_path / "edge2"
    common = ["--tracking-uri", uri, "--skedge", str(SKEDGE), "--sign-key", str(key)]

    def reconcile(dest=target, alias="production"):
        assert sync.main(["reconcile", "--model", name, "--alias", alias, "--publish", str(dest), *common]) == 0

    def tag(version=v1):
        return client.get_model_version(name, version).tags.get("skedge.published")

    def export_publish():
        assert export.main(["--model-uri", f"models:/{name}@production", "--out", str(tmp_path / "m.skedge"),
                            "--publish", str(target), *common]) == 0

    client.set_registered_model_alias(name, "production", v1)
    export_publish()  # generation 1, untagged
    assert tag() is None
    reconcile()
    assert tag() == f"{target} generation 1"
    client.set_registered_model_alias(name, "production", v2)
    reconcile()
    client.set_registered_model_alias(name, "production", v1)
    export_publish()  # generation 3 names v1 again; its tag still says generation 1
    assert _stored(target, name, pub=pub)["generation"] == 3 and tag() == f"{target} generation 1"
    reconcile()
    assert tag() == f"{target} generation 3"

    # Another destination publishes it: the tag names that one, and stays so.
    reconcile(elsewhere)
    assert tag() == f"{elsewhere} generation 1"
    reconcile()
    reconcile(elsewhere)
    assert tag() == f"{elsewhere} generation 1"
    client.delete_model_version_tag(name, v1, "skedge.published")
    reconcile()
    assert tag() == f"{target} generation 3"

    # Another alias of the same destination names v1 at its own generation 1: its publish tags it
    # so, the production pass moves it up to 3, and the staging pass leaves it there.
    client.set_registered_model_alias(name, "staging", v1)
    reconcile(alias="staging")
    assert tag() == f"{target} generation 1"
    for alias in ("production", "staging", "production", "staging"):
        reconcile(alias=alias)
        assert tag() == f"{target} generation 3", alias


def _three_generations(server, models, tmp_path, name: str, experiment: str):
    """Versions 1, 2, 3 of `name` published in turn to a signed folder destination (generations 1
    to 3), as the rollback tests start: (client, argv, target, (v1, v2, v3), generation 2's pointer)."""
    from mlflow import MlflowClient
    from skedge import sync

    (_, key, _, _) = models
    uri = server["uri"]
    versions = _versions(server, name, (1.0, 10.0, 3.0), experiment)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    target = tmp_path / "edge"
    argv = ["--model", name, "--alias", "production", "--publish", str(target), "--tracking-uri", uri,
            "--sign-key", str(key), "--skedge", str(SKEDGE)]
    for version in versions:
        client.set_registered_model_alias(name, "production", version)
        assert sync.main(["reconcile", *argv]) == 0
    gen2 = json.loads((target / publish.history_key(name, "production", 2)).read_text())["pointer"]
    return client, argv, target, versions, gen2


@pytest.mark.parametrize("legacy", [False, True], ids=["confirmed", "record-without-moved"])
def test_a_rollback_whose_pointer_write_failed_is_completed_by_reconcile_as_a_rollback(
        server, models, tmp_path, capsys, legacy):
    """rollback moves the alias first, then writes the pointer. When the second step fails (here
    the destination refuses the write), the next reconcile finishes the rollback, and records it
    as one: the entry says which generation it rolled back from, the version rolled away from is
    tagged, and a further rollback goes further back, not to that version (as it would after an
    ordinary publish of the alias's version). The same for a record written before records were
    confirmed (no `moved`): an upgrade between the two steps finishes it as the rollback too."""
    from skedge import sync

    (_, _, pub, _) = models
    name = "edge_rollback_fault" + ("_legacy" if legacy else "")
    client, argv, target, (v1, v2, v3), gen2 = _three_generations(server, models, tmp_path, name, "skedge-edge-rollback-fault" + ("-legacy" if legacy else ""))

    lock = target / f"{publish.pointer_key(name, 'production')}.lock"
    lock.unlink()
    lock.mkdir()  # the pointer's write fails (PUBLISH_FAILED) after the alias moved
    capsys.readouterr()
    assert sync.main(["rollback", *argv]) == sync.EXIT_FAILURE
    assert "error[PUBLISH_FAILED]" in capsys.readouterr().err
    assert str(client.get_model_version_by_alias(name, "production").version) == v2
    assert _stored(target, name)["version"] == v3
    lock.rmdir()
    if legacy:
        (tag,) = [k for k in client.get_registered_model(name).tags if k.startswith("skedge.rollback.")]
        record = json.loads(client.get_registered_model(name).tags[tag])
        assert record.pop("moved") is True
        client.set_registered_model_tag(name, tag, json.dumps(record))

    assert sync.main(["reconcile", *argv]) == 0
    p = _stored(target, name, pub=pub)
    entry = json.loads((target / publish.history_key(name, "production", p["generation"])).read_text())
    assert (p["version"], p["sha256"], p["previous_generation"]) == (v2, gen2["sha256"], 3)
    assert (entry["rolled_back_from"], entry["rollback_to"]) == (3, 1)
    assert client.get_model_version(name, v3).tags["skedge.rolled_back"] == (
        f"{target} generation {p['generation']} -> version {v2}")
    assert client.get_model_version(name, v2).tags["skedge.published"] == f"{target} generation {p['generation']}"
    assert sync.main(["reconcile", *argv]) == 0 and _stored(target, name) == p  # in sync
    assert sync.main(["rollback", *argv]) == 0
    assert _stored(target, name)["version"] == v1
    assert not [k for k in client.get_registered_model(name).tags if k.startswith("skedge.rollback.")]


def test_a_rollback_interrupted_before_its_alias_move_never_turns_a_later_move_into_a_rollback(
        server, models, tmp_path, capsys):
    """rollback records itself in MLflow (`skedge.rollback.<h>`), then moves the alias, then confirms
    the record (`moved`). Killed between the record and the move, it leaves the record naming a
    version the alias does not: passes leave the pointer as it is, and a later, ordinary move of the
    alias to that version (the pointer still on the record's generation) is published as a move,
    not as that rollback: its entry records no rollback, the version it replaced is not tagged
    rolled back, and a rollback of it returns to that version instead of skipping it."""
    import argparse

    from skedge import sync

    (_, _, pub, _) = models
    name = "edge_rollback_inert"
    client, argv, target, (v1, v2, v3), gen2 = _three_generations(server, models, tmp_path, name, "skedge-edge-rollback-inert")
    third = _stored(target, name, pub=pub)

    # What `rollback` (to generation 2, version 2) writes before its alias move, left by a kill there.
    args = argparse.Namespace(publish=str(target), alias="production")
    record = sync.rollback_record(args, third, 2, gen2, moved=False)
    assert (record["from"], record["to"], record["version"], record["moved"]) == (3, 2, v2, False)
    client.set_registered_model_tag(name, sync._rollback_key(args), json.dumps(record))
    capsys.readouterr()
    assert sync.main(["reconcile", *argv]) == 0 and _stored(target, name, pub=pub) == third
    assert "in sync" in capsys.readouterr().err

    # Later, someone sets the alias to version 2 (by hand, promote): an ordinary publish.
    client.set_registered_model_alias(name, "production", v2)
    assert sync.main(["reconcile", *argv]) == 0
    err = capsys.readouterr().err
    assert "never moved the alias" in err and "finishing the rollback" not in err, err
    p = _stored(target, name, pub=pub)
    entry = json.loads((target / publish.history_key(name, "production", p["generation"])).read_text())
    assert (p["version"], p["generation"], p["previous_generation"]) == (v2, 4, 3)
    assert (entry["rolled_back_from"], entry["rollback_to"]) == (0, 3)
    assert "skedge.rolled_back" not in client.get_model_version(name, v3).tags
    assert sync.main(["reconcile", *argv]) == 0 and _stored(target, name, pub=pub) == p  # in sync

    # Rolling that move back returns to version 3, the one it replaced.
    assert sync.main(["rollback", *argv]) == 0
    back = _stored(target, name, pub=pub)
    assert (back["version"], back["sha256"]) == (v3, third["sha256"])
    assert str(client.get_model_version_by_alias(name, "production").version) == v3
    assert not [k for k in client.get_registered_model(name).tags if k.startswith("skedge.rollback.")]


def test_a_rollback_confirmed_during_the_pass_export_is_finished_as_a_rollback(server, models, tmp_path, capsys,
                                                                               monkeypatch):
    """A `rollback` held up between its alias move and its record's confirmation (`moved`) for
    longer than a pass waits: the pass prompted by the move gives up waiting and exports the
    version; the confirmation arriving during that export is read again before the publish, and
    the pass writes the pointer as the rollback (its entry says so, the version rolled away from is
    tagged), not as an ordinary move that a second rollback would undo. (The wait is set to 0 here
    instead of being outlasted.)"""
    import argparse

    from skedge import sync

    _keep_export_keys(monkeypatch)
    (_, _, pub, _) = models
    name = "edge_rollback_late"
    client, argv, target, (v1, v2, v3), gen2 = _three_generations(server, models, tmp_path, name, "skedge-edge-rollback-late")
    third = _stored(target, name, pub=pub)

    # `rollback` (to generation 2, version 2) recorded itself and moved the alias; its
    # confirmation comes only while the pass exports the version.
    args = argparse.Namespace(publish=str(target), alias="production")
    tag = sync._rollback_key(args)
    client.set_registered_model_tag(name, tag, json.dumps(sync.rollback_record(args, third, 2, gen2, moved=False)))
    client.set_registered_model_alias(name, "production", v2)
    real = export.main

    def confirmed_meanwhile(*a, **kw):  # the real export, the rollback's confirmation landing first
        client.set_registered_model_tag(name, tag, json.dumps(sync.rollback_record(args, third, 2, gen2, moved=True)))
        return real(*a, **kw)

    monkeypatch.setattr(sync, "ROLLBACK_CONFIRM_SECONDS", 0.0)
    monkeypatch.setattr(export, "main", confirmed_meanwhile)
    capsys.readouterr()
    assert sync.main(["reconcile", *argv]) == 0
    err = capsys.readouterr().err
    assert "never moved the alias" in err and "finishing the rollback" in err, err
    p = _stored(target, name, pub=pub)
    entry = json.loads((target / publish.history_key(name, "production", p["generation"])).read_text())
    assert (p["version"], p["sha256"], p["generation"]) == (v2, gen2["sha256"], 4)
    assert (entry["rolled_back_from"], entry["rollback_to"]) == (3, 1)
    assert client.get_model_version(name, v3).tags["skedge.rolled_back"] == f"{target} generation 4 -> version {v2}"
    assert tag not in client.get_registered_model(name).tags


from test_sync_serve import SECRET, _env, _process, _settled, mlflow_hooks  # noqa: E402, F401 (a fixture)


def test_a_rollback_racing_its_own_webhook_pass_is_recorded_as_a_rollback(mlflow_hooks, models, tmp_path,
                                                                          capsys, monkeypatch):
    """rollback's alias move prompts `sync.py serve` (real, over MLflow's webhook); its pass can
    publish before rollback writes the pointer (rollback held up between its two steps, here until
    the pass has run). The pass then completes the rollback as a rollback, rollback exits 0, and a
    second rollback goes further back instead of returning to the version rolled away from."""
    from mlflow import MlflowClient
    from skedge import sync

    (_, key, pub, _) = models
    uri, name = mlflow_hooks["uri"], "edge_rollback_race"
    v1, v2, v3 = _versions({"uri": uri}, name, (1.0, 10.0, 3.0), "skedge-edge-rollback-race")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    target = tmp_path / "edge"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    assert sync.main(["webhook", "create", "--url", f"{url}/webhook", "--secret", SECRET, "--tracking-uri", uri,
                      "--name", "skedge-rollback-race"]) == 0  # fmt: skip
    serve = [sys.executable, "-m", "skedge.sync", "serve", "--publish", str(target), "--port", str(port),
             "--tracking-uri", uri, "--sign-key", str(key), "--skedge", str(SKEDGE), "--model", name,
             "--retries", "0"]  # fmt: skip
    argv = ["--model", name, "--alias", "production", "--publish", str(target), "--tracking-uri", uri,
            "--sign-key", str(key), "--skedge", str(SKEDGE)]
    log = tmp_path / "serve.log"
    with _process(serve, log, _env(SKEDGE_WEBHOOK_SECRET=SECRET), url + "/health"):
        for n, version in enumerate((v1, v2, v3), 1):
            client.set_registered_model_alias(name, "production", version)
            _settled(url, n)
            assert _stored(target, name, pub=pub)["generation"] == n, log.read_text()

        real = publish.point

        def held_up(*a, **kw):  # rollback's second step, once serve's pass for its move has run
            _settled(url, 4)
            return real(*a, **kw)

        monkeypatch.setattr(publish, "point", held_up)
        capsys.readouterr()
        rc = sync.main(["rollback", *argv])
        monkeypatch.undo()
        err = capsys.readouterr().err
        p = _stored(target, name, pub=pub)
        entry = json.loads((target / publish.history_key(name, "production", 4)).read_text())
        assert (rc, p["version"], p["generation"]) == (0, v2, 4), err + log.read_text()
        assert "wrote it first, as this rollback" in err and "finishing the rollback" in log.read_text()
        assert (entry["rolled_back_from"], entry["rollback_to"]) == (3, 1)
        assert client.get_model_version(name, v3).tags["skedge.rolled_back"] == f"{target} generation 4 -> version {v2}"

        assert sync.main(["rollback", *argv]) == 0
        _settled(url, 5)
        assert _stored(target, name, pub=pub)["version"] == v1
