"""What the tools share as programs: the console scripts' entry points, the Rust programs they run,
and the one-line errors for what is missing.

`tool_command`: a tool of this very copy of the package in a child Python. `program`: the Rust
programs `skedge` and `skedge-monitor`, which the wheel does not hold: `$SKEDGE_CLI` for `skedge`;
else, in a checkout, its release build (the tests and scripts/ run against the sources' CLI); else
the program on PATH (`cargo install --path .`). `located` turns that into a program that exists or
a coded `CLI_NOT_FOUND` error, never a path inside an installed package.

The console scripts (`skedge-export`, ...) are `export`, `manifest`, `report` and `sync` here: they
run the tool's `main()` and turn a missing optional dependency, on import or later, into one line
naming the extra that brings it (`EXTRA_MISSING`: `pip install "skedge[export]"`), not a traceback.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

_HERE = Path(__file__).resolve().parent
#: The checkout this package is the sources of (scripts/skedge/ beside Cargo.toml), else None: an
#: installed package has no checkout, and nothing is looked for beside it.
CHECKOUT = _HERE.parents[1] if _HERE.parent.name == "scripts" and (_HERE.parents[1] / "Cargo.toml").is_file() else None

#: The modules each extra of pyproject.toml brings (import names; tests/python/test_package.py
#: checks them against pyproject.toml).
EXTRA_MODULES = {
    "export": ("sklearn", "scipy", "joblib", "skops", "pyarrow"),
    "mlflow": ("sklearn", "scipy", "joblib", "skops", "pyarrow", "mlflow", "boto3", "starlette", "uvicorn"),
    "report": ("mlflow", "starlette", "uvicorn", "h11", "pydantic", "matplotlib"),
    "service": ("starlette", "uvicorn"),
    "spark": ("pyspark", "pandas", "pyarrow"),
}

#: Each tool's extras, the first that brings a missing module named: the exporter's own first, so
#: that a missing scipy asks for [export], a missing mlflow (--model-uri) for [mlflow].
TOOL_EXTRAS = {
    "export": ("export", "mlflow"),
    "manifest": (),
    "report": ("report",),
    "sync": ("mlflow",),
    "service": ("service",),
}

#: The exit code of a tool that cannot run: the exporter's "other failure" is 3 (its 1 and 2 say
#: parity mismatch and unsupported pipeline), the other tools' failures are 1.
EXIT_CODES = {"export": 3}

#: How a tool is started, for its messages (the others are console scripts `skedge-TOOL`).
PROGS = {"service": "python -m skedge.service"}

#: A child must import this copy of the package, not whichever `skedge` its own sys.path finds first
#: (an editable install of another checkout, a `skedge/` in the current directory): the folder
#: holding this package replaces sys.path[0] (the current directory under `-c`), ahead of
#: site-packages. The child's arguments follow (sys.argv[1:]).
_CHILD = "import sys; sys.path[0] = {root!r}; from skedge.{tool} import main; sys.exit(main())"


def tool_command(tool: str, *flags: str) -> list:
    """`python [FLAGS] -c ...`: runs `skedge.TOOL.main()` of this copy of the package."""
    return [sys.executable, *flags, "-c", _CHILD.format(root=str(_HERE.parent), tool=tool)]


def program(name: str = "skedge") -> Path:
    """The Rust program `name`: `$SKEDGE_CLI` (for `skedge`), the checkout's release build, the one
    on PATH; else the bare name, which `located` refuses with `CLI_NOT_FOUND`."""
    given = os.environ.get("SKEDGE_CLI") if name == "skedge" else None
    if given:
        return Path(given)
    if CHECKOUT is not None and (CHECKOUT / "target" / "release" / name).exists():
        return CHECKOUT / "target" / "release" / name
    found = shutil.which(name)
    return Path(found) if found else Path(name)


class CliNotFound(RuntimeError):
    """The Rust CLI the tool runs is not there (`code` `CLI_NOT_FOUND`)."""

    code = "CLI_NOT_FOUND"

    def __init__(self, name: str = "skedge", given: Path | None = None):
        where = f" at {given}" if given is not None and given != Path(name) else ""
        if name == "skedge":
            todo = "pass --skedge, set SKEDGE_CLI, or build it (cargo build --release)"
        else:
            todo = f"pass --{name}, or build it (cargo build --release) and put it on PATH"
        super().__init__(f"{name} CLI not found{where}: {todo}")

    def __str__(self) -> str:
        return f"error[{self.code}]: {super().__str__()}"


def located(path: str | Path, name: str = "skedge") -> Path:
    """`path` (`--skedge`, or `program`'s answer) as a program that exists: a path to a file, or a
    bare name found on PATH; else `CliNotFound`."""
    path = Path(path)
    if path.is_file():
        return path.resolve()
    # A bare name is looked for on PATH, as a child process would.
    found = shutil.which(str(path)) if path.parent == Path(".") else None
    if found:
        return Path(found)
    raise CliNotFound(name, path)


def locate(path: str | Path) -> Path | None:
    """`located(path)`, or None where it raises."""
    try:
        return located(path)
    except CliNotFound:
        return None


class ExtraMissing(ModuleNotFoundError):
    """An optional dependency of a tool is not installed (`code` `EXTRA_MISSING`)."""

    code = "EXTRA_MISSING"

    def __init__(self, module: str, extra: str):
        super().__init__(f'{module} is not installed: install "skedge[{extra}]"', name=module)
        self.extra = extra

    def __str__(self) -> str:
        return f"error[{self.code}]: {super().__str__()}"


def extra_missing(err: ModuleNotFoundError, tool: str) -> ExtraMissing | None:
    """`err` as the extra of `tool` to install, when the module it could not import is one an
    extra brings; None for any other module (a bug, which keeps its traceback)."""
    if isinstance(err, ExtraMissing):
        return err
    top = (err.name or "").split(".")[0]
    for extra in TOOL_EXTRAS.get(tool, ()):
        if top in EXTRA_MODULES[extra]:
            return ExtraMissing(top, extra)
    return None


class Absent:
    """Stands for a module a tool could not import for want of an extra: any use of it raises the
    `ExtraMissing` that names the extra (the tool's `--help` works without it)."""

    def __init__(self, error: ExtraMissing):
        self._error = error

    def __getattr__(self, name: str):
        raise self._error

    def __call__(self, *args, **kwargs):
        raise self._error


def _synopsis(tool: str) -> str:
    """The head of the tool's module docstring (its title and command lines), read without
    importing the module, which needs the extra."""
    spec = importlib.util.find_spec(f"skedge.{tool}")
    source = Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""
    doc = ast.get_docstring(ast.parse(source)) or ""
    head = "\n\n".join(doc.split("\n\n")[:2])
    return head.replace(f".venv/bin/python scripts/{tool}.py", f"skedge-{tool}")


def run(tool: str, main: Callable[[], int] | None = None) -> int:
    """Run `skedge.TOOL.main()` (or `main`, from the module's own `__main__`): a module of an extra
    that is not installed, missing on import or when a command reaches it, is one line on stderr
    and the tool's failure exit code. `--help` of a tool that cannot even be imported without its
    extra shows the head of its documentation and what to install."""
    prog = PROGS.get(tool, f"skedge-{tool}")
    try:
        if main is None:
            try:
                main = importlib.import_module(f"skedge.{tool}").main
            except ModuleNotFoundError as err:
                missing = extra_missing(err, tool)
                if missing is None or not {"-h", "--help"} & set(sys.argv[1:]):
                    raise
                print(f"{_synopsis(tool)}\n\n{prog} --help and its commands need the [{missing.extra}] "
                      f'extra: install "skedge[{missing.extra}]"')
                return 0
        return main()
    except ModuleNotFoundError as err:
        missing = extra_missing(err, tool)
        if missing is None:
            raise
        print(f"{prog}: {missing}", file=sys.stderr)
        return EXIT_CODES.get(tool, 1)


# The console scripts (pyproject.toml [project.scripts]).
def export() -> int:
    return run("export")


def manifest() -> int:
    return run("manifest")


def report() -> int:
    return run("report")


def sync() -> int:
    return run("sync")
