"""The real server in a real browser: ``streamlit run app.py`` on loopback, driven by Debian's chromium.

Browsers cannot be downloaded here, so Playwright drives the system's chromium. Every wait is
bounded; a page that never settles fails its test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
import urllib.parse
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Dialog, Locator, Page, WebSocket, sync_playwright

from bench.server import HOST, REPO, StreamlitServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update"]
VIEWPORT = {"width": 1400, "height": 1000}
# Generous: a first MiniLM page on a busy 2-core machine waits for the model to load and trace; a hang still fails.
TIMEOUT_MS = 300_000
TEXT_AREA = 'textarea[aria-label="Text"]'

# Streamlit marks its root element with the script's state for its own end-to-end tests and shows
# a status widget while a run is going; lazily loaded elements (Plotly) show a skeleton until
# their code arrives. The page has settled when all three say so and every chart has drawn.
SETTLED = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.dataset.testScriptState !== 'notRunning') return false;
    if (document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]')) return false;
    return [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'));
}"""
# Each Plotly chart's title and tick labels as the browser shows them (SVG text nodes).
CHARTS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].map(c => ({
    title: (c.querySelector('.gtitle') || {}).textContent || '',
    x: [...c.querySelectorAll('.xtick text')].map(t => t.textContent),
    y: [...c.querySelectorAll('.ytick text')].map(t => t.textContent),
}))"""
TRACEBACKS = """() => [...document.querySelectorAll('[data-testid="stException"]')].map(e => e.innerText.split('\\n')[0])"""
ALERTS = """(kind) => [...document.querySelectorAll(`[data-testid="stAlertContent${kind}"]`)].map(e => e.innerText)"""
# What the view drew: charts, images and tables in the main area (the sidebar holds none).
DRAWN = (
    """() => document.querySelectorAll(['stPlotlyChart', 'stImage', 'stDataFrame'].map(t => `[data-testid="stMain"] [data-testid="${t}"]`).join(', ')).length"""
)

# What an injected payload would leave in the DOM: an event-handler attribute or a javascript:
# address that a browser would run, a script element carrying the payload, or an element that
# only exists because markup in the user's text was parsed (<img src=x>, <svg onload>, <b>b</b>,
# **bold**, a Markdown link, KaTeX maths). Attributes that merely hold the text as data (a title,
# Plotly's data-unformatted) run nothing and are not counted.
INJECTED = r"""() => {
    const found = [];
    const describe = (e) => e.outerHTML.slice(0, 160);
    for (const e of document.querySelectorAll('*')) {
        for (const a of e.attributes) {
            const name = a.name.toLowerCase(), value = a.value.replace(/\s/g, '').toLowerCase();
            if (name.startsWith('on') && value.includes('alert(')) found.push(describe(e));
            if (['src', 'href', 'xlink:href', 'action', 'formaction'].includes(name) && value.startsWith('javascript:')) found.push(describe(e));
        }
    }
    for (const s of document.querySelectorAll('script')) if (s.textContent.includes('alert(')) found.push(describe(s));
    for (const e of document.querySelectorAll('img[src="x"], svg[onload], iframe[src^="javascript"]')) found.push(describe(e));
    for (const e of document.querySelectorAll('b, strong')) if (['b', 'bold'].includes(e.textContent.trim())) found.push(describe(e));
    for (const e of document.querySelectorAll('a')) if (e.textContent.trim() === 'x') found.push(describe(e));
    for (const e of document.querySelectorAll('.katex, mjx-container')) found.push(describe(e));
    return found;
}"""


# Script runs each page has seen start ("new_session") and finish ("script_finished"), read from
# the messages Streamlit sends over its websocket (every run is counted, however short), and the
# messages the page sent ("sent": a widget change or a click that reached the server).
RUNS: weakref.WeakKeyDictionary[Page, Counter] = weakref.WeakKeyDictionary()
RUN_MESSAGES = ("new_session", "script_finished")
# How long the page may take to send an action to the server before it is done again (see act).
RUN_START_S = 5.0


def _count_run_messages(counts: Counter, payload: bytes | str) -> None:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    if isinstance(payload, str):
        return
    message = ForwardMsg()
    message.ParseFromString(payload)
    kind = message.WhichOneof("type")
    if kind in RUN_MESSAGES:
        counts[kind] += 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class Session:
    """A running server, a browser, and every dialog any page of the browser tried to open."""

    server: StreamlitServer
    browser: Browser
    dialogs: list[str] = field(default_factory=list)

    def new_page(self) -> Page:
        page = self.browser.new_page(viewport=VIEWPORT, accept_downloads=True)
        page.set_default_timeout(TIMEOUT_MS)
        page.on("dialog", self._record)
        counts = RUNS[page] = Counter()
        page.on("websocket", lambda socket: self._watch(socket, counts))
        return page

    @staticmethod
    def _watch(socket: WebSocket, counts: Counter) -> None:
        socket.on("framereceived", lambda payload: _count_run_messages(counts, payload))
        socket.on("framesent", lambda _payload: counts.update(["sent"]))

    def _record(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def url(self, **query: str) -> str:
        return f"{self.server.url}?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}"

    def fetch(self, page: Page, src: str) -> bytes:
        """The bytes behind an ``src`` of the page (Streamlit serves images from /media/)."""
        return page.request.get(urllib.parse.urljoin(self.server.url, src)).body()


@contextlib.contextmanager
def served(app_dir: Path = REPO) -> Iterator[Session]:
    """``streamlit run app.py`` (offline, on a free loopback port) and a headless chromium."""
    server = StreamlitServer(free_port(), app_dir=app_dir)
    server.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield Session(server, browser)
            finally:
                browser.close()
    finally:
        server.stop()


def _wait(page: Page, done: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``done`` while Playwright delivers the page's events; False if ``timeout_s`` passed first."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(50)
    return True


def settle(page: Page, finished_before: int) -> None:
    """Wait until a run finished after ``finished_before`` runs, and the page has drawn it."""
    counts = RUNS[page]
    if not _wait(page, lambda: counts["script_finished"] > finished_before, TIMEOUT_MS / 1000):
        raise AssertionError(f"no script run finished within {TIMEOUT_MS / 1000:.0f} s")
    page.wait_for_function(SETTLED, polling=100)


def quiet(page: Page, grace_ms: int = 300) -> None:
    """Wait until no run is going, nor starts within ``grace_ms`` (a download's run starts a moment later)."""
    counts = RUNS[page]
    while True:
        page.wait_for_function(SETTLED, polling=100)
        started = counts["new_session"]
        page.wait_for_timeout(grace_ms)
        if counts["new_session"] == started and page.evaluate(SETTLED):
            return


def act(page: Page, action: Callable[[], object]) -> None:
    """Do ``action`` (a click, a key press) and wait for the script run it causes to be drawn.

    A click can land while the page redraws and be lost: one that sent the server nothing within
    RUN_START_S is done again (the server never saw it, so this is safe for any button).
    """
    quiet(page)
    counts = RUNS[page]
    sent, finished = counts["sent"], counts["script_finished"]
    for _ in range(3):
        action()
        if _wait(page, lambda: counts["sent"] > sent, RUN_START_S):
            settle(page, finished)
            return
    raise AssertionError("the action sent the server nothing, three times")


def open_page(session: Session, page: Page, **query: str) -> None:
    finished = RUNS[page]["script_finished"]
    page.goto(session.url(**query))
    settle(page, finished)


def submit_text(page: Page, text: str) -> None:
    """Type ``text`` into the text area and submit it as a user does (Ctrl+Enter)."""
    box = page.locator(TEXT_AREA)
    box.fill(text)
    act(page, lambda: box.press("Control+Enter"))


def download(page: Page, button: Locator) -> bytes:
    """Click a download button; the file's bytes, once the run the click may start is drawn."""
    with page.expect_download() as info:
        button.click()
    data = Path(info.value.path()).read_bytes()
    quiet(page)
    return data


def decode_qr(image: bytes) -> list[str]:
    """The texts of the QR codes in an image (zxing-cpp, as a phone's camera app reads them)."""
    import zxingcpp
    from PIL import Image

    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))]


