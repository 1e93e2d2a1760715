"""Every layer and head at once, as one image of thumbnails; a click opens that head."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from models.base import AttentionModel
from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Shown, Style, Subject, Table, display
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
# Every head is drawn: the chosen one is only outlined, so changing it reuses the data.
DEPENDS_ON: tuple[str, ...] = ()


@dataclass(frozen=True)
class OverviewData:
    """Every head's attention as drawn: weights (layers, heads, target, source)."""

    shown: Shown


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if prediction.num_layers * prediction.num_heads == 1:
        return False, _("This model has one attention distribution only: the heatmap view shows all of it.")
    return True, ""


def data(subject: Subject, settings: Settings) -> OverviewData:
    return OverviewData(shown=display(subject, settings, subject.prediction.attentions))


def figure(d: OverviewData, settings: Settings, style: Style) -> go.Figure:
    return overview_image(d.shown.weights, scheme=style.scheme, selected=(settings.layer - 1, settings.head - 1))


def rows(d: OverviewData) -> dict[str, Table]:
    """One table per head (``L1H1``, ``L1H2``, …): CSV holds one matrix each."""
    layers, heads = d.shown.weights.shape[:2]
    return {
        f"L{layer + 1}H{head + 1}": Table(d.shown.weights[layer, head], d.shown.target, d.shown.source, {"layer": layer + 1, "head": head + 1})
        for layer in range(layers)
        for head in range(heads)
    }


def render(ctx: ViewContext) -> None:
    d = ctx.data()
    if d.shown.empty:
        only_special_tokens_left()
        return
    # No data downloads here, as before: one pair of buttons per head (72 for MiniLM) would bury
    # the image; the heatmap view exports any one head, and rows() serves the render command.
    show_figure(ctx, figure(d, ctx.settings, ctx.style), "overview", on_click=open_clicked_head)
