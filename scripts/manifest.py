"""`scripts/manifest.py`: a thin wrapper of `skedge.manifest` (its docstring), also the console script `skedge-manifest`."""

import sys

from skedge.manifest import main

if __name__ == "__main__":
    sys.exit(main())
