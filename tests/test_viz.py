"""Heatmaps as the user sees them: Bahdanau et al. Fig. 3 orientation, fixed scales, literal labels, light at 512 tokens."""

import json

import numpy as np
import plotly.io as pio
import pytest

from viz import COLOUR_SCHEMES, Panel, alignment_heatmap, heatmap_panels, probability_bars
from viz.colours import colourscale, lookup_table, paint
from viz.heatmap import AUTO_STRETCH_BELOW, COLOUR_BAR_MIN_PX, value_range
from viz.labels import TokenAxis, ordinal, position_labels

MIB = 1024 * 1024
SENTENCE = ["the", "cat", "saw", "the", "dog", "and", "the", "bird"]


def test_heatmap_puts_sources_on_top_and_queries_down_the_left():
    weights = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
    figure = alignment_heatmap(weights, ["the", "cat", "sat"], ["le", "chat"])
    heatmap = figure.data[0]
    np.testing.assert_allclose(np.asarray(heatmap.z), weights, rtol=1e-6)
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 1.0)
    assert figure.layout.xaxis.side == "top"
    assert figure.layout.yaxis.autorange == "reversed"  # row 0 (first query) at the top
    assert list(figure.layout.xaxis.ticktext) == ["the", "cat", "sat"]
    assert list(figure.layout.yaxis.ticktext) == ["le", "chat"]


def test_hover_names_both_tokens_through_the_axes_without_a_string_per_cell():
    figure = alignment_heatmap(np.full((2, 3), 1 / 3), ["the", "cat", "sat"], ["le", "chat"])
    heatmap = figure.data[0]
    # Cell (1, 2) hovers as its row and column category names: "2 · chat" → "3 · sat".
    assert list(heatmap.y) == ["1 · le", "2 · chat"]
    assert list(heatmap.x) == ["1 · the", "2 · cat", "3 · sat"]
    assert "%{y}" in heatmap.hovertemplate and "%{x}" in heatmap.hovertemplate and "%{z:.4f}" in heatmap.hovertemplate
    assert heatmap.customdata is None and heatmap.text is None
    assert figure.layout.xaxis.type == "category" and figure.layout.yaxis.type == "category"


def test_repeated_tokens_keep_their_own_columns():
    figure = alignment_heatmap(np.eye(8), SENTENCE, SENTENCE)
    heatmap = figure.data[0]
    assert len(set(heatmap.x)) == 8 and len(set(heatmap.y)) == 8
    assert list(figure.layout.xaxis.ticktext) == SENTENCE
    assert list(figure.layout.xaxis.tickvals) == list(heatmap.x)


def test_grayscale_runs_from_black_at_zero_to_white_at_one():
    figure = alignment_heatmap(np.ones((1, 1)), ["a"], ["b"], scheme="grayscale")
    scale = figure.data[0].colorscale
    assert tuple(scale[0]) == (0.0, "black")
    assert tuple(scale[-1]) == (1.0, "white")


def test_colour_scheme_is_viridis_from_purple_to_yellow():
    scale = alignment_heatmap(np.ones((1, 1)), ["a"], ["b"]).data[0].colorscale
    assert tuple(scale[0]) == (0.0, "#440154") and tuple(scale[-1]) == (1.0, "#fde725")


def test_unknown_scheme_is_an_error():
    with pytest.raises(ValueError, match="unknown colour scheme"):
        alignment_heatmap(np.ones((1, 1)), ["a"], ["b"], scheme="rainbow")


def test_markup_in_tokens_is_shown_literally():
    figure = alignment_heatmap(np.ones((1, 2)) / 2, ["<script>", "&"], ["<b>"])
    assert list(figure.layout.xaxis.ticktext) == ["&lt;script&gt;", "&amp;"]
    assert list(figure.data[0].x) == ["1 · &lt;script&gt;", "2 · &amp;"]
    assert list(figure.data[0].y) == ["1 · &lt;b&gt;"]


def test_title_markup_is_shown_literally():
    figure = alignment_heatmap(np.ones((1, 1)), ["a"], ["b"], title="<i>mine</i>")
    assert figure.layout.title.text == "&lt;i&gt;mine&lt;/i&gt;"


