"""Per-head statistics as small layer×head heatmaps, one per statistic, each head clickable.

Finding head types (previous-token heads, heads parking on [SEP], broad heads; Clark et al.
2019, "What Does BERT Look At?") is a matter of scanning one number per head across the model:
a layer×head map per statistic shows where such heads sit at a glance.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.colours import colourscale
from viz.labels import DEFAULT_WIDTH_PX, literal, spread, text_px, wrap
from viz.present import font_scale
from viz.words import _

CELL_PX = 26
PANEL_COLUMNS = 4
# A map's least width: a head's cell at least this wide, the layer labels left of the map and
# its colour bar right of it. Past that, fewer maps stand side by side.
MIN_CELL_PX = 18
MAP_FRAME_PX = 100
GAP_PX = 80
# Plotly draws subplot titles at 16 px; a title wider than its map is broken into lines of this height.
TITLE_FONT_PX = 16
TITLE_LINE_PX = 20
SPACING = 0.12
SELECTED_COLOUR = "crimson"
MARGIN_L_PX = 10
MARGIN_R_PX = 40


def value_range(values: np.ndarray) -> tuple[float, float]:
    """0..1 for shares and normalised measures; 0..max for the others (distance in tokens)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    return min(0.0, low), high if high > min(0.0, low) else min(0.0, low) + 1.0


def head_cells(values: np.ndarray, scheme: str, colorbar: dict) -> go.Heatmap:
    """One map of a layer × head measure, layers and heads numbered from 1, gaps between the cells."""
    zmin, zmax = value_range(values)
    return go.Heatmap(
        z=values,
        x=np.arange(1, values.shape[1] + 1),
        y=np.arange(1, values.shape[0] + 1),
        zmin=zmin,
        zmax=zmax,
        colorscale=colourscale(scheme),
        hoverinfo="skip",
        xgap=1,
        ygap=1,
        colorbar=colorbar,
    )


def head_markers(layers: int, heads: int, text: list[str]) -> go.Scatter:
    """Invisible markers over a map's cells: the hover text, and a click (or box) that names the head as [layer, head]."""
    head_ids, layer_ids = np.meshgrid(np.arange(1, heads + 1), np.arange(1, layers + 1))
    return go.Scatter(
        x=head_ids.ravel().tolist(),
        y=layer_ids.ravel().tolist(),
        mode="markers",
        marker=dict(symbol="square", size=CELL_PX - 4, opacity=0.0),
        selected=dict(marker=dict(opacity=0.0)),
        unselected=dict(marker=dict(opacity=0.0)),
        customdata=np.stack([layer_ids.ravel(), head_ids.ravel()], axis=1).tolist(),
        text=text,
        hovertemplate=_("layer %{customdata[0]}, head %{customdata[1]}") + "<br>%{text}<extra></extra>",
        showlegend=False,
    )


def stat_heatmaps(
    stats: dict[str, np.ndarray],
    titles: dict[str, str],
    *,
    selected: tuple[int, int] | None = None,
    scheme: str = "colour",
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """One layer×head heatmap per statistic (``stats[key]`` of shape (L, H)), titled ``titles[key]``.

    Up to ``PANEL_COLUMNS`` maps stand side by side, as many as a figure ``width_px`` wide (at
    the projector's larger type in ``presenter`` mode) has room for; head labels are thinned to
    every k-th head where a map is too narrow for all of them.

    Each map has its own colour bar (0..1 for shares and normalised values, 0..max otherwise);
    NaN cells (a statistic undefined for a head) stay blank. Every cell carries an invisible
    marker with ``customdata`` [layer, head], 1-based, so a click selects that head through
    ``st.plotly_chart(..., on_select="rerun", selection_mode="points")``, as in the overview.
    ``selected`` (0-based layer, head) is outlined in every map.
    """
    if not stats:
        raise ValueError("stat_heatmaps needs at least one statistic")
    shapes = {key: np.shape(values) for key, values in stats.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f"every statistic must be one (layers, heads) array, got shapes {shapes}")
    layers, heads = next(iter(shapes.values()))
    if selected is not None and not (0 <= selected[0] < layers and 0 <= selected[1] < heads):
        raise ValueError(f"selected head {selected} is outside {layers} layers x {heads} heads")
    keys = list(stats)
    figure_px = width_px / font_scale(presenter)
    columns = max(1, min(PANEL_COLUMNS, len(keys), int(figure_px // (heads * MIN_CELL_PX + MAP_FRAME_PX))))
    head_step, _angle = spread(heads, figure_px / columns - MAP_FRAME_PX, label_px=text_px(f"H{heads}"))
    labelled_heads = list(range(1, heads + 1, head_step))
    panel_rows = -(-len(keys) // columns)
    # A title may be as wide as its map: wider, it would run into its neighbour's title or past
    # the figure's edge (a German title over a narrow map did both).
    spacing = SPACING if columns > 1 else 0.0
    map_px = (figure_px - MARGIN_L_PX - MARGIN_R_PX) * (1 - spacing * (columns - 1)) / columns
    title_lines = [wrap(literal(titles.get(key, key)), map_px, TITLE_FONT_PX) for key in keys]
    title_px = TITLE_LINE_PX * max(len(lines) for lines in title_lines)
    row_px = layers * CELL_PX + 70 + title_px
    figure = make_subplots(
        rows=panel_rows,
        cols=columns,
        subplot_titles=["<br>".join(lines) for lines in title_lines],
        horizontal_spacing=spacing,
        # Between two rows of maps: the lower one's title and the upper one's head labels.
        vertical_spacing=min(0.25, (GAP_PX + title_px - TITLE_LINE_PX) / (panel_rows * row_px - 10)) if panel_rows > 1 else 0.0,
    )
    for index, key in enumerate(keys):
        values = np.asarray(stats[key], dtype=np.float32)
        row, col = index // columns + 1, index % columns + 1
        subplot = figure.get_subplot(row, col)
        x_domain, y_domain = subplot.xaxis.domain, subplot.yaxis.domain
        colorbar = dict(x=x_domain[1] + 0.005, xanchor="left", y=(y_domain[0] + y_domain[1]) / 2, yanchor="middle", len=y_domain[1] - y_domain[0], thickness=8)
        figure.add_trace(head_cells(values, scheme, colorbar), row=row, col=col)
        shown = [f"{value:.3f}" if np.isfinite(value) else "—" for value in values.ravel().tolist()]
        figure.add_trace(head_markers(layers, heads, [f"{literal(titles.get(key, key))}: {value}" for value in shown]), row=row, col=col)
        axis = dict(row=row, col=col, showgrid=False, zeroline=False, tickmode="array")
        figure.update_xaxes(tickvals=labelled_heads, ticktext=[f"H{h}" for h in labelled_heads], side="bottom", **axis)
        figure.update_yaxes(tickvals=list(range(1, layers + 1)), ticktext=[f"L{layer}" for layer in range(1, layers + 1)], autorange="reversed", **axis)
        if selected is not None:
            layer, head = selected
            figure.add_shape(
                type="rect", x0=head + 0.5, x1=head + 1.5, y0=layer + 0.5, y1=layer + 1.5, line=dict(color=SELECTED_COLOUR, width=2), row=row, col=col
            )
    figure.update_layout(
        height=int(panel_rows * row_px + 20 + title_px),
        margin=dict(l=MARGIN_L_PX, r=MARGIN_R_PX, t=20 + title_px, b=10),
        hovermode="closest",
        hoverdistance=-1,
        clickmode="event+select",
        plot_bgcolor="white",
    )
    return figure
