"""The Python runtime (`skedge`, src/python.rs) against scikit-learn's fixtures and the CLI.

Every case of tests/fixtures/cases is packed by the real CLI (`skedge pack`) and predicted by the
installed package: labels and decisions equal scikit-learn's bit for bit (a calibrated model's
decision, its probabilities, within 1e-12), probabilities within 1e-12, and everything equal to
`skedge predict`'s output bit for bit. Bad artifacts, keys, texts and arguments of any type raise
`SkedgeError` with the CLI's codes and bounded messages; nothing crashes.
"""

from __future__ import annotations

import copy
import json
import pathlib
import pickle
import random
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
import skedge

REPO = pathlib.Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "fixtures" / "cases"
SKEDGE = REPO / "target" / "release" / "skedge"
PROBA_TOLERANCE = 1e-12
NAMES = sorted(p.name[: -len(".interchange.json")] for p in CASES.glob("*.interchange.json"))

pytestmark = pytest.mark.skipif(
    not SKEDGE.exists(), reason=f"{SKEDGE} is not built (cargo build --release)"
)


def cli(*args: str | pathlib.Path, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SKEDGE, *map(str, args)], input=input, capture_output=True, timeout=300)


def cli_code(proc: subprocess.CompletedProcess) -> str:
    """The code of `skedge: error[CODE]: ...` on stderr."""
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "error[" in err, err
    return err.split("error[", 1)[1].split("]", 1)[0]


def bits(values) -> list[int]:
    return [struct.unpack("<q", struct.pack("<d", v))[0] for v in values]


def close(got, want) -> bool:
    return len(got) == len(want) and all(abs(a - b) <= PROBA_TOLERANCE for a, b in zip(got, want))


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> pathlib.Path:
    """`<case>.skedge` for every case, packed by the CLI."""
    out = tmp_path_factory.mktemp("cases")
    for name in NAMES:
        proc = cli("pack", CASES / f"{name}.interchange.json", "-o", out / f"{name}.skedge")
        assert proc.returncode == 0, proc.stderr.decode()
    return out


@pytest.fixture(scope="session")
def small(artifacts) -> pathlib.Path:
    return artifacts / "word_tfidf_lr_binary.skedge"


