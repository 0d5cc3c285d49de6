"""export.py --sign-key / --encrypt-key: the gate loads the sealed artifact as production will."""

import subprocess
import sys
from pathlib import Path

import joblib
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

ROOT = Path(__file__).resolve().parents[2]
SKEDGE = ROOT / "target" / "release" / "skedge"
pytestmark = pytest.mark.skipif(not SKEDGE.exists(), reason="target/release/skedge not built")


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def test_signed_and_encrypted_export(tmp_path):
    texts = ["good great fine", "bad awful poor", "great value", "poor quality"] * 5
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 0, 1, 0] * 5)
    joblib.dump(model, tmp_path / "m.joblib")
    assert run(SKEDGE, "keygen", "release", cwd=tmp_path).returncode == 0
    assert run(SKEDGE, "keygen", "box", "--encryption", cwd=tmp_path).returncode == 0
    out = tmp_path / "m.skedge"
    proc = run(sys.executable, ROOT / "scripts" / "export.py", "--joblib", tmp_path / "m.joblib",
               "--out", out, "--sign-key", tmp_path / "release.key", "--encrypt-key", tmp_path / "box.key")
    assert proc.returncode == 0, proc.stderr
    assert "parity gate passed" in proc.stderr
    plain = run(SKEDGE, "inspect", out)
    assert plain.returncode != 0 and "DECRYPTION_KEY_MISSING" in plain.stderr
    ok = run(SKEDGE, "inspect", out, "--public-key", tmp_path / "release.pub",
             "--decryption-key", tmp_path / "box.key")
    assert ok.returncode == 0 and '"signature_verified": true' in ok.stdout


def test_missing_public_key_is_refused(tmp_path):
    proc = run(sys.executable, ROOT / "scripts" / "export.py", "--joblib", tmp_path / "none.joblib",
               "--out", tmp_path / "m.skedge", "--sign-key", tmp_path / "nowhere.key")
    assert proc.returncode == 3 and "public key" in proc.stderr
    assert not (tmp_path / "m.skedge").exists()
