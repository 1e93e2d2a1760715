"""Alignment heatmaps in the orientation of Bahdanau, Cho & Bengio (2015), Fig. 3.

Source (key) tokens run along the top, target (query) tokens down the left, so row i is what
query i attended to; cell colour is the weight.

The colour scale (``scale=``, the page's "Colour scale" in the sidebar) is one of ``SCALES``:

- ``"fixed"``: 0..1, the paper's; figures of different heads and models compare by eye, but a
  near-uniform head (weights about 1/n) or a classifier's pooling row (a dozen words share 1) is
  one flat block of the bottom colour;
- ``"stretch"``: 0..the matrix's own largest weight, so its structure shows whatever its size;
- ``"auto"`` (the default): stretched when the largest weight is under ``AUTO_STRETCH_BELOW``
  (0.3), where the fixed scale would leave it in the bottom third, else fixed 0..1. A sharp
  alignment such as the date model's (largest weights near 1) keeps the paper's scale.

The colour bar states the range actually drawn: its ticks are 0, the middle and the top value
(0.128 for a stretched head, 1 for the fixed scale), and its title says when the scale was
stretched ("weight (stretched)", or "(auto-stretched)" when ``auto`` chose it). The bar is never
shorter than ``COLOUR_BAR_MIN_PX``: beside a one-row heatmap (the RNN's pooling row) it hangs
below the row into a bottom margin made for it, instead of shrinking to the row's height.

Figures stay light at 512 tokens: the matrix travels as one float32 block (Plotly's typed-array
encoding), and hover names both tokens through the axes' category names ("4 · the") instead of
one hover string per cell, which is what made a 512-token heatmap weigh 8.5 MB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.colours import COLOUR_SCHEMES, colourscale
from viz.labels import DEFAULT_WIDTH_PX, TokenAxis, literal, longest_label, text_px, widest_px
from viz.pooling import block_mean
from viz.present import font_scale, plot_scale
from viz.words import _

__all__ = ["COLOUR_SCHEMES", "Panel", "TokenAxis", "alignment_heatmap", "heatmap_panels"]

CELL_PX = 22
MIN_HEIGHT_PX = 160
MAX_HEIGHT_PX = 2200
MARGIN_PX = 140
# Cell gaps read well on short inputs and turn a long one into a grid of lines.
GAP_TOKENS = 60
# Cells of all panels of one figure together: about 3 MB as float32, under the 5 MB a view may send.
PANEL_CELL_BUDGET = 600_000
SCALES = ("auto", "fixed", "stretch")
# Under this largest weight the fixed 0..1 scale shows a matrix in its bottom third only: a
# transformer head over n tokens that spreads evenly is 1/n everywhere, a pooling row shares 1
# among all the words. Sharp alignments (the date model's are near 1) stay on the paper's scale.
AUTO_STRETCH_BELOW = 0.3
# A colour bar shorter than this has no room for its title and three tick labels.
COLOUR_BAR_MIN_PX = 140
# What a figure's width holds beside the cells of a heatmap: the colour bar with its tick labels
# (or its title, when that is wider), the row axis' title, and the figure's own side margins
# (the row labels are counted apart).
COLOUR_BAR_PX = 60
AXIS_TITLE_FONT_PX = 14  # axis and colour-bar titles
ROW_TITLE_PX = 24
SIDE_MARGINS_PX = 20
# Side by side, a panel narrower than this (cells only) is stacked with the others instead.
MIN_PANEL_PX = 140


def _check(weights: np.ndarray, source_tokens: Sequence[str], target_tokens: Sequence[str]) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(f"weights of shape {weights.shape} do not match {len(target_tokens)} target x {len(source_tokens)} source tokens")
    return weights


def stretched(weights: np.ndarray, scale: str) -> bool:
    """Whether ``scale`` maps this matrix's own largest weight to the top colour (see the module's docstring)."""
    if scale not in SCALES:
        raise ValueError(f"unknown colour scale {scale!r}; choose one of {SCALES}")
    top = float(np.nanmax(weights, initial=0.0))
    if scale == "auto":
        return 0.0 < top < AUTO_STRETCH_BELOW
    return scale == "stretch" and top > 0.0


def value_range(weights: np.ndarray, *, scale: str = "auto", signed: bool = False) -> tuple[float, float]:
    """The colour range: 0..1, 0..max when ``scale`` stretches it, or -m..m (m = largest |value|) when signed."""
    if signed:
        reach = float(np.nanmax(np.abs(weights), initial=0.0))
        reach = reach if reach > 0 else 1.0
        return -reach, reach
    if stretched(weights, scale):
        return 0.0, float(np.nanmax(weights))
    return 0.0, 1.0


def colour_bar_ticks(zmin: float, zmax: float) -> dict:
    """Ticks at both ends of the range drawn and its middle, labelled with their values ("0", "0.064", "0.128")."""
    values = [zmin, (zmin + zmax) / 2, zmax]
    return dict(tickmode="array", tickvals=values, ticktext=[f"{value:.3g}" for value in values])


def colour_bar_fit(plot_px: float, share: float = 1.0) -> tuple[dict, int]:
    """A vertical colour bar from the top of a plot ``plot_px`` tall, ``share`` of its height but never under ``COLOUR_BAR_MIN_PX``.

    Returns the bar's position and length (in pixels), and how far it reaches below the plot: the
    pixels the bottom margin must add so that it stays on the figure.
    """
    length = max(float(COLOUR_BAR_MIN_PX), share * plot_px)
    return dict(lenmode="pixels", len=length, y=1.0, yanchor="top"), math.ceil(max(0.0, length - plot_px))


def colour_bar_title(value_title: str, scale: str, stretched_here: bool) -> str:
    """The colour bar's title: the value's name, and whether (and why) its scale was stretched."""
    if not stretched_here:
        return value_title
    if scale == "auto":
        return _("{value} (auto-stretched)").format(value=value_title)
    return _("{value} (stretched)").format(value=value_title)


def _trace(
    weights: np.ndarray,
    x: TokenAxis,
    y: TokenAxis,
    *,
    scheme: str,
    scale: str,
    signed: bool,
    value_title: str | None,
    colorbar: dict,
) -> go.Heatmap:
    zmin, zmax = value_range(weights, scale=scale, signed=signed)
    value_title = _("weight") if value_title is None else value_title
    bar_title = value_title if signed else colour_bar_title(value_title, scale, stretched(weights, scale))
    return go.Heatmap(
        # float32 halves what travels to the browser; hover shows 4 decimals, far above its precision.
        z=weights.astype(np.float32),
        x=x.names,
        y=y.names,
        zmin=zmin,
        zmax=zmax,
        colorscale=colourscale(scheme, signed=signed),
        hovertemplate=f"<b>%{{y}}</b> → <b>%{{x}}</b><br>{literal(value_title)} %{{z:.4f}}<extra></extra>",
        colorbar=dict(title=bar_title, thickness=12, **colour_bar_ticks(zmin, zmax), **colorbar),
        xgap=1 if len(x.names) <= GAP_TOKENS else 0,
        ygap=1 if len(y.names) <= GAP_TOKENS else 0,
    )


def _axis_titles(source_title: str | None, target_title: str | None) -> tuple[str, str]:
    """The axis titles given, or the reader's words for keys along the top and queries down the side."""
    return (_("source (keys)") if source_title is None else source_title, _("target (queries)") if target_title is None else target_title)


