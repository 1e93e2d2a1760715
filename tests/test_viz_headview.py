"""The two-column head view: one line per weight above the threshold, opacity by weight, a colour per head."""

import numpy as np
import plotly.io as pio
import pytest

from viz.headview import LINE_BUDGET, OPACITY_BINS, head_colour, head_view, threshold_for

MIB = 1024 * 1024


def line_traces(figure):
    return [t for t in figure.data if t.mode == "lines" and t.x is not None and len(t.x) > 1]


def drawn_lines(figure) -> list[tuple[str, int, int]]:
    """(colour without alpha, target row, source column) of every line segment in the figure."""
    lines = []
    for trace in line_traces(figure):
        x, y = np.asarray(trace.x, dtype=float), np.asarray(trace.y, dtype=float)
        assert np.isnan(x[2::3]).all() and np.isnan(y[2::3]).all()  # segments separated by gaps
        assert (x[0::3] == 0).all() and (x[1::3] == 1).all()  # target column left, source column right
        colour = trace.line.color.rsplit(",", 1)[0]
        lines += [(colour, int(i), int(j)) for i, j in zip(y[0::3], y[1::3])]
    return lines


def test_one_line_per_weight_at_or_above_the_threshold():
    weights = np.array([[[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], [[0.3, 0.3, 0.4], [1.0, 0.0, 0.0]]])
    figure, hidden = head_view(weights, ["a", "b", "c"], ["x", "y"], threshold=0.2)
    lines = drawn_lines(figure)
    expected = {(h, i, j) for h in range(2) for i in range(2) for j in range(3) if weights[h, i, j] >= 0.2}
    assert sorted(lines) == sorted((head_colour(h).rsplit(",", 1)[0], i, j) for h, i, j in expected)
    # Hidden: the positive weights under 0.2 (0.1, 0.05, 0.05); the exact zeros of head 2 are not lines at all.
    assert hidden == 3


def test_threshold_zero_draws_every_positive_weight():
    weights = np.random.default_rng(0).dirichlet(np.ones(5), size=(3, 4))
    figure, hidden = head_view(weights, list("abcde"), list("wxyz"))
    assert len(drawn_lines(figure)) == 3 * 4 * 5 and hidden == 0


def test_opacity_grows_with_the_weight():
    weights = np.array([[[0.05, 0.95], [0.55, 0.45]]])
    figure, _ = head_view(weights, ["a", "b"], ["x", "y"])
    alpha_of = {}
    for trace in line_traces(figure):
        alpha = float(trace.line.color.rsplit(",", 1)[1].rstrip(")"))
        for i, j in zip(trace.y[0::3], trace.y[1::3]):
            alpha_of[(int(i), int(j))] = alpha
    assert alpha_of[(0, 0)] < alpha_of[(1, 1)] < alpha_of[(1, 0)] < alpha_of[(0, 1)]
    assert alpha_of[(0, 1)] == pytest.approx((int(0.95 * OPACITY_BINS) + 0.5) / OPACITY_BINS)


def test_heads_subset_and_legend_entries():
    weights = np.random.default_rng(1).dirichlet(np.ones(4), size=(3, 4))
    figure, _ = head_view(weights, list("abcd"), list("abcd"), heads=[0, 2])
    assert [t.name for t in figure.data if t.showlegend is not False and t.mode == "lines"] == ["head 1", "head 3"]
    colours = {c for c, _, _ in drawn_lines(figure)}
    assert colours == {head_colour(0).rsplit(",", 1)[0], head_colour(2).rsplit(",", 1)[0]}
    with pytest.raises(ValueError, match="outside"):
        head_view(weights, list("abcd"), list("abcd"), heads=[3])


def test_focus_keeps_only_that_tokens_lines():
    weights = np.random.default_rng(2).dirichlet(np.ones(4), size=(2, 3))
    figure, hidden = head_view(weights, list("abcd"), ["the", "cat", "the"], focus=2, threshold=0.2)
    lines = drawn_lines(figure)
    assert lines and {i for _, i, _ in lines} == {2}
    assert len(lines) == int((weights[:, 2] >= 0.2).sum())
    assert hidden == int((weights[:, 2] < 0.2).sum())
    targets = next(t for t in figure.data if t.name == "targets")
    assert targets.text[2] == "<b>the</b>" and targets.text[0] == "the"


def test_tokens_hover_with_their_top_partners_and_click_with_their_index():
    weights = np.array([[[0.1, 0.6, 0.3], [0.8, 0.1, 0.1]]])
    figure, _ = head_view(weights, ["<s>", "cat", "dog"], ["le", "chat"])
    targets = next(t for t in figure.data if t.name == "targets")
    sources = next(t for t in figure.data if t.name == "sources")
    assert list(targets.text) == ["le", "chat"] and list(sources.text) == ["&lt;s&gt;", "cat", "dog"]
    assert "cat (2) 0.60, dog (3) 0.30, &lt;s&gt; (1) 0.10" in targets.hovertext[0]
    assert "chat (2) 0.80, le (1) 0.10" in sources.hovertext[0]
    assert [list(c) for c in targets.customdata] == [["target", 0], ["target", 1]]
    assert [list(c) for c in sources.customdata] == [["source", 0], ["source", 1], ["source", 2]]


def test_repeated_tokens_keep_their_own_rows():
    tokens = ["the", "cat", "saw", "the", "dog", "and", "the", "bird"]
    weights = np.eye(8)[None]
    figure, _ = head_view(weights, tokens, tokens)
    assert sorted((i, j) for _, i, j in drawn_lines(figure)) == [(i, i) for i in range(8)]
    assert list(next(t for t in figure.data if t.name == "sources").y) == list(range(8))


def test_seq2seq_outputs_left_inputs_right():
    weights = np.random.default_rng(3).dirichlet(np.ones(6), size=(1, 3))
    figure, _ = head_view(weights, list("3 Mar."), list("203"))
    assert list(next(t for t in figure.data if t.name == "targets").text) == list("203")
    assert len(next(t for t in figure.data if t.name == "sources").text) == 6


def test_threshold_for_keeps_at_most_the_budget():
    weights = np.random.default_rng(4).dirichlet(np.ones(50), size=(4, 50)).astype(np.float32)
    threshold = threshold_for(weights, max_lines=1000)
    assert (weights >= threshold).sum() == 1000  # no ties in random weights: exactly the budget
    lower = np.nextafter(np.float32(threshold), np.float32(0))
    assert (weights >= lower).sum() > 1000  # and no lower threshold would do
    assert threshold_for(weights, max_lines=10_000) == 0.0


def test_512_tokens_of_12_heads_stay_under_the_budget_at_the_default_threshold():
    """Issue 8: bertviz's head view at 512 tokens was 869 MB; every view's budget is 5 MB."""
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.full(512, 0.05), size=(12, 512)).astype(np.float32)
    tokens = [f"tok{i}" for i in range(512)]
    figure, hidden = head_view(weights, tokens, tokens, threshold=threshold_for(weights))
    # No ties in random weights: exactly the budget is drawn and every other positive weight is hidden.
    assert len(drawn_lines(figure)) == LINE_BUDGET
    assert hidden == int((weights > 0).sum()) - LINE_BUDGET
    assert len(pio.to_json(figure, validate=False).encode()) <= 5 * MIB
