"""Every view, in normal and presenter mode, in every language, at a laptop's and a projector's window size, in Debian's Chromium.

The states come from ``views.VIEWS``, the page's modes and ``views.i18n.LANGUAGES``
(``tests/helpers/browser.py: matrix_states``), so a new view is covered without editing this
file. They cover every pair of those values, starting from every view in presenter mode in
German (the most text in the largest type): about half the pages of the full product, which took
3 minutes of the suite's time; ``make screenshots`` pictures them all for a person to look
through (docs/matrix/).
Each view is shown on the first of MATRIX_MODELS it applies to, with one short headline; the
lesson on its step 1, revealed. One side-by-side page (two models' heatmaps) is checked as well.

What the page promises at every size, checked in the browser:

- no exception on the page, no traceback in the server's log;
- the view drew its figure, and no Plotly SVG layer is wider or taller than the chart element
  that holds it (1 px tolerance): figures are sized to their container; no text of a figure
  runs past its left or right edge (it would be cut off), and no two of its titles overlap;
- every token axis (categories named "4 · the") shows exactly its tokens, or every k-th of them
  (the first, the (k+1)-th, …) when its title says "every k-th token labelled"; the heatmap's top
  axis is compared with the tokens of the model run in this process;
- every view's first figure starts within a 1366×768 laptop's first screen; presenting the
  heatmap at 1920×1080, the text box, the prediction and the top of the figure are all on the
  first screen.

Each (view, mode, language) page is loaded once at 1366×768 and then resized to 1920×1080, which
Plotly answers by laying its charts out again; ``test_a_resized_page_is_laid_out_as_a_fresh_load``
checks that this equals loading the page at that size.
"""

from __future__ import annotations

import html
import re
import time

import pytest

from tests.helpers.browser import (
    LAYOUT,
    MATRIX_SIDE_BY_SIDE,
    MATRIX_SIZES,
    TRACEBACKS,
    MatrixState,
    Session,
    matrix_model,
    matrix_query,
    matrix_states,
    matrix_text,
    open_matrix_state,
    open_page,
    relaid_out,
)
from views import BY_KEY
from views.i18n import catalog
from views.lesson_steps import STEPS

pytestmark = pytest.mark.slow

TOLERANCE_PX = 1.0
STATES = matrix_states(pairwise=True)
LAPTOP, PROJECTOR = MATRIX_SIZES
# viz.heatmap's category names: "4 · the" for one token, "9–12 · the…cat" for a block of them.
TOKEN_NAME = re.compile(r"(\d+)(?:–\d+)? · (.*)", re.DOTALL)
# The axis-title notes of viz.labels, in the page's language: "{title}, every {nth} token labelled".
THINNED = ("{title}, every {nth} token labelled", "{title}, every {nth} block labelled")
PREDICTION = "Prediction: {label} ({probability:.0%})"


@pytest.fixture(scope="module")
def session(browser_session: Session) -> Session:
    return browser_session  # the server and browser every browser test shares (conftest)


@pytest.fixture(scope="module")
def page(session: Session):
    opened = session.new_page()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def tracebacks_before(session: Session) -> int:
    """Tracebacks the shared server logged before this module: other modules' tests may provoke some."""
    return len(session.server.log_tracebacks())


@pytest.fixture(scope="module")
def subjects(shipped_model):
    """``subjects(state) -> [(model id, text, prediction), …]``: what each panel of the state shows, run in this process."""
    found: dict[tuple[str, str], object] = {}
    models: dict[str, str] = {}  # view key -> the model it is shown on

    def predicted(model_id: str, text: str):
        if (model_id, text) not in found:
            found[model_id, text] = shipped_model(model_id).predict(text)
        return model_id, text, found[model_id, text]

    def get(state: MatrixState) -> list:
        if state.side_by_side:
            text = matrix_text(MATRIX_SIDE_BY_SIDE["model"])
            return [predicted(MATRIX_SIDE_BY_SIDE["model"], text), predicted(MATRIX_SIDE_BY_SIDE["compare"], text)]
        if state.view == "lesson":
            return [predicted(STEPS[0].model, STEPS[0].text)]
        if state.view not in models:
            models[state.view] = matrix_model(BY_KEY[state.view], shipped_model)
        return [predicted(models[state.view], matrix_text(models[state.view]))]

    return get


