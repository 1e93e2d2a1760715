"""Switch attention heads off and watch the class probabilities move (the RNN: uniform attention)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.explain.ablation import format_heads, head_importance, predict_with_heads_off, single_head_effects, supports_ablation
from views import compute, state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Shown, Style, Subject, Table, display_row
from views.widgets import class_name, clicked, for_page, layer_head_pickers, matrix_downloads, show_figure
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
# The grid covers every head; the chosen one is only outlined.
DEPENDS_ON: tuple[str, ...] = ()

Heads = frozenset[tuple[int, int]]


@dataclass(frozen=True)
class HeadEffects:
    """Per text, whatever is switched off: (layers, heads) change in p(predicted) with that head alone off, and its importance."""

    effects: np.ndarray
    importance: np.ndarray


@dataclass(frozen=True)
class Outcome:
    """The probabilities with ``heads_off`` switched off (or uniform attention), and the RNN's attention row then."""

    probs: np.ndarray
    attention: np.ndarray | None


@dataclass(frozen=True)
class AblationData:
    """Original against ablated probabilities, and for transformers the per-head grids.

    ``heads_off`` are 0-based (layer, head) pairs; ``uniform`` is the RNN's switch (its
    ``heads`` is None). ``attention`` is, for the RNN, its learned row and the row it was given
    (uniform or learned again) as drawn, over the words.
    """

    labels: tuple[str, ...]
    original: np.ndarray
    ablated: np.ndarray
    grid: tuple[int, int]
    heads_off: Heads
    uniform: bool
    heads: HeadEffects | None
    attention: Shown | None

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.original))


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if supports_ablation(model) is None:
        return True, ""
    if prediction.is_seq2seq:
        return False, _("Switching attention off is shown for classifiers; this model generates text.")
    return False, _("Switching heads off needs a BERT-style encoder (BERT, RoBERTa, CamemBERT, XLM-RoBERTa, ELECTRA); this checkpoint's family cannot do it.")


def heads_within(model: AttentionModel, ablate: frozenset[tuple[int, int]]) -> Heads:
    """The field's 1-based heads as 0-based pairs, without any a link names beyond this model."""
    layers, heads = model.attention_grid
    return frozenset((layer - 1, head - 1) for layer, head in ablate if layer <= layers and head <= heads)


def uniform_mode(model: AttentionModel) -> bool:
    """The model's one attention distribution is made uniform instead of switching heads off (the RNN)."""
    return model.ablation_mode == "uniform"


def head_effects(subject: Subject) -> HeadEffects:
    return HeadEffects(single_head_effects(subject.model, subject.text), head_importance(subject.model, subject.text))


def outcome(subject: Subject, heads_off: Heads, uniform: bool) -> Outcome:
    ablated = predict_with_heads_off(subject.model, subject.text, heads_off, uniform=uniform)
    return Outcome(ablated.probs, ablated.attentions[0, 0, 0] if uniform_mode(subject.model) else None)


def assemble(subject: Subject, settings: Settings, heads_off: Heads, uniform: bool, ablated: Outcome, heads: HeadEffects | None) -> AblationData:
    """The view's data from its parts (``outcome`` and ``head_effects``), which the page caches apart."""
    original = subject.prediction
    attention = None
    if ablated.attention is not None:
        attention = display_row(subject, settings, np.stack([original.attentions[0, 0, 0], ablated.attention]))
    return AblationData(tuple(original.labels), original.probs, ablated.probs, tuple(subject.model.attention_grid), heads_off, uniform, heads, attention)


def data(subject: Subject, settings: Settings) -> AblationData:
    model = subject.model
    uniform = uniform_mode(model) and bool(settings["uniform"])
    heads_off = frozenset() if uniform_mode(model) else heads_within(model, settings["ablate"])
    heads = None if uniform_mode(model) else head_effects(subject)
    return assemble(subject, settings, heads_off, uniform, outcome(subject, heads_off, uniform), heads)


def _switched_on(d: AblationData) -> np.ndarray:
    on = np.ones(d.grid)
    for layer, head in d.heads_off:
        on[layer, head] = 0.0
    return on


def figure(d: AblationData, settings: Settings, style: Style) -> go.Figure:
    if d.heads is None:
        learned, given = d.attention.weights
        strips = {_("learned attention"): learned, **({_("uniform attention"): given} if d.uniform else {})}
        return token_strips(strips, list(d.attention.source), signed=False, scheme=style.scheme, width_px=style.width_px, presenter=style.presenter)
    maps = {"on": _switched_on(d), "drop": -d.heads.effects, "importance": d.heads.importance}
    titles = {
        "on": _("Heads on (click to switch)"),
        "drop": _("Drop in p(predicted) when switched off alone"),
        "importance": _("Importance (Michel et al. 2019)"),
    }
    selected = (settings.layer - 1, settings.head - 1)
    return stat_heatmaps(maps, titles, selected=selected, scheme=style.scheme, width_px=style.width_px, presenter=style.presenter)


def rows(d: AblationData) -> dict[str, Table]:
    meta = {"heads_off": format_heads(d.heads_off), "uniform": d.uniform}
    tables = {"ablation-probabilities": Table(np.stack([d.original, d.ablated]), ("original", "ablated"), d.labels, meta)}
    if d.heads is not None:
        layers, heads = d.grid
        names = tuple(f"layer {n}" for n in range(1, layers + 1)), tuple(f"head {n}" for n in range(1, heads + 1))
        predicted = {"class": d.labels[d.predicted]}
        tables["ablation-single-head-effects"] = Table(d.heads.effects, *names, predicted)
        tables["ablation-head-importance"] = Table(d.heads.importance, *names, predicted)
    return tables


