"""A whole page run per view for a new text: model, computation, figures and widgets, as a user waits for it.

    python bench/views.py                    # minilm-agnews, 64 tokens, every view, 5 new texts each
    python bench/views.py --tokens 128 --views attribution,flow
    python bench/views.py --corpus corpus/minilm-agnews   # the corpus view's budgets on that run

The page script runs through Streamlit's AppTest (the same script the server runs, without the
browser or the websocket), one view at a time: a first text traces the model's shapes and fills
what does not depend on the text, then each timed run submits a text the page has not seen, so
nothing comes from the cache. Writes bench/results/views.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency import new_texts, text_of_length
from bench.server import machine
from models import registry
from models.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "views.json"
APP = str(Path(__file__).resolve().parent.parent / "app.py")
# Issue 20's budget for the attribution view at 64 tokens (bench/attribution.py times it at 512
# too, and where its time goes); the other views have none of their own.
BUDGETS_S = {"attribution": 1.0}


def time_view(model_id: str, view: str, texts: list[str]) -> dict:
    """The page's run for each of ``texts[2:]``, after the first two (same length) traced the shapes and filled what does not depend on the text."""
    from streamlit.testing.v1 import AppTest

    first, second, *timed = texts
    page = AppTest.from_file(APP, default_timeout=600)
    page.query_params.update(model=model_id, view=view, text=first)
    page.run()
    page.text_area[0].set_value(second).run()
    seconds = []
    for text in timed:
        start = time.perf_counter()
        page.text_area[0].set_value(text).run()
        seconds.append(time.perf_counter() - start)
        if page.exception:
            raise SystemExit(f"{view}: the page raised {page.exception[0].message}")
    median = statistics.median(seconds)
    budget = BUDGETS_S.get(view)
    return {
        "view": view,
        "median_s": round(median, 3),
        "max_s": round(max(seconds), 3),
        "runs": len(timed),
        "budget_s": budget,
        "within_budget": None if budget is None else median <= budget,
    }


CORPUS_RESULTS = Path(__file__).resolve().parent / "results" / "corpus_view.json"
# Issue 19's budgets: the corpus view opens on a 7,600-text run within 2 s, and the embedding of
# up to 20,000 points sends at most 5 MB.
CORPUS_OPEN_BUDGET_S = 2.0
CORPUS_EMBEDDING_BUDGET_MB = 5.0


def time_corpus(run_dir: Path, runs: int) -> dict:
    """The corpus view on the run in ``run_dir``: each part opened from another view with nothing read yet, and the embedding's bytes.

    Each timed open starts with the view's reader caches and the page's shared cache emptied (as
    on a fresh server, the model already loaded): the run's checksums, its tables and the
    projection are all read or computed inside the time. The bytes are the figure's JSON, as the
    page sends it, coloured each way.
    """
    import os

    from streamlit.testing.v1 import AppTest

    from views import compute, corpus
    from views.spec import Settings, Style

    record = json.loads((run_dir / "run.json").read_text())
    model_id = record["model"]
    os.environ[corpus.ROOT_ENV] = str(run_dir.resolve().parent)
    name = run_dir.resolve().name

    def empty_caches() -> None:
        for cached in (corpus.texts, corpus.tokens, corpus.summary, corpus.strongest, corpus.vectors, corpus.projected):
            cached.cache_clear()
        corpus._VERIFIED.clear()
        compute.shared_cache().__init__(compute.cache_bytes())

    page = AppTest.from_file(APP, default_timeout=600)
    page.query_params.update(model=model_id, view="heatmap")
    page.run()
    parts = {}
    for part in corpus.PARTS:
        seconds = []
        for _ in range(runs):
            page.session_state["view"] = "heatmap"
            page.run()
            empty_caches()
            page.session_state["run"] = name
            page.session_state["part"] = part
            page.session_state["view"] = "corpus"
            start = time.perf_counter()
            page.run()
            seconds.append(time.perf_counter() - start)
            if page.exception:
                raise SystemExit(f"corpus {part}: the page raised {page.exception[0].message}")
        parts[part] = {"median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3), "runs": runs}
    fields = {field.name: field.default for field in corpus.FIELDS} | {"run": name, "part": "embedding"}
    sizes = {}
    for colour in corpus.COLOURINGS:
        # Every head keeps the same sampled tokens (models.corpus.VectorSample): layer 1, head 1 stands for all.
        settings = Settings.of(fields | {"colour": colour}, layer=1, head=1)
        d = corpus.data(SimpleNamespace(model_id=model_id), settings)
        sizes[colour] = {"points": len(d.token), "mb": round(len(corpus.figure(d, settings, Style()).to_json().encode()) / 2**20, 3)}
    opened = parts[corpus.PARTS[0]]["median_s"]
    worst = max(size["mb"] for size in sizes.values())
    return {
        "run": str(run_dir),
        "model": model_id,
        "texts": record["n"],
        "open_s": parts,
        "open_budget_s": CORPUS_OPEN_BUDGET_S,
        "open_within_budget": max(part["median_s"] for part in parts.values()) <= CORPUS_OPEN_BUDGET_S,
        "first_part": corpus.PARTS[0],
        "first_part_open_s": opened,
        "embedding_mb": sizes,
        "embedding_budget_mb": CORPUS_EMBEDDING_BUDGET_MB,
        "embedding_within_budget": worst <= CORPUS_EMBEDDING_BUDGET_MB,
    }


def main(argv: list[str] | None = None) -> dict:
    from views import VIEWS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm-agnews")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--views", help="comma-separated view keys (default: every view but the lesson, which brings its own texts)")
    parser.add_argument("--out", type=Path, help=f"default {RESULTS}, or {CORPUS_RESULTS} with --corpus")
    parser.add_argument("--corpus", type=Path, help="time the corpus view on this run folder instead (make corpus: corpus/minilm-agnews)")
    args = parser.parse_args(argv)
    if args.corpus:
        report = {**time_corpus(args.corpus, args.runs), "timestamp": dt.datetime.now().isoformat(timespec="seconds"), **machine()}
        out = args.out or CORPUS_RESULTS
        atomic_write_json(out, report)
        print(json.dumps({k: report[k] for k in ("open_s", "open_within_budget", "embedding_mb", "embedding_within_budget")}, indent=1))
        print(f"wrote {out}")
        return report
    args.out = args.out or RESULTS
    keys = args.views.split(",") if args.views else [view.KEY for view in VIEWS if view.KEY != "lesson"]
    unknown = sorted(set(keys) - {view.KEY for view in VIEWS})
    if unknown:
        parser.error(f"unknown views: {', '.join(unknown)}")
    model = registry.load(args.model)
    base, tokens = text_of_length(model, args.tokens)
    texts = new_texts(model, base, tokens, args.runs + 2)
    rows = []
    for key in keys:
        rows.append(time_view(args.model, key, texts))
        row = rows[-1]
        verdict = "" if row["budget_s"] is None else f"  budget {row['budget_s']} s: {'ok' if row['within_budget'] else 'MISSED'}"
        print(f"{key:12s} median {row['median_s']:.2f} s  max {row['max_s']:.2f} s{verdict}", flush=True)
    report = {"model": args.model, "tokens": tokens, "results": rows, "timestamp": dt.datetime.now().isoformat(timespec="seconds"), **machine()}
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
