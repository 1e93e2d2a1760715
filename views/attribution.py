"""Attention next to gradient and occlusion attributions, and which of them the model follows."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.explain.attribution import MAX_STEPS, MIN_STEPS, attribute, merge, supports_attribution
from models.explain.faithfulness import FRACTIONS, faithfulness_table, most_faithful
from views import state
from views.context import ViewContext
from views.i18n import N_, _
from views.widgets import class_name, only_special_tokens_left, show_figure
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
FIELDS = (state.Field("target", state.positive_int(1000), 0), state.Field("steps", state.positive_int(256), 32))


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    if supports_attribution(model) is None:
        return True, ""
    if prediction.is_seq2seq:
        return False, _("Attributions explain a classifier's class probabilities; this model generates text.")
    return False, _("This model does not expose its input embeddings, which attributions need.")


def _pickers(ctx: ViewContext) -> tuple[int | None, int]:
    """The class explained (None = the predicted one) and the integrated-gradients steps."""
    labels = ctx.model.labels
    target_key, steps_key = ctx.key("target"), state.key("steps")
    if ctx.get("target") > len(labels):
        st.session_state[target_key] = 0
    if state.get("steps") not in STEP_CHOICES:
        st.session_state[steps_key] = STEP_CHOICES[0]
    left, right = st.columns(2)
    left.selectbox(
        _("Class to explain"),
        range(len(labels) + 1),
        format_func=lambda i: _("the predicted class") if i == 0 else class_name(labels[i - 1]),
        key=target_key,
    )
    right.select_slider(_("Integrated-gradients steps"), STEP_CHOICES, key=steps_key)
    target = ctx.get("target")
    return (target - 1 if target else None), state.get("steps")


def _baseline(model: AttentionModel) -> str:
    if getattr(model, "baseline_token", None) is None:
        return _("zero vectors in place of the word embeddings")
    return _("the {token} embedding in place of every ordinary token's (special tokens and positions kept)").format(token=model.baseline_token)


def _faithfulness_sentence(table: list[dict], label: str) -> str:
    best = most_faithful(table)
    row = next(r for r in table if r["method"] == best)
    return _(
        "On this text the model's behaviour follows {method} best: deleting the tokens it ranks highest changes p({label}) by "
        "{deleted:+.1f} percentage points on average, and keeping only those tokens changes it by {kept:+.1f}."
    ).format(method=_(METHOD_NAMES[best]), label=label, deleted=-100 * row["comprehensiveness"], kept=-100 * row["sufficiency"])


def _strips(ctx: ViewContext, attributions, stage: int) -> None:
    label = class_name(attributions.target_label)
    keep = [i for i, special in enumerate(attributions.special) if not (ctx.hide_special and special)]
    rows = {_(METHOD_NAMES[name]): np.asarray(values)[keep] for name, values in attributions.scores.items()}
    title = _("What p({label}) depends on, by method").format(label=label)
    show_figure(ctx, token_strips(rows, [attributions.tokens[i] for i in keep], signed=True, title=title, scheme=ctx.scheme), f"attribution-{stage}")


def render(ctx: ViewContext) -> None:
    target, steps = _pickers(ctx)
    parts, slot = [], st.empty()
    # The fast methods are drawn at once; integrated gradients, then leave-one-out, join them.
    for stage, methods in enumerate(STAGES):
        with st.spinner(_("Computing attributions…")):
            part = ctx.cached(
                "attribution",
                lambda methods=methods: attribute(ctx.model, ctx.text, target=target, steps=steps, words=ctx.words, methods=methods),
                target,
                steps,
                methods,
            )
        parts.append(part)
        attributions = merge(parts)
        if ctx.hide_special and all(attributions.special):
            only_special_tokens_left()
            return
        with slot.container():
            _strips(ctx, attributions, stage)
    with st.spinner(_("Measuring faithfulness…")):
        table = ctx.cached("faithfulness", lambda: faithfulness_table(ctx.model, ctx.text, attributions), target, steps)
    label = class_name(attributions.target_label)
    for name in attributions.unavailable:
        if name in UNAVAILABLE and (name != "flow" or "rollout" not in attributions.unavailable):
            st.caption(_(UNAVAILABLE[name]))

    gap = attributions.completeness_gap
    total = float(attributions.scores["integrated_gradients"].sum())
    st.write(
        _(
            "Integrated gradients, {steps} steps, from {baseline}: the scores add up to {total:+.4f}; p({label}) goes from "
            "{start:.4f} at the baseline to {end:.4f}, a completeness gap of {gap}."
        ).format(
            steps=attributions.steps,
            baseline=_baseline(ctx.model),
            total=total,
            label=label,
            start=attributions.baseline_probability,
            end=float(attributions.probs[attributions.target]),
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
            for row in table
        ],
        hide_index=True,
    )
    st.write(_faithfulness_sentence(table, label))
    st.caption(
        _(
            "Comprehensiveness: how much p({label}) drops when the method's top {fractions} of tokens are deleted; sufficiency: how much it "
            "drops when only those tokens are kept (DeYoung et al. 2020, ERASER; averaged over the three sizes). Tokens are deleted from "
            "the text, never replaced; special tokens always stay; the top k% is rounded up to at least one token."
        ).format(label=label, fractions=", ".join(f"{fraction:.0%}" for fraction in FRACTIONS))
    )
