"""One layer and head as an alignment heatmap, drawn as Fig. 3 of Bahdanau et al. (2015)."""

from __future__ import annotations

import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz import alignment_heatmap

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


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def caption(prediction: Prediction) -> str:
    if prediction.is_seq2seq:
        return _(SEQ2SEQ_CAPTION)
    if len(prediction.target_tokens) == 1:
        return _(POOLING_CAPTION)
    return _(CAPTION)


def render(ctx: ViewContext) -> None:
    layer, head = layer_head_pickers(ctx)
    weights, source, target = ctx.visible(ctx.shown.attentions[layer - 1, head - 1])
    if not source or not target:
        only_special_tokens_left()
        return
    single = ctx.shown.num_layers * ctx.shown.num_heads == 1
    title = _("Alignment") if single else _("Layer {layer}, head {head}").format(layer=layer, head=head)
    axes = dict(source_title=_("input characters"), target_title=_("output characters")) if ctx.shown.is_seq2seq else {}
    figure = alignment_heatmap(weights, source, target, scheme=ctx.scheme, title=title, stretch=ctx.stretch, **axes)
    show_figure(ctx, figure, f"heatmap-L{layer}-H{head}")
    st.caption(caption(ctx.shown))
    matrix_downloads(ctx, weights, target, source, "heatmap", layer=layer, head=head)
