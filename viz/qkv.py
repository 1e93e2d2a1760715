"""How one head weighed the keys for one query, drawn as bertviz's neuron view over every key.

The steps stand one above the other over the same key tokens, one column per key, so a column
can be followed down from the key's vector to its weight (Vig 2019, "A Multiscale Visualization
of Attention in the Transformer Model", the neuron view). A step is either strips (one row per
dimension of the head, a diverging colour scale centred on 0, with the one vector it combines
with, the query for instance, drawn left of them on the same colours) or bars (one value per
key: scores, weights). Hover names the key, the dimension and the value.

The figure is as wide as its column (Plotly's autosize); token labels are thinned to the
``width_px`` it is drawn for (``viz.labels``) above the first step and above any step that asks
for them, and each step's title is wrapped to the strips' width. Bands of text inside the plot
area are made as much taller as presenter mode enlarges type more than plot (``viz.present``),
so that titles and labels keep clear of the panels on a projector too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from viz.bars import PREDICTED_COLOUR
from viz.colours import colourscale
from viz.heatmap import AXIS_TITLE_FONT_PX, GAP_TOKENS, colour_bar_ticks
from viz.labels import DEFAULT_WIDTH_PX, TokenAxis, literal, longest_label, wrap
from viz.present import font_scale, plot_scale

# Left of the strips: the one vector a step combines with (query, v, output), or a bar step's value ticks.
LEFT_PX = 72
VECTOR_PX = 22
VECTOR_GAP_PX = 14
# Right of the strips: each strip step's colour bar with its tick labels.
COLOUR_BAR_PX = 64
LEFT_MARGIN_PX = 10
STRIP_ROW_PX = 3
STRIP_MIN_PX, STRIP_MAX_PX = 70, 130
BARS_PX = 80
TITLE_LINE_PX = 19
TITLE_PAD_PX = 14
TITLE_STANDOFF_PX = 6
# Titles are wrapped for this width at most: a file written by ``python -m views render`` is drawn 700 px wide.
WRAP_WIDTH_PX = 700
FIGURE_TITLE_PX = 32
UPRIGHT_LABELS_PX = 22
SCORE_COLOUR = "#7f7f7f"
WHAT_IF_COLOUR = "#ff7f0e"


@dataclass(frozen=True)
class Step:
    """One step of the computation over S keys.

    ``values`` is (dims, S), drawn as strips, or (S,), drawn as bars. ``vector`` (dims,) is drawn
    left of the strips on their colour scale. ``what_if`` (S,) is drawn as diamonds over bars.
    ``labelled`` puts the keys' tokens above this step (the first step always has them).
    """

    title: str
    values: np.ndarray
    value_name: str
    vector: np.ndarray | None = None
    vector_title: str = ""
    what_if: np.ndarray | None = None
    what_if_name: str = ""
    labelled: bool = False

    @property
    def strips(self) -> bool:
        return np.ndim(self.values) == 2


def _check(steps: Sequence[Step], keys: int) -> None:
    if not steps:
        raise ValueError("computation_figure needs at least one step")
    for step in steps:
        values = np.asarray(step.values)
        if values.ndim not in (1, 2) or values.shape[-1] != keys:
            raise ValueError(f"step {step.title!r}: values of shape {values.shape} do not cover {keys} keys")
        if step.vector is not None and (not step.strips or np.shape(step.vector) != values.shape[:1]):
            raise ValueError(f"step {step.title!r}: a vector needs strips of its length, got {np.shape(step.vector)} beside {values.shape}")
        if step.what_if is not None and np.shape(step.what_if) != (keys,):
            raise ValueError(f"step {step.title!r}: what-if values of shape {np.shape(step.what_if)} for {keys} keys")


def _panel_px(step: Step) -> float:
    if step.strips:
        return float(np.clip(STRIP_ROW_PX * np.shape(step.values)[0], STRIP_MIN_PX, STRIP_MAX_PX))
    return float(BARS_PX)


def _reach(*arrays: np.ndarray | None) -> float:
    reach = max((float(np.nanmax(np.abs(a), initial=0.0)) for a in arrays if a is not None), default=0.0)
    return reach if reach > 0 else 1.0


def _title_lines(title: str, said: str, width_px: float) -> list[str]:
    """``said`` (``title``, or ``title`` with the thinning note "…, every 3rd token labelled") in lines at most ``width_px`` wide.

    The note is never broken across lines, so that the title still reads as the note's template.
    """
    if not said.startswith(title) or said == title:
        return wrap(said, width_px, AXIS_TITLE_FONT_PX)
    glue = "\x00"  # holds the note's words together while wrapping: str.split() does not split on it
    note = said[len(title) :].replace(" ", glue)
    return [line.replace(glue, " ") for line in wrap(title + note, width_px, AXIS_TITLE_FONT_PX)]


def computation_figure(
    steps: Sequence[Step],
    tokens: Sequence[str],
    *,
    title: str | None = None,
    scheme: str = "colour",
    highlight: int | None = None,
    width_px: float = DEFAULT_WIDTH_PX,
    presenter: bool = False,
) -> go.Figure:
    """The steps top to bottom over the keys ``tokens``; ``highlight`` (0-based) outlines one key's column in every step.

    Strips of all steps share the keys' columns (zooming one zooms all); each strip step has its
    own colour range, symmetric around 0 and shared with its vector, stated by its colour bar.
    """
    _check(steps, len(tokens))
    grow = font_scale(presenter) / plot_scale(presenter)
    figure_px = max(320.0, width_px / font_scale(presenter))
    plot_width_px = figure_px - LEFT_MARGIN_PX - COLOUR_BAR_PX
    strips_px = plot_width_px - LEFT_PX
    left = LEFT_PX / plot_width_px
    vector_domain = [(LEFT_PX - VECTOR_GAP_PX - VECTOR_PX) / plot_width_px, (LEFT_PX - VECTOR_GAP_PX) / plot_width_px]
    axis = TokenAxis.of(tokens)
    ticks = axis.ticks(strips_px)
    label_px = 6 * min(longest_label(tokens), 18) + 16 if ticks.angle else UPRIGHT_LABELS_PX
    wrap_px = min(figure_px, WRAP_WIDTH_PX) - LEFT_MARGIN_PX - COLOUR_BAR_PX - LEFT_PX - 10
    # A labelled step's title says when only every k-th token is labelled ("…, every 3rd token labelled").
    titles = [
        wrap(axis.title(step.title, ticks) if index == 0 or step.labelled else step.title, wrap_px, AXIS_TITLE_FONT_PX) for index, step in enumerate(steps)
    ]
    bands = [
        TITLE_LINE_PX * len(lines) + TITLE_PAD_PX + (label_px if index == 0 or step.labelled else 0) for index, (step, lines) in enumerate(zip(steps, titles))
    ]
    panels = [_panel_px(step) for step in steps]
    # The first band is in the top margin, which presenter mode enlarges with the type; the others are inside the plot.
    plot_px = sum(panels) + grow * sum(bands[1:])
    top_px = (FIGURE_TITLE_PX if title else 0) + bands[0]

    traces: list = []
    layout: dict = {}
    shapes = []
    top = 0.0
    names = axis.names
    for index, (step, lines, band, panel_px) in enumerate(zip(steps, titles, bands, panels)):
        if index:
            top += grow * band
        domain = [1.0 - (top + panel_px) / plot_px, 1.0 - top / plot_px]
        top += panel_px
        n = 2 * index + 1  # the step's axes; n + 1 for its vector's
        x, y = f"x{n}" if n > 1 else "x", f"y{n}" if n > 1 else "y"
        labelled = index == 0 or step.labelled
        layout[f"xaxis{n}"] = dict(
            domain=[left, 1.0],
            anchor=y,
            type="category",
            side="top",
            showgrid=False,
            zeroline=False,
            showticklabels=labelled,
            tickmode="array",
            tickvals=ticks.values,
            ticktext=ticks.texts,
            tickangle=ticks.angle,
            ticks="",
            title=dict(text="<br>".join(literal(line) for line in lines), font=dict(size=AXIS_TITLE_FONT_PX), standoff=TITLE_STANDOFF_PX),
            **({"matches": "x"} if n > 1 else {}),
        )
        hover = f"<b>%{{x}}</b><br>{literal(step.value_name)}"
        if step.strips:
            values = np.asarray(step.values, dtype=np.float32)
            dims = list(range(1, values.shape[0] + 1))
            reach = _reach(values, step.vector)
            colour_axis = f"coloraxis{index + 1}"
            layout[colour_axis] = dict(
                colorscale=colourscale(scheme, signed=True),
                cmin=-reach,
                cmax=reach,
                colorbar=dict(
                    x=1.0,
                    xanchor="left",
                    xpad=8,
                    y=sum(domain) / 2,
                    yanchor="middle",
                    len=domain[1] - domain[0],
                    thickness=10,
                    **colour_bar_ticks(-reach, reach),
                ),
            )
            layout[f"yaxis{n}"] = dict(
                domain=domain, anchor=x, autorange="reversed", showticklabels=False, ticks="", showgrid=False, zeroline=False, fixedrange=True
            )
            traces.append(
                go.Heatmap(
                    z=values,
                    x=names,
                    y=dims,
                    coloraxis=colour_axis,
                    xaxis=x,
                    yaxis=y,
                    xgap=1 if len(names) <= GAP_TOKENS else 0,
                    hovertemplate=f"{hover}, dimension %{{y}}: %{{z:.4f}}<extra></extra>",
                )
            )
            if step.vector is not None:
                vx, vy = f"x{n + 1}", f"y{n + 1}"
                vector_name = literal(step.vector_title)
                layout[f"xaxis{n + 1}"] = dict(
                    domain=vector_domain,
                    anchor=vy,
                    side="top",
                    showticklabels=False,
                    ticks="",
                    showgrid=False,
                    zeroline=False,
                    fixedrange=True,
                    title=dict(text=vector_name, font=dict(size=AXIS_TITLE_FONT_PX), standoff=TITLE_STANDOFF_PX),
                )
                layout[f"yaxis{n + 1}"] = dict(
                    domain=domain, anchor=vx, matches=y, showticklabels=False, ticks="", showgrid=False, zeroline=False, fixedrange=True
                )
                traces.append(
                    go.Heatmap(
                        z=np.asarray(step.vector, dtype=np.float32)[:, None],
                        x=[vector_name],
                        y=dims,
                        coloraxis=colour_axis,
                        xaxis=vx,
                        yaxis=vy,
                        hovertemplate=f"<b>{vector_name}</b>, dimension %{{y}}: %{{z:.4f}}<extra></extra>",
                    )
                )
        else:
            values = np.asarray(step.values, dtype=np.float64)
            shown = np.concatenate([values, np.asarray(step.what_if if step.what_if is not None else values, dtype=np.float64)])
            low, high = min(0.0, float(np.nanmin(shown))), max(0.0, float(np.nanmax(shown)))
            pad = 0.06 * ((high - low) or 1.0)
            layout[f"yaxis{n}"] = dict(
                domain=domain,
                anchor=x,
                range=[low - (pad if low < 0 else 0.0), high + pad],
                nticks=4,
                showgrid=True,
                zeroline=True,
                zerolinecolor="#444",
                fixedrange=True,
            )
            traces.append(
                go.Bar(
                    x=names,
                    y=values,
                    xaxis=x,
                    yaxis=y,
                    marker_color=PREDICTED_COLOUR if low >= 0 else SCORE_COLOUR,
                    hovertemplate=f"{hover}: %{{y:.4f}}<extra></extra>",
                    showlegend=False,
                )
            )
            if step.what_if is not None:
                traces.append(
                    go.Scatter(
                        x=names,
                        y=np.asarray(step.what_if, dtype=np.float64),
                        xaxis=x,
                        yaxis=y,
                        mode="markers",
                        marker=dict(symbol="diamond", size=7 if len(names) <= GAP_TOKENS else 4, color=WHAT_IF_COLOUR, line=dict(width=0)),
                        hovertemplate=f"<b>%{{x}}</b><br>{literal(step.what_if_name)}: %{{y:.4f}}<extra></extra>",
                        showlegend=False,
                    )
                )
        if highlight is not None and 0 <= highlight < len(names):
            shapes.append(
                dict(
                    type="rect",
                    xref=x,
                    yref=f"{y} domain",
                    x0=highlight - 0.5,
                    x1=highlight + 0.5,
                    y0=0,
                    y1=1,
                    line=dict(color="black", width=1.5),
                    fillcolor="rgba(0,0,0,0)",
                )
            )
    layout.update(
        title=dict(text=literal(title), x=0.0, y=0.995, yref="container", yanchor="top") if title else None,
        height=int(plot_px + top_px + 12),
        margin=dict(l=LEFT_MARGIN_PX, r=COLOUR_BAR_PX, t=top_px, b=12),
        plot_bgcolor="white",
        bargap=0.15,
        shapes=shapes,
        showlegend=False,
    )
    return go.Figure(data=traces, layout=layout)
