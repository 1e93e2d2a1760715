"""Value-aware attention: attention weights scaled by the vectors they mix (norms, ALTI)."""

from __future__ import annotations

import streamlit as st

from models.base import AttentionModel, LensError
from models.contract import Prediction
from models.value_aware import supports_value_aware, value_aware
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz.heatmap import Panel, heatmap_panels

KEY = "norms"
TITLE = N_("Value-aware")
CAPTION = N_(
    "A weight says how much a token looked, not how much it took: a large weight on a tiny vector moves nothing. The attention "
    "norm ‖α f(x)‖ (Kobayashi et al. 2020) scales each weight by the size of the transformed vector it mixes in; ALTI (Ferrando "
    "et al. 2022) adds the residual and layer norm and follows the mixing through the layers."
)
FIELDS: tuple[state.Field, ...] = ()


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    reason = supports_value_aware(model)
    return reason is None, reason or ""


def render(ctx: ViewContext) -> None:
    layer, head = layer_head_pickers(ctx)
    try:
        with st.spinner(_("Rebuilding every layer from the model's own weights…")):
            result = ctx.cached("norms", lambda: value_aware(ctx.model, ctx.text))
    except LensError as error:
        st.error(str(error))
        return
    matrices = {
        "weights": ctx.prediction.attentions[layer - 1, head - 1],
        "head_norm": result.head_norms[layer - 1, head - 1],
        "layer_norm": result.layer_norms[layer - 1],
        "alti": result.alti_rollout[layer - 1],
    }
    shown = {}
    for name, matrix in matrices.items():
        shown[name], source, target = ctx.visible(ctx.as_shown(matrix))
    if not source or not target:
        only_special_tokens_left()
        return
    panels = [
        Panel(_("Attention weights, head {head}").format(head=head), shown["weights"], source, target, stretch=ctx.stretch),
        Panel(_("Attention norm, head {head}").format(head=head), shown["head_norm"], source, target, stretch=True, value_title=_("norm")),
        Panel(_("Attention norm, all heads"), shown["layer_norm"], source, target, stretch=True, value_title=_("norm")),
        Panel(_("ALTI through layer {layer}").format(layer=layer), shown["alti"], source, target, stretch=True, value_title=_("share")),
    ]
    show_figure(ctx, heatmap_panels(panels, scheme=ctx.scheme, title=_("Layer {layer}").format(layer=layer)), f"norms-L{layer}-H{head}")
    st.caption(
        _("Rebuilt from the hidden states and layer weights; the rebuilt layers match the model's own to within {error:.1e}.").format(
            error=result.reconstruction_error
        )
    )
    with st.expander(_("The four matrices as data")):
        for name, matrix in shown.items():
            matrix_downloads(ctx, matrix, target, source, f"norms-{name}", layer=layer, head=head)
