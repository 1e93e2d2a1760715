"""Screenshots of the running app, taken in a real headless Chromium: the README's pictures and the browser matrix.

Run through ``make screenshots`` (Playwright's Python package drives Debian's chromium, so nothing
is downloaded; the server is bench/server.py's, on a loopback port). Each shot is a URL: the app
keeps its state in the query string, so a screenshot is reproducible from its address alone.

    python bench/screenshots.py                           # README pictures into docs/, the matrix into docs/matrix/
    python bench/screenshots.py --only presenter.png      # one README picture, no matrix
    python bench/screenshots.py --no-readme               # the matrix only

The matrix is every state tests/test_browser_matrix.py checks (every view × normal and presenter
mode × every language × 1366×768 and 1920×1080, and one side-by-side page), one PNG per state,
for a person to look through (it is not committed). Each picture shows the whole page at that
window's width; a dashed red line marks where the window ends.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.parse
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.browser import FIRST_CHART, launch
from bench.server import REPO, StreamlitServer

PORT = 8599
HEADLINE = "Red Sox rally in ninth inning to stun the Yankees"
# One picture per view for the README's tour; each is reproducible from its URL alone.
SHOTS = {
    "keras-transformer.png": dict(model="keras-transformer", text="Federer beats Nadal to reach the Wimbledon final"),
    "minilm-agnews.png": dict(model="minilm-agnews", text="Transformers reshape chipmakers as Intel cuts prices", layer="3", head="4", words="1"),
    "bahdanau-dates.png": dict(model="bahdanau-dates", text="Tuesday, 3rd of March 2015", scheme="grayscale"),
    "side-by-side.png": dict(model="bahdanau-rnn", compare="keras-transformer", text="Oil prices climb to record high as investors worry about supply"),
    "view-overview.png": dict(model="minilm-agnews", text=HEADLINE, view="overview"),
    "view-headview.png": dict(model="minilm-agnews", text=HEADLINE, view="headview", layer="1", heads="3,8"),
    "view-stats.png": dict(model="minilm-agnews", text=HEADLINE, view="stats"),
    "view-flow.png": dict(model="minilm-agnews", text=HEADLINE, view="flow", words="1"),
    "view-norms.png": dict(model="minilm-agnews", text=HEADLINE, view="norms", layer="3", head="8"),
    "view-compare.png": dict(model="minilm-agnews", text="the bank of the river", text2="the bank raised rates", view="compare", layer="2", head="5"),
    "view-attribution.png": dict(model="minilm-agnews", text=HEADLINE, view="attribution"),
    "view-ablation.png": dict(model="minilm-agnews", text=HEADLINE, view="ablation", ablate="1:3,3:8"),
    "view-qkv.png": dict(model="minilm-agnews", text=HEADLINE, view="qkv", layer="1", head="3", query="7"),
    "view-layers.png": dict(model="minilm-agnews", text=HEADLINE, view="layers"),
    # What the class sees on a 1080p projector.
    "presenter.png": dict(model="minilm-agnews", text="Transformers reshape chipmakers as Intel cuts prices", layer="3", head="4", words="1", present="1"),
}
VIEWPORT = {"width": 1400, "height": 1800}
# Shots taken at another window size than VIEWPORT.
VIEWPORTS = {"presenter.png": {"width": 1920, "height": 1080}}
MATRIX_DIR = REPO / "docs" / "matrix"
# Where the window ends, drawn over the page for the picture only.
FOLD = """(height) => {
    const line = document.createElement('div');
    line.id = 'matrix-fold';
    line.style.cssText = `position: fixed; left: 0; right: 0; top: ${height}px; border-top: 2px dashed #e00000; z-index: 1000000; pointer-events: none;`;
    line.textContent = `${height} px`;
    line.style.color = '#e00000';
    line.style.font = '12px sans-serif';
    document.body.appendChild(line);
}"""
PAGE_LENGTH = """() => Math.max(window.innerHeight, ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]')].map(e => e.scrollHeight))"""


def readme(browser, server: StreamlitServer, out_dir: Path, names: list[str]) -> None:
    pages = {}
    for name in names:
        viewport = VIEWPORTS.get(name, VIEWPORT)
        key = (viewport["width"], viewport["height"])
        if key not in pages:
            pages[key] = browser.new_page(viewport=viewport)
        page = pages[key]
        page.goto(f"{server.url}?{urllib.parse.urlencode(SHOTS[name])}")
        # The first visit loads the model; wait until Streamlit says it has finished.
        page.wait_for_function(FIRST_CHART, timeout=180_000)
        page.wait_for_timeout(1500)  # Plotly animates its first draw
        page.screenshot(path=str(out_dir / name), full_page=True)
        print(f"wrote {out_dir / name}")
    for page in pages.values():
        page.close()


def whole_page(page: Page, path: Path, width: int, height: int) -> None:
    """The page at ``width`` from top to bottom, with the fold of a ``height``-px window marked."""
    from tests.helpers.browser import relaid_out

    length = page.evaluate(PAGE_LENGTH)
    page.set_viewport_size({"width": width, "height": max(height, length)})
    relaid_out(page)
    page.evaluate(FOLD, height)
    page.screenshot(path=str(path))
    page.evaluate("() => document.getElementById('matrix-fold').remove()")
    page.set_viewport_size({"width": width, "height": height})
    relaid_out(page)


def matrix(browser, server: StreamlitServer, out_dir: Path) -> None:
    """Every state of the browser matrix at every size, one PNG each (tests/helpers/browser.py lists them)."""
    from tests.helpers.browser import MATRIX_SIZES, Session, matrix_model, matrix_states, open_matrix_state, relaid_out
    from views import BY_KEY, compute

    out_dir.mkdir(parents=True, exist_ok=True)
    session = Session(server, browser)
    page = session.new_page()
    start = time.monotonic()
    states = matrix_states()
    for state in states:
        model_id = "" if state.side_by_side or state.view == "lesson" else matrix_model(BY_KEY[state.view], compute.load_model)
        open_matrix_state(session, page, state, model_id)
        for index, (width, height) in enumerate(MATRIX_SIZES):
            if index:
                page.set_viewport_size({"width": width, "height": height})
                relaid_out(page)
            path = out_dir / f"{state.name}-{width}x{height}.png"
            whole_page(page, path, width, height)
            print(f"wrote {path}")
    page.close()
    print(f"{len(states) * len(MATRIX_SIZES)} matrix pictures in {time.monotonic() - start:.0f} s -> {out_dir}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder for the README pictures")
    parser.add_argument("--matrix-dir", type=Path, default=MATRIX_DIR, help="folder for the browser matrix")
    parser.add_argument("--only", nargs="+", choices=sorted(SHOTS), help="these README pictures only, and no matrix")
    parser.add_argument("--no-readme", action="store_true", help="the matrix only")
    parser.add_argument("--no-matrix", action="store_true", help="the README pictures only")
    args = parser.parse_args(argv)
    with StreamlitServer(PORT, extra_args=("--client.toolbarMode", "minimal")) as server, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            if not args.no_readme:
                readme(browser, server, args.out, args.only or list(SHOTS))
            if not (args.no_matrix or args.only):
                matrix(browser, server, args.matrix_dir)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
