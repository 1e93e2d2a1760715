"""Class probabilities as a horizontal bar chart, the predicted class highlighted."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.labels import literal
from viz.words import _

PREDICTED_COLOUR = "#1f77b4"
OTHER_COLOUR = "#aec7e8"


def probability_bars(labels: Sequence[str], probs: np.ndarray, title: str | None = None) -> go.Figure:
    """Bars on a fixed 0..1 axis, labels top to bottom in the model's label order."""
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
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    figure.update_xaxes(range=[0.0, 1.08], tickformat=".0%", title_text=_("probability"))
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(
        title=dict(text=literal(title), x=0.0) if title else None,
        height=60 + 36 * max(1, len(labels)),
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
    )
    return figure
