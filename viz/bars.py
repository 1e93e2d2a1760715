"""Class probabilities as a compact horizontal bar chart, the predicted class highlighted.

Compact because it stands above the attention figure, which must still start on a laptop's
first screen: a bar per class, each printed with its percentage, and no axis below (the bars
share a fixed 0..1 range, so two charts side by side compare by length).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.labels import literal

PREDICTED_COLOUR = "#1f77b4"
OTHER_COLOUR = "#aec7e8"
ROW_PX = 24
# Room right of the longest bar for its percentage ("100.0%").
TEXT_PX = 52


def probability_bars(labels: Sequence[str], probs: np.ndarray, title: str | None = None) -> go.Figure:
    """Bars on a fixed 0..1 axis, labels top to bottom in the model's label order, each bar's percentage beside it."""
    probs = np.asarray(probs, dtype=float)
    if probs.shape != (len(labels),):
        raise ValueError(f"{len(labels)} labels but probabilities of shape {probs.shape}")
    winner = int(np.argmax(probs)) if len(labels) else -1
    figure = go.Figure(
        go.Bar(
            x=probs,
            y=[literal(label) for label in labels],
            orientation="h",
            marker_color=[PREDICTED_COLOUR if i == winner else OTHER_COLOUR for i in range(len(labels))],
            text=[f"{p:.1%}" for p in probs],
            textposition="outside",
            # A full bar's percentage is drawn in the right margin instead of being cut off.
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    figure.update_xaxes(range=[0.0, 1.0], visible=False, fixedrange=True)
    figure.update_yaxes(autorange="reversed", fixedrange=True)
    figure.update_layout(
        title=dict(text=literal(title), x=0.0) if title else None,
        height=(34 if title else 8) + ROW_PX * max(1, len(labels)),
        margin=dict(l=10, r=TEXT_PX, t=30 if title else 4, b=4),
        bargap=0.25,
        showlegend=False,
    )
    return figure