def test_long_inputs_thin_labels_rotate_them_and_grow_the_figure():
    n = 300
    tokens = [f"w{i}" for i in range(n)]
    weights = np.full((n, n), 1 / n)
    figure = alignment_heatmap(weights, tokens, tokens)
    shown = list(figure.layout.xaxis.ticktext)
    step = tokens.index(shown[1])
    assert step > 1 and shown == tokens[::step]
    assert figure.layout.xaxis.title.text == f"source (keys), every {ordinal(step)} token labelled"
    assert len(figure.data[0].x) == n  # thinning touches the labels, never the cells
    assert figure.layout.xaxis.tickangle == -60
    assert figure.layout.height > alignment_heatmap(weights[:5, :5], tokens[:5], tokens[:5]).layout.height


def test_character_labels_stay_upright():
    chars = list("3 March 2015")
    figure = alignment_heatmap(np.full((1, len(chars)), 1 / len(chars)), chars, ["2"])
    assert figure.layout.xaxis.tickangle == 0
    assert len(set(figure.data[0].x)) == len(chars)  # the two spaces and two 1s stay apart


def test_tick_labels_shorten_overlong_tokens():
    labels = TokenAxis.of(["x" * 200]).ticks(900).texts
    assert len(labels[0]) <= 18 and labels[0].endswith("…")
    assert position_labels(["x" * 200])[0].endswith("…")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="do not match"):
        alignment_heatmap(np.ones((2, 2)), ["a"], ["b", "c"])


def test_stretch_maps_the_largest_weight_to_the_top_colour():
    weights = np.array([[0.2, 0.3, 0.5]])
    fixed = alignment_heatmap(weights, list("abc"), ["q"], scale="fixed").data[0]
    stretched = alignment_heatmap(weights, list("abc"), ["q"], scale="stretch").data[0]
    assert (fixed.zmin, fixed.zmax) == (0.0, 1.0)
    assert (stretched.zmin, stretched.zmax) == (0.0, 0.5)
    assert "stretched" in stretched.colorbar.title.text


# A near-uniform head over 8 tokens (the keras transformer's: about 1/8 everywhere) and a sharp one.
DIFFUSE = np.array([[0.12, 0.13, 0.125, 0.125, 0.12, 0.13, 0.125, 0.125], [0.10, 0.15, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125]])
SHARP = np.array([[0.9, 0.05, 0.05], [0.2, 0.6, 0.2]])


def test_value_range_of_each_scale_on_a_diffuse_and_a_sharp_matrix():
    assert AUTO_STRETCH_BELOW == 0.3
    assert value_range(DIFFUSE, scale="auto") == (0.0, 0.15)  # largest 0.15 < 0.3: stretched
    assert value_range(SHARP, scale="auto") == (0.0, 1.0)  # largest 0.9: the paper's scale
    assert value_range(DIFFUSE, scale="fixed") == value_range(SHARP, scale="fixed") == (0.0, 1.0)
    assert value_range(DIFFUSE, scale="stretch") == (0.0, 0.15)
    assert value_range(SHARP, scale="stretch") == (0.0, 0.9)
    # The boundary: 0.3 itself is not under 0.3; just below it is.
    assert value_range(np.array([[0.3, 0.2]]), scale="auto") == (0.0, 1.0)
    assert value_range(np.array([[0.29, 0.2]]), scale="auto") == (0.0, 0.29)
    # Nothing to stretch (every weight hidden or zero): 0..1 whatever the scale.
    assert value_range(np.zeros((2, 2)), scale="auto") == value_range(np.zeros((2, 2)), scale="stretch") == (0.0, 1.0)
    # Signed maps ignore the scale: symmetric around 0 on the largest |value|.
    assert value_range(np.array([[0.1, -0.2]]), scale="fixed", signed=True) == (-0.2, 0.2)
    with pytest.raises(ValueError, match="colour scale"):
        value_range(SHARP, scale="log")


def colour_bar(trace) -> tuple[str, list[float], list[str]]:
    bar = trace.colorbar
    return bar.title.text, list(bar.tickvals), list(bar.ticktext)


