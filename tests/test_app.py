"""The page as a user sees it, driven through Streamlit's AppTest (no browser, no server)."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120  # the first run loads TensorFlow and the model


def figures(at):
    """The Plotly figures on the page, as the JSON Streamlit sends to the browser."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def heatmap_of(at):
    for figure in figures(at):
        if figure["data"][0]["type"] == "heatmap" and figure["layout"].get("title"):
            return figure
    raise AssertionError("no alignment heatmap on the page")


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    return at


def test_typing_a_sentence_shows_prediction_bars_and_heatmap(app):
    app.text_area(key="text").input("Federer beats Nadal to reach the final").run()
    assert not app.exception
    assert app.subheader[0].value.startswith("Prediction: Sports")
    bars = next(f for f in figures(app) if f["data"][0]["type"] == "bar")
    assert bars["data"][0]["y"] == ["World", "Sports", "Business", "Sci/Tech"]
    heatmap = heatmap_of(app)
    assert heatmap["layout"]["xaxis"]["ticktext"] == ["federer", "beats", "nadal", "to", "reach", "the", "final"]
    assert heatmap["layout"]["xaxis"]["side"] == "top"
    assert heatmap["layout"]["title"]["text"] == "Layer 1, head 1"


def test_switching_head_changes_the_heatmap_and_the_url(app):
    app.text_area(key="text").input("Oil prices climb to record high").run()
    first = heatmap_of(app)["data"][0]["z"]
    app.selectbox(key="head").set_value(2).run()
    assert not app.exception
    second = heatmap_of(app)
    assert second["layout"]["title"]["text"] == "Layer 1, head 2"
    assert second["data"][0]["z"] != first
    assert app.query_params["head"] == "2"


def test_grayscale_scheme_is_available(app):
    app.radio(key="scheme").set_value("grayscale").run()
    scale = heatmap_of(app)["data"][0]["colorscale"]
    assert scale[0] == [0.0, "black"] and scale[-1] == [1.0, "white"]


def test_empty_input_shows_a_hint_not_an_error(app):
    app.text_area(key="text").input("   ").run()
    assert not app.exception and not app.error
    assert "Type a sentence" in app.info[0].value
    assert not app.get("plotly_chart")


def test_too_long_input_is_truncated_with_a_notice(app):
    app.text_area(key="text").input(" ".join(["market"] * 150)).run()
    assert not app.exception
    assert "22 tokens were dropped" in app.warning[0].value
    assert len(heatmap_of(app)["layout"]["xaxis"]["tickvals"]) <= 128


def test_markup_is_shown_literally_and_unreadable_text_gets_a_message(app):
    app.text_area(key="text").input("<script>alert(1)</script> stocks").run()
    assert not app.exception
    assert "script" in heatmap_of(app)["layout"]["xaxis"]["ticktext"]
    app.text_area(key="text").input("🚀🚀 ???").run()
    assert not app.exception
    assert "no words" in app.error[0].value


def test_example_picker_fills_the_text(app):
    example = app.selectbox(key="example").options[3]
    app.selectbox(key="example").set_value(example).run()
    assert app.text_area(key="text").value == example


def test_state_comes_from_the_url():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(text="Stocks rally on Wall Street", head="2", scheme="grayscale")
    at.run()
    assert not at.exception
    assert at.text_area(key="text").value == "Stocks rally on Wall Street"
    assert heatmap_of(at)["layout"]["title"]["text"] == "Layer 1, head 2"
