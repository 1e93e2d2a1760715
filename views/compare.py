"""Two sentences under one model, same layer and head, side by side (and their difference)."""

from __future__ import annotations

import streamlit as st

from models.base import AttentionModel, LensError
from models.contract import Prediction
from views import compute, state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz.heatmap import Panel, heatmap_panels

KEY = "compare"
TITLE = N_("Two sentences")
CAPTION = N_(
    "The same head reading two texts, e.g. “the bank of the river” and “the bank raised rates”. When both have the same number "
    "of tokens, the third map shows first minus second: red where the first text drew more attention, blue where the second did."
)

FIELDS = (state.Field("text2", state.url_text, "The bank raised interest rates again"),)


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def render(ctx: ViewContext) -> None:
    st.text_input(_("Second text"), key=state.key("text2"))
    other_text = state.get("text2")
    if not other_text.strip():
        st.info(_("Type a second text to compare with."))
        return
    try:
        other = compute.shown_prediction(ctx.model_id, other_text, ctx.words)
    except LensError as error:
        st.error(str(error))
        return
    layer, head = layer_head_pickers(ctx)
    first, source, target = ctx.visible(ctx.shown.attentions[layer - 1, head - 1])
    second_ctx = ViewContext(ctx.model_id, ctx.model, other_text, compute.prediction(ctx.model_id, other_text), other, ctx.panel)
    second, other_source, other_target = second_ctx.visible(other.attentions[layer - 1, head - 1])
    if not source or not other_source:
        only_special_tokens_left()
        return
    panels = [
        Panel(_("First text"), first, source, target, stretch=ctx.stretch),
        Panel(_("Second text"), second, other_source, other_target, stretch=ctx.stretch),
    ]
    aligned = first.shape == second.shape
    if aligned:
        labels = [a if a == b else f"{a}/{b}" for a, b in zip(source, other_source)]
        rows = [a if a == b else f"{a}/{b}" for a, b in zip(target, other_target)]
        panels.append(Panel(_("First minus second"), first - second, labels, rows, signed=True, value_title=_("difference")))
    else:
        st.caption(
            _("The texts have different numbers of tokens ({first} and {second}), so there is no difference map.").format(
                first=len(source), second=len(other_source)
            )
        )
    title = _("Layer {layer}, head {head}").format(layer=layer, head=head)
    show_figure(ctx, heatmap_panels(panels, scheme=ctx.scheme, title=title), f"compare-L{layer}-H{head}")
    matrix_downloads(ctx, first, target, source, "compare-first", layer=layer, head=head)
    matrix_downloads(ctx, second, other_target, other_source, "compare-second", layer=layer, head=head, second_text=other_text)
