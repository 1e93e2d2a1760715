"""Figure builders: orientation as in Bahdanau et al. Fig. 3, fixed 0..1 range, literal labels."""

import numpy as np
import pytest

from viz import COLOUR_SCHEMES, alignment_heatmap, head_grid, probability_bars
from viz.labels import MAX_LABELS_PER_AXIS, tick_labels


def test_heatmap_puts_sources_on_top_and_queries_down_the_left():
    weights = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
    figure = alignment_heatmap(weights, ["the", "cat", "sat"], ["le", "chat"])
    heatmap = figure.data[0]
    np.testing.assert_array_equal(np.asarray(heatmap.z), weights)
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 1.0)
    assert figure.layout.xaxis.side == "top"
    assert figure.layout.yaxis.autorange == "reversed"  # row 0 (first query) at the top
    assert list(figure.layout.xaxis.ticktext) == ["the", "cat", "sat"]
    assert list(figure.layout.yaxis.ticktext) == ["le", "chat"]
    # Hover names the query (row) and key (column) of each cell.
    assert tuple(heatmap.customdata[1][2]) == ("chat", "sat")
    assert "%{z:.4f}" in heatmap.hovertemplate


def test_repeated_tokens_keep_their_own_columns():
    tokens = ["the", "cat", "saw", "the", "dog"]
    figure = alignment_heatmap(np.eye(5), tokens, tokens)
    assert list(figure.data[0].x) == [0, 1, 2, 3, 4]
    assert list(figure.layout.xaxis.tickvals) == [0, 1, 2, 3, 4]


def test_grayscale_runs_from_black_at_zero_to_white_at_one():
    figure = alignment_heatmap(np.ones((1, 1)), ["a"], ["b"], scheme="grayscale")
    scale = figure.data[0].colorscale
    assert scale[0][0] == 0.0 and scale[0][1] == "black"
    assert scale[-1][0] == 1.0 and scale[-1][1] == "white"
    assert COLOUR_SCHEMES["grayscale"] is not COLOUR_SCHEMES["colour"]


def test_markup_in_tokens_is_shown_literally():
    figure = alignment_heatmap(np.ones((1, 2)) / 2, ["<script>", "&"], ["<b>"])
    assert list(figure.layout.xaxis.ticktext) == ["&lt;script&gt;", "&amp;"]
    assert figure.data[0].customdata[0][0][0] == "&lt;b&gt;"


def test_long_inputs_thin_labels_rotate_them_and_grow_the_figure():
    n = 300
    tokens = [f"w{i}" for i in range(n)]
    weights = np.full((n, n), 1 / n)
    figure = alignment_heatmap(weights, tokens, tokens)
    assert len(figure.layout.xaxis.tickvals) <= MAX_LABELS_PER_AXIS
    assert figure.layout.xaxis.tickangle == -60
    assert figure.layout.height > alignment_heatmap(weights[:5, :5], tokens[:5], tokens[:5]).layout.height


def test_character_labels_stay_upright():
    chars = list("3 March 2015")
    assert alignment_heatmap(np.full((1, len(chars)), 1 / len(chars)), chars, ["2"]).layout.xaxis.tickangle == 0


def test_tick_labels_shorten_overlong_tokens():
    _, labels = tick_labels(["x" * 200])
    assert len(labels[0]) <= 18 and labels[0].endswith("…")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="do not match"):
        alignment_heatmap(np.ones((2, 2)), ["a"], ["b", "c"])


def test_head_grid_has_one_panel_per_layer_and_head():
    attentions = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3, 4))
    figure = head_grid(attentions, list("abcd"), list("abcd"), selected=(1, 2))
    assert len(figure.data) == 6
    assert sum(trace.showscale for trace in figure.data) == 1
    np.testing.assert_allclose(np.asarray(figure.data[5].z), attentions[1, 2])
    assert "layer 2, head 3" in figure.data[5].hovertemplate


def test_probability_bars_fixed_range_and_highlight():
    figure = probability_bars(["World", "Sports"], np.array([0.3, 0.7]))
    bar = figure.data[0]
    assert list(bar.y) == ["World", "Sports"]
    assert list(figure.layout.xaxis.range) == [0.0, 1.08]
    assert bar.marker.color[1] != bar.marker.color[0]
    assert list(bar.text) == ["30.0%", "70.0%"]


def test_stretch_maps_the_largest_weight_to_the_top_colour():
    weights = np.array([[0.2, 0.3, 0.5]])
    fixed = alignment_heatmap(weights, list("abc"), ["q"]).data[0]
    stretched = alignment_heatmap(weights, list("abc"), ["q"], stretch=True).data[0]
    assert (fixed.zmin, fixed.zmax) == (0.0, 1.0)
    assert (stretched.zmin, stretched.zmax) == (0.0, 0.5)
    assert "stretched" in stretched.colorbar.title.text