@pytest.fixture(scope="module", autouse=True)
def timed():
    """The module's wall time, printed (``pytest -s``): it is meant to stay near three minutes."""
    start = time.monotonic()
    yield
    print(f"\nbrowser matrix: {time.monotonic() - start:.1f} s")


def shown(token: str) -> str:
    """A tick label as the browser displays it: viz's escaped, shortened label, unescaped by Plotly."""
    from viz.labels import literal, short

    return html.unescape(literal(short(token)))


def stated_step(title: str, lang: str) -> int:
    """k when the axis title says every k-th token (or block) is labelled, else 1."""
    translate = catalog(lang).gettext
    for template in THINNED:
        pattern = re.escape(translate(template)).replace(re.escape("{title}"), "(?:.*)").replace(re.escape("{nth}"), "(?P<nth>.+?)")
        match = re.fullmatch(pattern, title, re.DOTALL)
        if match:
            return int(re.search(r"\d+", match["nth"])[0])
    return 1


def token_axis(axis: dict) -> list[str] | None:
    """The tokens along a token axis (categories named "4 · the"), as labels show them; None for any other axis."""
    names = axis["categories"]
    matches = [TOKEN_NAME.fullmatch(name) for name in names]
    if axis["type"] != "category" or not names or not all(matches):
        return None
    # A block "9–12 · the…cat" is labelled with its first token.
    return [html.unescape(m[2].rsplit("…", 1)[0] if "–" in name.split(" · ", 1)[0] else m[2]) for name, m in zip(names, matches)]


def view_charts(layout: dict) -> list[dict]:
    """The view's own figures (viz drawn by views.widgets.show_figure, keyed "chart-…"), not the probability bars."""
    return [chart for chart in layout["charts"] if "chart-" in chart["key"]]


def check(layout: dict, state: MatrixState, size: tuple[int, int], subjects: list) -> list[str]:
    """Everything wrong with one state at one size, each with the numbers that show it."""
    where = f"{state.name} at {size[0]}x{size[1]}"
    problems = []
    if not view_charts(layout):
        problems.append(f"{where}: the view drew no figure (charts: {[c['key'] for c in layout['charts']]})")
    for chart in layout["charts"]:
        box = chart["box"]
        for svg in chart["svgs"]:
            if svg["width"] > box["width"] + TOLERANCE_PX or svg["height"] > box["height"] + TOLERANCE_PX:
                problems.append(
                    f"{where}: chart {chart['key']!r}: SVG {svg['width']:.0f}x{svg['height']:.0f} px in a container of "
                    f"{box['width']:.0f}x{box['height']:.0f} px"
                )
                break
        # Text past the SVG's left or right edge is cut off. (Above and below, a title's box includes its font's
        # line gap: titles at the very top reach 2-4 px above the SVG with nothing of the letters cut.)
        for text in chart["texts"]:
            if text["left"] < box["left"] - TOLERANCE_PX or text["right"] > box["right"] + TOLERANCE_PX:
                problems.append(
                    f"{where}: chart {chart['key']!r}: text {text['text']!r} spans x {text['left'] - box['left']:.0f}..{text['right'] - box['left']:.0f} px "
                    f"of a {box['width']:.0f} px figure"
                )
        titles = [text for text in chart["texts"] if text["title"] and not text["rotated"]]
        for index, first in enumerate(titles):
            for second in titles[index + 1 :]:
                wide = min(first["right"], second["right"]) - max(first["left"], second["left"])
                high = min(first["bottom"], second["bottom"]) - max(first["top"], second["top"])
                if wide > TOLERANCE_PX and high > TOLERANCE_PX:
                    problems.append(f"{where}: chart {chart['key']!r}: titles {first['text']!r} and {second['text']!r} overlap by {wide:.0f}x{high:.0f} px")
        if box["left"] < -TOLERANCE_PX or box["right"] > layout["width"] + TOLERANCE_PX:
            problems.append(f"{where}: chart {chart['key']!r} spans x {box['left']:.0f}..{box['right']:.0f} px of a {layout['width']} px window")
        for axis in chart["axes"]:
            tokens = token_axis(axis)
            if tokens is None or not axis["shown"]:
                continue
            step = stated_step(axis["title"], state.lang)
            if axis["ticks"] != tokens[::step]:
                problems.append(
                    f"{where}: chart {chart['key']!r} axis {axis['id']} (title {axis['title']!r}, every {step}) shows "
                    f"{len(axis['ticks'])} labels {axis['ticks']} for {len(tokens)} tokens {tokens}"
                )
    # The heatmap's tokens, as the model in this process reads the text; the second panel's chart key starts with "b.".
    for chart in layout["charts"]:
        if "chart-heatmap-" not in chart["key"]:
            continue
        model_id, _, prediction = subjects[1 if chart["key"].startswith("b") else 0]
        top = next(axis for axis in chart["axes"] if axis["id"] == "x")
        step = stated_step(top["title"], state.lang)
        expected = [shown(token) for token in prediction.source_tokens][::step]
        if top["ticks"] != expected:
            problems.append(f"{where}: {model_id}'s heatmap labels {top['ticks']} (every {step}) instead of the model's tokens {expected}")
    return problems


