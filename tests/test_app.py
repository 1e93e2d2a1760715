"""The page as a user sees it, driven through Streamlit's AppTest (no browser, no server)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from models.maths.tokens import merge_prediction
from tests.helpers.page import APP, TIMEOUT, figures, heatmap_of, model_runs, open_page, weights_of


def prediction_of(model_id: str, text: str):
    """The reference: what the shared model itself returns for ``text``."""
    from views import compute

    return compute.prediction(model_id, text)


@pytest.fixture
def app():
    return open_page()


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


def test_repeated_tokens_keep_a_column_each(app):
    app.text_area(key="text").input("the cat saw the dog and the bird").run()
    heatmap = heatmap_of(app)
    assert np.allclose(weights_of(heatmap), prediction_of("keras-transformer", "the cat saw the dog and the bird").attentions[0, 0], atol=1e-6)
    assert heatmap["layout"]["xaxis"]["ticktext"] == ["the", "cat", "saw", "the", "dog", "and", "the", "bird"]


def test_switching_head_layer_view_or_colours_never_runs_the_model_again(app):
    app.text_area(key="text").input("Oil prices climb to record high").run()
    first = weights_of(heatmap_of(app))
    runs = model_runs()
    app.selectbox(key="head").set_value(2).run()
    assert not app.exception
    second = heatmap_of(app)
    assert second["layout"]["title"]["text"] == "Layer 1, head 2"
    expected = prediction_of("keras-transformer", "Oil prices climb to record high").attentions[0]
    assert np.allclose(first, expected[0], atol=1e-6) and np.allclose(weights_of(second), expected[1], atol=1e-6)
    app.radio(key="scheme").set_value("grayscale").run()
    app.selectbox(key="view").set_value("rollout").run()
    app.selectbox(key="view").set_value("heatmap").run()
    assert not app.exception
    assert model_runs() == runs
    assert app.query_params["head"] == ["2"] or app.query_params["head"] == "2"


def test_grayscale_scheme_is_the_papers(app):
    app.radio(key="scheme").set_value("grayscale").run()
    scale = heatmap_of(app)["data"][0]["colorscale"]
    assert scale[0] == [0.0, "black"] and scale[-1] == [1.0, "white"]


def test_a_near_uniform_head_is_stretched_by_default_and_fixed_is_one_click_away(app):
    """Issue 16: on 0..1 the keras transformer's heads (about 1/n everywhere) were one flat block."""
    text = "Microsoft releases security patch for Windows software flaw"
    app.text_area(key="text").input(text).run()
    head = prediction_of("keras-transformer", text).attentions[0, 0]
    top = float(head.max())
    assert top < 0.3
    trace = heatmap_of(app)["data"][0]
    assert app.radio(key="scale").value == "auto"
    assert trace["zmin"] == 0.0 and trace["zmax"] == pytest.approx(top, rel=1e-6)  # the head's own range
    assert trace["colorbar"]["title"]["text"] == "weight (auto-stretched)"
    assert trace["colorbar"]["ticktext"] == ["0", f"{top / 2:.3g}", f"{top:.3g}"]
    assert any(caption.value.startswith(f"Colours stretched: the strongest weight here is {top:.3f}") for caption in app.caption)
    app.radio(key="scale").set_value("fixed").run()
    fixed = heatmap_of(app)["data"][0]
    assert (fixed["zmin"], fixed["zmax"]) == (0.0, 1.0) and fixed["colorbar"]["title"]["text"] == "weight"
    assert fixed["colorbar"]["ticktext"] == ["0", "0.5", "1"]
    assert not any(caption.value.startswith("Colours stretched") for caption in app.caption)
    assert app.query_params["scale"] in ("fixed", ["fixed"])


def test_an_old_link_with_stretch_still_stretches():
    # The RNN's row for this text peaks at about 0.33: "auto" keeps it on 0..1, the old stretch=1 must not.
    text = "Stocks fell on Wall Street"
    top = float(prediction_of("bahdanau-rnn", text).attentions[0, 0].max())
    assert top > 0.3
    auto = heatmap_of(open_page(model="bahdanau-rnn", text=text))["data"][0]
    assert (auto["zmin"], auto["zmax"]) == (0.0, 1.0)
    at = open_page(model="bahdanau-rnn", text=text, stretch="1")
    trace = heatmap_of(at)["data"][0]
    assert at.radio(key="scale").value == "stretch"
    assert trace["zmax"] == pytest.approx(top, rel=1e-6) and trace["colorbar"]["title"]["text"] == "weight (stretched)"
    assert at.query_params["scale"] in ("stretch", ["stretch"]) and "stretch" not in at.query_params


def test_empty_input_shows_a_hint_not_an_error(app):
    app.text_area(key="text").input("   ").run()
    assert not app.exception and not app.error
    assert "Type a sentence" in app.info[0].value
    assert not app.get("plotly_chart")


