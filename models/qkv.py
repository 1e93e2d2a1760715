"""How one attention head computes its weights, step by step, on a model's own numbers.

Dot-product attention (Vaswani et al. 2017, "Attention Is All You Need", eq. 1):
Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V. For one query token i of one head:

- q_i = x_i W_Q + b_Q and k_j = x_j W_K + b_K, the head's slices of the layer's projections of
  its input x (the hidden states entering the layer);
- q_i ∘ k_j, the elementwise product of bertviz's neuron view (Vig 2019, "A Multiscale
  Visualization of Attention in the Transformer Model", github.com/jessevig/bertviz), whose sum
  is q_i · k_j;
- the score s_ij = q_i · k_j / √d_k, then the padding mask (below), then the softmax
  α_ij = exp(s_ij) / Σ_k exp(s_ik);
- the head's output o_i = Σ_j α_ij v_j, the value vectors v_j = x_j W_V + b_V weighted.

Additive attention (Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning
to Align and Translate", ICLR, appendix A.1.2 and eqs. 5-6), as ``models.additive_attention``
computes it: e_tj = v_aᵀ tanh(W_a s_{t-1} + b + U_a h_j), α_tj = softmax_j(e_tj),
c_t = Σ_j α_tj h_j. The classifier (bahdanau-rnn) has no decoder state: its one learned query
is the bias b (with v_a). Here the query's term is W_a s_{t-1} + b (or b alone) and each key's
term U_a h_j; v_a ∘ tanh(·) plays the part of q_i ∘ k_j, its sum is the energy.

Padding: every model here runs a text padded to a fixed or bucketed width and keeps the padding
keys out of the softmax, each framework its own way (``Mask``): Keras replaces their scores by
-1e9 and zeroes their weights, transformers' TF BERT adds -10000 to them, DistilBERT -1e30. The
steps are recomputed over the padded width the model ran at, masked as the model masks them, so
the weights of real and padding keys alike can be checked against the model's own output.

The maths (``dot_product_row``, ``additive_row``, ``*_weights``) is pure numpy. The inputs come
from each model family (``head_of``): the layer's input is read from one eager call of the
model's own layers and the projection weights with ``.numpy()`` (the shared model is never
changed). ``checked_head`` recomputes the head's whole attention matrix and refuses, with the
reason, when it differs from the model's own by more than ``TOLERANCE``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from models.base import AttentionModel, LensError, check_text
from models.contract import FLOAT16_ROUNDING, Prediction
from models.value_aware import BERT_LAYER_TYPES, DISTILBERT, TOLERANCE, transformer_of

DOT_PRODUCT, ADDITIVE = "dot-product", "additive"
KINDS = (DOT_PRODUCT, ADDITIVE)
# The forward passes kept per model (hidden states of every layer, or an RNN's annotations):
# the view's data is cached per layer, head, query and temperature, the model's pass per text.
# MiniLM at 512 tokens holds 7 x 512 x 384 float32, 5.5 MB, per text.
STATES_PER_MODEL = 4


@dataclasses.dataclass(frozen=True)
class Mask:
    """How a model keeps masked keys out of the softmax: ``value`` added to their scores ("add") or put in their place ("replace").

    Either way their weights are 0 here: float32 softmax of a score 10,000 below the others is
    exactly 0, and Keras zeroes masked weights after its softmax.
    """

    mode: str
    value: float

    def __post_init__(self) -> None:
        if self.mode not in ("add", "replace"):
            raise ValueError(f"mask mode must be 'add' or 'replace', got {self.mode!r}")

    def apply(self, scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``scores`` with the masked keys' (``mask`` False) changed as the model changes them."""
        changed = scores + self.value if self.mode == "add" else np.full_like(scores, self.value)
        masked: np.ndarray = np.where(mask, scores, changed)
        return masked

    def describe(self) -> str:
        return f"{self.value:g} added to the score" if self.mode == "add" else f"score replaced by {self.value:g}"


KERAS_MASK = Mask("replace", -1e9)  # keras.layers.Softmax with a mask (MultiHeadAttention)
BERT_MASK = Mask("add", -10000.0)  # transformers' TF BERT and its copies: the extended attention mask
DISTILBERT_MASK = Mask("add", -1e30)  # transformers' TF DistilBERT: scores - 1e30 * (1 - mask)
ADDITIVE_MASK = Mask("replace", -1e9)  # models.additive_attention.MASKED_SCORE (not imported: that imports keras)


