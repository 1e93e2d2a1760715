"""Every layer and head at once, as one image of thumbnails; a click opens that head."""

from __future__ import annotations

from models.base import AttentionModel
from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import only_special_tokens_left, open_clicked_head, show_figure
from viz.overview import overview_image

KEY = "overview"
TITLE = N_("All heads")
CAPTION = N_(
    "Each thumbnail is one head (layers down, heads across), shrunk to at most 64×64 pixels on the same 0..1 scale. "
    "Look for head types: a bright line just below the diagonal (previous token), one bright column ([CLS] or [SEP] parking), "
    "an even wash (broad). Click a thumbnail to open that head as a heatmap."
)
FIELDS: tuple[state.Field, ...] = ()


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if prediction.num_layers * prediction.num_heads == 1:
        return False, _("This model has one attention distribution only: the heatmap view shows all of it.")
    return True, ""


def render(ctx: ViewContext) -> None:
    attentions, _source, _target = ctx.visible(ctx.shown.attentions)
    if attentions.shape[-1] == 0 or attentions.shape[-2] == 0:
        only_special_tokens_left()
        return
    figure = overview_image(attentions, scheme=ctx.scheme, selected=(ctx.layer - 1, ctx.head - 1))
    show_figure(ctx, figure, "overview", on_click=open_clicked_head)
