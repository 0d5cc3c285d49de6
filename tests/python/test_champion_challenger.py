"""Champion and challenger end to end (issue #15): `sync.py promote` reads the evidence
`report.py push` logs in each arm's monitoring run and moves the alias only when it meets the
thresholds.

- promote's rules, against metric histories logged here the way push logs them: only windows both
  arms' runs have count (an earlier peer's windows do not), a revision replaces its window, the
  thresholds compare exact fractions (a tie passes), every reason is printed, alerts refuse, a canary
  has no agreement, `--dry-run` and `--json`, exit 2 for MLflow unreachable and 3 for bad arguments
  or an alias not set;
- the scenario: two real models trained on different data (a word model on UCI Yelp sentences, a
  char_wb model on SST-2 sentences), registered and exported through skedge, a shadow
  `skedge.Experiment` over a labelled SST-2 stream with feedback (an unknown and an expired id
  counted and ignored), snapshots POSTed to a real `report.py serve`, `report.py push` to a real
  `mlflow server`: the per-arm accuracy, macro F1 and the agreement in MLflow equal scikit-learn's on
  the same texts and labels, exactly; promote refuses on the first window and promotes on all six,
  and `sync.py reconcile` (what `sync.py serve` runs on the alias event) moves the edge's pointer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"

from skedge import publish, sync  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
HOUR = 3_600_000


def _client(uri: str):
    import mlflow  # noqa: PLC0415

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _promote(uri: str, model: str, *flags: str, capsys=None) -> tuple[int, str, str]:
    """`sync.py promote` in this process (exit code, stdout, stderr)."""
    rc = sync.main(["promote", "--model", model, "--tracking-uri", uri, *flags])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------------------------------------
# promote's rules, over metrics logged as push logs them
# ---------------------------------------------------------------------------------------------


def _version(client, model: str) -> str:
    """A model version whose monitoring run is the returned run's (tag skedge.monitoring_run_id),
    tagged as push tags it."""
    exp = client.get_experiment_by_name("skedge-monitoring")
    exp_id = exp.experiment_id if exp else client.create_experiment("skedge-monitoring")
    source = client.create_run(exp_id)
    mv = client.create_model_version(model, f"runs:/{source.info.run_id}/model", run_id=source.info.run_id)
    run = client.create_run(exp_id, tags={"skedge.monitoring": "true", "skedge.model_name": model,
                                          "skedge.model_version": str(mv.version), "skedge.sha256": "a" * 64,
                                          "skedge.window_seconds": "3600.0"})  # fmt: skip
    client.set_model_version_tag(model, mv.version, "skedge.monitoring_run_id", run.info.run_id)
    return str(mv.version), run.info.run_id


def _log_window(client, run_id: str, step: int, end_ms: int, count: int, correct: int, pairs: int = 0,
                agree: int = 0, peer: str | None = None) -> None:  # fmt: skip
    """A window's point as push logs it against one peer version (`peer`; None: as a push from
    before per-peer evidence logged it, the counts only)."""
    from mlflow.entities import Metric  # noqa: PLC0415

    values = {"skedge.feedback.count": count, "skedge.feedback.correct": correct}
    if pairs:
        values.update({"skedge.shadow.pairs": pairs, "skedge.shadow.agree": agree})
    if peer is not None:
        values["skedge.peers"] = 1
        values.update({f"skedge.peer/{peer}/{k[7:]}": v for k, v in list(values.items()) if k != "skedge.peers"})
    client.log_batch(run_id, metrics=[Metric(k, float(v), end_ms, step) for k, v in values.items()])


@pytest.fixture(scope="module")
def pair(server):
    """promote_rules v1 (@champion) and v2 (@challenger), with evidence logged in their runs."""
    uri = server["uri"]
    client = _client(uri)
    model = "promote_rules"
    client.create_registered_model(model)
    v1, run1 = _version(client, model)
    v2, run2 = _version(client, model)
    client.set_registered_model_alias(model, "champion", v1)
    client.set_registered_model_alias(model, "challenger", v2)
    t0 = (int(time.time() * 1000) // HOUR - 20) * HOUR
    # An earlier experiment of the champion against another peer: windows the challenger's run has
    # not. They must not count (they would make the champion look perfect).
    for k in range(3):
        _log_window(client, run1, k, t0 + (k + 1) * HOUR, 500, 500, peer="77")
    # The pair's windows 3..5: champion 60/100 per window, challenger 70/100, 80 of 100 pairs agree.
    for k in range(3, 6):
        end = t0 + (k + 1) * HOUR
        _log_window(client, run1, k, end, 100, 60, 100, 80, peer=v2)
        _log_window(client, run2, k - 3, end, 100, 70, 100, 80, peer=v1)
    # A revision of the challenger's last window (same step, later timestamp): 100 -> 120 labels.
    _log_window(client, run2, 2, t0 + 6 * HOUR + 1, 120, 84, 120, 96, peer=v1)
    return {"uri": uri, "model": model, "v1": v1, "v2": v2, "client": client}


def test_evidence_is_the_common_windows_with_revisions(pair, capsys):
    rc, out, err = _promote(pair["uri"], pair["model"], "--dry-run", "--json", capsys=capsys)
    assert rc == 0, out + err
    ev = json.loads(out)
    assert len(ev["windows"]) == 3
    assert ev["champion"]["version"] == pair["v1"] and ev["challenger"]["version"] == pair["v2"]
    assert (ev["champion"]["count"], ev["champion"]["correct"]) == (300, 180)
    assert (ev["challenger"]["count"], ev["challenger"]["correct"]) == (320, 224)
    assert ev["challenger"]["accuracy"] == 224 / 320 and ev["champion"]["accuracy"] == 180 / 300
    assert ev["shadow"] == {"pairs": 320, "agree": 256, "agreement": 256 / 320}
    assert ev["reasons"] == [] and ev["dry_run"] and not ev["promoted"]
    assert "dry run" in err and "nothing moved" in err
    assert pair["client"].get_model_version_by_alias(pair["model"], "champion").version == pair["v1"]


def test_every_reason_is_printed_and_refuses(pair, capsys):
    # 224/320 = 0.7 exactly = 0.6 + 0.1: a tie passes; 0.1000001 does not.
    rc, out, _ = _promote(pair["uri"], pair["model"], "--dry-run", "--min-accuracy-delta", "0.1", capsys=capsys)
    assert rc == 0, out
    rc, out, _ = _promote(pair["uri"], pair["model"], "--min-feedback", "321", "--min-accuracy-delta", "0.1000001",
                          "--min-agreement", "0.81", capsys=capsys)  # fmt: skip
    assert rc == 1, out
    refused = [line for line in out.splitlines() if line.startswith("refused: ")]
    assert len(refused) == 3, out
    assert "320 labelled predictions" in refused[0] and "--min-feedback 321" in refused[0]
    assert "224/320 = 0.7000" in refused[1] and "180/300 = 0.6000" in refused[1]
    assert "256/320 = 0.8000" in refused[2]
    assert "all 3 windows" in out  # the evidence table is printed with the refusal
    assert pair["client"].get_model_version_by_alias(pair["model"], "champion").version == pair["v1"]


def test_alerts_refuse(pair, capsys):
    client, model = pair["client"], pair["model"]
    for version, tag in ((pair["v1"], "skedge.drift_alert"), (pair["v2"], "skedge.performance_alert")):
        client.set_model_version_tag(model, version, tag, "window 2026-12-03T09:00Z: oov_shift 0.7 > 0.1")
        try:
            rc, out, _ = _promote(pair["uri"], model, capsys=capsys)
            assert rc == 1 and f"has {tag}: window" in out, out
        finally:
            client.delete_model_version_tag(model, version, tag)
    # The champion's performance alert is a reason to promote, not to refuse.
    client.set_model_version_tag(model, pair["v1"], "skedge.performance_alert", "accuracy 0.6 < 0.8 - 0.05")
    rc, out, _ = _promote(pair["uri"], model, "--dry-run", capsys=capsys)
    assert rc == 0, out


def test_bad_arguments_missing_alias_and_mlflow_down(pair, capsys):
    uri, model = pair["uri"], pair["model"]
    for flags in (["--min-agreement", "2"], ["--from", "champion"], ["--min-feedback", "-1"]):
        assert _promote(uri, model, *flags, capsys=capsys)[0] == 3, flags
    with pytest.raises(SystemExit) as e:
        sync.main(["promote", "--model", model, "--min-accuracy-delta", "a lot"])
    assert e.value.code == 3
    rc, _, err = _promote(uri, model, "--from", "no-such-alias", capsys=capsys)
    assert rc == 3 and "promote_rules@no-such-alias is not set" in err
    rc, _, err = _promote(uri, "no_such_model", capsys=capsys)
    assert rc == 3, err
    rc, _, err = _promote(uri, model, "--to", "not an alias!", capsys=capsys)
    assert rc == 3, err
    from conftest import _free_port  # noqa: PLC0415

    rc, _, err = _promote(f"http://127.0.0.1:{_free_port()}", model, capsys=capsys)
    assert rc == 2 and "unreachable" in err


def test_no_evidence_at_all_says_so(pair, capsys):
    client, model = pair["client"], "promote_nothing"
    client.create_registered_model(model)
    for alias in ("champion", "challenger"):
        client.set_registered_model_alias(model, alias, _version(client, model)[0])
    rc, out, _ = _promote(pair["uri"], model, "--min-feedback", "0", capsys=capsys)
    refused = [line for line in out.splitlines() if line.startswith("refused: ")]
    assert rc == 1 and len(refused) == 2, out
    assert "no experiment window of this pair" in refused[0]
    assert "the champion and the challenger have no labelled predictions" in refused[1]


def test_a_canary_has_no_agreement(pair, capsys):
    """Canary windows log feedback but no shadow pairs: the agreement cannot be asked for."""
    client, model = pair["client"], "promote_canary"
    client.create_registered_model(model)
    (v1, run1), (v2, run2) = _version(client, model), _version(client, model)
    client.set_registered_model_alias(model, "champion", v1)
    client.set_registered_model_alias(model, "challenger", v2)
    end = (int(time.time() * 1000) // HOUR - 3) * HOUR
    _log_window(client, run1, 0, end, 950, 800, peer=v2)
    _log_window(client, run2, 0, end, 250, 230, peer=v1)
    rc, out, _ = _promote(pair["uri"], model, "--dry-run", capsys=capsys)
    assert rc == 0 and "230/250 = 0.9200" in out and "800/950 = 0.8421" in out, out
    rc, out, _ = _promote(pair["uri"], model, "--min-agreement", "0.5", capsys=capsys)
    assert rc == 1 and "refused: no shadow pairs" in out, out


def _pair_model(client, model: str, versions: int = 2) -> list:
    """A registered model with `versions` versions ((version, monitoring run id) each), the first
    two @champion and @challenger."""
    client.create_registered_model(model)
    out = [_version(client, model) for _ in range(versions)]
    client.set_registered_model_alias(model, "champion", out[0][0])
    client.set_registered_model_alias(model, "challenger", out[1][0])
    return out


def test_windows_without_per_peer_counts_are_not_evidence(pair, capsys):
    """A window logged by a push from before per-peer evidence has counts over all its peers: not
    this pair's evidence for sure, so not counted, and said so."""
    client, model = pair["client"], "promote_legacy"
    (v1, run1), (v2, run2) = _pair_model(client, model)
    t0 = (int(time.time() * 1000) // HOUR - 5) * HOUR
    _log_window(client, run1, 0, t0, 300, 150, 300, 290)
    _log_window(client, run2, 0, t0, 300, 280, 300, 290)
    rc, out, _ = _promote(pair["uri"], model, "--min-feedback", "0", capsys=capsys)
    assert rc == 1, out
    assert "refused: no experiment window of this pair" in out and "2 window(s) logged by a push from before" in out
    assert f"note: 1 window(s) of the champion (version {v1})" in out
    # the next windows have per-peer counts: they count, the old one still does not
    _log_window(client, run1, 1, t0 + HOUR, 100, 50, 100, 95, peer=v2)
    _log_window(client, run2, 1, t0 + HOUR, 100, 90, 100, 95, peer=v1)
    rc, out, _ = _promote(pair["uri"], model, "--min-feedback", "0", "--dry-run", "--json", capsys=capsys)
    ev = json.loads(out)
    assert rc == 0 and len(ev["windows"]) == 1 and ev["challenger"]["count"] == 100, ev
    assert ev["champion"]["unattributed"] == ev["challenger"]["unattributed"] == 1
    # a revision by such a push (counts only, later) replaces the window: not counted again
    _log_window(client, run2, 1, t0 + HOUR + 1, 120, 110, 120, 115)
    rc, out, _ = _promote(pair["uri"], model, "--min-feedback", "0", "--dry-run", "--json", capsys=capsys)
    assert rc == 1 and json.loads(out)["windows"] == [], out


def test_evidence_against_another_peer_is_not_this_pairs(pair, capsys):
    """v2 and v3 each ran against v1 in the same hour: with @champion v2 and @challenger v3, the
    windows end together but neither is against the other (found by an audit: promote printed
    v3-vs-v1 agreement and moved the alias)."""
    client, model = pair["client"], "promote_other_pair"
    (v1, run1), (v2, run2), (v3, run3) = _pair_model(client, model, 3)
    end = (int(time.time() * 1000) // HOUR - 2) * HOUR
    from mlflow.entities import Metric  # noqa: PLC0415

    # v1's window: two peers (two experiments), each with its per-peer counts
    both = {"skedge.feedback.count": 600, "skedge.feedback.correct": 300, "skedge.peers": 2}
    for peer in (v2, v3):
        both.update({f"skedge.peer/{peer}/feedback.count": 300, f"skedge.peer/{peer}/feedback.correct": 150,
                     f"skedge.peer/{peer}/shadow.pairs": 300, f"skedge.peer/{peer}/shadow.agree": 290})  # fmt: skip
    client.log_batch(run1, metrics=[Metric(k, float(v), end, 0) for k, v in both.items()])
    _log_window(client, run2, 0, end, 300, 160, 300, 290, peer=v1)
    _log_window(client, run3, 0, end, 300, 280, 300, 290, peer=v1)
    client.set_registered_model_alias(model, "champion", v2)
    client.set_registered_model_alias(model, "challenger", v3)
    rc, out, _ = _promote(pair["uri"], model, "--min-feedback", "0", capsys=capsys)
    assert rc == 1 and "refused: no experiment window of this pair" in out, out
    assert client.get_model_version_by_alias(model, "champion").version == v2
    # v1 against v3: v1's counts against v3 only, not its 600 labels
    client.set_registered_model_alias(model, "champion", v1)
    rc, out, _ = _promote(pair["uri"], model, "--min-feedback", "0", "--dry-run", "--json", capsys=capsys)
    ev = json.loads(out)
    assert rc == 0 and (ev["champion"]["count"], ev["champion"]["correct"]) == (300, 150), ev
    assert (ev["challenger"]["count"], ev["shadow"]["pairs"]) == (300, 300)


def test_an_alias_moved_during_the_evaluation_stops_the_promotion(pair, capsys, monkeypatch):
    """promote reads both aliases again before the move: @champion rolled to v3 by an operator
    while promote read the evidence of v1 -> v2 is not overwritten (exit 3, PROMOTE_STALE)."""
    client, model = pair["client"], "promote_race"
    (v1, run1), (v2, run2), (v3, _) = _pair_model(client, model, 3)
    end = (int(time.time() * 1000) // HOUR - 2) * HOUR
    _log_window(client, run1, 0, end, 300, 150, peer=v2)
    _log_window(client, run2, 0, end, 300, 280, peer=v1)
    real = sync.evaluate

    def evaluate_then_the_alias_moves(alias: str, version: str):
        def wrapped(*args, **kwargs):
            out = real(*args, **kwargs)
            client.set_registered_model_alias(model, alias, version)  # a concurrent rollback, another promote
            return out

        return wrapped

    monkeypatch.setattr(sync, "evaluate", evaluate_then_the_alias_moves("champion", v3))
    rc, out, err = _promote(pair["uri"], model, "--min-feedback", "0", capsys=capsys)
    assert rc == 3, out + err
    assert "PROMOTE_STALE" in err and f"@champion is now version {v3} (evaluated: {v1})" in err, err
    assert client.get_model_version_by_alias(model, "champion").version == v3
    assert "skedge.promoted" not in client.get_model_version(model, v2).tags
    # the challenger moving is as stale (the evidence is of the pair evaluated)
    client.set_registered_model_alias(model, "champion", v1)
    monkeypatch.setattr(sync, "evaluate", evaluate_then_the_alias_moves("challenger", v3))
    rc, out, err = _promote(pair["uri"], model, "--min-feedback", "0", "--json", capsys=capsys)
    assert rc == 3 and json.loads(out)["stale"] == [f"@challenger is now version {v3} (evaluated: {v2})"], out + err
    assert client.get_model_version_by_alias(model, "champion").version == v1
    # nothing moved meanwhile: it promotes
    monkeypatch.setattr(sync, "evaluate", real)
    client.set_registered_model_alias(model, "challenger", v2)
    rc, out, err = _promote(pair["uri"], model, "--min-feedback", "0", capsys=capsys)
    assert rc == 0 and client.get_model_version_by_alias(model, "champion").version == v2, out + err


@pytest.mark.team
def test_promotion_moves_the_alias_and_tags_the_version(pair, capsys):
    client, model = pair["client"], pair["model"]
    rc, out, _ = _promote(pair["uri"], model, "--min-feedback", "300", capsys=capsys)
    assert rc == 0, out
    assert client.get_model_version_by_alias(model, "champion").version == pair["v2"]
    tag = client.get_model_version(model, pair["v2"]).tags["skedge.promoted"]
    assert f"moved from version {pair['v1']} to {pair['v2']}" in tag and "224/320" in tag, tag
    rc, out, _ = _promote(pair["uri"], model, capsys=capsys)
    assert rc == 0 and "nothing to move" in out


# ---------------------------------------------------------------------------------------------
# the scenario: two real models, a labelled stream, the collector, push, promote
# ---------------------------------------------------------------------------------------------

NAME = "cc_sentiment"
LABELS = {"0": "negative", "1": "positive"}
WINDOWS = 6


def _labelled(name: str) -> tuple[list, list]:
    from conftest import read_tsv  # noqa: PLC0415

    texts, labels = read_tsv(name)
    return texts, [LABELS[y] for y in labels]


@pytest.fixture(scope="module")
def models(server, tmp_path_factory):
    """NAME version 1 (@champion): train_demo's word 1-2 gram TF-IDF + LR fitted on UCI Yelp
    restaurant sentences; version 2 (@challenger): its char_wb 2-5 gram TF-IDF + LR fitted on SST-2
    movie sentences. Each run logs the accuracy of its held-out fifth as `accuracy` (push's
    reference); both are exported through the registry."""
    from conftest import dev_script  # noqa: PLC0415
    from sklearn.metrics import accuracy_score  # noqa: PLC0415
    from skedge import export  # noqa: PLC0415

    train_demo = dev_script("train_demo")
    uri = server["uri"]
    client = _client(uri)
    tmp = tmp_path_factory.mktemp("champion_challenger")
    out = {"pipes": [], "paths": [], "reference": []}
    for v, (pipe, data) in enumerate([(train_demo.word_pipeline(), "uci_yelp.tsv"),
                                      (train_demo.char_pipeline(), "sst2_train_first2000.tsv")], start=1):  # fmt: skip
        texts, labels = _labelled(data)
        cut = len(texts) * 4 // 5
        pipe.fit(texts[:cut], labels[:cut])
        reference = float(accuracy_score(labels[cut:], pipe.predict(texts[cut:])))
        ids = train_demo.log_and_register(pipe, NAME, tracking_uri=uri, example_texts=texts[cut:cut + 6],
                                          metrics={"accuracy": reference}, experiment="skedge-champion-challenger",
                                          alias=None, stage=None)  # fmt: skip
        assert ids["version"] == str(v)
        path = tmp / f"v{v}.skedge"
        # As `sync.py reconcile` exports it (the same bytes: it publishes the artifact written back here).
        assert export.main(["--model-uri", f"models:/{NAME}/{v}", "--out", str(path), "--tracking-uri", uri]) == 0
        out["pipes"].append(pipe)
        out["paths"].append(path)
        out["reference"].append(reference)
    client.set_registered_model_alias(NAME, "champion", "1")
    client.set_registered_model_alias(NAME, "challenger", "2")
    return out


def _stream_windows(models) -> tuple[list, list]:
    """The shadow experiment over the SST-2 dev stream in WINDOWS windows, through the real core:
    (snapshots, per window what scikit-learn says of the same texts and labels)."""
    import numpy as np  # noqa: PLC0415
    import skedge  # noqa: PLC0415

    texts, labels = _labelled("sst2_dev.tsv")
    word, char = models["pipes"]
    pw, pc = word.predict(texts), char.predict(texts)
    champion, challenger = (skedge.Model.load(p) for p in models["paths"])
    # Half the texts are scored by the challenger too; a 200-prediction ring, so that an old id expires.
    exp = skedge.Experiment(champion, challenger, mode="shadow", sample_rate=0.5, seed=2026, feedback_capacity=200)
    hour = int(time.time() * 1000) // HOUR - WINDOWS - 2
    docs, truth, ids = [], [], []
    for k, chunk in enumerate(np.array_split(np.arange(len(texts)), WINDOWS)):
        labelled, paired = [], []
        for i in chunk:
            r = exp.predict(texts[i])
            assert r["label"] == pw[i], f"text {i}: the champion's label is scikit-learn's"
            if r["shadow"] is not None:
                assert r["shadow"]["label"] == pc[i], f"text {i}: the challenger's label is scikit-learn's"
                paired.append(i)
            ids.append(r["id"])
            if i % 7 != 3:  # some ground truth never arrives
                assert exp.feedback(r["id"], labels[i]) == "counted"
                labelled.append(i)
        if k == 3:
            # Counted, and ignored: an id older than the ring, and one this instance never gave.
            assert exp.feedback(ids[0], labels[0]) == "expired"
            assert exp.feedback("0" * 32, "positive") == "unknown"
        doc = exp.snapshot()
        assert (doc["feedback_expired"], doc["feedback_unknown"]) == ((1, 1) if k == 3 else (0, 0))
        # The core stamps windows with the clock; each is moved to its own past hour so that push
        # sees WINDOWS closed windows without waiting (the only change made to a snapshot).
        doc["window"]["start_ms"] = (hour + k) * HOUR + 60_000
        doc["window"]["end_ms"] = (hour + k) * HOUR + 120_000
        docs.append(doc)
        truth.append(_sklearn_window(labels, pw, pc, labelled, paired))
    return docs, truth


def _sklearn_window(labels, pw, pc, labelled: list, paired: list) -> dict:
    """What scikit-learn says of one window: each arm over its labelled texts (the challenger's are
    those it scored too), and the agreement of the two pipelines' predict over the paired texts."""
    from sklearn.metrics import accuracy_score, f1_score  # noqa: PLC0415

    out = {}
    for arm, pred, which in (("champion", pw, labelled), ("challenger", pc, sorted(set(labelled) & set(paired)))):
        y, p = [labels[i] for i in which], [pred[i] for i in which]
        out[arm] = {"skedge.feedback.count": len(which), "skedge.feedback.correct": sum(a == b for a, b in zip(y, p)),
                    "skedge.feedback.accuracy": accuracy_score(y, p),
                    "skedge.feedback.f1_macro": f1_score(y, p, average="macro")}  # fmt: skip
    a, b = [pw[i] for i in paired], [pc[i] for i in paired]
    out["shadow"] = {"skedge.shadow.pairs": len(paired), "skedge.shadow.agree": sum(x == y for x, y in zip(a, b)),
                     "skedge.shadow.agreement": accuracy_score(a, b)}  # fmt: skip
    return out


def _report(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "report.py"), *argv], capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def _sync(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "sync.py"), *argv], capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def test_scenario_shadow_stream_push_and_promotion(models, server, tmp_path):
    from test_report import Collector  # noqa: PLC0415

    uri = server["uri"]
    client = _client(uri)
    docs, truth = _stream_windows(models)
    spool = tmp_path / "spool"
    push = ["push", "--spool", str(spool), "--tracking-uri", uri, "--window-seconds", "3600", "--grace-seconds", "0"]
    promote = ["promote", "--model", NAME, "--tracking-uri", uri]

    def post(batch: list) -> None:
        c = Collector(spool).start()
        try:
            for doc in batch:
                assert c.post(json.dumps(doc).encode())[0] == 201
        finally:
            c.stop()

    def in_mlflow(upto: int) -> None:
        """Every pushed window's numbers in each arm's run equal scikit-learn's, exactly (==)."""
        for arm, version in (("champion", "1"), ("challenger", "2")):
            run_id = client.get_model_version(NAME, version).tags["skedge.monitoring_run_id"]
            for k in range(upto):
                want = {**truth[k][arm], **truth[k]["shadow"]}
                got = {key: _latest(client, run_id, key).get(k) for key in want}
                assert got == want, (arm, k)

    def evidence(result) -> dict:
        ev = json.loads(result.stdout)
        windows = len(ev["windows"])
        for arm in ("champion", "challenger"):
            assert ev[arm]["count"] == sum(t[arm]["skedge.feedback.count"] for t in truth[:windows])
            assert ev[arm]["correct"] == sum(t[arm]["skedge.feedback.correct"] for t in truth[:windows])
        assert ev["shadow"]["agree"] == sum(t["shadow"]["skedge.shadow.agree"] for t in truth[:windows])
        return ev

    # --- the first window: too little feedback for the challenger, promote refuses
    post(docs[:1])
    first = _report(*push)
    assert first.returncode in (0, 1), first.stderr  # 1: the champion's performance alert (asserted below)
    in_mlflow(1)
    weak = _sync(*promote, "--json")
    assert weak.returncode == 1, weak.stdout + weak.stderr
    ev = evidence(weak)
    assert len(ev["windows"]) == 1 and ev["challenger"]["count"] < 200
    assert [r for r in ev["reasons"] if "--min-feedback 200" in r], ev["reasons"]
    assert "refused: the challenger has" in weak.stderr
    assert client.get_model_version_by_alias(NAME, "champion").version == "1"

    # --- all six windows: enough feedback, the challenger is better; the alias moves
    post(docs[1:])
    rest = _report(*push)
    assert rest.returncode in (0, 1), rest.stderr
    in_mlflow(WINDOWS)
    champion_alert = client.get_model_version(NAME, "1").tags.get("skedge.performance_alert", "")
    n, k = (sum(t["champion"][key] for t in truth) for key in ("skedge.feedback.count", "skedge.feedback.correct"))
    assert f"production accuracy {k / n:.4f} over {n} labels" in champion_alert, champion_alert
    assert "skedge.performance_alert" not in client.get_model_version(NAME, "2").tags
    dry = _sync(*promote, "--json", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    ev = evidence(dry)
    assert len(ev["windows"]) == WINDOWS and ev["challenger"]["count"] >= 200
    assert ev["challenger"]["accuracy"] > ev["champion"]["accuracy"]
    assert client.get_model_version_by_alias(NAME, "champion").version == "1"
    # The edge serves @champion from a pointer (reconcile is what `sync.py serve` runs on the alias event).
    edge = tmp_path / "edge"
    reconcile = ["reconcile", "--model", NAME, "--alias", "champion", "--publish", str(edge), "--tracking-uri", uri]
    published = _sync(*reconcile)
    assert published.returncode == 0, published.stderr
    before, _ = publish.current_pointer(publish.open_store(edge), NAME, "champion")
    assert before["version"] == "1"
    demanding = _sync(*promote, "--min-accuracy-delta", "0.5", "--min-agreement", "0.99")
    assert demanding.returncode == 1 and demanding.stdout.count("refused: ") == 2, demanding.stdout
    strong = _sync(*promote, "--min-agreement", "0.5")
    assert strong.returncode == 0, strong.stdout + strong.stderr
    assert client.get_model_version_by_alias(NAME, "champion").version == "2"
    assert "moved from version 1 to 2" in client.get_model_version(NAME, "2").tags["skedge.promoted"]
    published = _sync(*reconcile)
    assert published.returncode == 0, published.stderr
    after, _ = publish.current_pointer(publish.open_store(edge), NAME, "champion")
    assert (after["version"], after["previous_sha256"]) == ("2", before["sha256"]), "the edge follows the promotion"

    # push's figure of the champion's run: both arms' accuracy and the agreement per window (README).
    run1 = client.get_model_version(NAME, "1").tags["skedge.monitoring_run_id"]
    figure = Path(client.download_artifacts(run1, "experiment/latest.png", str(tmp_path)))
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The README's table (`pytest -s -q tests/python/test_champion_challenger.py -k scenario`).
    rows = ["| window | texts | labelled (champion / challenger) | champion accuracy | challenger accuracy | "
            "agreement (pairs) |", "|---|---|---|---|---|---|"]
    for k, t in enumerate(truth):
        cp, ch, sh = t["champion"], t["challenger"], t["shadow"]
        rows.append(f"| {k + 1} | {docs[k]['seen']} | {cp['skedge.feedback.count']} / {ch['skedge.feedback.count']} | "
                    f"{cp['skedge.feedback.accuracy']:.3f} | {ch['skedge.feedback.accuracy']:.3f} | "
                    f"{sh['skedge.shadow.agreement']:.3f} ({sh['skedge.shadow.pairs']}) |")
    print(f"\nreference accuracy (held-out fifth of the training data): v1 {models['reference'][0]:.3f}, "
          f"v2 {models['reference'][1]:.3f}\n" + "\n".join(rows))
    print("\n$ sync.py promote --json  (after window 1)\n" + weak.stderr)
    print("$ sync.py promote --min-agreement 0.5  (after window 6)\n" + strong.stdout + f"\nfigure: {figure}")


def _latest(client, run_id: str, key: str) -> dict:
    """step -> value at the latest timestamp (the reader's rule)."""
    out: dict = {}
    for m in client.get_metric_history(run_id, key):
        if m.step not in out or m.timestamp >= out[m.step][0]:
            out[m.step] = (m.timestamp, m.value)
    return {step: v for step, (_, v) in out.items()}


# ---------------------------------------------------------------------------------------------
# the evidence of one pair, through the real core and push: other peers, a version against
# itself, a version served as two artifacts (found by an audit)
# ---------------------------------------------------------------------------------------------


def _relabelled(models, model: str, champion: tuple, challenger: tuple, hour: int, seed: int, n: int = 120,
                mode: str = "shadow") -> dict:  # fmt: skip
    """One window of the real core (the scenario's two models, every prediction labelled with the
    SST-2 truth), its arms renamed versions of `model` ((version, sha256) each) and moved to `hour`:
    as an edge following those aliases would send it."""
    import skedge  # noqa: PLC0415

    texts, labels = _labelled("sst2_dev.tsv")
    kw = {"sample_rate": 1.0} if mode == "shadow" else {"share": 0.5}
    exp = skedge.Experiment(*(skedge.Model.load(p) for p in models["paths"]), mode=mode, seed=seed, **kw)
    for i in range(seed, seed + n):
        r = exp.predict(texts[i], key=texts[i])
        assert exp.feedback(r["id"], labels[i]) == "counted"
    doc = exp.snapshot()
    for arm, (version, sha) in zip(doc["arms"], (champion, challenger)):
        arm["model"] = {"name": model, "version": version, "sha256": sha}
    doc["window"]["start_ms"] = hour * HOUR + 60_000
    doc["window"]["end_ms"] = hour * HOUR + 120_000
    return doc


def _pushed(uri: str, spool: Path, docs: list, *extra) -> subprocess.CompletedProcess:
    """The docs through a real collector, then `report.py push` (its monitoring runs in an
    experiment of their own: not the other tests' `skedge-monitoring`)."""
    from test_report import Collector  # noqa: PLC0415

    c = Collector(spool).start()
    try:
        for doc in docs:
            assert c.post(json.dumps(doc).encode())[0] == 201
    finally:
        c.stop()
    result = _report("push", "--spool", str(spool), "--tracking-uri", uri, "--grace-seconds", "0",
                     "--experiment", "skedge-cc-pairs", *extra)  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    return result


def _registered(client, model: str, versions: int) -> None:
    client.create_registered_model(model)
    exp = client.get_experiment_by_name("skedge-cc-sources")
    exp_id = exp.experiment_id if exp else client.create_experiment("skedge-cc-sources")
    for _ in range(versions):
        run = client.create_run(exp_id)
        client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)


def _run_of(client, model: str, version: str) -> str:
    return client.get_model_version(model, version).tags["skedge.monitoring_run_id"]


A, B = "a" * 64, "b" * 64


@pytest.mark.team
def test_push_keeps_the_evidence_per_peer_and_promote_reads_only_the_pairs(models, server, tmp_path):
    """v2 and v4 each ran against v1 in the same hour (two experiments). push logs v1's window
    with both peers' counts apart (and the sums, as before); with @champion v2 and @challenger v4
    promote finds no window of that pair and refuses; v1 against v4 counts v1's labels against v4
    only."""
    uri, client, model = server["uri"], _client(server["uri"]), "cc_other_pair"
    _registered(client, model, 4)
    hour = int(time.time() * 1000) // HOUR - 3
    one_two = _relabelled(models, model, ("1", A), ("2", A), hour, seed=1)
    one_four = _relabelled(models, model, ("1", A), ("4", A), hour, seed=200, n=90)
    _pushed(uri, tmp_path / "spool", [one_two, one_four], "--window-seconds", "3600")
    run1 = _run_of(client, model, "1")
    f12, f14 = one_two["arms"][0]["feedback"], one_four["arms"][0]["feedback"]
    assert _latest(client, run1, "skedge.feedback.count") == {0: f12["count"] + f14["count"]}, "the sum, as before"
    assert _latest(client, run1, "skedge.peers") == {0: 2}
    for peer, doc, f in (("2", one_two, f12), ("4", one_four, f14)):
        assert _latest(client, run1, f"skedge.peer/{peer}/feedback.count") == {0: f["count"]}
        assert _latest(client, run1, f"skedge.peer/{peer}/feedback.correct") == {0: f["correct"]}
        assert _latest(client, run1, f"skedge.peer/{peer}/shadow.pairs") == {0: doc["shadow"]["pairs"]}
        assert _latest(client, run1, f"skedge.peer/{peer}/shadow.agree") == {0: doc["shadow"]["agree"]}
    record = json.loads(Path(client.download_artifacts(
        run1, f"skedge/experiment/{hour}/{(hour + 1) * HOUR}.json", str(tmp_path))).read_text())
    assert sorted(record["by_peer"]) == [f"{model}/2", f"{model}/4"]

    client.set_registered_model_alias(model, "champion", "2")
    client.set_registered_model_alias(model, "challenger", "4")
    weak = _sync("promote", "--model", model, "--tracking-uri", uri, "--min-feedback", "0", "--min-agreement", "0.5")
    assert weak.returncode == 1 and "refused: no experiment window of this pair" in weak.stdout, weak.stdout
    assert client.get_model_version_by_alias(model, "champion").version == "2"

    client.set_registered_model_alias(model, "champion", "1")
    dry = _sync("promote", "--model", model, "--tracking-uri", uri, "--min-feedback", "0", "--dry-run", "--json")
    ev = json.loads(dry.stdout)
    assert len(ev["windows"]) == 1, dry.stderr
    assert (ev["champion"]["count"], ev["champion"]["correct"]) == (f14["count"], f14["correct"])
    f4 = one_four["arms"][1]["feedback"]
    assert (ev["challenger"]["count"], ev["challenger"]["correct"]) == (f4["count"], f4["correct"])
    assert (ev["shadow"]["pairs"], ev["shadow"]["agree"]) == (one_four["shadow"]["pairs"], one_four["shadow"]["agree"])


def test_a_version_against_itself_counts_each_label_once(models, server, tmp_path):
    """After a promotion both aliases name v2 until a new challenger is set: an edge following
    both runs v2 against v2. In shadow mode the challenger arm scores the same texts and gets the
    same labels: counted once (they were counted twice). In canary mode each arm serves its own
    keys: both arms' labels count, once each."""
    uri, client, model = server["uri"], _client(server["uri"]), "cc_same_version"
    _registered(client, model, 2)
    hour = int(time.time() * 1000) // HOUR - 3
    shadow = _relabelled(models, model, ("2", A), ("2", A), hour - 1, seed=5)
    canary = _relabelled(models, model, ("2", A), ("2", A), hour, seed=5, mode="canary")
    assert shadow["arms"][0]["feedback"]["count"] == 120 and shadow["shadow"]["pairs"] == 120
    assert sorted(a["served"] for a in canary["arms"]) != [0, 120], "the canary split the keys"
    _pushed(uri, tmp_path / "spool", [shadow, canary], "--window-seconds", "3600")
    run2 = _run_of(client, model, "2")
    count = _latest(client, run2, "skedge.feedback.count")
    assert count == {0: 120, 1: 120}, count
    assert _latest(client, run2, "skedge.feedback.correct")[0] == shadow["arms"][0]["feedback"]["correct"]
    assert _latest(client, run2, "skedge.feedback.correct")[1] == sum(a["feedback"]["correct"] for a in canary["arms"])
    assert _latest(client, run2, "skedge.shadow.pairs") == {0: 120}
    assert _latest(client, run2, "skedge.served") == {0: 120, 1: 120}


def test_every_monitoring_run_of_a_version_counts(models, server, tmp_path):
    """v1 re-published as another artifact (another sha256) for the last of four windows gets a
    second monitoring run, which its tag then names: promote reads both runs (all four windows);
    evidence of the pair in runs of another window length refuses."""
    uri, client, model = server["uri"], _client(server["uri"]), "cc_two_runs"
    _registered(client, model, 2)
    hour = int(time.time() * 1000) // HOUR - 8
    docs = [_relabelled(models, model, ("1", B if k == 3 else A), ("2", A), hour + k, seed=10 + k, n=60)
            for k in range(4)]  # fmt: skip
    _pushed(uri, tmp_path / "spool", docs, "--window-seconds", "3600")
    client.set_registered_model_alias(model, "champion", "1")
    client.set_registered_model_alias(model, "challenger", "2")
    promote = ["promote", "--model", model, "--tracking-uri", uri, "--min-feedback", "0", "--min-accuracy-delta", "-1",
               "--dry-run", "--json"]
    dry = _sync(*promote)
    ev = json.loads(dry.stdout)
    assert len(ev["windows"]) == 4, dry.stderr
    assert ev["champion"]["monitoring_run_id"] in ev["champion"]["monitoring_run_ids"]
    assert len(ev["champion"]["monitoring_run_ids"]) == 2
    for arm, i in (("champion", 0), ("challenger", 1)):
        assert ev[arm]["count"] == sum(d["arms"][i]["feedback"]["count"] for d in docs)
        assert ev[arm]["correct"] == sum(d["arms"][i]["feedback"]["correct"] for d in docs)
    assert dry.returncode == 0, dry.stderr
    # the same pair pushed from another spool with 1800 s windows: runs of another length
    late = _relabelled(models, model, ("1", A), ("2", A), hour + 5, seed=20, n=60)
    _pushed(uri, tmp_path / "spool1800", [late], "--window-seconds", "1800")
    mixed = _sync(*promote)
    assert mixed.returncode == 1, mixed.stderr
    reasons = json.loads(mixed.stdout)["reasons"]
    assert "monitoring runs of different window lengths" in reasons[0], reasons
    assert "3600 s" in reasons[0] and "1800 s" in reasons[0]
