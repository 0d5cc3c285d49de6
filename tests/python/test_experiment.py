"""`skedge.Experiment` (src/python.rs over src/experiment.rs, issue #15): the served prediction is
the serving arm's, exact; shadow pairs are compared; the canary assignment is sticky and pinned to
the same values as the Rust core and the npm package, and on 10,000 keys equal to FORMAT.md's
xxh64 formula (recomputed here), within two points of the share; feedback goes through the bounded ring;
snapshots add up, and `snapshot()` hands its window over without queueing it (Python delivers
nothing itself); ids cannot be guessed from one another; bad arguments raise `SkedgeError` with
`INVALID_INPUT` (every argument, whatever its type, a message naming it and bounded); a DataFrame
model's records are read as `Model.predict` reads them.
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
import subprocess
import time

import pytest
import skedge

REPO = pathlib.Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "fixtures" / "cases"
SKEDGE = REPO / "target" / "release" / "skedge"

pytestmark = pytest.mark.skipif(not SKEDGE.exists(), reason=f"{SKEDGE} is not built")


def packed(tmp_path: pathlib.Path, name: str) -> skedge.Model:
    out = tmp_path / f"{name}.skedge"
    subprocess.run([SKEDGE, "pack", CASES / f"{name}.interchange.json", "-o", out], check=True, capture_output=True)
    return skedge.Model.load(out)


def expected(name: str) -> list[dict]:
    lines = (CASES / f"{name}.expected.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture()
def arms(tmp_path):
    return packed(tmp_path, "lr_multinomial_3class_strings_fr"), packed(tmp_path, "ovr_lr_3class_fr")


def test_shadow_serves_the_champion_exactly_and_compares_pairs(arms):
    champion, challenger = arms
    exp = skedge.Experiment(champion, challenger, mode="shadow", sample_rate=1.0, seed=7)
    want = expected("lr_multinomial_3class_strings_fr")
    agree = 0
    for w in want:
        r = exp.predict(w["text"])
        assert r["arm"] == "champion" and len(r["id"]) == 32
        assert r["label"] == w["label"] and r["decision"] == w["decision"]
        shadow = challenger.predict(w["text"])
        assert r["shadow"] == shadow
        agree += r["label"] == shadow["label"]
    s = exp.snapshot()
    assert s["format"] == "skedge-experiment-snapshot"
    assert s["seen"] == len(want) and s["shadow"]["pairs"] == len(want) and s["shadow"]["agree"] == agree
    assert [a["arm"] for a in s["arms"]] == ["champion", "challenger"]


def test_canary_is_sticky_and_pinned_like_the_core_and_the_npm_package(arms):
    champion, challenger = arms

    def arm(key: str, share: float) -> str:
        return skedge.Experiment(champion, challenger, mode="canary", share=share, salt="salt").predict("x", key=key)["arm"]

    assert arm("user-1", 0.2119) == "challenger" and arm("user-1", 0.2118) == "champion"
    assert arm("é", 0.5543) == "challenger" and arm("é", 0.5542) == "champion"
    exp = skedge.Experiment(champion, challenger, mode="canary", share=0.3, seed=1)
    served = [exp.predict("un film", key=f"user-{i}")["arm"] for i in range(3000)]
    assert 800 < served.count("challenger") < 1000
    s = exp.snapshot()
    assert s["shadow"] is None and s["arms"][1]["served"] == served.count("challenger")


# XXH64 (xxhash.h's reference algorithm), written here from its spec, so the canary assignment is
# checked against FORMAT.md's formula rather than against the core that implements it.
_M = (1 << 64) - 1
_P1, _P2, _P3, _P4, _P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                           0x27D4EB2F165667C5)  # fmt: skip


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * _P2) & _M, 31) * _P1) & _M


def xxh64(data: bytes, seed: int) -> int:
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed, (seed - _P1) & _M]
        while i + 32 <= n:
            v = [_round(v[j], int.from_bytes(data[i + 8 * j : i + 8 * j + 8], "little")) for j in range(4)]
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M
        for lane in v:
            h = ((h ^ _round(0, lane)) * _P1 + _P4) & _M
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 8 <= n:
        h = (_rotl(h ^ _round(0, int.from_bytes(data[i : i + 8], "little")), 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        h = (_rotl(h ^ (int.from_bytes(data[i : i + 4], "little") * _P1 & _M), 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h = (_rotl(h ^ (data[i] * _P5 & _M), 11) * _P1) & _M
        i += 1
    h = ((h ^ (h >> 33)) * _P2) & _M
    h = ((h ^ (h >> 29)) * _P3) & _M
    return h ^ (h >> 32)


#: sha256 of the 10,000 arms of keys `client-0` … `client-9999` with salt `rollout-7` ("1" for the
#: challenger), per share: tests/js/experiment.test.mjs pins the same digests for the npm package.
CANARY_10K = {
    0.05: (501, "809fad1328571cc15d8e8f6db4e2063a7712c7510ab809bcfbe65767ef631297"),
    0.5: (5022, "302889647809ebfaa4308599cdbda0998f077811d718c8238a2aa084d1330bc0"),
}


def test_canary_on_10000_keys_is_the_documented_hash_within_two_points_and_sticky(arms):
    champion, challenger = arms
    assert xxh64(b"Nobody inspects the spammish repetition", 0) == 0xFBCEA83C8A378BF1  # xxhash's test vector
    keys = [f"client-{i}" for i in range(10_000)]
    for share, (count, digest) in CANARY_10K.items():
        a = skedge.Experiment(champion, challenger, mode="canary", share=share, salt="rollout-7", seed=1)
        b = skedge.Experiment(champion, challenger, mode="canary", share=share, salt="rollout-7", seed=2)
        served = "".join("1" if a.predict("un film", key=k)["arm"] == "challenger" else "0" for k in keys)
        assert served == "".join("1" if b.predict("un film", key=k)["arm"] == "challenger" else "0" for k in keys)
        formula = "".join(
            "1" if (xxh64(b"rollout-7\0" + k.encode(), 0x736B656467656361) >> 11) / 2**53 < share else "0"
            for k in keys
        )  # fmt: skip
        assert served == formula, [k for k, x, y in zip(keys, served, formula) if x != y][:5]
        assert abs(served.count("1") / len(keys) - share) <= 0.02
        assert (served.count("1"), hashlib.sha256(served.encode()).hexdigest()) == (count, digest)
        assert a.snapshot()["arms"][1]["served"] == count


def test_feedback_and_refusals(arms):
    champion, challenger = arms
    exp = skedge.Experiment(champion, challenger, feedback_capacity=2, seed=3)
    rs = [exp.predict(t) for t in ["bon", "mauvais", "moyen"]]
    assert exp.feedback(rs[0]["id"], rs[0]["label"]) == "expired"
    assert exp.feedback(rs[2]["id"], rs[2]["label"]) == "counted"
    assert exp.feedback(rs[2]["id"], rs[2]["label"]) == "duplicate"
    assert exp.feedback("0" * 32, rs[1]["label"]) == "unknown"
    s = exp.snapshot()
    assert s["arms"][0]["feedback"]["count"] == 1 and s["arms"][0]["feedback"]["correct"] == 1
    assert (s["feedback_expired"], s["feedback_unknown"], s["feedback_duplicate"]) == (1, 1, 1)
    for kwargs in [
        {"mode": "sideways"},
        {"mode": "canary"},
        {"share": 0.1},
        {"mode": "canary", "share": 0.1, "sample_rate": 0.5},
        {"sample_rate": 2.0},
        {"feedback_capacity": 0},
    ]:
        with pytest.raises(skedge.SkedgeError) as e:
            skedge.Experiment(champion, challenger, **kwargs)
        assert e.value.code == "INVALID_INPUT", kwargs
    # Out of range: the message names the Python argument and the value, never the npm
    # package's option (`feedbackCapacity`) or the core's.
    for kwargs, message in [
        ({"feedback_capacity": 2_000_000}, "feedback_capacity must be an int in [1, 1048576], got 2000000"),
        ({"feedback_capacity": 0}, "feedback_capacity must be an int in [1, 1048576], got 0"),
        ({"sample_rate": 1.5}, "sample_rate must be a number in [0, 1], got 1.5"),
        ({"sample_rate": -math.inf}, "sample_rate must be a number in [0, 1], got -inf"),
        ({"mode": "canary", "share": 2}, "share must be a number in [0, 1], got 2"),
        ({"window_seconds": 0}, "window_seconds must be a number ≥ 0.001, got 0"),
        ({"window_seconds": math.inf}, "window_seconds must be a number ≥ 0.001, got inf"),
    ]:
        with pytest.raises(skedge.SkedgeError) as e:
            skedge.Experiment(champion, challenger, **kwargs)
        assert (e.value.code, str(e.value)) == ("INVALID_INPUT", message), kwargs
    with pytest.raises(skedge.SkedgeError) as e:
        exp.feedback(rs[1]["id"], "no such class")
    assert e.value.code == "INVALID_INPUT"
    with pytest.raises(skedge.SkedgeError) as e:
        exp.predict(42)
    assert e.value.code == "INVALID_INPUT"


def test_a_model_with_more_classes_than_a_window_can_carry_is_refused(tmp_path):
    """Shadow windows hold three classes × classes matrices, canary windows two: past 112 (shadow)
    or 137 (canary) classes a window's snapshot could exceed the collector's 1 MiB, so the core
    refuses the model when the experiment starts (FORMAT.md §4)."""
    doc = json.loads((CASES / "count_multinomialnb_3class_fr.interchange.json").read_text(encoding="utf-8"))
    clf = doc["pipeline"]["classifier"]
    n = 113
    clf["classes"] = [f"c{i}" for i in range(n)]
    clf["coef"] = [clf["coef"][i % 3] for i in range(n)]
    clf["intercept"] = [clf["intercept"][i % 3] for i in range(n)]
    source, out = tmp_path / "many.interchange.json", tmp_path / "many.skedge"
    source.write_text(json.dumps(doc), encoding="utf-8")
    subprocess.run([SKEDGE, "pack", source, "-o", out], check=True, capture_output=True)
    model = skedge.Model.load(out)
    with pytest.raises(skedge.SkedgeError) as e:
        skedge.Experiment(model, model)
    assert e.value.code == "INVALID_INPUT"
    assert "113 classes is too large for a shadow experiment (at most 112 classes)" in str(e.value), str(e.value)
    exp = skedge.Experiment(model, model, mode="canary", share=0.5)
    exp.predict("un livre")
    assert len(exp.snapshot()["classes"]) == n


def test_snapshot_hands_the_window_over_without_queueing_it(arms):
    # Python delivers nothing itself: a window snapshot() returns is not queued too, so 70 of them
    # drop nothing, and take_pending() gives only the windows window_seconds closed, once each.
    champion, challenger = arms
    exp = skedge.Experiment(champion, challenger, seed=1)
    windows = []
    for i in range(70):
        exp.predict(f"un film {i}")
        windows.append(exp.snapshot())
    assert [w["window"]["index"] for w in windows] == list(range(70))
    assert [w["dropped"] for w in windows] == [0] * 70
    assert exp.take_pending() == []
    timed = skedge.Experiment(champion, challenger, window_seconds=0.05, seed=2)
    timed.predict("un film")
    time.sleep(0.08)
    timed.predict("un autre film")
    now = timed.snapshot()
    assert now["seen"] == 1
    closed = timed.take_pending()
    assert [(w["window"]["index"], w["seen"]) for w in closed] == [(0, 1)]
    assert now["window"]["start_ms"] >= closed[0]["window"]["end_ms"]
    assert timed.take_pending() == []


def test_ids_cannot_be_guessed_from_another(arms):
    champion, challenger = arms
    exp = skedge.Experiment(champion, challenger, seed=3)
    theirs, mine = exp.predict("bon"), exp.predict("mauvais")
    # Either half of my id one less, or their number beside my hash: nobody's id.
    less = lambda h: f"{int(h, 16) - 1:016x}"  # noqa: E731
    for forged in [mine["id"][:16] + less(mine["id"][16:]), less(mine["id"][:16]) + mine["id"][16:]]:
        assert exp.feedback(forged, "neg") == "unknown", forged
    assert (theirs["id"][:16], mine["id"][:16]) == ("0" * 16, "0" * 15 + "1")
    other = skedge.Experiment(champion, challenger, seed=3).predict("bon")
    assert other["id"][:16] == theirs["id"][:16] and other["id"] != theirs["id"]
    assert exp.feedback(other["id"], "neg") == "unknown"
    assert exp.feedback(theirs["id"], theirs["label"]) == "counted"
    assert exp.snapshot()["feedback_unknown"] == 3


def test_one_model_in_both_arms_does_not_deadlock(arms):
    champion, _ = arms
    exp = skedge.Experiment(champion, champion)
    r = exp.predict("bon film")
    assert r["shadow"]["label"] == r["label"]
    assert exp.snapshot()["shadow"]["agree"] == 1


def test_odd_arguments_raise_skedge_errors_naming_the_argument(arms):
    """Wrong types, lone surrogates, bools, NaN and ints out of range: `SkedgeError` with
    `INVALID_INPUT` naming the argument, never Python's own TypeError, OverflowError or
    UnicodeEncodeError."""
    champion, challenger = arms
    lone = "\ud800"
    new = [
        ("champion", {"champion": "a model"}),
        ("challenger", {"challenger": None}),
        ("mode", {"mode": 1}),
        ("mode", {"mode": lone}),
        ("sample_rate", {"sample_rate": "0.5"}),
        ("sample_rate", {"sample_rate": math.nan}),
        ("sample_rate", {"sample_rate": True}),
        ("sample_rate", {"sample_rate": 10**400}),
        ("share", {"mode": "canary", "share": math.nan}),
        ("share", {"mode": "canary", "share": "x"}),
        ("salt", {"salt": 1}),
        ("salt", {"salt": lone}),
        ("window_seconds", {"window_seconds": "60"}),
        ("window_seconds", {"window_seconds": math.nan}),
        ("window_seconds", {"window_seconds": 10**400}),
        ("seed", {"seed": -1}),
        ("seed", {"seed": 2**64}),
        ("seed", {"seed": 1.5}),
        ("seed", {"seed": True}),
        ("feedback_capacity", {"feedback_capacity": -1}),
        ("feedback_capacity", {"feedback_capacity": 2**70}),
        ("feedback_capacity", {"feedback_capacity": 10.0}),
        ("feedback_capacity", {"feedback_capacity": True}),
    ]
    for name, kwargs in new:
        args = {"champion": champion, "challenger": challenger, **kwargs}
        with pytest.raises(skedge.SkedgeError) as e:
            skedge.Experiment(args.pop("champion"), args.pop("challenger"), **args)
        assert e.value.code == "INVALID_INPUT" and name in str(e.value), (kwargs, str(e.value))
    # The bounds themselves are taken; None is the default.
    exp = skedge.Experiment(champion, challenger, seed=2**64 - 1, feedback_capacity=1, sample_rate=1, salt=None)
    r = exp.predict("bon film")
    canary = skedge.Experiment(champion, challenger, mode="canary", share=0, seed=0)
    for name, call in [
        ("text", lambda: exp.predict(lone)),
        ("key", lambda: canary.predict("x", key=lone)),
        ("key", lambda: canary.predict("x", key=1)),
        ("key", lambda: canary.predict("x", key=b"user-1")),
        ("id", lambda: exp.feedback(lone, r["label"])),
        ("id", lambda: exp.feedback(1, r["label"])),
        ("label", lambda: exp.feedback(r["id"], lone)),
        ("label", lambda: exp.feedback(r["id"], True)),
        ("label", lambda: exp.feedback(r["id"], 10**5000)),
    ]:
        with pytest.raises(skedge.SkedgeError) as e:
            call()
        assert e.value.code == "INVALID_INPUT" and name in str(e.value), (name, str(e.value))
    assert exp.feedback(r["id"], r["label"]) == "counted"


def test_messages_do_not_quote_a_caller_value_whole(arms):
    """A 10 MB argument gives a message of a few hundred characters, not of 10 MB."""
    champion, challenger = arms
    big = "x" * (10 << 20)

    class Huge:
        def __repr__(self):
            return big

    exp = skedge.Experiment(champion, challenger, seed=1)
    r = exp.predict("bon film")
    for call in [
        lambda: skedge.Experiment(champion, challenger, mode=big),
        lambda: skedge.Experiment(champion, challenger, seed=Huge()),
        lambda: exp.feedback(r["id"], Huge()),
    ]:
        with pytest.raises(skedge.SkedgeError) as e:
            call()
        assert e.value.code == "INVALID_INPUT" and len(str(e.value)) < 1000, str(e.value)[:200]


def column_model(tmp_path: pathlib.Path, column: str) -> skedge.Model:
    """The DataFrame case (ColumnTransformer on "text") with its input column renamed."""
    interchange = json.loads((CASES / "ct_text_tfidf_lr_binary.interchange.json").read_text(encoding="utf-8"))
    interchange["pipeline"]["input"]["column"] = column
    source, out = tmp_path / f"ct_{column}.interchange.json", tmp_path / f"ct_{column}.skedge"
    source.write_text(json.dumps(interchange), encoding="utf-8")
    subprocess.run([SKEDGE, "pack", source, "-o", out], check=True, capture_output=True)
    return skedge.Model.load(out)


def test_records_of_a_dataframe_model(tmp_path):
    """`Experiment.predict` takes the records `{column: text}` `Model.predict` takes when both arms
    read the same column; when their columns differ, a str still works and a record is refused
    naming both."""
    model = packed(tmp_path, "ct_text_tfidf_lr_binary")
    assert model.info()["input_column"] == "text"
    text = "a fine film, well acted"
    plain = model.predict(text)
    for mode in ({"mode": "shadow"}, {"mode": "canary", "share": 0.5, "salt": "s"}):
        by_text = skedge.Experiment(model, model, seed=5, **mode).predict(text)
        by_record = skedge.Experiment(model, model, seed=5, **mode).predict({"text": text})
        assert by_record["id"] != by_text["id"]  # each experiment has its own instance
        by_text.pop("id"), by_record.pop("id")
        assert by_record == by_text
        assert {k: by_record[k] for k in plain} == plain
    exp = skedge.Experiment(model, model, mode="canary", share=0.5)
    assert exp.predict({"text": text}, key="user-1")["arm"] == exp.predict(text, key="user-1")["arm"]
    for bad in ({"review": text}, {"text": 3}, {"text": text, "other": "x"}, 42):
        with pytest.raises(skedge.SkedgeError) as e:
            exp.predict(bad)
        assert e.value.code == "INVALID_INPUT" and '"text"' in str(e.value), (bad, str(e.value))

    body = column_model(tmp_path, "body")
    review = packed(tmp_path, "ct_review_word_charwb_weighted_svc_3class_fr")
    texts_only = packed(tmp_path, "lr_multinomial_3class_strings_fr")
    for champion, challenger, named in [
        (model, body, ['champion: records {"text": str}', 'challenger: records {"body": str}']),
        (texts_only, review, ["champion: texts only", 'challenger: records {"review": str}']),
    ]:
        exp = skedge.Experiment(champion, challenger, seed=2)
        assert exp.predict(text)["label"] == champion.predict(text)["label"]
        for record in ({"text": text}, {"body": text}, {"review": text}):
            with pytest.raises(skedge.SkedgeError) as e:
                exp.predict(record)
            assert e.value.code == "INVALID_INPUT" and all(n in str(e.value) for n in named), str(e.value)
        with pytest.raises(skedge.SkedgeError) as e:
            exp.predict(42)
        assert e.value.code == "INVALID_INPUT"
