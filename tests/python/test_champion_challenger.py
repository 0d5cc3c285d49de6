"""Champion and challenger end to end (issue #15): `sync.py promote` reads the evidence
`report.py push` logs in each arm's monitoring run and moves the alias only when it meets the
thresholds.

- promote's rules, against metric histories logged here the way push logs them: only windows both
  arms' runs have count (an earlier peer's windows do not), a revision replaces its window, the
  thresholds compare exact fractions (a tie passes), every reason is printed, alerts refuse,
  `--dry-run` and `--json`, exit 2 for MLflow unreachable and 3 for bad arguments or an alias not set;
- the scenario: two real models trained on different data (a word model on UCI Yelp sentences, a
  char_wb model on SST-2 sentences), registered and exported through skedge, a shadow
  `skedge.Experiment` over a labelled SST-2 stream with feedback (an unknown and an expired id
  counted and ignored), snapshots POSTed to a real `report.py serve`, `report.py push` to a real
  `mlflow server`: the per-arm accuracy, macro F1 and the agreement in MLflow equal scikit-learn's on
  the same texts and labels, exactly; promote refuses on the first window and promotes on all six.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"

from skedge import sync  # noqa: E402

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
    from conftest import _free_port  # noqa: PLC0415

    rc, _, err = _promote(f"http://127.0.0.1:{_free_port()}", model, capsys=capsys)
    assert rc == 2 and "unreachable" in err


def test_promotion_moves_the_alias_and_tags_the_version(pair, capsys):
    client, model = pair["client"], pair["model"]
    rc, out, _ = _promote(pair["uri"], model, "--min-feedback", "300", capsys=capsys)
    assert rc == 0, out
    assert client.get_model_version_by_alias(model, "champion").version == pair["v2"]
    tag = client.get_model_version(model, pair["v2"]).tags["skedge.promoted"]
    assert f"moved from version {pair['v1']} to {pair['v2']}" in tag and "224/320" in tag, tag
    rc, out, _ = _promote(pair["uri"], model, capsys=capsys)
    assert rc == 0 and "nothing to move" in out
