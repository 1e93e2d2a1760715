"""Value-aware attention for BERT-family models: the maths of ``models.maths.norms`` on a real model.

The hidden states entering each layer and each layer's attention come from one eager call of
the model's transformers encoder; the layer weights are read from its TF layers with
``.numpy()`` (the shared model is never changed). Before any norm is trusted, every layer is
rebuilt in numpy from those pieces and must reproduce the model's own next hidden state to
within ``TOLERANCE``.

Supported: transformers' TF BERT layer and its copies (RoBERTa, CamemBERT, XLM-RoBERTa,
ELECTRA: ``attention.self_attention.query/key/value``, ``attention.dense_output.dense`` and
``.LayerNorm``, ``intermediate.dense``, ``bert_output.dense`` and ``.LayerNorm``), and
DistilBERT's block, the same post-LayerNorm layer under other names (``attention.q_lin`` ...
``out_lin``, ``sa_layer_norm``, ``ffn.lin1/lin2``, ``output_layer_norm``). ALBERT (one layer's
weights shared by every layer, behind an embedding projection) and all other models are refused
with a reason.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, cast

import numpy as np

from models.base import AttentionModel, LensError, check_text
from models.maths.norms import ACTIVATIONS, LayerWeights, alti_contributions, alti_rollout, attention_norms, rebuild_layer

if TYPE_CHECKING:
    from models.hf_common import TransformerClassifier

# The threshold: the rebuilt layers must reproduce the model's hidden states this closely.
TOLERANCE = 1e-4
BERT_LAYER_TYPES = ("bert", "roberta", "camembert", "xlm-roberta", "electra")
DISTILBERT = "distilbert"


@dataclasses.dataclass(frozen=True)
class ValueAware:
    """Value-aware attention of one text; rows attend to columns, as in the attention maps.

    ``head_norms`` (layers, heads, T, T) is ‖α^h_ij f^h(x_j)‖ and ``layer_norms`` (layers, T, T)
    ‖Σ_h α^h_ij f^h(x_j)‖ (Kobayashi et al. 2020); ``alti`` (layers, T, T) holds each layer's
    ALTI contributions and ``alti_rollout`` their composition up to each layer (Ferrando et al.
    2022). ``reconstruction_error`` is the largest absolute difference, over all layers and
    tokens, between the rebuilt layer outputs and the model's own.
    """

    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    head_norms: np.ndarray
    layer_norms: np.ndarray
    alti: np.ndarray
    alti_rollout: np.ndarray
    reconstruction_error: float

    def __post_init__(self):
        size = len(self.tokens)
        if len(self.special) != size:
            raise ValueError(f"{size} tokens but {len(self.special)} special-token flags")
        layers, heads = self.head_norms.shape[:2]
        if self.head_norms.shape != (layers, heads, size, size):
            raise ValueError(f"head_norms must be (layers, heads, {size}, {size}), got {self.head_norms.shape}")
        for name in ("layer_norms", "alti", "alti_rollout"):
            if getattr(self, name).shape != (layers, size, size):
                raise ValueError(f"{name} must be ({layers}, {size}, {size}), got {getattr(self, name).shape}")


def transformer_of(model: AttentionModel):
    """The transformers TF model inside an Attention Lens model (minilm: ``encoder``, hf: ``model``), or None."""
    for attribute in ("encoder", "model"):
        candidate = getattr(model, attribute, None)
        if type(candidate).__module__.startswith("transformers.") and hasattr(candidate, "config"):
            return candidate
    return None


def _encoder_layers(transformer) -> list:
    main = getattr(transformer, transformer.base_model_prefix)
    if transformer.config.model_type == DISTILBERT:
        return list(main.transformer.layer)
    return list(main.encoder.layer)


def _activation_name(config) -> object:
    return config.activation if config.model_type == DISTILBERT else config.hidden_act


def supports_value_aware(model: AttentionModel) -> str | None:
    """None if ``model`` has BERT-style layers this module can read, else why not, in one line."""
    name = getattr(model, "model_id", type(model).__name__)
    transformer = transformer_of(model)
    if transformer is None:
        return f"{name} is not a Hugging Face transformer; value-aware attention reads the layer weights of BERT-family models such as minilm-agnews"
    config = transformer.config
    model_type = config.model_type
    if model_type not in (*BERT_LAYER_TYPES, DISTILBERT):
        families = ", ".join((*BERT_LAYER_TYPES, DISTILBERT))
        return f"{name} is a {model_type!r} model; value-aware attention is implemented for the post-LayerNorm layers of {families}"
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return f"{name} is configured as a decoder; value-aware attention reads encoder self-attention only"
    activation = _activation_name(config)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        return f"{name} uses the feed-forward activation {activation!r}, which value-aware attention does not implement"
    return None


def _dense(layer) -> tuple[np.ndarray, np.ndarray]:
    return layer.kernel.numpy(), layer.bias.numpy()


def _norm(layer) -> tuple[np.ndarray, np.ndarray, float]:
    return layer.gamma.numpy(), layer.beta.numpy(), float(layer.epsilon)


def layer_weights(transformer) -> list[LayerWeights]:
    """Every encoder layer's weights, copied out of ``transformer`` (a transformers TF model)."""
    config = transformer.config
    activation = cast(str, _activation_name(config))  # LayerWeights refuses anything but a name in ACTIVATIONS
    weights = []
    for layer in _encoder_layers(transformer):
        if config.model_type == DISTILBERT:
            attention, heads = layer.attention, config.n_heads
            parts = (attention.q_lin, attention.k_lin, attention.v_lin, attention.out_lin, layer.sa_layer_norm)
            feed_forward = (layer.ffn.lin1, layer.ffn.lin2, layer.output_layer_norm)
        else:
            attention, heads = layer.attention, config.num_attention_heads
            own = attention.self_attention
            parts = (own.query, own.key, own.value, attention.dense_output.dense, attention.dense_output.LayerNorm)
            feed_forward = (layer.intermediate.dense, layer.bert_output.dense, layer.bert_output.LayerNorm)
        query, key, value, dense, norm1 = parts
        intermediate, output, norm2 = feed_forward
        (query_kernel, query_bias), (key_kernel, key_bias), (value_kernel, value_bias) = _dense(query), _dense(key), _dense(value)
        (dense_kernel, dense_bias), (inner_kernel, inner_bias), (output_kernel, output_bias) = _dense(dense), _dense(intermediate), _dense(output)
        ln1_gamma, ln1_beta, ln1_eps = _norm(norm1)
        ln2_gamma, ln2_beta, ln2_eps = _norm(norm2)
        weights.append(
            LayerWeights(
                query_kernel=query_kernel,
                query_bias=query_bias,
                key_kernel=key_kernel,
                key_bias=key_bias,
                value_kernel=value_kernel,
                value_bias=value_bias,
                dense_kernel=dense_kernel,
                dense_bias=dense_bias,
                ln1_gamma=ln1_gamma,
                ln1_beta=ln1_beta,
                ln1_eps=ln1_eps,
                intermediate_kernel=inner_kernel,
                intermediate_bias=inner_bias,
                activation=activation,
                output_kernel=output_kernel,
                output_bias=output_bias,
                ln2_gamma=ln2_gamma,
                ln2_beta=ln2_beta,
                ln2_eps=ln2_eps,
                num_heads=heads,
            )
        )
    return weights


