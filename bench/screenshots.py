"""README screenshots of the running app, taken in a real headless Chromium.

Run through ``make screenshots`` (a separate venv with Playwright's Python driver; the browser is
Debian's chromium, so nothing is downloaded). Each shot is a URL: the app keeps its state in the
query string, so a screenshot is reproducible from its address alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
PORT = 8599
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
SHOTS = {
    "keras-transformer.png": dict(model="keras-transformer", text="Federer beats Nadal to reach the Wimbledon final"),
    "minilm-agnews.png": dict(model="minilm-agnews", text="Transformers reshape chipmakers as Intel cuts prices", layer="3", head="4", words="1"),
    "bahdanau-dates.png": dict(model="bahdanau-dates", text="Tuesday, 3rd of March 2015", scheme="grayscale"),
    "side-by-side.png": dict(model="bahdanau-rnn", compare="keras-transformer", text="Oil prices climb to record high as investors worry about supply"),
}


def wait_for_server(timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://localhost:{PORT}/_stcore/health", timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise SystemExit("streamlit did not start; see its output above")


def main(out_dir: Path = REPO / "docs") -> None:
    python = REPO / ".venv" / "bin" / "python"
    server = subprocess.Popen(
        [
            str(python),
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(PORT),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--client.toolbarMode",
            "minimal",
        ],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        wait_for_server()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            for name, query in SHOTS.items():
                page.goto(f"http://localhost:{PORT}/?{urllib.parse.urlencode(query)}")
                # The first visit loads the model; wait until Streamlit says it has finished.
                page.wait_for_selector(".js-plotly-plot", timeout=120_000)
                page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out_dir / name))
                print(f"wrote {out_dir / name}")
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main(*(Path(arg) for arg in sys.argv[1:]))