@dataclasses.dataclass(frozen=True)
class Row:
    """Every step of one query's attention over S keys, for either kind of attention.

    Dot-product: ``query`` q_i (d,), ``keys`` k_j (S, d), ``products`` q_i ∘ k_j (S, d),
    ``scale`` 1/√d, ``scores`` Σ products · scale with the mask applied (S,), ``values`` v_j
    (S, d), ``output`` Σ_j α_j v_j.
    Additive: ``query`` W s_{t-1} + b (or the learned b) (u,), ``keys`` U h_j (S, u),
    ``hidden`` tanh(query + key) (S, u), ``v`` v_a (u,), ``products`` v_a ∘ hidden (S, u),
    ``scale`` 1, ``scores`` the energies e_j with the mask applied, ``values`` the annotations
    h_j (S, 2n), ``output`` the context vector c.
    ``weights`` are the softmax of ``scores`` (masked keys 0); ``what_if`` the softmax of
    ``scores`` / ``temperature`` (masked keys 0), equal to ``weights`` at temperature 1.
    """

    kind: str
    query: np.ndarray
    keys: np.ndarray
    products: np.ndarray
    scale: float
    scores: np.ndarray
    mask: np.ndarray
    weights: np.ndarray
    temperature: float
    what_if: np.ndarray
    values: np.ndarray
    output: np.ndarray
    hidden: np.ndarray | None = None
    v: np.ndarray | None = None

    def crop(self, keys: int) -> Row:
        """The row over its first ``keys`` keys only (the real tokens, padding dropped)."""
        per_key = ("keys", "products", "scores", "mask", "weights", "what_if", "values", "hidden")
        return dataclasses.replace(self, **{name: getattr(self, name)[:keys] for name in per_key if getattr(self, name) is not None})


