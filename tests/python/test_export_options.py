"""export.py's options from a file (issue #19, "Exporter"): reproducible bytes, --dry-run, the
manifest and parity report beside the artifact, --validation as TSV / CSV / Parquet with column
options and without labels, --baseline, and refusals that say what to do."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SKEDGE, binary_corpus, dump, fit, no_leftovers, requires_skedge

from skedge import export
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import RobustScaler


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = fit(make_pipeline(TfidfVectorizer(min_df=2), LogisticRegression(max_iter=3000)))
    return dump(model, tmp_path_factory.mktemp("model"))


def _inspect(artifact):
    proc = subprocess.run([str(SKEDGE), "inspect", str(artifact)], capture_output=True, check=True)
    return json.loads(proc.stdout)


def _write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@requires_skedge
def test_same_model_and_options_give_the_same_bytes(model_file, tmp_path, capsys):
    a, b = tmp_path / "a" / "m.skedge", tmp_path / "b" / "m.skedge"
    copy = tmp_path / "elsewhere" / model_file.name
    copy.parent.mkdir()
    copy.write_bytes(model_file.read_bytes())
    for source, out in ((model_file, a), (copy, b)):  # where the file sits does not matter
        assert export.main(["--joblib", str(source), "--out", str(out), "--name", "m"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert _inspect(a)["created"] == ""  # a joblib file records no training time
    man = json.loads((tmp_path / "a" / "m.manifest.json").read_text())
    assert man["exported_at"].endswith("Z") and man["created"] == ""
    assert "exported_at" not in man["provenance"] and man["provenance"]["source"] == "model.joblib"
    assert man["export"] == {"source": str(model_file)}


@requires_skedge
def test_dry_run_writes_no_file(model_file, tmp_path, capsys):
    out = tmp_path / "new" / "m.skedge"
    assert export.main(["--joblib", str(model_file), "--out", str(out), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "parity gate passed" in err and "dry run: nothing written" in err
    assert list(tmp_path.iterdir()) == []  # not even the folder


@requires_skedge
def test_validation_csv_with_columns_and_a_separate_baseline(model_file, tmp_path, capsys):
    texts, labels = binary_corpus(150)
    # quotes, commas and a newline inside a text survive CSV quoting
    texts = [texts[0] + ', "quoted"\nsecond line'] + texts[1:]
    val = _write_csv(tmp_path / "val.csv", ["id", "review", "stars"],
                     [[i, t, y] for i, (t, y) in enumerate(zip(texts[:80], labels[:80]))])
    base = _write_csv(tmp_path / "prod.csv", ["review"], [[t] for t in texts[40:150]])
    out = tmp_path / "m.skedge"
    code = export.main(["--joblib", str(model_file), "--out", str(out), "--validation", str(val),
                        "--text-column", "review", "--label-column", "stars", "--baseline", str(base)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "WARNING" not in err  # 110 baseline texts
    info = _inspect(out)
    assert 0.5 < info["metrics"]["accuracy"] <= 1.0
    assert info["provenance"]["baseline"] == "--baseline prod.csv, 110 texts"
    report = json.loads((tmp_path / "m.parity.json").read_text())
    assert report["sources"]["validation"] == 80


@requires_skedge
def test_unlabelled_parquet_feeds_the_gate_only(model_file, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts, _ = binary_corpus(30)
    pq.write_table(pa.table({"text": texts}), tmp_path / "val.parquet")
    out = tmp_path / "m.skedge"
    code = export.main(["--joblib", str(model_file), "--out", str(out),
                        "--validation", str(tmp_path / "val.parquet")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "WARNING: the drift baseline comes from only 30 texts" in err and "--baseline" in err
    info = _inspect(out)
    assert "accuracy" not in info["metrics"]
    assert info["provenance"]["baseline"] == "--validation val.parquet, 30 texts"
    assert json.loads((tmp_path / "m.parity.json").read_text())["sources"]["validation"] == 30


def test_validation_readers(tmp_path):
    tsv = tmp_path / "v.tsv"
    tsv.write_text("label\ttext\n1\ta \"b\"\n0\tc\n", encoding="utf-8")
    assert export.read_validation(tsv) == (['a "b"', "c"], ["1", "0"])
    assert export.read_validation(tsv, label_column="label")[1] == ["1", "0"]
    tsv.write_text("text\nonly texts\n", encoding="utf-8")
    assert export.read_validation(tsv) == (["only texts"], [])
    with pytest.raises(export.ExportError, match=r"no column 'label'.*--label-column"):
        export.read_validation(tsv, label_column="label")
    with pytest.raises(export.ExportError, match=r"no column 'review'.*--text-column"):
        export.read_validation(tsv, text_column="review")
    tsv.write_text("text\tlabel\na\t1\tx\n", encoding="utf-8")
    with pytest.raises(export.ExportError, match=r"v.tsv:2: expected 2 tab-separated columns, found 3"):
        export.read_validation(tsv)
    with pytest.raises(export.ExportError, match=r"unknown table format '.json'"):
        export.read_validation(tmp_path / "v.json")
    bad = tmp_path / "v.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(export.ExportError, match=r"cannot read .* as Parquet"):
        export.read_validation(bad)


def test_refused_step_says_what_to_do(tmp_path, capsys):
    texts, labels = binary_corpus(200)
    model = make_pipeline(TfidfVectorizer(), RobustScaler(with_centering=False), LogisticRegression())
    model.fit(texts, labels)
    path = dump(model, tmp_path)
    # Off the allow-list, the file is refused unread; trusted, the step itself is refused.
    assert export.main(["--joblib", str(path), "--out", str(tmp_path / "m.skedge")]) == 2
    err = capsys.readouterr().err
    assert "RobustScaler" in err and "(if you made this file yourself, --trust-pickle loads it as is)" in err
    assert export.main(["--joblib", str(path), "--trust-pickle", "--out", str(tmp_path / "m.skedge")]) == 2
    err = capsys.readouterr().err
    assert "RobustScaler" in err and "--trust-pickle" not in err
    assert "what to do: refit without RobustScaler" in err and "compatibility table in README" in err
    assert no_leftovers(tmp_path, {"model.joblib"}) == []


def test_a_classifier_alone_points_at_vectorizer(tmp_path, capsys):
    texts, labels = binary_corpus(200)
    vec = TfidfVectorizer().fit(texts)
    clf = LogisticRegression().fit(vec.transform(texts), labels)
    path = dump(clf, tmp_path, "clf.joblib")
    assert export.main(["--joblib", str(path), "--out", str(tmp_path / "m.skedge")]) == 2
    err = capsys.readouterr().err
    assert "classifier alone" in err and f"{len(vec.vocabulary_)} features" in err
    assert "--vectorizer" in err and "refit without" not in err


def test_parity_runtime_is_pkg_only_when_no_source_is_newer(tmp_path, monkeypatch):
    """The gate runs pkg/ in Node when pkg/ was built, or last found built by scripts/build.sh
    (which compares content and touches its stamp), after every source file changed; else the CLI."""
    if shutil.which("node") is None:
        pytest.skip("no node")
    monkeypatch.delenv("SKEDGE_PARITY_RUNTIME", raising=False)
    monkeypatch.setattr(export, "PKG", tmp_path)
    src = Path(export.__file__).resolve().parents[2] / "src"
    newest = max(p.stat().st_mtime for p in src.rglob("*.rs"))
    wasm, stamp = tmp_path / "skedge_bg.wasm", tmp_path / ".build-inputs"
    assert export.parity_runtime() == "native CLI"  # not built
    wasm.write_bytes(b"\0asm")
    os.utime(wasm, (newest - 60, newest - 60))
    assert export.parity_runtime() == "native CLI"  # a source changed after the build
    stamp.write_text("digest\n")
    os.utime(stamp, (newest - 30, newest - 30))
    assert export.parity_runtime() == "native CLI"  # ... and after the last check
    os.utime(stamp, (newest + 1, newest + 1))
    assert export.parity_runtime() == "wasm in Node (pkg/)"  # build.sh found it current since
    monkeypatch.setenv("SKEDGE_PARITY_RUNTIME", "native")
    assert export.parity_runtime() == "native CLI"


def test_a_validation_csv_with_a_byte_order_mark_is_read(tmp_path):
    """Excel and PowerShell write UTF-8 with a BOM: it must not become part of the first column's name."""
    val = tmp_path / "bom.csv"
    val.write_bytes("text,label\nso good,1\n".encode("utf-8-sig"))
    assert export.read_validation(val) == (["so good"], ["1"])
    tsv = tmp_path / "bom.tsv"
    tsv.write_bytes("text\tlabel\nso good\t1\n".encode("utf-8-sig"))
    assert export.read_validation(tsv, label_column="label") == (["so good"], ["1"])


