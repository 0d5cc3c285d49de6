"""The programs the tools start. `tool_command`: a tool of this very copy of the package in a
child Python. `program`: the Rust programs `skedge` and `skedge-monitor`, which the wheel does not
hold: `$SKEDGE_CLI` for `skedge`; else the release build of the checkout this package sits in (the
tests and scripts/ run against the sources' CLI); else the program on PATH (`cargo install --path .`
from a checkout); else that checkout path, whose absence the caller reports by name."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]

#: A child must import this copy of the package, not whichever `skedge` its own sys.path finds first
#: (an editable install of another checkout, a `skedge/` in the current directory): the folder
#: holding this package replaces sys.path[0] (the current directory under `-c`), ahead of
#: site-packages. The child's arguments follow (sys.argv[1:]).
_CHILD = "import sys; sys.path[0] = {root!r}; from skedge.{tool} import main; sys.exit(main())"


def tool_command(tool: str, *flags: str) -> list:
    """`python [FLAGS] -c ...`: runs `skedge.TOOL.main()` of this copy of the package."""
    root = str(Path(__file__).resolve().parents[1])
    return [sys.executable, *flags, "-c", _CHILD.format(root=root, tool=tool)]


def program(name: str = "skedge") -> Path:
    given = os.environ.get("SKEDGE_CLI") if name == "skedge" else None
    if given:
        return Path(given)
    built = CHECKOUT / "target" / "release" / name
    if built.exists():
        return built
    found = shutil.which(name)
    return Path(found) if found else built
