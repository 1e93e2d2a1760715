"""How one head computed its weights for one query, every step on the model's own numbers (models/qkv.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from models.base import AttentionModel, LensError
from models.contract import Prediction
from models.qkv import ADDITIVE, DOT_PRODUCT, Mask, Row, checked_head, supports_qkv
from views import flow, state
from views.context import ViewContext
from views.i18n import N_, _
from views.spec import Settings, Style, Subject, Table
from views.widgets import layer_head_pickers, matrix_downloads, show_figure
from viz.qkv import Step, computation_figure

KEY = "qkv"
TITLE = N_("Queries and keys")
CAPTION = N_(
    "Where one head's weights come from: the query q of one token is compared with the key k of every token, each score "
    "q · k / √d, and the softmax turns the scores into the weights (Vaswani et al. 2017); Bahdanau's models score v · tanh(W s + U h)."
)
# What if the scores were divided by T before the softmax: the model's own row is T = 1.
TEMPERATURES = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def temperature(value: str) -> float:
    number = float(value)
    if number not in TEMPERATURES:
        raise ValueError(value)
    return number


# The query token (1-based among the model's own tokens; the output step for the date model): the
# flow view's field of the same name, so one link names one query for both.
QUERY = flow.FIELDS[0]
FIELDS = (QUERY, state.Field("temperature", temperature, 1.0, write=lambda t: f"{t:g}"))


@dataclass(frozen=True)
class QkvData:
    """One query's steps over the real keys (``row``), and where they came from.

    ``padded`` is the width the model ran the text at (its keys past ``len(tokens)`` were
    padding, masked by ``mask``); ``error`` the largest difference between the recomputed
    weights of the whole head and the model's own attention.
    """

    kind: str
    layer: int
    head: int
    query: int  # 1-based among the model's own query tokens, clamped to the text
    query_token: str
    tokens: tuple[str, ...]
    row: Row
    padded: int
    mask: Mask
    error: float
    self_attention: bool
    seq2seq: bool

    @property
    def padding(self) -> int:
        return self.padded - len(self.tokens)


def applies(prediction: Prediction, model: AttentionModel) -> tuple[bool, str]:
    reason = supports_qkv(model)
    return reason is None, reason or ""


def data(subject: Subject, settings: Settings) -> QkvData:
    """Raises LensError when the recomputed weights differ from the model's own by more than ``models.qkv.TOLERANCE``.

    Computed over the model's own tokens whatever the word switch and "hide special tokens"
    say: a word's pieces each have their own query, key and value, and special tokens take part
    in the softmax like any other key.
    """
    prediction = subject.prediction
    queries = prediction.target_tokens
    position = min(max(1, settings["query"]), len(queries))
    found, error = checked_head(subject.model, prediction, subject.text, settings.layer - 1, settings.head - 1)
    return QkvData(
        kind=found.kind,
        layer=settings.layer,
        head=settings.head,
        query=position,
        query_token=queries[position - 1],
        tokens=prediction.source_tokens,
        row=found.row(position - 1, settings["temperature"]).crop(found.real),
        padded=len(found.keys),
        mask=found.rule,
        error=error,
        self_attention=prediction.self_attention,
        seq2seq=prediction.is_seq2seq,
    )


def _title(d: QkvData) -> str:
    if d.seq2seq:
        return _("Output step {step}, “{token}”: how it weighed the input characters").format(step=d.query, token=d.query_token)
    if d.kind == ADDITIVE:
        return _("The classifier's learned query: how it weighed the words")
    return _("Layer {layer}, head {head}: how “{token}” weighed every token").format(layer=d.layer, head=d.head, token=d.query_token)


def _what_if(d: QkvData) -> tuple[np.ndarray | None, str]:
    if d.row.temperature == 1.0:
        return None, ""
    return d.row.what_if, _("what if T = {t:g} (not the model)").format(t=d.row.temperature)


def _weights_title(d: QkvData) -> str:
    title = _("Softmax: the weights, this query's row of the heatmap")
    if d.row.temperature != 1.0:
        title += " " + _("(◆ what if the scores were divided by T = {t:g}; not the model)").format(t=d.row.temperature)
    return title


def _dot_product_steps(d: QkvData) -> list[Step]:
    row, what_if, what_if_name = d.row, *_what_if(d)
    size = row.keys.shape[-1]
    return [
        Step(_("Keys k of every token, one column each (left: the query q of “{token}”)").format(token=d.query_token), row.keys.T, "k", row.query, "q"),
        Step(_("q ∘ k: query times key, dimension by dimension; each column adds up to q · k"), row.products.T, "q ∘ k"),
        Step(_("Scores: q · k × 1/√{d} (= {scale:.3f})").format(d=size, scale=row.scale), row.scores, _("score")),
        Step(_weights_title(d), row.weights, _("weight"), what_if=what_if, what_if_name=what_if_name, labelled=True),
        Step(_("Values v (left: the head's output, the values added up with these weights)"), row.values.T, "v", row.output, _("out")),
    ]


def _additive_steps(d: QkvData) -> list[Step]:
    row, what_if, what_if_name = d.row, *_what_if(d)
    query, query_name = (_("W s + b"), _("W s + b, the decoder state's term")) if d.seq2seq else ("b", _("b, the learned query"))
    assert row.hidden is not None and row.v is not None  # an additive row has both (models.qkv.additive_row)
    return [
        Step(_("U h: each input's term, one column each (left: {query})").format(query=query_name), row.keys.T, "U h", row.query, query),
        Step(_("tanh(left term + each input's term)"), row.hidden.T, "tanh"),
        Step(_("v ∘ tanh(…), dimension by dimension (left: v); each column adds up to the energy"), row.products.T, "v ∘ tanh", row.v, "v"),
        Step(_("Energies e = v · tanh(…)"), row.scores, _("energy")),
        Step(_weights_title(d), row.weights, _("weight"), what_if=what_if, what_if_name=what_if_name, labelled=True),
        Step(_("Annotations h of every input (left: the context c, the annotations added up with these weights)"), row.values.T, "h", row.output, "c"),
    ]


def figure(d: QkvData, settings: Settings, style: Style) -> go.Figure:
    steps = _dot_product_steps(d) if d.kind == DOT_PRODUCT else _additive_steps(d)
    return computation_figure(
        steps,
        d.tokens,
        title=_title(d),
        scheme=style.scheme,
        highlight=d.query - 1 if d.self_attention else None,
        width_px=style.width_px,
        presenter=style.presenter,
    )


def rows(d: QkvData) -> dict[str, Table]:
    """Each step as a table: vectors as one row, one column per dimension; per-key values as one row per key or one column per key."""
    row, keys, query = d.row, d.tokens, (d.query_token,)
    meta = {"layer": d.layer, "head": d.head, "query": d.query, "token": d.query_token, "temperature": row.temperature, "padding_masked": d.padding}

    def dims(vectors: np.ndarray) -> tuple[str, ...]:
        return tuple(str(i) for i in range(1, vectors.shape[-1] + 1))

    def vector(values: np.ndarray, name: tuple[str, ...] = query) -> Table:
        return Table(np.asarray(values)[None], name, dims(values), meta)

    def per_key(values: np.ndarray) -> Table:
        return Table(np.asarray(values), keys, dims(values), meta)

    def over_keys(values: np.ndarray) -> Table:
        return Table(np.asarray(values)[None], query, keys, meta)

    what_if = {"what_if": over_keys(row.what_if)} if row.temperature != 1.0 else {}
    if d.kind == DOT_PRODUCT:
        meta["scale"] = row.scale
        return {
            "query": vector(row.query),
            "keys": per_key(row.keys),
            "products": per_key(row.products),
            "scores": over_keys(row.scores),
            "weights": over_keys(row.weights),
            **what_if,
            "values": per_key(row.values),
            "output": vector(row.output),
        }
    assert row.hidden is not None and row.v is not None  # an additive row has both (models.qkv.additive_row)
    return {
        "query_term": vector(row.query),
        "key_terms": per_key(row.keys),
        "tanh": per_key(row.hidden),
        "v": vector(row.v, ("v",)),
        "products": per_key(row.products),
        "energies": over_keys(row.scores),
        "weights": over_keys(row.weights),
        **what_if,
        "values": per_key(row.values),
        "output": vector(row.output),
    }


def record(d: QkvData) -> dict:
    """The JSON export's top-level keys (issue 17): the tokens and every step's numbers, named as in the papers.

    Dot-product: ``query``, ``keys``, ``scores`` (scaled, masked, before the softmax), ``weights``,
    ``values``, ``output`` and ``scale`` (1/√d). Additive: ``energies`` (v·tanh(·)) in place of
    ``scores`` and ``keys``, with the terms ``query_term`` (W s or the learned query), ``key_terms``
    (U h), ``tanh`` and ``v``; ``output`` is the context vector.
    """
    row = d.row
    shared = {
        "tokens": list(d.tokens),
        "query_index": d.query,
        "query_token": d.query_token,
        "weights": row.weights,
        "values": row.values,
        "output": row.output,
    }
    if row.temperature != 1.0:
        shared["what_if"] = {"temperature": row.temperature, "weights": row.what_if}
    if d.kind == DOT_PRODUCT:
        return shared | {"query": row.query, "keys": row.keys, "scores": row.scores, "scale": row.scale}
    return shared | {"energies": row.scores, "query_term": row.query, "key_terms": row.keys, "tanh": row.hidden, "v": row.v}


def _mask_words(mask: Mask) -> str:
    if mask.mode == "add":
        return _("{value:g} added to their scores").format(value=mask.value)
    return _("their scores replaced by {value:g}").format(value=mask.value)


def notes(d: QkvData, settings: Settings) -> list[str]:
    """What the page says under the figure: that these are the model's numbers, the padding, and what is not merged or hidden."""
    said = [
        _(
            "Recomputed from the input of layer {layer} and the model's own weights; the recomputed weights of this head match "
            "the model's attention to within {error:.0e}."
        ).format(layer=d.layer, error=d.error)
    ]
    if d.padding:
        said.append(
            _("The model ran this text padded to {width} positions; the {padding} padding keys were masked ({how}), got weight 0 and are not drawn.").format(
                width=d.padded, padding=d.padding, how=_mask_words(d.mask)
            )
        )
    if d.row.temperature != 1.0:
        said.append(
            _(
                "The diamonds are a what-if, not the model: the softmax of the scores divided by T = {t:g}. T above 1 flattens the "
                "row, below 1 sharpens it; the bars are the model's own weights (T = 1)."
            ).format(t=d.row.temperature)
        )
    if settings.words:
        said.append(_("Word pieces are not merged here: each piece has its own query, key and value."))
    if settings.hide_special:
        said.append(_("Special tokens stay in this view: they take part in the softmax like any other key."))
    return said


def render(ctx: ViewContext) -> None:
    layer_head_pickers(ctx)
    queries = ctx.prediction.target_tokens
    pickers = st.columns(2)
    if len(queries) > 1:
        st.session_state[ctx.key("query")] = min(ctx.get("query"), len(queries))
        label = _("Output step") if ctx.prediction.is_seq2seq else _("Query token")
        pickers[0].selectbox(label, range(1, len(queries) + 1), format_func=lambda i: f"{i}: {queries[i - 1]}", key=ctx.key("query"))
    # The attention-pooled RNN has one query only: the slider takes the first place.
    pickers[len(queries) > 1].select_slider(
        _("What if: temperature T (scores ÷ T)"), options=TEMPERATURES, format_func=lambda t: f"{t:g}", key=ctx.key("temperature")
    )
    try:
        d = ctx.data()
    except LensError as error:
        st.error(str(error))
        return
    show_figure(ctx, figure(d, ctx.settings, ctx.style), f"qkv-L{d.layer}-H{d.head}-Q{d.query}")
    for note in notes(d, ctx.settings):
        st.caption(note)
    with st.expander(_("The steps as data")):
        matrix_downloads(ctx, rows(d))
