"""Attention rollout (Abnar & Zuidema 2020): what has flowed into each token by a layer."""

from __future__ import annotations

from models.base import AttentionModel
from models.contract import Prediction
from models.maths.rollout import attention_rollout
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz import alignment_heatmap

KEY = "rollout"
TITLE = N_("Rollout")
CAPTION = N_(
    "Rollout multiplies the head-averaged attention of each layer, counting the residual connection as half of it: "
    "row i estimates how much each input token has flowed into token i by this layer, which single-layer heatmaps cannot show."
)
FIELDS: tuple[state.Field, ...] = ()


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if prediction.is_seq2seq or prediction.source_tokens != prediction.target_tokens:
        return False, _("Rollout composes self-attention across layers; this model's attention is not self-attention.")
    if prediction.num_layers < 2:
        return False, _("Rollout composes attention across layers; this model has a single attention layer, so the heatmap already shows everything.")
    return True, ""


def render(ctx: ViewContext) -> None:
    layer, _head = layer_head_pickers(ctx, head=False)
    rolled = ctx.cached("rollout", lambda: attention_rollout(ctx.shown.attentions))
    weights, source, target = ctx.visible(rolled[layer - 1])
    if not source or not target:
        only_special_tokens_left()
        return
    title = _("Rollout through layers 1-{layer}").format(layer=layer)
    show_figure(ctx, alignment_heatmap(weights, source, target, scheme=ctx.scheme, title=title, stretch=ctx.stretch), f"rollout-L{layer}")
    matrix_downloads(ctx, weights, target, source, "rollout", layer=layer)
