"""The head view made popular by bertviz: lines from each token to the tokens it attends to."""

from __future__ import annotations

import math

import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import clicked, layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz.headview import head_view, threshold_for

KEY = "headview"
TITLE = N_("Head view")
CAPTION = N_(
    "Tokens on the left attend to tokens on the right; a line's opacity is its weight, each head has its own colour. "
    "Click a token on the left to keep only its lines; raise the threshold to thin out long texts."
)

# Which heads are drawn (1-based; empty = all), the weakest line shown, and the token whose
# lines alone are drawn (1-based position; 0 = every token).
FIELDS = (
    state.Field("heads", state.parse_numbers, (), write=state.format_numbers),
    state.Field("threshold", state.fraction, 0.05),
    state.Field("focus", state.count, 0),
)


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def _focus_clicked_token(chart_key: str, panel: str) -> None:
    data = clicked(chart_key)
    if data and data[0] == "target":
        st.session_state[state.key("focus")] = int(data[1]) + 1


def render(ctx: ViewContext) -> None:
    layer, _head = layer_head_pickers(ctx, head=False)
    attentions, source, target = ctx.visible(ctx.shown.attentions[layer - 1])
    if not source or not target:
        only_special_tokens_left()
        return
    n_heads = attentions.shape[0]
    left, middle, right = st.columns([2, 1, 1])
    if n_heads > 1:
        st.session_state[state.key("heads")] = tuple(h for h in state.get("heads") if h <= n_heads)
        left.pills(_("Heads shown (none chosen: all)"), range(1, n_heads + 1), selection_mode="multi", key=state.key("heads"))
    heads = [h - 1 for h in state.get("heads")] or list(range(n_heads))
    # Long texts get a threshold that keeps the figure light (rounded up onto the slider's
    # steps, never below the floor); the user may raise it further.
    floor = threshold_for(attentions, heads)
    st.session_state[state.key("threshold")] = max(state.get("threshold"), math.ceil(floor * 1000) / 1000)
    middle.slider(_("Hide lines below"), 0.0, 1.0, step=0.005, key=state.key("threshold"), help=_("Weights under this value are not drawn."))
    focus = state.get("focus")
    if not 0 <= focus - 1 < len(target):
        focus = 0
    if focus and right.button(_("Show every token's lines"), key=ctx.widget_key("unfocus")):
        focus = 0
    st.session_state[state.key("focus")] = focus
    figure, hidden = head_view(attentions, source, target, heads=heads, threshold=state.get("threshold"), focus=focus - 1 if focus else None)
    if hidden:
        st.caption(_("{hidden:,} lines below the threshold are hidden.").format(hidden=hidden))
    show_figure(ctx, figure, "headview", on_click=_focus_clicked_token)
    # The data behind the lines: the shown heads' mean attention, one row per left-hand token.
    matrix_downloads(ctx, attentions[heads].mean(axis=0), target, source, "headview", layer=layer, heads=[h + 1 for h in heads])
