"""README screenshots of the running app, taken in a real headless Chromium.

Run through ``make screenshots`` (Playwright's Python package drives Debian's chromium, so nothing
is downloaded; the server is bench/server.py's, on a loopback port). Each shot is a URL: the app keeps its state in the
query string, so a screenshot is reproducible from its address alone.
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

from playwright.sync_api import sync_playwright

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
}


def main(out_dir: Path = REPO / "docs") -> None:
    with StreamlitServer(PORT, extra_args=("--client.toolbarMode", "minimal")) as server, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        for name, query in SHOTS.items():
            page.goto(f"{server.url}?{urllib.parse.urlencode(query)}")
            # The first visit loads the model; wait until Streamlit says it has finished.
            page.wait_for_function(FIRST_CHART, timeout=180_000)
            page.wait_for_timeout(1500)  # Plotly animates its first draw
            page.screenshot(path=str(out_dir / name), full_page=True)
            print(f"wrote {out_dir / name}")
        browser.close()


if __name__ == "__main__":
    main(*(Path(arg) for arg in sys.argv[1:]))
