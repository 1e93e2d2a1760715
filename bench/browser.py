"""What one user waits for, measured in a real headless Chromium (Debian's, driven by Playwright).

Two figures, both against the real server (bench/server.py):

- cold start: from spawning ``streamlit run`` to the first chart drawn in the browser, with a
  fresh server per model (also from opening the page, once the server answered);
- submit to updated chart: type a new text, press Ctrl+Enter (as a user submits a text area), and
  stop the clock when the heatmap's tick labels show the new text's distinctive token (for the
  date model: when the page's output changed) and Streamlit says the script is no longer running.
  ``run_ended`` says when the page heard that the server's run was over: the rest is drawing.

    python bench/browser.py                      # everything, writes bench/results/browser.json
    python bench/browser.py --cold-models --repeats 5 --models keras-transformer   # no cold start
    python bench/browser.py --models keras-transformer --cold-repeats 3 --repeats 1 --out /tmp/cold.json
    python bench/browser.py --app-rev 9518db6    # a committed revision instead of the working tree

The submitted texts are headlines of about 12 words (well under MiniLM's 64-token bucket), each
naming a different city, which every bundled vocabulary keeps as one token.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_test import CITIES, HEADLINES, date_text, percentile
from bench.server import RssSampler, ServerError, StreamlitServer, app_tree, load_average, machine, wait_until_idle
from models.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "browser.json"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# No background networking: the machine's network is closed and Chromium would keep retrying.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SUBMIT_MODELS = ("keras-transformer", "bahdanau-rnn", "bahdanau-dates", "minilm-agnews")
COLD_MODELS = ("keras-transformer", "minilm-agnews")
VIEWPORT = {"width": 1400, "height": 1000}

# Streamlit marks its root element with the script's state for its own end-to-end tests; the
# status widget ("Running…") is what the user sees. Both must say the run is over.
IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.dataset.testScriptState === 'notRunning' && !document.querySelector('[data-testid="stStatusWidget"]');
}"""
EXCEPTIONS = "() => [...document.querySelectorAll('[data-testid=\"stException\"]')].map(e => e.innerText.split('\\n')[0])"
TICK_LABELS = "[...document.querySelectorAll('.js-plotly-plot .xtick text, .js-plotly-plot .ytick text')].map(t => t.textContent.trim())"
TOKEN_SHOWN = f"(token) => ({IDLE})() && {TICK_LABELS}.includes(token)"
FIRST_CHART = f"() => ({IDLE})() && !!document.querySelector('.js-plotly-plot')"
# The date model's answer is printed as code; without code on the page, its chart's labels stand in.
SIGNATURE = f"() => [...document.querySelectorAll('[data-testid=\"stCode\"]')].map(e => e.textContent).join('|') || {TICK_LABELS}.join(' ')"
CHANGED = f"(before) => ({IDLE})() && ({SIGNATURE})() !== before"


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def page_url(server: StreamlitServer, **query: str) -> str:
    return f"{server.url}?{urllib.parse.urlencode(query)}"


def submissions(model_id: str, count: int) -> list[tuple[str, str]]:
    """``count + 1`` distinct ``(text, token to wait for)`` pairs: one to open the page, the rest to submit.

    Headlines name a different city each; the city is one token in every bundled vocabulary.
    Dates differ in year, so the model's answer changes every time (the token is unused there).
    """
    if model_id == "bahdanau-dates":
        return [(date_text(dt.date(1961 + index, 1 + index % 12, 2 + index % 27), index), "") for index in range(count + 1)]
    return [(HEADLINES[index % len(HEADLINES)][0].format(place=city.capitalize()), city) for index, city in enumerate(CITIES[: count + 1])]


# When the last page run ended, in the page's clock: Streamlit flips the root's
# data-test-script-state from "running" to "notRunning" when the server's "script finished"
# message arrives. Installed once per page; RUN_ENDED_SINCE reads it relative to a press.
WATCH_RUN_END = """() => {
    if (window.__runEnded !== undefined) return;
    window.__runEnded = null;
    const app = document.querySelector('[data-testid="stApp"]');
    new MutationObserver(records => {
        for (const r of records) if (r.oldValue === 'running') window.__runEnded = performance.now();
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state'], attributeOldValue: true});
}"""
RUN_ENDED_SINCE = "(pressed) => window.__runEnded !== null && window.__runEnded >= pressed ? window.__runEnded - pressed : null"


