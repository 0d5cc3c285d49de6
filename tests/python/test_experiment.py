"""`skedge.Experiment` (src/python.rs over src/experiment.rs, issue #15): the served prediction is
the serving arm's, exact; shadow pairs are compared; the canary assignment is sticky and pinned to
the same values as the Rust core and the npm package; feedback goes through the bounded ring;
snapshots add up; bad arguments raise `SkedgeError` with `INVALID_INPUT`.
"""

from __future__ import annotations

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
