"""Value-aware attention: what each token actually adds to another, not only how much it is weighted.

An attention weight α_ij says how much token i looks at token j, but not how large the vector
it takes from j is. Two measures go further, both computed here in numpy from one BERT layer's
input hidden states, its attention probabilities and its weights (``LayerWeights``):

- The attention norm of Kobayashi, Kuribayashi, Yokoi and Inui (2020), "Attention is Not Only
  a Weight: Analyzing Transformers with Vector Norms" (EMNLP; github.com/gorokoba560/
  norm-analysis-of-transformer): a multi-head attention output is y_i = Σ_h Σ_j α^h_ij f^h(x_j)
  + b_O with f^h(x) = (x W_V^h + b_V^h) W_O^h, so ‖α^h_ij f^h(x_j)‖ (per head) and
  ‖Σ_h α^h_ij f^h(x_j)‖ (per layer) measure what j contributes to i.
- ALTI, Ferrando, Gállego and Costa-jussà (2022), "Measuring the Mixing of Contextual
  Information in the Transformer" (EMNLP; github.com/mt-upc/transformer-contributions): the
  residual connection and the first LayerNorm are added. LayerNorm is linear once its
  standard deviation σ_i is fixed, so the layer's attention output splits exactly into one
  vector per input token, T_i(x_j) = L_i(Σ_h α^h_ij f^h(x_j) + [i = j] x_j), with
  L_i(z) = (z − mean(z)) ⊙ γ / σ_i, plus a part owed to no token (L_i(b_O) + β). Token j's
  contribution to i is how much closer y_i is to T_i(x_j) than to nothing, in L1 distance:
  c_ij = max(0, ‖y_i‖₁ − ‖y_i − T_i(x_j)‖₁), normalised to sum 1 over j; ``alti_rollout``
  composes the layers as rollout does.

σ_i is LayerNorm's own, √(var(z_i) + ε), so that Σ_j T_i(x_j) + L_i(b_O) + β is exactly the
model's output; the reference code divides by the unbiased standard deviation of z_i + ε, which
is slightly off LayerNorm's own (by a factor of about √(D / (D − 1))).

``rebuild_layer`` recomputes a whole BERT layer from these pieces, so a caller can check that
the extracted weights reproduce the model before trusting any of the numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from models.maths.compose import compose


def _expit(x: np.ndarray) -> np.ndarray:
    # scipy.special is imported on first use here and below: it is about 0.1 s of a server's first page.
    from scipy.special import expit

    sigmoid: np.ndarray = expit(x)
    return sigmoid


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    gelu: np.ndarray = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    return gelu


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    gelu: np.ndarray = 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return gelu


def _gelu_fast(x: np.ndarray) -> np.ndarray:
    gelu: np.ndarray = 0.5 * x * (1.0 + np.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))
    return gelu


# The feed-forward activations of transformers' TF models (activations_tf.ACT2FN), by config name.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gelu": _gelu,
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_fast,
    "quick_gelu": lambda x: x * _expit(1.702 * x),
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x * _expit(x),
    "swish": lambda x: x * _expit(x),
    "sigmoid": _expit,
    "tanh": np.tanh,
}

# Sources per block when ALTI builds its (sources, T, D) vectors, bounding memory at 512 tokens
# (8 x 512 x 384 float32 is 6 MB). The per-source products (T x H by H x D) go through einsum,
# not matmul: as hundreds of tiny BLAS calls they took multithreaded OpenBLAS 7 times longer than
# einsum on a busy 2-core machine (512 tokens). Single-threaded BLAS would beat both, but the
# thread count belongs to the process, not to this module.
_ALTI_BLOCK = 8


@dataclasses.dataclass(frozen=True)
class LayerWeights:
    """One post-LayerNorm BERT layer's weights as float64 arrays; kernels are (inputs, outputs).

    The layer computes, for hidden states x (T, D) and attention α (H, T, T):
    z = concat_h(α^h (x W_V + b_V)^h) W_O + b_O + x; y = LayerNorm1(z);
    next = LayerNorm2(act(y W_I + b_I) W_2 + b_2 + y).
    """

    query_kernel: np.ndarray
    query_bias: np.ndarray
    key_kernel: np.ndarray
    key_bias: np.ndarray
    value_kernel: np.ndarray
    value_bias: np.ndarray
    dense_kernel: np.ndarray  # W_O, the attention output projection
    dense_bias: np.ndarray
    ln1_gamma: np.ndarray
    ln1_beta: np.ndarray
    ln1_eps: float
    intermediate_kernel: np.ndarray
    intermediate_bias: np.ndarray
    activation: str
    output_kernel: np.ndarray  # W_2, the feed-forward output projection
    output_bias: np.ndarray
    ln2_gamma: np.ndarray
    ln2_beta: np.ndarray
    ln2_eps: float
    num_heads: int

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.type == "np.ndarray":
                object.__setattr__(self, field.name, np.asarray(getattr(self, field.name), dtype=np.float64))
        width, inner = self.width, self.intermediate_kernel.shape[-1]
        expected = {
            "query_kernel": (width, width),
            "key_kernel": (width, width),
            "value_kernel": (width, width),
            "dense_kernel": (width, width),
            "intermediate_kernel": (width, inner),
            "intermediate_bias": (inner,),
            "output_kernel": (inner, width),
            **{
                name: (width,)
                for name in ("query_bias", "key_bias", "value_bias", "dense_bias", "ln1_gamma", "ln1_beta", "output_bias", "ln2_gamma", "ln2_beta")
            },
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} is shaped {getattr(self, name).shape}, expected {shape} for width {width}")
        if self.num_heads < 1 or width % self.num_heads:
            raise ValueError(f"{self.num_heads} heads do not divide the width {width}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {', '.join(ACTIVATIONS)}")

    @property
    def width(self) -> int:
        return int(self.query_kernel.shape[0])


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    centred = x - x.mean(axis=-1, keepdims=True)
    normalised: np.ndarray = centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + eps) * gamma + beta
    return normalised


def _checked(hidden: np.ndarray, attention: np.ndarray, weights: LayerWeights) -> tuple[np.ndarray, np.ndarray]:
    hidden = np.asarray(hidden, dtype=np.float64)
    attention = np.asarray(attention, dtype=np.float64)
    size = hidden.shape[0]
    if hidden.shape != (size, weights.width):
        raise ValueError(f"hidden states must be (T, {weights.width}), got {hidden.shape}")
    if attention.shape != (weights.num_heads, size, size):
        raise ValueError(f"attention must be ({weights.num_heads}, {size}, {size}), got {attention.shape}")
    return hidden, attention


def _values(hidden: np.ndarray, weights: LayerWeights) -> np.ndarray:
    """(x_j W_V + b_V)^h for every head and token: (H, T, D / H)."""
    heads, width = weights.num_heads, weights.width
    values: np.ndarray = (hidden @ weights.value_kernel + weights.value_bias).reshape(len(hidden), heads, width // heads).transpose(1, 0, 2)
    return values


def _transformed_values(hidden: np.ndarray, weights: LayerWeights) -> np.ndarray:
    """f^h(x_j) = (x_j W_V + b_V)^h W_O^h for every head and token: (H, T, D)."""
    heads, width = weights.num_heads, weights.width
    transformed: np.ndarray = np.matmul(_values(hidden, weights), weights.dense_kernel.reshape(heads, width // heads, width))
    return transformed


def _attention_output(hidden: np.ndarray, attention: np.ndarray, weights: LayerWeights) -> np.ndarray:
    """Σ_h Σ_j α^h_ij f^h(x_j) + b_O, computed as BERT does: heads' contexts concatenated, then W_O."""
    context = np.matmul(attention, _values(hidden, weights))  # (H, T, D / H)
    output: np.ndarray = context.transpose(1, 0, 2).reshape(len(hidden), weights.width) @ weights.dense_kernel + weights.dense_bias
    return output


