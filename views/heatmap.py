"""One layer and head as an alignment heatmap, drawn as Fig. 3 of Bahdanau et al. (2015)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Shown, Style, Subject, Table, display
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz import alignment_heatmap
from viz.heatmap import AUTO_STRETCH_BELOW, stretched

KEY = "heatmap"
TITLE = N_("Heatmap")
CAPTION = N_("Row i shows where token i looked: its weights over the tokens along the top sum to 1. Hover a cell for the exact weight.")
SEQ2SEQ_CAPTION = N_(
    "How to read it (as Fig. 3 of Bahdanau et al. 2015): each row is one character the decoder wrote, top to bottom; "
    "the bright cells in that row are the input characters it looked at while writing it. Black is 0, white is 1."
)
POOLING_CAPTION = N_(
    "One row: the attention of the classifier's single learned query. Each word's weight is its share of the summary vector "
    "the classifier reads; the weights sum to 1."
)
AUTO_STRETCHED_NOTE = N_(
    "Colours stretched: the strongest weight here is {top:.3f} (the weakest {bottom:.3f}), under {limit}, so the top colour "
    "is {top:.3f}, not 1. Choose “Fixed 0..1” under “Colour scale” in the sidebar for the paper's scale."
)
FIELDS: tuple[state.Field, ...] = ()


@dataclass(frozen=True)
class HeatmapData:
    """One head's attention as drawn, and what it is."""

    shown: Shown
    layer: int
    head: int
    single: bool  # the model has one attention distribution only (one layer, one head)
    seq2seq: bool
    pooling: bool


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def data(subject: Subject, settings: Settings) -> HeatmapData:
    prediction = subject.prediction
    return HeatmapData(
        shown=display(subject, settings, prediction.attentions[settings.layer - 1, settings.head - 1]),
        layer=settings.layer,
        head=settings.head,
        single=prediction.num_layers * prediction.num_heads == 1,
        seq2seq=prediction.is_seq2seq,
        pooling=prediction.readout == "pooling",
    )


def figure(d: HeatmapData, settings: Settings, style: Style) -> go.Figure:
    title = _("Alignment") if d.single else _("Layer {layer}, head {head}").format(layer=d.layer, head=d.head)
    axes = dict(source_title=_("input characters"), target_title=_("output characters")) if d.seq2seq else {}
    return alignment_heatmap(
        d.shown.weights,
        d.shown.source,
        d.shown.target,
        scheme=style.scheme,
        title=title,
        scale=style.scale,
        width_px=style.width_px,
        presenter=style.presenter,
        **axes,
    )


def rows(d: HeatmapData) -> dict[str, Table]:
    return {"heatmap": Table(d.shown.weights, d.shown.target, d.shown.source, {"layer": d.layer, "head": d.head})}


def caption(d: HeatmapData) -> str:
    if d.seq2seq:
        return _(SEQ2SEQ_CAPTION)
    if d.pooling:
        return _(POOLING_CAPTION)
    return _(CAPTION)


def scale_note(weights: np.ndarray, style: Style) -> str:
    """What the page says under a heatmap that the automatic scale stretched; "" when it did not."""
    if style.scale != "auto" or not stretched(weights, style.scale):
        return ""
    return _(AUTO_STRETCHED_NOTE).format(top=float(np.nanmax(weights)), bottom=float(np.nanmin(weights)), limit=AUTO_STRETCH_BELOW)


def render(ctx: ViewContext) -> None:
    layer_head_pickers(ctx)
    d = ctx.data()
    if d.shown.empty:
        only_special_tokens_left()
        return
    show_figure(ctx, figure(d, ctx.settings, ctx.style), f"heatmap-L{d.layer}-H{d.head}")
    st.caption(caption(d))
    note = scale_note(d.shown.weights, ctx.style)
    if note:
        st.caption(note)
    matrix_downloads(ctx, rows(d))
