"""The first attribution, ablation or value-aware view on a new headline, in Chromium, on a fresh server.

Each (model, view) gets a server of its own, so nothing a previous view traced can help: a page
opens the model on the heatmap with one headline (the model loads; the server's background
warm-up starts), the server is left until it is idle (the warm-up done; ``--no-settle`` skips
this and measures right after the load instead), a new 14-word headline is submitted on the
heatmap, and then the view is chosen. The clock runs from the click on the view to the end of the
page run it starts, with a chart drawn: what a user waits for the first time they open the view.

    python bench/first_use.py                                 # writes bench/results/first_use.json
    python bench/first_use.py --models minilm-agnews --views attribution --repeats 3
    python bench/first_use.py --no-settle --out /tmp/right_after_load.json
    python bench/first_use.py --app-rev 5787afc --out /tmp/before.json   # a committed revision
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.browser import CHANGED, EXCEPTIONS, FIRST_CHART, SIGNATURE, VIEWPORT, launch, page_url
from bench.server import ServerError, StreamlitServer, app_tree, load_average, machine, wait_until_idle
from models.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "first_use.json"
# The targets, in seconds, for the first use of each view on a server whose models are loaded.
TARGETS_S = {"attribution": 3.0, "ablation": 1.5, "norms": 1.5}
# The view buttons' labels (the page's English titles).
TITLES = {"attribution": "Attributions", "ablation": "Switch heads off", "norms": "Value-aware"}
PAIRS = (
    ("minilm-agnews", "attribution"),
    ("minilm-agnews", "ablation"),
    ("minilm-agnews", "norms"),
    ("keras-transformer", "attribution"),
    ("keras-transformer", "ablation"),
)
# 14 words each; the first opens the page, the second is the new headline the view explains.
OPENING = "Team from Lisbon wins the championship after a dramatic overtime finish on Sunday night"
HEADLINE = "Stocks rally in Oslo as investors cheer strong quarterly earnings from big technology firms"

# Counts page runs that end after it is installed: Streamlit flips the root's data-test-script-state
# to "running" and back; each record whose old value was "running" is a run that finished.
WATCH_RUNS = """() => {
    window.__runsDone = 0;
    const app = document.querySelector('[data-testid="stApp"]');
    new MutationObserver(records => {
        for (const r of records) if (r.oldValue === 'running') window.__runsDone += 1;
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state'], attributeOldValue: true});
}"""
RUN_DONE = f"() => window.__runsDone > 0 && ({FIRST_CHART})()"


def submit(page: Page, text: str, timeout_ms: float) -> float:
    """Seconds from Ctrl+Enter with ``text`` to the page's output changed and the run over."""
    box = page.locator('textarea[aria-label="Text"]')
    box.fill(text)
    before = page.evaluate(SIGNATURE)
    start = time.perf_counter()
    box.press("Control+Enter")
    page.wait_for_function(CHANGED, arg=before, timeout=timeout_ms, polling="raf")
    return time.perf_counter() - start


def open_view(page: Page, view: str, timeout_ms: float) -> float:
    """Seconds from choosing ``view`` to the end of the page run it started, a chart drawn.

    The page offers views as buttons (a segmented control) or as a select box labelled "View";
    the clock starts at the click that chooses the view.
    """
    buttons = page.locator('[data-testid="stButtonGroup"] button').filter(has_text=TITLES[view])
    if buttons.count():
        choose = buttons.first
    else:
        page.locator('input[aria-label="View"]').click()
        choose = page.get_by_role("option", name=TITLES[view], exact=True)
        choose.wait_for(timeout=timeout_ms)
    page.evaluate(WATCH_RUNS)
    start = time.perf_counter()
    choose.click()
    page.wait_for_function(RUN_DONE, timeout=timeout_ms, polling="raf")
    return time.perf_counter() - start


def first_use(browser, port: int, app_dir: Path, model_id: str, view: str, settle: float | None, timeout_ms: float) -> dict:
    """One fresh server: load the model, let it settle (unless ``settle`` is None), submit a headline, open the view."""
    server = StreamlitServer(port, app_dir=app_dir)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        server.start()
        page = context.new_page()
        opened = time.perf_counter()
        page.goto(page_url(server, model=model_id, text=OPENING), timeout=timeout_ms)
        page.wait_for_function(FIRST_CHART, timeout=timeout_ms, polling="raf")
        loaded = time.perf_counter() - opened
        settled = None if settle is None else wait_until_idle(server.pid, settle)
        submitted = submit(page, HEADLINE, timeout_ms)
        seconds = open_view(page, view, timeout_ms)
        tracebacks = page.evaluate(EXCEPTIONS) + server.log_tracebacks()
    finally:
        context.close()
        server.stop()
    print(
        f"[first-use] {model_id} {view}: {seconds:.2f} s (page loaded in {loaded:.1f} s, "
        f"server idle {'-' if settled is None else f'{settled:.0f} s'} later, submit {submitted * 1000:.0f} ms)",
        file=sys.stderr,
        flush=True,
    )
    return {
        "seconds": round(seconds, 3),
        "page_loaded_s": round(loaded, 2),
        "settle_s": settled,
        "submit_ms": round(submitted * 1000),
        "tracebacks": tracebacks,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="only these models (default: the pairs in PAIRS)")
    parser.add_argument("--views", nargs="+", choices=sorted(TITLES), help="only these views")
    parser.add_argument("--repeats", type=int, default=1, help="fresh servers per (model, view); the figure is their median")
    parser.add_argument("--no-settle", action="store_true", help="open the view right after the model loaded, while the warm-up runs")
    parser.add_argument("--settle", type=float, default=600.0, help="seconds to wait at most for the server to go idle after the first page")
    parser.add_argument("--port", type=int, default=8614)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds any one wait may take")
    parser.add_argument("--app-rev", help="serve this git revision (exported to a temporary folder) instead of the working tree")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    paired = dict.fromkeys(model_id for model_id, _ in PAIRS)
    chosen = args.models or list(paired)
    pairs = [(m, v) for m, v in PAIRS if m in chosen and (not args.views or v in args.views)]
    pairs += [(m, v) for m in chosen if m not in paired for v in args.views or TITLES]
    load_before = load_average()
    results = []
    with app_tree(args.app_rev) as (app_dir, app), sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for model_id, view in pairs:
                runs = [
                    first_use(browser, args.port, app_dir, model_id, view, None if args.no_settle else args.settle, args.timeout * 1000)
                    for _ in range(args.repeats)
                ]
                median = statistics.median(run["seconds"] for run in runs)
                target = TARGETS_S[view]
                results.append(
                    {"model": model_id, "view": view, "median_s": round(median, 3), "target_s": target, "within_target": median <= target, "runs": runs}
                )
        except ServerError as exc:
            raise SystemExit(str(exc)) from None
        finally:
            browser.close()
    report = {
        "app": app,
        "settled": not args.no_settle,
        "headline": HEADLINE,
        "results": results,
        "timestamp": dt.datetime.now().isoformat(timespec="seconds"),
        **machine(load_before),
    }
    atomic_write_json(args.out, report)
    for row in results:
        print(
            f"{row['model']:18s} {row['view']:12s} first use {row['median_s']:.2f} s (target {row['target_s']} s: {'ok' if row['within_target'] else 'MISSED'})"
        )
    print(f"load average {report['load_average_1min']} -> {args.out}")
    return report


if __name__ == "__main__":
    main()