def test_too_long_input_is_truncated_with_a_notice(app):
    app.text_area(key="text").input(" ".join(["market"] * 150)).run()
    assert not app.exception
    assert "22 tokens were dropped" in app.warning[0].value
    prediction = prediction_of("keras-transformer", " ".join(["market"] * 150))
    assert prediction.dropped_tokens == 22 and prediction.attentions.shape[-1] == 128
    assert np.allclose(weights_of(heatmap_of(app)), prediction.attentions[0, 0], atol=1e-6)


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


def test_views_that_do_not_apply_say_why(app):
    app.selectbox(key="view").set_value("rollout").run()
    assert not app.exception
    assert "single attention layer" in app.info[0].value
    assert not [f for f in figures(app) if f["data"][0]["type"] == "heatmap"]


@pytest.mark.slow
def test_a_link_reproduces_the_whole_state():
    query = {
        "model": "minilm-agnews",
        "compare": "keras-transformer",
        "text": "Stocks rally on Wall Street",
        "view": "rollout",
        "layer": "3",
        "b.head": "2",
        "scheme": "grayscale",
        "scale": "stretch",
        "words": "1",
        "hide_special": "1",
    }
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    assert not at.exception
    assert at.selectbox(key="model").value == "minilm-agnews"
    assert at.selectbox(key="compare").value == "keras-transformer"
    assert at.text_area(key="text").value == "Stocks rally on Wall Street"
    assert at.selectbox(key="view").value == "rollout"
    assert at.selectbox(key="layer").value == 3
    assert at.radio(key="scheme").value == "grayscale"
    assert at.toggle(key="words").value and at.toggle(key="hide_special").value and at.radio(key="scale").value == "stretch"
    rolled = heatmap_of(at)
    assert rolled["layout"]["title"]["text"] == "Rollout through layers 1-3"
    assert rolled["layout"]["xaxis"]["ticktext"] == ["stocks", "rally", "on", "wall", "street"]
    # The one-layer model in the second panel cannot roll out, and says so.
    assert any("single attention layer" in info.value for info in at.info)
    assert {k: at.query_params[k][0] if isinstance(at.query_params[k], list) else at.query_params[k] for k in at.query_params} == query


@pytest.mark.slow
def test_seq2seq_page_shows_output_alignment_and_caption(app):
    app.selectbox(key="model").set_value("bahdanau-dates").run()
    assert not app.exception
    # Switching to the date model swaps in a date example and the paper's grayscale.
    assert app.text_area(key="text").value == "Tuesday, 3rd of March 2015"
    app.text_area(key="text").input("3. März 2015").run()
    assert not app.exception
    assert app.code[0].value == "2015-03-03"
    assert not [f for f in figures(app) if f["data"][0]["type"] == "bar"]
    heatmap = heatmap_of(app)["layout"]
    assert heatmap["xaxis"]["ticktext"] == ["3", ".", "␣", "M", "ä", "r", "z", "␣", "2", "0", "1", "5"]
    assert heatmap["yaxis"]["ticktext"][:4] == ["2", "0", "1", "5"]
    assert heatmap["xaxis"]["title"]["text"] == "input characters"
    scale = heatmap_of(app)["data"][0]["colorscale"]
    assert scale[0] == [0.0, "black"] and scale[-1] == [1.0, "white"]
    # ... on the paper's fixed 0..1 scale.
    assert app.radio(key="scale").value == "fixed" and (heatmap_of(app)["data"][0]["zmin"], heatmap_of(app)["data"][0]["zmax"]) == (0.0, 1.0)
    assert any("Fig. 3" in caption.value for caption in app.caption)


def test_seq2seq_page_says_plainly_when_the_input_is_not_a_date(app):
    app.selectbox(key="model").set_value("bahdanau-dates").run()
    app.text_area(key="text").input("hello").run()
    assert not app.exception
    assert "only knows dates" in app.warning[0].value
    assert heatmap_of(app)["layout"]["xaxis"]["ticktext"] == ["h", "e", "l", "l", "o"]


def test_rnn_classifier_shows_a_one_row_strip(app):
    app.selectbox(key="model").set_value("bahdanau-rnn").run()
    app.text_area(key="text").input("Stocks fell on Wall Street").run()
    assert not app.exception
    heatmap = heatmap_of(app)
    weights = weights_of(heatmap)
    assert np.allclose(weights, prediction_of("bahdanau-rnn", "Stocks fell on Wall Street").attentions[0, 0], atol=1e-6)
    assert heatmap["layout"]["xaxis"]["ticktext"] == ["stocks", "fell", "on", "wall", "street"]
    # One layer, one head: no pickers to offer.
    assert not [box for box in app.selectbox if box.key in ("layer", "head")]


