"""Value-aware attention (models.maths.norms) on tiny hand-built layers and naive reference loops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.maths.norms import LayerWeights, alti_contributions, alti_rollout, attention_norms, attention_probabilities, rebuild_layer
from tests.helpers.alti import alti_reference


def _layer(width: int = 4, heads: int = 2, inner: int = 3, **overrides) -> LayerWeights:
    """Identity projections, no biases, unit LayerNorms and a feed-forward block that outputs zero."""
    eye, zeros = np.eye(width), np.zeros(width)
    fields = dict(
        query_kernel=eye,
        query_bias=zeros,
        key_kernel=eye,
        key_bias=zeros,
        value_kernel=eye,
        value_bias=zeros,
        dense_kernel=eye,
        dense_bias=zeros,
        ln1_gamma=np.ones(width),
        ln1_beta=zeros,
        ln1_eps=1e-12,
        intermediate_kernel=np.zeros((width, inner)),
        intermediate_bias=np.zeros(inner),
        activation="gelu",
        output_kernel=np.zeros((inner, width)),
        output_bias=zeros,
        ln2_gamma=np.ones(width),
        ln2_beta=zeros,
        ln2_eps=1e-12,
        num_heads=heads,
    )
    return LayerWeights(**{**fields, **overrides})


def _random_layer(rng, width: int = 8, heads: int = 2, inner: int = 12, activation: str = "gelu", ln1_beta_scale: float = 0.1) -> LayerWeights:
    def normal(*shape, scale=0.5):
        return rng.normal(scale=scale, size=shape)

    return LayerWeights(
        query_kernel=normal(width, width),
        query_bias=normal(width),
        key_kernel=normal(width, width),
        key_bias=normal(width),
        value_kernel=normal(width, width),
        value_bias=normal(width),
        dense_kernel=normal(width, width),
        dense_bias=normal(width),
        ln1_gamma=1 + normal(width),
        ln1_beta=normal(width, scale=ln1_beta_scale),
        ln1_eps=1e-12,
        intermediate_kernel=normal(width, inner),
        intermediate_bias=normal(inner),
        activation=activation,
        output_kernel=normal(inner, width),
        output_bias=normal(width),
        ln2_gamma=1 + normal(width),
        ln2_beta=normal(width),
        ln2_eps=1e-12,
        num_heads=heads,
    )


# Two tokens, D = 4, two heads of two dimensions each. Head 1 reads dimensions 0-1, head 2 dimensions 2-3.
HIDDEN = np.array([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
ATTENTION = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.2, 0.8], [0.6, 0.4]]])


def test_attention_norms_by_hand_with_separate_heads():
    # With identity W_V and W_O, f^1(x_0) = [3, 4, 0, 0] (norm 5), f^2(x_0) = 0,
    # f^1(x_1) = 0 and f^2(x_1) = [0, 0, 1, 0] (norm 1).
    head_norms, layer_norms = attention_norms(HIDDEN, ATTENTION, _layer())
    np.testing.assert_allclose(head_norms[0], [[0.5 * 5, 0], [1.0 * 5, 0]])
    np.testing.assert_allclose(head_norms[1], [[0, 0.8 * 1], [0, 0.4 * 1]])
    # The heads write to different dimensions, so the summed vector's norm is the root of the squares.
    np.testing.assert_allclose(layer_norms, [[2.5, 0.8], [5.0, 0.4]])


def test_attention_norms_by_hand_when_heads_cancel_and_with_value_bias():
    # W_O sends both heads to dimensions 0-1: f^1(x) = [x0, x1, 0, 0], f^2(x) = [x2, x3, 0, 0].
    dense = np.zeros((4, 4))
    dense[0, 0] = dense[1, 1] = dense[2, 0] = dense[3, 1] = 1.0
    hidden = np.array([[3.0, 4.0, -3.0, -4.0], [0.0, 0.0, 0.0, 0.0]])
    head_norms, layer_norms = attention_norms(hidden, ATTENTION, _layer(dense_kernel=dense))
    # Token 0: f^1 = [3, 4, 0, 0] and f^2 = [-3, -4, 0, 0] point opposite ways. Row 0 takes
    # 0.5 f^1 + 0.2 f^2 = 0.3 · [3, 4, 0, 0] (norm 1.5); row 1 takes 1.0 f^1 + 0.6 f^2 (norm 2).
    np.testing.assert_allclose(head_norms[:, :, 0], [[2.5, 5.0], [1.0, 3.0]])
    np.testing.assert_allclose(layer_norms[:, 0], [1.5, 2.0])
    np.testing.assert_allclose(layer_norms[:, 1], 0.0, atol=1e-12)  # a zero vector adds nothing...
    # ...unless the value bias makes it add something: f^h(x) = (x W_V + b_V)^h W_O^h.
    biased = _layer(dense_kernel=dense, value_bias=np.array([0.0, 1.0, 0.0, 0.0]))
    head_norms, layer_norms = attention_norms(hidden, ATTENTION, biased)
    np.testing.assert_allclose(head_norms[:, :, 1], [[0.5, 0.0], [0.0, 0.0]])  # only head 1 has a bias
    np.testing.assert_allclose(layer_norms[0], [np.hypot(0.3 * 3, 0.5 + 0.3 * 4), 0.5])


def test_attention_norms_match_a_naive_loop():
    rng = np.random.default_rng(0)
    weights = _random_layer(rng)
    hidden = rng.normal(size=(5, 8))
    attention = rng.dirichlet(np.ones(5), size=(2, 5))
    head_norms, layer_norms = attention_norms(hidden, attention, weights)
    values = hidden @ weights.value_kernel + weights.value_bias
    for i in range(5):
        for j in range(5):
            parts = [attention[h, i, j] * values[j, 4 * h : 4 * h + 4] @ weights.dense_kernel[4 * h : 4 * h + 4] for h in range(2)]
            np.testing.assert_allclose(head_norms[:, i, j], [np.linalg.norm(p) for p in parts])
            assert layer_norms[i, j] == pytest.approx(np.linalg.norm(parts[0] + parts[1]))


def test_alti_by_hand():
    # D = 2, one head, identity projections, no biases, unit LayerNorm.
    weights = _layer(width=2, heads=1)
    hidden = np.array([[1.0, -1.0], [2.0, 0.0]])
    attention = np.array([[[0.5, 0.5], [0.0, 1.0]]])
    # Row 0: z = 0.5 x0 + 0.5 x1 + x0 (residual) = [2.5, -1.5]; mean 0.5, σ = 2, y0 = [1, -1].
    #   T0(x0) = centred(1.5 x0) / σ = [0.75, -0.75];  T0(x1) = centred(0.5 x1) / σ = [0.25, -0.25].
    #   ‖y0‖₁ = 2, ‖y0 - T0(x0)‖₁ = 0.5, ‖y0 - T0(x1)‖₁ = 1.5: contributions 1.5 and 0.5 -> [0.75, 0.25].
    # Row 1: z = x1 + x1 = [4, 0], y1 = [1, -1] = T1(x1) and T1(x0) = 0: contributions 0 and 2 -> [0, 1].
    np.testing.assert_allclose(alti_contributions(hidden, attention, weights), [[0.75, 0.25], [0.0, 1.0]], atol=1e-6)
    after_attention, _ = rebuild_layer(hidden, attention, weights)
    np.testing.assert_allclose(after_attention, [[1.0, -1.0], [1.0, -1.0]], atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_alti_matches_a_naive_loop_and_decomposes_layernorm_exactly(seed):
    rng = np.random.default_rng(seed)
    weights = _random_layer(rng, width=8, heads=2)
    hidden = rng.normal(size=(6, 8))
    attention = rng.dirichlet(np.ones(6) * 0.5, size=(2, 6))
    contributions = alti_contributions(hidden, attention, weights)
    expected, rebuilt = alti_reference(hidden, attention, weights)
    np.testing.assert_allclose(contributions, expected, atol=1e-5)
    assert np.all(contributions >= 0)
    np.testing.assert_allclose(contributions.sum(axis=1), 1.0, atol=1e-12)
    # The per-token vectors plus the part owed to no token add up to LayerNorm1's output.
    np.testing.assert_allclose(rebuilt, rebuild_layer(hidden, attention, weights)[0], atol=1e-10)


def test_alti_row_owed_to_no_token_is_left_empty():
    # With this random layer, token 2's output is nearer to 0 (in L1) than to any T_2(x_j): the
    # biases, owed to no token, dominate it.
    rng = np.random.default_rng(0)
    weights = _random_layer(rng, width=8, heads=2, ln1_beta_scale=0.5)
    hidden = rng.normal(size=(6, 8))
    attention = rng.dirichlet(np.ones(6) * 0.5, size=(2, 6))
    contributions = alti_contributions(hidden, attention, weights)
    expected, _ = alti_reference(hidden, attention, weights)  # 0 / 0 there
    empty = np.isnan(expected).all(axis=1)
    assert np.flatnonzero(empty).tolist() == [2]
    np.testing.assert_array_equal(contributions[empty], 0.0)
    np.testing.assert_allclose(contributions[~empty], expected[~empty], atol=1e-5)


def test_alti_rollout_is_the_product_of_the_layers():
    rng = np.random.default_rng(4)
    contributions = rng.dirichlet(np.ones(5), size=(3, 5))
    rolled = alti_rollout(contributions)
    np.testing.assert_allclose(rolled[0], contributions[0])
    np.testing.assert_allclose(rolled[1], contributions[1] @ contributions[0])
    np.testing.assert_allclose(rolled[2], contributions[2] @ contributions[1] @ contributions[0])
    np.testing.assert_allclose(rolled.sum(axis=-1), 1.0)
    with pytest.raises(ValueError, match="square"):
        alti_rollout(np.ones((2, 3, 4)))


@pytest.mark.parametrize("activation", ["gelu", "gelu_new", "relu"])
def test_rebuild_layer_matches_the_textbook_bert_layer(activation):
    rng = np.random.default_rng(2)
    weights = _random_layer(rng, width=8, heads=2, activation=activation)
    hidden = rng.normal(size=(5, 8))
    attention = attention_probabilities(hidden, weights)

    def norm(x, gamma, beta):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12) * gamma + beta

    # Heads concatenated and projected once, as transformers' BertSelfAttention + BertSelfOutput do.
    values = hidden @ weights.value_kernel + weights.value_bias
    context = np.concatenate([attention[h] @ values[:, 4 * h : 4 * h + 4] for h in range(2)], axis=1)
    after_attention = norm(context @ weights.dense_kernel + weights.dense_bias + hidden, weights.ln1_gamma, weights.ln1_beta)
    inner = after_attention @ weights.intermediate_kernel + weights.intermediate_bias
    act = {
        "gelu": lambda x: 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2))),
        "gelu_new": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
        "relu": lambda x: np.maximum(x, 0),
    }[activation]
    expected = norm(act(inner) @ weights.output_kernel + weights.output_bias + after_attention, weights.ln2_gamma, weights.ln2_beta)
    rebuilt_attention, rebuilt = rebuild_layer(hidden, attention, weights)
    np.testing.assert_allclose(rebuilt_attention, after_attention, atol=1e-12)
    np.testing.assert_allclose(rebuilt, expected, atol=1e-12)
    # Softmax rows, and each head's own scores: (x W_Q)^h (x W_K)^hᵀ / √2.
    np.testing.assert_allclose(attention.sum(-1), 1.0)
    queries, keys = hidden @ weights.query_kernel + weights.query_bias, hidden @ weights.key_kernel + weights.key_bias
    scores = queries[:, 4:] @ keys[:, 4:].T / 2.0
    np.testing.assert_allclose(attention[1], np.exp(scores) / np.exp(scores).sum(-1, keepdims=True))


def test_layer_weights_are_validated():
    with pytest.raises(ValueError, match="dense_kernel"):
        _layer(dense_kernel=np.eye(3))
    with pytest.raises(ValueError, match="heads"):
        _layer(num_heads=3)
    with pytest.raises(ValueError, match="activation"):
        _layer(activation="mish")
    weights = _layer()
    assert weights.query_kernel.dtype == np.float64
    with pytest.raises(dataclasses.FrozenInstanceError):
        weights.num_heads = 4  # type: ignore[misc]
    with pytest.raises(ValueError, match="attention"):
        attention_norms(HIDDEN, ATTENTION[:1], weights)
    with pytest.raises(ValueError, match="hidden"):
        rebuild_layer(HIDDEN[:, :3], ATTENTION, weights)
