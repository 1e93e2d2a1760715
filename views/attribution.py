"""Attention next to gradient and occlusion attributions, and which of them the model follows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.explain.attribution import MAX_STEPS, MIN_STEPS, Attributions, attribute, merge, supports_attribution
from models.explain.faithfulness import FRACTIONS, faithfulness_table, most_faithful
from views import compute, state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Style, Subject, Table
from views.widgets import class_name, matrix_downloads, only_special_tokens_left, show_figure
from viz.strip import token_strips

KEY = "attribution"
TITLE = N_("Attributions")
CAPTION = N_(
    "One strip per method over the same tokens. The first three are attention; the others ask the model itself: how the class "
    "probability changes with each token's embedding (gradients), or when the token is left out. Red raises the class, blue lowers it."
)
METHOD_NAMES = {
    "attention": N_("Attention (last layer, heads averaged)"),
    "rollout": N_("Attention rollout"),
    "flow": N_("Attention flow"),
    "attention_x_gradient": N_("Attention × gradient (Chefer et al. 2021)"),
    "gradient_x_input": N_("Gradient × input"),
    "integrated_gradients": N_("Integrated gradients (Sundararajan et al. 2017)"),
    "occlusion": N_("Leave one out"),
}
UNAVAILABLE = {
    "rollout": N_("Rollout and flow compose self-attention across layers; this model's attention is one pooling row."),
    "attention_x_gradient": N_("Attention × gradient follows relevance through self-attention layers; this model has none."),
    "flow": N_("Attention flow is not shown here: this classifier reads every token (or the text is long), which takes one maximum flow per pair of tokens."),
}
STAGES = (
    ("attention", "rollout", "flow", "attention_x_gradient", "gradient_x_input"),
    ("integrated_gradients",),
    ("occlusion",),
)
STEP_CHOICES = tuple(steps for steps in (32, 64, 128, 256) if MIN_STEPS <= steps <= MAX_STEPS)

# The class explained (1-based; 0 = the predicted one) and the integrated-gradients steps.
FIELDS = (state.Field("target", state.positive_int(1000), 0), state.Field("steps", state.number_in(STEP_CHOICES), STEP_CHOICES[0]))
# Every method covers the whole text: no layer or head is picked.
DEPENDS_ON: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttributionData:
    """Every method's scores for one text and class, and how faithful each is (``faithfulness_table`` rows)."""

    attributions: Attributions
    faithfulness: tuple[Mapping[str, float | str], ...]
    hide_special: bool

    @property
    def kept(self) -> list[int]:
        """The units drawn: all, or the ordinary ones when special tokens are hidden."""
        return [i for i, special in enumerate(self.attributions.special) if not (self.hide_special and special)]

    @property
    def empty(self) -> bool:
        return not self.kept


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if supports_attribution(model) is None:
        return True, ""
    if prediction.is_seq2seq:
        return False, _("Attributions explain a classifier's class probabilities; this model generates text.")
    return False, _("This model does not expose its input embeddings, which attributions need.")


def explained_class(model: AttentionModel, target: int) -> int | None:
    """The class index ``attribute`` explains for the field ``target`` (1-based; 0 or unknown: the predicted one)."""
    return target - 1 if 1 <= target <= len(model.labels) else None


def stage(subject: Subject, target: int, steps: int, words: bool, methods: Sequence[str]) -> Attributions:
    """One stage's methods (``STAGES``) for the field values ``target`` and ``steps``."""
    return attribute(subject.model, subject.text, target=explained_class(subject.model, target), steps=steps, words=words, methods=methods)


def data(subject: Subject, settings: Settings) -> AttributionData:
    attributions = merge([stage(subject, settings["target"], settings["steps"], settings.words, methods) for methods in STAGES])
    return AttributionData(attributions, tuple(faithfulness_table(subject.model, subject.text, attributions)), settings.hide_special)


def figure(d: AttributionData, settings: Settings, style: Style) -> go.Figure:
    a, kept = d.attributions, d.kept
    strips = {_(METHOD_NAMES[name]): np.asarray(values)[kept] for name, values in a.scores.items()}
    title = _("What p({label}) depends on, by method").format(label=class_name(a.target_label))
    return token_strips(strips, [a.tokens[i] for i in kept], signed=True, title=title, scheme=style.scheme, width_px=style.width_px, presenter=style.presenter)


def rows(d: AttributionData) -> dict[str, Table]:
    a, kept = d.attributions, d.kept
    methods = tuple(a.scores)
    meta = {"class": a.target_label, "steps": a.steps, "completeness_gap": None if math.isnan(a.completeness_gap) else a.completeness_gap}
    scores = np.stack([a.scores[name][kept] for name in methods])
    faithfulness = np.array([[row["comprehensiveness"], row["sufficiency"]] for row in d.faithfulness]).reshape(-1, 2)
    return {
        "attribution-scores": Table(scores, methods, tuple(a.tokens[i] for i in kept), meta),
        "attribution-faithfulness": Table(
            faithfulness, tuple(row["method"] for row in d.faithfulness), ("comprehensiveness", "sufficiency"), {**meta, "fractions": list(FRACTIONS)}
        ),
    }


