"""The two-column head view popularised by bertviz (Vig 2019, "A Multiscale Visualization of
Attention in the Transformer Model", ACL demos), drawn with Plotly.

Target (query) tokens stand in a left column, source (key) tokens in a right one; a line joins
target i to source j for each shown head, as opaque as the weight. bertviz ships every weight of
every head to the browser as JSON and draws it in JavaScript (869 MB at 512 tokens); here a head
is a handful of traces: its lines are grouped into a few opacity bins, each bin one trace whose
segments are separated by NaN gaps and travel as float32 blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, qualitative

from viz.labels import literal, short
from viz.words import _

# Lines of one head fall into this many opacity levels; a weight w is drawn at the centre of its bin.
OPACITY_BINS = 10
HEAD_COLOURS = qualitative.Dark24
LINE_WIDTH = 1.5
ROW_PX = 18
TOP_ATTENDED = 3
# Beyond this many lines a browser draws slowly and the figure outgrows its budget (5 MB at 512 tokens).
LINE_BUDGET = 60_000
LEFT_X, RIGHT_X = 0.0, 1.0
FOCUS_COLOUR = "crimson"


def head_colour(head: int, alpha: float = 1.0) -> str:
    red, green, blue = hex_to_rgb(HEAD_COLOURS[head % len(HEAD_COLOURS)])
    return f"rgba({red},{green},{blue},{alpha:.3g})"


def _check(attentions: np.ndarray, source_tokens: Sequence[str], target_tokens: Sequence[str], heads: Sequence[int] | None) -> tuple[np.ndarray, list[int]]:
    attentions = np.asarray(attentions, dtype=np.float32)
    if attentions.ndim != 3 or attentions.shape[1:] != (len(target_tokens), len(source_tokens)):
        raise ValueError(f"attentions of shape {attentions.shape} do not match (heads, {len(target_tokens)} target, {len(source_tokens)} source tokens)")
    shown = list(range(attentions.shape[0])) if heads is None else [int(h) for h in heads]
    if any(not 0 <= h < attentions.shape[0] for h in shown):
        raise ValueError(f"heads {shown} are outside 0..{attentions.shape[0] - 1}")
    return attentions, shown


def threshold_for(attentions: np.ndarray, heads: Sequence[int] | None = None, max_lines: int = LINE_BUDGET) -> float:
    """The smallest threshold that leaves at most ``max_lines`` lines of the given heads (0 when all fit).

    A sensible default for long inputs: a 512-token layer of 12 heads has 3.1 million weights,
    of which only the strongest few tens of thousands can be told apart on screen anyway.
    """
    attentions = np.asarray(attentions, dtype=np.float32)
    shown = list(range(attentions.shape[0])) if heads is None else list(heads)
    weights = attentions[shown].ravel()
    weights = weights[weights > 0]
    if weights.size <= max_lines:
        return 0.0
    # The (max_lines + 1)-th largest weight, nudged up so that it and everything below it go.
    cut = float(np.partition(weights, weights.size - max_lines - 1)[weights.size - max_lines - 1])
    return float(np.nextafter(np.float32(cut), np.float32(np.inf)))


def _segments(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of one trace drawing a line from (LEFT_X, row) to (RIGHT_X, col) per pair, NaN between."""
    count = len(rows)
    x = np.empty((count, 3), dtype=np.float32)
    x[:] = (LEFT_X, RIGHT_X, np.nan)
    y = np.empty((count, 3), dtype=np.float32)
    y[:, 0], y[:, 1], y[:, 2] = rows, cols, np.nan
    return x.ravel(), y.ravel()


def _top(weights: np.ndarray, tokens: Sequence[str], k: int = TOP_ATTENDED) -> str:
    order = np.argsort(-weights, kind="stable")[:k]
    # Positions tell repeated tokens apart ("the (1) 0.29, the (4) 0.22").
    return ", ".join(f"{literal(short(tokens[j]))} ({j + 1}) {weights[j]:.2f}" for j in order)


def _token_hover(mean: np.ndarray, source_tokens: Sequence[str], target_tokens: Sequence[str], heads_label: str) -> tuple[list[str], list[str]]:
    """Per token: the token and its top partners under the mean of the shown heads."""
    left = [
        _("{token} ({position}) attends to{heads}:").format(token=f"<b>{literal(short(token))}</b>", position=i + 1, heads=heads_label)
        + f"<br>{_top(mean[i], source_tokens)}"
        for i, token in enumerate(target_tokens)
    ]
    right = [
        _("{token} ({position}) is attended by{heads}:").format(token=f"<b>{literal(short(token))}</b>", position=j + 1, heads=heads_label)
        + f"<br>{_top(mean[:, j], target_tokens)}"
        for j, token in enumerate(source_tokens)
    ]
    return left, right


