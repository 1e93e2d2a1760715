"""Run ``python -m models …`` and freeze it at chosen renames, so that a test can kill it exactly there.

    python tests/helpers/interrupt.py after:vocab.json train keras-transformer --out DIR
    python tests/helpers/interrupt.py after:config.json,vocab.json train keras-transformer --out DIR
    python tests/helpers/interrupt.py before:metrics.json evaluate --model keras-transformer --write-metrics

Atomic writes put a finished temporary file in place with ``os.replace``; a crash can only land
before or after such a rename. ``before:NAME`` stops the process (SIGSTOP) just before the rename
onto NAME, with the new content complete beside it; ``after:NAME`` stops it just after, before
the next file is written. The moments between two renames last microseconds, so polling file
times from outside cannot hit them; freezing the process can. With several names (comma
separated) it stops at each; the caller continues it (SIGCONT) to reach the next. Each stop is
announced on stderr as ``[interrupt] stopped at after:NAME`` just before it happens.

The repository (or a copy of it) must be on PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

STOPPED = "[interrupt] stopped at "


def freeze(moment: str, name: str) -> None:
    print(f"{STOPPED}{moment}:{name}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)


def main() -> int:
    moment, names = sys.argv[1].split(":", 1)
    if moment not in ("before", "after"):
        raise SystemExit(f"expected before:NAME or after:NAME, got {sys.argv[1]!r}")
    stops = set(names.split(","))
    replace = os.replace

    def replace_and_maybe_stop(source, destination, *args, **kwargs):
        name = Path(destination).name
        if name in stops and moment == "before":
            freeze(moment, name)
        replace(source, destination, *args, **kwargs)
        if name in stops and moment == "after":
            freeze(moment, name)

    os.replace = replace_and_maybe_stop
    from models.__main__ import main as models_main

    return models_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
