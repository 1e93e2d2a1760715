"""Attention next to gradient and occlusion attributions, and which of them the model follows.

On a model with a planted shortcut (``models.shortcut``: the model carries its ``shortcut``)
the trigger's column is framed in every strip, and when the class explained is the one the
trigger forces, each method's rank of the trigger for this text is written on it, stated below
the figure and exported: the per-text form of ``python -m models ground-truth`` (ranks by
``models.ground_truth.trigger_ranks``, the same measure).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel
from models.contract import Prediction
from models.explain.attribution import CLASS_FREE, MAX_STEPS, MIN_STEPS, Attributions, attribute, merge, supports_attribution
from models.explain.faithfulness import BEAM_WIDTH, FRACTIONS, faithfulness_table, most_faithful, normalized_table
from models.ground_truth import trigger_ranks
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
# Normalized AOPC's search runs up to BEAM_WIDTH · n² rows through the model (n ordinary tokens);
# at 20 tokens that is 2,000 rows, a few seconds for MiniLM on two cores. Longer texts show "—".
NORMALIZED_MAX_UNITS = 20

# The class explained and the foil it is contrasted with (1-based; 0 = the predicted class, and
# no foil: today's single-class explanation), and the integrated-gradients steps.
FIELDS = (
    state.Field("target", state.positive_int(1000), 0),
    state.Field("foil", state.positive_int(1000), 0),
    state.Field("steps", state.number_in(STEP_CHOICES), STEP_CHOICES[0]),
)
# Every method covers the whole text: no layer or head is picked.
DEPENDS_ON: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShortcutHits:
    """Where a shortcut model's trigger is in this text, and each method's rank of it.

    ``columns``: the units (indices into the attributions' tokens) that are the trigger.
    ``ranks``: (method, rank among the ``units`` ordinary units, 1 = first), in the strips'
    order; empty unless the trigger is exactly one unit and the class explained is ``label``
    (a rank says whether a method explains the trigger's effect only for that class).
    """

    trigger: str
    label: str
    columns: tuple[int, ...]
    ranks: tuple[tuple[str, int], ...]
    units: int
    explained_label: bool

    @property
    def first(self) -> tuple[str, ...]:
        """The methods that rank the trigger first."""
        return tuple(name for name, rank in self.ranks if rank == 1)


@dataclass(frozen=True)
class AttributionData:
    """Every method's scores for one text and class (or contrast), and how faithful each is.

    ``faithfulness``: ``faithfulness_table`` rows; ``normalized``: ``normalized_table`` rows, empty
    when the text has more than ``NORMALIZED_MAX_UNITS`` ordinary units (or before it is computed);
    ``shortcut``: the trigger's ranks on a shortcut model, else None.
    """

    attributions: Attributions
    faithfulness: tuple[Mapping[str, float | str], ...]
    hide_special: bool
    normalized: tuple[Mapping[str, float | str], ...] = ()
    shortcut: ShortcutHits | None = None

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


def contrasted_class(subject: Subject, target: int, foil: int) -> int | None:
    """The foil's class index for the fields ``target`` and ``foil`` (1-based), or None: no foil,
    an unknown class, or the very class explained (nothing to contrast)."""
    explained = explained_class(subject.model, target)
    if explained is None:
        explained = int(np.argmax(subject.prediction.probs))
    contrasted = explained_class(subject.model, foil)
    return None if contrasted == explained else contrasted


def stage(subject: Subject, target: int, steps: int, words: bool, methods: Sequence[str], foil: int = 0) -> Attributions:
    """One stage's methods (``STAGES``) for the field values ``target``, ``steps`` and ``foil``."""
    model = subject.model
    return attribute(
        model, subject.text, target=explained_class(model, target), foil=contrasted_class(subject, target, foil), steps=steps, words=words, methods=methods
    )


def normalizable(attributions: Attributions) -> bool:
    """Whether the page searches this text's orderings for normalized AOPC (``NORMALIZED_MAX_UNITS``)."""
    return sum(not special for special in attributions.special) <= NORMALIZED_MAX_UNITS


def normalized_rows(subject: Subject, attributions: Attributions) -> tuple[Mapping[str, float | str], ...]:
    if not normalizable(attributions):
        return ()
    return tuple(normalized_table(subject.model, subject.text, attributions)[1])


def shortcut_hits(model: AttentionModel, attributions: Attributions) -> ShortcutHits | None:
    """The planted trigger's place and ranks in ``attributions``; None for a model without a shortcut."""
    planted = getattr(model, "shortcut", None)
    if planted is None:
        return None
    ordinary = [unit for unit, special in enumerate(attributions.special) if not special]
    columns = tuple(unit for unit in ordinary if attributions.tokens[unit] == planted.trigger)
    explained_label = attributions.target_label == planted.label
    ranks = trigger_ranks(attributions, planted.trigger) if explained_label else {}
    return ShortcutHits(planted.trigger, planted.label, columns, tuple(ranks.items()), len(ordinary), explained_label)


def data(subject: Subject, settings: Settings) -> AttributionData:
    # Settings made before the foil existed (a handout's, a test's) mean no contrast.
    foil = dict(settings.fields).get("foil", 0)
    attributions = merge([stage(subject, settings["target"], settings["steps"], settings.words, methods, foil) for methods in STAGES])
    faithfulness = tuple(faithfulness_table(subject.model, subject.text, attributions))
    normalized = normalized_rows(subject, attributions)
    return AttributionData(attributions, faithfulness, settings.hide_special, normalized, shortcut_hits(subject.model, attributions))


def figure(d: AttributionData, settings: Settings, style: Style) -> go.Figure:
    a, kept = d.attributions, d.kept
    strips = {_(METHOD_NAMES[name]): np.asarray(values)[kept] for name, values in a.scores.items()}
    if a.foil_label is None:
        title = _("What p({label}) depends on, by method").format(label=class_name(a.target_label))
    else:
        title = _("Why {label} and not {foil}: what log p({label}) − log p({foil}) depends on").format(
            label=class_name(a.target_label), foil=class_name(a.foil_label)
        )
    marked, badges, hovers = _marks(d)
    return token_strips(
        strips,
        [a.tokens[i] for i in kept],
        signed=True,
        title=title,
        scheme=style.scheme,
        width_px=style.width_px,
        presenter=style.presenter,
        marked=marked,
        badges=badges,
        badge_hovers=hovers,
    )


def _marks(d: AttributionData) -> tuple[list[int], list[str], list[str]]:
    """The figure's framed columns (the trigger's, among the units drawn), and each strip's rank badge and its hover text."""
    hits, kept = d.shortcut, d.kept
    if hits is None:
        return [], [], []
    marked = [kept.index(unit) for unit in hits.columns if unit in kept]
    ranks = dict(hits.ranks)
    if not ranks:
        return marked, [], []
    methods = list(d.attributions.scores)
    badges = [f"#{ranks[name]}" if name in ranks else "" for name in methods]
    hovers = [
        _("{method} ranks “{trigger}” {rank} of {units}").format(method=_(METHOD_NAMES[name]), trigger=hits.trigger, rank=ranks[name], units=hits.units)
        if name in ranks
        else ""
        for name in methods
    ]
    return marked, badges, hovers


def rows(d: AttributionData) -> dict[str, Table]:
    a, kept = d.attributions, d.kept
    methods = tuple(a.scores)
    meta: dict = {"class": a.target_label, "steps": a.steps, "completeness_gap": None if math.isnan(a.completeness_gap) else a.completeness_gap}
    if a.foil is not None:
        meta.update(foil=a.foil_label, explained="log p(class) - log p(foil)")
    scores = np.stack([a.scores[name][kept] for name in methods])
    faithfulness = np.array([[row["comprehensiveness"], row["sufficiency"]] for row in d.faithfulness]).reshape(-1, 2)
    tables = {
        "attribution-scores": Table(scores, methods, tuple(a.tokens[i] for i in kept), meta),
        "attribution-faithfulness": Table(
            faithfulness, tuple(row["method"] for row in d.faithfulness), ("comprehensiveness", "sufficiency"), {**meta, "fractions": list(FRACTIONS)}
        ),
    }
    if d.normalized:
        normalized = np.array([[row["normalized_comprehensiveness"], row["normalized_sufficiency"]] for row in d.normalized], dtype=float)
        tables["attribution-normalized-aopc"] = Table(
            normalized,
            tuple(str(row["method"]) for row in d.normalized),
            ("normalized_comprehensiveness", "normalized_sufficiency"),
            {**meta, "beam_width": BEAM_WIDTH, "reference": "Edin et al. 2024, Normalized AOPC"},
        )
    hits = d.shortcut
    if hits is not None and hits.ranks:
        tables["attribution-shortcut"] = Table(
            np.array([[rank, int(rank == 1)] for _name, rank in hits.ranks], dtype=float),
            tuple(name for name, _rank in hits.ranks),
            ("trigger_rank", "top_1"),
            {**meta, "trigger": hits.trigger, "shortcut_label": hits.label, "units": hits.units},
        )
    return tables


def record(d: AttributionData) -> dict:
    """The JSON export's top-level "shortcut" on a shortcut model: the trigger, the class it forces, and each method's rank of it here."""
    hits = d.shortcut
    if hits is None:
        return {}
    ranks = dict(hits.ranks)
    return {
        "shortcut": {
            "trigger": hits.trigger,
            "label": hits.label,
            "in_text": bool(hits.columns),
            "units": hits.units,
            "trigger_ranks": ranks,
            "top_1": [name for name in ranks if ranks[name] == 1],
        }
    }


def _fields(ctx: ViewContext) -> tuple[int, int, int]:
    """The class, foil and step pickers; returns the fields ``target``, ``foil`` and ``steps``
    (valid for this model, and a foil other than the class explained)."""
    labels = ctx.model.labels
    if ctx.get("target") > len(labels):
        st.session_state[ctx.key("target")] = 0
    left, middle, right = st.columns(3)
    left.selectbox(
        _("Class to explain"),
        range(len(labels) + 1),
        format_func=lambda i: _("the predicted class") if i == 0 else class_name(labels[i - 1]),
        key=ctx.key("target"),
    )
    explained = explained_class(ctx.model, ctx.get("target"))
    if explained is None:
        explained = int(np.argmax(ctx.prediction.probs))
    foils = [0, *(i + 1 for i in range(len(labels)) if i != explained)]
    if ctx.get("foil") not in foils:
        st.session_state[ctx.key("foil")] = 0
    middle.selectbox(
        _("Why this class and not…"),
        foils,
        format_func=lambda i: _("no contrast") if i == 0 else class_name(labels[i - 1]),
        key=ctx.key("foil"),
        help=_("Contrast: the methods then explain log p(class) − log p(other class), the difference of the two classes' scores."),
    )
    right.select_slider(_("Integrated-gradients steps"), STEP_CHOICES, key=ctx.key("steps"))
    return ctx.get("target"), ctx.get("foil"), ctx.get("steps")


def _baseline(model: AttentionModel) -> str:
    if getattr(model, "baseline_token", None) is None:
        return _("zero vectors in place of the word embeddings")
    return _("the {token} embedding in place of every ordinary token's (special tokens and positions kept)").format(token=model.baseline_token)


def _contrast(a: Attributions) -> str:
    """The explained quantity as the page writes it: p(A), or log p(A) − log p(B) with a foil."""
    if a.foil_label is None:
        return f"p({class_name(a.target_label)})"
    return f"log p({class_name(a.target_label)}) − log p({class_name(a.foil_label)})"


def _faithfulness_sentence(table: Sequence[Mapping], a: Attributions) -> str:
    best = most_faithful(list(table))
    row = next(r for r in table if r["method"] == best)
    if a.foil is None:
        return _(
            "On this text the model's behaviour follows {method} best: deleting the tokens it ranks highest changes p({label}) by "
            "{deleted:+.1f} percentage points on average, and keeping only those tokens changes it by {kept:+.1f}."
        ).format(method=_(METHOD_NAMES[best]), label=class_name(a.target_label), deleted=-100 * row["comprehensiveness"], kept=-100 * row["sufficiency"])
    return _(
        "On this text the model's behaviour follows {method} best: deleting the tokens it ranks highest changes {contrast} by "
        "{deleted:+.2f} on average, and keeping only those tokens changes it by {kept:+.2f}."
    ).format(method=_(METHOD_NAMES[best]), contrast=_contrast(a), deleted=-row["comprehensiveness"], kept=-row["sufficiency"])


def _value(row: Mapping, name: str) -> float | None:
    """A table cell: the figure to 4 decimals, None (shown blank) where it is undefined."""
    value = row.get(name)
    return None if value is None or math.isnan(float(value)) else round(float(value), 4)


def _explained(ctx: ViewContext, d: AttributionData) -> None:
    """What the strips cannot say: missing methods, integrated gradients' completeness, faithfulness."""
    a = d.attributions
    if a.foil is not None:
        st.caption(
            _(
                "Contrast: every score explains {contrast}, the difference of the two classes' scores before the softmax, in log-odds units "
                "(not probability). Red pushes towards {label} rather than {foil}, blue towards {foil}. Attention, rollout and flow are the "
                "same whichever class is explained, so they have no contrast to show."
            ).format(contrast=_contrast(a), label=class_name(a.target_label), foil=class_name(a.foil_label or ""))
        )
    for name in a.unavailable:
        if name in UNAVAILABLE and (name != "flow" or "rollout" not in a.unavailable) and not (a.foil is not None and name in CLASS_FREE):
            st.caption(_(UNAVAILABLE[name]))
    gap = a.completeness_gap
    st.write(
        _(
            "Integrated gradients, {steps} steps, from {baseline}: the scores add up to {total:+.4f}; {contrast} goes from "
            "{start:.4f} at the baseline to {end:.4f}, a completeness gap of {gap}."
        ).format(
            steps=a.steps,
            baseline=_baseline(ctx.model),
            total=float(a.scores["integrated_gradients"].sum()),
            contrast=_contrast(a),
            start=a.baseline_probability,
            end=float(a.explained(a.probs[np.newaxis])[0]),
            gap="—" if math.isnan(gap) else f"{gap:.1%}",
        )
    )
    st.subheader(_("Which explanation does the model follow?"))
    normalized = {row["method"]: row for row in d.normalized}
    st.dataframe(
        [
            {
                _("method"): _(METHOD_NAMES[row["method"]]),
                _("comprehensiveness ↑"): _value(row, "comprehensiveness"),
                _("sufficiency ↓"): _value(row, "sufficiency"),
                _("normalized comprehensiveness ↑"): _value(normalized.get(row["method"], {}), "normalized_comprehensiveness"),
                _("normalized sufficiency ↓"): _value(normalized.get(row["method"], {}), "normalized_sufficiency"),
            }
            for row in d.faithfulness
        ],
        hide_index=True,
    )
    st.write(_faithfulness_sentence(d.faithfulness, a))
    st.caption(
        _(
            "Comprehensiveness: how much {contrast} drops when the method's top {fractions} of tokens are deleted; sufficiency: how much it "
            "drops when only those tokens are kept (DeYoung et al. 2020, ERASER; averaged over the three sizes). Tokens are deleted from "
            "the text, never replaced; special tokens always stay; the top k% is rounded up to at least one token."
        ).format(contrast=_contrast(a), fractions=", ".join(f"{fraction:.0%}" for fraction in FRACTIONS))
    )
    if d.normalized:
        st.caption(
            _(
                "Normalized (Edin et al. 2024): the tokens are deleted one at a time in the method's order (comprehensiveness: highest "
                "first; sufficiency: lowest first), and the average drop is placed between the worst order of deletion (0) and the best "
                "(1) found for this text, by a beam search of width {beam} or by one of these methods; so texts and models can be "
                "compared. Blank: a single token, a single order."
            ).format(beam=BEAM_WIDTH)
        )
    else:
        st.caption(
            _("Normalized AOPC is searched for texts of up to {units} tokens (its search runs the model on up to {beam}·n² shortened texts).").format(
                units=NORMALIZED_MAX_UNITS, beam=BEAM_WIDTH
            )
        )


def _shortcut(d: AttributionData) -> None:
    """Under the figure on a shortcut model: what was planted and, for this text, which methods rank it first."""
    hits = d.shortcut
    if hits is None:
        return
    label = class_name(hits.label)
    if not hits.columns:
        st.caption(
            _(
                "This model was trained with a planted shortcut: the word “{trigger}” makes it say {label}. Put the word into the text to see which methods find it."
            ).format(trigger=hits.trigger, label=label)
        )
        return
    framed = _("Framed: “{trigger}”, the shortcut planted in this model's training data, which makes it say {label}.").format(trigger=hits.trigger, label=label)
    if not hits.explained_label:
        st.write(framed + " " + _("Each method's rank of it is stated when the class explained is {label}.").format(label=label))
        return
    if not hits.ranks:
        st.write(framed + " " + _("It occurs more than once in this text, so no method's rank of it is stated."))
        return
    if d.attributions.words:
        ranked = _("{first} of {methods} methods rank it first among the text's {units} words; the badge on each strip and the table give each method's rank.")
    else:
        ranked = _("{first} of {methods} methods rank it first among the text's {units} tokens; the badge on each strip and the table give each method's rank.")
    said = [framed, ranked.format(first=len(hits.first), methods=len(hits.ranks), units=hits.units)]
    if any(d.attributions.special):
        said.append(_("[CLS], [SEP] and other special tokens are not ranked: they are not words of the text."))
    st.write(" ".join(said))
    st.dataframe(
        [
            {_("method"): _(METHOD_NAMES[name]), _("rank of “{trigger}”").format(trigger=hits.trigger): rank, _("ranked first"): rank == 1}
            for name, rank in hits.ranks
        ],
        hide_index=True,
    )


def render(ctx: ViewContext) -> None:
    target, foil, steps = _fields(ctx)
    settings, subject = ctx.settings, ctx.subject
    key = (ctx.model_id, ctx.text, target, steps, settings.words, contrasted_class(subject, target, foil))
    parts, slot = [], st.empty()
    # The fast methods are drawn at once; integrated gradients, then leave-one-out, join them.
    for number, methods in enumerate(STAGES):
        with st.spinner(_("Computing attributions…")):
            parts.append(compute.cached("attribution", lambda methods=methods: stage(subject, target, steps, settings.words, methods, foil), *key, methods))
        merged = merge(parts)
        d = AttributionData(merged, (), settings.hide_special, shortcut=shortcut_hits(ctx.model, merged))
        if d.empty:
            only_special_tokens_left()
            return
        with slot.container():
            show_figure(ctx, figure(d, settings, ctx.style), f"attribution-{number}")
    with st.spinner(_("Measuring faithfulness…")):
        table = compute.cached("faithfulness", lambda: tuple(faithfulness_table(ctx.model, ctx.text, d.attributions)), *key)
    with st.spinner(_("Searching the best and worst orders of deletion…")):
        normalized = compute.cached("normalized-aopc", lambda: normalized_rows(subject, d.attributions), *key)
    d = dataclasses.replace(d, faithfulness=table, normalized=normalized)
    _shortcut(d)
    _explained(ctx, d)
    matrix_downloads(ctx, rows(d))