def head_view(
    attentions: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    *,
    heads: Sequence[int] | None = None,
    threshold: float = 0.0,
    focus: int | None = None,
) -> tuple[go.Figure, int]:
    """One layer's heads (H, T, S) as lines from target tokens (left) to source tokens (right).

    ``heads`` (0-based; default all) are overlaid, one colour each, with a legend entry that
    toggles the head. A line is drawn for each weight ≥ ``threshold``, its opacity the weight
    (in ``OPACITY_BINS`` steps); ``focus`` (a 0-based target row) keeps only that token's lines.
    Returns the figure and the number of lines the threshold hid (weights of exactly 0 are never
    drawn and never counted: they are invisible at any threshold).

    Hovering a token names it and its strongest partners. Every token marker carries
    ``customdata`` ["target", i] or ["source", j] (0-based), so that with Streamlit's
    ``on_select="rerun", selection_mode="points"`` a click on a left token can set ``focus``.
    For seq2seq models the output characters are the targets (left), the input the sources.
    """
    attentions, shown = _check(attentions, source_tokens, target_tokens, heads)
    if focus is not None and not 0 <= focus < len(target_tokens):
        raise ValueError(f"focus row {focus} is outside 0..{len(target_tokens) - 1}")
    rows = slice(None) if focus is None else slice(focus, focus + 1)
    row_offset = 0 if focus is None else focus
    # Plain dicts: the figure validates each trace once, instead of once here and again in go.Figure.
    traces: list[dict] = []
    hidden = 0
    for head in shown:
        weights = attentions[head, rows]
        positive = weights > 0
        drawn = positive & (weights >= threshold)
        hidden += int(np.count_nonzero(positive & ~drawn))
        target_idx, source_idx = np.nonzero(drawn)
        values = weights[target_idx, source_idx]
        levels = np.minimum((values * OPACITY_BINS).astype(np.intp), OPACITY_BINS - 1)
        # A legend entry per head, drawn at full colour even when the threshold leaves it no line.
        traces.append(
            dict(
                type="scatter",
                x=[None],
                y=[None],
                mode="lines",
                line=dict(color=head_colour(head), width=3),
                name=_("head {head}").format(head=head + 1),
                legendgroup=f"head {head + 1}",
            )
        )
        for level in np.unique(levels):
            chosen = levels == level
            x, y = _segments(target_idx[chosen] + row_offset, source_idx[chosen])
            traces.append(
                dict(
                    type="scatter",
                    x=x,
                    y=y,
                    mode="lines",
                    line=dict(color=head_colour(head, (level + 0.5) / OPACITY_BINS), width=LINE_WIDTH),
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=f"head {head + 1}",
                )
            )
    mean = attentions[shown].mean(axis=0) if shown else np.zeros(attentions.shape[1:], dtype=np.float32)
    heads_label = _(" (head {head})").format(head=shown[0] + 1) if len(shown) == 1 else _(" (mean of the shown heads)")
    left_hover, right_hover = _token_hover(mean, source_tokens, target_tokens, heads_label)
    left_text = [literal(short(token)) for token in target_tokens]
    if focus is not None:
        left_text[focus] = f"<b>{left_text[focus]}</b>"
    marker_colours = ["#888"] * len(target_tokens)
    if focus is not None:
        marker_colours[focus] = FOCUS_COLOUR
    traces.append(
        dict(
            type="scatter",
            x=[LEFT_X] * len(target_tokens),
            y=list(range(len(target_tokens))),
            mode="markers+text",
            text=left_text,
            textposition="middle left",
            marker=dict(size=7, color=marker_colours),
            hovertext=left_hover,
            hoverinfo="text",
            customdata=[["target", i] for i in range(len(target_tokens))],
            name="targets",
            showlegend=False,
        )
    )
    traces.append(
        dict(
            type="scatter",
            x=[RIGHT_X] * len(source_tokens),
            y=list(range(len(source_tokens))),
            mode="markers+text",
            text=[literal(short(token)) for token in source_tokens],
            textposition="middle right",
            marker=dict(size=7, color="#888"),
            hovertext=right_hover,
            hoverinfo="text",
            customdata=[["source", j] for j in range(len(source_tokens))],
            name="sources",
            showlegend=False,
        )
    )
    figure = go.Figure(traces)
    longest = max((len(short(t)) for t in (*source_tokens, *target_tokens)), default=1)
    # Room for the labels beside each column, in units of the 0..1 gap between the columns.
    side = 0.12 + 0.045 * longest
    n_rows = max(len(source_tokens), len(target_tokens), 1)
    figure.update_xaxes(range=[LEFT_X - side, RIGHT_X + side], visible=False, fixedrange=True)
    figure.update_yaxes(range=[n_rows - 0.5, -0.5], visible=False)
    figure.update_layout(
        height=int(80 + ROW_PX * n_rows),
        margin=dict(l=10, r=10, t=30, b=10),
        hovermode="closest",
        plot_bgcolor="white",
        legend=dict(orientation="h", x=0.0, y=1.0, yanchor="bottom", groupclick="togglegroup"),
    )
    return figure, hidden
