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
    """A model version whose monitoring run is the returned run's (tag skedge.monitoring_run_id)."""
    exp = client.get_experiment_by_name("skedge-monitoring")
    exp_id = exp.experiment_id if exp else client.create_experiment("skedge-monitoring")
    source = client.create_run(exp_id)
    mv = client.create_model_version(model, f"runs:/{source.info.run_id}/model", run_id=source.info.run_id)
    run = client.create_run(exp_id, tags={"skedge.monitoring": "true"})
    client.set_model_version_tag(model, mv.version, "skedge.monitoring_run_id", run.info.run_id)
    return str(mv.version), run.info.run_id


def _log_window(client, run_id: str, step: int, end_ms: int, count: int, correct: int, pairs: int = 0,
                agree: int = 0) -> None:  # fmt: skip
    from mlflow.entities import Metric  # noqa: PLC0415

    values = {"skedge.feedback.count": count, "skedge.feedback.correct": correct}
    if pairs:
        values.update({"skedge.shadow.pairs": pairs, "skedge.shadow.agree": agree})
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
        _log_window(client, run1, k, t0 + (k + 1) * HOUR, 500, 500)
    # The pair's windows 3..5: champion 60/100 per window, challenger 70/100, 80 of 100 pairs agree.
    for k in range(3, 6):
        end = t0 + (k + 1) * HOUR
        _log_window(client, run1, k, end, 100, 60, 100, 80)
        _log_window(client, run2, k - 3, end, 100, 70, 100, 80)
    # A revision of the challenger's last window (same step, later timestamp): 100 -> 120 labels.
    _log_window(client, run2, 2, t0 + 6 * HOUR + 1, 120, 84, 120, 96)
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
    _log_window(client, run1, 0, end, 950, 800)
    _log_window(client, run2, 0, end, 250, 230)
    rc, out, _ = _promote(pair["uri"], model, "--dry-run", capsys=capsys)
    assert rc == 0 and "230/250 = 0.9200" in out and "800/950 = 0.8421" in out, out
    rc, out, _ = _promote(pair["uri"], model, "--min-agreement", "0.5", capsys=capsys)
    assert rc == 1 and "refused: no shadow pairs" in out, out


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
