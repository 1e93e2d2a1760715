"""Alignment heatmaps in the orientation of Bahdanau, Cho & Bengio (2015), Fig. 3.

Source (key) tokens run along the top, target (query) tokens down the left, so row i is what
query i attended to; cell colour is the weight on a fixed 0..1 scale, so figures of different
heads and models can be compared by eye.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.labels import literal, tick_labels

# The paper's figure is grayscale with 0 black and 1 white; colour is easier on a projector.
COLOUR_SCHEMES = {
    "colour": "Viridis",
    "grayscale": [[0.0, "black"], [1.0, "white"]],
}
CELL_PX = 22
MIN_HEIGHT_PX = 160
MAX_HEIGHT_PX = 2200
MARGIN_PX = 140


def _check(weights: np.ndarray, source_tokens: Sequence[str], target_tokens: Sequence[str]) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(f"weights of shape {weights.shape} do not match {len(target_tokens)} target x {len(source_tokens)} source tokens")
    return weights


def _colourscale(scheme: str):
    try:
        return COLOUR_SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown colour scheme {scheme!r}; choose one of {sorted(COLOUR_SCHEMES)}") from None


def _hover_tokens(source_tokens: Sequence[str], target_tokens: Sequence[str]) -> np.ndarray:
    """customdata[i, j] = (query token, key token), escaped, for the hover box."""
    grid = np.empty((len(target_tokens), len(source_tokens), 2), dtype=object)
    grid[:, :, 0] = np.array([literal(t) for t in target_tokens], dtype=object)[:, None]
    grid[:, :, 1] = np.array([literal(s) for s in source_tokens], dtype=object)[None, :]
    return grid


def alignment_heatmap(
    weights: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    *,
    scheme: str = "colour",
    title: str | None = None,
    source_title: str = "source (keys)",
    target_title: str = "target (queries)",
    stretch: bool = False,
) -> go.Figure:
    """One attention matrix as a heatmap: row i = target/query token i, column j = source token j.

    The colour scale is fixed to 0..1 unless ``stretch`` maps the matrix's own largest weight to
    the top colour, which reveals structure in diffuse heads (the colour bar then says so).

    Axes are positional (0..n-1) with token tick labels, so repeated tokens ("the" twice) keep
    their own rows and columns instead of being merged by Plotly's categorical axes. The exact
    weight and both tokens show on hover.
    """
    weights = _check(weights, source_tokens, target_tokens)
    x_pos, x_text = tick_labels(source_tokens)
    y_pos, y_text = tick_labels(target_tokens)
    figure = go.Figure(
        go.Heatmap(
            z=weights,
            x=list(range(len(source_tokens))),
            y=list(range(len(target_tokens))),
            zmin=0.0,
            zmax=float(weights.max()) if stretch and weights.max() > 0 else 1.0,
            colorscale=_colourscale(scheme),
            customdata=_hover_tokens(source_tokens, target_tokens),
            hovertemplate="query <b>%{customdata[0]}</b> → key <b>%{customdata[1]}</b><br>weight %{z:.4f}<extra></extra>",
            colorbar=dict(title="weight (stretched)" if stretch else "weight", thickness=12, len=min(1.0, max(0.4, 8 / max(1, len(target_tokens))))),
            xgap=1 if len(source_tokens) <= 60 else 0,
            ygap=1 if len(target_tokens) <= 60 else 0,
        )
    )
    longest = max((len(t) for t in x_text), default=1)
    figure.update_xaxes(
        side="top",
        tickmode="array",
        tickvals=x_pos,
        ticktext=x_text,
        # Characters and short inputs read best upright; longer labels would collide.
        tickangle=0 if longest <= 2 or (len(source_tokens) <= 8 and longest <= 8) else -60,
        title_text=source_title,
        showgrid=False,
        zeroline=False,
    )
    figure.update_yaxes(
        autorange="reversed",
        tickmode="array",
        tickvals=y_pos,
        ticktext=y_text,
        title_text=target_title,
        showgrid=False,
        zeroline=False,
    )
    height = int(np.clip(CELL_PX * len(target_tokens) + MARGIN_PX + 6 * min(longest, 18), MIN_HEIGHT_PX, MAX_HEIGHT_PX))
    figure.update_layout(
        # The title sits at the very top, above the source axis and its rotated labels.
        title=dict(text=literal(title), x=0.0, y=0.995, yref="container", yanchor="top") if title else None,
        height=height,
        margin=dict(l=10, r=10, t=90 + 6 * min(longest, 18), b=10),
        plot_bgcolor="white",
    )
    return figure


def head_grid(
    attentions: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    *,
    scheme: str = "colour",
    selected: tuple[int, int] | None = None,
) -> go.Figure:
    """Every layer (rows) x head (columns) as a thumbnail heatmap, for spotting head patterns.

    Thumbnails carry no tick labels (they would be unreadable); hovering any cell still names
    both tokens, the layer, the head and the weight. ``selected`` outlines one (layer, head).
    """
    attentions = np.asarray(attentions, dtype=float)
    if attentions.ndim != 4:
        raise ValueError(f"attentions must be (layers, heads, target, source), got shape {attentions.shape}")
    layers, heads = attentions.shape[:2]
    _check(attentions[0, 0], source_tokens, target_tokens)
    figure = make_subplots(
        rows=layers,
        cols=heads,
        horizontal_spacing=0.008,
        vertical_spacing=0.02,
        row_titles=[f"L{layer + 1}" for layer in range(layers)],
        column_titles=[f"H{head + 1}" for head in range(heads)],
    )
    hover = _hover_tokens(source_tokens, target_tokens)
    for layer in range(layers):
        for head in range(heads):
            figure.add_trace(
                go.Heatmap(
                    z=attentions[layer, head],
                    zmin=0.0,
                    zmax=1.0,
                    colorscale=_colourscale(scheme),
                    showscale=layer == 0 and head == 0,
                    customdata=hover,
                    hovertemplate=f"layer {layer + 1}, head {head + 1}<br>"
                    "query <b>%{customdata[0]}</b> → key <b>%{customdata[1]}</b><br>weight %{z:.4f}<extra></extra>",
                ),
                row=layer + 1,
                col=head + 1,
            )
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    if selected is not None:
        layer, head = selected
        figure.update_xaxes(showline=True, linewidth=3, linecolor="crimson", mirror=True, row=layer + 1, col=head + 1)
        figure.update_yaxes(showline=True, linewidth=3, linecolor="crimson", mirror=True, row=layer + 1, col=head + 1)
    thumb = 70 if heads > 4 else 150
    figure.update_layout(height=int(min(MAX_HEIGHT_PX, 60 + thumb * layers)), margin=dict(l=10, r=30, t=40, b=10))
    return figure