# The browser matrix (tests/test_browser_matrix.py checks every pair of it, `make screenshots`
# pictures all of it): every view × normal and presenter mode × every language, each page seen at
# two window sizes, a laptop's and a projector's. Generated from the lists, so a new view or
# language is covered as soon as it is listed.
MATRIX_SIZES = ((1366, 768), (1920, 1080))
MATRIX_MODES = {"normal": {}, "presenter": {"present": "1"}}
# Each view is shown on the first of these models it applies to.
MATRIX_MODELS = ("minilm-agnews", "keras-transformer", "bahdanau-rnn", "bahdanau-dates")
MATRIX_HEADLINE = "Red Sox rally in ninth inning to stun the Yankees"
# Side by side, one state per size: the heatmap of two models.
MATRIX_SIDE_BY_SIDE = {"model": "minilm-agnews", "compare": "keras-transformer", "view": "heatmap"}


@dataclass(frozen=True)
class MatrixState:
    """One page of the matrix: a view in a mode and a language (seen at every size of MATRIX_SIZES)."""

    view: str
    mode: str
    lang: str
    side_by_side: bool = False

    @property
    def name(self) -> str:
        return f"{'side-by-side-' if self.side_by_side else ''}{self.view}-{self.mode}-{self.lang}"


# The mode and language with the most text in the largest type: every view is seen in them.
MATRIX_FULLEST = {"mode": "presenter", "lang": "de"}


