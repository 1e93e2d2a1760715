"""Value-aware attention: attention weights scaled by the vectors they mix (norms, ALTI)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel, LensError
from models.contract import Prediction
from models.value_aware import supports_value_aware, value_aware
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Style, Subject, Table, display
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
# One rebuild of the model covers every layer and head; the figure picks the chosen ones.
DEPENDS_ON: tuple[str, ...] = ()


@dataclass(frozen=True)
class NormsData:
    """The four matrices of every layer (and head) held, as drawn: merged into words, special tokens hidden if asked.

    ``weights`` and ``head_norms`` are (layers, heads, T, S), ``layer_norms`` and ``alti``
    (layers, T, S); ``alti`` is ALTI composed through each layer over the model's own tokens,
    merged into words only afterwards. ``layers`` and ``heads`` are the 1-based numbers along
    the leading axes (``at`` keeps one of each).
    """

    source: tuple[str, ...]
    target: tuple[str, ...]
    weights: np.ndarray
    head_norms: np.ndarray
    layer_norms: np.ndarray
    alti: np.ndarray
    reconstruction_error: float
    layers: tuple[int, ...]
    heads: tuple[int, ...]

    @property
    def empty(self) -> bool:
        """Nothing but special tokens was left to show."""
        return not self.source or not self.target


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    reason = supports_value_aware(model)
    return reason is None, reason or ""


def data(subject: Subject, settings: Settings) -> NormsData:
    """Raises LensError when the model's layers cannot be rebuilt from its weights (``value_aware``)."""
    result = value_aware(subject.model, subject.text)
    matrices = {
        "weights": subject.prediction.attentions,
        "head_norms": result.head_norms,
        "layer_norms": result.layer_norms,
        "alti": result.alti_rollout,
    }
    shown = {name: display(subject, settings, matrix) for name, matrix in matrices.items()}
    layers, heads = subject.prediction.attentions.shape[:2]
    return NormsData(
        source=shown["weights"].source,
        target=shown["weights"].target,
        **{name: value.weights for name, value in shown.items()},
        reconstruction_error=result.reconstruction_error,
        layers=tuple(range(1, layers + 1)),
        heads=tuple(range(1, heads + 1)),
    )


def at(d: NormsData, layer: int, head: int) -> NormsData:
    """``d`` for one layer and head (1-based), as drawn and exported."""
    i, j = d.layers.index(layer), d.heads.index(head)
    return dataclasses.replace(
        d,
        weights=d.weights[i : i + 1, j : j + 1],
        head_norms=d.head_norms[i : i + 1, j : j + 1],
        layer_norms=d.layer_norms[i : i + 1],
        alti=d.alti[i : i + 1],
        layers=(layer,),
        heads=(head,),
    )


def figure(d: NormsData, settings: Settings, style: Style) -> go.Figure:
    one = at(d, settings.layer, settings.head)
    layer, head = settings.layer, settings.head
    source, target = one.source, one.target
    panels = [
        Panel(_("Attention weights, head {head}").format(head=head), one.weights[0, 0], source, target, scale=style.scale),
        Panel(_("Attention norm, head {head}").format(head=head), one.head_norms[0, 0], source, target, scale="stretch", value_title=_("norm")),
        Panel(_("Attention norm, all heads"), one.layer_norms[0], source, target, scale="stretch", value_title=_("norm")),
        Panel(_("ALTI through layer {layer}").format(layer=layer), one.alti[0], source, target, scale="stretch", value_title=_("share")),
    ]
    return heatmap_panels(panels, scheme=style.scheme, title=_("Layer {layer}").format(layer=layer), width_px=style.width_px, presenter=style.presenter)


def rows(d: NormsData) -> dict[str, Table]:
    """The four matrices; of one layer and head (``at``) as plain matrices, else with their leading axes (JSON only)."""
    one = len(d.layers) == 1 and len(d.heads) == 1
    meta = {"layer": d.layers[0], "head": d.heads[0]} if one else {"layers": list(d.layers), "heads": list(d.heads)}
    matrices = {"weights": d.weights, "head_norm": d.head_norms, "layer_norm": d.layer_norms, "alti": d.alti}
    return {f"norms-{name}": Table(matrix.reshape(matrix.shape[-2:]) if one else matrix, d.target, d.source, meta) for name, matrix in matrices.items()}


def render(ctx: ViewContext) -> None:
    layer, head = layer_head_pickers(ctx)
    try:
        with st.spinner(_("Rebuilding every layer from the model's own weights…")):
            d = ctx.data()
    except LensError as error:
        st.error(str(error))
        return
    if d.empty:
        only_special_tokens_left()
        return
    settings = ctx.settings
    show_figure(ctx, figure(d, settings, ctx.style), f"norms-L{layer}-H{head}")
    st.caption(
        _("Rebuilt from the hidden states and layer weights; the rebuilt layers match the model's own to within {error:.1e}.").format(
            error=d.reconstruction_error
        )
    )
    with st.expander(_("The four matrices as data")):
        matrix_downloads(ctx, rows(at(d, settings.layer, settings.head)))