def attention_probabilities(hidden: np.ndarray, weights: LayerWeights) -> np.ndarray:
    """softmax((x W_Q + b_Q)^h (x W_K + b_K)^hᵀ / √d_head) per head, (H, T, T), unmasked."""
    hidden = np.asarray(hidden, dtype=np.float64)
    heads, width = weights.num_heads, weights.width
    queries = (hidden @ weights.query_kernel + weights.query_bias).reshape(len(hidden), heads, width // heads)
    keys = (hidden @ weights.key_kernel + weights.key_bias).reshape(len(hidden), heads, width // heads)
    scores = np.einsum("ihk,jhk->hij", queries, keys) / math.sqrt(width // heads)
    from scipy.special import softmax

    probabilities: np.ndarray = softmax(scores, axis=-1)
    return probabilities


def rebuild_layer(hidden: np.ndarray, attention: np.ndarray, weights: LayerWeights) -> tuple[np.ndarray, np.ndarray]:
    """One BERT layer recomputed from its input (T, D) and its own attention (H, T, T).

    Returns (the attention block's output after LayerNorm1, the layer's output), both (T, D).
    """
    hidden, attention = _checked(hidden, attention, weights)
    after_attention = _layer_norm(_attention_output(hidden, attention, weights) + hidden, weights.ln1_gamma, weights.ln1_beta, weights.ln1_eps)
    inner = ACTIVATIONS[weights.activation](after_attention @ weights.intermediate_kernel + weights.intermediate_bias)
    output = inner @ weights.output_kernel + weights.output_bias
    return after_attention, _layer_norm(output + after_attention, weights.ln2_gamma, weights.ln2_beta, weights.ln2_eps)


def attention_norms(hidden: np.ndarray, attention: np.ndarray, weights: LayerWeights) -> tuple[np.ndarray, np.ndarray]:
    """Kobayashi et al. (2020): ‖α^h_ij f^h(x_j)‖ per head (H, T, T) and ‖Σ_h α^h_ij f^h(x_j)‖ (T, T).

    Rows are the attending tokens i and columns the attended tokens j, as in the attention maps.
    The per-layer norm uses the heads' Gram matrix per token, ‖Σ_h α^h f^h‖² = Σ_{h,g} α^h α^g
    ⟨f^h, f^g⟩, instead of building a (T, T, D) array of summed vectors.
    """
    hidden, attention = _checked(hidden, attention, weights)
    transformed = _transformed_values(hidden, weights)
    head_norms = attention * np.linalg.norm(transformed, axis=-1)[:, np.newaxis, :]
    by_source = np.ascontiguousarray(attention.transpose(2, 0, 1))  # (j, h, i); einsum is 8x slower on the strided view
    gram = np.einsum("hjd,gjd->jhg", transformed, transformed)  # (j, h, g), as einsum for the reason given at _ALTI_BLOCK
    squared = (by_source * np.einsum("jhg,jgi->jhi", gram, by_source)).sum(axis=1)  # (j, i)
    return head_norms, np.sqrt(np.maximum(squared.T, 0.0))


def alti_contributions(hidden: np.ndarray, attention: np.ndarray, weights: LayerWeights) -> np.ndarray:
    """ALTI contributions (Ferrando et al. 2022) of one layer: (T, T), rows non-negative, summing to 1.

    Entry [i, j] is the share of token j (input to the layer) in token i's output of the
    attention block, residual and LayerNorm1 included. A row whose output is nearer to zero
    than to every token's vector (the biases, owed to no token, dominate it) has no
    contribution to share and stays all zero; the reference code divides 0 by 0 there.
    """
    hidden, attention = _checked(hidden, attention, weights)
    size, gamma = len(hidden), weights.ln1_gamma
    transformed = _transformed_values(hidden, weights)
    before_norm = _attention_output(hidden, attention, weights) + hidden
    centred = before_norm - before_norm.mean(axis=-1, keepdims=True)
    sigma = np.sqrt((centred**2).mean(axis=-1) + weights.ln1_eps)
    output = centred / sigma[:, np.newaxis] * gamma + weights.ln1_beta  # y_i, LayerNorm1's output
    # σ_i T_i(x_j) = Σ_h α^h_ij (f^h(x_j) − mean) ⊙ γ + [i = j] (x_j − mean) ⊙ γ; comparing it
    # with σ_i y_i spares dividing the (sources, T, D) block by σ_i.
    values = ((transformed - transformed.mean(axis=-1, keepdims=True)) * gamma).astype(np.float32)
    residual = ((hidden - hidden.mean(axis=-1, keepdims=True)) * gamma).astype(np.float32)
    scaled_output = (output * sigma[:, np.newaxis]).astype(np.float32)
    by_source = np.ascontiguousarray(attention.transpose(2, 1, 0), dtype=np.float32)  # (j, i, h)
    values_by_source = np.ascontiguousarray(values.transpose(1, 0, 2))  # (j, h, D)
    distances = np.empty((size, size))  # [j, i]
    for start in range(0, size, _ALTI_BLOCK):
        stop = min(start + _ALTI_BLOCK, size)
        vectors = np.einsum("jih,jhd->jid", by_source[start:stop], values_by_source[start:stop])
        block = np.arange(stop - start)
        vectors[block, block + start] += residual[start:stop]
        np.subtract(scaled_output[np.newaxis], vectors, out=vectors)
        np.abs(vectors, out=vectors)
        distances[start:stop] = vectors.sum(axis=-1)
    distances = distances.T / sigma[:, np.newaxis]
    contributions = np.maximum(np.abs(output).sum(axis=-1, keepdims=True) - distances, 0.0)
    totals = contributions.sum(axis=-1, keepdims=True)
    shares: np.ndarray = np.divide(contributions, totals, out=np.zeros_like(contributions), where=totals > 0)
    return shares


def alti_rollout(contributions: np.ndarray) -> np.ndarray:
    """ALTI composed across layers (L, T, T): [l] = C_l @ C_{l-1} @ ... @ C_1, as rollout composes attention."""
    return compose(contributions)