def submit_and_wait(page: Page, model_id: str, text: str, token: str, timeout_ms: float) -> tuple[float, float | None]:
    """Seconds from Ctrl+Enter in the text area to the updated chart with the run finished, and to
    the server's end of the run as the page learnt it (None if not seen): the rest is the browser
    drawing."""
    box = page.locator('textarea[aria-label="Text"]')
    box.fill(text)
    before = page.evaluate(SIGNATURE)
    page.evaluate(WATCH_RUN_END)
    pressed = page.evaluate("performance.now()")
    start = time.perf_counter()
    box.press("Control+Enter")
    if model_id == "bahdanau-dates":
        page.wait_for_function(CHANGED, arg=before, timeout=timeout_ms, polling="raf")
    else:
        page.wait_for_function(TOKEN_SHOWN, arg=token, timeout=timeout_ms, polling="raf")
    seconds = time.perf_counter() - start
    run_ended_ms = page.evaluate(RUN_ENDED_SINCE, pressed)
    return seconds, None if run_ended_ms is None else run_ended_ms / 1000


def milliseconds_summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"n": 0}
    return {
        "n": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000),
        "p95_ms": round(percentile(seconds, 0.95) * 1000),
        "max_ms": round(max(seconds) * 1000),
        "mean_ms": round(statistics.fmean(seconds) * 1000),
        "samples_ms": [round(value * 1000) for value in seconds],
    }


def measure_submits(browser: Browser, server: StreamlitServer, model_id: str, repeats: int, warmups: int, timeout_ms: float, settle_limit: float) -> dict:
    """One user on one model: open the page, let the server's background work finish, submit
    ``warmups`` texts unmeasured, then ``repeats`` measured."""
    plan = submissions(model_id, warmups + repeats)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    failures: list[str] = []
    tracebacks: list[str] = []
    timings: list[float] = []
    run_ends: list[float] = []
    try:
        opened = time.perf_counter()
        page.goto(page_url(server, model=model_id, text=plan[0][0]), timeout=timeout_ms)
        page.wait_for_function(FIRST_CHART, timeout=timeout_ms, polling="raf")
        open_seconds = time.perf_counter() - opened
        settled = wait_until_idle(server.pid, settle_limit)
        for index, (text, token) in enumerate(plan[1:]):
            try:
                seconds, run_ended = submit_and_wait(page, model_id, text, token, timeout_ms)
            except PlaywrightTimeout:
                failures.append(f"no updated chart within {timeout_ms / 1000:.0f} s for {text!r}")
                page.wait_for_function(IDLE, timeout=timeout_ms)
                continue
            if index >= warmups:
                timings.append(seconds)
                if run_ended is not None:
                    run_ends.append(run_ended)
            tracebacks += page.evaluate(EXCEPTIONS)
            print(f"[browser] {model_id}: {'warm-up ' if index < warmups else ''}submit {seconds * 1000:.0f} ms", file=sys.stderr, flush=True)
    finally:
        context.close()
    return {
        "open_seconds": round(open_seconds, 2),
        "settle_seconds": settled,
        "warmups": warmups,
        **milliseconds_summary(timings),
        # Ctrl+Enter -> the server's run over, as the page heard of it; the rest of each figure above is the browser drawing.
        "run_ended": milliseconds_summary(run_ends),
        "failures": failures,
        "tracebacks": tracebacks,
    }


