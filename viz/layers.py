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
FONT_PX = 12
LINE_PX = 16  # one line of the class labels over the grid
LABEL_PAD_PX = 16  # between the grid's top and its labels' first line, and above their last (measured in Chromium)
TITLE_FONT_PX = 14
TITLE_LINE_PX = 19  # one line of the titles above them
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
    # Widths as drawn before presenter mode enlarges the type (viz.present): the row labels come off the plot.
    figure_px = width_px / font_scale(presenter)
    plot_px = figure_px - 2 * MARGIN_PX - widest_px([*names, answer]) - 10
    grid_px, bars_px = (plot_px * (1 - SPACING) * share for share in (GRID_SHARE, 1 - GRID_SHARE))
    # A class label wider than its column is broken at its spaces ("Wissenschaft &" over "Technik").
    wrapped = ["<br>".join(wrap(column, max(grid_px / classes - 6, 1))) for column in columns]
    label_lines = max(column.count("<br>") + 1 for column in wrapped)
    accuracy_title = _("accuracy") if test_accuracy is None else _("accuracy: validation (test)")
    titles = [
        wrap(literal(title), width, TITLE_FONT_PX) for title, width in ((_("probe's class probabilities for this text"), grid_px), (accuracy_title, bars_px))
    ]
    title_lines = max(len(lines) for lines in titles)
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
                textfont=dict(size=FONT_PX),
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
    figure.update_xaxes(tickangle=0, row=1, col=1)
    figure.update_xaxes(range=[0.0, 1.0], showticklabels=False, row=1, col=2)
    # Both titles stand at one height, over the class labels, whatever the bars' axis shows.
    for lines, subplot in zip(titles, (figure.get_subplot(1, 1), figure.get_subplot(1, 2))):
        figure.add_annotation(
            text="<br>".join(lines),
            x=sum(subplot.xaxis.domain) / 2,
            y=1.0,
            xref="paper",
            yref="paper",
            xanchor="center",
            yanchor="bottom",
            yshift=(LINE_PX * label_lines + LABEL_PAD_PX) * font_scale(presenter),
            showarrow=False,
            font=dict(size=TITLE_FONT_PX),
        )
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
    top_px = TITLE_LINE_PX * title_lines + LINE_PX * label_lines + LABEL_PAD_PX + 6
    figure.update_layout(
        height=int(ROW_PX * (rows + 1 + OUTPUT_GAP) + top_px + MARGIN_PX),
        margin=dict(l=MARGIN_PX, r=MARGIN_PX, t=top_px, b=MARGIN_PX),
        plot_bgcolor="white",
        bargap=0.3,
        showlegend=False,
    )
    return figure
