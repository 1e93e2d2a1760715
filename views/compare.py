"""Two sentences under one model, same layer and head, side by side (and their difference)."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel, LensError
from models.contract import Prediction
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Shown, Style, Subject, Table, display
from views.widgets import layer_head_pickers, matrix_downloads, only_special_tokens_left, show_figure
from viz.heatmap import Panel, heatmap_panels

KEY = "compare"
TITLE = N_("Two sentences")
CAPTION = N_(
    "The same head reading two texts, e.g. “the bank of the river” and “the bank raised rates”. When both have the same number "
    "of tokens, the third map shows first minus second: red where the first text drew more attention, blue where the second did."
)

FIELDS = (state.Field("text2", state.url_text, "The bank raised interest rates again"),)


@dataclass(frozen=True)
class CompareData:
    """One head reading the subject's text and the second text, as drawn.

    ``difference`` is first minus second when both show the same number of tokens (labels
    "a/b" where the two texts differ), else None.
    """

    first: Shown
    second: Shown
    second_text: str
    layer: int
    head: int
    difference: Shown | None

    @property
    def empty(self) -> bool:
        return self.first.empty or self.second.empty


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    return True, ""


def _joined(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(a if a == b else f"{a}/{b}" for a, b in zip(first, second))


def data(subject: Subject, settings: Settings) -> CompareData:
    """Raises LensError when the model cannot read the second text (empty, too long, unreadable)."""
    text = settings["text2"]
    other = Subject(subject.model_id, subject.model, text, subject.predict(text))
    layer, head = settings.layer - 1, settings.head - 1
    first = display(subject, settings, subject.prediction.attentions[layer, head])
    second = display(other, settings, other.prediction.attentions[layer, head])
    difference = None
    if first.weights.shape == second.weights.shape:
        difference = Shown(first.weights - second.weights, _joined(first.source, second.source), _joined(first.target, second.target))
    return CompareData(first, second, text, settings.layer, settings.head, difference)


def figure(d: CompareData, settings: Settings, style: Style) -> go.Figure:
    panels = [
        Panel(_("First text"), d.first.weights, d.first.source, d.first.target, scale=style.scale),
        Panel(_("Second text"), d.second.weights, d.second.source, d.second.target, scale=style.scale),
    ]
    if d.difference is not None:
        panels.append(Panel(_("First minus second"), d.difference.weights, d.difference.source, d.difference.target, signed=True, value_title=_("difference")))
    title = _("Layer {layer}, head {head}").format(layer=d.layer, head=d.head)
    return heatmap_panels(panels, scheme=style.scheme, title=title, width_px=style.width_px, presenter=style.presenter)


def rows(d: CompareData) -> dict[str, Table]:
    meta = {"layer": d.layer, "head": d.head}
    tables = {
        "compare-first": Table(d.first.weights, d.first.target, d.first.source, meta),
        "compare-second": Table(d.second.weights, d.second.target, d.second.source, {**meta, "second_text": d.second_text}),
    }
    if d.difference is not None:
        tables["compare-difference"] = Table(d.difference.weights, d.difference.target, d.difference.source, {**meta, "second_text": d.second_text})
    return tables


def render(ctx: ViewContext) -> None:
    st.text_input(_("Second text"), key=ctx.key("text2"))
    if not ctx.get("text2").strip():
        st.info(_("Type a second text to compare with."))
        return
    try:
        d = ctx.data()
    except LensError as error:
        st.error(str(error))
        return
    layer_head_pickers(ctx)
    if d.empty:
        only_special_tokens_left()
        return
    if d.difference is None:
        st.caption(
            _("The texts have different numbers of tokens ({first} and {second}), so there is no difference map.").format(
                first=len(d.first.source), second=len(d.second.source)
            )
        )
    show_figure(ctx, figure(d, ctx.settings, ctx.style), f"compare-L{d.layer}-H{d.head}")
    matrix_downloads(ctx, rows(d))
