"""Publishing to MLflow (issue #19, "Exporter"), against a real `mlflow server`: a re-export of
the same version with the same options is idempotent (same bytes, nothing logged); the same
model under another seal (a signature added or replaced) is re-sealed; other bytes need --force; an export interrupted between upload and tagging leaves the run as it was; a bare
`models:/NAME` says which URI to write."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
from conftest import SKEDGE, binary_corpus, dev_script, requires_skedge

from skedge import export
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


def _register(uri, name):
    train_demo = dev_script("train_demo")

    texts, labels = binary_corpus(300)
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(texts, labels)
    return train_demo.log_and_register(pipe, name, tracking_uri=uri, example_texts=texts[:5],
                                       experiment="skedge-publish", alias="production")


def _export(uri, model_uri, out, **kw):
    from skedge import registry

    logs: list = []
    rc = registry.export_model_uri(export, model_uri, out, tracking_uri=uri, skedge=SKEDGE,
                                   log=logs.append, **kw)
    return rc, "\n".join(logs)


def _state(uri, ids):
    """(files under skedge/ with their sha256, the version's skedge.* tags)."""
    import mlflow

    from skedge import registry

    c = registry.client(uri)
    files = {}
    listing, seen = list(c.list_artifacts(ids["run_id"], "skedge")), []
    while listing:  # one folder per version: skedge/<name>/<version>/
        a = listing.pop()
        if a.is_dir:
            listing += c.list_artifacts(ids["run_id"], a.path)
        else:
            seen.append(a)
    for a in seen:
        with registry.using(uri):
            local = mlflow.artifacts.download_artifacts(run_id=ids["run_id"], artifact_path=a.path,
                                                        tracking_uri=uri)
        with open(local, "rb") as f:
            files[a.path] = hashlib.sha256(f.read()).hexdigest()
    tags = {k: v for k, v in c.get_model_version(ids["name"], ids["version"]).tags.items()
            if k.startswith("skedge.")}
    return files, tags


def _baseline(tmp_path, n):
    path = tmp_path / f"baseline{n}.tsv"
    path.write_text("text\n" + "".join(t + "\n" for t in binary_corpus(n)[0]), encoding="utf-8")
    return path


@requires_skedge
@pytest.mark.team
def test_reexport_is_idempotent_and_other_bytes_need_force(server, tmp_path, monkeypatch):
    from skedge import registry

    uri = server["uri"]
    ids = _register(uri, "t_publish")
    rc, logs = _export(uri, "models:/t_publish@production", tmp_path / "a.skedge")
    assert rc == 0, logs
    first = _state(uri, ids)
    assert first[1]["skedge.sha256"] == hashlib.sha256((tmp_path / "a.skedge").read_bytes()).hexdigest()

    # Same version (through another URI form), same options: the same bytes, nothing uploaded.
    def no_upload(*a, **k):
        raise AssertionError("an identical re-export must not log files")

    monkeypatch.setattr(registry, "upload", no_upload)
    rc, logs = _export(uri, "models:/t_publish/1", tmp_path / "b.skedge")
    assert rc == 0, logs
    assert (tmp_path / "b.skedge").read_bytes() == (tmp_path / "a.skedge").read_bytes()
    assert "already publishes these exact bytes: nothing written to MLflow" in logs
    assert _state(uri, ids) == first
    monkeypatch.undo()

    # Other bytes (another drift baseline): refused without --force, nothing changes anywhere.
    options = {"inputs": export.GateInputs(baseline=_baseline(tmp_path, 120))}
    rc, logs = _export(uri, "models:/t_publish@production", tmp_path / "c.skedge", **options)
    assert rc == export.EXIT_FAILURE and "pass --force" in logs and first[1]["skedge.sha256"] in logs
    assert not (tmp_path / "c.skedge").exists()
    assert _state(uri, ids) == first
    # --dry-run only warns
    rc, logs = _export(uri, "models:/t_publish@production", tmp_path / "c.skedge", dry_run=True, **options)
    assert rc == 0 and "WARNING" in logs and "--force" in logs

    rc, logs = _export(uri, "models:/t_publish@production", tmp_path / "c.skedge", force=True, **options)
    assert rc == 0, logs
    files, tags = _state(uri, ids)
    new_sha = hashlib.sha256((tmp_path / "c.skedge").read_bytes()).hexdigest()
    assert tags["skedge.sha256"] == new_sha != first[1]["skedge.sha256"]
    # the replaced a.* files are gone from the run: no file without a tag pointing at it
    assert sorted(files) == ["skedge/t_publish/1/c.manifest.json", "skedge/t_publish/1/c.parity.json",
                            "skedge/t_publish/1/c.skedge"]
    assert tags["skedge.artifact_path"] == "skedge/t_publish/1/c.skedge"
    restored = tmp_path / "restored.skedge"
    registry.restore("models:/t_publish/1", restored, uri)
    assert restored.read_bytes() == (tmp_path / "c.skedge").read_bytes()


@requires_skedge
def test_a_signature_added_or_replaced_later_re_seals_without_force(server, tmp_path, monkeypatch, capsys):
    """README's order: exported unsigned first (the first command of "Export from MLflow"), then
    signed (--publish --sign-key, sync.py reconcile --sign-key): the same model body, only the
    seal differs (FORMAT.md §3), so it is replaced without --force and says "re-sealed". A
    signature removed, or another body, still needs --force."""
    from skedge import registry

    for field in ("sign_key", "public_key", "encrypt_key"):  # main() sets them: put back after the test
        monkeypatch.setattr(export.KEYS, field, getattr(export.KEYS, field))
    uri = server["uri"]
    ids = _register(uri, "t_reseal")
    for name in ("release", "rotated"):
        subprocess.run([str(SKEDGE), "keygen", str(tmp_path / name)], check=True, capture_output=True)

    def run(out, *extra):
        capsys.readouterr()
        rc = export.main(["--model-uri", "models:/t_reseal@production", "--out", str(tmp_path / out),
                          "--tracking-uri", uri, "--skedge", str(SKEDGE), *extra])
        return rc, capsys.readouterr().err

    def sha(name):
        return hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()

    rc, err = run("plain.skedge")
    assert rc == 0, err
    rc, err = run("signed.skedge", "--sign-key", str(tmp_path / "release.key"))
    assert rc == 0, err
    assert "(signature added): re-sealed" in err and "--force" not in err
    assert "re-sealed: signature added, the same model" in err
    plain, signed = (tmp_path / "plain.skedge").read_bytes(), (tmp_path / "signed.skedge").read_bytes()
    assert registry.seal_change(plain, signed) == "signature added"
    files, tags = _state(uri, ids)
    assert tags["skedge.sha256"] == sha("signed.skedge")
    assert sorted(files) == [f"skedge/t_reseal/1/signed.{x}" for x in ("manifest.json", "parity.json", "skedge")]
    registry.restore("models:/t_reseal/1", tmp_path / "restored.skedge", uri)
    assert (tmp_path / "restored.skedge").read_bytes() == signed

    rc, err = run("again.skedge", "--sign-key", str(tmp_path / "release.key"))
    assert rc == 0 and "already publishes these exact bytes" in err, err
    rc, err = run("rotated.skedge", "--sign-key", str(tmp_path / "rotated.key"))  # a key rotation
    assert rc == 0 and "(signature replaced): re-sealed" in err, err
    assert _state(uri, ids)[1]["skedge.sha256"] == sha("rotated.skedge")

    # Unsigned over signed: the same model, but --restore would lose the signature.
    before = _state(uri, ids)
    rc, err = run("unsigned.skedge")
    assert rc == export.EXIT_FAILURE and "drops the signature" in err, err
    assert "pass --sign-key" in err and "pass --force" in err and "re-sealed" not in err
    assert not (tmp_path / "unsigned.skedge").exists() and _state(uri, ids) == before
    # Another body, signed or not: --force, as before.
    rc, err = run("other.skedge", "--sign-key", str(tmp_path / "rotated.key"), "--baseline", str(_baseline(tmp_path, 120)))
    assert rc == export.EXIT_FAILURE and "another model body" in err and "pass --force" in err, err
    assert "re-sealed" not in err and _state(uri, ids) == before
    rc, err = run("unsigned.skedge", "--force")
    assert rc == 0 and _state(uri, ids)[1]["skedge.sha256"] == sha("unsigned.skedge"), err


@requires_skedge
@pytest.mark.team
def test_interrupted_between_upload_and_tags_leaves_the_run_as_it_was(server, tmp_path, monkeypatch):
    from skedge import registry

    uri = server["uri"]
    ids = _register(uri, "t_interrupted")

    def injected(*a, **k):
        raise registry.RegistryError("injected failure between upload and tagging")

    # A first export that fails after uploading: no file stays in the run, no tag, no local file.
    monkeypatch.setattr(registry, "set_skedge_tags", injected)
    rc, logs = _export(uri, "models:/t_interrupted@production", tmp_path / "out" / "m.skedge")
    assert rc == export.EXIT_FAILURE and "injected" in logs and "could not undo" not in logs
    assert _state(uri, ids) == ({}, {})
    assert list(tmp_path.iterdir()) == []

    # A published version, then a forced replacement that fails: the previous files come back.
    monkeypatch.undo()
    rc, logs = _export(uri, "models:/t_interrupted@production", tmp_path / "m.skedge")
    assert rc == 0, logs
    published = _state(uri, ids)
    monkeypatch.setattr(registry, "set_skedge_tags", injected)
    # (the same file names: the run's copies are overwritten by the upload, then put back)
    rc, logs = _export(uri, "models:/t_interrupted@production", tmp_path / "again" / "m.skedge", force=True,
                       inputs=export.GateInputs(baseline=_baseline(tmp_path, 110)))
    assert rc == export.EXIT_FAILURE and "injected" in logs and "could not undo" not in logs
    assert _state(uri, ids) == published
    registry.restore("models:/t_interrupted/1", tmp_path / "r.skedge", uri)
    assert (tmp_path / "r.skedge").read_bytes() == (tmp_path / "m.skedge").read_bytes()


def test_bare_model_name_suggests_alias_and_latest(server):
    from skedge import registry

    uri = server["uri"]
    _register(uri, "t_bare")
    with pytest.raises(registry.RegistryError) as err:
        registry.load_from_registry("models:/t_bare", uri)
    msg = str(err.value)
    assert "read as a LoggedModel id" in msg
    assert "models:/t_bare@ALIAS" in msg and "models:/t_bare/latest" in msg
    assert "models:/t_bare@production" in msg  # its aliases
