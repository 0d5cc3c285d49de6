"""Where the tools find the Rust programs `skedge` and `skedge-monitor`, which the wheel does not
hold: `$SKEDGE_CLI` for `skedge`; else the release build of the checkout this package sits in (the
tests and scripts/ run against the sources' CLI); else the program on PATH (`cargo install --path .`
from a checkout); else that checkout path, whose absence the caller reports by name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def program(name: str = "skedge") -> Path:
    given = os.environ.get("SKEDGE_CLI") if name == "skedge" else None
    if given:
        return Path(given)
    built = CHECKOUT / "target" / "release" / name
    if built.exists():
        return built
    found = shutil.which(name)
    return Path(found) if found else built