def _columns_px(width_px: float, presenter: bool, row_tokens: Sequence[str], reserved_px: float) -> float:
    """The length of a heatmap's column axis in a figure ``width_px`` wide, in the figure's own pixels.

    In presenter mode the type is drawn larger (``viz.present``), which leaves as many fewer
    labels room as a figure that much narrower.
    """
    return width_px / font_scale(presenter) - reserved_px - ROW_TITLE_PX - widest_px(row_tokens)


def colour_bar_width(title: str | None) -> float:
    """The width a vertical colour bar takes beside the plot: its bar and tick labels, or its title above them."""
    return max(COLOUR_BAR_PX, text_px(title or "", AXIS_TITLE_FONT_PX) + 20)


def _on_screen(rows_px: float, presenter: bool) -> float:
    """A plot's height as its row labels see it: in presenter mode the rows grow less than the type."""
    return rows_px * plot_scale(presenter) / font_scale(presenter)


def _token_axes(figure: go.Figure, x: TokenAxis, y: TokenAxis, source_title: str, target_title: str, columns_px: float, rows_px: float, **where) -> str:
    """Tick labels that fit the columns' and rows' lengths on screen; an axis title says when they were thinned.

    Returns the column axis' title.
    """
    x_ticks, y_ticks = x.ticks(columns_px), y.ticks(rows_px, stacked=True)
    common = dict(type="category", tickmode="array", showgrid=False, zeroline=False)
    x_title = x.title(source_title, x_ticks)
    figure.update_xaxes(side="top", tickvals=x_ticks.values, ticktext=x_ticks.texts, tickangle=x_ticks.angle, title_text=x_title, **common, **where)
    figure.update_yaxes(autorange="reversed", tickvals=y_ticks.values, ticktext=y_ticks.texts, title_text=y.title(target_title, y_ticks), **common, **where)
    return x_title