def _set_heads_off(key: str, heads_off: Heads) -> None:
    st.session_state[key] = frozenset((layer + 1, head + 1) for layer, head in heads_off)


def _toggle_clicked(chart_key: str, panel: str) -> None:
    data = clicked(chart_key)
    if data:
        head = (int(data[0]) - 1, int(data[1]) - 1)
        current = frozenset((layer - 1, h - 1) for layer, h in state.get("ablate", panel))
        _set_heads_off(state.key("ablate", panel), current ^ {head})


def _probabilities_side_by_side(ctx: ViewContext, d: AblationData, caption: str) -> None:
    labels = [class_name(label) for label in d.labels]
    left, right = st.columns(2)
    presenter = ctx.style.presenter
    left.plotly_chart(for_page(probability_bars(labels, d.original, title=_("Original")), presenter), width="stretch", key=ctx.widget_key("ablation-original"))
    right.plotly_chart(for_page(probability_bars(labels, d.ablated, title=caption), presenter), width="stretch", key=ctx.widget_key("ablation-ablated"))
    before, after = d.predicted, int(np.argmax(d.ablated))
    if before != after:
        st.warning(_("The prediction changes from {before} to {after}.").format(before=labels[before], after=labels[after]))
    st.write(
        _("{label}: {before:.1%} → {after:.1%} ({change:+.1%} points).").format(
            label=labels[before], before=float(d.original[before]), after=float(d.ablated[before]), change=float(d.ablated[before] - d.original[before])
        )
    )


def _cached_outcome(ctx: ViewContext, heads_off: Heads, uniform: bool) -> Outcome:
    return compute.cached("ablation", lambda: outcome(ctx.subject, heads_off, uniform), ctx.model_id, ctx.text, heads_off, uniform)


def _render_uniform(ctx: ViewContext) -> None:
    st.toggle(_("Uniform attention"), key=ctx.key("uniform"), help=_("Replace the attention weights by 1/T over the words (Wiegreffe & Pinter 2019)."))
    uniform = bool(ctx.get("uniform"))
    settings = ctx.settings
    d = assemble(ctx.subject, settings, frozenset(), uniform, _cached_outcome(ctx, frozenset(), uniform), None)
    _probabilities_side_by_side(ctx, d, _("Uniform attention") if uniform else _("Learned attention"))
    if uniform:
        show_figure(ctx, figure(d, settings, ctx.style), "ablation-uniform")
    st.caption(
        _(
            "If the probabilities barely move, the learned weights were not what the prediction depended on: "
            "the words' encodings carry the evidence whatever the weights (Wiegreffe & Pinter 2019)."
        )
    )
    matrix_downloads(ctx, rows(d))


def _render_heads(ctx: ViewContext) -> None:
    layers, heads = ctx.model.attention_grid
    heads_off = heads_within(ctx.model, ctx.get("ablate"))
    layer, head = layer_head_pickers(ctx)
    buttons = st.columns(3)
    if buttons[0].button(_("Keep only head {layer}:{head}").format(layer=layer, head=head), key=ctx.widget_key("keep-only")):
        heads_off = frozenset((row, column) for row in range(layers) for column in range(heads)) - {(layer - 1, head - 1)}
        _set_heads_off(ctx.key("ablate"), heads_off)
    if buttons[1].button(_("Switch off layer {layer}").format(layer=layer), key=ctx.widget_key("layer-off")):
        heads_off = heads_off | {(layer - 1, column) for column in range(heads)}
        _set_heads_off(ctx.key("ablate"), heads_off)
    if buttons[2].button(_("Switch every head on"), key=ctx.widget_key("all-on"), disabled=not heads_off):
        heads_off = frozenset()
        _set_heads_off(ctx.key("ablate"), heads_off)

    effects = compute.cached("head_effects", lambda: head_effects(ctx.subject), ctx.model_id, ctx.text)
    settings = ctx.settings
    d = assemble(ctx.subject, settings, heads_off, False, _cached_outcome(ctx, heads_off, False), effects)
    show_figure(ctx, figure(d, settings, ctx.style), "ablation-grid", on_click=_toggle_clicked)
    _probabilities_side_by_side(ctx, d, _("{count} of {total} heads off").format(count=len(heads_off), total=layers * heads))

    predicted = class_name(d.labels[d.predicted])
    st.subheader(_("Heads whose removal moves p({label}) most").format(label=predicted))
    order = np.argsort(-np.abs(effects.effects), axis=None, kind="stable")[:RANKED_HEADS]
    st.dataframe(
        [{_("head"): f"{i // heads + 1}:{i % heads + 1}", _("change in p({label})").format(label=predicted): f"{effects.effects.flat[i]:+.2%}"} for i in order],
        hide_index=True,
    )
    st.caption(
        _(
            "Importance: |Σ A·∂L/∂A| per head from one backward pass, with L = −log p(predicted), each layer divided by its L2 norm "
            "(Michel, Levy & Neubig 2019, “Are Sixteen Heads Really Better than One?”)."
        )
    )
    matrix_downloads(ctx, rows(d))


def render(ctx: ViewContext) -> None:
    # The page caches the per-text grids apart from the probabilities, so a click on a head
    # runs one ablated prediction, not every single-head ablation again.
    with st.spinner(_("Switching heads off…")):
        if uniform_mode(ctx.model):
            _render_uniform(ctx)
        else:
            _render_heads(ctx)
