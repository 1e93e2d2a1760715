"""Attention flow beside rollout (Abnar & Zuidema 2020): what reaches one token across layers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.maths.flow import FLOW_SCALE, attention_flow
from models.maths.tokens import merge_tokens, word_groups
from views import rollout, state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Shown, Style, Subject, Table, display_row, query_pieces
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz.heatmap import Panel, heatmap_panels

KEY = "flow"
TITLE = N_("Flow")
CAPTION = N_(
    "Both treat the layers as a graph whose edges are head-averaged attention plus the residual. Rollout multiplies the layers "
    "(every path counts); flow is the maximum flow through the graph (the narrowest edge of each path limits it). Where they "
    "agree, the attention pattern is robust; the rank correlation says how much."
)

# The query token whose row is shown (1-based position among the shown tokens: words when the
# word switch is on, special tokens included whether hidden or not).
FIELDS = (state.Field("query", state.positive_int(512), 1),)
# Both average the heads, so the chosen head changes nothing.
DEPENDS_ON = ("layer",)


@dataclass(frozen=True)
class FlowData:
    """What reaches one shown token by ``layer``, by rollout and by flow, and how alike they rank."""

    rollout: Shown  # (1, visible source tokens)
    flow: Shown
    layer: int
    query: int  # 1-based position among the shown tokens, clamped to the text
    token: str  # the shown query token
    rho: float  # Spearman's rank correlation over the visible columns; NaN when undefined


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return rollout.applies(prediction, model)


def _shown_tokens(subject: Subject, settings: Settings) -> tuple[str, ...]:
    """The query axis as the picker lists it: merged into words if asked, special tokens kept."""
    prediction = subject.prediction
    if not settings.words:
        return prediction.target_tokens
    groups = word_groups(prediction.target_tokens, prediction.target_special, subject.model.subword_scheme)
    return merge_tokens(prediction.target_tokens, prediction.target_special, groups, subject.model.subword_scheme)[0]


def rank_correlation(rolled: np.ndarray, flowed: np.ndarray) -> float:
    """Spearman's ρ of two rows, NaN when it says nothing: under three values, or a constant row."""
    if rolled.size < 3 or np.ptp(rolled) == 0 or np.ptp(flowed) == 0:
        return float("nan")
    from scipy.stats import spearmanr  # imported here: scipy.stats costs 0.4 s of the first page

    return float(spearmanr(rolled, flowed).statistic)


def data(subject: Subject, settings: Settings, progress: Callable[[int, int], None] | None = None) -> FlowData:
    """Rollout and flow into the chosen shown token, composed over the model's own tokens.

    A word's row is the mean of its pieces' rows (as ``spec.display`` merges rows); its columns
    are merged and special tokens hidden afterwards. ρ is computed over exactly the columns
    drawn and exported (after merging and hiding), so the page, the render command and the
    handout report the same number.
    """
    prediction, layer = subject.prediction, settings.layer
    tokens = _shown_tokens(subject, settings)
    position = min(max(1, settings["query"]), len(tokens))
    pieces = list(query_pieces(subject, settings, position - 1))
    rolled = rollout.rolled_out(prediction, layer)[pieces].mean(axis=0)
    flowed = attention_flow(prediction.attentions, pieces, layer, progress=progress).mean(axis=0)
    token = tokens[position - 1]
    shown_rollout = display_row(subject, settings, rolled, token)
    shown_flow = display_row(subject, settings, flowed, token)
    rho = rank_correlation(shown_rollout.weights[0], shown_flow.weights[0])
    return FlowData(rollout=shown_rollout, flow=shown_flow, layer=layer, query=position, token=token, rho=rho)


def figure(d: FlowData, settings: Settings, style: Style) -> go.Figure:
    panels = [
        Panel(_("Rollout"), d.rollout.weights, d.rollout.source, d.rollout.target, scale="stretch"),
        Panel(_("Flow"), d.flow.weights, d.flow.source, d.flow.target, scale="stretch"),
    ]
    title = _("What reaches “{token}” by layer {layer}").format(token=d.token, layer=d.layer)
    return heatmap_panels(panels, scheme=style.scheme, stacked=True, title=title, width_px=style.width_px, presenter=style.presenter)


def rows(d: FlowData) -> dict[str, Table]:
    weights = np.vstack([d.rollout.weights, d.flow.weights])
    meta = {"layer": d.layer, "query": d.query, "token": d.token, "spearman": None if np.isnan(d.rho) else d.rho}
    return {"flow": Table(weights, ("rollout", "flow"), d.rollout.source, meta)}


def render(ctx: ViewContext) -> None:
    layer_head_pickers(ctx, head=False)
    tokens = ctx.shown.target_tokens
    st.session_state[ctx.key("query")] = min(ctx.get("query"), len(tokens))
    st.selectbox(_("Token that receives the flow"), range(1, len(tokens) + 1), format_func=lambda i: f"{i}: {tokens[i - 1]}", key=ctx.key("query"))
    bar = st.progress(0.0, text=_("Computing the maximum flow…"))

    def report(done: int, total: int) -> None:
        bar.progress(done / max(1, total), text=_("Computing the maximum flow… {done} of {total}").format(done=done, total=total))

    d = ctx.data(progress=report)
    bar.empty()
    if d.rollout.empty:
        only_special_tokens_left()
        return
    show_figure(ctx, figure(d, ctx.settings, ctx.style), f"flow-L{d.layer}")
    st.metric(_("Spearman rank correlation of rollout and flow"), "—" if np.isnan(d.rho) else f"{d.rho:.2f}")
    st.caption(_("Capacities are scaled by {scale:,} and rounded to integers for the maximum-flow solver.").format(scale=FLOW_SCALE))
    matrix_downloads(ctx, rows(d))
