"""Overview, head statistics, rollout, flow and head view on the view protocol (views/spec.py).

Each view's ``data`` is checked against the maths it stands for, on a hand-built prediction with
word pieces and special tokens, so merging and hiding are exercised: composition first, over the
model's own tokens, then merging for display.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
from scipy.stats import spearmanr

from models.contract import Prediction
from models.maths.flow import attention_flow
from models.maths.head_stats import head_statistics
from models.maths.rollout import attention_rollout
from models.maths.tokens import merge_prediction, merge_subwords, word_groups
from views import flow, headview, overview, rollout, stats
from views.spec import Settings, Style, Subject

TOKENS = ("[CLS]", "play", "##ing", "chess", "now", "[SEP]")
SPECIAL = (True, False, False, False, False, True)
# [CLS] | play ##ing | chess | now | [SEP]
GROUPS = ((0,), (1, 2), (3,), (4,), (5,))
ORDINARY_WORDS = [1, 2, 3]  # positions of "playing", "chess", "now" among the merged words
LAYERS, HEADS = 3, 2


def random_attention(seed: int = 0, layers: int = LAYERS, heads: int = HEADS, size: int = len(TOKENS)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(size, 0.5), size=(layers, heads, size)).astype(np.float32)


def subject(attentions: np.ndarray | None = None, *, self_attention: bool = True) -> Subject:
    attentions = random_attention() if attentions is None else attentions
    prediction = Prediction(
        model="tiny",
        labels=("a", "b"),
        probs=np.array([0.25, 0.75]),
        source_tokens=TOKENS,
        target_tokens=TOKENS,
        attentions=attentions,
        source_special=SPECIAL,
        target_special=SPECIAL,
        self_attention=self_attention,
        readout="first",
    )
    return Subject("tiny", SimpleNamespace(subword_scheme="wordpiece"), "playing chess now", prediction)


def settings(view, layer: int = 1, head: int = 1, words: bool = False, hide_special: bool = False, **fields) -> Settings:
    values = {field.name: field.default for field in view.FIELDS} | fields
    return Settings.of(values, layer=layer, head=head, words=words, hide_special=hide_special)


def as_words(matrix: np.ndarray) -> np.ndarray:
    return merge_subwords(matrix, GROUPS, GROUPS)


def test_the_hand_built_groups_are_the_wordpiece_groups():
    assert word_groups(TOKENS, SPECIAL, "wordpiece") == GROUPS


# Rollout ---------------------------------------------------------------------------------------


def test_rollout_composes_the_model_tokens_then_merges_words():
    s = subject()
    d = rollout.data(s, settings(rollout, layer=3, words=True))
    expected = as_words(attention_rollout(s.prediction.attentions)[2])
    np.testing.assert_allclose(d.shown.weights, expected, rtol=1e-5, atol=1e-7)
    assert d.shown.source == d.shown.target == ("[CLS]", "playing", "chess", "now", "[SEP]")
    # Rolling out the merged attention composes matrices the model never applied: a different answer.
    merged_first = attention_rollout(as_words(s.prediction.attentions))[2]
    assert np.abs(merged_first - expected).max() > 1e-3


def test_rollout_hides_special_tokens_after_merging_without_renormalising():
    s = subject()
    d = rollout.data(s, settings(rollout, layer=2, words=True, hide_special=True))
    full = as_words(attention_rollout(s.prediction.attentions)[1])
    np.testing.assert_allclose(d.shown.weights, full[np.ix_(ORDINARY_WORDS, ORDINARY_WORDS)], rtol=1e-5, atol=1e-7)
    assert d.shown.source == ("playing", "chess", "now") and d.layer == 2


def test_rollout_figure_and_rows():
    d = rollout.data(subject(), settings(rollout, layer=3, words=True))
    fig = rollout.figure(d, settings(rollout, layer=3), Style())
    assert isinstance(fig, go.Figure) and fig.layout.title.text == "Rollout through layers 1-3"
    (table,) = rollout.rows(d).values()
    assert table.weights.shape == (len(table.rows), len(table.columns)) and table.meta == {"layer": 3}


def test_rollout_applies_to_what_the_model_calls_self_attention_not_to_equal_tokens():
    assert rollout.applies(subject().prediction, None) == (True, "")
    applies, reason = rollout.applies(subject(self_attention=False).prediction, None)
    assert not applies and "not self-attention" in reason
    applies, reason = rollout.applies(subject(random_attention(layers=1)).prediction, None)
    assert not applies and "single attention layer" in reason


def test_only_special_tokens_left_gives_empty_data():
    only_special = Prediction(
        model="tiny",
        labels=("a", "b"),
        probs=np.array([0.5, 0.5]),
        source_tokens=("[CLS]", "[SEP]"),
        target_tokens=("[CLS]", "[SEP]"),
        attentions=random_attention(size=2),
        source_special=(True, True),
        target_special=(True, True),
        self_attention=True,
        readout="first",
    )
    s = Subject("tiny", SimpleNamespace(subword_scheme="wordpiece"), "", only_special)
    for view, d in (
        (rollout, rollout.data(s, settings(rollout, layer=2, hide_special=True))),
        (overview, overview.data(s, settings(overview, hide_special=True))),
        (headview, headview.data(s, settings(headview, hide_special=True))),
        (flow, flow.data(s, settings(flow, layer=2, hide_special=True))),
    ):
        assert (d.rollout if view is flow else d.shown).empty
        # What the render command checks before it writes a file: every table is empty.
        assert all(np.size(table.weights) == 0 for table in view.rows(d).values())


# Flow ------------------------------------------------------------------------------------------


def test_flow_of_a_word_is_the_mean_of_its_pieces_rows_then_merged_and_hidden():
    s = subject()
    calls = []
    d = flow.data(s, settings(flow, layer=3, words=True, hide_special=True, query=2), progress=lambda done, total: calls.append((done, total)))
    pieces = [1, 2]  # "play ##ing", the second shown word
    rolled = attention_rollout(s.prediction.attentions)[2][pieces].mean(axis=0)
    flowed = attention_flow(s.prediction.attentions, pieces, 3).mean(axis=0)
    columns = [[rolled[0], rolled[1] + rolled[2], rolled[3], rolled[4], rolled[5]] for rolled in (rolled, flowed)]
    visible = np.array(columns)[:, ORDINARY_WORDS]
    np.testing.assert_allclose(d.rollout.weights, visible[:1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d.flow.weights, visible[1:], rtol=1e-4, atol=1e-6)
    assert d.token == "playing" and d.query == 2 and d.layer == 3
    assert d.rollout.source == ("playing", "chess", "now") and d.rollout.target == ("playing",)
    # ρ over the visible columns, the values drawn and exported.
    assert d.rho == pytest.approx(spearmanr(d.rollout.weights[0], d.flow.weights[0]).statistic)
    # Three layers need one maximum flow per (input token, query piece), each reported.
    assert calls[-1] == (len(pieces) * len(TOKENS), len(pieces) * len(TOKENS))


def test_flow_rho_is_over_the_visible_columns_only():
    s = subject(random_attention(seed=3))
    shown = flow.data(s, settings(flow, layer=3, query=4))
    hidden = flow.data(s, settings(flow, layer=3, query=4, hide_special=True))
    assert shown.rho == pytest.approx(spearmanr(shown.rollout.weights[0], shown.flow.weights[0]).statistic)
    assert hidden.rho == pytest.approx(spearmanr(shown.rollout.weights[0, 1:-1], shown.flow.weights[0, 1:-1]).statistic)
    assert hidden.rho != pytest.approx(shown.rho)  # on this example the choice of columns matters


def test_flow_query_is_clamped_to_the_shown_tokens_and_through_one_layer_equals_rollout():
    s = subject()
    d = flow.data(s, settings(flow, layer=1, words=True, query=99))
    assert d.query == 5 and d.token == "[SEP]"
    # Through one layer both are the layer's mixing row: identical, perfectly rank-correlated.
    np.testing.assert_allclose(d.flow.weights, d.rollout.weights, rtol=1e-5)
    assert d.rho == pytest.approx(1.0)


def test_flow_figure_and_rows():
    d = flow.data(subject(), settings(flow, layer=2, words=True, query=3))
    fig = flow.figure(d, settings(flow, layer=2), Style())
    assert isinstance(fig, go.Figure) and fig.layout.title.text == "What reaches “chess” by layer 2"
    (table,) = flow.rows(d).values()
    assert table.weights.shape == (len(table.rows), len(table.columns)) == (2, 5)
    assert table.rows == ("rollout", "flow") and table.meta["query"] == 3 and table.meta["spearman"] == pytest.approx(d.rho)


# Head statistics --------------------------------------------------------------------------------


def test_stats_are_head_statistics_of_the_attention_as_drawn():
    s = subject()
    raw = stats.data(s, settings(stats))
    expected = head_statistics(s.prediction.attentions, SPECIAL, SPECIAL, self_attention=True)
    assert list(raw.stats) == list(expected)
    for key in expected:
        np.testing.assert_allclose(raw.stats[key], expected[key], rtol=1e-6)
    words = merge_prediction(s.prediction, "wordpiece")
    merged = stats.data(s, settings(stats, words=True))
    expected_words = head_statistics(words.attentions, words.source_special, words.target_special, self_attention=True)
    for key in expected_words:
        np.testing.assert_allclose(merged.stats[key], expected_words[key], rtol=1e-6)
    assert not np.allclose(merged.stats["previous"], raw.stats["previous"])


def test_stats_trust_the_contract_on_self_attention_not_equal_tokens():
    d = stats.data(subject(self_attention=False), settings(stats))
    assert np.isnan(d.stats["distance"]).all() and np.isnan(d.stats["previous"]).all()
    assert np.isfinite(d.stats["entropy"]).all()


def test_stats_figure_outlines_the_chosen_head_and_rows_list_every_head():
    d = stats.data(subject(), settings(stats))
    first = stats.figure(d, settings(stats, layer=1, head=1), Style())
    chosen = stats.figure(d, settings(stats, layer=3, head=2), Style())
    assert isinstance(chosen, go.Figure)
    outline = chosen.layout.shapes[0]
    assert (outline.x0, outline.y0) == (1.5, 2.5) and (first.layout.shapes[0].x0, first.layout.shapes[0].y0) == (0.5, 0.5)
    (table,) = stats.rows(d).values()
    assert table.weights.shape == (len(table.rows), len(table.columns)) == (LAYERS * HEADS, 7)
    assert table.rows[3] == "L2H2"
    np.testing.assert_allclose(table.weights[3, table.columns.index("entropy")], d.stats["entropy"][1, 1])


# Overview --------------------------------------------------------------------------------------


def test_overview_shows_every_head_merged_and_hidden():
    s = subject()
    d = overview.data(s, settings(overview, words=True, hide_special=True))
    expected = as_words(s.prediction.attentions)[..., ORDINARY_WORDS, :][..., ORDINARY_WORDS]
    np.testing.assert_allclose(d.shown.weights, expected, rtol=1e-5, atol=1e-7)
    tables = overview.rows(d)
    assert len(tables) == LAYERS * HEADS
    assert all(t.weights.shape == (len(t.rows), len(t.columns)) for t in tables.values())
    np.testing.assert_allclose(tables["L3H2"].weights, expected[2, 1], rtol=1e-6)


def test_overview_outlines_the_head_in_the_settings():
    d = overview.data(subject(), settings(overview))
    first = overview.figure(d, settings(overview, layer=1, head=1), Style())
    chosen = overview.figure(d, settings(overview, layer=2, head=2), Style())
    assert isinstance(chosen, go.Figure)
    assert chosen.layout.shapes[0].x0 > first.layout.shapes[0].x0 and chosen.layout.shapes[0].y0 > first.layout.shapes[0].y0


# Head view -------------------------------------------------------------------------------------


def test_headview_rows_are_the_mean_of_the_shown_heads():
    s = subject()
    layer = s.prediction.attentions[1]
    visible = as_words(layer)[:, ORDINARY_WORDS][..., ORDINARY_WORDS]
    every = headview.data(s, settings(headview, layer=2, words=True, hide_special=True))
    assert every.heads == (0, 1)
    np.testing.assert_allclose(headview.rows(every)["headview"].weights, visible.mean(axis=0), rtol=1e-5, atol=1e-7)
    # Head 7 does not exist and is ignored; head 2 alone is its own matrix.
    second = headview.data(s, settings(headview, layer=2, words=True, hide_special=True, heads=(2, 7)))
    table = headview.rows(second)["headview"]
    np.testing.assert_allclose(table.weights, visible[1], rtol=1e-5, atol=1e-7)
    assert table.weights.shape == (len(table.rows), len(table.columns)) and table.meta == {"layer": 2, "heads": [2]}


def test_headview_data_ignores_what_only_the_figure_uses():
    s = subject()
    full = settings(headview, layer=2, heads=(2, 1), threshold=0.5, focus=3)
    a, b = headview.data(s, full), headview.data(s, headview.data_settings(full))
    assert a.heads == b.heads == (0, 1) and np.array_equal(a.shown.weights, b.shown.weights)


def test_headview_figure_draws_the_threshold_and_focus_of_the_settings():
    s = subject()
    d = headview.data(s, settings(headview))
    assert isinstance(headview.figure(d, settings(headview), Style()), go.Figure)
    assert headview.figure_and_hidden(d, settings(headview, threshold=0.0))[1] == 0
    weights = d.shown.weights
    assert headview.figure_and_hidden(d, settings(headview, threshold=0.2))[1] == int(((weights > 0) & (weights < 0.2)).sum())
    # Focused on the second token, only its lines are drawn, and only its weak ones are hidden.
    focused = weights[:, 1]
    assert headview.figure_and_hidden(d, settings(headview, threshold=0.2, focus=2))[1] == int(((focused > 0) & (focused < 0.2)).sum())
    assert headview.focus_row(d, settings(headview, focus=2)) == 1
    assert headview.focus_row(d, settings(headview, focus=99)) is None and headview.focus_row(d, settings(headview, focus=0)) is None


def test_a_clicked_token_focuses_the_panel_it_was_clicked_in(monkeypatch):
    session: dict = {}
    monkeypatch.setattr(headview, "st", SimpleNamespace(session_state=session))
    monkeypatch.setattr(headview, "clicked", lambda chart_key: ["target", 2])
    headview._focus_clicked_token("b.chart-headview", "b")
    headview._focus_clicked_token("chart-headview", "")
    assert session == {"b.focus": 3, "focus": 3}
