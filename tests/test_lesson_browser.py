"""The lesson end to end in a real browser: the `streamlit run` server on a loopback port and the Debian chromium every browser test shares (conftest).

Walks every step in English and German (predict, Reveal, screenshot), scans the QR code off the
screen and compares it with the page's own address, opens the downloaded handout with the
network cut off, and checks presenter mode. Screenshots go to a temporary folder whose path is
printed (``pytest -s``); two of them illustrate the README (docs/lesson-step-1.png and -5.png).
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from views import lesson
from views.i18n import catalog, use_language
from views.lesson_steps import LAB, PAGES, STEPS

pytestmark = pytest.mark.slow

STEP_TIMEOUT_MS = 180_000  # the first reveal of a model loads it (MiniLM: about 20 s on two shared cores)
# Streamlit scrolls inside the page, so a full-page screenshot is one viewport: make it tall enough for a step.
VIEWPORT = {"width": 1400, "height": 2400}


@pytest.fixture(scope="module")
def server(browser_session) -> str:
    """The address of the ``streamlit run`` server every browser test shares (conftest), on 127.0.0.1."""
    return browser_session.server.url.rstrip("/")


@pytest.fixture(scope="module")
def browser(browser_session):
    return browser_session.browser


@pytest.fixture(scope="module")
def shots():
    folder = Path(tempfile.mkdtemp(prefix="attention-lens-lesson-"))
    print(f"\nlesson screenshots: {folder}")
    return folder


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    use_language("en")


def button(page, key: str):
    """The button drawn with ``key`` (Streamlit marks each keyed element's container with st-key-<key>)."""
    return page.locator(f".st-key-{key} button")


def settled(page) -> None:
    """Wait until the script run has finished drawing (call after waiting for what the run shows)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=STEP_TIMEOUT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()


def decode_qr(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


@pytest.mark.parametrize("language", ["en", "de"])
def test_walk_every_step_reveal_and_screenshot(server, browser, shots, language):
    translate = catalog(language).gettext
    use_language(language)  # for step.say, which fills in the step's numbers
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{server}/?view=lesson&lang={language}")
    for number, step in enumerate(STEPS, start=1):
        heading = page.locator("h2", has_text=f"{number}. {translate(step.title)}")
        heading.wait_for(timeout=STEP_TIMEOUT_MS)
        settled(page)
        expect(page.get_by_text(translate("Step {step} of {total}").format(step=number, total=len(STEPS)))).to_be_visible()
        assert page.locator(".js-plotly-plot").count() == 0  # nothing of the answer before Reveal
        button(page, "lesson-reveal").click()
        page.get_by_text(step.say(step.answer)[:60]).wait_for(timeout=STEP_TIMEOUT_MS)
        settled(page)
        if lesson.inner_view(step) is not None:
            page.locator(".js-plotly-plot").first.wait_for(timeout=STEP_TIMEOUT_MS)
        page.wait_for_timeout(500)  # let Plotly finish its layout before the picture
        page.screenshot(path=shots / f"{language}-step-{number}.png", full_page=True)
        if step.key == "your-turn":
            scan_the_code(page, language)
        if number < len(STEPS):
            # English clicks Next; German uses the key a presenter's clicker sends.
            if language == "en":
                button(page, "lesson-next").click()
            else:
                page.evaluate("document.activeElement.blur()")  # the keys go to the page, not a text field
                page.keyboard.press("PageDown")
    assert button(page, "lesson-next").is_disabled()
    page.close()


def scan_the_code(page, language: str) -> None:
    """The QR code on the screen decodes to this page's address, on the host offered to students."""
    code = page.locator('[data-testid="stImage"] img').first
    code.scroll_into_view_if_needed()
    links = decode_qr(code.screenshot())
    assert len(links) == 1
    host = page.locator(".st-key-lesson-share-host input").input_value()
    assert urlsplit(links[0]).netloc == host and urlsplit(links[0]).netloc != urlsplit(page.url).netloc
    assert query_of(links[0]) == query_of(page.url)
    assert query_of(links[0])["step"] == [str(len(STEPS))] and query_of(links[0]).get("lang", ["en"]) == [language]  # en is the default, left out
    # This test's server listens on 127.0.0.1 only, and the page says so.
    expect(page.get_by_text("server.address = 127.0.0.1")).to_be_visible()


def test_handout_downloads_and_opens_with_the_network_cut_off(server, browser, shots):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/?view=lesson&step=3")
    page.locator("h2", has_text="3. ").wait_for(timeout=STEP_TIMEOUT_MS)
    settled(page)
    page.get_by_text("Handout for the class").click()
    button(page, "lesson-handout").click()
    with page.expect_download(timeout=STEP_TIMEOUT_MS) as download:
        page.locator(".st-key-lesson-handout-download button").click(timeout=STEP_TIMEOUT_MS)
    handout = shots / "handout.html"
    download.value.save_as(handout)
    page.close()
    offline = browser.new_context()
    requested = []

    def refuse(route):
        requested.append(route.request.url)
        route.abort()

    offline.route("http*://**/*", refuse)
    reader = offline.new_page()
    reader.goto(handout.as_uri())
    reader.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0", timeout=60_000)
    # A figure per page of the lesson and its lab, and the probability bars of every classifier page.
    expected = len(PAGES) + sum(step.model != "bahdanau-dates" for step in PAGES)
    reader.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {expected}", timeout=60_000)
    assert requested == []
    for number, step in enumerate(STEPS, start=1):
        assert reader.locator("h2", has_text=f"{number}. {step.title}").count() == 1
    for step in LAB:
        assert reader.locator("h2", has_text=f"Lab: {step.title}").count() == 1
    offline.close()


def test_presenter_mode_collapses_the_sidebar_and_enlarges_the_page(server, browser, shots):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{server}/?view=lesson&step=5&present=1")
    page.locator("h2", has_text="5. ").wait_for(timeout=STEP_TIMEOUT_MS)
    settled(page)
    expect(page.locator('[data-testid="stSidebar"]')).to_have_attribute("data-collapsed", "true")
    # The stylesheet arrives as an element of the page run: wait for it rather than read once.
    # Page text is enlarged by the root font size (never CSS zoom, which drew figures wider than their column).
    root = "() => getComputedStyle(document.documentElement).fontSize"
    page.wait_for_function(f"({root})() === '22.4px'", timeout=STEP_TIMEOUT_MS)
    main = page.locator('[data-testid="stMainBlockContainer"]')
    assert main.evaluate("element => getComputedStyle(element).zoom") == "1"
    button(page, "lesson-reveal").click()
    page.locator(".js-plotly-plot").first.wait_for(timeout=STEP_TIMEOUT_MS)
    settled(page)
    page.wait_for_timeout(500)
    chart = page.locator('[data-testid="stPlotlyChart"]').last
    assert chart.locator(".main-svg").first.bounding_box()["width"] <= chart.bounding_box()["width"] + 0.5
    # Figures are enlarged by their own type (viz.present.for_projector): tick labels at 16.8 px, not 12.
    assert chart.locator(".xtick text").first.evaluate("element => getComputedStyle(element).fontSize") == "16.8px"
    page.screenshot(path=shots / "present-step-5.png", full_page=True)
    page.close()
    plain = browser.new_page(viewport={"width": 1400, "height": 1000})
    plain.goto(f"{server}/?view=lesson&step=5")
    plain.locator("h2", has_text="5. ").wait_for(timeout=STEP_TIMEOUT_MS)
    settled(plain)
    expect(plain.locator('[data-testid="stSidebar"]')).to_have_attribute("data-collapsed", "false")
    assert plain.evaluate(root) == "16px"
    plain.close()