def expected(name: str) -> list[dict]:
    lines = (CASES / f"{name}.expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_scikit_learn_and_the_cli(artifacts, name):
    path = artifacts / f"{name}.skedge"
    model = skedge.Model.load(path)
    calibrated = model.info()["estimator"] in ("CalibratedClassifierCV", "VotingClassifier")
    want = expected(name)
    texts = [w["text"] for w in want]
    got = [model.predict(t) for t in texts]
    bad = []
    for w, g in zip(want, got):
        decision_ok = (
            close(g["decision"], w["decision"])
            if calibrated
            else bits(g["decision"]) == bits(w["decision"])
        )
        proba_ok = (g["proba"] is None) == (w.get("proba") is None) and (
            g["proba"] is None or close(g["proba"], w["proba"])
        )
        if g["label"] != w["label"] or type(g["label"]) is not type(w["label"]):
            bad.append(f"label {g['label']!r} != {w['label']!r} for {w['text'][:60]!r}")
        elif not decision_ok:
            bad.append(f"decision differs for {w['text'][:60]!r}")
        elif not proba_ok:
            bad.append(f"proba differs for {w['text'][:60]!r}")
    assert not bad, f"{len(bad)} of {len(want)} texts differ: {bad[:5]}"

    # The CLI, on the same texts, prints the same values bit for bit (a DataFrame model reads
    # its records {column: text}).
    column = model.info()["input_column"]
    lines = "".join(json.dumps({column or "text": t}) + "\n" for t in texts).encode()
    proc = cli("predict", path, "--format", "jsonl", input=lines)
    assert proc.returncode == 0, proc.stderr.decode()
    printed = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(printed) == len(got)
    for p, g in zip(printed, got):
        assert p["label"] == g["label"]
        assert bits(p["decision"]) == bits(g["decision"])
        assert (p["proba"] is None) == (g["proba"] is None)
        if g["proba"] is not None:
            assert bits(p["proba"]) == bits(g["proba"])

    # predict_batch: the same values, stacked.
    batch = model.predict_batch(texts)
    assert batch["label"] == [g["label"] for g in got]
    assert batch["decision"].dtype == np.float64
    assert batch["decision"].shape == (len(texts), len(got[0]["decision"]))
    assert bits(batch["decision"].ravel()) == bits(v for g in got for v in g["decision"])
    if got[0]["proba"] is None:
        assert batch["proba"] is None
    else:
        assert batch["proba"].shape == (len(texts), len(model.info()["classes"]))
        assert bits(batch["proba"].ravel()) == bits(v for g in got for v in g["proba"])

    # A DataFrame model takes records {column: text} too, with the same results.
    if column is not None:
        records = [{column: t} for t in texts]
        assert [model.predict(r) for r in records] == got
        by_record = model.predict_batch(records)
        assert bits(by_record["decision"].ravel()) == bits(batch["decision"].ravel())
        assert model.explain(records[0], 3) == model.explain(texts[0], 3)


@pytest.mark.parametrize("name", NAMES)
def test_explain_agrees_with_predict_and_points_into_the_text(artifacts, name):
    model = skedge.Model.load(artifacts / f"{name}.skedge")
    for w in expected(name)[:20]:
        text = w["text"]
        e = model.explain(text, 5)
        p = model.predict(text)
        assert (e["label"], bits(e["decision"])) == (p["label"], bits(p["decision"]))
        assert len(e["features"]) <= 5
        for f in e["features"]:
            assert f["term"] == (f["terms"][0] if f["terms"] else "")
            # One weight per decision row the features feed (a calibrated model's base rows).
            assert len(f["weights"]) == len(f["contributions"]) > e["row"] >= 0
            for start, end in f["spans"]:
                assert 0 <= start <= end <= len(text)


def test_explain_spans_are_python_string_indices(artifacts):
    # Characters outside the BMP take two UTF-16 units (the core's spans, JS's indices) but
    # one index in a Python str.
    model = skedge.Model.load(artifacts / "word_tfidf_lr_binary.skedge")
    text = "😀😀 great 😀 great movie"
    for f in model.explain(text, 20)["features"]:
        for start, end in f["spans"]:
            assert text[start:end].lower() in f["terms"], (f["terms"], text[start:end])
    assert any(f["spans"] for f in model.explain(text, 20)["features"])


def test_from_bytes_takes_bytes_bytearray_and_memoryview(small):
    data = small.read_bytes()
    want = skedge.Model.load(small).predict("a fine film")
    for b in (data, bytearray(data), memoryview(data)):
        assert skedge.Model.from_bytes(b).predict("a fine film") == want
    assert skedge.Model.load(str(small)).predict("a fine film") == want


def test_info_matches_the_cli_inspect(small):
    info = skedge.Model.load(small).info()
    inspect = json.loads(cli("inspect", small).stdout)
    for key in ("name", "version", "classes", "estimator", "n_features", "sha256", "bytes",
                "format_version", "input_column", "sklearn_version", "precision", "metrics", "provenance"):
        assert info[key] == inspect[key], key
    assert info["max_text_bytes"] == skedge.MAX_TEXT_BYTES == 16 << 20


def test_artifact_errors_carry_the_cli_codes(small, tmp_path):
    data = small.read_bytes()
    flipped = bytearray(data)
    flipped[-1] ^= 1
    version = bytearray(data)
    version[8] = 9
    cases = {
        "ARTIFACT_CORRUPT": [bytes(flipped), data[:-1], data + b"\0", b"", b"not an artifact at all"],
        "ARTIFACT_VERSION_UNSUPPORTED": [bytes(version)],
    }
    for code, bad in cases.items():
        for b in bad:
            with pytest.raises(skedge.SkedgeError) as e:
                skedge.Model.from_bytes(b)
            assert e.value.code == code, (code, e.value)
            assert e.value.index is None
            f = tmp_path / "bad.skedge"
            f.write_bytes(b)
            assert cli_code(cli("inspect", f)) == code
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Model.load(tmp_path / "missing.skedge")
    assert e.value.code == "IO" and "missing.skedge" in str(e.value)
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Model.from_bytes("a str is not bytes")
    assert e.value.code == "INVALID_INPUT"


def test_load_counts_a_files_trailing_bytes_without_reading_them(small, tmp_path):
    """A file longer than its header declares (`truncate -s 1G`, sparse): `Model.load` reads one
    byte past the artifact and names the file's true number of trailing bytes, as the CLI does."""
    big = tmp_path / "big.skedge"
    big.write_bytes(small.read_bytes())
    with big.open("r+b") as f:
        f.truncate(1 << 30)
    extra = (1 << 30) - small.stat().st_size
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Model.load(big)
    assert e.value.code == "ARTIFACT_CORRUPT"
    assert f"artifact has {extra} unexpected bytes after its body" in str(e.value), str(e.value)
    proc = cli("inspect", big)
    assert cli_code(proc) == "ARTIFACT_CORRUPT" and f"artifact has {extra} unexpected bytes" in proc.stderr.decode()
    # from bytes, the bytes given are all there is
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Model.from_bytes(small.read_bytes() + b"\0\0")
    assert "artifact has 2 unexpected bytes" in str(e.value)


def test_hostile_artifacts_raise_coded_errors_never_crash(small):
    # Byte flips everywhere (header, manifest, sections), lengths cut anywhere: either a model
    # that predicts, or a SkedgeError.
    data = small.read_bytes()
    rng = random.Random(13)
    codes = set()
    for i in range(400):
        b = bytearray(data)
        if i % 4 == 0:
            b = b[: rng.randrange(len(b))]
        else:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        try:
            skedge.Model.from_bytes(bytes(b)).predict("still here")
        except skedge.SkedgeError as e:
            codes.add(e.code)
    assert codes <= {"ARTIFACT_CORRUPT", "ARTIFACT_VERSION_UNSUPPORTED"}, codes


def test_text_errors(small):
    model = skedge.Model.load(small)
    for bad in (None, 42, b"bytes", ["a list"]):
        with pytest.raises(skedge.SkedgeError) as e:
            model.predict(bad)
        assert e.value.code == "INVALID_INPUT"
    with pytest.raises(skedge.SkedgeError) as e:
        model.predict("lone \ud800 surrogate")
    assert e.value.code == "INVALID_INPUT"
    big = "a" * (skedge.MAX_TEXT_BYTES + 1)
    with pytest.raises(skedge.SkedgeError) as e:
        model.predict(big)
    assert e.value.code == "INPUT_TOO_LARGE"
    with pytest.raises(skedge.SkedgeError) as e:
        model.explain(big)
    assert e.value.code == "INPUT_TOO_LARGE"
    # k as the npm package takes it: an integer from 1 to 2**32 - 1, refused in its words.
    for k in (-1, 0, "5", 2.5, 2**32, 2**64):
        with pytest.raises(skedge.SkedgeError) as e:
            model.explain("fine", k)
        assert e.value.code == "INVALID_INPUT", k
        got = json.dumps(k) if isinstance(k, str) else repr(k)
        assert str(e.value) == f"k must be an integer from 1 to 4294967295, got {got}", k
    assert len(model.explain("fine film", 1)["features"]) == 1
    assert model.explain("fine film", 2**32 - 1) == model.explain("fine film", 50)
    assert model.explain("fine film", None) == model.explain("fine film")
    # The limit is in UTF-8 bytes, as everywhere.
    assert model.predict("é" * (skedge.MAX_TEXT_BYTES // 2))["label"] in (0, 1)
    with pytest.raises(skedge.SkedgeError) as e:
        model.predict("é" * (skedge.MAX_TEXT_BYTES // 2 + 1))
    assert e.value.code == "INPUT_TOO_LARGE"
    # The model still works after every refusal.
    assert model.predict("fine")["label"] in (0, 1)


def test_odd_arguments_raise_skedge_errors_naming_the_argument(artifacts, small, keys):
    """Lone surrogates in every string argument (texts, record values, keys, paths), a released
    memoryview, a bool for an int: `SkedgeError` with `INVALID_INPUT` naming the argument, never
    Python's own UnicodeEncodeError, ValueError or a bool read as 1."""
    lone = "\ud800"
    model = skedge.Model.load(small)
    frame_model = skedge.Model.load(artifacts / "ct_text_tfidf_lr_binary.skedge")
    released = memoryview(small.read_bytes())
    released.release()
    np_bool = np.bool_(True)
    for name, call in [
        ("path", lambda: skedge.Model.load(lone)),
        ("path", lambda: skedge.Model.load(pathlib.Path(lone))),
        ("path", lambda: skedge.Model.load(str(small) + "\0")),
        ("public_key", lambda: skedge.Model.load(small, public_key=lone)),
        ("public_key", lambda: skedge.Model.load(small, public_key=[keys / "signer.pub", lone])),
        ("public_key", lambda: skedge.Model.load(small, public_key=pathlib.Path(lone))),
        ("decryption_key", lambda: skedge.Model.load(small, decryption_key=lone)),
        ("decryption_key", lambda: skedge.Model.from_bytes(small.read_bytes(), decryption_key=lone)),
        ("data", lambda: skedge.Model.from_bytes(released)),
        ("text", lambda: model.explain(lone)),
        ('text["text"]', lambda: frame_model.predict({"text": lone})),
        ('texts[1]["text"]', lambda: frame_model.predict_batch([{"text": "ok"}, {"text": lone}])),
        ("k", lambda: model.explain("fine", True)),
        ("k", lambda: model.explain("fine", np_bool)),
    ]:
        with pytest.raises(skedge.SkedgeError) as e:
            call()
        assert e.value.code == "INVALID_INPUT" and name in str(e.value), (name, str(e.value))
    # A surrogate path in surrogateescape's range is a file name's undecodable byte: read as one.
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Model.load(small.parent / "\udcff.skedge")
    assert e.value.code == "IO"
    assert model.predict("fine")["label"] in (0, 1)


def test_messages_do_not_quote_a_caller_value_whole(artifacts, small):
    """A 10 MB path, record key or argument gives a message of a few hundred characters."""
    big = "x" * (10 << 20)

    class Huge:
        def __repr__(self):
            return big

    model = skedge.Model.load(small)
    frame_model = skedge.Model.load(artifacts / "ct_text_tfidf_lr_binary.skedge")
    for code, call in [
        ("IO", lambda: skedge.Model.load(big)),
        ("IO", lambda: skedge.Model.load(small, public_key=pathlib.Path(big))),
        ("INVALID_INPUT", lambda: frame_model.predict({big: "a fine film"})),
        ("INVALID_INPUT", lambda: frame_model.predict({big: "\ud800"})),
        ("INVALID_INPUT", lambda: frame_model.predict({Huge(): "a fine film"})),
        ("INVALID_INPUT", lambda: frame_model.predict({str(i): "x" for i in range(100_000)})),
        ("INVALID_INPUT", lambda: model.explain("fine", big)),
        ("INVALID_INPUT", lambda: model.explain("fine", Huge())),
    ]:
        with pytest.raises(skedge.SkedgeError) as e:
            call()
        assert e.value.code == code and len(str(e.value)) < 1000, str(e.value)[:200]


def test_records_of_a_dataframe_model(artifacts, small):
    """A ColumnTransformer model takes a text or a record {column: text}; any other record is
    INVALID_INPUT naming the column. A model fitted on texts takes no record."""
    model = skedge.Model.load(artifacts / "ct_text_tfidf_lr_binary.skedge")
    assert model.info()["input_column"] == "text"
    assert model.info()["format_version"] == 4
    assert model.predict({"text": "a fine film"}) == model.predict("a fine film")
    for bad in ({}, {"review": "a fine film"}, {"text": "a", "other": "b"}, {"text": 3}, {"text": None},
                {1: "a"}, 42, None, ["a fine film"]):
        with pytest.raises(skedge.SkedgeError) as e:
            model.predict(bad)
        assert e.value.code == "INVALID_INPUT", bad
        assert '"text"' in str(e.value), (bad, str(e.value))
    with pytest.raises(skedge.SkedgeError) as e:
        model.predict_batch(["ok", {"text": "ok"}, {"txt": "no"}])
    assert (e.value.code, e.value.index) == ("INVALID_INPUT", 2)
    with pytest.raises(skedge.SkedgeError) as e:
        model.predict({"text": "a" * (skedge.MAX_TEXT_BYTES + 1)})
    assert e.value.code == "INPUT_TOO_LARGE"
    plain = skedge.Model.load(small)
    assert plain.info()["input_column"] is None
    with pytest.raises(skedge.SkedgeError) as e:
        plain.predict({"text": "a fine film"})
    assert e.value.code == "INVALID_INPUT" and "not a record" in str(e.value)


def test_batch_errors_carry_the_index(small):
    model = skedge.Model.load(small)
    for texts, index, code in (
        (["ok", 3, "ok"], 1, "INVALID_INPUT"),
        (["ok", "ok", "\udc00"], 2, "INVALID_INPUT"),
        (["a" * (skedge.MAX_TEXT_BYTES + 1)], 0, "INPUT_TOO_LARGE"),
    ):
        with pytest.raises(skedge.SkedgeError) as e:
            model.predict_batch(texts)
        assert (e.value.code, e.value.index) == (code, index)
        assert f"texts[{index}]" in str(e.value)
    for bad in ("a str", b"bytes", 42, None):
        with pytest.raises(skedge.SkedgeError) as e:
            model.predict_batch(bad)
        assert e.value.code == "INVALID_INPUT"
    empty = model.predict_batch([])
    assert empty["label"] == [] and empty["decision"].shape == (0, 1) and empty["proba"].shape == (0, 2)
    # Any iterable of str: a generator, a tuple, a numpy array of str.
    want = model.predict_batch(["good", "bad"])
    for texts in ((t for t in ["good", "bad"]), ("good", "bad"), np.array(["good", "bad"])):
        got = model.predict_batch(texts)
        assert got["label"] == want["label"]
        assert bits(got["decision"].ravel()) == bits(want["decision"].ravel())


def test_a_dict_or_a_set_is_refused_as_a_dataframe_is(small):
    """A dict iterates over its keys and a set in no order: neither gives the rows meant."""
    model = skedge.Model.load(small)
    for texts, named in (({"a": "good", "b": "bad"}, "dict"), ({"good", "bad"}, "set"), (frozenset({"good"}), "set")):
        with pytest.raises(skedge.SkedgeError) as e:
            model.predict_batch(texts)
        assert e.value.code == "INVALID_INPUT" and e.value.index is None
        assert f"texts must be a list of str or records, got a {named}" in str(e.value), str(e.value)
    # What the messages advise works.
    assert model.predict_batch(list({"a": "good"}.values()))["label"] == [model.predict("good")["label"]]


def test_a_missing_value_is_named_as_one(artifacts, small):
    """pandas holds a missing text as NaN (`pd.Series(["great", None])`): the error says a value is
    missing at that index, not that a float is no str."""
    pd = pytest.importorskip("pandas")
    model = skedge.Model.load(small)
    for texts, kind in (
        (pd.Series(["great", None]), "NaN"),
        (["great", None], "None"),
        (["great", np.float32("nan")], "NaN"),
        (pd.Series(["great", None], dtype="string"), "pandas.NA"),
    ):
        with pytest.raises(skedge.SkedgeError) as e:
            model.predict_batch(texts)
        assert (e.value.code, e.value.index) == ("INVALID_INPUT", 1)
        assert str(e.value).startswith(f"texts[1] is a missing value ({kind})"), str(e.value)
    with pytest.raises(skedge.SkedgeError) as e:
        model.predict(float("nan"))
    assert "text is a missing value (NaN)" in str(e.value)
    # A number is still a number, and a record's missing field is named too.
    with pytest.raises(skedge.SkedgeError) as e:
        model.predict_batch(["great", 1.5])
    assert "texts[1] must be a str, got float" in str(e.value)
    frame = skedge.Model.load(artifacts / "ct_text_tfidf_lr_binary.skedge")
    with pytest.raises(skedge.SkedgeError) as e:
        frame.predict_batch(pd.DataFrame({"text": ["great", None]}).to_dict("records"))
    assert e.value.index == 1 and "got a missing value (NaN)" in str(e.value), str(e.value)


def test_batch_arrays_are_the_callers_to_write(small):
    """`predict_batch`'s arrays are fresh, writable and shared with nothing: writing one changes
    no later result."""
    model = skedge.Model.load(small)
    texts = ["good", "bad", "fine"]
    first = model.predict_batch(texts)
    want = bits(first["decision"].ravel()) + bits(first["proba"].ravel())
    for key in ("decision", "proba"):
        assert first[key].flags.writeable and first[key].flags.c_contiguous, key
        first[key][:] = 0.0
    again = model.predict_batch(texts)
    assert bits(again["decision"].ravel()) + bits(again["proba"].ravel()) == want


def test_a_model_pickles_and_copies_as_the_same_model(keys, small):
    """A pickle (copy, deepcopy) is the artifact's bytes and its pinned public keys: the copy
    predicts bit for bit as the original, and verifies the signature again when unpickled."""
    texts = [w["text"] for w in expected("word_tfidf_lr_binary")]
    public = keys / "signer.pub"
    for model in (skedge.Model.load(small), skedge.Model.load(keys / "signed.skedge", public_key=public)):
        want = model.predict_batch(texts)
        for twin in (pickle.loads(pickle.dumps(model)), copy.copy(model), copy.deepcopy(model)):
            assert isinstance(twin, skedge.Model) and twin is not model
            assert twin.info() == model.info()
            got = twin.predict_batch(texts)
            assert got["label"] == want["label"]
            assert bits(got["decision"].ravel()) == bits(want["decision"].ravel())
            assert bits(got["proba"].ravel()) == bits(want["proba"].ravel())
    # The pinned key travels and is checked again: other bytes under it are refused.
    signed = skedge.Model.load(keys / "signed.skedge", public_key=public)
    load, (data, pinned) = signed.__reduce__()
    assert pinned == [bytes.fromhex(public.read_text().strip()[-64:])]
    plain = (keys / "plain.skedge").read_bytes()
    with pytest.raises(skedge.SkedgeError) as e:
        load(plain, pinned)
    assert e.value.code == "SIGNATURE_MISSING"
    assert load(plain, []).predict("good") == signed.predict("good")


def test_an_encrypted_model_and_an_experiment_are_not_pickled(keys, small):
    """An encrypted model's pickle would hold its decryption key in clear; an experiment's state
    belongs to its process. Both are refused with a code that says what to do instead."""
    encrypted = skedge.Model.load(keys / "encrypted.skedge", decryption_key=keys / "secret.key")
    experiment = skedge.Experiment(skedge.Model.load(small), skedge.Model.load(small))
    for value, says in ((encrypted, "Model.from_bytes(data, decryption_key=key)"), (experiment, "Pickle its Models")):
        for how in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(skedge.SkedgeError) as e:
                how(value)
            assert e.value.code == "NOT_PICKLABLE" and says in str(e.value), str(e.value)


def test_joblib_ships_a_model_to_worker_processes(small):
    """joblib.Parallel's default backend (loky: fresh processes, cloudpickle) runs a model in
    two workers: their results are the parent's, bit for bit."""
    joblib = pytest.importorskip("joblib")
    model = skedge.Model.load(small)
    texts = [w["text"] for w in expected("word_tfidf_lr_binary")]
    chunks = [texts[i::4] for i in range(4)]
    with joblib.Parallel(n_jobs=2, backend="loky") as parallel:
        results = parallel(joblib.delayed(skedge.Model.predict_batch)(model, chunk) for chunk in chunks)
    for chunk, got in zip(chunks, results):
        want = model.predict_batch(chunk)
        assert got["label"] == want["label"]
        assert bits(got["decision"].ravel()) == bits(want["decision"].ravel())


def test_threads_share_a_model(small):
    model = skedge.Model.load(small)
    texts = [w["text"] for w in expected("word_tfidf_lr_binary")]
    want = bits(model.predict_batch(texts)["decision"].ravel())
    results = []

    def work():
        for _ in range(5):
            results.append(bits(model.predict_batch(texts)["decision"].ravel()) == want)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 20


def test_a_record_whose_key_repr_changes_it_is_refused_not_a_panic(artifacts, small):
    """`repr` of a key that is not a str runs Python code, which may change the record while it
    is read: INVALID_INPUT, never a PanicException (nor on a model fitted on texts)."""

    class Key:
        def __init__(self, record):
            self.record = record

        def __repr__(self):
            self.record[f"zz{len(self.record)}"] = "x"
            return "Key"

    for path in (artifacts / "ct_text_tfidf_lr_binary.skedge", small):
        model = skedge.Model.load(path)
        for call in (model.predict, lambda r: model.predict_batch([r]), model.explain):
            record = {}
            record[Key(record)] = "hello"
            with pytest.raises(skedge.SkedgeError) as e:
                call(record)
            assert e.value.code == "INVALID_INPUT"
        assert model.predict("good")["label"] in model.info()["classes"]


def test_a_device_is_read_no_further_than_an_artifact_extends(small):
    """/dev/zero never ends: `Model.load` reads its header and refuses it."""
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Model.load("/dev/zero")
    assert e.value.code == "ARTIFACT_CORRUPT"
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Model.load(small, public_key=pathlib.Path("/dev/zero"))
    assert e.value.code == "IO"


FIFO_LOADS = r"""
import os, pathlib, sys, threading
import skedge

small, folder = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
key = folder / "key.pub"
os.mkfifo(key)
try:
    skedge.Model.load(small, public_key=key)
except skedge.SkedgeError as e:
    print("key", e.code, e)
# A FIFO artifact whose header declares a 4 GiB body, then zeros until the reader goes away.
fifo = folder / "model.skedge"
os.mkfifo(fifo)
header = bytearray(small.read_bytes()[:24])
header[12:16] = (2**32 - 1).to_bytes(4, "little")
written = []

def write():
    n = 0
    with open(fifo, "wb", buffering=0) as f:
        try:
            f.write(header)
            while n < 512 << 20:
                f.write(bytes(1 << 20))
                n += 1 << 20
        except BrokenPipeError:
            pass
    written.append(n)

writer = threading.Thread(target=write)
writer.start()
try:
    skedge.Model.load(fifo)
except skedge.SkedgeError as e:
    print("artifact", e.code, e)
writer.join()
print("written", written[0])
"""


def test_a_fifo_key_or_artifact_does_not_hold_the_interpreter(small, tmp_path):
    """A key path that is a FIFO is refused unopened for reading (`IO`, as the CLI's
    `--public-key`): its open no longer waits, holding the GIL, for a writer that never comes. A
    FIFO artifact whose header declares more than a stream may give (256 MiB) is refused
    (`INPUT_TOO_LARGE`) after its header, not read for 4 GiB. In a subprocess, whose timeout only
    guards the test run against the interpreter hanging."""
    done = subprocess.run([sys.executable, "-c", FIFO_LOADS, str(small), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("key IO ") and "not a regular file (a FIFO)" in lines[0], lines
    assert lines[1].startswith("artifact INPUT_TOO_LARGE artifact of 4294967319 bytes"), lines
    assert int(lines[2].split()[1]) < 64 << 20, lines


def test_a_dataframe_is_refused_not_read_as_its_column_names(artifacts):
    pd = pytest.importorskip("pandas")
    model = skedge.Model.load(artifacts / "ct_text_tfidf_lr_binary.skedge")
    frame = pd.DataFrame({"text": ["a fine film", "dull"]})
    with pytest.raises(skedge.SkedgeError) as e:
        model.predict_batch(frame)
    assert e.value.code == "INVALID_INPUT" and "DataFrame" in str(e.value)
    assert model.predict_batch(frame["text"])["label"] == model.predict_batch(["a fine film", "dull"])["label"]
    assert len(model.predict_batch(frame.to_dict("records"))["label"]) == 2


def test_experiments_with_swapped_arms_on_two_threads_do_not_deadlock(artifacts):
    """Each experiment locks both arms: in one order (the models' addresses), whichever is the
    champion, or two experiments with their arms swapped wait for each other for ever."""
    a = skedge.Model.load(artifacts / "tfidf_l1_noidf_lr.skedge")
    b = skedge.Model.load(artifacts / "ovr_lr_binary.skedge")
    experiments = (skedge.Experiment(a, b), skedge.Experiment(b, a))
    done = []

    def run(e):
        for _ in range(20000):
            e.predict("some text " * 50)
        done.append(True)

    threads = [threading.Thread(target=run, args=(e,), daemon=True) for e in experiments]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert done == [True, True], "the two experiments deadlocked"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    for args in (["signer"], ["other"], ["secret", "--encryption"]):
        proc = cli("keygen", d / args[0], *args[1:])
        assert proc.returncode == 0, proc.stderr.decode()
    interchange = CASES / "word_tfidf_lr_binary.interchange.json"
    for name, extra in (
        ("plain", []),
        ("signed", ["--sign-key", d / "signer.key"]),
        ("encrypted", ["--encrypt-key", d / "secret.key"]),
    ):
        proc = cli("pack", interchange, "-o", d / f"{name}.skedge", *extra)
        assert proc.returncode == 0, proc.stderr.decode()
    return d


def test_keys_as_the_cli_takes_them(keys, monkeypatch):
    d = keys
    text = "a fine film"
    want = skedge.Model.load(d / "plain.skedge").predict(text)
    public = (d / "signer.pub").read_text()
    # A key as its text, its file (a Path), one of a list; the raw bytes of the hex.
    raw = bytes.fromhex(public.strip()[-64:])
    for key in (public, d / "signer.pub", [d / "other.pub", public], raw):
        assert skedge.Model.load(d / "signed.skedge", public_key=key).predict(text) == want
    # Unpinned, a signed artifact loads unverified, as in the CLI and JS.
    assert skedge.Model.load(d / "signed.skedge").predict(text) == want
    secret = d / "secret.key"
    assert skedge.Model.load(d / "encrypted.skedge", decryption_key=secret).predict(text) == want
    assert skedge.Model.from_bytes(
        (d / "encrypted.skedge").read_bytes(), decryption_key=secret.read_text()
    ).predict(text) == want

    refusals = [
        ("signed", {"public_key": d / "other.pub"}, ["--public-key", d / "other.pub"], "SIGNATURE_INVALID"),
        ("plain", {"public_key": d / "signer.pub"}, ["--public-key", d / "signer.pub"], "SIGNATURE_MISSING"),
        ("encrypted", {}, [], "DECRYPTION_KEY_MISSING"),
        ("plain", {"decryption_key": secret}, ["--decryption-key", secret], "ENCRYPTION_MISSING"),
        ("signed", {"public_key": d / "signer.key"}, ["--public-key", d / "signer.key"], "KEY_INVALID"),
        ("signed", {"public_key": d / "nope.pub"}, ["--public-key", d / "nope.pub"], "IO"),
    ]
    for artifact, kwargs, flags, code in refusals:
        with pytest.raises(skedge.SkedgeError) as e:
            skedge.Model.load(d / f"{artifact}.skedge", **kwargs)
        assert e.value.code == code, (artifact, kwargs, e.value)
        assert cli_code(cli("inspect", d / f"{artifact}.skedge", *flags)) == code
    for kwargs in ({"public_key": b"short"}, {"decryption_key": "not hex"}, {"public_key": public.replace("skedge", "x")}):
        with pytest.raises(skedge.SkedgeError) as e:
            skedge.Model.load(d / "signed.skedge", **kwargs)
        assert e.value.code == "KEY_INVALID", kwargs
    # A str is key text: one that looks like a file's path says how to pass the file.
    hint = "to read a key file, pass pathlib.Path(...)"
    for kwargs, is_path in [
        ({"public_key": "release.pub"}, True),
        ({"public_key": str(d / "signer.pub")}, True),
        ({"public_key": "keys/release"}, True),
        ({"decryption_key": "secret.key"}, True),
        ({"public_key": "not a key"}, False),
        ({"public_key": public.strip()[:-1]}, False),
        ({"decryption_key": "skedge-ed25519-public:x/y.pub"}, False),
    ]:
        with pytest.raises(skedge.SkedgeError) as e:
            skedge.Model.load(d / "signed.skedge", **kwargs)
        assert e.value.code == "KEY_INVALID", kwargs
        assert (hint in str(e.value)) == is_path, (kwargs, str(e.value))
    # An existing file named without a key file's extension or a directory.
    monkeypatch.chdir(d)
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Model.load("signed.skedge", public_key="signed.skedge")
    assert e.value.code == "KEY_INVALID" and hint in str(e.value), str(e.value)
    for kwargs in ({"public_key": []}, {"public_key": 42}, {"decryption_key": 1.5}):
        with pytest.raises(skedge.SkedgeError) as e:
            skedge.Model.load(d / "signed.skedge", **kwargs)
        assert e.value.code == "INVALID_INPUT", kwargs


def test_the_package_is_typed_and_documented():
    root = pathlib.Path(skedge.__file__).parent
    assert (root / "py.typed").exists() and (root / "_skedge.pyi").exists()
    assert issubclass(skedge.SkedgeError, Exception)
    for name in ("load", "from_bytes", "predict", "predict_batch", "explain", "info"):
        assert getattr(skedge.Model, name).__doc__, name
    assert "public_key" in skedge.Model.load.__text_signature__


def test_readme_snippet_runs(small):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("## Python\n\n```python\n", 1)[1].split("```", 1)[0]
    exec(compile(snippet.replace('"model.skedge"', repr(str(small))), "README.md", "exec"), {})


def test_the_package_readme_snippet_runs(small):
    """The wheel's description (scripts/skedge/README.md) shows the same calls."""
    readme = (REPO / "scripts" / "skedge" / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "skedge.Model.load" in snippet
    exec(compile(snippet.replace('"model.skedge"', repr(str(small))), "scripts/skedge/README.md", "exec"), {})
