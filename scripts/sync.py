"""`scripts/sync.py reconcile|rollback|serve|webhook|promote`: a thin wrapper of `skedge.sync` (its docstring), also the console script `skedge-sync`."""

import sys

from skedge.sync import main

if __name__ == "__main__":
    sys.exit(main())