@requires_skedge
def test_labels_not_among_the_classes_are_named_in_a_warning(model_file, tmp_path, capsys):
    texts, labels = binary_corpus(40)
    val = _write_csv(tmp_path / "val.csv", ["text", "label"],
                     [[t, "pos" if y else "neg"] for t, y in zip(texts, labels)])
    code = export.main(["--joblib", str(model_file), "--out", str(tmp_path / "m.skedge"),
                        "--validation", str(val), "--label-column", "label"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "WARNING: no accuracy computed" in err and "'neg', 'pos'" in err and "'0', '1'" in err
    assert "accuracy" not in _inspect(tmp_path / "m.skedge")["metrics"]


@requires_skedge
def test_dry_run_to_a_place_that_cannot_be_written_works(model_file, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "sub" / "m.skedge"
    assert export.main(["--joblib", str(model_file), "--out", str(out), "--dry-run"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.parametrize("where", ["below a file", "a folder in the way", "disk full"])
def test_local_write_failures_are_exit_3_with_a_message(model_file, tmp_path, capsys, monkeypatch, where):
    from skedge import manifest

    out = tmp_path / "m.skedge"
    if where == "below a file":
        (tmp_path / "a-file").write_text("x")
        out = tmp_path / "a-file" / "m.skedge"
    elif where == "a folder in the way":
        out.mkdir()
    else:
        if not SKEDGE.exists():
            pytest.skip("target/release/skedge is not built")

        def full(self):
            raise OSError(28, "No space left on device", str(out))

        monkeypatch.setattr(manifest.Staging, "commit", full)
    code = export.main(["--joblib", str(model_file), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == export.EXIT_FAILURE, err
    assert "Traceback" not in err and f"cannot write {out if where != 'below a file' else tmp_path / 'a-file'}" in err
    assert not (tmp_path / "m.manifest.json").exists()


def test_bad_arguments_exit_3_not_the_unsupported_pipeline_code(tmp_path):
    """Exit 2 means "unsupported pipeline" (the epilog); a usage error is an "other failure", 3."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "export.py"
    cases = (
        ["--joblib", "m.joblib"],  # --out missing
        ["--joblib", "m.joblib", "--out", "m.skedge", "--no-such-option"],
        ["--joblib", "m.joblib", "--out", "m.skedge", "--max-label-disagreement", "1"],
        ["--joblib", "m.joblib", "--out", "m.skedge", "--publish", str(tmp_path / "edge")],  # no alias
        ["--joblib", "m.joblib", "--out", "m.skedge", "--publish-alias", "production"],  # no --publish
    )
    for argv in cases:
        proc = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 3, (argv, proc.returncode, proc.stderr)
        assert "usage:" in proc.stderr and "error:" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    helped = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    assert "2 unsupported pipeline, 3 other failure (bad arguments too)" in text
    # --skedge's default is the one README documents ("Python"): $SKEDGE_CLI, the checkout's, PATH
    assert "(default: $SKEDGE_CLI, else target/release/skedge of the checkout, else skedge on PATH)" in text


def test_seal_change_compares_bodies_not_seals():
    """FORMAT.md §3: the same body signed, unsigned, with another checksum kind; encrypted bodies
    never compare (fresh nonce)."""
    from skedge import registry

    golden = Path(__file__).resolve().parents[2] / "tests" / "golden"
    plain, signed = (golden / "tiny.skedge").read_bytes(), (golden / "tiny.signed.skedge").read_bytes()
    old_plain, old_signed = (golden / "xxh64" / "tiny.skedge").read_bytes(), (golden / "xxh64" / "tiny.signed.skedge").read_bytes()
    encrypted = (golden / "tiny.encrypted.skedge").read_bytes()
    assert registry.seal_change(plain, plain) is None
    assert registry.seal_change(plain, signed) == "signature added"
    assert registry.seal_change(signed, plain) == "signature removed"
    other_key = signed[:-64] + bytes(64)
    assert registry.seal_change(signed, other_key) == "signature replaced"
    assert registry.seal_change(old_plain, plain) == "checksum kind changed"  # xxHash64 -> XXH3
    assert registry.seal_change(old_signed, signed) == "signature replaced"  # SHA-512 prehash -> SHA-256
    assert registry.seal_change(encrypted, encrypted) is None
    assert registry.seal_change(plain, encrypted) is None and registry.seal_change(encrypted, signed) is None
    # another body (one byte of the manifest), a truncated file, not an artifact
    body = bytearray(signed)
    body[30] ^= 1
    assert registry.seal_change(plain, bytes(body)) is None
    assert registry.seal_change(plain, signed[:-1]) is None and registry.seal_change(b"PK\x03\x04", signed) is None
