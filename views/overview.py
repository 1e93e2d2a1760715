"""Every layer and head at once, as one image of thumbnails; a click opens that head."""

from __future__ import annotations

import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import figure_downloads

KEY = "overview"
TITLE = N_("All heads")
CAPTION = N_(
    "Each thumbnail is one head (layers down, heads across), shrunk to at most 64×64 pixels on the same 0..1 scale. "
    "Look for head types: a bright line just below the diagonal (previous token), one bright column ([CLS] or [SEP] parking), "
    "an even wash (broad). Click a thumbnail to open that head as a heatmap."
)


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if prediction.num_layers * prediction.num_heads == 1:
        return False, _("This model has one attention distribution only: the heatmap view shows all of it.")
    return True, ""


def _open_clicked_head(chart_key: str, panel: str) -> None:
    """Runs before the next script run, so it may still change the view and head pickers."""
    points = st.session_state[chart_key].selection.get("points", [])
    if points and points[0].get("customdata"):
        layer, head = points[0]["customdata"][:2]
        st.session_state[state.key("layer", panel)] = int(layer)
        st.session_state[state.key("head", panel)] = int(head)
        st.session_state[state.key("view")] = "heatmap"


def render(ctx: ViewContext) -> None:
    from viz.overview import overview_image

    attentions, _source, _target = ctx.visible(ctx.shown.attentions)
    if attentions.shape[-1] == 0 or attentions.shape[-2] == 0:
        st.info(_("Only special tokens are left: switch off “Hide special tokens” to see them."))
        return
    figure = overview_image(attentions, scheme=ctx.scheme, selected=(ctx.layer, ctx.head))
    chart_key = ctx.widget_key("overview-click")
    st.plotly_chart(figure, width="stretch", key=chart_key, on_select=_open_clicked_head, args=(chart_key, ctx.panel), selection_mode="points")
    figure_downloads(ctx, figure, "overview")
