"""The package as a user gets it: `import skedge` stays light, the tools are its modules, a built
wheel installs with working console scripts (alone, without its extras, too), its metadata and stubs
are right, the sdist builds, and the isolated loader runs the parent's own copy."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, SKEDGE, binary_corpus, dump, fit, requires_skedge
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skedge import _cli, export, interchange, isolated
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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _wheel(tmp_path_factory.mktemp("dist"))


def test_the_built_wheel_installs_the_package_and_its_console_scripts(tmp_path, wheel):
    """`pip install` of the wheel (its dependencies come from this interpreter): `import skedge`
    from the install, every tool module inside it, and the console scripts run."""
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
    # An installed package has no checkout: nothing is looked for beside it (in a checkout, its root).
    proc = _python("import skedge._cli as c, skedge.export as e; print(c.CHECKOUT, e.PKG, e.parity_runtime())",
                   env=env, cwd=tmp_path)  # fmt: skip
    assert proc.stdout.split() == ["None", "None", "native", "CLI"], proc.stdout + proc.stderr
    assert _cli.CHECKOUT == REPO and export.PKG == REPO / "pkg"
    # No CLI anywhere (no checkout around the install, none on PATH, no SKEDGE_CLI): the exporter
    # says so in one coded line where it first needs it (the loader's ln-table for sublinear_tf,
    # else the pack), naming no path inside the install; an unsupported pipeline is named first.
    bare = {k: v for k, v in env.items() if k != "SKEDGE_CLI"} | {"PATH": os.defpath}
    nowhere = tmp_path / "nowhere" / "skedge"
    for sublinear, flags, where in ((False, [], ""), (True, ["--skedge", str(nowhere)], f" at {nowhere}")):
        model = fit(make_pipeline(TfidfVectorizer(sublinear_tf=sublinear), LogisticRegression()))
        cmd = [str(site / "bin" / "skedge-export"), "--joblib", str(dump(model, tmp_path)), "--out", "m.skedge", *flags]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=bare, cwd=tmp_path)
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr.splitlines()[-1] == (f"error[CLI_NOT_FOUND]: skedge CLI not found{where}: pass --skedge, "
                                                "set SKEDGE_CLI, or build it (cargo build --release)"), proc.stderr  # fmt: skip
        assert "Traceback" not in proc.stderr and str(site) not in proc.stderr, proc.stderr
        assert not (tmp_path / "m.skedge").exists()
    # The manifest needs no CLI: the package reads the artifact itself.
    art = tmp_path / "tiny.skedge"
    shutil.copy(REPO / "tests" / "golden" / "tiny.skedge", art)
    for args in ([str(art)], ["--check", str(art)]):
        proc = subprocess.run([str(site / "bin" / "skedge-manifest"), *args], capture_output=True, text=True, env=bare, cwd=tmp_path)
        assert proc.returncode == 0, (args, proc.stderr)
    assert json.loads((tmp_path / "tiny.manifest.json").read_text())["name"] == "tiny"
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


@requires_skedge
def test_a_coded_refusal_is_printed_once_coded(tmp_path, capsys):
    """A refused model file's message already says `error[MODEL_REFUSED]: ...`: the exporter
    prints it as is, not `error: error[MODEL_REFUSED]: ...`."""
    import fractions

    import joblib

    path = tmp_path / "m.joblib"
    joblib.dump(fractions.Fraction(1, 3), path)
    assert export.main(["--joblib", str(path), "--out", str(tmp_path / "m.skedge"), "--skedge", str(SKEDGE)]) == 2
    err = capsys.readouterr().err
    assert "\nerror[MODEL_REFUSED]: " in f"\n{err}" and "error: error[" not in err, err


@requires_skedge
def test_the_manifest_reads_what_skedge_inspect_reads(tmp_path, monkeypatch):
    """The manifest takes its fields from the package's engine (`Model.info()`), not the CLI: the
    same values as `skedge inspect`, a sealed artifact read with the exporter's keys."""
    golden = REPO / "tests" / "golden"
    from skedge import manifest

    for name, pub, key in (("tiny", None, None), ("tiny.signed-encrypted", "test-signing.pub", "test-encryption.key")):
        art = golden / f"{name}.skedge"
        flags = (["--public-key", str(golden / pub)] if pub else []) + (["--decryption-key", str(golden / key)] if key else [])
        proc = subprocess.run([str(SKEDGE), "inspect", str(art), *flags], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        inspected = json.loads(proc.stdout)
        monkeypatch.setattr(export.KEYS, "public_key", golden / pub if pub else None)
        monkeypatch.setattr(export.KEYS, "encrypt_key", golden / key if key else None)
        man = manifest.build_manifest(art, exported_at="2026-01-01T00:00:00Z")
        for field in ("name", "version", "format_version", "skedge_version", "classes", "estimator", "n_features",
                      "precision", "sklearn_version", "created", "source_sha256", "provenance", "metrics", "sha256"):  # fmt: skip
            assert man[field] == inspected[field], (name, field)
        assert manifest.check(art, man, SKEDGE) == []


def test_the_wheel_alone_helps_with_every_tool_and_names_the_missing_extra(tmp_path, wheel):
    """`pip install skedge-*.whl` into a fresh venv brings numpy only: every console script's
    `--help` works, `python -m skedge` lists the tools, and a tool run without its extra says in
    one line which extra to install, not a traceback."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # This interpreter's pip, into the venv (`--python`): the wheel and its one dependency, at this
    # interpreter's version (from pip's cache once downloaded).
    numpy = f"numpy=={importlib.metadata.version('numpy')}"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(wheel), numpy],
                          capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    code = "import importlib.util as u; print([m for m in ('sklearn', 'scipy', 'mlflow', 'pydantic', 'starlette') if u.find_spec(m)])"
    assert subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SKEDGE_CLI", "VIRTUAL_ENV")}

    def run(*argv: str | Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, cwd=tmp_path)

    for name in CONSOLE_SCRIPTS:
        proc = run(venv / "bin" / name, "--help")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (name, proc.stderr)
        assert proc.stdout.startswith(f"usage: {name} "), (name, proc.stdout[:300])
    proc = run(venv / "bin" / "skedge-report", "push", "--help")  # a command's own options, too
    assert proc.returncode == 0 and proc.stdout.startswith("usage: skedge-report push "), proc.stdout[:300]
    for module in ("skedge.export", "skedge.service", "skedge.manifest", "skedge.report"):
        proc = run(python, "-m", module, "--help")
        assert proc.returncode == 0 and proc.stdout.startswith("usage: "), (module, proc.stderr)
    proc = run(python, "-m", "skedge")
    assert proc.returncode == 0 and all(n in proc.stdout for n in CONSOLE_SCRIPTS), proc.stdout
    assert run(python, "-m", "skedge", "export", "--help").stdout.startswith("usage: skedge-export ")
    # Running a tool: one line naming the extra, the tool's failure exit code.
    art = REPO / "tests" / "golden" / "tiny.skedge"
    for argv, extra, rc in (
        ([venv / "bin" / "skedge-export", "--joblib", "m.joblib", "--out", "m.skedge"], "export", 3),
        ([python, "-m", "skedge.export", "--joblib", "m.joblib", "--out", "m.skedge"], "export", 3),
        ([python, "-m", "skedge", "export", "--joblib", "m.joblib", "--out", "m.skedge"], "export", 3),
        ([venv / "bin" / "skedge-export", "--model-uri", "models:/m@a", "--out", "m.skedge"], "mlflow", 3),
        ([python, "-m", "skedge.service", art], "service", 1),
        ([venv / "bin" / "skedge-report", "schema"], "report", 1),
        ([python, "-m", "skedge.report", "push", "--from", "s3://b/p"], "report", 1),
        ([python, "-m", "skedge", "report", "serve", "--spool", "spool"], "report", 1),
    ):
        proc = run(*argv)
        assert proc.returncode == rc, (argv, proc.returncode, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "error[EXTRA_MISSING]" in proc.stderr, (argv, proc.stderr)
        assert proc.stderr.rstrip().endswith(f'install "skedge[{extra}]"'), (argv, proc.stderr)
    proc = run(venv / "bin" / "skedge-sync", "reconcile", "--model", "m", "--alias", "a", "--publish", tmp_path / "edge")
    assert proc.returncode == 3 and 'install "skedge[mlflow]"' in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    # The runtime and the manifest need nothing more.
    proc = run(venv / "bin" / "skedge-manifest", "--check", art, "--manifest", tmp_path / "none.json")
    assert proc.returncode == 1 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = run(python, "-c", f"import skedge; print(skedge.Model.load({str(art)!r}).info()['name'])")
    assert proc.stdout.strip() == "tiny", proc.stderr


def test_the_extras_table_is_pyprojects():
    """`_cli.EXTRA_MODULES` (what names the extra to install) lists the modules of each extra of
    pyproject.toml."""
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    import_name = {"scikit-learn": "sklearn"}

    def modules(extra: str) -> set:
        out = set()
        for req in extras[extra]:
            name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
            if name == "skedge":
                out |= {m for e in re.findall(r"\[(.*?)\]", req)[0].split(",") for m in modules(e.strip())}
            else:
                out.add(import_name.get(name, name))
        return out

    assert set(_cli.EXTRA_MODULES) == set(extras)
    for extra, names in _cli.EXTRA_MODULES.items():
        assert set(names) == modules(extra), extra
    assert export.PRECISIONS == interchange.PRECISIONS


def test_the_stubs_match_the_module(tmp_path):
    """`mypy.stubtest skedge._skedge`: the stub's names, signatures, `@final` classes and
    constructors are the native module's (its cache in tmp_path, the current directory)."""
    pytest.importorskip("mypy.stubtest", reason="mypy is not installed (pip install mypy)")
    proc = subprocess.run([sys.executable, "-m", "mypy.stubtest", "skedge._skedge"], capture_output=True, text=True,
                          cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_wheel_carries_the_license_and_its_own_readme(wheel):
    """The wheel's METADATA describes the package (its README, not the repository's) and the
    MIT license file ships in it."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        licence = next((n for n in names if n.endswith(".dist-info/licenses/LICENSE")), None)
        assert licence is not None, names
        assert z.read(licence).decode().startswith("MIT License\n\nCopyright (c) 2026 the skedge developers")
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    description = meta.split("\n\n", 1)[1]
    assert description.startswith("# skedge\n") and len(description) < 8000, description[:200]
    assert description.strip() == (REPO / "scripts" / "skedge" / "README.md").read_text(encoding="utf-8").strip()
    # No checkout commands or repository-relative links.
    for checkout_only in ("scripts/", ".venv", "](", "target/release"):
        assert checkout_only not in description, checkout_only
    assert "skedge/README.md" not in names


def test_the_sdist_builds_the_package_without_the_repository_s_tests(tmp_path):
    """`maturin sdist` leaves tests/, www/ and benches/ out, keeps LICENSE, and still builds: a
    wheel from it (`pip wheel`, no build isolation: this interpreter's maturin) imports and runs."""
    maturin = Path(sys.executable).with_name("maturin")
    if not maturin.exists() or not shutil.which("cargo"):
        pytest.skip("maturin or cargo is missing (scripts/setup.sh installs them)")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    proc = subprocess.run([str(maturin), "sdist", "-o", str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sdist,) = tmp_path.glob("skedge-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tops = {Path(n).parts[1] for n in tar.getnames() if len(Path(n).parts) > 1}
    assert not tops & {"tests", "www", "benches"}, tops
    assert {"LICENSE", "src", "Cargo.toml", "pyproject.toml"} <= tops
    # The crate's own target folder for the Python build: its dependencies are compiled already.
    # The build backend runs `maturin` from PATH.
    env |= {"CARGO_TARGET_DIR": str(REPO / "target" / "python"), "PATH": f"{maturin.parent}{os.pathsep}{env['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path / "dist"), str(sdist)], capture_output=True, text=True, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = (tmp_path / "dist").glob("skedge-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(built) as z:
        z.extractall(site)
    art = REPO / "tests" / "golden" / "tiny.skedge"
    proc = _python(f"import skedge; print(skedge.__file__, skedge.Model.load({str(art)!r}).info()['name'])",
                   env={**os.environ, "PYTHONPATH": str(site)}, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    path, name = proc.stdout.split()
    assert Path(path).is_relative_to(site) and name == "tiny"