def matrix_states(pairwise: bool = False) -> list[MatrixState]:
    """Every view × mode × language, or with ``pairwise`` every pair of those values (tests/helpers/pairwise.py).

    The pairwise set starts from every view in MATRIX_FULLEST, so each view is seen with its
    longest labels at presenter size, and adds the rows that meet every other pair: each view in
    the other mode and language, each mode in each language. The tests check that set; ``make
    screenshots`` pictures every state for a person to look through.
    """
    from tests.helpers.pairwise import all_pairs
    from views import VIEWS
    from views.i18n import LANGUAGES

    if pairwise:
        dimensions = {"view": [view.KEY for view in VIEWS], "mode": list(MATRIX_MODES), "lang": list(LANGUAGES)}
        rows = all_pairs(dimensions, seed=[{"view": key, **MATRIX_FULLEST} for key in dimensions["view"]])
        states = [MatrixState(str(row["view"]), str(row["mode"]), str(row["lang"])) for row in rows]
    else:
        states = [MatrixState(view.KEY, mode, lang) for view in VIEWS for mode in MATRIX_MODES for lang in LANGUAGES]
    return [*states, MatrixState(MATRIX_SIDE_BY_SIDE["view"], "normal", "en", side_by_side=True)]


def matrix_text(model_id: str) -> str:
    """The headline for a news classifier; the date model reads dates, so it gets its first example."""
    from views import state

    return MATRIX_HEADLINE if state.model_kind(model_id) == "classifier" else state.EXAMPLES["seq2seq"][0]


def matrix_model(view, load: Callable[[str], object]) -> str:
    """The first of MATRIX_MODELS that ``view`` applies to (``load(model_id)`` gives the loaded model)."""
    for model_id in MATRIX_MODELS:
        model = load(model_id)
        if view.applies(model.predict(matrix_text(model_id)), model)[0]:
            return model_id
    raise AssertionError(f"view {view.KEY!r} applies to none of {MATRIX_MODELS}")


def matrix_query(state: MatrixState, model_id: str) -> dict[str, str]:
    """The page's address for ``state``; the lesson opens on step 1, which sets its own model and text."""
    query = {"view": state.view, "lang": state.lang, **MATRIX_MODES[state.mode]}
    if state.side_by_side:
        return {**query, **MATRIX_SIDE_BY_SIDE, "text": matrix_text(MATRIX_SIDE_BY_SIDE["model"])}
    if state.view == "lesson":
        return {**query, "step": "1"}
    return {**query, "model": model_id, "text": matrix_text(model_id)}


def open_matrix_state(session: Session, page: Page, state: MatrixState, model_id: str) -> None:
    """Open ``state`` at the first size; the lesson's step is revealed, so that it shows its answer and figure."""
    width, height = MATRIX_SIZES[0]
    page.set_viewport_size({"width": width, "height": height})
    open_page(session, page, **matrix_query(state, model_id))
    if state.view == "lesson":
        act(page, page.locator(".st-key-lesson-reveal button").click)
    relaid_out(page)


