"""Figures of a corpus run: the confusion matrix, the head atlas and its clustering, the joint
query–key embedding (AttentionViz, Yeh et al. 2023) and the search's pairs.

Pure functions from arrays to Plotly figures; the corpus view (``views/corpus.py``) reads the
run and hands the arrays in. Every clickable mark carries ``customdata`` that the view reads back
from ``st.plotly_chart(..., on_select=...)``: [layer, head] on heads, [text_id, layer, head] on
points of the embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.colours import colourscale
from viz.labels import DEFAULT_WIDTH_PX, literal, spread, text_px, wrap
from viz.present import font_scale
from viz.stats import CELL_PX, head_cells, head_markers
from viz.words import _

TITLE_FONT_PX = 16
TITLE_LINE_PX = 20
SELECTED_COLOUR = "crimson"
# Two colours that stay apart in grayscale print too: queries dark, keys light.
KIND_COLOURS = {"colour": ("#1f77b4", "#ff7f0e"), "grayscale": ("#222222", "#aaaaaa")}
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
GRAY_CLASS_COLOURS = ("#000000", "#555555", "#999999", "#cccccc")
# Coordinates sent with 3 significant digits past the point: the figure cannot show more on a
# screen, and 20,000 points then stay far under the budget (bench/figures.py: corpus).
COORDINATE_DECIMALS = 3


def _title(text: str, width_px: float, presenter: bool) -> tuple[str, int]:
    """A figure title broken into lines that fit the figure, and the pixels the lines take."""
    lines = wrap(literal(text), width_px / font_scale(presenter) - 20, TITLE_FONT_PX)
    return "<br>".join(lines), TITLE_LINE_PX * len(lines)


def confusion_matrix(
    counts: np.ndarray,
    labels: Sequence[str],
    *,
    title: str,
    scheme: str = "colour",
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """Gold classes down, predicted classes across; each cell's count written in it."""
    counts = np.asarray(counts)
    shown = [literal(label) for label in labels]
    heading, title_px = _title(title, width_px, presenter)
    size = len(labels)
    text = [[f"{int(value):,}" for value in row] for row in counts.tolist()]
    figure = go.Figure(
        go.Heatmap(
            z=counts,
            x=shown,
            y=shown,
            text=text,
            texttemplate="%{text}",
            colorscale=colourscale(scheme),
            showscale=False,
            xgap=1,
            ygap=1,
            hovertemplate=_("gold %{y}, predicted %{x}: %{text} texts") + "<extra></extra>",
        )
    )
    figure.update_xaxes(title=_("predicted"), side="bottom", type="category", tickangle=0, automargin=True)
    figure.update_yaxes(title=_("gold"), autorange="reversed", type="category", automargin=True)
    figure.update_layout(
        title=dict(text=heading, x=0, xanchor="left", font=dict(size=TITLE_FONT_PX)),
        height=int(size * 2 * CELL_PX + 120 + title_px),
        margin=dict(l=10, r=10, t=30 + title_px, b=10),
        plot_bgcolor="white",
    )
    return figure


def _clickable_heads(figure: go.Figure, heading: str, title_px: int, *, height_px: float) -> go.Figure:
    """The layout of a figure whose marks name heads: the nearest mark under the pointer, a click selects it."""
    figure.update_layout(
        title=dict(text=heading, x=0, xanchor="left", font=dict(size=TITLE_FONT_PX)),
        height=int(height_px),
        margin=dict(l=10, r=10, t=30 + title_px, b=10),
        hovermode="closest",
        hoverdistance=-1,
        clickmode="event+select",
        plot_bgcolor="white",
    )
    return figure