def test_colour_bar_title_and_ticks_state_the_range_drawn():
    tokens = [f"w{i}" for i in range(8)]
    auto = alignment_heatmap(DIFFUSE, tokens, ["a", "b"]).data[0]  # "auto" is the default
    assert (auto.zmin, auto.zmax) == (0.0, 0.15)
    title, values, text = colour_bar(auto)
    assert title == "weight (auto-stretched)"
    np.testing.assert_allclose(values, [0.0, 0.075, 0.15])
    assert text == ["0", "0.075", "0.15"]  # the top tick is the matrix's own largest weight, not 1
    stretched = alignment_heatmap(SHARP, list("xyz"), ["a", "b"], scale="stretch").data[0]
    assert colour_bar(stretched) == ("weight (stretched)", [0.0, 0.45, 0.9], ["0", "0.45", "0.9"])
    for scale in ("auto", "fixed"):
        fixed = alignment_heatmap(SHARP, list("xyz"), ["a", "b"], scale=scale).data[0]
        assert colour_bar(fixed) == ("weight", [0.0, 0.5, 1.0], ["0", "0.5", "1"])
    fixed_diffuse = alignment_heatmap(DIFFUSE, tokens, ["a", "b"], scale="fixed").data[0]
    assert (fixed_diffuse.zmax, colour_bar(fixed_diffuse)[0]) == (1.0, "weight")
    signed = alignment_heatmap(np.array([[0.1, -0.4]]), ["x", "y"], ["a"], signed=True, value_title="difference").data[0]
    assert colour_bar(signed) == ("difference", [-0.4, 0.0, 0.4], ["-0.4", "0", "0.4"])


def bar_extent(figure) -> tuple[float, float]:
    """Where a vertical colour bar anchored at the plot's top starts and ends, in pixels from the figure's top."""
    bar, layout = figure.data[0].colorbar, figure.layout
    plot_px = layout.height - layout.margin.t - layout.margin.b
    assert bar.lenmode == "pixels" and bar.yanchor == "top"
    top = layout.margin.t + (1 - bar.y) * plot_px
    return top, top + bar.len


def test_a_one_row_heatmap_keeps_a_colour_bar_of_readable_length_inside_the_figure():
    """Issue 16: the RNN's pooling row had a colour bar squashed to the row's few pixels."""
    row = alignment_heatmap(np.array([[0.1, 0.2, 0.7]]), ["oil", "prices", "climb"], ["query"])
    layout = row.layout
    top, bottom = bar_extent(row)
    assert row.data[0].colorbar.len >= COLOUR_BAR_MIN_PX
    assert top == layout.margin.t and bottom <= layout.height  # it hangs below the row into the margin made for it
    assert layout.height - layout.margin.t - layout.margin.b < COLOUR_BAR_MIN_PX  # the row alone is shorter than the bar
    # A tall heatmap's bar needs no extra room: the bottom margin stays as it was.
    tall = alignment_heatmap(np.full((40, 40), 1 / 40), [f"w{i}" for i in range(40)], [f"w{i}" for i in range(40)])
    assert tall.layout.margin.b == 10 and tall.data[0].colorbar.len >= COLOUR_BAR_MIN_PX
    assert bar_extent(tall)[1] <= tall.layout.height - tall.layout.margin.b


def test_signed_maps_use_a_diverging_scale_symmetric_around_zero():
    difference = np.array([[0.1, -0.4], [0.25, 0.0]])
    heatmap = alignment_heatmap(difference, ["a", "b"], ["c", "d"], signed=True, value_title="difference").data[0]
    assert (heatmap.zmin, heatmap.zmax) == (-0.4, 0.4)
    # Zero sits in the middle of the scale, where the colour is nearly white; the ends differ.
    middle = dict((position, colour) for position, colour in heatmap.colorscale)[0.5]
    assert middle == "rgb(247,247,247)"  # ColorBrewer RdBu #f7f7f7
    assert heatmap.colorscale[0][1] != heatmap.colorscale[-1][1]
    assert "difference" in heatmap.hovertemplate and heatmap.colorbar.title.text == "difference"
    gray = alignment_heatmap(difference, ["a", "b"], ["c", "d"], signed=True, scheme="grayscale").data[0].colorscale
    assert (gray[0][1], gray[-1][1]) == ("black", "white")


def test_heatmap_of_512_tokens_stays_under_its_budget():
    """Issue 7: a 512-token heatmap was 8.5 MB (a hover string per cell); the budget is 1.5 MB."""
    n = 512
    rng = np.random.default_rng(0)
    words = ["the", "market", "##s", "said", "government", "announced", "[SEP]", "investors"]
    tokens = [words[i] for i in rng.integers(0, len(words), n)]
    weights = rng.dirichlet(np.full(n, 0.3), size=n)
    figure = alignment_heatmap(weights, tokens, tokens, title="Layer 1, head 1")
    sent = figure.to_json()
    assert len(sent.encode()) <= 1.5 * MIB
    assert len(pio.to_json(figure, validate=False).encode()) <= 1.5 * MIB
    # The weights travel as one float32 block, not as text.
    assert json.loads(sent)["data"][0]["z"]["dtype"] == "f4"


