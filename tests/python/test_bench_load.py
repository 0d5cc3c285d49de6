"""A short run of the load figures' command (`scripts/bench.sh --only load`, issue #16): 2 seconds a
row instead of 60, into a temporary folder. It checks that the command works and that its own
checks hold (0 errors, 0 non-2xx, every snapshot accounted for), never a speed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDS = [ROOT / "target" / "release" / "skedge", ROOT / "pkg" / "node.mjs", ROOT / "node_modules" / ".bin" / "wrangler"]


@pytest.mark.skipif(not all(p.exists() for p in NEEDS), reason="needs the release CLI, pkg/ and wrangler (scripts/setup.sh, scripts/build.sh)")
@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_load_command_runs_and_accounts_for_every_snapshot(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_load.py"), "--duration", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    R = json.loads((tmp_path / "load.json").read_text())
    assert R["ok"]
    w = R["worker"]
    assert (w["errors"], w["timeouts"], w["non2xx"]) == (0, 0, 0)
    assert w["snapshots_received"] >= 1 and w["answered_2xx"] <= w["predictions_in_snapshots"] <= w["sent"]
    for kind in ("collector_folder", "collector_s3"):
        c = R[kind]
        assert (c["errors"], c["non2xx"]) == (0, 0) and 0 < c["answered_201"] <= c["stored"] <= c["sent"], c
    md = (tmp_path / "load.md").read_text()
    assert md.startswith("## Load (issue #16)") and "scripts/bench.sh --only load --duration 2" in md


def test_save_keeps_the_rest_of_results_md(tmp_path):
    from importlib import util  # noqa: PLC0415  (scripts/bench_load.py is a script, not a module of the package)

    spec = util.spec_from_file_location("bench_load", ROOT / "scripts" / "bench_load.py")
    bench_load = util.module_from_spec(spec)
    spec.loader.exec_module(bench_load)
    results = tmp_path / "RESULTS.md"
    results.write_text("# skedge benchmark\n\n## Targets\n\nt\n")
    first = f"{bench_load.SECTION}\n\nfirst\n"
    bench_load.save_section(results, first)
    assert results.read_text() == f"# skedge benchmark\n\n## Targets\n\nt\n\n{first}"
    results.write_text(results.read_text() + "## After\n\na\n")
    bench_load.save_section(results, f"{bench_load.SECTION}\n\nsecond\n")
    assert results.read_text() == f"# skedge benchmark\n\n## Targets\n\nt\n\n{bench_load.SECTION}\n\nsecond\n## After\n\na\n"
    assert bench_load.section_of(results) == f"{bench_load.SECTION}\n\nsecond\n"
