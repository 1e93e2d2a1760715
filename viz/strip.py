"""Token strips: one row of coloured tokens per method, attributions next to attention.

Methods disagree on scale (an attention row sums to 1, a gradient has no fixed unit), so each
row is divided by its own largest |value|: colours compare *where* each method looks, the raw
value stays on hover. The colour bar is never shorter than ``viz.heatmap.COLOUR_BAR_MIN_PX``: beside
a single strip it hangs below the row instead of shrinking to the row's height.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.colours import colourscale
from viz.heatmap import SIDE_MARGINS_PX, colour_bar_fit, colour_bar_ticks, colour_bar_width
from viz.labels import DEFAULT_WIDTH_PX, TokenAxis, literal, longest_label, text_px
from viz.present import font_scale
from viz.words import _

ROW_PX = 34
# A marked column's rank badges: drawn only where a cell is at least this wide, so a badge never
# covers its neighbours (a long text keeps the frame alone).
BADGE_FONT_PX = 11.0
BADGE_PAD_PX = 8.0
# Method names wider than this share of the figure go on two lines.
NAMES_SHARE = 0.3


def _two_lines(name: str) -> tuple[str, str]:
    """A method's name with its citation on a second line: (the label as Plotly text, its lines as plain text)."""
    head, cut, tail = name.partition(" (")
    if not cut:
        return literal(name), name
    return f"{literal(head)}<br>({literal(tail)}", f"{head}\n({tail}"


def normalise_rows(values: np.ndarray) -> np.ndarray:
    """Each row divided by its largest |value|; an all-zero row stays zero."""
    values = np.asarray(values, dtype=np.float32)
    reach = np.abs(values).max(axis=-1, keepdims=True, initial=0.0)
    return np.divide(values, reach, out=np.zeros_like(values), where=reach > 0)


def token_strips(
    rows: dict[str, np.ndarray],
    tokens: Sequence[str],
    *,
    signed: bool = True,
    title: str | None = None,
    scheme: str = "colour",
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
    marked: Sequence[int] = (),
    badges: Sequence[str] = (),
    badge_hovers: Sequence[str] = (),
) -> go.Figure:
    """One strip per method (``rows[name]`` of shape (S,)) over the same ``tokens``, top to bottom.

    Colours run over -1..1 on a diverging scale when ``signed`` (negative evidence blue,
    positive red), over 0..1 otherwise. Hover names the method, the token and the raw value.
    Tokens are labelled as densely as ``width_px`` allows (``viz.labels``), the axis title
    saying when only every k-th is.

    ``marked`` columns (indices into ``tokens``) are framed through every strip, and
    ``badges``, one per row ("" for none), are written on the first of them (``mark_columns``).
    """
    if not rows:
        raise ValueError("token_strips needs at least one row")
    bad = {name: np.shape(values) for name, values in rows.items() if np.shape(values) != (len(tokens),)}
    if bad:
        raise ValueError(f"every row needs one value per token ({len(tokens)}), got shapes {bad}")
    raw = np.stack([np.asarray(values, dtype=np.float32) for values in rows.values()])
    names = [literal(name) for name in rows]
    axis = TokenAxis.of(tokens)
    bar_title = _("share of row max")
    figure_px = width_px / font_scale(presenter)
    # The method names stand left of the strips, the colour bar right of them; in a narrow figure
    # a name's citation goes on a second line, leaving the tokens the room it took.
    wrap = max(text_px(name) for name in rows) > NAMES_SHARE * figure_px
    shown_names = [_two_lines(name) if wrap else (literal(name), name) for name in rows]
    names_px = max(text_px(line) for _text, name in shown_names for line in name.split("\n"))
    columns_px = figure_px - SIDE_MARGINS_PX - colour_bar_width(bar_title) - names_px
    ticks = axis.ticks(columns_px)
    longest = longest_label(tokens)
    top_px = 70 + 6 * min(longest, 18) + (20 if ticks.step > 1 else 0)
    plot_px = ROW_PX * len(rows) + 30
    colorbar, below_px = colour_bar_fit(plot_px)
    zmin = -1.0 if signed else 0.0
    figure = go.Figure(
        go.Heatmap(
            z=normalise_rows(raw),
            x=axis.names,
            y=names,
            customdata=raw,
            zmin=zmin,
            zmax=1.0,
            colorscale=colourscale(scheme, signed=signed),
            xgap=1,
            ygap=3,
            hovertemplate="%{y}<br><b>%{x}</b><br>" + _("value %{customdata:.4g} (%{z:.0%} of the row's largest)") + "<extra></extra>",
            colorbar=dict(title=bar_title, thickness=10, **colour_bar_ticks(zmin, 1.0), **colorbar),
        )
    )
    figure.update_xaxes(
        type="category",
        side="top",
        tickmode="array",
        tickvals=ticks.values,
        ticktext=ticks.texts,
        tickangle=ticks.angle,
        # Said only when some tokens go unlabelled, in the room the top margin keeps for it.
        title_text=axis.title(_("tokens"), ticks) if ticks.step > 1 else None,
        showgrid=False,
        zeroline=False,
    )
    figure.update_yaxes(
        type="category", autorange="reversed", tickmode="array", tickvals=names, ticktext=[text for text, _name in shown_names], showgrid=False, zeroline=False
    )
    figure.update_layout(
        title=dict(text=literal(title), x=0.0, y=0.995, yref="container", yanchor="top") if title else None,
        height=int(top_px + plot_px + 10 + below_px),
        margin=dict(l=10, r=10, t=top_px, b=10 + below_px),
        plot_bgcolor="white",
    )
    if marked:
        mark_columns(figure, marked, len(rows), badges=badges, hovers=badge_hovers, cell_px=columns_px / len(tokens))
    return figure


def mark_columns(
    figure: go.Figure, columns: Sequence[int], rows: int, *, badges: Sequence[str] = (), hovers: Sequence[str] = (), cell_px: float = float("inf")
) -> go.Figure:
    """Frame ``columns`` of a strips figure through all its ``rows``; write ``badges`` (one per row) on the first.

    The frame is black outside and white inside, so it shows on every colour of both schemes
    (grayscale runs from black to white). A badge is a small white box in the middle of its cell,
    with ``hovers`` (one per row) as its hover text; badges are left out when a cell is
    narrower than the widest of them (``cell_px``, the cell's width on screen). Changes and
    returns ``figure``.
    """
    if badges and len(badges) != rows:
        raise ValueError(f"one badge per row ({rows}), got {len(badges)}")
    if hovers and len(hovers) != rows:
        raise ValueError(f"one hover text per row ({rows}), got {len(hovers)}")
    for column in columns:
        for colour, width in (("black", 4), ("white", 1.5)):
            figure.add_shape(
                type="rect",
                xref="x",
                yref="y",
                x0=column - 0.5,
                x1=column + 0.5,
                y0=-0.5,
                y1=rows - 0.5,
                line=dict(color=colour, width=width),
                fillcolor="rgba(0,0,0,0)",
                layer="above",
            )
    fits = bool(badges) and max(text_px(badge, BADGE_FONT_PX) for badge in badges) + BADGE_PAD_PX <= cell_px
    if columns and fits:
        for row, badge in enumerate(badges):
            if not badge:
                continue
            figure.add_annotation(
                x=columns[0],
                y=row,
                xref="x",
                yref="y",
                text=literal(badge),
                hovertext=literal(hovers[row]) if hovers else None,
                showarrow=False,
                font=dict(size=BADGE_FONT_PX, color="black"),
                bgcolor="white",
                bordercolor="black",
                borderwidth=1,
                borderpad=1,
            )
    return figure