# Where things are on the screen, in CSS pixels from the top of the page (the main area scrolls
# inside the page, so its scroll offset is added back), and what each Plotly chart drew: its
# container's box, every SVG layer's box, and per axis the title and categories it was given and
# the tick labels the browser shows (``<id>tick`` groups inside the axis' own subplot), and every
# text it drew.
LAYOUT = r"""() => {
    const scrolled = (element) => { let offset = window.scrollY; for (let e = element.parentElement; e; e = e.parentElement) offset += e.scrollTop; return offset; };
    const box = (element) => { const r = element.getBoundingClientRect(), down = scrolled(element);
        return {left: r.left, top: r.top + down, right: r.right, bottom: r.bottom + down, width: r.width, height: r.height}; };
    const keyOf = (element) => { const keyed = element.closest('[class*="st-key-"]');
        return keyed ? [...keyed.classList].find(c => c.startsWith('st-key-')).slice('st-key-'.length) : ''; };
    const charts = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPlotlyChart"]')].map(chart => {
        const plot = chart.querySelector('.js-plotly-plot'), layout = plot && plot._fullLayout;
        const axes = !layout ? [] : Object.keys(layout).filter(name => /^[xy]axis\d*$/.test(name)).map(name => {
            const axis = layout[name], letter = axis._id[0];
            const ticks = plot.querySelectorAll(`.subplot.${axis._mainSubplot} .${letter}axislayer-above .${axis._id}tick text`);
            return {id: axis._id, type: axis.type, title: (axis.title && axis.title.text) || '', categories: [...(axis._categories || [])],
                    shown: axis.visible !== false && axis.showticklabels !== false, ticks: [...ticks].map(t => t.textContent)};
        });
        // Every text drawn (titles, tick labels, colour bars, annotations), and whether it is a title.
        const texts = [...chart.querySelectorAll('.main-svg text')].filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0).map(t => ({
            text: t.textContent, ...box(t), rotated: (t.getAttribute('transform') || '').includes('rotate'),
            title: t.matches('text[class$="title"], text.annotation-text')}));
        return {key: keyOf(chart), box: box(chart), svgs: [...chart.querySelectorAll('.main-svg')].map(box), axes, texts};
    });
    const texts = [...document.querySelectorAll('[data-testid="stMain"] textarea')].map(box);
    const headings = [...document.querySelectorAll('[data-testid="stMain"] h1, [data-testid="stMain"] h2, [data-testid="stMain"] h3')]
        .map(h => ({text: h.innerText, ...box(h)}));
    return {width: window.innerWidth, height: window.innerHeight, charts, texts, headings};
}"""
# Charts Plotly has not yet laid out for their container's width (Streamlit passes a stretched
# chart its container's width; Plotly draws at _fullLayout.width): key, drawn width, container width.
_NOT_RELAID = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].flatMap(chart => {
    const plot = chart.querySelector('.js-plotly-plot'), drawn = plot && plot._fullLayout ? plot._fullLayout.width : null;
    const width = chart.getBoundingClientRect().width, keyed = chart.closest('[class*="st-key-"]');
    return drawn !== null && Math.abs(drawn - width) <= 1 ? [] : [[keyed ? keyed.className : '', drawn, width]];
})"""
_TWO_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"
RELAYOUT_TIMEOUT_S = 20.0


def relaid_out(page: Page, timeout_s: float = RELAYOUT_TIMEOUT_S) -> list[str]:
    """Wait until the page has settled and Plotly has laid every chart out for its container's width.

    A window resize runs no script: Streamlit gives each chart its new width and Plotly lays it
    out again a moment later (0.1 to 0.6 s here). Returns the charts still drawn for another
    width after ``timeout_s``, described, instead of raising: a chart that never takes its
    container's width is a finding of the check that follows, not a hang.
    """
    page.wait_for_function(SETTLED, polling=100)
    deadline = time.monotonic() + timeout_s
    while (stale := page.evaluate(_NOT_RELAID)) and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    page.evaluate(_TWO_FRAMES)  # the new layout painted
    return [f"chart {key!r} drawn {drawn} px wide in a container of {width:.0f} px after {timeout_s:.0f} s" for key, drawn, width in stale]
