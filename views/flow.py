"""Attention flow beside rollout (Abnar & Zuidema 2020): what reaches one token across layers."""

from __future__ import annotations

import numpy as np
import streamlit as st
from scipy.stats import spearmanr

from models.base import AttentionModel
from models.contract import Prediction
from models.maths.flow import FLOW_SCALE, attention_flow
from models.maths.rollout import attention_rollout
from views import rollout, state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz.heatmap import Panel, heatmap_panels

KEY = "flow"
TITLE = N_("Flow")
CAPTION = N_(
    "Both treat the layers as a graph whose edges are head-averaged attention plus the residual. Rollout multiplies the layers "
    "(every path counts); flow is the maximum flow through the graph (the narrowest edge of each path limits it). Where they "
    "agree, the attention pattern is robust; the rank correlation says how much."
)

# The query token whose row is shown (1-based position among the shown tokens).
FIELDS = (state.Field("query", state.positive_int(512), 1),)


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return rollout.applies(prediction, model)


def render(ctx: ViewContext) -> None:
    layer, _head = layer_head_pickers(ctx, head=False)
    tokens = ctx.shown.source_tokens
    st.session_state[state.key("query")] = min(state.get("query"), len(tokens))
    st.selectbox(_("Token that receives the flow"), range(1, len(tokens) + 1), format_func=lambda i: f"{i}: {tokens[i - 1]}", key=state.key("query"))
    query = state.get("query") - 1
    rolled = ctx.cached("rollout", lambda: attention_rollout(ctx.shown.attentions))[layer - 1][query]
    bar = st.progress(0.0, text=_("Computing the maximum flow…"))

    def report(done: int, total: int) -> None:
        bar.progress(done / max(1, total), text=_("Computing the maximum flow… {done} of {total}").format(done=done, total=total))

    flowed = ctx.cached("flow", lambda: attention_flow(ctx.shown.attentions, [query], layer, progress=report)[0], layer, query)
    bar.empty()
    (kept_rolled, kept_flowed), source = ctx.visible_row(np.stack([rolled, flowed])[:, None, :])
    target = [tokens[query]]
    if not source:
        only_special_tokens_left()
        return
    panels = [
        Panel(_("Rollout"), kept_rolled, source, target, stretch=True),
        Panel(_("Flow"), kept_flowed, source, target, stretch=True),
    ]
    figure = heatmap_panels(
        panels, scheme=ctx.scheme, stacked=True, title=_("What reaches “{token}” by layer {layer}").format(token=tokens[query], layer=layer)
    )
    show_figure(ctx, figure, f"flow-L{layer}")
    rho = spearmanr(rolled, flowed).statistic if len(tokens) > 2 else float("nan")
    st.metric(_("Spearman rank correlation of rollout and flow"), "—" if np.isnan(rho) else f"{rho:.2f}")
    st.caption(_("Capacities are scaled by {scale:,} and rounded to integers for the maximum-flow solver.").format(scale=FLOW_SCALE))
    matrix_downloads(ctx, np.vstack([kept_rolled, kept_flowed]), [_("rollout"), _("flow")], source, "flow", layer=layer, query=query + 1)