@pytest.mark.slow
def test_side_by_side_shows_both_models_on_the_same_text_with_their_own_heads(app):
    app.selectbox(key="model").set_value("bahdanau-rnn").run()
    app.toggle(key="compare_on").set_value(True).run()
    app.selectbox(key="compare").set_value("keras-transformer").run()
    app.text_area(key="text").input("Federer beats Nadal to reach the final").run()
    assert not app.exception
    titles = [s.value for s in app.subheader]
    assert len(titles) == 2 and all(t.startswith("Prediction:") for t in titles)
    app.selectbox(key="b.head").set_value(2).run()
    heatmaps = [f for f in figures(app) if f["data"][0]["type"] == "heatmap" and f["layout"].get("title")]
    text = "Federer beats Nadal to reach the final"
    assert np.allclose(weights_of(heatmaps[0]), prediction_of("bahdanau-rnn", text).attentions[0, 0], atol=1e-6)
    assert np.allclose(weights_of(heatmaps[1]), prediction_of("keras-transformer", text).attentions[0, 1], atol=1e-6)
    assert heatmaps[1]["layout"]["title"]["text"] == "Layer 1, head 2"
    assert app.query_params["compare"] in ("keras-transformer", ["keras-transformer"])


@pytest.mark.slow
def test_minilm_offers_six_layers_and_twelve_heads_and_word_view(app):
    app.selectbox(key="model").set_value("minilm-agnews").run()
    app.text_area(key="text").input("Transformers reshape chipmakers").run()
    assert not app.exception
    assert list(app.selectbox(key="layer").options) == [str(n) for n in range(1, 7)]
    assert list(app.selectbox(key="head").options) == [str(n) for n in range(1, 13)]
    pieces = heatmap_of(app)["layout"]["xaxis"]["ticktext"]
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and any(p.startswith("##") for p in pieces)
    app.toggle(key="words").set_value(True).run()
    words = heatmap_of(app)
    assert words["layout"]["xaxis"]["ticktext"] == ["[CLS]", "transformers", "reshape", "chipmakers", "[SEP]"]
    pieces_prediction = prediction_of("minilm-agnews", "Transformers reshape chipmakers")
    merged = merge_prediction(pieces_prediction, "wordpiece").attentions[0, 0]
    # The cache keeps float16 weights; the page merges them after upcasting (views.spec.display),
    # this reference in float16: the two sums agree to the store's documented 1e-3 (views.compute.compact).
    assert np.allclose(weights_of(words), merged, atol=1e-3)
    app.toggle(key="hide_special").set_value(True).run()
    assert heatmap_of(app)["layout"]["xaxis"]["ticktext"] == ["transformers", "reshape", "chipmakers"]
    assert app.query_params["words"] in ("1", ["1"]) and app.query_params["hide_special"] in ("1", ["1"])


@pytest.mark.slow
def test_own_checkpoint_is_offered_only_when_the_operator_allows_it(tmp_path, monkeypatch):
    from tests.helpers.checkpoints import make_checkpoint

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not [box for box in at.text_input if box.key == "checkpoint"]
    monkeypatch.setenv("ATTENTION_LENS_ALLOW_HF", "1")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.text_input(key="checkpoint").input(str(tmp_path / "missing")).run()
    assert not at.exception
    assert "does not exist" in at.error[0].value
    folder = make_checkpoint(tmp_path / "tiny")
    at.text_input(key="checkpoint").input(str(folder)).run()
    assert not at.exception and not at.error
    assert at.subheader[0].value.startswith("Prediction:")
    assert at.query_params["model"] in (f"hf:{folder}", [f"hf:{folder}"])


def test_a_page_run_leaves_the_shared_keras_state_alone(app, monkeypatch):
    """Streamlit's own clean-up would clear Keras's global state after every run of every session."""
    import keras

    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(1))
    app.text_area(key="text").input("Stocks rally as oil prices fall").run()
    assert not app.exception
    assert app.subheader[0].value.startswith("Prediction:")
    assert cleared == []


def test_a_typed_text_stays_when_switching_between_classifiers_but_not_to_the_date_model(app):
    app.text_area(key="text").input("Oil prices climb as the central bank raises rates").run()
    app.selectbox(key="model").set_value("bahdanau-rnn").run()
    assert app.text_area(key="text").value == "Oil prices climb as the central bank raises rates"
    app.selectbox(key="model").set_value("bahdanau-dates").run()
    assert app.text_area(key="text").value == "Tuesday, 3rd of March 2015"
    app.selectbox(key="model").set_value("keras-transformer").run()
    assert app.text_area(key="text").value == app.selectbox(key="example").options[1]


def test_changing_the_head_of_two_sentences_never_runs_the_model_on_either_text_again(app, monkeypatch):
    from views import compute

    app.selectbox(key="view").set_value("compare").run()
    assert not app.exception
    model, calls = compute.load_model(app.session_state["model"]), []
    predict_batch = model.predict_batch
    monkeypatch.setattr(model, "predict_batch", lambda texts: calls.append(texts) or predict_batch(texts))
    app.selectbox(key="head").set_value(2).run()
    assert not app.exception and len(figures(app)) >= 2
    assert calls == []