def head_atlas(
    means: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    title: str,
    selected: tuple[int, int] | None = None,
    scheme: str = "colour",
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """A layer × head map of one measure's corpus mean; the hover gives its 95% interval.

    ``means``, ``low`` and ``high`` are (layers, heads); NaN (a measure undefined for the model)
    stays blank. ``selected`` (0-based layer, head) is outlined.
    """
    means = np.asarray(means, dtype=np.float64)
    layers, heads = means.shape
    heading, title_px = _title(title, width_px, presenter)
    figure_px = width_px / font_scale(presenter)
    step, _angle = spread(heads, figure_px - 120, label_px=text_px(f"H{heads}"))
    labelled = list(range(1, heads + 1, step))
    cells = [
        f"{mean:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(mean) else "—"
        for mean, lo, hi in zip(means.ravel().tolist(), np.asarray(low).ravel().tolist(), np.asarray(high).ravel().tolist(), strict=True)
    ]
    figure = go.Figure()
    figure.add_trace(head_cells(means, scheme, dict(thickness=10)))
    figure.add_trace(head_markers(layers, heads, [_("mean {value} (95% interval)").format(value=cell) for cell in cells]))
    figure.update_xaxes(tickmode="array", tickvals=labelled, ticktext=[f"H{h}" for h in labelled], showgrid=False, zeroline=False)
    figure.update_yaxes(
        tickmode="array",
        tickvals=list(range(1, layers + 1)),
        ticktext=[f"L{n}" for n in range(1, layers + 1)],
        autorange="reversed",
        showgrid=False,
        zeroline=False,
    )
    if selected is not None:
        layer, head = selected
        figure.add_shape(type="rect", x0=head + 0.5, x1=head + 1.5, y0=layer + 0.5, y1=layer + 1.5, line=dict(color=SELECTED_COLOUR, width=2))
    return _clickable_heads(figure, heading, title_px, height_px=layers * CELL_PX + 90 + title_px)


def head_clusters(
    scores: np.ndarray,
    heads: Sequence[tuple[int, int]],
    measures: Sequence[str],
    icoord: np.ndarray,
    dcoord: np.ndarray,
    *,
    title: str,
    selected: tuple[int, int] | None = None,
    scheme: str = "colour",
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """Heads in the dendrogram's order: the tree on top, each measure's standard score below.

    ``scores`` is (measures, heads) in that order; ``heads`` the 1-based (layer, head) of each
    column; ``icoord``/``dcoord`` scipy's dendrogram segments (leaves at x = 5, 15, 25, …), drawn
    as they are on an x axis of 10 units per head. ``selected`` (1-based layer, head) is outlined.
    """
    scores = np.asarray(scores, dtype=np.float64)
    count = len(heads)
    heading, title_px = _title(title, width_px, presenter)
    figure_px = width_px / font_scale(presenter)
    names = [f"L{layer}H{head}" for layer, head in heads]
    step, angle = spread(count, figure_px - 140, label_px=max(text_px(name) for name in names) if names else 0.0)
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.02)
    for xs, ys in zip(np.asarray(icoord).tolist(), np.asarray(dcoord).tolist(), strict=True):
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#555555", width=1), hoverinfo="skip", showlegend=False), row=1, col=1)
    centres = 10 * np.arange(count) + 5
    figure.add_trace(
        go.Heatmap(
            z=scores,
            x=centres,
            y=list(range(len(measures))),
            colorscale=colourscale(scheme, signed=True),
            zmid=0.0,
            hoverinfo="skip",
            xgap=1,
            ygap=1,
            colorbar=dict(thickness=10, len=0.6, y=0.0, yanchor="bottom", title=dict(text="z", side="top")),
        ),
        row=2,
        col=1,
    )
    rows_, columns = np.meshgrid(np.arange(len(measures)), np.arange(count), indexing="ij")
    figure.add_trace(
        go.Scatter(
            x=centres[columns.ravel()].tolist(),
            y=rows_.ravel().tolist(),
            mode="markers",
            marker=dict(symbol="square", size=10, opacity=0.0),
            selected=dict(marker=dict(opacity=0.0)),
            unselected=dict(marker=dict(opacity=0.0)),
            customdata=[[heads[c][0], heads[c][1]] for c in columns.ravel().tolist()],
            text=[f"{literal(measures[r])}: z = {scores[r, c]:+.2f}" for r, c in zip(rows_.ravel().tolist(), columns.ravel().tolist(), strict=True)],
            hovertemplate=_("layer %{customdata[0]}, head %{customdata[1]}") + "<br>%{text}<extra></extra>",
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    labelled = list(range(0, count, step))
    figure.update_xaxes(showgrid=False, zeroline=False, showticklabels=False, range=[0, 10 * count], row=1, col=1)
    figure.update_xaxes(
        tickmode="array",
        tickvals=centres[labelled].tolist(),
        ticktext=[names[i] for i in labelled],
        tickangle=angle,
        showgrid=False,
        zeroline=False,
        range=[0, 10 * count],
        row=2,
        col=1,
    )
    figure.update_yaxes(showgrid=False, zeroline=False, showticklabels=False, row=1, col=1)
    figure.update_yaxes(
        tickmode="array", tickvals=list(range(len(measures))), ticktext=[literal(m) for m in measures], autorange="reversed", showgrid=False, row=2, col=1
    )
    if selected is not None and tuple(selected) in [tuple(h) for h in heads]:
        column = [tuple(h) for h in heads].index(tuple(selected))
        figure.add_shape(
            type="rect", x0=10 * column, x1=10 * column + 10, y0=-0.5, y1=len(measures) - 0.5, line=dict(color=SELECTED_COLOUR, width=2), row=2, col=1
        )
    label_px = 60 if angle else 20
    return _clickable_heads(figure, heading, title_px, height_px=len(measures) * 22 / 0.65 + 120 + title_px + label_px)


def joint_embedding(
    coordinates: np.ndarray,
    groups: Sequence[tuple[str, np.ndarray]] | None,
    position: np.ndarray,
    hover: Sequence[str],
    customdata: np.ndarray,
    *,
    title: str,
    axes: tuple[str, str],
    scheme: str = "colour",
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """Query and key vectors of one head as points in one plane (WebGL: 20,000 points stay smooth).

    ``groups`` colours the points by category, one trace each ((name, boolean mask)); None colours
    them by ``position`` (token position in its text) on a continuous scale. ``hover`` is one
    short line per point; ``customdata`` (points, 3) is [text_id, layer, head], what a click opens.
    """
    coordinates = np.round(np.asarray(coordinates, dtype=np.float32), COORDINATE_DECIMALS)
    heading, title_px = _title(title, width_px, presenter)
    customdata = np.asarray(customdata, dtype=np.int32)
    hover_text = np.asarray(hover, dtype=object)  # indexable by a boolean mask, per group
    figure = go.Figure()
    marker = dict(size=4, opacity=0.7)
    if groups is None:
        figure.add_trace(
            go.Scattergl(
                x=coordinates[:, 0],
                y=coordinates[:, 1],
                mode="markers",
                marker=dict(
                    **marker,
                    color=np.asarray(position, dtype=np.int16),
                    colorscale=colourscale(scheme),
                    colorbar=dict(thickness=10, title=dict(text=_("position"))),
                ),
                text=hover_text,
                customdata=customdata,
                hovertemplate="%{text}<extra></extra>",
                showlegend=False,
            )
        )
    else:
        palette = KIND_COLOURS[scheme] if len(groups) == 2 else (CLASS_COLOURS if scheme == "colour" else GRAY_CLASS_COLOURS)
        for index, (name, mask) in enumerate(groups):
            mask = np.asarray(mask, dtype=bool)
            figure.add_trace(
                go.Scattergl(
                    x=coordinates[mask, 0],
                    y=coordinates[mask, 1],
                    mode="markers",
                    name=literal(name),
                    marker=dict(**marker, color=palette[index % len(palette)]),
                    text=hover_text[mask],
                    customdata=customdata[mask],
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    figure.update_xaxes(title=axes[0], zeroline=False, showgrid=False)
    figure.update_yaxes(title=axes[1], zeroline=False, showgrid=False)
    figure.update_layout(
        title=dict(text=heading, x=0, xanchor="left", font=dict(size=TITLE_FONT_PX)),
        height=520 + title_px,
        margin=dict(l=10, r=10, t=30 + title_px, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.12, x=0),
        hovermode="closest",
        clickmode="event+select",
        plot_bgcolor="white",
    )
    return figure


def pair_bars(pairs: Sequence[str], counts: Sequence[int], *, title: str, width_px: float = DEFAULT_WIDTH_PX, presenter: bool = False) -> go.Figure:
    """The most frequent (query token → key token) pairs among the search's matches, one bar each."""
    heading, title_px = _title(title, width_px, presenter)
    shown = [literal(pair) for pair in pairs]
    figure = go.Figure(go.Bar(x=list(counts), y=shown, orientation="h", marker=dict(color="#4c78a8"), hovertemplate="%{y}: %{x}<extra></extra>"))
    figure.update_xaxes(title=_("matches"), automargin=True)
    figure.update_yaxes(autorange="reversed", type="category", automargin=True)
    figure.update_layout(
        title=dict(text=heading, x=0, xanchor="left", font=dict(size=TITLE_FONT_PX)),
        height=int(max(1, len(pairs)) * 22 + 90 + title_px),
        margin=dict(l=10, r=10, t=30 + title_px, b=10),
        plot_bgcolor="white",
    )
    return figure
