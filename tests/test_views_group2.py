"""The value-aware, two-sentence, attribution and ablation views on the view protocol.

Each view's ``data`` is checked against the library function it wraps, its ``rows`` against
``data``, and its ``render`` on a page of its own (AppTest) for what the user sees. The tiny
classifier of ``tests.helpers.tiny_models`` needs no loading, so most of this runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from models import registry
from models.base import LensError
from models.contract import Prediction
from models.explain.ablation import head_importance, predict_with_heads_off, single_head_effects
from models.explain.attribution import attribute
from models.explain.faithfulness import faithfulness_table
from models.maths.tokens import merge_subwords, word_groups
from models.value_aware import supports_value_aware, value_aware
from tests.helpers.tiny_models import TinyAttentionClassifier
from views import ablation, attribution, compare, norms
from views.spec import Settings, Style, Subject, display

TEXT = "the good movie"
OTHER = "the bad plot"  # as many tokens as TEXT, so the difference map exists
TIMEOUT = 120


@pytest.fixture(scope="module")
def tiny() -> TinyAttentionClassifier:
    return TinyAttentionClassifier()


def subject_of(model, text: str = TEXT) -> Subject:
    return Subject(model.model_id, model, text, model.predict(text))


# compare ---------------------------------------------------------------------------------------


def test_compare_difference_is_first_minus_second_at_the_chosen_head(tiny):
    subject = subject_of(tiny)
    d = compare.data(subject, Settings.of({"text2": OTHER}, layer=1, head=2))
    second = tiny.predict(OTHER)
    np.testing.assert_array_equal(d.first.weights, subject.prediction.attentions[0, 1])
    np.testing.assert_array_equal(d.second.weights, second.attentions[0, 1])
    np.testing.assert_array_equal(d.difference.weights, subject.prediction.attentions[0, 1] - second.attentions[0, 1])
    # Tokens that differ are named by both texts; shared ones once.
    assert d.difference.source == ("the", "good/bad", "movie/plot")
    tables = compare.rows(d)
    assert list(tables) == ["compare-first", "compare-second", "compare-difference"]
    assert tables["compare-second"].meta == {"layer": 1, "head": 2, "second_text": OTHER}
    np.testing.assert_array_equal(tables["compare-difference"].weights, d.difference.weights)


def test_compare_texts_of_different_lengths_have_no_difference(tiny):
    d = compare.data(subject_of(tiny), Settings.of({"text2": "great plot"}))
    assert d.difference is None
    assert d.second.source == ("great", "plot")
    assert list(compare.rows(d)) == ["compare-first", "compare-second"]
    assert len(compare.figure(d, Settings(), Style()).data) == 2


def test_compare_says_when_the_model_cannot_read_the_second_text(tiny):
    with pytest.raises(LensError):
        compare.data(subject_of(tiny), Settings.of({"text2": "   "}))


# attribution -----------------------------------------------------------------------------------


def test_attribution_rows_are_the_attribute_scores_and_the_faithfulness_table(tiny):
    subject = subject_of(tiny)
    d = attribution.data(subject, Settings.of({"target": 0, "steps": 32}))
    expected = attribute(tiny, TEXT, steps=32)
    tables = attribution.rows(d)
    scores = tables["attribution-scores"]
    assert (
        scores.rows
        == tuple(expected.scores)
        == ("attention", "rollout", "flow", "attention_x_gradient", "gradient_x_input", "integrated_gradients", "occlusion")
    )
    assert scores.columns == expected.tokens
    np.testing.assert_allclose(scores.weights, np.stack(list(expected.scores.values())), atol=1e-6)
    # The predicted class is explained when the field is 0.
    assert d.attributions.target == int(np.argmax(subject.prediction.probs))
    faithfulness = tables["attribution-faithfulness"]
    reference = faithfulness_table(tiny, TEXT, expected)
    assert faithfulness.rows == tuple(row["method"] for row in reference)
    np.testing.assert_allclose(faithfulness.weights, [[row["comprehensiveness"], row["sufficiency"]] for row in reference], atol=1e-6)


def test_attribution_explains_the_class_picked_and_the_predicted_one_for_an_unknown_field(tiny):
    subject = subject_of(tiny)
    predicted = int(np.argmax(subject.prediction.probs))
    other = 1 - predicted
    assert attribution.data(subject, Settings.of({"target": other + 1, "steps": 32})).attributions.target == other
    # A link may name a class this model does not have: the predicted one is explained.
    assert attribution.data(subject, Settings.of({"target": 9, "steps": 32})).attributions.target == predicted


def test_attribution_stages_merge_into_the_data(tiny):
    subject = subject_of(tiny)
    parts = [attribution.stage(subject, 0, 32, False, methods) for methods in attribution.STAGES]
    assert [list(part.scores) for part in parts] == [
        ["attention", "rollout", "flow", "attention_x_gradient", "gradient_x_input"],
        ["integrated_gradients"],
        ["occlusion"],
    ]
    whole = attribution.data(subject, Settings.of({"target": 0, "steps": 32})).attributions
    for part in parts:
        for name, values in part.scores.items():
            np.testing.assert_allclose(whole.scores[name], values, atol=1e-6)


# ablation --------------------------------------------------------------------------------------


def test_ablation_data_compares_predict_with_the_heads_switched_off(tiny):
    subject = subject_of(tiny)
    # Head 5:1 is beyond this model (a link for another one): it is left out.
    d = ablation.data(subject, Settings.of({"ablate": frozenset({(1, 2), (5, 1)}), "uniform": False}))
    assert d.heads_off == frozenset({(0, 1)})
    np.testing.assert_array_equal(d.original, tiny.predict(TEXT).probs)
    np.testing.assert_array_equal(d.ablated, predict_with_heads_off(tiny, TEXT, frozenset({(0, 1)})).probs)
    assert not np.allclose(d.ablated, d.original)
    np.testing.assert_allclose(d.heads.effects, single_head_effects(tiny, TEXT), atol=1e-7)
    np.testing.assert_allclose(d.heads.importance, head_importance(tiny, TEXT), atol=1e-6)
    tables = ablation.rows(d)
    np.testing.assert_array_equal(tables["ablation-probabilities"].weights, [d.original, d.ablated])
    assert tables["ablation-probabilities"].columns == tiny.labels
    assert tables["ablation-probabilities"].meta["heads_off"] == "1:2"
    assert tables["ablation-single-head-effects"].rows == ("layer 1",)
    assert tables["ablation-single-head-effects"].columns == ("head 1", "head 2")
    # The grid's first map shows which heads are on.
    on = ablation.figure(d, Settings(layer=1, head=1), Style()).data[0].z
    np.testing.assert_array_equal(on, [[1.0, 0.0]])


def test_nothing_switched_off_leaves_the_probabilities_as_predicted(tiny):
    d = ablation.data(subject_of(tiny), Settings.of({"ablate": frozenset(), "uniform": False}))
    np.testing.assert_array_equal(d.ablated, d.original)


@pytest.fixture(scope="module")
def rnn():
    return registry.load("bahdanau-rnn")


def test_rnn_ablation_is_uniform_attention_over_the_words(rnn):
    text = "Oil prices climb to record high"
    subject = subject_of(rnn, text)
    d = ablation.data(subject, Settings.of({"ablate": frozenset({(1, 1)}), "uniform": True}))
    assert d.heads is None and d.heads_off == frozenset()
    np.testing.assert_array_equal(d.original, subject.prediction.probs)
    np.testing.assert_array_equal(d.ablated, predict_with_heads_off(rnn, text, frozenset(), uniform=True).probs)
    learned, uniform = d.attention.weights
    np.testing.assert_array_equal(learned, subject.prediction.attentions[0, 0, 0])
    np.testing.assert_allclose(uniform, np.full(len(learned), 1.0 / len(learned)), rtol=1e-6)
    assert list(ablation.rows(d)) == ["ablation-probabilities"]


# norms -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    return registry.load("minilm-agnews")


@pytest.mark.slow
def test_norms_data_is_value_aware_composed_then_merged_into_words(minilm):
    text = "Nvidia unveils faster graphics chips"
    subject = subject_of(minilm, text)
    found = value_aware(minilm, text)
    assert found.tokens == subject.prediction.source_tokens
    d = norms.data(subject, Settings(words=True, hide_special=True))
    groups = word_groups(found.tokens, found.special, minilm.subword_scheme)
    assert len(groups) < len(found.tokens)  # the text has word pieces, so merging shows
    merged_special = [all(found.special[i] for i in group) for group in groups]
    keep = [i for i, special in enumerate(merged_special) if not special]

    def shown(matrix):
        return merge_subwords(matrix, groups, groups)[..., keep, :][..., keep]

    np.testing.assert_allclose(d.alti, shown(found.alti_rollout), atol=1e-6)
    np.testing.assert_allclose(d.head_norms, shown(found.head_norms), atol=1e-5)
    np.testing.assert_allclose(d.layer_norms, shown(found.layer_norms), atol=1e-5)
    np.testing.assert_allclose(d.weights, shown(subject.prediction.attentions), atol=1e-6)
    assert d.source == display(subject, Settings(words=True, hide_special=True), subject.prediction.attentions).source
    assert "[CLS]" not in d.source
    # Export: one layer and head as plain matrices; the figure draws the same four.
    tables = norms.rows(norms.at(d, 3, 4))
    assert list(tables) == ["norms-weights", "norms-head_norm", "norms-layer_norm", "norms-alti"]
    assert tables["norms-alti"].meta == {"layer": 3, "head": 4}
    np.testing.assert_array_equal(tables["norms-head_norm"].weights, d.head_norms[2, 3])
    np.testing.assert_array_equal(tables["norms-alti"].weights, d.alti[2])
    drawn = norms.figure(d, Settings(layer=3, head=4), Style())
    np.testing.assert_allclose(np.asarray(drawn.data[3].z, dtype=np.float32), d.alti[2], atol=1e-6)


# applies ---------------------------------------------------------------------------------------


def test_only_applies_says_a_view_does_not_apply(tiny):
    prediction = tiny.predict(TEXT)
    ok, reason = norms.applies(prediction, tiny)
    assert not ok and reason == supports_value_aware(tiny)
    for view in (compare, attribution, ablation):
        assert view.applies(prediction, tiny) == (True, "")

    class Writer:
        """A text generator: no classes, no embeddings, no heads to switch off."""

        model_id = "writer"
        labels = ()

    generated = Prediction(
        model="writer", labels=(), probs=np.zeros(0), source_tokens=("a",), target_tokens=("b",), attentions=np.ones((1, 1, 1, 1)), output="b"
    )
    assert attribution.applies(generated, Writer()) == (False, "Attributions explain a classifier's class probabilities; this model generates text.")
    assert ablation.applies(generated, Writer()) == (False, "Switching attention off is shown for classifiers; this model generates text.")


# render: each view on a page of its own, with the tiny classifier --------------------------------


def _tiny_page(view_key: str, fields: dict) -> None:
    import streamlit as st

    from tests.helpers.tiny_models import TinyAttentionClassifier
    from views import BY_KEY, state
    from views.context import ViewContext
    from views.spec import Subject

    state.load()
    if "_fields_set" not in st.session_state:
        st.session_state.update(fields, _fields_set=True)
    model, text = TinyAttentionClassifier(), "the good movie"
    prediction = model.predict(text)
    view = BY_KEY[view_key]
    view.render(ViewContext(Subject(model.model_id, model, text, prediction), prediction, view))


def tiny_page(view_key: str, **fields) -> AppTest:
    return AppTest.from_function(_tiny_page, default_timeout=TIMEOUT, kwargs={"view_key": view_key, "fields": fields}).run()


def test_norms_shows_a_failed_rebuild_as_an_error_on_the_page():
    # value_aware refuses the tiny model: the page shows its message and carries on.
    at = tiny_page("norms")
    assert not at.exception
    assert at.error[0].value == supports_value_aware(TinyAttentionClassifier())


def test_compare_shows_an_unreadable_second_text_as_a_message():
    at = tiny_page("compare", text2="x" * 20_001)
    assert not at.exception
    assert "20,000" in at.error[0].value
    at = tiny_page("compare", text2=OTHER)
    assert not at.exception and not at.error
    assert [button.label for button in at.get("download_button")][:2] == ["compare-first as CSV", "compare-first as JSON"]


def test_ablation_keep_only_one_head_switches_the_others_off():
    at = tiny_page("ablation")
    assert not at.exception
    at.button(key="keep-only").click().run()
    assert not at.exception
    assert at.session_state["ablate"] == frozenset({(1, 2)})  # the chosen head is 1:1
    assert any("1 of 2 heads off" in str(chart.proto.spec) for chart in at.get("plotly_chart"))


def test_attribution_page_draws_every_stage_and_the_faithfulness_table():
    at = tiny_page("attribution", steps=64)
    assert not at.exception
    assert at.session_state["steps"] == 64
    table = at.dataframe[0].value
    assert len(table) == 7
