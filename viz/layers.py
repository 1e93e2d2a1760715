"""Linear probes layer by layer: a grid of class probabilities, one row per layer, the model's own answer below.

One row per probe, from the embeddings down to the last layer, each cell a class's probability
written as a percentage (the row's most likely class in bold); a row apart at the bottom holds
the model's own probabilities, so the eye runs down the depth to the answer. Beside the grid,
each probe's validation accuracy as a bar: a row whose probe is barely better than chance says
little about that layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.colours import colourscale
from viz.labels import DEFAULT_WIDTH_PX, literal, widest_px, wrap
from viz.present import font_scale
from viz.words import _

ROW_PX = 34
# The model's row stands this many rows below the last probe's.
OUTPUT_GAP = 0.35
GRID_SHARE = 0.74
SPACING = 0.04
MARGIN_PX = 10
LINE_PX = 16  # one line of the class labels over the grid
TITLE_PX = 22  # the axis titles above them
BAR_COLOUR = "#7f7f7f"


def layer_names(count: int) -> list[str]:
    """Row names of ``count`` probes: the embeddings, then layer 1, 2, …"""
    return [_("Embeddings") if layer == 0 else _("Layer {layer}").format(layer=layer) for layer in range(count)]


def _cells(probs: np.ndarray) -> list[list[str]]:
    """Each probability as a percentage, the row's largest in bold."""
    return [[f"<b>{p:.0%}</b>" if i == int(np.argmax(row)) else f"{p:.0%}" for i, p in enumerate(row)] for row in probs]


def probe_grid(
    probs: np.ndarray,
    accuracy: Sequence[float],
    output: np.ndarray,
    labels: Sequence[str],
    *,
    test_accuracy: Sequence[float] | None = None,
    scheme: str = "colour",
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """``probs`` (probes, classes), one row per probe with its ``accuracy``, and the model's ``output`` (classes,) below.

    ``labels`` name the classes (columns). Every row is a probability distribution; the colours
    run over the fixed 0..1 range so that rows compare. ``test_accuracy``, when given, is written
    in brackets after each probe's accuracy.
    """
    probs = np.asarray(probs, dtype=float)
    output = np.asarray(output, dtype=float)
    rows, classes = probs.shape
    if output.shape != (classes,) or len(labels) != classes or len(accuracy) != rows or (test_accuracy is not None and len(test_accuracy) != rows):
        raise ValueError(f"{rows} probes over {classes} classes need {rows} accuracies, {classes} labels and {classes} output probabilities")
    names = layer_names(rows)
    answer = _("The model's answer")
    columns = [literal(label) for label in labels]
    figure_px = width_px / font_scale(presenter)
    cell_px = (figure_px - 2 * MARGIN_PX - widest_px([*names, answer]) - 10) * (GRID_SHARE - SPACING / 2) / classes
    # A class label wider than its column is broken at its spaces ("Wissenschaft &" over "Technik").
    wrapped = ["<br>".join(wrap(column, max(cell_px - 6, 1))) for column in columns]
    label_lines = max(column.count("<br>") + 1 for column in wrapped)
    probe_y = list(range(rows))
    output_y = rows + OUTPUT_GAP

    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[GRID_SHARE, 1 - GRID_SHARE], horizontal_spacing=SPACING)
    scale = colourscale(scheme)
    for z, y, row_names in ((probs, probe_y, names), (output[np.newaxis], [output_y], [answer])):
        figure.add_trace(
            go.Heatmap(
                z=z,
                x=wrapped,
                y=y,
                zmin=0.0,
                zmax=1.0,
                colorscale=scale,
                showscale=False,
                text=_cells(z),
                texttemplate="%{text}",
                customdata=[[literal(name)] * classes for name in row_names],
                hovertemplate="%{customdata}<br>%{x}: %{z:.4f}<extra></extra>",
                xgap=2,
                ygap=2,
            ),
            row=1,
            col=1,
        )
    figure.add_trace(
        go.Bar(
            x=list(accuracy),
            y=probe_y,
            orientation="h",
            marker_color=BAR_COLOUR,
            text=[f"{value:.2f}" for value in accuracy]
            if test_accuracy is None
            else [f"{value:.2f} ({test:.2f})" for value, test in zip(accuracy, test_accuracy)],
            textposition="inside",
            insidetextanchor="end",
            customdata=[literal(name) for name in names],
            hovertemplate="%{customdata}: %{x:.4f}<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    figure.update_xaxes(side="top", showgrid=False, zeroline=False, fixedrange=True, automargin=True)
    figure.update_xaxes(title_text=_("probe's class probabilities for this text"), tickangle=0, row=1, col=1)
    accuracy_title = _("probe accuracy") if test_accuracy is None else _("probe accuracy (test)")
    figure.update_xaxes(title_text=accuracy_title, range=[0.0, 1.0], showticklabels=False, row=1, col=2)
    figure.update_yaxes(
        tickmode="array",
        tickvals=[*probe_y, output_y],
        ticktext=[literal(name) for name in [*names, answer]],
        range=[output_y + 0.5, -0.5],
        showgrid=False,
        zeroline=False,
        fixedrange=True,
        automargin=True,
    )
    top_px = TITLE_PX + LINE_PX * label_lines + 12
    figure.update_layout(
        height=int(ROW_PX * (rows + 1 + OUTPUT_GAP) + top_px + MARGIN_PX),
        margin=dict(l=MARGIN_PX, r=MARGIN_PX, t=top_px, b=MARGIN_PX),
        plot_bgcolor="white",
        bargap=0.3,
        showlegend=False,
    )
    return figure