def alignment_heatmap(
    weights: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    *,
    scheme: str = "colour",
    title: str | None = None,
    source_title: str | None = None,
    target_title: str | None = None,
    scale: str = "auto",
    signed: bool = False,
    value_title: str | None = None,
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """One attention matrix as a heatmap: row i = target/query token i, column j = source token j.

    ``scale`` is "auto", "fixed" (0..1) or "stretch" (0..the largest weight), as the module's
    docstring describes; the colour bar's ticks and title state the range drawn. ``signed``
    centres a diverging scale on 0 instead, for difference maps and attributions.

    Each token is its own category ("4 · the"), so repeated tokens keep their own rows and
    columns; the ticks show the bare tokens, every one that fits the figure's ``width_px`` (in
    ``presenter`` mode, at the projector's larger type), and the axis titles say when only every
    k-th is labelled. Hover names both tokens and the value. Token text is escaped: markup typed
    by a user shows literally.
    """
    weights = _check(weights, source_tokens, target_tokens)
    source_title, target_title = _axis_titles(source_title, target_title)
    x, y = TokenAxis.of(source_tokens), TokenAxis.of(target_tokens)
    trace = _trace(
        weights,
        x,
        y,
        scheme=scheme,
        scale=scale,
        signed=signed,
        value_title=value_title,
        colorbar={},
    )
    columns_px = _columns_px(width_px, presenter, target_tokens, SIDE_MARGINS_PX + colour_bar_width(trace.colorbar.title.text))
    # Upright labels need no room above the cells for slanted ones.
    longest = min(longest_label(source_tokens), 18) if x.ticks(columns_px).angle else 0
    height = int(np.clip(CELL_PX * len(target_tokens) + MARGIN_PX + 6 * longest, MIN_HEIGHT_PX, MAX_HEIGHT_PX))
    rows_px = height - (90 + 6 * longest) - 10
    # A one-row heatmap is a plot a few dozen pixels tall: its colour bar hangs below it.
    colorbar, below_px = colour_bar_fit(rows_px, min(1.0, max(0.4, 8 / max(1, len(target_tokens)))))
    trace.colorbar.update(colorbar)
    height += below_px
    figure = go.Figure(trace)
    _token_axes(figure, x, y, source_title, target_title, columns_px, _on_screen(rows_px, presenter))
    figure.update_layout(
        # The title sits at the very top, above the source axis and its rotated labels.
        title=dict(text=literal(title), x=0.0, y=0.995, yref="container", yanchor="top") if title else None,
        height=height,
        margin=dict(l=10, r=10, t=90 + 6 * longest, b=10 + below_px),
        plot_bgcolor="white",
    )
    return figure


@dataclass(frozen=True)
class Panel:
    """One matrix of a multi-panel figure, with its own tokens and colour range."""

    title: str
    weights: np.ndarray
    source_tokens: Sequence[str]
    target_tokens: Sequence[str]
    scale: str = "auto"
    signed: bool = False
    value_title: str | None = None


def heatmap_panels(
    panels: Sequence[Panel],
    *,
    scheme: str = "colour",
    stacked: bool = False,
    title: str | None = None,
    source_title: str | None = None,
    target_title: str | None = None,
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """Several alignment heatmaps side by side (or ``stacked``), each with its own colour bar.

    For views that put matrices next to each other: rollout beside flow, raw weights beside
    attention-norms and ALTI, two sentences and their difference. Each panel's name heads its
    source axis, above the tokens, where it cannot collide with the rotated labels. Each panel
    labels the tokens its share of ``width_px`` has room for, as ``alignment_heatmap`` does;
    panels that would be narrower than ``MIN_PANEL_PX`` side by side are stacked.

    Four 512×512 panels would send 7 MB; past ``PANEL_CELL_BUDGET`` cells in all, every panel is
    averaged over k×k blocks of neighbouring tokens (the smallest k that fits; the axis titles
    say so), which at that size is finer than a panel's share of the screen anyway.
    """
    if not panels:
        raise ValueError("heatmap_panels needs at least one panel")
    source_title, target_title = _axis_titles(source_title, target_title)
    checked = [_check(p.weights, p.source_tokens, p.target_tokens) for p in panels]
    n = len(panels)
    block = max(1, math.ceil(math.sqrt(sum(w.size for w in checked) / PANEL_CELL_BUDGET)))
    if block > 1:
        source_title = _("{title}, mean of {block}×{block}-token blocks").format(title=source_title, block=block)
        checked = [block_mean(w, math.ceil(w.shape[0] / block), math.ceil(w.shape[1] / block)) for w in checked]
    # Room between panels for the next panel's row labels, on a figure ``width_px`` wide.
    row_label_px = 30 + 7 * min(max(longest_label(p.target_tokens) for p in panels), 18)
    figure_px = max(200.0, width_px / font_scale(presenter) - SIDE_MARGINS_PX)
    if n > 1 and figure_px / n - row_label_px < MIN_PANEL_PX:
        # Too narrow to stand side by side (four panels in half a laptop's page): one above the other.
        stacked = True
    longest = min(max(longest_label(p.source_tokens) for p in panels), 18)
    label_px = 80 + 6 * longest  # panel name, axis title and rotated tick labels above each panel
    title_px = 30 if title else 0
    bottom_px = 10 if stacked else 80  # side by side, the colour bars sit below the panels
    rows_px = np.array([max(2, len(p.target_tokens)) * CELL_PX for p in panels], dtype=float)
    if stacked:
        # Each panel gets its rows' height; the gap above each one holds its labels.
        rows_px *= min(1.0, (MAX_HEIGHT_PX - n * label_px) / rows_px.sum())
        plot_px = float(rows_px.sum() + (n - 1) * label_px)
        figure = make_subplots(rows=n, cols=1, vertical_spacing=label_px / plot_px if n > 1 else 0.0, row_heights=rows_px.tolist())
    else:
        plot_px = float(min(rows_px.max(), MAX_HEIGHT_PX - label_px))
        figure = make_subplots(rows=1, cols=n, horizontal_spacing=min(0.3, row_label_px / figure_px) if n > 1 else 0.0)
    for index, (panel, weights) in enumerate(zip(panels, checked)):
        row, col = (index + 1, 1) if stacked else (1, index + 1)
        subplot = figure.get_subplot(row, col)
        x_domain, y_domain = subplot.xaxis.domain, subplot.yaxis.domain
        if stacked:
            colorbar = dict(
                x=x_domain[1] + 0.005,
                xanchor="left",
                y=(y_domain[0] + y_domain[1]) / 2,
                yanchor="middle",
                lenmode="pixels",
                len=max(80.0, (y_domain[1] - y_domain[0]) * plot_px),
            )
        else:
            # Below its own panel: beside it, a colour bar would run into the next panel's labels.
            colorbar = dict(
                orientation="h", x=(x_domain[0] + x_domain[1]) / 2, xanchor="center", y=-0.02, yanchor="top", len=x_domain[1] - x_domain[0], title_side="top"
            )
        x, y = TokenAxis.of(panel.source_tokens, weights.shape[1]), TokenAxis.of(panel.target_tokens, weights.shape[0])
        trace = _trace(
            weights,
            x,
            y,
            scheme=scheme,
            scale=panel.scale,
            signed=panel.signed,
            value_title=panel.value_title,
            colorbar=colorbar,
        )
        figure.add_trace(trace, row=row, col=col)
        axis_title = f"<b>{literal(panel.title)}</b><br>{source_title}"
        reserved_px = SIDE_MARGINS_PX + (colour_bar_width(trace.colorbar.title.text) if stacked else 0)
        columns_px = (x_domain[1] - x_domain[0]) * _columns_px(width_px, presenter, panel.target_tokens, reserved_px)
        panel_rows_px = _on_screen(float(rows_px[index]) if stacked else plot_px, presenter)
        x_title = _token_axes(figure, x, y, axis_title, target_title if col == 1 else "", columns_px, panel_rows_px, row=row, col=col)
        # The last panel's axis title is centred on it and may be wider (the thinning note): room on the right.
        axis_title_px = max(text_px(line, AXIS_TITLE_FONT_PX) for line in x_title.replace("<b>", "").replace("</b>", "").split("<br>"))
        overhang_px = max(0.0, (axis_title_px - (x_domain[1] - x_domain[0]) * (width_px / font_scale(presenter))) / 2)
    figure.update_layout(
        title=dict(text=literal(title), x=0.0, y=0.995, yref="container", yanchor="top") if title else None,
        height=int(max(MIN_HEIGHT_PX, plot_px + label_px + title_px + bottom_px)),
        margin=dict(l=10, r=60 if stacked else 10 + math.ceil(overhang_px), t=label_px + title_px, b=bottom_px),
        plot_bgcolor="white",
    )
    return figure