def test_colour_lookup_matches_the_scale_stops():
    table = lookup_table(COLOUR_SCHEMES["colour"])
    assert tuple(table[0]) == (0x44, 0x01, 0x54) and tuple(table[-1]) == (0xFD, 0xE7, 0x25)
    gray = paint(np.array([0.0, 0.5, 1.0, 7.0]), colourscale("grayscale"))
    np.testing.assert_array_equal(gray[:, 0], [0, 128, 255, 255])  # out-of-range values clip to the ends


def test_panels_each_keep_their_own_tokens_and_colour_range():
    a = np.array([[0.2, 0.8]])
    b = np.array([[0.1, 0.3, 0.6], [0.5, 0.25, 0.25]])
    figure = heatmap_panels(
        [Panel("first", a, ["x", "y"], ["q"], scale="stretch"), Panel("second <i>", b, SENTENCE[:3], ["r", "s"])], title="two", stacked=True
    )
    first, second = figure.data
    assert (first.zmax, second.zmax) == (0.8, 1.0)
    assert list(figure.layout.xaxis.ticktext) == ["x", "y"] and list(figure.layout.xaxis2.ticktext) == SENTENCE[:3]
    assert "first" in figure.layout.xaxis.title.text and "second &lt;i&gt;" in figure.layout.xaxis2.title.text
    # Stacked panels do not overlap: the first sits wholly above the second.
    assert figure.layout.yaxis.domain[0] > figure.layout.yaxis2.domain[1]
    side = heatmap_panels([Panel("a", a, ["x", "y"], ["q"]), Panel("b", a, ["x", "y"], ["q"])])
    assert side.layout.xaxis.domain[1] < side.layout.xaxis2.domain[0]


def test_probability_bars_fixed_range_and_highlight():
    figure = probability_bars(["World", "Sports"], np.array([0.3, 0.7]))
    bar = figure.data[0]
    assert list(bar.y) == ["World", "Sports"]
    assert list(figure.layout.xaxis.range) == [0.0, 1.0]  # fixed: two charts side by side compare by length
    assert bar.marker.color[1] != bar.marker.color[0]
    assert list(bar.text) == ["30.0%", "70.0%"]


def test_panels_past_the_cell_budget_are_averaged_over_token_blocks():
    """Four 512-token panels would send 7 MB; they are pooled into 2×2-token blocks instead."""
    n = 512
    rng = np.random.default_rng(0)
    tokens = [f"w{i}" for i in range(n)]
    matrices = rng.dirichlet(np.ones(n), size=(4, n))
    figure = heatmap_panels([Panel(name, m, tokens, tokens) for name, m in zip("ABCD", matrices)])
    first = figure.data[0]
    assert np.asarray(first.z).shape == (256, 256)
    np.testing.assert_allclose(np.asarray(first.z)[0, 0], matrices[0, :2, :2].mean(), rtol=1e-5)
    assert first.x[0] == "1–2 · w0…w1" and len(set(first.x)) == 256
    assert "2×2-token blocks" in figure.layout.xaxis.title.text
    assert len(pio.to_json(figure, validate=False).encode()) <= 5 * MIB
    # Small panels are never pooled.
    small = heatmap_panels([Panel("A", matrices[0, :8, :8], tokens[:8], tokens[:8])])
    assert np.asarray(small.data[0].z).shape == (8, 8) and "blocks" not in small.layout.xaxis.title.text


def test_figure_words_come_from_the_installed_translation_and_stay_english_without_one():
    from viz import words

    weights = np.full((2, 2), 0.5)
    previous = words.use_translation(lambda message: {"weight": "Gewicht", "source (keys)": "Quelle (Keys)"}.get(message, message))
    try:
        figure = alignment_heatmap(weights, ["a", "b"], ["a", "b"], scale="stretch")
        assert figure.layout.xaxis.title.text == "Quelle (Keys)" and figure.layout.yaxis.title.text == "target (queries)"
        assert figure.data[0].colorbar.title.text == "Gewicht (stretched)"
        words.use_translation(str)
        figure = alignment_heatmap(weights, ["a", "b"], ["a", "b"])
        assert (figure.layout.xaxis.title.text, figure.data[0].colorbar.title.text) == ("source (keys)", "weight")
    finally:
        words.use_translation(previous)
