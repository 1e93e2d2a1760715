"""Figures for a projector: larger type, margins and height, the same width as any other figure.

Presenter mode enlarges the page's text with CSS font sizes (``views.presenter``); a Plotly
figure sets its type in pixels, so it is enlarged here, by one pure function the page applies in
one place to every figure it draws. The figure's width is left to the page's column (Plotly's
autosize), so nothing ever runs past the column's edge: a figure that needs more room for its
labels labels every k-th token instead (``viz.labels``), for which the drawing functions take
``presenter`` and divide the width they are given by ``font_scale``.

The base sizes are those Streamlit's theme gives a figure that sets none: 12 px for tick labels
and other text, 14 px for axis and colour-bar titles, 16 px for the title.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import plotly.graph_objects as go

PROJECTOR_SCALE = 1.4
# The plot area (cells, rows of a head view, bars) grows less than the type: rows keep room for
# their larger labels, and a headline's heatmap still fits one projector screen under the text
# and the prediction.
PLOT_SCALE = 1.2
FONT_PX = 12.0
AXIS_TITLE_PX = 14.0
TITLE_PX = 16.0
HOVER_PX = 13.0


def font_scale(presenter: bool) -> float:
    """How much larger a figure's type is drawn: ``PROJECTOR_SCALE`` when presenting, else 1."""
    return PROJECTOR_SCALE if presenter else 1.0


def plot_scale(presenter: bool) -> float:
    """How much taller a figure's plot area is drawn: ``PLOT_SCALE`` when presenting, else 1."""
    return PLOT_SCALE if presenter else 1.0


def _bigger(font: Any, base: float, scale: float) -> None:
    font.size = (font.size or base) * scale


def _colour_bars(figure: go.Figure) -> Iterator[Any]:
    """The colour bars drawn: a heatmap's unless switched off, a marker's only when switched on."""
    for trace in figure.data:
        if "colorbar" in trace and trace.showscale is not False:
            yield trace.colorbar
        marker = getattr(trace, "marker", None)
        if marker is not None and "colorbar" in marker and marker.showscale:
            yield marker.colorbar


def for_projector(figure: go.Figure, scale: float = PROJECTOR_SCALE, plot: float = PLOT_SCALE) -> go.Figure:
    """A copy of ``figure`` with every font, margin and colour bar ``scale`` times larger, its plot area ``plot`` times taller.

    Sizes the figure left to Plotly's defaults are scaled from the base sizes above, so a tick
    label goes from 12 to 16.8 px whether or not the figure set it. The margins hold the labels
    and titles, so they grow with the type.
    """
    figure = go.Figure(figure)
    layout = figure.layout
    _bigger(layout.font, FONT_PX, scale)
    _bigger(layout.hoverlabel.font, HOVER_PX, scale)
    _bigger(layout.legend.font, FONT_PX, scale)
    if layout.title.text:
        _bigger(layout.title.font, TITLE_PX, scale)

    def axis(axis: Any) -> None:
        _bigger(axis.tickfont, FONT_PX, scale)
        _bigger(axis.title.font, AXIS_TITLE_PX, scale)

    figure.for_each_xaxis(axis)
    figure.for_each_yaxis(axis)
    for annotation in layout.annotations:  # subplot titles
        _bigger(annotation.font, FONT_PX, scale)
    for bar in _colour_bars(figure):
        _bigger(bar.tickfont, FONT_PX, scale)
        _bigger(bar.title.font, AXIS_TITLE_PX, scale)
        bar.thickness = (bar.thickness or 30) * scale
        if bar.lenmode == "pixels" and bar.len is not None:
            bar.len *= plot
    for trace in figure.data:
        textfont = getattr(trace, "textfont", None)
        if textfont is not None and textfont.size is not None:
            textfont.size *= scale
    margin = layout.margin
    vertical_px = (margin.t or 0) + (margin.b or 0)
    for side in ("l", "r", "t", "b"):
        if margin[side] is not None:
            margin[side] = margin[side] * scale
    if layout.height is not None:
        layout.height = round((layout.height - vertical_px) * plot + vertical_px * scale)
    return figure
