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
from viz.heatmap import TokenAxis, colour_bar_fit, colour_bar_ticks
from viz.labels import literal, longest_label, tick_angle
from viz.words import _

ROW_PX = 34


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
) -> go.Figure:
    """One strip per method (``rows[name]`` of shape (S,)) over the same ``tokens``, top to bottom.

    Colours run over -1..1 on a diverging scale when ``signed`` (negative evidence blue,
    positive red), over 0..1 otherwise. Hover names the method, the token and the raw value.
    """
    if not rows:
        raise ValueError("token_strips needs at least one row")
    bad = {name: np.shape(values) for name, values in rows.items() if np.shape(values) != (len(tokens),)}
    if bad:
        raise ValueError(f"every row needs one value per token ({len(tokens)}), got shapes {bad}")
    raw = np.stack([np.asarray(values, dtype=np.float32) for values in rows.values()])
    names = [literal(name) for name in rows]
    axis = TokenAxis.of(tokens)
    x_values, x_text = axis.ticks()
    longest = longest_label(tokens)
    top_px = 70 + 6 * min(longest, 18)
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
            colorbar=dict(title=_("share of row max"), thickness=10, **colour_bar_ticks(zmin, 1.0), **colorbar),
        )
    )
    figure.update_xaxes(
        type="category", side="top", tickmode="array", tickvals=x_values, ticktext=x_text, tickangle=tick_angle(tokens), showgrid=False, zeroline=False
    )
    figure.update_yaxes(type="category", autorange="reversed", showgrid=False, zeroline=False)
    figure.update_layout(
        title=dict(text=literal(title), x=0.0, y=0.995, yref="container", yanchor="top") if title else None,
        height=int(top_px + plot_px + 10 + below_px),
        margin=dict(l=10, r=10, t=top_px, b=10 + below_px),
        plot_bgcolor="white",
    )
    return figure
