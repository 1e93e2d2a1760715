"""Markup a user types is data: checked on the real server in a real browser (Debian's chromium).

Six injection payloads go into every view (the list is read at run time, so a new view is
covered without touching this file; one text carries all six), by link and through the text
area. In each case no dialog opens, no element is injected, and the text is shown as typed: in
the text area, in the charts' tick labels and hover, in the CSV, JSON and SVG downloads, in the
lesson's handout and in the share QR code. A 100,000-character paste is refused with its
length and the page stays usable.

The date model reads characters, so its tokens carry the markup itself ("<", "=", "*"): it is
the one whose labels and exports can show the payload literally. The word models drop
punctuation, so for them the check is that the labels are exactly the model's tokens.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import urllib.parse
import xml.etree.ElementTree as ElementTree

import pytest

from tests.helpers.browser import (
    ALERTS,
    CHARTS,
    DRAWN,
    INJECTED,
    TEXT_AREA,
    TRACEBACKS,
    Session,
    act,
    decode_qr,
    download,
    open_page,
    settle,
    submit_text,
)

pytestmark = pytest.mark.slow

PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
    "[x](javascript:alert(4)) **bold** $x^2$",
    "{{7*7}} ${7*7} <b>b</b>",
    "<iframe src=javascript:alert(5)>",
)
# Every payload in one text, for the text area, the share link, the lesson's handout and the walk
# through every view (one page run each instead of six): a view that parsed any of them leaves
# that payload's element, handler or maths behind (INJECTED), whatever surrounds it. The iframe comes last, because an HTML parser reads
# whatever follows an opening <iframe> as its raw text and would hide a later payload.
EVERY_PAYLOAD = " ".join(PAYLOADS)
CLASSIFIER = "keras-transformer"
DEEP = "minilm-agnews"  # for the views that need more than one layer
DATES = "bahdanau-dates"
MARKUP_CHARACTERS = set('<>"[]{}$*')
HOVER = re.compile(r"(\d+) · (.*) → (\d+) · (.*)weight \d\.\d{4}")
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def session(browser_session: Session) -> Session:
    return browser_session  # the server and browser every browser test shares (conftest)


@pytest.fixture(scope="module")
def page(session: Session):
    opened = session.new_page()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def loaded(shipped_model):
    """The small models in this process too: what the page should show is what they predict."""
    return {model_id: shipped_model(model_id) for model_id in (CLASSIFIER, DATES)}


@pytest.fixture(autouse=True)
def no_dialog_yet(session: Session):
    session.dialogs.clear()


def shown(tokens) -> list[str]:
    """Tick labels as the browser displays them: the escaped labels of viz, unescaped by Plotly.

    The payloads are short enough for every token to keep its label at the page's width.
    """
    from viz.labels import literal, short

    return [html.unescape(literal(short(token))) for token in tokens]


def assert_inert(session: Session, page, payload: str, where: str) -> None:
    assert session.dialogs == [], where
    assert page.evaluate(INJECTED) == [], where
    assert page.locator(TEXT_AREA).input_value() == payload, where
    assert page.evaluate(TRACEBACKS) == [], where


def chart(page, title: str) -> dict:
    charts = page.evaluate(CHARTS)
    found = [c for c in charts if c["title"] == title]
    assert found, f"no chart titled {title!r} among {[c['title'] for c in charts]}"
    return found[0]


def query_of(link: str) -> dict[str, str]:
    return {key: values[0] for key, values in urllib.parse.parse_qs(urllib.parse.urlsplit(link).query, keep_blank_values=True).items()}


def test_typed_markup_is_shown_as_typed_and_shared_as_data(session, page, loaded):
    payload = EVERY_PAYLOAD
    open_page(session, page, model=CLASSIFIER)
    submit_text(page, payload)
    assert_inert(session, page, payload, "after typing")
    heatmap = chart(page, "Layer 1, head 1")
    prediction = loaded[CLASSIFIER].predict(payload)
    assert heatmap["x"] == shown(prediction.source_tokens)
    assert heatmap["y"] == shown(prediction.target_tokens)

    page.get_by_role("button", name="Share with the class").click()
    qr = page.locator('[role="dialog"] [data-testid="stImage"] img')
    qr.wait_for()
    links = decode_qr(session.fetch(page, qr.get_attribute("src")))
    assert [query_of(link)["text"] for link in links] == [payload]
    assert page.evaluate(INJECTED) == [] and session.dialogs == []
    page.keyboard.press("Escape")


def check_view(session: Session, page, payload: str, where: str) -> None:
    reveal = page.get_by_role("button", name="Reveal")
    if reveal.count():
        act(page, reveal.click)
    assert_inert(session, page, payload, where)
    assert page.evaluate(ALERTS, "Error") == [], where
    # The model's answer (its probability bars) and the view's own figure or table.
    assert page.evaluate(DRAWN) >= 2, where
    second = page.locator('input[aria-label="Second text"]')
    if second.count():
        assert second.input_value() == payload, where


def test_every_view_shows_markup_as_data(session, page, loaded):
    """Each model's first view is opened by link, the others by the view picker, as a user moves between them.

    The text carries every payload at once (EVERY_PAYLOAD). The lesson is always opened by link:
    arriving at it from another view starts its first step, with the step's own text.
    """
    from views import VIEWS

    payload = EVERY_PAYLOAD
    model = loaded[CLASSIFIER]
    prediction = model.predict(payload)
    # A view that cannot show the one-layer model is checked on the six-layer one.
    by_model = {CLASSIFIER: [], DEEP: []}
    for view in VIEWS:
        by_model[CLASSIFIER if view.applies(prediction, model)[0] else DEEP].append(view)
    assert by_model[CLASSIFIER], "no view applies to the one-layer model"
    for model_id, views in by_model.items():
        picked = [view for view in views if view.KEY != "lesson"]
        for index, view in enumerate(picked):
            if index == 0:
                open_page(session, page, model=model_id, view=view.KEY, text=payload, text2=payload)
            else:
                page.get_by_role("combobox", name="View").click()  # the view menu
                act(page, page.get_by_role("option", name=view.TITLE, exact=True).click)
            check_view(session, page, payload, f"{view.KEY} on {model_id}")
        if len(picked) < len(views):
            open_page(session, page, model=model_id, view="lesson", text=payload)
            check_view(session, page, payload, f"lesson on {model_id}")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markup_reaches_labels_hover_and_exports_literally(session, page, loaded, payload):
    """The character model's tokens are the payload's characters: every surface must show them as typed."""
    open_page(session, page, model=DATES, view="heatmap", text=payload)
    assert_inert(session, page, payload, "date model")
    prediction = loaded[DATES].predict(payload)
    source, target = list(prediction.source_tokens), list(prediction.target_tokens)
    assert "".join(source).replace("␣", " ") == payload
    alignment = chart(page, "Alignment")
    assert alignment["x"] == shown(source)
    assert alignment["y"] == shown(target)

    # Hover the first row over the first markup character: the hover names both tokens as typed.
    column = next(i for i, c in enumerate(payload) if c in MARKUP_CHARACTERS)
    plot = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first
    box = plot.bounding_box()
    plot.hover(position={"x": (column + 0.5) * box["width"] / len(source), "y": 0.5 * box["height"] / len(target)})
    hover = page.locator(".hoverlayer .hovertext").first
    hover.wait_for()
    row, row_token, col, col_token = HOVER.fullmatch(hover.text_content()).groups()
    assert (int(row), int(col)) == (1, column + 1)
    assert (row_token, col_token) == (target[0], payload[column])

    table = list(csv.reader(io.StringIO(download(page, page.get_by_role("button", name="Data as CSV")).decode("utf-8"))))
    assert table[0] == ["", *source]
    assert [line[0] for line in table[1:]] == target
    record = json.loads(download(page, page.get_by_role("button", name="Data as JSON")))
    assert record["text"] == payload
    assert record["tokens"] == {"rows": target, "columns": source}

    page.get_by_text("Download figure").click()
    act(page, page.get_by_role("button", name="Prepare PNG and SVG").click)
    svg = ElementTree.fromstring(download(page, page.get_by_role("button", name="SVG", exact=True)))
    tags = {element.tag.removeprefix(SVG_NS) for element in svg.iter()}
    assert not tags & {"script", "img", "iframe", "foreignObject", "a"}
    assert not [name for element in svg.iter() for name in element.attrib if name.lower().startswith("on")]
    # Plotly draws the heatmap's cells as one embedded PNG; nothing else may be linked.
    links = [value for element in svg.iter() for name, value in element.attrib.items() if name.endswith("href")]
    assert links and all(link.startswith(("data:image/png;base64,", "#")) for link in links)
    ticks = ["".join(group.itertext()) for group in svg.iter(f"{SVG_NS}g") if group.get("class") == "xtick"]
    assert ticks == shown(source)
    assert page.evaluate(INJECTED) == [] and session.dialogs == []


def test_lesson_qr_code_and_handout_treat_markup_as_data(session, page):
    from views.lesson_steps import STEPS

    payload = EVERY_PAYLOAD

    # The last step shows the share QR code in the page; a link with a text keeps it.
    open_page(session, page, model=CLASSIFIER, view="lesson", step=str(len(STEPS)), text=payload)
    assert_inert(session, page, payload, "lesson")
    qr = page.locator('[data-testid="stMain"] [data-testid="stImage"] img')
    links = decode_qr(session.fetch(page, qr.first.get_attribute("src")))
    assert [query_of(link)["text"] for link in links] == [payload]

    act(page, page.get_by_role("button", name="Reveal").click)
    assert_inert(session, page, payload, "lesson, revealed")
    assert page.evaluate(DRAWN) >= 3  # the QR code, the answer's bars and the step's figure

    page.get_by_text("Handout for the class").click()
    act(page, page.get_by_role("button", name="Prepare the handout").click)
    handout = download(page, page.get_by_role("button", name="Download the handout (HTML)")).decode("utf-8")
    reader = session.new_page()
    try:
        reader.set_content(handout, wait_until="load")
        assert session.dialogs == []
        assert reader.evaluate(INJECTED) == []
        assert payload in reader.evaluate("() => [...document.querySelectorAll('code')].map(c => c.textContent)")
    finally:
        reader.close()


def test_a_100000_character_paste_is_refused_and_the_page_stays_usable(session, page, loaded):
    open_page(session, page, model=CLASSIFIER)
    pasted = ("market news " * 10_000)[:100_000]
    submit_text(page, pasted)
    errors = page.evaluate(ALERTS, "Error")
    assert len(errors) == 1 and "100,000 characters" in errors[0]
    assert page.evaluate(TRACEBACKS) == []

    sentence = "Federer beats Nadal to reach the Wimbledon final"
    submit_text(page, sentence)
    assert page.evaluate(ALERTS, "Error") == []
    assert chart(page, "Layer 1, head 1")["x"] == shown(loaded[CLASSIFIER].predict(sentence).source_tokens)


def test_the_server_logged_no_traceback_while_serving_every_model(session):
    """Every bundled model opened at once in its own tab (sessions while the server warms up), then the log is read."""
    from models.registry import REGISTRY

    tabs = [session.new_page() for _ in REGISTRY]
    try:
        for tab, model_id in zip(tabs, REGISTRY):
            tab.goto(session.url(model=model_id))
        for tab in tabs:
            settle(tab, 0)
            assert tab.evaluate(TRACEBACKS) == []
    finally:
        for tab in tabs:
            tab.close()
    assert session.server.log_tracebacks() == []
