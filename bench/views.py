"""A whole page run per view for a new text: model, computation, figures and widgets, as a user waits for it.

    python bench/views.py                    # minilm-agnews, 64 tokens, every view, 5 new texts each
    python bench/views.py --tokens 128 --views attribution,flow

The page script runs through Streamlit's AppTest (the same script the server runs, without the
browser or the websocket), one view at a time: a first text traces the model's shapes and fills
what does not depend on the text, then each timed run submits a text the page has not seen, so
nothing comes from the cache. Writes bench/results/views.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency import text_of_length
from bench.server import machine
from models import registry
from models.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "views.json"
APP = str(Path(__file__).resolve().parent.parent / "app.py")
# The budget for the attribution view; the other views have none of their own.
BUDGETS_S = {"attribution": 2.0}


def time_view(model_id: str, view: str, base: str, runs: int) -> dict:
    from streamlit.testing.v1 import AppTest

    def text(label: str) -> str:
        # The first word changes, the length in tokens does not.
        return f"{label} {base.split(' ', 1)[1]}"

    page = AppTest.from_file(APP, default_timeout=600)
    page.query_params.update(model=model_id, view=view, text=text("first"))
    page.run()
    page.text_area[0].set_value(text("second")).run()
    seconds = []
    for run in range(runs):
        start = time.perf_counter()
        page.text_area[0].set_value(text(f"run{run}")).run()
        seconds.append(time.perf_counter() - start)
        if page.exception:
            raise SystemExit(f"{view}: the page raised {page.exception[0].message}")
    median = statistics.median(seconds)
    budget = BUDGETS_S.get(view)
    return {
        "view": view,
        "median_s": round(median, 3),
        "max_s": round(max(seconds), 3),
        "runs": runs,
        "budget_s": budget,
        "within_budget": None if budget is None else median <= budget,
    }


def main(argv: list[str] | None = None) -> dict:
    from views import VIEWS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm-agnews")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--views", help="comma-separated view keys (default: every view but the lesson, which brings its own texts)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    keys = args.views.split(",") if args.views else [view.KEY for view in VIEWS if view.KEY != "lesson"]
    unknown = sorted(set(keys) - {view.KEY for view in VIEWS})
    if unknown:
        parser.error(f"unknown views: {', '.join(unknown)}")
    base, tokens = text_of_length(registry.load(args.model), args.tokens)
    rows = []
    for key in keys:
        rows.append(time_view(args.model, key, base, args.runs))
        row = rows[-1]
        verdict = "" if row["budget_s"] is None else f"  budget {row['budget_s']} s: {'ok' if row['within_budget'] else 'MISSED'}"
        print(f"{key:12s} median {row['median_s']:.2f} s  max {row['max_s']:.2f} s{verdict}", flush=True)
    report = {"model": args.model, "tokens": tokens, "results": rows, "timestamp": dt.datetime.now().isoformat(timespec="seconds"), **machine()}
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
