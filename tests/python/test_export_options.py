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

import numpy as np
import pytest
from conftest import SKEDGE, binary_corpus, dump, fit, no_leftovers, requires_skedge

from skedge import export
from skedge import interchange as ix
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.feature_selection import SelectKBest, chi2
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
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
    """The gate runs pkg/ in Node when pkg/ was built (its .wasm and node.mjs), or last found built
    by scripts/build.sh (which compares content and touches its stamp), after every source file
    changed; else the CLI."""
    if shutil.which("node") is None:
        pytest.skip("no node")
    monkeypatch.delenv("SKEDGE_PARITY_RUNTIME", raising=False)
    monkeypatch.setattr(export, "PKG", tmp_path)
    src = Path(export.__file__).resolve().parents[2] / "src"
    newest = max(p.stat().st_mtime for p in src.rglob("*.rs"))
    wasm, stamp = tmp_path / "skedge_bg.wasm", tmp_path / ".build-inputs"
    assert export.parity_runtime() == "native CLI"  # not built
    wasm.write_bytes(b"\0asm")
    os.utime(wasm, (newest + 1, newest + 1))
    # build.sh writes the .wasm before node.mjs, which scripts/predict_node.mjs imports: mid-build,
    # every gate in Node would fail (exit 3)
    assert export.parity_runtime() == "native CLI"
    (tmp_path / "node.mjs").write_text("")
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


# ---------------------------------------------------------------------------------------------
# transformer_weights on integer counts: scikit-learn's product is numpy's, which wraps around


def _int_union(dtype, weights):
    """Word and char counts of an integer dtype, weighted after fit (fit's own products of an
    out-of-range Python int fail)."""
    model = fit(make_pipeline(
        FeatureUnion([("w", CountVectorizer(dtype=dtype)), ("c", CountVectorizer(analyzer="char", dtype=dtype))]),
        LogisticRegression(max_iter=3000)))  # fmt: skip
    model[0].transformer_weights = weights
    return model


@pytest.mark.parametrize("dtype, weight", [
    (np.int32, 107_375),  # "great " * 20000: 2,147,500,000 wraps to -2,147,467,296 in int32
    (np.int32, 8), (np.int32, -8), (np.int32, 2**31),  # 2**31: numpy refuses the Python int
    (np.int64, 2**25 + 1),  # fits int64, but not float64's exact integers
])  # fmt: skip
def test_an_integer_weight_that_can_wrap_integer_counts_is_refused(dtype, weight):
    model = _int_union(dtype, {"w": weight, "c": 1})
    with pytest.raises(ix.Unsupported) as err:
        ix.to_interchange(model, {}, log_table=lambda: [])
    e = err.value
    assert (e.step_path, e.parameter, e.value) == ("pipeline.featureunion", "transformer_weights['w']", weight)
    assert np.dtype(dtype).name in e.reason and "float weight" in e.reason and "wider dtype" in e.reason, e.reason


def test_integer_weights_of_a_column_transformer_and_nested_unions_are_checked():
    import pandas as pd  # noqa: PLC0415

    texts, labels = binary_corpus()
    frame = pd.DataFrame({"text": texts})
    ct = ColumnTransformer([("t", CountVectorizer(dtype=np.int32), "text")], transformer_weights={"t": 107_375})
    with pytest.raises(ix.Unsupported) as err:
        ix.to_interchange(make_pipeline(ct, LogisticRegression()).fit(frame, labels), {}, log_table=lambda: [])
    assert (err.value.step_path, err.value.parameter) == ("pipeline.columntransformer", "transformer_weights['t']")
    # 5 then 3: 15 x 2**28 passes int32; an int64 member makes the inner hstack int64, which holds it
    for other, refused in ((np.int32, True), (np.int64, False)):
        inner = FeatureUnion([("a", CountVectorizer(dtype=np.int32)), ("b", CountVectorizer(analyzer="char", dtype=other))],
                             transformer_weights={"a": 5})
        model = fit(make_pipeline(FeatureUnion([("in", inner)], transformer_weights={"in": 3}), LogisticRegression()))
        if refused:
            with pytest.raises(ix.Unsupported, match=r"transformer_weights\['in'\]=3: .* int32 counts"):
                ix.to_interchange(model, {}, log_table=lambda: [])
        else:
            ix.to_interchange(model, {}, log_table=lambda: [])


@requires_skedge
@pytest.mark.parametrize("dtype, weight", [
    (np.int32, 7), (np.int32, -7), (np.int32, True),
    (np.int32, np.int64(107_375)),  # numpy computes an int32 array times an int64 in int64
    (np.int32, 107_375.0), (np.int64, 2**25),
])  # fmt: skip
def test_integer_weights_that_cannot_wrap_export_exactly(tmp_path, dtype, weight):
    import skedge  # noqa: PLC0415

    model = _int_union(dtype, {"w": weight, "c": 1})
    artifact = tmp_path / "m.skedge"
    export.pack(export.build_interchange(model, source_sha256="0" * 64, skedge=SKEDGE), artifact, SKEDGE)
    runtime = skedge.Model.load(str(artifact))
    for text in ("great " * 20000, "the food was great " * 5000, "awful"):
        want = np.float64(model.decision_function([text])[0])
        got = np.float64(runtime.predict(text)["decision"][0])
        assert got.view(np.uint64) == want.view(np.uint64), (text[:20], got, want)


def test_a_column_transformer_inside_a_first_pipeline_exports_as_the_flat_one(tmp_path, capsys):
    """`Pipeline([("pre", Pipeline([ct, kbest])), ("clf", lr)])` runs the steps of the flat
    pipeline in turn: the same interchange, and export.py takes it (not as a classifier saved
    without its vectorizer). Elsewhere a ColumnTransformer is refused saying where it belongs."""
    import pandas as pd  # noqa: PLC0415

    texts, labels = binary_corpus()
    frame = pd.DataFrame({"text": texts, "n": [len(t) for t in texts]})

    def ct():
        return ColumnTransformer([("t", CountVectorizer(), "text")], sparse_threshold=1.0)

    nested = Pipeline([("pre", Pipeline([("ct", ct()), ("k", SelectKBest(chi2, k=50))])),
                       ("clf", LogisticRegression())]).fit(frame, labels)
    flat = Pipeline([("ct", ct()), ("k", SelectKBest(chi2, k=50)), ("clf", LogisticRegression())]).fit(frame, labels)
    assert ix.to_interchange(nested, {}, log_table=lambda: [])["pipeline"] == ix.to_interchange(
        flat, {}, log_table=lambda: [])["pipeline"]
    union = make_pipeline(FeatureUnion([("ct", ct())]), LogisticRegression()).fit(frame, labels)
    with pytest.raises(ix.Unsupported, match="supported only where the DataFrame enters: the pipeline's first step"):
        ix.to_interchange(union, {}, log_table=lambda: [])
    if not SKEDGE.exists():
        pytest.skip("target/release/skedge is not built")
    code = export.main(["--joblib", str(dump(nested, tmp_path)), "--out", str(tmp_path / "m.skedge"), "--dry-run"])
    assert code == 0, capsys.readouterr().err
