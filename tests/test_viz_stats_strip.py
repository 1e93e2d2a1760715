"""Head-statistics maps (one per statistic, clickable per head) and token strips (one row per method)."""

import json

import numpy as np
import pytest

from viz.heatmap import COLOUR_BAR_MIN_PX
from viz.stats import stat_heatmaps
from viz.strip import normalise_rows, token_strips


def stats_of(layers: int = 2, heads: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    entropy = rng.random((layers, heads))
    entropy[1, 0] = np.nan  # a statistic undefined for one head
    return {"entropy": entropy, "distance": rng.random((layers, heads)) * 7}


def test_one_heatmap_per_statistic_with_its_own_scale():
    stats = stats_of()
    figure = stat_heatmaps(stats, {"entropy": "Entropy", "distance": "Distance <tokens>"})
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    assert len(heatmaps) == 2
    np.testing.assert_allclose(np.asarray(heatmaps[1].z), stats["distance"], rtol=1e-6)
    assert (heatmaps[0].zmin, heatmaps[0].zmax) == (0.0, 1.0)  # a normalised measure keeps 0..1
    assert heatmaps[1].zmin == 0.0 and heatmaps[1].zmax == pytest.approx(float(stats["distance"].max()), rel=1e-6)
    assert heatmaps[0].colorbar.x != heatmaps[1].colorbar.x  # each map its own colour bar
    titles = [a.text for a in figure.layout.annotations]
    assert titles == ["Entropy", "Distance &lt;tokens&gt;"]


def test_undefined_values_stay_blank():
    figure = stat_heatmaps(stats_of(), {"entropy": "Entropy", "distance": "Distance"})
    z = np.asarray(figure.data[0].z, dtype=float)
    assert np.isnan(z[1, 0]) and np.isfinite(np.delete(z.ravel(), 3)).all()
    markers = figure.data[1]
    assert markers.text[3] == "Entropy: —" and markers.text[0] == f"Entropy: {stats_of()['entropy'][0, 0]:.3f}"


def test_every_head_is_clickable_in_every_map():
    layers, heads = 2, 3
    figure = stat_heatmaps(stats_of(layers, heads), {"entropy": "Entropy", "distance": "Distance"}, selected=(1, 2))
    sent = json.loads(figure.to_json())["data"]
    expected = [[layer, head] for layer in range(1, layers + 1) for head in range(1, heads + 1)]
    markers = [trace for trace in sent if trace["type"] == "scatter"]
    assert len(markers) == 2 and all(m["customdata"] == expected for m in markers)
    assert all(m["marker"]["opacity"] == 0.0 for m in markers)
    assert (markers[0]["x"], markers[0]["y"]) == ([1, 2, 3, 1, 2, 3], [1, 1, 1, 2, 2, 2])
    outlines = figure.layout.shapes
    assert len(outlines) == 2 and (outlines[0].x0, outlines[0].x1, outlines[0].y0, outlines[0].y1) == (2.5, 3.5, 1.5, 2.5)


def test_statistics_of_different_shapes_are_an_error():
    with pytest.raises(ValueError, match="one \\(layers, heads\\) array"):
        stat_heatmaps({"a": np.zeros((2, 3)), "b": np.zeros((3, 2))}, {})


def test_rows_are_normalised_to_their_largest_magnitude():
    rows = np.array([[0.5, -2.0, 1.0], [0.0, 0.0, 0.0], [0.1, 0.2, 0.4]])
    np.testing.assert_allclose(normalise_rows(rows), [[0.25, -1.0, 0.5], [0.0, 0.0, 0.0], [0.25, 0.5, 1.0]])


def test_strips_one_row_per_method_raw_values_on_hover():
    tokens = ["the", "cat", "saw", "the", "dog"]
    attention = np.array([0.1, 0.4, 0.1, 0.2, 0.2])
    gradient = np.array([0.02, -0.5, 0.1, 0.0, 0.25])
    figure = token_strips({"attention": attention, "gradient × input": gradient}, tokens, title="<b>why</b>")
    strip = figure.data[0]
    assert list(strip.y) == ["attention", "gradient × input"]
    assert len(set(strip.x)) == 5 and list(figure.layout.xaxis.ticktext) == tokens  # "the" twice, two columns
    np.testing.assert_allclose(np.asarray(strip.z)[1], gradient / 0.5, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(strip.customdata), [attention, gradient], rtol=1e-6)
    assert "%{customdata" in strip.hovertemplate
    assert (strip.zmin, strip.zmax) == (-1.0, 1.0) and strip.colorscale[0][1] != strip.colorscale[-1][1]
    assert figure.layout.title.text == "&lt;b&gt;why&lt;/b&gt;"
    unsigned = token_strips({"attention": attention}, tokens, signed=False).data[0]
    assert (unsigned.zmin, unsigned.zmax) == (0.0, 1.0)


def test_a_single_strip_keeps_a_colour_bar_of_readable_length_inside_the_figure():
    """Issue 16: beside one strip the colour bar was as tall as the row, a few pixels once its title took its share."""
    tokens = ["oil", "prices", "climb", "to", "record", "high"]
    figure = token_strips({"learned attention": np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.2])}, tokens, signed=False)
    bar, layout = figure.data[0].colorbar, figure.layout
    plot_px = layout.height - layout.margin.t - layout.margin.b
    assert plot_px < COLOUR_BAR_MIN_PX <= bar.len and bar.lenmode == "pixels"
    # Anchored at the row's top, it reaches down into the bottom margin made for it and stays on the figure.
    assert (bar.y, bar.yanchor) == (1.0, "top") and layout.margin.t + bar.len <= layout.height
    assert list(bar.ticktext) == ["0", "0.5", "1"]
    # Five strips are taller than the bar: no margin is added below them.
    five = token_strips({name: np.ones(6) for name in "abcde"}, tokens)
    assert five.layout.margin.b == 10 and list(five.data[0].colorbar.ticktext) == ["-1", "0", "1"]


def test_strip_of_the_wrong_length_is_an_error():
    with pytest.raises(ValueError, match="one value per token"):
        token_strips({"attention": np.ones(3)}, ["a", "b"])
