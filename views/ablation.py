"""Switch attention heads off and watch the class probabilities move (the RNN: uniform attention)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.explain.ablation import head_importance, predict_with_heads_off, single_head_effects, supports_ablation
from views import compute, state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import class_name, clicked, layer_head_pickers, show_figure
from viz import probability_bars
from viz.stats import stat_heatmaps
from viz.strip import token_strips

KEY = "ablation"
TITLE = N_("Switch heads off")
CAPTION = N_(
    "Attention shows where a head looked, not what the prediction needs. Click heads in the grid to switch them off "
    "(their output is removed for this text only) and compare the class probabilities with the original ones."
)
RANKED_HEADS = 10

# Heads switched off ("L:H,L:H", 1-based) and, for the RNN, uniform attention.
FIELDS = (
    state.Field("ablate", state.parse_heads, frozenset(), write=state.format_heads),
    state.Field("uniform", state.flag, False, write=state.write_flag),
)


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    reason = supports_ablation(model)
    if reason is None:
        return True, ""
    if not getattr(model, "labels", ()):
        return False, _("Switching attention off is shown for classifiers; this model generates text.")
    return False, _("Switching heads off needs a BERT-style encoder (BERT, RoBERTa, CamemBERT, XLM-RoBERTa, ELECTRA); this checkpoint's family cannot do it.")


def _heads_off(ctx: ViewContext) -> frozenset[tuple[int, int]]:
    """The panel's switched-off heads, 0-based, without any a link names beyond this model."""
    layers, heads = ctx.model.attention_grid
    return frozenset((layer - 1, head - 1) for layer, head in ctx.get("ablate") if layer <= layers and head <= heads)


def _set_heads_off(panel: str, heads_off: frozenset[tuple[int, int]]) -> None:
    st.session_state[state.key("ablate", panel)] = frozenset((layer + 1, head + 1) for layer, head in heads_off)


def _toggle_clicked(chart_key: str, panel: str) -> None:
    data = clicked(chart_key)
    if data:
        head = (int(data[0]) - 1, int(data[1]) - 1)
        current = frozenset((layer - 1, h - 1) for layer, h in state.get("ablate", panel))
        _set_heads_off(panel, current ^ {head})


def _probabilities_side_by_side(model: AttentionModel, original: Prediction, ablated: Prediction, caption: str) -> None:
    labels = [class_name(label) for label in model.labels]
    left, right = st.columns(2)
    left.plotly_chart(probability_bars(labels, original.probs, title=_("Original")), width="stretch")
    right.plotly_chart(probability_bars(labels, ablated.probs, title=caption), width="stretch")
    before, after = int(np.argmax(original.probs)), int(np.argmax(ablated.probs))
    change = float(ablated.probs[before] - original.probs[before])
    if before != after:
        st.warning(_("The prediction changes from {before} to {after}.").format(before=class_name(model.labels[before]), after=class_name(model.labels[after])))
    st.write(
        _("{label}: {before:.1%} → {after:.1%} ({change:+.1%} points).").format(
            label=class_name(model.labels[before]), before=float(original.probs[before]), after=float(ablated.probs[before]), change=change
        )
    )


def _render_uniform(ctx: ViewContext) -> None:
    st.toggle(_("Uniform attention"), key=ctx.key("uniform"), help=_("Replace the attention weights by 1/T over the words (Wiegreffe & Pinter 2019)."))
    uniform = bool(ctx.get("uniform"))
    original = ctx.prediction
    ablated = compute.cached("ablation", lambda: predict_with_heads_off(ctx.model, ctx.text, frozenset(), uniform=uniform), ctx.model_id, ctx.text, uniform)
    _probabilities_side_by_side(ctx.model, original, ablated, _("Uniform attention") if uniform else _("Learned attention"))
    rows = {_("learned attention"): original.attentions[0, 0, 0], _("uniform attention"): ablated.attentions[0, 0, 0]} if uniform else {}
    if rows:
        show_figure(ctx, token_strips(rows, list(original.source_tokens), signed=False, scheme=ctx.scheme), "ablation-uniform")
    st.caption(
        _(
            "If the probabilities barely move, the learned weights were not what the prediction depended on: "
            "the words' encodings carry the evidence whatever the weights (Wiegreffe & Pinter 2019)."
        )
    )


def _render_heads(ctx: ViewContext) -> None:
    model, panel = ctx.model, ctx.panel
    layers, heads = model.attention_grid
    heads_off = _heads_off(ctx)
    layer, head = layer_head_pickers(ctx)
    buttons = st.columns(3)
    if buttons[0].button(_("Keep only head {layer}:{head}").format(layer=layer, head=head), key=ctx.widget_key("keep-only")):
        heads_off = frozenset((row, column) for row in range(layers) for column in range(heads)) - {(layer - 1, head - 1)}
        _set_heads_off(panel, heads_off)
    if buttons[1].button(_("Switch off layer {layer}").format(layer=layer), key=ctx.widget_key("layer-off")):
        heads_off = heads_off | {(layer - 1, column) for column in range(heads)}
        _set_heads_off(panel, heads_off)
    if buttons[2].button(_("Switch every head on"), key=ctx.widget_key("all-on"), disabled=not heads_off):
        heads_off = frozenset()
        _set_heads_off(panel, heads_off)

    effects = compute.cached("single_head_effects", lambda: single_head_effects(model, ctx.text), ctx.model_id, ctx.text)
    importance = compute.cached("head_importance", lambda: head_importance(model, ctx.text), ctx.model_id, ctx.text)
    switched_on = np.ones((layers, heads))
    for row, column in heads_off:
        switched_on[row, column] = 0.0
    maps = {"on": switched_on, "drop": -effects, "importance": importance}
    titles = {
        "on": _("Heads on (click to switch)"),
        "drop": _("Drop in p(predicted) when switched off alone"),
        "importance": _("Importance (Michel et al. 2019)"),
    }
    show_figure(ctx, stat_heatmaps(maps, titles, selected=(layer - 1, head - 1), scheme=ctx.scheme), "ablation-grid", on_click=_toggle_clicked)

    original = ctx.prediction
    ablated = compute.cached("ablation", lambda: predict_with_heads_off(model, ctx.text, heads_off), ctx.model_id, ctx.text, heads_off)
    caption = _("{count} of {total} heads off").format(count=len(heads_off), total=layers * heads)
    _probabilities_side_by_side(model, original, ablated, caption)

    predicted = class_name(model.labels[int(np.argmax(original.probs))])
    st.subheader(_("Heads whose removal moves p({label}) most").format(label=predicted))
    order = np.argsort(-np.abs(effects), axis=None, kind="stable")[:RANKED_HEADS]
    st.dataframe(
        [{_("head"): f"{i // heads + 1}:{i % heads + 1}", _("change in p({label})").format(label=predicted): f"{effects.flat[i]:+.2%}"} for i in order],
        hide_index=True,
    )
    st.caption(
        _(
            "Importance: |Σ A·∂L/∂A| per head from one backward pass, with L = −log p(predicted), each layer divided by its L2 norm "
            "(Michel, Levy & Neubig 2019, “Are Sixteen Heads Really Better than One?”)."
        )
    )


def render(ctx: ViewContext) -> None:
    with st.spinner(_("Switching heads off…")):
        if ctx.model.ablation_mode == "uniform":
            _render_uniform(ctx)
        else:
            _render_heads(ctx)
