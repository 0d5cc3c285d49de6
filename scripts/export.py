"""`scripts/export.py`: a thin wrapper of `skedge.export` (its docstring), also the console script `skedge-export`."""

import sys

from skedge.export import main

if __name__ == "__main__":
    sys.exit(main())
