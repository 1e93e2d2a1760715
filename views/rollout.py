"""Attention rollout (Abnar & Zuidema 2020): what has flowed into each token by a layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.maths.rollout import attention_rollout
from views import state
from views.context import ViewContext
from views.heatmap import scale_note
from views.i18n import N_, _
from views.spec import Settings, Shown, Style, Subject, Table, display
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz import alignment_heatmap

KEY = "rollout"
TITLE = N_("Rollout")
CAPTION = N_(
    "Rollout multiplies the head-averaged attention of each layer, counting the residual connection as half of it: "
    "row i estimates how much each input token has flowed into token i by this layer, which single-layer heatmaps cannot show."
)
FIELDS: tuple[state.Field, ...] = ()
# Rollout averages the heads, so the chosen head changes nothing.
DEPENDS_ON = ("layer",)


@dataclass(frozen=True)
class RolloutData:
    """Rollout through layers 1..``layer``, as drawn."""

    shown: Shown
    layer: int


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if not prediction.self_attention:
        return False, _("Rollout composes self-attention across layers; this model's attention is not self-attention.")
    if prediction.num_layers < 2:
        return False, _("Rollout composes attention across layers; this model has a single attention layer, so the heatmap already shows everything.")
    return True, ""


def rolled_out(prediction: Prediction, layer: int) -> np.ndarray:
    """Rollout (T, T) through layers 1..``layer`` over the model's own tokens (word pieces, [CLS], [SEP])."""
    return attention_rollout(prediction.attentions[:layer])[-1]


def data(subject: Subject, settings: Settings) -> RolloutData:
    # Composed over the tokens the layers mixed, merged into words and hidden only afterwards
    # (models.maths.compose): rollout of merged attention composes matrices the model never applied.
    return RolloutData(shown=display(subject, settings, rolled_out(subject.prediction, settings.layer)), layer=settings.layer)


def figure(d: RolloutData, settings: Settings, style: Style) -> go.Figure:
    title = _("Rollout through layers 1-{layer}").format(layer=d.layer)
    return alignment_heatmap(
        d.shown.weights, d.shown.source, d.shown.target, scheme=style.scheme, title=title, scale=style.scale, width_px=style.width_px, presenter=style.presenter
    )


def rows(d: RolloutData) -> dict[str, Table]:
    return {"rollout": Table(d.shown.weights, d.shown.target, d.shown.source, {"layer": d.layer})}


def render(ctx: ViewContext) -> None:
    layer_head_pickers(ctx, head=False)
    d = ctx.data()
    if d.shown.empty:
        only_special_tokens_left()
        return
    show_figure(ctx, figure(d, ctx.settings, ctx.style), f"rollout-L{d.layer}")
    note = scale_note(d.shown.weights, ctx.style)
    if note:
        st.caption(note)
    matrix_downloads(ctx, rows(d))
