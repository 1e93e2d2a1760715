"""Sharing with a class: the link carries the page state, and its QR code decodes to exactly that link."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from PIL import Image
from streamlit import config

from tests.helpers.page import open_page
from views import share
from views.i18n import use_language
from views.state import to_query


def decode_qr(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def first(value: str | list[str]) -> str:
    """AppTest's query parameters are lists or strings, depending on how they were set."""
    return value[0] if isinstance(value, list) else value


def query_of(link: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(link).query, keep_blank_values=True).items()}


@pytest.fixture
def server_address():
    """Set ``server.address`` for one test, then restore it."""
    before = config.get_option("server.address")
    yield lambda value: config.set_option("server.address", value)
    config.set_option("server.address", before)


def test_link_carries_the_state_with_spaces_markup_and_umlauts_intact():
    query = {"view": "lesson", "step": "8", "lang": "de", "text": "3. März 2015 & <b>bold</b> + more"}
    link = share.page_link("http", "192.168.1.20:8501", "/", query)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "192.168.1.20:8501", "/")
    assert query_of(link) == query
    assert "+" not in parts.query.replace("%2B", "")  # a literal plus would read back as a space


@pytest.mark.parametrize(
    "text",
    ["Red Sox rally in ninth inning to stun the Yankees", "3. März 2015", "Federer beats Nadal " * 20],
)
def test_qr_code_decodes_to_the_link(text):
    link = share.page_link("http", "lens.school.example:8501", "/", to_query({"text": text, "view": "lesson", "step": 5, "lang": "de"}))
    png = share.qr_png(link)
    assert decode_qr(png) == [link]
    # Large enough for a projector: at least 8 px per module (a 25-module code plus quiet zone is 33 modules).
    width, height = Image.open(io.BytesIO(png)).size
    assert width == height >= 33 * share.MODULE_PX


def test_hosts_other_devices_cannot_use_are_recognised():
    for host in ("localhost:8501", "127.0.0.1:8501", "127.0.1.1", "[::1]:8501", "0.0.0.0:8501", ""):
        assert share.is_unreachable(host), host
    for host in ("192.168.1.20:8501", "lens.school.example", "10.0.0.5:80"):
        assert not share.is_unreachable(host), host


def test_machine_address_is_not_loopback():
    assert not share.is_unreachable(share.machine_address())


def test_a_server_bound_to_loopback_is_noticed(server_address):
    server_address("127.0.0.1")
    assert share.listens_only_locally()
    server_address("0.0.0.0")
    assert not share.listens_only_locally()
    server_address("")
    assert not share.listens_only_locally()  # unset: Streamlit listens on every interface


@pytest.mark.slow
def test_share_dialog_shows_the_current_link_on_a_reachable_host_and_its_qr_code():
    use_language("en")
    at = open_page(text="Oil prices climb to record high", lang="en")
    at.selectbox(key="head").set_value(2).run()
    at.button(key="share").click().run()
    assert not at.exception
    host = at.text_input(key="dialog-share-host").value
    assert host == f"{share.machine_address()}:{config.get_option('server.port')}"  # AppTest has no browser address: this machine's
    link = at.code[-1].value
    assert urlsplit(link).netloc == host
    assert query_of(link) == {name: first(at.query_params[name]) for name in at.query_params}
    assert query_of(link)["head"] == "2" and query_of(link)["text"] == "Oil prices climb to record high"
    assert decode_qr(share.qr_png(link)) == [link]
    assert len(at.get("image")) == 1  # the code itself
    at.toggle(key="present").set_value(True).run()
    at.button(key="share").click().run()
    assert first(at.query_params["present"]) == "1" and "present" not in query_of(at.code[-1].value)  # the projector's, not the class's
    at.text_input(key="dialog-share-host").input("localhost:8501").run()
    at.button(key="share").click().run()
    assert at.text_input(key="dialog-share-host").value == "localhost:8501"  # kept for the session
    assert any("means each student's own device" in warning.value for warning in at.warning)


@pytest.mark.slow
def test_share_dialog_warns_about_a_loopback_server_and_a_link_too_long_for_a_code(server_address):
    server_address("127.0.0.1")
    at = open_page(text="ä" * 1400)  # fits the URL limit, but percent-encoded it is 8,400 characters
    at.button(key="share").click().run()
    assert not at.exception
    warnings = [warning.value for warning in at.warning]
    assert any("only listens on this computer (server.address = 127.0.0.1)" in warning for warning in warnings)
    assert any("too long for a QR code" in warning for warning in warnings)
    assert not at.get("image")