def cold_start(browser: Browser, port: int, app_dir: Path, model_id: str, timeout_ms: float) -> dict:
    """A fresh server and a fresh tab: seconds from spawning the server to the first chart drawn."""
    server = StreamlitServer(port, app_dir=app_dir)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        server.start()
        page = context.new_page()
        opened = time.monotonic()
        page.goto(page_url(server, model=model_id), timeout=timeout_ms)
        page.wait_for_function(FIRST_CHART, timeout=timeout_ms, polling="raf")
        first_chart = time.monotonic() - server.launched_at
        from_page_opened = time.monotonic() - opened
    finally:
        context.close()
        server.stop()
    print(
        f"[browser] cold start {model_id}: server healthy after {server.healthy_after:.1f} s, first chart after {first_chart:.1f} s "
        f"({from_page_opened:.1f} s after the page was opened)",
        file=sys.stderr,
        flush=True,
    )
    return {"server_healthy_s": round(server.healthy_after, 2), "first_chart_s": round(first_chart, 2), "page_opened_to_chart_s": round(from_page_opened, 2)}


def cold_starts(browser: Browser, port: int, app_dir: Path, model_id: str, timeout_ms: float, repeats: int) -> dict:
    """``cold_start`` ``repeats`` times, each with a fresh server: the medians, and every run."""
    runs = [cold_start(browser, port, app_dir, model_id, timeout_ms) for _ in range(repeats)]
    medians = {name: round(statistics.median(run[name] for run in runs), 2) for name in runs[0]}
    return {**medians, "runs": runs} if repeats > 1 else medians


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(SUBMIT_MODELS), choices=SUBMIT_MODELS, help="models for submit → chart")
    parser.add_argument("--cold-models", nargs="*", default=list(COLD_MODELS), choices=SUBMIT_MODELS, help="models for cold start (none: skip)")
    parser.add_argument("--cold-repeats", type=int, default=1, help="fresh servers per model for cold start (the figures are their medians)")
    parser.add_argument("--repeats", type=int, default=15, help="measured submits per model")
    parser.add_argument("--warmups", type=int, default=2, help="unmeasured submits per model first")
    parser.add_argument("--port", type=int, default=8613)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds any one wait may take")
    parser.add_argument("--settle", type=float, default=300.0, help="seconds to wait at most, after opening a page, for the server to go idle")
    parser.add_argument("--app-rev", help="serve this git revision (exported to a temporary folder) instead of the working tree")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    timeout_ms = args.timeout * 1000
    load_before = load_average()

    with app_tree(args.app_rev) as (app_dir, app), sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            cold = {model_id: cold_starts(browser, args.port, app_dir, model_id, timeout_ms, args.cold_repeats) for model_id in args.cold_models}
            # All models in one server, as in a class: its peak memory is the "all models loaded" figure.
            server = StreamlitServer(args.port, app_dir=app_dir)
            server.start()
            sampler = RssSampler(server.pid).start()
            try:
                submit = {model_id: measure_submits(browser, server, model_id, args.repeats, args.warmups, timeout_ms, args.settle) for model_id in args.models}
            finally:
                sampler.stop()
                server.stop()
            chromium = browser.version
        except ServerError as exc:
            raise SystemExit(str(exc)) from None
        finally:
            browser.close()

    result = {
        "app": app,
        "submit_to_chart": submit,
        "cold_start": cold,
        "peak_rss_mb_models_loaded": {"models": args.models, "mb": sampler.peak_mb},
        "chromium": chromium,
        "timestamp": dt.datetime.now().isoformat(timespec="seconds"),
        **machine(load_before),
    }
    atomic_write_json(args.out, result)
    for model_id, figures in submit.items():
        print(
            f"{model_id}: submit → chart p50 {figures.get('p50_ms')} ms, p95 {figures.get('p95_ms')} ms, "
            f"server's run over after p50 {figures['run_ended'].get('p50_ms')} ms "
            f"({figures['n']} runs, {len(figures['failures'])} failed, {len(figures['tracebacks'])} tracebacks)"
        )
    for model_id, figures in cold.items():
        print(f"{model_id}: cold start {figures['first_chart_s']} s (server healthy after {figures['server_healthy_s']} s)")
    print(f"peak server memory with {', '.join(args.models)} loaded: {sampler.peak_mb} MB -> {args.out}")
    return result


if __name__ == "__main__":
    main()
