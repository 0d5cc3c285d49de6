"""`skedge.Experiment` (src/python.rs over src/experiment.rs, issue #15): the served prediction is
the serving arm's, exact; shadow pairs are compared; the canary assignment is sticky and pinned to
the same values as the Rust core and the npm package, and on 10,000 keys equal to FORMAT.md's
xxh64 formula (recomputed here), within two points of the share; feedback goes through the bounded ring;
snapshots add up; bad arguments raise `SkedgeError` with `INVALID_INPUT`.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess

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
    with pytest.raises(skedge.SkedgeError) as e:
        exp.feedback(rs[1]["id"], "no such class")
    assert e.value.code == "INVALID_INPUT"
    with pytest.raises(skedge.SkedgeError) as e:
        exp.predict(42)
    assert e.value.code == "INVALID_INPUT"


def test_one_model_in_both_arms_does_not_deadlock(arms):
    champion, _ = arms
    exp = skedge.Experiment(champion, champion)
    r = exp.predict("bon film")
    assert r["shadow"]["label"] == r["label"]
    assert exp.snapshot()["shadow"]["agree"] == 1
