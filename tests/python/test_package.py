"""The package as a user gets it: `import skedge` stays light, the tools are its modules, a built
wheel installs with working console scripts, and the isolated loader runs the parent's own copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, SKEDGE, binary_corpus, dump, fit, requires_skedge
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skedge import export, isolated
from skedge._cli import tool_command

CONSOLE_SCRIPTS = ("skedge-export", "skedge-manifest", "skedge-report", "skedge-sync")
HEAVY = ("sklearn", "scipy", "mlflow", "pydantic", "pyspark", "starlette")


def _python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, **kwargs)


def test_importing_skedge_imports_no_tool_dependency():
    proc = _python(f"import sys, skedge; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_old_script_names_run_the_package():
    for name in ("export", "report", "manifest", "sync"):
        proc = subprocess.run([sys.executable, str(REPO / "scripts" / f"{name}.py"), "--help"],
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout.startswith("usage: "), name


@requires_skedge
def test_the_loader_imports_the_parents_package(tmp_path, monkeypatch):
    """The child that unpickles the model must run this copy of `skedge`, not another one its own
    sys.path would find first (here a decoy in the current directory and on PYTHONPATH; in a
    worktree, the editable install of the main checkout)."""
    decoy = tmp_path / "cwd"
    (decoy / "skedge").mkdir(parents=True)
    marker = tmp_path / "decoy-imported"
    (decoy / "skedge" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('decoy')\n")
    (decoy / "skedge" / "isolated.py").write_text("raise ImportError('decoy')\n")
    monkeypatch.chdir(decoy)
    monkeypatch.setenv("PYTHONPATH", str(decoy))
    model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    out = tmp_path / "model.skedge"
    assert export.main(["--joblib", str(dump(model, tmp_path)), "--out", str(out), "--skedge", str(SKEDGE)]) == 0
    assert out.exists() and not marker.exists()
    argv = isolated.child_argv()
    assert argv[1:4] == ["-E", "-B", "-c"]  # -E: PYTHONPATH and PYTHON* variables are not read
    assert repr(str(Path(isolated.__file__).resolve().parents[1])) in argv[4]


def test_a_tool_started_as_a_child_runs_this_copy_of_the_package(tmp_path):
    """`tool_command` (sync serve's reconcile passes, the isolated loader) from a directory holding
    another `skedge`, also on PYTHONPATH."""
    (tmp_path / "skedge").mkdir()
    (tmp_path / "skedge" / "__init__.py").write_text("raise ImportError('decoy')\n")
    proc = subprocess.run([*tool_command("manifest"), "--help"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("usage: "), proc.stderr


def _wheel(tmp: Path) -> Path:
    """SKEDGE_WHEEL if given, else `maturin build --release` of this tree (incremental: in
    target/python/, where scripts/setup.sh builds the package, apart from the CLIs' target/release/)."""
    given = os.environ.get("SKEDGE_WHEEL")
    if given:
        return Path(given)
    maturin = Path(sys.executable).with_name("maturin")
    if not maturin.exists() or not shutil.which("cargo"):
        pytest.skip("maturin or cargo is missing (scripts/setup.sh installs them)")
    # VIRTUAL_ENV unset: maturin would otherwise also install into that environment.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"CARGO_TARGET_DIR": str(REPO / "target" / "python")}
    proc = subprocess.run([str(maturin), "build", "--release", "--quiet", "-o", str(tmp)],
                          cwd=REPO, env=env, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp.glob("skedge-*.whl")
    return wheel


def test_the_built_wheel_installs_the_package_and_its_console_scripts(tmp_path):
    """`pip install` of the wheel (its dependencies come from this interpreter): `import skedge`
    from the install, every tool module inside it, and the console scripts run."""
    wheel = _wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("__init__", "export", "registry", "report", "baseline", "interchange", "manifest",
                   "safe_load", "isolated", "compose", "adversarial", "sync", "publish", "service", "spark"):  # fmt: skip
        assert f"skedge/{module}.py" in names, module
    assert any(n.startswith("skedge/_skedge") for n in names) and "skedge/py.typed" in names
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site), str(wheel)]
    proc = subprocess.run(pip, capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = _python("import skedge, skedge.export, skedge.report; print(skedge.__file__, skedge.export.__file__)",
                   env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert all(Path(p).is_relative_to(site) for p in proc.stdout.split()), proc.stdout
    for name in CONSOLE_SCRIPTS:
        proc = subprocess.run([str(site / "bin" / name), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout.startswith(f"usage: {name} "), (name, proc.stdout[:200])
    # The installed exporter runs its loader from the install and finds the CLI on PATH (no
    # checkout around it), as after `cargo install --path .`.
    if SKEDGE.exists():
        (tmp_path / "cargo-bin").mkdir()
        (tmp_path / "cargo-bin" / "skedge").symlink_to(SKEDGE)
        env["PATH"] = f"{tmp_path / 'cargo-bin'}{os.pathsep}{os.environ['PATH']}"
        model = fit(make_pipeline(TfidfVectorizer(), LogisticRegression()))
        out = tmp_path / "m.skedge"
        proc = subprocess.run([str(site / "bin" / "skedge-export"), "--joblib", str(dump(model, tmp_path)), "--out", str(out)],
                              capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "gate passed (native CLI)" in proc.stdout + proc.stderr
        texts = binary_corpus()[0][:5]
        proc = _python(f"import skedge; m = skedge.Model.load({str(out)!r}); print([m.predict(t)['label'] for t in {texts!r}])",
                       env=env, cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str([int(v) for v in model.predict(texts)])