def encoder_states(transformer, ids) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hidden states entering each layer and after the last (L + 1 of (T, D)) and attentions (L of (H, T, T))."""
    import tensorflow as tf

    ids = tf.constant([list(ids)], dtype=tf.int32)
    main = getattr(transformer, transformer.base_model_prefix)
    outputs = main(input_ids=ids, attention_mask=tf.ones_like(ids), output_hidden_states=True, output_attentions=True, training=False)
    return [h.numpy()[0] for h in outputs.hidden_states], [a.numpy()[0] for a in outputs.attentions]


def value_aware(model: AttentionModel, text: str) -> ValueAware:
    """Attention norms and ALTI of ``text`` in ``model``, after checking the layers rebuild exactly.

    Raises LensError when the model is not supported (``supports_value_aware`` says why) or when
    the rebuilt layers differ from the model's own hidden states by more than ``TOLERANCE``.
    """
    reason = supports_value_aware(model)
    if reason is not None:
        raise LensError(reason)
    # A transformers model inside (supports_value_aware) means a TransformerClassifier.
    row = cast("TransformerClassifier", model).tokenize([check_text(text)])[0]
    transformer = transformer_of(model)
    hidden_states, attentions = encoder_states(transformer, row.ids)
    weights = layer_weights(transformer)
    error = 0.0
    for layer, layer_weight in enumerate(weights):
        _, rebuilt = rebuild_layer(hidden_states[layer], attentions[layer], layer_weight)
        error = max(error, float(np.abs(rebuilt - hidden_states[layer + 1]).max()))
    if not error <= TOLERANCE:
        raise LensError(
            f"{model.model_id}'s layers could not be rebuilt from its weights (largest difference {error:.1e}, allowed {TOLERANCE:g}), "
            "so value-aware attention would be wrong for it"
        )
    norms = [attention_norms(hidden_states[layer], attentions[layer], w) for layer, w in enumerate(weights)]
    alti = np.stack([alti_contributions(hidden_states[layer], attentions[layer], w) for layer, w in enumerate(weights)])
    return ValueAware(
        tokens=row.tokens,
        special=row.special,
        head_norms=np.stack([head for head, _ in norms]).astype(np.float32),
        layer_norms=np.stack([summed for _, summed in norms]).astype(np.float32),
        alti=alti.astype(np.float32),
        alti_rollout=alti_rollout(alti).astype(np.float32),
        reconstruction_error=error,
    )
