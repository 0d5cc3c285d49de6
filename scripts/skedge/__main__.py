"""`python -m skedge`: the tools of the package and what each does; `python -m skedge TOOL ARGS`
runs one (as its console script would)."""

from __future__ import annotations

import sys

from . import __version__, _cli

#: (tool, how it is started, what it does, the extra it needs).
TOOLS = (
    ("export", "skedge-export", "export a fitted scikit-learn pipeline to an artifact, behind a parity gate", "export"),
    ("manifest", "skedge-manifest", "write or --check the MODEL.manifest.json a deployment pins", None),
    ("sync", "skedge-sync", "keep the artifacts published for the edge in step with the MLflow registry", "mlflow"),
    ("report", "skedge-report", "collect monitoring snapshots and push them to MLflow", "report"),
    ("service", "python -m skedge.service", "an HTTP prediction service around a model", "service"),
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    names = [t[0] for t in TOOLS]
    if args and args[0] in names:
        sys.argv = [f"skedge-{args[0]}", *args[1:]]
        return _cli.run(args[0])
    out = sys.stdout if not args or args[0] in ("-h", "--help") else sys.stderr
    if out is sys.stderr:
        print(f"python -m skedge: no tool {args[0]!r}\n", file=out)
    print(f"skedge {__version__}: the runtime is `import skedge`; the tools:\n", file=out)
    for _, command, what, extra in TOOLS:
        needs = f' (pip install "skedge[{extra}]")' if extra else ""
        print(f"  {command:<26}{what}{needs}", file=out)
    print(f"\npython -m skedge TOOL [ARGS]: the same as its command ({', '.join(names)}); TOOL --help for its options.",
          file=out)  # fmt: skip
    return 0 if out is sys.stdout else 2


if __name__ == "__main__":
    sys.exit(main())
