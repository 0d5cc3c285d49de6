"""`scripts/report.py`: a thin wrapper of `skedge.report` (its docstring), also the console script `skedge-report`."""

import sys

from skedge.report import main

if __name__ == "__main__":
    sys.exit(main())
