"""The last step of `make bench`: write the fresh results into the README.

    python bench/report.py            # rewrite the README's generated tables and figures
    python bench/report.py --check    # only say whether the README matches bench/results

The README is written by bench/readme.py (also `make readme`), the one writer of its measured
figures; this script is the name `make bench` has always called. Every row says when it was
measured and which commit was served, so a table cannot pass an old figure off as a new one.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.readme import main

if __name__ == "__main__":
    sys.exit(main())
