"""The head view made popular by bertviz: lines from each token to the tokens it attends to."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Shown, Style, Subject, Table, display
from views.widgets import clicked, layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz.headview import head_view, threshold_for

KEY = "headview"
TITLE = N_("Head view")
CAPTION = N_(
    "Tokens on the left attend to tokens on the right; a line's opacity is its weight, each head has its own colour. "
    "Click a token on the left to keep only its lines; raise the threshold to thin out long texts."
)

# Which heads are drawn (1-based; empty = all), the weakest line shown, and the token whose
# lines alone are drawn (1-based position among the visible left-hand tokens; 0 = every token).
FIELDS = (
    state.Field("heads", state.parse_numbers, (), write=state.format_numbers),
    state.Field("threshold", state.fraction, 0.05),
    state.Field("focus", state.count, 0),
)
# Every head of the chosen layer is drawn; the head picker plays no part.
DEPENDS_ON = ("layer",)


@dataclass(frozen=True)
class HeadViewData:
    """One layer's heads as drawn (heads, target, source), and which of them are shown."""

    shown: Shown
    layer: int
    heads: tuple[int, ...]  # 0-based, the heads drawn: the chosen ones that exist, or all
    floor: float  # the lowest threshold that keeps the figure within viz.headview's line budget


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def data(subject: Subject, settings: Settings) -> HeadViewData:
    shown = display(subject, settings, subject.prediction.attentions[settings.layer - 1])
    n_heads = shown.weights.shape[0]
    heads = tuple(sorted({h - 1 for h in settings["heads"] if 1 <= h <= n_heads})) or tuple(range(n_heads))
    floor = threshold_for(shown.weights, heads) if not shown.empty else 0.0
    return HeadViewData(shown=shown, layer=settings.layer, heads=heads, floor=floor)


def data_settings(settings: Settings) -> Settings:
    """``settings`` without what only the figure uses (threshold, focus).

    The data does not depend on them: keyed on them, every step of the threshold slider would
    cache another copy of the layer (12 MB for MiniLM at 512 tokens). The pills hand back the
    heads as a list in the order clicked; a sorted tuple can key the cache.
    """
    return dataclasses.replace(settings, fields=(("heads", tuple(sorted(set(settings["heads"])))),))


def focus_row(d: HeadViewData, settings: Settings) -> int | None:
    """The 0-based left-hand row ``focus`` names, or None (every row) when it names none."""
    focus = settings["focus"]
    return focus - 1 if 0 <= focus - 1 < len(d.shown.target) else None


def figure(d: HeadViewData, settings: Settings, style: Style) -> go.Figure:
    return figure_and_hidden(d, settings)[0]


def figure_and_hidden(d: HeadViewData, settings: Settings) -> tuple[go.Figure, int]:
    """The figure and how many lines its threshold hides (never below the data's floor)."""
    threshold = max(settings["threshold"], d.floor)
    return head_view(d.shown.weights, d.shown.source, d.shown.target, heads=d.heads, threshold=threshold, focus=focus_row(d, settings))


def rows(d: HeadViewData) -> dict[str, Table]:
    # The data behind the lines: the shown heads' mean attention, one row per left-hand token.
    mean = d.shown.weights[list(d.heads)].mean(axis=0)
    return {"headview": Table(mean, d.shown.target, d.shown.source, {"layer": d.layer, "heads": [h + 1 for h in d.heads]})}


def _focus_clicked_token(chart_key: str, panel: str) -> None:
    data = clicked(chart_key)
    if data and data[0] == "target":
        st.session_state[state.key("focus", panel)] = int(data[1]) + 1


PILL_PX = 46


def render(ctx: ViewContext) -> None:
    layer_head_pickers(ctx, head=False)
    n_heads = ctx.shown.num_heads
    st.session_state[ctx.key("heads")] = tuple(h for h in ctx.get("heads") if h <= n_heads)
    d = ctx.data(data_settings(ctx.settings))
    if d.shown.empty:
        only_special_tokens_left()
        return
    # A pill is about 46 px with its gap: MiniLM's 12 heads need 550 px, more than half a
    # side-by-side panel, so there they take a row of their own above the slider.
    pills_row = st.container() if n_heads * PILL_PX > ctx.style.width_px / 2 else None
    left, middle, right = st.columns([2, 1, 1])
    if n_heads > 1:
        (pills_row or left).pills(_("Heads shown (none chosen: all)"), range(1, n_heads + 1), selection_mode="multi", key=ctx.key("heads"))
    # Long texts get a threshold that keeps the figure light (rounded up onto the slider's
    # steps, never below the floor); the user may raise it further.
    st.session_state[ctx.key("threshold")] = max(ctx.get("threshold"), math.ceil(d.floor * 1000) / 1000)
    middle.slider(_("Hide lines below"), 0.0, 1.0, step=0.005, key=ctx.key("threshold"), help=_("Weights under this value are not drawn."))
    focus = ctx.get("focus")
    if not 0 <= focus - 1 < len(d.shown.target):
        focus = 0
    if focus and right.button(_("Show every token's lines"), key=ctx.widget_key("unfocus")):
        focus = 0
    st.session_state[ctx.key("focus")] = focus
    figure_, hidden = figure_and_hidden(d, ctx.settings)
    if hidden:
        st.caption(_("{hidden:,} lines below the threshold are hidden.").format(hidden=hidden))
    show_figure(ctx, figure_, "headview", on_click=_focus_clicked_token)
    matrix_downloads(ctx, rows(d))