def _fields(ctx: ViewContext) -> tuple[int, int]:
    """The class and step pickers; returns the fields ``target`` and ``steps`` (both valid for this model)."""
    labels = ctx.model.labels
    if ctx.get("target") > len(labels):
        st.session_state[ctx.key("target")] = 0
    left, right = st.columns(2)
    left.selectbox(
        _("Class to explain"),
        range(len(labels) + 1),
        format_func=lambda i: _("the predicted class") if i == 0 else class_name(labels[i - 1]),
        key=ctx.key("target"),
    )
    right.select_slider(_("Integrated-gradients steps"), STEP_CHOICES, key=ctx.key("steps"))
    return ctx.get("target"), ctx.get("steps")


def _baseline(model: AttentionModel) -> str:
    if getattr(model, "baseline_token", None) is None:
        return _("zero vectors in place of the word embeddings")
    return _("the {token} embedding in place of every ordinary token's (special tokens and positions kept)").format(token=model.baseline_token)


def _faithfulness_sentence(table: Sequence[Mapping], label: str) -> str:
    best = most_faithful(list(table))
    row = next(r for r in table if r["method"] == best)
    return _(
        "On this text the model's behaviour follows {method} best: deleting the tokens it ranks highest changes p({label}) by "
        "{deleted:+.1f} percentage points on average, and keeping only those tokens changes it by {kept:+.1f}."
    ).format(method=_(METHOD_NAMES[best]), label=label, deleted=-100 * row["comprehensiveness"], kept=-100 * row["sufficiency"])


def _explained(ctx: ViewContext, d: AttributionData) -> None:
    """What the strips cannot say: missing methods, integrated gradients' completeness, faithfulness."""
    a = d.attributions
    label = class_name(a.target_label)
    for name in a.unavailable:
        if name in UNAVAILABLE and (name != "flow" or "rollout" not in a.unavailable):
            st.caption(_(UNAVAILABLE[name]))
    gap = a.completeness_gap
    st.write(
        _(
            "Integrated gradients, {steps} steps, from {baseline}: the scores add up to {total:+.4f}; p({label}) goes from "
            "{start:.4f} at the baseline to {end:.4f}, a completeness gap of {gap}."
        ).format(
            steps=a.steps,
            baseline=_baseline(ctx.model),
            total=float(a.scores["integrated_gradients"].sum()),
            label=label,
            start=a.baseline_probability,
            end=float(a.probs[a.target]),
            gap="—" if math.isnan(gap) else f"{gap:.1%}",
        )
    )
    st.subheader(_("Which explanation does the model follow?"))
    st.dataframe(
        [
            {
                _("method"): _(METHOD_NAMES[row["method"]]),
                _("comprehensiveness ↑"): round(row["comprehensiveness"], 4),
                _("sufficiency ↓"): round(row["sufficiency"], 4),
            }
            for row in d.faithfulness
        ],
        hide_index=True,
    )
    st.write(_faithfulness_sentence(d.faithfulness, label))
    st.caption(
        _(
            "Comprehensiveness: how much p({label}) drops when the method's top {fractions} of tokens are deleted; sufficiency: how much it "
            "drops when only those tokens are kept (DeYoung et al. 2020, ERASER; averaged over the three sizes). Tokens are deleted from "
            "the text, never replaced; special tokens always stay; the top k% is rounded up to at least one token."
        ).format(label=label, fractions=", ".join(f"{fraction:.0%}" for fraction in FRACTIONS))
    )


def render(ctx: ViewContext) -> None:
    target, steps = _fields(ctx)
    settings, subject = ctx.settings, ctx.subject
    key = (ctx.model_id, ctx.text, target, steps, settings.words)
    parts, slot = [], st.empty()
    # The fast methods are drawn at once; integrated gradients, then leave-one-out, join them.
    for number, methods in enumerate(STAGES):
        with st.spinner(_("Computing attributions…")):
            parts.append(compute.cached("attribution", lambda methods=methods: stage(subject, target, steps, settings.words, methods), *key, methods))
        d = AttributionData(merge(parts), (), settings.hide_special)
        if d.empty:
            only_special_tokens_left()
            return
        with slot.container():
            show_figure(ctx, figure(d, settings, ctx.style), f"attribution-{number}")
    with st.spinner(_("Measuring faithfulness…")):
        table = compute.cached("faithfulness", lambda: tuple(faithfulness_table(ctx.model, ctx.text, d.attributions)), *key)
    d = AttributionData(d.attributions, table, settings.hide_special)
    _explained(ctx, d)
    matrix_downloads(ctx, rows(d))