def check_screen(layout: dict, state: MatrixState, size: tuple[int, int]) -> list[str]:
    """Every view's first figure on a laptop's first screen; presenting the heatmap, its text, prediction and figure top too."""
    if state.side_by_side or (state.mode, size) not in (("normal", LAPTOP), ("presenter", PROJECTOR)):
        return []
    if state.mode == "presenter" and state.view != "heatmap":
        return []
    if getattr(BY_KEY[state.view], "HOLDS_BACK_OUTPUT", False):
        return []  # the lesson's first screen is its question and Reveal button; the figure is the answer, below them
    where = f"{state.name} at {size[0]}x{size[1]}"
    height = size[1]
    figures = view_charts(layout)[:1]  # the first: a view may draw more below it
    problems = [
        f"{where}: the first figure's top is at {chart['box']['top']:.0f} px, below the first {height} px" for chart in figures if chart["box"]["top"] >= height
    ]
    if state.mode == "presenter":
        problems += [f"{where}: the text box ends at {box['bottom']:.0f} px, below the first {height} px" for box in layout["texts"] if box["bottom"] > height]
        prefix = catalog(state.lang).gettext(PREDICTION).split("{", 1)[0]
        predictions = [h for h in layout["headings"] if h["text"].startswith(prefix)]
        if not predictions:
            problems.append(f"{where}: no prediction heading ({prefix!r}…) among {[h['text'] for h in layout['headings']]}")
        problems += [
            f"{where}: the prediction {h['text']!r} ends at {h['bottom']:.0f} px, below the first {height} px" for h in predictions if h["bottom"] > height
        ]
    return problems


def measure(page) -> dict:
    return page.evaluate(LAYOUT)


@pytest.mark.parametrize("state", STATES, ids=[state.name for state in STATES])
def test_every_view_fits_both_screens(session, page, subjects, tracebacks_before, state):
    shows = subjects(state)
    open_matrix_state(session, page, state, shows[0][0])
    problems = []
    for index, (width, height) in enumerate(MATRIX_SIZES):
        if index:
            page.set_viewport_size({"width": width, "height": height})
        problems += [f"{state.name} at {width}x{height}: {stale}" for stale in relaid_out(page)]
        layout = measure(page)
        problems += check(layout, state, (width, height), shows) + check_screen(layout, state, (width, height))
    problems += [f"{state.name}: exception on the page: {line}" for line in page.evaluate(TRACEBACKS)]
    problems += [f"{state.name}: the server logged {line}" for line in session.server.log_tracebacks()[tracebacks_before:]]
    assert not problems, "\n".join(problems)


def test_a_resized_page_is_laid_out_as_a_fresh_load(session, page, subjects):
    """The matrix loads each page at the laptop's size and resizes it: that must draw what loading at the projector's size draws."""
    state = MatrixState("heatmap", "presenter", "en")
    open_matrix_state(session, page, state, subjects(state)[0][0])
    page.set_viewport_size({"width": PROJECTOR[0], "height": PROJECTOR[1]})
    assert relaid_out(page) == []
    resized = measure(page)
    fresh = session.new_page()
    try:
        fresh.set_viewport_size({"width": PROJECTOR[0], "height": PROJECTOR[1]})
        open_page(session, fresh, **matrix_query(state, subjects(state)[0][0]))
        assert relaid_out(fresh) == []
        assert resized == measure(fresh)
    finally:
        fresh.close()