def _mask_of(mask: np.ndarray | None, keys: int) -> np.ndarray:
    if mask is None:
        return np.ones(keys, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape[-1] != keys:
        raise ValueError(f"mask over {mask.shape[-1]} keys, but there are {keys}")
    return mask


def softmax(scores: np.ndarray, mask: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(``scores`` / ``temperature``) along the last axis, 0 at masked keys (``mask`` False).

    Masked scores are left out of the sum (as the model's masked scores underflow to 0), so a
    what-if temperature cannot lift them back in; a row with every key masked is all 0.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    mask = np.broadcast_to(mask, np.shape(scores))
    scaled = np.where(mask, np.asarray(scores, dtype=np.float64) / temperature, -np.inf)
    top = np.max(scaled, axis=-1, keepdims=True, initial=-np.inf)
    exp = np.where(mask, np.exp(scaled - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = exp.sum(axis=-1, keepdims=True)
    weights: np.ndarray = np.divide(exp, total, out=np.zeros_like(exp), where=total > 0)
    return weights


def dot_product_weights(
    queries: np.ndarray, keys: np.ndarray, *, mask: np.ndarray | None = None, rule: Mask = BERT_MASK, scale: float | None = None
) -> np.ndarray:
    """softmax(Q Kᵀ · scale) for queries (T, d) and keys (S, d): (T, S), masked keys 0; scale 1/√d unless given."""
    queries, keys = np.asarray(queries, dtype=np.float64), np.asarray(keys, dtype=np.float64)
    mask = _mask_of(mask, len(keys))
    scale = 1.0 / math.sqrt(keys.shape[-1]) if scale is None else scale
    return softmax(rule.apply(queries @ keys.T * scale, mask), mask)


def dot_product_row(
    query: np.ndarray,
    keys: np.ndarray,
    values: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    rule: Mask = BERT_MASK,
    scale: float | None = None,
    temperature: float = 1.0,
) -> Row:
    """Every step of scaled dot-product attention for one query (d,) over keys (S, d) and values (S, m)."""
    query, keys, values = (np.asarray(a, dtype=np.float64) for a in (query, keys, values))
    if keys.ndim != 2 or query.shape != keys.shape[1:] or len(values) != len(keys):
        raise ValueError(f"query {query.shape}, keys {keys.shape} and values {values.shape} do not fit together")
    mask = _mask_of(mask, len(keys))
    scale = 1.0 / math.sqrt(keys.shape[-1]) if scale is None else scale
    products = keys * query
    scores = rule.apply(products.sum(axis=-1) * scale, mask)
    weights = softmax(scores, mask)
    return Row(
        kind=DOT_PRODUCT,
        query=query,
        keys=keys,
        products=products,
        scale=scale,
        scores=scores,
        mask=mask,
        weights=weights,
        temperature=temperature,
        what_if=softmax(scores, mask, temperature),
        values=values,
        output=weights @ values,
    )


def additive_weights(
    query_terms: np.ndarray, key_terms: np.ndarray, v: np.ndarray, *, mask: np.ndarray | None = None, rule: Mask = ADDITIVE_MASK
) -> np.ndarray:
    """softmax_j(v · tanh(query_terms[t] + key_terms[j])) for (T, u) and (S, u): (T, S), masked keys 0."""
    query_terms, key_terms, v = (np.asarray(a, dtype=np.float64) for a in (query_terms, key_terms, v))
    mask = _mask_of(mask, len(key_terms))
    energies = np.tanh(query_terms[:, None, :] + key_terms[None, :, :]) @ v
    return softmax(rule.apply(energies, mask), mask)


def additive_row(
    query_term: np.ndarray,
    key_terms: np.ndarray,
    v: np.ndarray,
    annotations: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    rule: Mask = ADDITIVE_MASK,
    temperature: float = 1.0,
) -> Row:
    """Every step of additive attention for one query's term (u,) over the keys' terms (S, u), v_a (u,) and annotations (S, m)."""
    query_term, key_terms, v, annotations = (np.asarray(a, dtype=np.float64) for a in (query_term, key_terms, v, annotations))
    if key_terms.ndim != 2 or query_term.shape != key_terms.shape[1:] or v.shape != query_term.shape or len(annotations) != len(key_terms):
        raise ValueError(f"query term {query_term.shape}, key terms {key_terms.shape}, v {v.shape} and annotations {annotations.shape} do not fit together")
    mask = _mask_of(mask, len(key_terms))
    hidden = np.tanh(query_term + key_terms)
    products = hidden * v
    scores = rule.apply(products.sum(axis=-1), mask)
    weights = softmax(scores, mask)
    return Row(
        kind=ADDITIVE,
        query=query_term,
        keys=key_terms,
        products=products,
        scale=1.0,
        scores=scores,
        mask=mask,
        weights=weights,
        temperature=temperature,
        what_if=softmax(scores, mask, temperature),
        values=annotations,
        output=weights @ annotations,
        hidden=hidden,
        v=v,
    )


@dataclasses.dataclass(frozen=True)
class Head:
    """One head's inputs over the padded width the model ran at: the first ``real`` positions are the text.

    Dot-product: ``queries`` q (T, d), ``keys`` k (S, d), ``values`` v (S, d), ``scale`` 1/√d.
    Additive: ``queries`` the query terms W s_{t-1} + b (or b) per output step (T, u), ``keys``
    U h_j (S, u), ``values`` the annotations h_j, ``v`` v_a. ``mask`` (S,) is False on padding.
    """

    kind: str
    queries: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    mask: np.ndarray
    rule: Mask
    real: int
    scale: float = 1.0
    v: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == ADDITIVE and self.v is None:
            raise ValueError("additive attention needs v")
        if not (len(self.keys) == len(self.values) == len(self.mask)) or not 0 < self.real <= len(self.keys):
            raise ValueError(f"keys {self.keys.shape}, values {self.values.shape}, mask {self.mask.shape} and {self.real} real keys do not fit together")

    def weights(self) -> np.ndarray:
        """Every query's weights over every key (T, S), padding included."""
        if self.kind == DOT_PRODUCT:
            return dot_product_weights(self.queries, self.keys, mask=self.mask, rule=self.rule, scale=self.scale)
        return additive_weights(self.queries, self.keys, self.v_a, mask=self.mask, rule=self.rule)

    @property
    def v_a(self) -> np.ndarray:
        if self.v is None:
            raise ValueError("dot-product attention has no v_a")
        return self.v

    def row(self, query: int, temperature: float = 1.0) -> Row:
        """Query ``query``'s (0-based) steps over every key, padding included."""
        if self.kind == DOT_PRODUCT:
            return dot_product_row(self.queries[query], self.keys, self.values, mask=self.mask, rule=self.rule, scale=self.scale, temperature=temperature)
        return additive_row(self.queries[query], self.keys, self.v_a, self.values, mask=self.mask, rule=self.rule, temperature=temperature)


# ---------------------------------------------------------------- which models


def _transformer_type(model: AttentionModel) -> str | None:
    transformer = transformer_of(model)
    return None if transformer is None else str(transformer.config.model_type)


def supports_qkv(model: AttentionModel) -> str | None:
    """None if this module can rebuild ``model``'s attention step by step, else why not, in one line."""
    from models.bahdanau_dates import BahdanauDates
    from models.bahdanau_rnn import BahdanauRNN
    from models.keras_transformer import KerasTransformer

    if isinstance(model, KerasTransformer | BahdanauRNN | BahdanauDates):
        return None
    name = getattr(model, "model_id", type(model).__name__)
    model_type = _transformer_type(model)
    families = ", ".join((*BERT_LAYER_TYPES, DISTILBERT))
    if model_type is None:
        return f"{name} is none of the models whose query, key and value layers this view reads (keras-transformer, the Bahdanau models, and {families} checkpoints)"
    if model_type not in (*BERT_LAYER_TYPES, DISTILBERT):
        return f"{name} is a {model_type!r} model; this view reads the query, key and value layers of {families} checkpoints"
    config = transformer_of(model).config
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return f"{name} is configured as a decoder; this view reads encoder self-attention only"
    return None


def kind_of(model: AttentionModel) -> str:
    from models.bahdanau_dates import BahdanauDates
    from models.bahdanau_rnn import BahdanauRNN

    return ADDITIVE if isinstance(model, BahdanauRNN | BahdanauDates) else DOT_PRODUCT


# ---------------------------------------------------------------- one forward pass per text


_states: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, Any]] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def _remembered(model: AttentionModel, key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()`` for this model and ``key``, kept for the model's last ``STATES_PER_MODEL`` keys.

    Held weakly by model, so a model that is let go takes its entries with it.
    """
    with _states_lock:
        kept = _states.setdefault(model, OrderedDict())
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
    value = compute()
    with _states_lock:
        kept[key] = value
        while len(kept) > STATES_PER_MODEL:
            kept.popitem(last=False)
    return value


def _numpy(variable: Any) -> np.ndarray:
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable, dtype=np.float64)


def _padded(ids: Any, width: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    row = np.full(width, pad_id, dtype=np.int32)
    row[: len(ids)] = ids
    mask = np.zeros(width, dtype=np.int32)
    mask[: len(ids)] = 1
    return row, mask


def _transformer_states(model: AttentionModel, text: str) -> tuple[tuple[np.ndarray, ...], np.ndarray, int]:
    """Hidden states entering each layer (L + 1 of (B, D)), the key mask and the real length, at the width the model ran at.

    The width is the model's padded bucket for this text (``models.hf_common.BucketedFunction``),
    so the padding keys are those the model masked.
    """
    import tensorflow as tf

    from models.hf_common import TransformerClassifier, buckets_up_to

    if not isinstance(model, TransformerClassifier):
        raise LensError(f"{model.model_id} is not a transformers classifier")
    row = model.tokenize([check_text(text)])[0]
    width = next(b for b in buckets_up_to(model.max_tokens) if b >= len(row))
    ids, mask = _padded(row.ids, width, model.pad_id)
    transformer = transformer_of(model)
    main = getattr(transformer, transformer.base_model_prefix)
    outputs = main(input_ids=tf.constant(ids[None]), attention_mask=tf.constant(mask[None]), output_hidden_states=True, training=False)
    return tuple(np.asarray(h)[0] for h in outputs.hidden_states), mask.astype(bool), len(row)


def _transformer_head(model: AttentionModel, text: str, layer: int, head: int) -> Head:
    states, mask, real = _remembered(model, ("transformer", text), lambda: _transformer_states(model, text))
    transformer = transformer_of(model)
    config = transformer.config
    main = getattr(transformer, transformer.base_model_prefix)
    if config.model_type == DISTILBERT:
        attention, heads, rule = main.transformer.layer[layer].attention, config.n_heads, DISTILBERT_MASK
        parts = (attention.q_lin, attention.k_lin, attention.v_lin)
    else:
        own, heads, rule = main.encoder.layer[layer].attention.self_attention, config.num_attention_heads, BERT_MASK
        parts = (own.query, own.key, own.value)
    x = np.asarray(states[layer], dtype=np.float64)
    size = x.shape[-1] // heads
    columns = slice(head * size, (head + 1) * size)
    # Each head owns its slice of the projections' outputs (transformers' transpose_for_scores).
    queries, keys, values = (x @ _numpy(dense.kernel)[:, columns] + _numpy(dense.bias)[columns] for dense in parts)
    return Head(DOT_PRODUCT, queries, keys, values, mask, rule, real, scale=1.0 / math.sqrt(size))


def _keras_transformer_head(model: Any, text: str, head: int) -> Head:
    def embedded() -> tuple[np.ndarray, np.ndarray, int]:
        ids, kept, _ = model.encode_words([check_text(text)], fixed_width=True)
        # The embedding layer's output (words plus positions) is what the block's attention reads.
        return np.asarray(model.inspector.get_layer("embedding")(ids), dtype=np.float64)[0], ids[0] != 0, len(kept[0])

    x, mask, real = _remembered(model, ("keras", text), embedded)
    attention = model.inspector.get_layer("transformer_block").att

    def projected(dense: Any) -> np.ndarray:
        # EinsumDense "abc,cde->abde": kernel (width, heads, key_dim), bias (heads, key_dim).
        return x @ _numpy(dense.kernel)[:, head] + _numpy(dense.bias)[head]

    keys = projected(attention.key_dense)
    return Head(
        DOT_PRODUCT, projected(attention.query_dense), keys, projected(attention.value_dense), mask, KERAS_MASK, real, scale=1.0 / math.sqrt(keys.shape[-1])
    )


def _attention_weights(layer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """U_a, b, v_a and W_a (None without a query) of a ``models.additive_attention.AdditiveAttention``."""
    return _numpy(layer.U_a), _numpy(layer.b), _numpy(layer.v_a), None if layer.W_a is None else _numpy(layer.W_a)


_functions: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _compiled(model: AttentionModel, name: str, build: Callable[[], Any]) -> Any:
    """A ``tf.function`` of this model's layers, built once per model.

    Eager, the recurrent encoders step through their 64 or 128 positions in Python: 0.5-1.6 s
    per new text on 2 shared cores against about 20 ms compiled (traced once, at the one fixed
    width the model predicts at).
    """
    with _states_lock:
        functions = _functions.setdefault(model, {})
        if name not in functions:
            functions[name] = build()
        return functions[name]


def _rnn_annotations(model: Any, text: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The encoder's annotations h (width, 2n) as the classifier computes them, the key mask and the real length."""
    import tensorflow as tf

    def build() -> Any:
        embedding, encoder = model.inspector.get_layer("embedding"), model.inspector.get_layer("encoder")
        return tf.function(
            lambda ids: encoder(embedding(ids), mask=tf.not_equal(ids, 0), training=False), input_signature=[tf.TensorSpec([1, model.max_tokens], tf.int32)]
        )

    ids, kept, _ = model.encode_words([check_text(text)], fixed_width=True)
    annotations = _compiled(model, "annotations", build)(ids)
    return np.asarray(annotations)[0], ids[0] != 0, len(kept[0])


def _rnn_head(model: Any, text: str) -> Head:
    annotations, mask, real = _remembered(model, ("rnn", text), lambda: _rnn_annotations(model, text))
    u, b, v, _ = _attention_weights(model.inspector.get_layer("attention"))
    h = np.asarray(annotations, dtype=np.float64)
    # No decoder state: the one query is the learned bias b (with v_a).
    return Head(ADDITIVE, b[None], h @ u, h, mask, ADDITIVE_MASK, real, v=v)


def _decoder_states(decoder: Any, ids: Any, previous: Any) -> tuple[Any, Any]:
    """The annotations and the decoder state entering each output step, ``previous`` (1, steps) fed back."""
    import tensorflow as tf

    mask = tf.not_equal(ids, 0)
    annotations, _, backward_last = decoder.get_layer("encoder")(decoder.get_layer("source_embedding")(ids), mask=mask)
    state = decoder.get_layer("initial_state")(backward_last)
    attention, cell, target_embedding = decoder.get_layer("attention"), decoder.get_layer("decoder"), decoder.get_layer("target_embedding")
    states = []
    for step in range(previous.shape[1]):
        states.append(state)
        context, _ = attention(annotations, query=tf.expand_dims(state, 1), mask=mask)
        state, _ = cell(tf.concat([target_embedding(previous[:, step]), context[:, 0]], axis=-1), state)
    return annotations, tf.stack(states, axis=1)


def _dates_states(model: Any, text: str, generated: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The annotations (width, 2n), the decoder states s_0 .. s_{T-1} entering each output step (T, m), the key mask, the real length.

    Runs the decoder's own layers step by step as ``models.bahdanau_dates.build_models`` wires
    them, feeding back the characters the model generated (``generated``, greedy decoding's
    choice; the steps after the last are fed the start marker and not used).
    """
    import tensorflow as tf

    from models.bahdanau_dates import START, TARGET_IDS, TARGET_STEPS, normalize
    from models.text import encode

    def build() -> Any:
        spec = [tf.TensorSpec([1, model.max_tokens], tf.int32), tf.TensorSpec([1, TARGET_STEPS], tf.int32)]
        return tf.function(lambda ids, previous: _decoder_states(model.decoder, ids, previous), input_signature=spec)

    ids, kept, _ = encode(model.vocab, [normalize(check_text(text))], model.max_tokens, split=list, fixed_width=True)
    previous = np.full((1, TARGET_STEPS), TARGET_IDS[START], dtype=np.int32)
    fed = [TARGET_IDS[token] for token in generated[:-1]][: TARGET_STEPS - 1]
    previous[0, 1 : 1 + len(fed)] = fed
    annotations, states = _compiled(model, "decoder states", build)(ids, previous)
    return np.asarray(annotations)[0], np.asarray(states)[0, : len(generated)], ids[0] != 0, len(kept[0])


def _dates_head(model: Any, text: str, generated: tuple[str, ...]) -> Head:
    annotations, states, mask, real = _remembered(model, ("dates", text), lambda: _dates_states(model, text, generated))
    u, b, v, w = _attention_weights(model.decoder.get_layer("attention"))
    if w is None:
        raise LensError(f"{model.model_id}'s attention has no query weights W_a")
    h = np.asarray(annotations, dtype=np.float64)
    return Head(ADDITIVE, np.asarray(states, dtype=np.float64) @ w + b, h @ u, h, mask, ADDITIVE_MASK, real, v=v)


def head_of(model: AttentionModel, text: str, layer: int, head: int, prediction: Prediction | None = None) -> Head:
    """Layer ``layer``'s head ``head`` (both 0-based) of ``model`` reading ``text``, over the padded width the model ran at.

    ``prediction`` is the model's own for ``text`` (predicted here if not given): the date
    model's decoder states follow the characters it generated. Raises LensError when the model
    is not supported (``supports_qkv`` says why).
    """
    from models.bahdanau_dates import BahdanauDates
    from models.bahdanau_rnn import BahdanauRNN
    from models.keras_transformer import KerasTransformer

    reason = supports_qkv(model)
    if reason is not None:
        raise LensError(reason)
    if isinstance(model, KerasTransformer):
        return _keras_transformer_head(model, text, head)
    if isinstance(model, BahdanauRNN):
        return _rnn_head(model, text)
    if isinstance(model, BahdanauDates):
        return _dates_head(model, text, (prediction or model.predict(text)).target_tokens)
    return _transformer_head(model, text, layer, head)


def checked_head(model: AttentionModel, prediction: Prediction, text: str, layer: int, head: int) -> tuple[Head, float]:
    """``head_of`` and the largest difference between its recomputed weights and the model's own (``prediction``).

    Every query row the prediction holds is compared over its real keys (the padding keys'
    weights are 0 by the mask). Raises LensError, naming the difference, when it exceeds
    ``TOLERANCE``: the steps shown would not be the model's.
    """
    found = head_of(model, text, layer, head, prediction)
    own = np.asarray(prediction.attentions[layer, head], dtype=np.float64)
    queries, keys = own.shape
    if keys != found.real or len(found.queries) < queries:
        raise LensError(
            f"{model.model_id}: the rebuilt head has {found.real} keys and {len(found.queries)} queries, the model's attention {keys} and {queries}"
        )
    difference = np.abs(found.weights()[:queries, :keys] - own)
    if prediction.attentions.dtype == np.float16:
        # The page's cache stores attention as float16 (views.compute.compact): each stored weight
        # is within 2^-11 of the model's, which the comparison must not count against the rebuild.
        difference = np.maximum(difference - FLOAT16_ROUNDING * np.abs(own), 0.0)
    error = float(difference.max(initial=0.0))
    if not error <= TOLERANCE:
        raise LensError(
            f"{model.model_id}'s attention could not be rebuilt from its weights (largest difference {error:.1e}, allowed {TOLERANCE:g}), "
            "so the steps shown would not be the model's"
        )
    return found, error
